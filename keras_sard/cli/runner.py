"""Running ``keras-sard``: parse, pick the backend, run the verb, report errors.

``--backend`` sets ``KERAS_BACKEND`` in this process before anything imports
Keras (the parser and the registries it reads import none; the verbs'
module, `keras_sard.cli.handlers`, is imported after).  Where Keras already
runs on another backend in this process (``main`` called from Python, say),
that is a one-line error.

Bad input, a bad data file included, ends in one line on stderr and exit
code 2.  A data file that fails while training, inside a ``tf.data`` map,
is found in TensorFlow's error (`keras_sard.data.errors.data_error_message`).
When the process is the command itself (``argv`` None: ``keras-sard``, an
example script), TensorFlow's C++ warnings are off unless
``TF_CPP_MIN_LOG_LEVEL`` says otherwise (each failing map call would print
a traceback), and after such an error the process ends at once
(``os._exit``): TensorFlow can hang for ever freeing a pipeline whose map
failed (nested parallel maps; about one run in three here, with or without
this module).
"""

import argparse
import importlib
import os
import sys

from keras_sard.cli.parser import UsageError, build_parser
from keras_sard.data.errors import DataError, data_error_message

__all__ = ["main", "run_script", "use_backend"]


def use_backend(backend):
    """Make Keras run on `backend` in this process: set ``KERAS_BACKEND``
    before Keras is imported; a UsageError if it already runs on another."""
    keras = sys.modules.get("keras")
    if keras is None:
        os.environ["KERAS_BACKEND"] = backend
        return
    current = keras.backend.backend()
    if current != backend:
        raise UsageError(f"--backend {backend}: Keras already runs on {current} in this "
                         f"process; set KERAS_BACKEND={backend} before Python starts instead.")


def _execute(parser, argv):
    program = argv is None  # this process is the command
    if program:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help (0) or a usage error argparse printed (2)
        return exit.code
    label = parser.prog
    if hasattr(parser, "verb_parsers"):
        label += f" {args.verb}"
    try:
        if getattr(args, "backend", None):
            use_backend(args.backend)
        handlers = importlib.import_module("keras_sard.cli.handlers")  # imports Keras
        try:
            handlers.VERBS[args.verb](args)
        except handlers.ExportMismatchError as error:
            print(f"{label}: error: {error}", file=sys.stderr, flush=True)
            return 1
    except Exception as error:
        # A data file named in the error, however deep (a tf.data map's
        # TensorFlow error included), else bad input of another kind.
        message = data_error_message(error)
        if message is None:
            if not isinstance(error, _BAD_INPUT):
                raise
            message = str(error).strip() or type(error).__name__
        print(f"{label}: error: {message}", file=sys.stderr, flush=True)
        if program and not isinstance(error, _BAD_INPUT + (DataError,)):
            _end_now(2)  # a tf.data pipeline failed: do not wait for TensorFlow to free it
        return 2
    return 0


_BAD_INPUT = (UsageError, ValueError, FileNotFoundError, NotADirectoryError)


def _end_now(code):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv=None):
    """Run ``keras-sard`` with `argv` (default: the command line); returns
    the exit code (0, 1 for an export that disagrees with Keras, 2 for bad
    input: a one-line ``keras-sard VERB: error: ...`` on stderr, which for a
    data file reads ``<file>: <what is wrong>``, found also when reading it
    failed inside tf.data during training; see the module docstring for
    what else happens then when `argv` is None).

    >>> main(["--help"])  # doctest: +ELLIPSIS
    usage: keras-sard [-h] ...
    0
    """
    return _execute(build_parser(), argv)


def run_script(verb, argv=None, *, description=None, **defaults):
    """One verb as a script of its own (the example scripts): its options,
    with `defaults` replacing the verb's, and `description` as its help."""
    parser = build_parser().verb_parsers[verb]
    parser.prog = os.path.basename(sys.argv[0]) if argv is None else verb
    parser.description = description or parser.description
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.set_defaults(verb=verb, **defaults)
    return _execute(parser, argv)
