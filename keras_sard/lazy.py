"""Package namespaces that import their modules on first use (PEP 562).

``keras_sard``, ``keras_sard.data``, ``keras_sard.models`` and
``keras_sard.export`` re-export names from their modules without importing
them: ``import keras_sard`` and the command line's help import neither Keras
nor TensorFlow, so ``keras-sard --backend jax`` can still pick the backend.

>>> import types
>>> package = types.ModuleType("package")
>>> package.__getattr__, package.__dir__ = lazy_exports("package", {"sqrt": "math"})
>>> package.sqrt(4.0)
2.0
"""

import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package, exports):
    """``(__getattr__, __dir__)`` for the package module named `package`.

    Args:
        package: the package's ``__name__``.
        exports: ``{name: module}``: `name` is read from `module` (an
            absolute name) on first access; where `name` equals the module's
            last component and the module has no such attribute, the module
            itself is returned (a lazy submodule).
    """

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name])
        if exports[name].rpartition(".")[2] == name and not hasattr(module, name):
            return module
        return getattr(module, name)

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
