"""Command line: ``linflow dataset | simulate | chunk | aggregate | figure | schema``.

Each command reads and writes NetCDF/CSV/PNG files through the package; the Snakemake rules
call them, and they work the same outside Snakemake. A command's module is imported only when
it runs, so each command loads exactly the code it needs (the workflow's rerun tracking hashes
that code, :mod:`linflow.codehash`). Invalid arguments print a message naming the flag and exit
with code 2; nothing is written then.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Runs are single-process jobs; reading files on NFS-like file systems needs no HDF5 locks
# since each file has exactly one writer (set before netCDF4/HDF5 is imported).
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

#: command -> (module implementing it, one-line help)
COMMANDS = {
    "dataset": ("linflow.commands.dataset", "generate one synthetic dataset (NetCDF)"),
    "simulate": ("linflow.commands.simulate", "run one simulation and write its run record (NetCDF)"),
    "chunk": ("linflow.commands.chunk", "run a chunk of simulations in one process (a workflow job)"),
    "aggregate": ("linflow.commands.aggregate", "combine chunk tables into the summary cube and CSV tables"),
    "figure": ("linflow.commands.figure", "draw one figure from summary files (PNG and PDF)"),
    "schema": ("linflow.commands.schema", "write the JSON schema of the workflow config"),
}


def _top_level_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="linflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"linflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if not argv or argv[0] not in COMMANDS:
        _top_level_parser().parse_args(argv)  # prints help, the version, or the usage error
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"linflow {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    from .commands import ERRORS

    try:
        module.run(args)
    except ERRORS as exc:
        print(f"linflow {name}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
