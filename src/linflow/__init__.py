"""linflow: gradient flow on single-hidden-layer linear networks, exactly and at any width.

Implements Min, Tarmoun, Vidal, Mallada, "Convergence and Implicit Bias of Gradient Flow on
Overparametrized Linear Networks". The public entry point is :func:`simulate`; the paper's
quantities live in :mod:`linflow.theory`, data in :mod:`linflow.data`, initializations in
:mod:`linflow.init` and the NetCDF schema in :mod:`linflow.record`.
"""

__version__ = "0.1.0"

from .simulate import simulate  # noqa: E402

__all__ = ["simulate", "__version__"]
