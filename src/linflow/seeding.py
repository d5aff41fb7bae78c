"""Deterministic, independent random streams from ``numpy.random.SeedSequence``.

Every stream is keyed by the root entropy and a tuple of labels, so adding a width or a
seed to a sweep never changes the numbers of existing runs, and runs never share a stream.
"""

from __future__ import annotations

import zlib

import numpy as np


def _label(value) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"stream labels must be non-negative integers or strings, got {value!r}")
        return int(value)
    return zlib.crc32(str(value).encode())


def rng_for(entropy: int, *labels) -> np.random.Generator:
    """Generator for the stream ``labels`` (ints or strings) under the root ``entropy``."""
    if isinstance(entropy, bool) or not isinstance(entropy, (int, np.integer)) or entropy < 0:
        raise ValueError(f"seed entropy must be a non-negative integer, got {entropy!r}")
    return np.random.default_rng(np.random.SeedSequence(int(entropy), spawn_key=tuple(_label(v) for v in labels)))
