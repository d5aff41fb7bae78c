"""``linflow chunk``: the runs of one chunk in one process (a workflow simulation job)."""

from __future__ import annotations

import json
from pathlib import Path

from .. import batch


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", required=True, type=Path, help="dataset NetCDF file")
    parser.add_argument("--spec", required=True,
                        help="the chunk as JSON: experiment, entropy, width, runs [[case, seed], ...] and the "
                             "resolved parameters of every case (linflow.grid.Plan.chunk_spec)")
    parser.add_argument("--runs-dir", required=True, type=Path, help="folder of the run records to write")
    parser.add_argument("--table", required=True, type=Path, help="chunk table (NetCDF) to write")
    parser.add_argument("--max-memory-mb", type=int, default=None,
                        help="refuse runs estimated to need more (default: the memory the system reports)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args) -> None:
    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--spec is not valid JSON: {exc}") from None
    memory = None if args.max_memory_mb is None else args.max_memory_mb * 1_000_000
    batch.run_chunk(args.dataset, spec, args.runs_dir, args.table, overwrite=args.overwrite, available_memory=memory)
