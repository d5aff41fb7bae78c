"""What a run costs before it runs: the sampling decision, memory and time estimates.

One decision, used by both the initialization (:func:`linflow.init.initialize`) and the
workflow's resource requests: :func:`uses_wishart` says whether a run samples its weights
explicitly (n x h arrays, memory growing with the width) or as a Wishart Gram factor
(width-independent). :func:`run_memory_bytes` estimates the peak memory of a run from the
same decision. Pure Python: the Snakefile imports it to plan jobs.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import parameters as P

#: Resident memory of a process that has imported linflow's dependencies (numpy, scipy,
#: xarray, netCDF4): the max RSS of `linflow simulate` on a tiny run was 145 MB; with margin.
PROCESS_BYTES = 250_000_000

#: With replacement, SGD draws its batches in blocks of about this many row indices
#: (:class:`linflow.sgd.BatchStream`; a constant, so the sequence depends only on the stream,
#: N, b and the sampling). Defined here, in pure Python, for the memory estimate.
SGD_BLOCK_ROWS = 1 << 16

#: SGD's batch indices held at a time: a block of int64 row indices (with replacement) or one
#: epoch's permutation of the N rows (without).
SGD_BATCH_BYTES = 8 * SGD_BLOCK_ROWS


def uses_wishart(sampling: str, width: int, wishart_min_width: int, k: int) -> bool:
    """Whether the initialization is sampled as a Wishart Gram factor (width-independent).

    ``sampling``: ``explicit`` never, ``wishart`` always, ``auto`` from ``max(wishart_min_width,
    k)`` on, where ``k = m + r`` (the Bartlett factor needs ``width >= k``).
    """
    P.check("sampling", sampling)
    if sampling == "explicit":
        return False
    if sampling == "wishart":
        if width < k:
            raise ValueError(f"sampling 'wishart' needs width >= m + r = {k}, got {width}; use explicit or auto")
        return True
    return width >= max(wishart_min_width, k)


def record_points(params: dict) -> int:
    """Upper estimate of the recorded points of a run (log grid over ~14 decades)."""
    return 14 * int(params.get("points_per_decade", P.default("points_per_decade"))) + 3


#: Series a run record holds at each recorded point: time, step, epoch and the 9 trajectory
#: variables of linflow.record (TIME_VARIABLES).
RECORD_SERIES = 12


def record_bytes(params: dict, *, n: int, m: int, rank: int) -> int:
    """Upper estimate of one run's record as its chunk holds it until the records file is
    written: the series at the recorded points, the imbalance spectrum, ``end_to_end`` (n x m)
    and the scalars."""
    return 8 * (RECORD_SERIES * record_points(params) + (m + rank) + n * m + 64)


def run_memory_bytes(params: dict, *, n: int, m: int, rank: int, width: int) -> int:
    """Peak memory of one run beyond the process itself, in bytes.

    Explicit sampling holds ``U`` (n x h), ``V`` (m x h) and the temporaries of the exact
    compression (``Phi1^T U``, ``Z U^T``; also the projection of ``invariant`` and the
    orthonormal rows of ``balanced``): about ``3 (n + m) + 3 k`` numbers per unit of width.
    Every run keeps ``k x k`` snapshots at its recorded points (``k = m + rank``), and the
    ``(n - r) x k`` part ``U2c``.
    """
    k = m + rank
    snapshots = 8 * record_points(params) * k * (k + n)
    wishart = uses_wishart(params.get("sampling", "auto"), width,
                           params.get("wishart_min_width", P.default("wishart_min_width")), k)
    weights = 0 if wishart else 8 * width * (3 * (n + m) + 3 * k)
    explicit_sgd = 8 * width * 2 * (n + m) if params.get("method") in P.EXPLICIT_METHODS else 0
    batches = SGD_BATCH_BYTES + 8 * rank if params.get("method") in P.SGD_METHODS else 0  # rank <= N
    return snapshots + weights + explicit_sgd + batches


def own_cgroup_files(cgroup_text: str | None = None) -> list[Path]:
    """The memory-limit files of this process's own cgroup (v2: ``0::/path``; v1: the
    ``memory`` controller's line of ``/proc/self/cgroup``, or ``cgroup_text``), not of the
    mount root: a Slurm job's limit is on its own cgroup."""
    files = []
    if cgroup_text is None:
        try:
            cgroup_text = Path("/proc/self/cgroup").read_text()
        except OSError:
            return files
    for line in cgroup_text.splitlines():
        if line.count(":") < 2:
            continue
        _, controllers, group = line.split(":", 2)
        group = group.lstrip("/")
        if controllers == "":
            files.append(Path("/sys/fs/cgroup") / group / "memory.max")
        elif "memory" in controllers.split(","):
            files.append(Path("/sys/fs/cgroup/memory") / group / "memory.limit_in_bytes")
    return files


def available_memory_bytes() -> int | None:
    """Memory this process may still use, for runs outside the workflow (a notebook, a manual
    ``linflow chunk``): the smaller of the system's available memory and the limit of this
    process's cgroup, or None where neither can be read. Workflow jobs refuse from their
    declared ``mem_mb`` instead, which does not depend on the machine's load."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for path in own_cgroup_files():
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            used = 0
            current = path.with_name("memory.current" if path.name == "memory.max" else "memory.usage_in_bytes")
            try:
                used = int(current.read_text().strip())
            except (OSError, ValueError):
                pass
            limits.append(int(text) - used)
    return min(limits) if limits else None


def data_memory_bytes(N: int, n: int, m: int) -> int:
    """Memory the data themselves hold in a job (beside :func:`run_memory_bytes`, which does not
    grow with N), in bytes: ``X`` and ``Y`` as read, the copy of ``X`` the SVD works on, its
    economy left factor ``W`` (``N x min(N, n)``; ``N x N`` when ``N < n``, still at most
    ``N x n``), the right basis ``[Phi1, Phi2]`` and its copies (``2 n^2``), ``Y``'s projections
    (``W^T Y``, the residual) and the finiteness mask of ``X`` (one byte per entry). A
    60,000 x 784 dataset with m = 10 needs about 1.2 GB."""
    return 8 * (2 * N * n + N * min(N, n) + 2 * n * n + 3 * N * m) + N * n


def job_memory_bytes(params: dict, *, n: int, m: int, rank: int, width: int, data_bytes: int = 0) -> int:
    """Every term of a run's memory in its job: the process, the data (``data_bytes``, from
    :func:`data_memory_bytes`) and the run (:func:`run_memory_bytes`)."""
    return PROCESS_BYTES + data_bytes + run_memory_bytes(params, n=n, m=m, rank=rank, width=width)


def check_fits(needed: int, what: str, available: int | None = None) -> None:
    """Refuse up front (ValueError naming ``what`` and the bytes) a run that cannot fit."""
    available = available_memory_bytes() if available is None else available
    if available is not None and needed > available:
        raise ValueError(f"{what} needs about {needed:.3g} bytes, more than the {available:.3g} bytes available")


#: ``solver: auto`` integrates with BDF from this stiffness ratio ``lam_1 / lam_r`` on (the
#: measured crossover with DOP853 is ~900 at m + r = 51; docs/solvers.md) ...
STIFF_RATIO = 1000.0
#: ... when DOP853 would need more than this many steps to reach ``max_time`` (its step is held
#: below ~3 / (fastest rate)): over a short horizon the explicit method stays cheap.
STIFF_MIN_STEPS = 10_000


#: Stiffness assumed for real data when planning (their spectrum is known only once read).
REAL_DATA_RATIO = 1e7


def stiffness_ratio(data: dict) -> float:
    """``lam_1 / lam_r`` of a synthetic dataset, known before it is generated.

    ``conditioned``: ``condition_number^2`` exactly; ``orthonormal_rows`` and ``factorization``: 1;
    ``gaussian`` (iid entries): the Marchenko-Pastur edges ``((1 + sqrt(q)) / (1 - sqrt(q)))^2``,
    ``q = min(N, n) / max(N, n)`` (capped at 10^6 for square data, whose smallest singular value
    has no positive edge).
    """
    kind = data.get("kind")
    if kind in P.REAL_DATA_KINDS:  # unknown until the data are read: assume stiff (raw digits: 6.5e6)
        return REAL_DATA_RATIO
    if kind == "conditioned":
        return float(data.get("condition_number", P.default("condition_number"))) ** 2
    if kind == "gaussian":
        q = min(data["N"], data["n"]) / max(data["N"], data["n"])
        return min(((1 + math.sqrt(q)) / (1 - math.sqrt(q))) ** 2, 1e6) if q < 1 else 1e6
    return 1.0


def flow_solver(setting: str, ratio: float) -> str:
    """The integrator ``solver: auto`` is expected to take on data of stiffness ``ratio``."""
    return setting if setting != "auto" else "bdf" if ratio >= STIFF_RATIO else "dop853"


def run_seconds(params: dict, *, n: int, m: int, rank: int, width: int, ratio: float = 1.0) -> float:
    """Generous wall-time estimate of one run (for Slurm's time limit), in seconds.

    Flow, from the solver and the stiffness ``ratio = lam_1 / lam_r`` (measured at m + r = 51,
    docs/solvers.md): DOP853's steps are held to ~3 / lam_1 over a run of ~30 / lam_r, so
    ~3.5e-4 s per unit of the ratio (kappa^2 of X: 3.3 s at lam_1 / lam_r = 10^4); BDF's steps
    grow with the log of the ratio (0.12 s at 1, 0.96 s at 10^8), plus its preconditioner
    setups (an (r m)^3 factorization each). Both scale with the state, ``(m + r)^2``. Three
    times that plus 2 s, plus the compression of explicit weights. Gradient descent and SGD:
    ``max_steps`` steps at ~30 us per step per 100 state rows.
    """
    k = m + rank
    wishart = uses_wishart(params.get("sampling", "auto"), width,
                           params.get("wishart_min_width", P.default("wishart_min_width")), k)
    explicit = 0.0 if wishart else 2e-9 * width * (n + m) * k
    method = params["method"]
    if method in P.FLOW_METHODS:
        state = max(1.0, (k / 51.0) ** 2)
        decades = math.log10(max(ratio, 1.0))
        if flow_solver(params.get("solver", P.default("solver")), ratio) == "bdf":
            model = (0.15 + 0.1 * decades) * state + 1e-9 * (rank * m) ** 3 * (50 + 25 * decades)
        else:
            model = (0.05 + 3.5e-4 * ratio) * state
        return 2.0 + 3.0 * model + explicit
    per_step = 3e-5 * max(1.0, k / 100.0)
    if method in P.EXPLICIT_METHODS:
        per_step += 4e-9 * width * (n + m)
    return 1.0 + explicit + params.get("max_steps", P.default("max_steps")) * per_step


def chunk_resources(run_params: list[dict], *, n: int, m: int, rank: int, widths: list[int],
                    ratio: float = 1.0, attempt: int = 1, data_bytes: int = 0) -> dict:
    """``mem_mb`` and ``runtime`` (minutes) of a chunk whose runs go one after another; a
    retried job (Snakemake's ``attempt``) gets ``attempt`` times as much of both. ``data_bytes``:
    the data's own memory (:func:`data_memory_bytes`), held once for the whole chunk. The chunk
    holds its runs' records until it writes them, then their padded stack: twice
    :func:`record_bytes` per run."""
    memory = data_bytes + max(run_memory_bytes(p, n=n, m=m, rank=rank, width=w) for p, w in zip(run_params, widths))
    memory += 2 * sum(record_bytes(p, n=n, m=m, rank=rank) for p in run_params)
    seconds = sum(run_seconds(p, n=n, m=m, rank=rank, width=w, ratio=ratio) for p, w in zip(run_params, widths))
    return {"mem_mb": attempt * int(math.ceil((PROCESS_BYTES + memory) / 1e6)),
            "runtime": attempt * int(math.ceil(5 + seconds / 60))}
