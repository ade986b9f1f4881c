"""Run the test suite once per Keras backend: TensorFlow, JAX and PyTorch.

Keras picks its backend when it is first imported, so each backend gets its
own pytest process.  Extra arguments go to pytest unchanged::

    python tests/run_backends.py                 # whole suite, three backends
    python tests/run_backends.py -k structure    # a subset
    KERAS_SARD_BACKENDS=jax python tests/run_backends.py

Exits non-zero when any backend's run fails.
"""

import os
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def main(argv):
    backends = os.environ.get("KERAS_SARD_BACKENDS", ",".join(BACKENDS))
    backends = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        sys.exit(f"KERAS_SARD_BACKENDS names unknown backends {unknown}; "
                 f"expected a comma-separated subset of {list(BACKENDS)}.")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = {}
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend)
        print(f"\n========== KERAS_BACKEND={backend} ==========", flush=True)
        start = time.time()
        code = subprocess.call(
            [sys.executable, "-m", "pytest", *argv], cwd=root, env=env)
        results[backend] = (code, time.time() - start)
    print("\n========== summary ==========")
    for backend, (code, seconds) in results.items():
        status = "passed" if code == 0 else f"FAILED (exit {code})"
        print(f"{backend:>10}: {status} in {seconds:.0f}s")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
