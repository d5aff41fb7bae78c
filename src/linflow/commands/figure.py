"""``linflow figure``: one figure from summary files (PNG and PDF)."""

from __future__ import annotations

from pathlib import Path

from .. import plots
from . import refuse_existing


def add_arguments(parser) -> None:
    parser.add_argument("kind", choices=sorted(plots.FIGURES), help="figure to draw")
    parser.add_argument("inputs", nargs="+", type=Path,
                        help="summary.nc files (figures of trajectories read the run files they list)")
    parser.add_argument("--png", required=True, type=Path, help="PNG file to write")
    parser.add_argument("--pdf", required=True, type=Path, help="PDF file to write")
    parser.add_argument("--title", default=None, help="figure title")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args) -> None:
    refuse_existing([args.png, args.pdf], args.overwrite)
    plots.draw(args.kind, args.inputs, png=args.png, pdf=args.pdf, title=args.title)
