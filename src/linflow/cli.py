"""Command line: ``linflow dataset | simulate | aggregate | figure``.

Each subcommand reads and writes NetCDF/CSV/PNG files through the package; the Snakemake
rules call these, and they work the same outside Snakemake. Invalid arguments print a
message naming the flag and exit with code 2; nothing is written then.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Runs are single-threaded jobs; reading files on NFS-like file systems needs no HDF5 locks
# since each file has exactly one writer (set before netCDF4/HDF5 is imported).
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")


class UsageError(Exception):
    """Bad input detected after parsing (shapes, ranks, file contents)."""


def _number(convert, minimum, strict: bool, what: str):
    """An argparse type: ``convert(text)``, finite, and ``> minimum`` (strict) or ``>= minimum``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (value > minimum if strict else value >= minimum) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    return parse


_positive_int = _number(int, 0, True, "a positive integer")
_nonnegative_int = _number(int, 0, False, "a non-negative integer")
_positive_float = _number(float, 0.0, True, "a positive finite number")
_nonnegative_float = _number(float, 0.0, False, "a finite number >= 0")


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0.25, 0.5], got {text!r}") from None
    if not 0.25 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"alpha must lie in (1/4, 1/2] (Theorem 12), got {value}")
    return value


def _add_output(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--output", required=True, type=Path, help=help_text)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .data import DATA_KINDS
    from .init import INIT_KINDS, SAMPLING_KINDS
    from .simulate import LOSS_SCALES, METHODS

    parser = argparse.ArgumentParser(prog="linflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"linflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("dataset", help="generate one experiment's synthetic data (NetCDF)")
    p.add_argument("--experiment", required=True, help="experiment name (labels the random stream)")
    p.add_argument("--entropy", type=_nonnegative_int, default=0, help="root seed entropy (default 0)")
    p.add_argument("--kind", required=True, choices=DATA_KINDS, help="data model")
    p.add_argument("--n", type=_positive_int, required=True, help="input dimension")
    p.add_argument("--m", type=_positive_int, required=True, help="output dimension")
    p.add_argument("--N", type=_positive_int, help="number of samples (not for factorization)")
    p.add_argument("--noise", type=_nonnegative_float, default=0.01, help="std of the target noise")
    p.add_argument("--target-variance", type=_nonnegative_float, default=0.1,
                   help="variance of iid Gaussian targets (factorization)")
    p.add_argument("--condition-number", type=_positive_float, default=1.0,
                   help="s_1/s_r of X (conditioned data)")
    _add_output(p, "dataset NetCDF file to write")

    p = sub.add_parser("simulate", help="run one simulation and write its run record (NetCDF)")
    p.add_argument("--dataset", required=True, type=Path, help="dataset NetCDF file (from 'linflow dataset')")
    p.add_argument("--experiment", required=True, help="experiment name (labels the random stream)")
    p.add_argument("--case", default="default", help="name of the initialization case (recorded)")
    p.add_argument("--entropy", type=_nonnegative_int, default=0, help="root seed entropy (default 0)")
    p.add_argument("--width", type=_positive_int, required=True, help="hidden width h")
    p.add_argument("--seed", type=_nonnegative_int, required=True, help="seed index of this run")
    p.add_argument("--init", required=True, choices=INIT_KINDS, help="initialization")
    p.add_argument("--alpha", type=_alpha, help="Gaussian init variance h^(-2 alpha), alpha in (1/4, 1/2]")
    p.add_argument("--a", type=float, help="scale of U(0) = a U0 (scaled/balanced init)")
    p.add_argument("--b", type=float, help="scale of V(0) = b V0 (scaled/balanced init)")
    p.add_argument("--sampling", choices=SAMPLING_KINDS, default="auto",
                   help="Gaussian init: explicit weights, Wishart Gram (width-independent), or auto")
    p.add_argument("--wishart-min-width", type=_positive_int, default=20_000,
                   help="with --sampling auto, widths from this on use Wishart sampling")
    p.add_argument("--method", choices=METHODS, default="flow", help="simulator")
    p.add_argument("--step", type=_positive_float, help="gradient-descent step (gd, gd_explicit)")
    p.add_argument("--loss-scale", choices=LOSS_SCALES, default="half",
                   help="objective 1/2||.||^2 (half) or (1/N)||.||^2 (mean)")
    p.add_argument("--output-scale", choices=("none", "inverse_sqrt_mh"), default="none",
                   help="network f(x) = gamma V U^T x with gamma = 1 or (m h)^(-1/2)")
    p.add_argument("--stop-factor", type=_positive_float, default=1e-12,
                   help="stop when the excess loss has fallen by this factor")
    p.add_argument("--loss-threshold", type=_positive_float, help="also stop when the objective is below this")
    p.add_argument("--max-time", type=_positive_float, default=1e4, help="flow-time limit")
    p.add_argument("--max-steps", type=_positive_int, default=1_000_000, help="iteration limit (gd)")
    p.add_argument("--rtol", type=_positive_float, default=1e-10, help="integrator relative tolerance")
    p.add_argument("--atol", type=_positive_float, default=1e-13, help="integrator absolute tolerance")
    p.add_argument("--points-per-decade", type=_positive_int, default=20, help="record grid density")
    p.add_argument("--divergence-factor", type=_positive_float, default=1e6,
                   help="gd: diverged once the excess loss exceeds this multiple of its start")
    p.add_argument("--delta", type=_positive_float, default=0.1, help="Theorem 12 confidence, in (0, 1)")
    _add_output(p, "run-record NetCDF file to write")

    p = sub.add_parser("aggregate", help="combine run records into summary.nc and CSV tables")
    p.add_argument("runs", nargs="+", type=Path, help="run-record NetCDF files")
    p.add_argument("--experiment", required=True, help="experiment name (recorded)")
    p.add_argument("--summary-nc", required=True, type=Path, help="summary NetCDF to write")
    p.add_argument("--summary-csv", required=True, type=Path, help="per-width CSV table to write")
    p.add_argument("--runs-csv", required=True, type=Path, help="per-run CSV table to write")
    p.add_argument("--fits-csv", required=True, type=Path, help="per-case CSV table of fitted exponents")
    p.add_argument("--bound-rtol", type=_positive_float, default=1e-8,
                   help="relative slack allowed before a bound violation is an error")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    from .plots import FIGURES

    p = sub.add_parser("figure", help="draw one figure from NetCDF outputs (PNG and PDF)")
    p.add_argument("kind", choices=sorted(FIGURES), help="figure to draw")
    p.add_argument("inputs", nargs="+", type=Path, help="summary.nc and/or run-record files, as the figure needs")
    p.add_argument("--png", required=True, type=Path, help="PNG file to write")
    p.add_argument("--pdf", required=True, type=Path, help="PDF file to write")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return parser


def _refuse_existing(paths, overwrite: bool) -> None:
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise UsageError(f"output exists: {', '.join(existing)}; pass --overwrite to replace it")


def cmd_dataset(args) -> None:
    from . import data, record, seeding, theory

    _refuse_existing([args.output], args.overwrite)
    if args.kind != "factorization" and args.N is None:
        raise UsageError(f"--N is required for data kind {args.kind!r}")
    rng = seeding.rng_for(args.entropy, "dataset", args.experiment)
    X, Y = data.make_dataset(
        args.kind, n=args.n, m=args.m, N=args.N, noise=args.noise, target_variance=args.target_variance,
        condition_number=args.condition_number, rng=rng,
    )
    params = {k: v for k, v in vars(args).items() if k not in ("output", "overwrite", "func", "command")}
    ds = record.dataset_record(X, Y, theory.reduce_problem(X, Y), params)
    record.write_netcdf(ds, args.output)


def cmd_simulate(args) -> None:
    from . import init as init_mod
    from .state import CompressedInit
    from . import record, seeding, theory
    from .simulate import simulate

    _refuse_existing([args.output], args.overwrite)
    if args.method in ("gd", "gd_explicit") and args.step is None:
        raise UsageError(f"--step is required for method {args.method!r}")
    if not 0 < args.delta < 1:
        raise UsageError(f"--delta must lie in (0, 1), got {args.delta}")
    ds_data = record.open_netcdf(args.dataset, ("X", "Y"))
    X, Y = ds_data["X"].values, ds_data["Y"].values
    output_scale = 1.0 if args.output_scale == "none" else (Y.shape[1] * args.width) ** -0.5
    problem = theory.reduce_problem(output_scale * X, Y)  # once: for the init and the simulation
    rng = seeding.rng_for(args.entropy, "init", args.experiment, args.width, args.seed)
    start = init_mod.initialize(
        args.init, problem, args.width, rng, alpha=args.alpha, a=args.a, b=args.b,
        sampling=args.sampling, wishart_min_width=args.wishart_min_width,
    )
    weights = {"init": start} if isinstance(start, CompressedInit) else {"U0": start[0], "V0": start[1]}
    run_parameters = {
        "experiment": args.experiment, "case": args.case, "seed": args.seed, "entropy": args.entropy,
        "init": args.init, "a": args.a, "b": args.b, "sampling": args.sampling,
        "sampled_wishart": isinstance(start, CompressedInit),
        "dataset_parameters_hash": ds_data.attrs.get("parameters_hash", ""),
        "output_scale_rule": args.output_scale,
    }
    ds = simulate(
        X, Y, **weights, method=args.method, step=args.step, loss_scale=args.loss_scale,
        output_scale=output_scale, stop_factor=args.stop_factor, loss_threshold=args.loss_threshold,
        max_time=args.max_time, max_steps=args.max_steps, rtol=args.rtol, atol=args.atol,
        points_per_decade=args.points_per_decade, divergence_factor=args.divergence_factor,
        alpha=args.alpha if args.init in ("gaussian", "invariant") else None, delta=args.delta,
        attrs={"run_parameters": run_parameters, "experiment": args.experiment, "case": args.case,
               "seed": args.seed, "dataset": str(args.dataset)},
        problem=problem,
    )
    record.write_netcdf(ds, args.output)
    print(f"{args.output}: status={ds['status'].item()} final_distance_fro={float(ds['final_distance_fro']):.6e} "
          f"points={ds.sizes['time']} wall={ds.attrs['wall_time_seconds']:.3f}s")


def cmd_aggregate(args) -> None:
    from . import aggregate

    _refuse_existing([args.summary_nc, args.summary_csv, args.runs_csv, args.fits_csv], args.overwrite)
    aggregate.aggregate_files(
        args.runs, experiment=args.experiment, summary_nc=args.summary_nc, summary_csv=args.summary_csv,
        runs_csv=args.runs_csv, fits_csv=args.fits_csv, bound_rtol=args.bound_rtol,
    )


def cmd_figure(args) -> None:
    from . import plots

    _refuse_existing([args.png, args.pdf], args.overwrite)
    plots.draw(args.kind, args.inputs, png=args.png, pdf=args.pdf, title=args.title)


COMMANDS = {"dataset": cmd_dataset, "simulate": cmd_simulate, "aggregate": cmd_aggregate, "figure": cmd_figure}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .record import CorruptFileError

    try:
        COMMANDS[args.command](args)
    except (UsageError, ValueError, FileExistsError, FileNotFoundError, CorruptFileError) as exc:
        print(f"linflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
