"""linflow: gradient flow on single-hidden-layer linear networks, exactly and at any width.

Implements Min, Tarmoun, Vidal, Mallada, "Convergence and Implicit Bias of Gradient Flow on
Overparametrized Linear Networks". The public entry points are :func:`simulate` (one run) and
:func:`open_sweep` (a workflow experiment as a labeled xarray cube); the paper's quantities
live in :mod:`linflow.theory`, data in :mod:`linflow.data`, initializations in
:mod:`linflow.init`, every parameter in :mod:`linflow.parameters` and the NetCDF schema in
:mod:`linflow.record`.
"""

__version__ = "0.2.0"
__all__ = ["simulate", "open_sweep", "__version__"]

# The function shadows its module (``linflow.simulate`` is the function), so it is imported
# eagerly; every command therefore depends on the simulator's code (linflow.codehash).
from .simulate import simulate  # noqa: E402

#: Imported on first use: reading sweeps is not part of any workflow command.
_LAZY = {"open_sweep": ".sweep"}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'linflow' has no attribute {name!r}")
