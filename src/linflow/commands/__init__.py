"""The implementations of ``linflow <command>``: one module per command, each with
``add_arguments(parser)`` and ``run(args)``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import checks, realdata, record
from .. import parameters as P


class UsageError(Exception):
    """Bad input detected after parsing (files, shapes, combinations of flags)."""


#: Errors a command reports in one line (exit code 2) instead of a traceback.
ERRORS = (UsageError, ValueError, FileExistsError, FileNotFoundError, record.CorruptFileError, checks.BoundViolation,
          realdata.MissingExtraError)


def refuse_existing(paths, overwrite: bool) -> None:
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise UsageError(f"output exists: {', '.join(existing)}; pass --overwrite to replace it")


def add_output(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--output", required=True, type=Path, help=help_text)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def _argument_type(parameter: P.Parameter):
    def parse(text: str):
        try:
            return parameter.parse(text)
        except P.ParameterError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = parameter.name
    return parse


def add_parameters(parser: argparse.ArgumentParser, parameters) -> None:
    """One flag per registry parameter (``--max-time`` for ``max_time``), no argparse defaults:
    :func:`given_parameters` then knows what was set and :func:`linflow.parameters.resolve`
    fills in the defaults of exactly the parameters that apply."""
    group = parser.add_argument_group("parameters (see `linflow schema` for the same in the config)")
    for p in parameters:
        default = f"; default {p.default}" if p.default is not None else ""
        needed = "; required where it applies" if p.required else ""
        kwargs = dict(choices=p.choices) if p.choices else dict(type=_argument_type(p))
        group.add_argument(p.flag, dest=p.name, default=None, metavar=p.name.upper() if not p.choices else None,
                           help=f"{p.doc} ({p.allowed()}{default}{needed})", **kwargs)


def given_parameters(args, parameters) -> dict:
    return {p.name: getattr(args, p.name) for p in parameters if getattr(args, p.name) is not None}


def resolve_flags(args, parameters) -> dict:
    """The parameters set on the command line, resolved (errors name the flag)."""
    return P.resolve(given_parameters(args, parameters), parameters, label=lambda p: p.flag)
