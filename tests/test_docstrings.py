"""Run the examples in keras_sard's docstrings: every ``>>>`` doctest and every
``Example::`` block.

Docstrings of every public module of keras_sard, and of the classes,
functions, methods and properties defined there (doctest's own search), are
collected.  Each docstring with ``>>>`` lines is one doctest (ELLIPSIS and
NORMALIZE_WHITESPACE on; ``# doctest: +SKIP`` skips a line).  Each
``Example::`` (or ``Examples::``) literal block is executed like a script,
in a fresh copy of its module's namespace, in a temporary working directory;
its comments (``# -> (1, 24, 24)``) are not checked.  Tracebacks point at the
module's own line numbers.

Keep examples tiny: this file runs on each backend (a few seconds of
training at most per example).
"""

import doctest
import importlib
import inspect
import os
import pkgutil
import re
import textwrap

import keras
import pytest

import keras_sard

BACKEND = keras.backend.backend()
_EXAMPLE = re.compile(r"^(\s*)Examples?::\s*$")

# Docstring examples known to fail, by test id, with the reason.  They sit in
# files owned by the `refactor` helper this phase (issue 17), who reorganises
# them; the coordinator clears each entry after merging that work.  An entry
# whose example passes fails the test (strict), so stale entries are noticed.
KNOWN_FAILURES = {
}

# Examples that pass but take minutes: too slow to run on every backend in the
# suite (this file should take seconds).  Measured on TensorFlow, 2 shared CPU
# cores.  Both are in refactor-owned files: shrink the example (fewer methods,
# one dataset, no XLA compile), then remove the entry.
TOO_SLOW = {
}


def _modules():
    """Public modules of keras_sard, importable on this backend."""
    others = {"tensorflow", "jax", "torch"} - {BACKEND}
    names = ["keras_sard"]
    for info in pkgutil.walk_packages(keras_sard.__path__, "keras_sard."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts):
            continue
        if parts[1] == "backend" and parts[-1].removesuffix("_steps") in others:
            continue  # keras_sard.backend.jax_steps imports jax: its backend only
        names.append(info.name)
    return sorted(names)


def example_blocks(docstring):
    """``[(line_index, code)]`` of the ``Example::`` blocks of a docstring.

    ``line_index`` is the 0-based index, in ``docstring``'s lines, of the
    block's first line.
    """
    lines = docstring.expandtabs().splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        match = _EXAMPLE.match(lines[index])
        index += 1
        if not match:
            continue
        indent = len(match.group(1))
        while index < len(lines) and not lines[index].strip():
            index += 1
        start = index
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            index += 1
        body = textwrap.dedent("\n".join(lines[start:index])).strip("\n")
        if body:
            blocks.append((start, body))
    return blocks


def _collect():
    finder = doctest.DocTestFinder(exclude_empty=False)
    doctests, blocks = [], []
    for name in _modules():
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            short = test.name.removeprefix("keras_sard.")
            if test.examples:
                doctests.append(pytest.param(test, id=short))
            for number, (index, code) in enumerate(example_blocks(test.docstring or "")):
                first = code.splitlines()[0].strip()
                blocks.append(pytest.param(test, module, first, code,
                                           id=f"{short}:{number + 1}"))
    return doctests, blocks


DOCTESTS, BLOCKS = _collect()


def _known_failure(request):
    test_id = request.node.callspec.id
    if test_id in TOO_SLOW:
        pytest.skip(f"too slow for a docstring example: {TOO_SLOW[test_id]}")
    if test_id in KNOWN_FAILURES:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_FAILURES[test_id], strict=True))


def test_example_blocks_are_found():
    docstring = textwrap.dedent("""\
        Summary.

        Example::

            a = 1

            b = a + 1
        Back to prose.

            Example::
                c = 3
        Run it::

            not an example
    """)
    assert example_blocks(docstring) == [(4, "a = 1\n\nb = a + 1"), (10, "c = 3")]
    assert DOCTESTS and BLOCKS


@pytest.mark.parametrize("test", DOCTESTS)
def test_doctest(test, tmp_path, monkeypatch, request):
    _known_failure(request)
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    output = []
    test.globs = dict(test.globs)  # a fresh copy of the module's namespace per run
    result = runner.run(test, out=output.append, clear_globs=True)
    assert result.failed == 0, "".join(output)


def _first_line(test, first):
    """The 1-based line of `first` (a block's first line) in the module's file."""
    try:
        with open(test.filename, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, TypeError):
        return 1
    for index in range(test.lineno or 0, len(lines)):
        if lines[index].strip() == first:
            return index + 1
    return 1


@pytest.mark.parametrize("test, module, first, code", BLOCKS)
def test_example_block(test, module, first, code, tmp_path, monkeypatch, request):
    _known_failure(request)
    monkeypatch.chdir(tmp_path)
    namespace = dict(vars(module))
    namespace["__name__"] = "__example__"
    line = _first_line(test, first)
    compiled = compile("\n" * (line - 1) + code, test.filename or module.__name__, "exec")
    exec(compiled, namespace)  # noqa: S102 - the docstring's own example
