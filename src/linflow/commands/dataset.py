"""``linflow dataset``: one synthetic dataset (X, Y, min-norm solution) as NetCDF."""

from __future__ import annotations

from .. import data, record, seeding, theory
from .. import parameters as P
from . import add_output, add_parameters, refuse_existing, resolve_flags


def add_arguments(parser) -> None:
    parser.add_argument("--name", required=True,
                        help="dataset name: labels its random stream (the workflow passes the config's name)")
    parser.add_argument("--entropy", type=int, default=0, help="root seed entropy (default 0)")
    add_parameters(parser, P.DATASET_PARAMETERS)
    add_output(parser, "dataset NetCDF file to write")


def run(args) -> None:
    refuse_existing([args.output], args.overwrite)
    params = resolve_flags(args, P.DATASET_PARAMETERS)
    rng = seeding.rng_for(args.entropy, "dataset", args.name)
    X, Y = data.make_dataset(rng=rng, **params)
    provenance = dict(params, name=args.name, entropy=args.entropy)
    record.write_netcdf(record.dataset_record(X, Y, theory.reduce_problem(X, Y), provenance), args.output)
