"""``linflow schema``: the JSON schema of the workflow config, generated from the parameter registry."""

from __future__ import annotations

from pathlib import Path

from .. import schema
from . import add_output, refuse_existing


def add_arguments(parser) -> None:
    add_output(parser, "schema file to write (YAML), e.g. workflow/schemas/config.schema.yaml")


def run(args) -> None:
    refuse_existing([args.output], args.overwrite)
    path = Path(args.output)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(schema.render())
    tmp.replace(path)
