"""``linflow aggregate``: chunk tables -> summary cube (summary.nc) and CSV tables."""

from __future__ import annotations

from pathlib import Path

from .. import aggregate, checks
from . import refuse_existing


def add_arguments(parser) -> None:
    parser.add_argument("tables", nargs="+", type=Path, help="chunk tables (NetCDF) of one experiment")
    parser.add_argument("--experiment", required=True, help="experiment name (recorded)")
    parser.add_argument("--summary-nc", required=True, type=Path, help="summary cube (NetCDF) to write")
    parser.add_argument("--summary-csv", required=True, type=Path, help="per (case, width) CSV table to write")
    parser.add_argument("--runs-csv", required=True, type=Path, help="per-run CSV table to write")
    parser.add_argument("--fits-csv", required=True, type=Path, help="per-case CSV table of fitted exponents")
    parser.add_argument("--summary-html", type=Path, default=None,
                        help="also write the summary table as an HTML page (for the workflow report)")
    parser.add_argument("--fits-html", type=Path, default=None,
                        help="also write the fits table as an HTML page (for the workflow report)")
    parser.add_argument("--bound-rtol", type=float, default=checks.DEFAULT_RTOL,
                        help=f"relative excess of a bound over the exact rate that counts as a violation (a bug); "
                             f"default {checks.DEFAULT_RTOL:g}")
    parser.add_argument("--verify-runs", action="store_true",
                        help="also read every run record and check it against its chunk-table row (slow)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args) -> None:
    refuse_existing([p for p in (args.summary_nc, args.summary_csv, args.runs_csv, args.fits_csv, args.summary_html,
                                 args.fits_html) if p is not None], args.overwrite)
    if not args.bound_rtol > 0:
        raise ValueError(f"--bound-rtol must be a positive number, got {args.bound_rtol}")
    if args.verify_runs:
        print(f"verified {aggregate.verify_runs(args.tables)} run records against their chunk tables")
    ds = aggregate.summarize(args.tables, experiment=args.experiment, bound_rtol=args.bound_rtol,
                             root=args.summary_nc.parent)
    aggregate.write_outputs(ds, summary_nc=args.summary_nc, summary_csv=args.summary_csv, runs_csv=args.runs_csv,
                            fits_csv=args.fits_csv, summary_html=args.summary_html, fits_html=args.fits_html)
