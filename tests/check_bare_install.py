"""Import every public module of keras_sard in the environment at hand.

Run it in a bare install (``pip install -e .``, no extras: no pytest, no
matplotlib, onnx, jax or torch) to prove that every runtime import is a
declared dependency and that the optional extras are imported lazily::

    python tests/check_bare_install.py

A module is public when no part of its dotted name starts with ``_``.  The
step modules of `keras_sard.backend` are skipped for the backends that are
not installed: each imports its own backend, and Keras itself cannot run on
a backend that is not installed.

Then, for each optional extra that is missing, it checks that using the
feature fails with an ImportError saying which ``pip install keras-sard[...]``
brings it.  Prints one line per module and exits non-zero on any failure.

``--hide PACKAGE ...`` makes packages that are installed look missing (their
import fails, as in a bare install), so that the full development
environment can run the same check: tests/test_bare_install.py does that.
"""

import argparse
import importlib
import importlib.abc
import importlib.util
import os
import pkgutil
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout: check its keras_sard

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# keras_sard.backend.<module> -> the package its backend needs.
BACKEND_MODULES = {
    "keras_sard.backend.tensorflow_steps": "tensorflow",
    "keras_sard.backend.jax_steps": "jax",
    "keras_sard.backend.torch_steps": "torch",
}


HIDDEN = set()  # top-level packages made to look missing (--hide)


class _Hide(importlib.abc.MetaPathFinder):
    """Fails the import of every package in HIDDEN, as if not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by --hide)", name=name)
        return None


def installed(package):
    if package in HIDDEN:
        return False
    return importlib.util.find_spec(package) is not None


def public_modules():
    import keras_sard

    names = ["keras_sard"]
    for info in pkgutil.walk_packages(keras_sard.__path__, "keras_sard."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def check_imports():
    failures = []
    for name in public_modules():
        needs = BACKEND_MODULES.get(name)
        if needs and not installed(needs):
            print(f"skip    {name} (the {needs} backend is not installed)")
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - report every failure, then fail
            failures.append(name)
            print(f"FAILED  {name}\n{traceback.format_exc()}")
        else:
            print(f"ok      {name}")
    return failures


def check_missing_extra(label, extra, use):
    """`use()` must raise an ImportError naming ``keras-sard[extra]``."""
    try:
        use()
    except ImportError as error:
        if f"keras-sard[{extra}]" in str(error):
            print(f"ok      {label} without [{extra}]: {error}")
            return []
        print(f"FAILED  {label} without [{extra}]: the ImportError does not say "
              f"`pip install keras-sard[{extra}]`: {error}")
        return [label]
    except Exception:  # noqa: BLE001
        print(f"FAILED  {label} without [{extra}]: not an ImportError\n{traceback.format_exc()}")
        return [label]
    print(f"FAILED  {label} without [{extra}]: ran although the extra is missing")
    return [label]


def check_extras():
    import keras
    import numpy as np

    failures = []
    if not installed("matplotlib"):
        def draw():
            from keras_sard.visualize import plot_structure

            inputs = keras.Input((32, 32, 3))
            features = keras.layers.Conv2D(4, 3, padding="same", name="stage_1")(inputs)
            teacher = keras.Model(inputs, keras.layers.Conv2D(2, 1)(features))
            image = np.zeros((32, 32, 3), "float32")
            with tempfile.TemporaryDirectory() as folder:
                plot_structure(image, teacher, "stage_1", os.path.join(folder, "w.png"))

        def log():
            from keras_sard import Distiller
            from keras_sard.callbacks import StructureMapLogger

            def segmenter(width, name):
                inputs = keras.Input((16, 16, 3))
                x = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_features")(inputs)
                return keras.Model(inputs, keras.layers.Conv2D(2, 1)(x), name=name)

            distiller = Distiller(segmenter(4, "teacher"), segmenter(2, "student"))
            distiller.compile(optimizer="adam")
            x, y = np.zeros((2, 16, 16, 3), "float32"), np.zeros((2, 16, 16), "int32")
            with tempfile.TemporaryDirectory() as folder:
                logger = StructureMapLogger(x, "teacher_features", png_dir=folder)
                distiller.fit(x, y, epochs=1, verbose=0, callbacks=[logger])

        failures += check_missing_extra("keras_sard.visualize.plot_structure", "viz", draw)
        failures += check_missing_extra("keras_sard.callbacks.StructureMapLogger", "viz", log)
    if not all(installed(p) for p in ("onnx", "onnxruntime", "tf2onnx")):
        def export():
            from keras_sard.export import export_student

            inputs = keras.Input((32, 32, 3))
            model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
            with tempfile.TemporaryDirectory() as folder:
                export_student(model, os.path.join(folder, "m.onnx"), "onnx")

        failures += check_missing_extra("keras_sard.export.export_student(format='onnx')",
                                        "export", export)
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hide", nargs="*", default=[], metavar="PACKAGE",
                        help="installed packages to treat as missing")
    HIDDEN.update(parser.parse_args(argv).hide)
    if HIDDEN:
        sys.meta_path.insert(0, _Hide())
    failures = check_imports()
    if not failures:  # the extras' checks import the modules again
        failures += check_extras()
    print(f"\n{len(public_modules())} public modules; "
          + (f"{len(failures)} failed: {failures}" if failures else "all import"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
