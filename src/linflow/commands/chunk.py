"""``linflow chunk``: the runs of one chunk in one process (a workflow simulation job)."""

from __future__ import annotations

import json
from pathlib import Path

from .. import batch, grid


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", required=True, type=Path, help="dataset NetCDF file")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--spec",
                       help="the chunk as JSON: experiment, entropy, width, runs [[case, seed], ...] and the "
                            "resolved parameters of every case (linflow.grid.Plan.chunk_spec)")
    given.add_argument("--plan", type=Path,
                       help="a workflow config as JSON: the job plans its chunk (--experiment, --chunk) from it")
    parser.add_argument("--experiment", help="with --plan: the experiment")
    parser.add_argument("--chunk", help="with --plan: the chunk's id, e.g. h1000_b0")
    parser.add_argument("--spec-hash", help="with --plan: refuse a chunk that plans differently (SHA-256 of its "
                                            "canonical JSON spec)")
    parser.add_argument("--records", required=True, type=Path,
                        help="the chunk's records file to write (NetCDF, every run's record; linflow.record.RecordStack)")
    parser.add_argument("--table", required=True, type=Path, help="chunk table (NetCDF) to write")
    parser.add_argument("--max-memory-mb", type=int, default=None,
                        help="the job's declared memory: refuse runs estimated to need more, process included "
                             "(the workflow passes its mem_mb; default: the memory the system reports)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args) -> None:
    if args.plan is not None:
        if not (args.experiment and args.chunk):
            raise ValueError("--plan needs --experiment and --chunk")
        spec = grid.planned_spec(args.plan, args.experiment, args.chunk, args.spec_hash)
    else:
        try:
            spec = json.loads(args.spec)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--spec is not valid JSON: {exc}") from None
    memory = None if args.max_memory_mb is None else args.max_memory_mb * 1_000_000
    batch.run_chunk(args.dataset, spec, args.records, args.table, overwrite=args.overwrite, available_memory=memory)
