"""What the benchmark scripts share: backend choice, compiling, timing, memory.

Each script runs on one Keras backend, chosen by ``--backend`` or
``KERAS_BACKEND`` before Keras is imported; ``--all-backends`` re-runs the
script once per backend in a subprocess.  Call `select_backend(argv)` before
importing keras.
"""

import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = Path(__file__).resolve().parents[1]


def add_backend_arguments(parser):
    parser.add_argument(
        "--backend", choices=BACKENDS, default=None,
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow).")
    parser.add_argument(
        "--all-backends", action="store_true",
        help="run this script once per backend, each in its own process.")
    parser.add_argument(
        "--no-jit", action="store_true",
        help="no XLA: TensorFlow runs a plain tf.function, JAX runs op by op.")


def apply_quick(args, argv, quick):
    """Under ``--quick``, set the smoke-run values in `quick` (a dict of
    argument names to values) on `args`, except those given on the command line."""
    if args.quick:
        given = {a.split("=")[0] for a in argv}
        for key, value in quick.items():
            if "--" + key.replace("_", "-") not in given:
                setattr(args, key, value)
    return args


def select_backend(args):
    """Set KERAS_BACKEND from the arguments and put this checkout first on the path."""
    backend = args.backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if backend not in BACKENDS:
        sys.exit(f"KERAS_BACKEND is {backend!r}; the benchmarks run on {BACKENDS}.")
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.function retracing notes
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # this checkout's keras_sard, not an installed one
    return backend


def run_all_backends(script, argv):
    """Re-run `script` with `argv` (minus --all-backends/--backend) per backend."""
    argv = list(argv)
    if "--all-backends" in argv:
        argv.remove("--all-backends")
    cleaned, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--backend":
            skip = True
            continue
        if arg.startswith("--backend="):
            continue
        cleaned.append(arg)
    failed = []
    for backend in BACKENDS:
        print(f"\n========== {backend} ==========", flush=True)
        code = subprocess.call([sys.executable, script, "--backend", backend, *cleaned])
        if code:
            failed.append(backend)
    if failed:
        print(f"\nfailed on: {', '.join(failed)}")
    return 1 if failed else 0


# ----------------------------------------------------------------------------
# Devices and compiling
# ----------------------------------------------------------------------------


def accelerator():
    """"gpu" where the active backend sees one, else "cpu"."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if backend == "jax":
        import jax

        return "gpu" if jax.default_backend() == "gpu" else "cpu"
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def describe_machine():
    cpus = os.cpu_count()
    return f"{accelerator()}, {cpus} CPU cores, {platform.processor() or platform.machine()}"


def compile_mode(jit):
    """How `compile_fn` runs functions on the active backend, in words."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return "XLA (tf.function(jit_compile=True))" if jit else "tf.function graph, no XLA"
    if backend == "jax":
        return "XLA (jax.jit)" if jit else "eager, op by op"
    return "eager under torch.no_grad (torch.compile not used)"


def compile_fn(fn, jit=True):
    """`fn` (tensors → tensors, no state change) compiled for the active backend,
    run without recording gradients."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit)
    if backend == "jax":
        import jax

        return jax.jit(fn) if jit else fn
    import torch

    def no_grad(*args):
        with torch.no_grad():
            return fn(*args)

    return no_grad


def compile_forward(model, jit=True):
    """`x → model(x, training=False)`, compiled; on JAX the weights are passed
    as arguments (`stateless_call`), not baked into the program as constants."""
    import keras

    if keras.backend.backend() != "jax":
        return compile_fn(lambda x: model(x, training=False), jit)
    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    forward = compile_fn(forward, jit)
    # The current values at each call: a training step elsewhere may have
    # replaced (donated) the arrays the variables held before.
    return lambda x: forward(
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        x,
    )


def sync(outputs):
    """Wait for `outputs` (copies them to host memory, which every backend waits on)."""
    import keras

    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)]


def interleaved_times(calls, repeats=5, warmup=2, log=None, times=None):
    """Wall times in seconds of each zero-argument call in `calls` (a dict
    name → call that waits for its own results): ``{name: [seconds, ...]}``,
    `repeats` each, after `warmup` untimed calls each (the first compiles).

    The calls take turns, round by round, so a load that comes and goes on a
    shared machine slows all of them alike instead of one.  `log(name,
    seconds)`, if given, hears of each warm-up call as it ends; `times`, if
    given, is the dict filled as calls end (what an interrupted run keeps).
    """
    times = {} if times is None else times
    for name, call in calls.items():
        for _ in range(warmup):
            start = time.perf_counter()
            call()
            if log is not None:
                log(name, time.perf_counter() - start)
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times.setdefault(name, []).append(time.perf_counter() - start)
    return times


def interleaved_medians(calls, repeats=5, warmup=2):
    """The median of each call's `interleaved_times`."""
    times = interleaved_times(calls, repeats, warmup)
    return {name: statistics.median(t) for name, t in times.items()}


def timed(fn, *args):
    """A zero-argument call of `fn(*args)` that waits for its results."""
    return lambda: sync(fn(*args))


def verdict(ok):
    return "PASS" if ok else "FAIL"


# ----------------------------------------------------------------------------
# Peak memory of one computation, measured in a fresh process
# ----------------------------------------------------------------------------

# glibc serves blocks from 1 MiB up with their own mmap and unmaps them on
# free (a fixed threshold also turns off glibc's adaptive one), so the
# resident set follows the live tensors instead of keeping freed heap.
PROBE_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


def _proc_status_kib(field):
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def _reset_peak_rss():
    """Reset the process's resident high-water mark (Linux ≥ 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_memory_bytes(fn, *args):
    """Peak memory that one call of the compiled `fn(*args)` adds above what is
    live before it, in bytes, and how it was measured.

    GPU: the backend's allocator statistics.  CPU: the resident-set high-water
    mark (VmHWM), reset after a warm-up call so compiling is not counted.
    TensorFlow keeps the memory it frees (a second call raises no mark), so
    there the first call is measured, compilation included; so is every
    backend where the mark cannot be reset (`resource.getrusage`'s ru_maxrss).
    Call it in a fresh process started with `PROBE_ENV`.
    """
    import keras

    backend = keras.backend.backend()
    if accelerator() == "gpu":
        if backend == "tensorflow":
            import tensorflow as tf

            sync(fn(*args))
            tf.config.experimental.reset_memory_stats("GPU:0")
            before = tf.config.experimental.get_memory_info("GPU:0")["current"]
            sync(fn(*args))
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] - before, "TF GPU allocator peak"
        if backend == "torch":
            import torch

            sync(fn(*args))
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            sync(fn(*args))
            return torch.cuda.max_memory_allocated() - before, "torch.cuda.max_memory_allocated"
        import jax

        device = jax.devices()[0]
        before = device.memory_stats()["bytes_in_use"]
        sync(fn(*args))  # the peak cannot be reset: this call includes compilation
        return device.memory_stats()["peak_bytes_in_use"] - before, "JAX peak_bytes_in_use"

    import gc
    import resource

    first_call = backend == "tensorflow"  # TF keeps what it frees: a 2nd call adds nothing
    if _reset_peak_rss():
        if not first_call:
            sync(fn(*args))
            gc.collect()
            _reset_peak_rss()
        before = _proc_status_kib("VmRSS")
        sync(fn(*args))
        how = "process RSS high-water mark"
        if first_call:
            how += ", first call (TensorFlow keeps freed memory): compilation included"
        return max(0, _proc_status_kib("VmHWM") - before) * 1024, how
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sync(fn(*args))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) * 1024, "ru_maxrss of the first call: compilation included"


def step_peak_memory(call):
    """Peak memory one more call of `call` (a zero-argument call that waits
    for its results, already warmed up) adds above what is live before it:
    ``(bytes or None, how)``.

    GPU: the allocator's peak (TensorFlow, PyTorch; JAX's cannot be reset:
    None).  CPU: the resident-set high-water mark (VmHWM), reset before the
    call; start the process with `PROBE_ENV` so freed blocks leave the
    resident set.  TensorFlow on CPU reuses memory it freed, so there the
    figure is a lower bound.
    """
    import gc

    import keras

    backend = keras.backend.backend()
    if accelerator() == "gpu":
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
            before = tf.config.experimental.get_memory_info("GPU:0")["current"]
            call()
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] - before, "TF GPU allocator peak"
        if backend == "torch":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            call()
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - before, "torch.cuda.max_memory_allocated"
        return None, "JAX's GPU peak cannot be reset"
    gc.collect()
    if not _reset_peak_rss():
        return None, "no resettable resident high-water mark"
    before = _proc_status_kib("VmRSS")
    call()
    how = "rise of the process's resident high-water mark during one call"
    if backend == "tensorflow":
        how += "; TensorFlow reuses memory it freed, so a lower bound"
    return max(0, _proc_status_kib("VmHWM") - before) * 1024, how


def run_probe(script, backend, probe_args):
    """Run `script --backend backend --probe ...` in a fresh process; returns its
    last stdout line (the probe prints its result there)."""
    env = dict(os.environ, **PROBE_ENV, KERAS_BACKEND=backend)
    result = subprocess.run(
        [sys.executable, script, "--backend", backend, *probe_args],
        env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(
            f"memory probe {probe_args} failed on {backend}:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


def mib(n):
    return n / 2**20
