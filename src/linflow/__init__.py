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

import sys as _sys
import types as _types
from importlib import import_module as _import_module

#: Imported on first use, so that a command loads only what it runs (datasets, aggregation and
#: figures never load the simulators or SciPy's integrators; linflow.codehash follows imports,
#: and a name given as a string is not one).
_LAZY = {"simulate": ".simulate", "open_sweep": ".sweep"}


class _Package(_types.ModuleType):
    """The package's module type: ``linflow.simulate`` is always the function.

    The function has its module's name. Importing the submodule ``linflow.simulate`` (as
    :mod:`linflow.batch` does) makes the import system bind the module to that attribute;
    the setter keeps the function instead (without a setter the binding fails with an
    ``ImportWarning``, an error under ``-W error``).
    """

    @property
    def simulate(self):
        return _import_module(_LAZY["simulate"], __name__).simulate

    @simulate.setter
    def simulate(self, _module):
        pass

    def __getattr__(self, name):
        if name in _LAZY:
            return getattr(_import_module(_LAZY[name], __name__), name)
        raise AttributeError(f"module 'linflow' has no attribute {name!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_LAZY))


_sys.modules[__name__].__class__ = _Package
