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

#: Public functions, imported on first use so ``import linflow.parameters`` (the Snakefile's
#: planning) and each command load only the modules they need.
_LAZY = {"simulate": ".simulate", "open_sweep": ".sweep"}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'linflow' has no attribute {name!r}")
