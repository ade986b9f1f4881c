"""Run the test suite once per Keras backend: TensorFlow, JAX and PyTorch.

Keras picks its backend when it is first imported, so each backend gets its
own pytest process.  Extra arguments go to pytest unchanged::

    python tests/run_backends.py                 # whole suite, three backends
    python tests/run_backends.py -k structure    # a subset
    KERAS_SARD_BACKENDS=jax python tests/run_backends.py
    KERAS_SARD_JOBS=3 python tests/run_backends.py   # the backends side by side

By default the backends run one after the other.  ``KERAS_SARD_JOBS=N`` runs
up to N side by side, each one's output kept in a log and printed whole when
it ends: worth it on a machine with more cores than one pytest process keeps
busy.  On 2 cores shared with other jobs it did not help (tests/test_docstrings.py
on the three backends: 158 s one at a time, 211 s side by side).  Exits
non-zero when any backend's run fails.
"""

import os
import subprocess
import sys
import tempfile
import time

BACKENDS = ("tensorflow", "jax", "torch")


def _jobs():
    value = os.environ.get("KERAS_SARD_JOBS", "1")
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        sys.exit(f"KERAS_SARD_JOBS must be a positive integer; got {value!r}.")
    return jobs


def main(argv):
    backends = os.environ.get("KERAS_SARD_BACKENDS", ",".join(BACKENDS))
    backends = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        sys.exit(f"KERAS_SARD_BACKENDS names unknown backends {unknown}; "
                 f"expected a comma-separated subset of {list(BACKENDS)}.")
    jobs = _jobs()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [sys.executable, "-m", "pytest", *argv]
    results = {}
    start = time.time()
    if jobs == 1 or len(backends) == 1:
        for backend in backends:
            env = dict(os.environ, KERAS_BACKEND=backend)
            print(f"\n========== KERAS_BACKEND={backend} ==========", flush=True)
            begin = time.time()
            code = subprocess.call(command, cwd=root, env=env)
            results[backend] = (code, time.time() - begin)
    else:
        results = _run_side_by_side(command, backends, jobs, root)
    print("\n========== summary ==========")
    for backend, (code, seconds) in results.items():
        status = "passed" if code == 0 else f"FAILED (exit {code})"
        print(f"{backend:>10}: {status} in {seconds:.0f}s")
    print(f"{'all':>10}: {time.time() - start:.0f}s wall ({min(jobs, len(backends))} at a time)")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


def _run_side_by_side(command, backends, jobs, root):
    """Run up to `jobs` backends at once; print each one's log when it ends."""
    waiting, running, results = list(backends), {}, {}
    print(f"running {', '.join(backends)} side by side ({jobs} at a time); "
          "each backend's output follows when it ends", flush=True)
    while waiting or running:
        while waiting and len(running) < jobs:
            backend = waiting.pop(0)
            log = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
            env = dict(os.environ, KERAS_BACKEND=backend)
            process = subprocess.Popen(command, cwd=root, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
            running[backend] = (process, log, time.time())
        time.sleep(0.5)
        for backend, (process, log, begin) in list(running.items()):
            if process.poll() is None:
                continue
            del running[backend]
            results[backend] = (process.returncode, time.time() - begin)
            log.seek(0)
            print(f"\n========== KERAS_BACKEND={backend} ==========", flush=True)
            sys.stdout.write(log.read())
            sys.stdout.flush()
            log.close()
    return {backend: results[backend] for backend in backends}


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
