"""``linflow simulate``: one run of a sweep, exactly as a workflow chunk would compute it."""

from __future__ import annotations

from pathlib import Path

from .. import batch, record
from .. import parameters as P
from . import add_output, add_parameters, refuse_existing, resolve_flags


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", required=True, type=Path, help="dataset NetCDF file (from 'linflow dataset')")
    parser.add_argument("--experiment", required=True, help="experiment name (labels the random stream)")
    parser.add_argument("--case", default="default", help="name of the initialization case (recorded)")
    parser.add_argument("--entropy", type=int, default=0, help="root seed entropy (default 0)")
    parser.add_argument("--width", type=int, required=True, help="hidden width h")
    parser.add_argument("--seed", type=int, required=True, help="seed index of this run (its random stream)")
    add_parameters(parser, P.RUN_PARAMETERS)
    add_output(parser, "run-record NetCDF file to write")


def run(args) -> None:
    refuse_existing([args.output], args.overwrite)
    for flag, value in (("--width", args.width), ("--seed", args.seed + 1), ("--entropy", args.entropy + 1)):
        if value < 1:
            raise ValueError(f"{flag} must be {'positive' if flag == '--width' else 'non-negative'}, got {value}")
    params = resolve_flags(args, P.RUN_PARAMETERS)
    X, Y, dataset_attrs = batch.load_dataset(args.dataset)
    ds = batch.run_one(batch.Reductions(X, Y), experiment=args.experiment, case=args.case, width=args.width,
                       seed=args.seed, params=params, entropy=args.entropy, dataset_attrs=dataset_attrs)
    record.write_run(ds, args.output)
    print(f"{args.output}: status={ds['status'].item()} final_distance_fro={float(ds['final_distance_fro']):.6e} "
          f"points={ds.sizes['time']} wall={ds.attrs['wall_time_seconds']:.3f}s")
