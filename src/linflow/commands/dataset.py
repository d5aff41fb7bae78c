"""``linflow dataset``: one dataset (X, Y, min-norm solution) as NetCDF: synthetic, or real data
from a file or scikit-learn (:mod:`linflow.realdata`), preprocessed."""

from __future__ import annotations

from .. import data, realdata, record, seeding, theory
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
    rng = seeding.rng_for(args.entropy, "dataset", args.name)  # real data: the subsample's rows
    provenance = dict(params, name=args.name, entropy=args.entropy)
    if params["kind"] in P.REAL_DATA_KINDS:  # every check runs here, before anything is written
        options = {key: value for key, value in params.items() if key != "kind"}
        loaded = realdata.load(params["kind"], **options, rng=rng, name=args.name)
        X, Y, problem = loaded.X, loaded.Y, loaded.problem
        provenance.update({key: loaded.info[key] for key in ("source_sha256",) if key in loaded.info})
    else:
        X, Y = data.make_dataset(rng=rng, **params)
        problem = theory.reduce_problem(X, Y)
    record.write_netcdf(record.dataset_record(X, Y, problem, provenance), args.output)
