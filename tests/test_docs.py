"""Run every ```python block of README.md and docs/*.md, file by file.

The blocks of one file run in order in one fresh namespace (a later block may
use what an earlier one defined), in a temporary working directory.  A block
whose fence is preceded by the line ``<!-- no-test -->`` (blank lines between
are allowed) is skipped: keep that for what cannot run here, such as reading
a dataset that must be downloaded.  Tracebacks point at the Markdown file's
own line numbers.
"""

import importlib
import os
import re
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_MARKER = "<!-- no-test -->"
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


def markdown_files():
    docs = os.path.join(ROOT, "docs")
    files = [os.path.join(ROOT, "README.md")]
    if os.path.isdir(docs):
        files += sorted(
            os.path.join(docs, name) for name in os.listdir(docs) if name.endswith(".md")
        )
    return [f for f in files if os.path.isfile(f)]


def python_blocks(text):
    """``[(first_line_number, code, skipped)]`` of the ```python blocks of `text`."""
    blocks = []
    lines = text.splitlines()
    previous = ""  # the last non-blank line outside a block
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        indent, fence, language = match.groups()
        start = index + 1
        index = start
        while index < len(lines) and not (
            lines[index].strip().startswith(fence[0] * len(fence))
            and not lines[index].strip().strip(fence[0])
        ):
            index += 1
        if language.lower() in ("python", "py"):
            body = [line[len(indent):] if line.startswith(indent) else line for line in lines[start:index]]
            code = textwrap.dedent("\n".join(body))
            blocks.append((start + 1, code, previous == SKIP_MARKER))
        previous = ""
        index += 1  # past the closing fence
    return blocks


FILES = markdown_files()


def test_python_blocks_are_found_and_markers_respected():
    text = "\n".join([
        "# Title",                      # 1
        "```python",                    # 2
        "a = 1",                        # 3
        "```",                          # 4
        SKIP_MARKER,                    # 5
        "",                             # 6
        "```python",                    # 7
        "download()",                   # 8
        "```",                          # 9
        "```bash",                      # 10
        "pip install x",                # 11
        "```",                          # 12
        "- a list item:",               # 13
        "  ```py",                      # 14
        "  if a:",                      # 15
        "      b = 2",                  # 16
        "  ```",                        # 17
        "````python",                   # 18
        "s = '```'",                    # 19
        "````",                         # 20
    ])
    assert python_blocks(text) == [
        (3, "a = 1", False),
        (8, "download()", True),
        (15, "if a:\n    b = 2", False),
        (19, "s = '```'", False),
    ]


@pytest.mark.parametrize("path", FILES, ids=[os.path.relpath(f, ROOT) for f in FILES])
def test_markdown_python_blocks_run(path, tmp_path, monkeypatch):
    with open(path, encoding="utf-8") as handle:
        blocks = [b for b in python_blocks(handle.read()) if not b[2]]
    if not blocks:
        pytest.skip(f"{os.path.relpath(path, ROOT)} has no python block to run")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for line, code, _ in blocks:
        # Leading newlines make tracebacks show the Markdown file's line numbers.
        compiled = compile("\n" * (line - 1) + code, path, "exec")
        exec(compiled, namespace)  # noqa: S102 - the documentation's own examples


DOCUMENTED_MODULES = (
    "keras_sard.distiller",
    "keras_sard.structure",
    "keras_sard.losses",
    "keras_sard.methods",
    "keras_sard.export",
    "keras_sard.metrics",
    "keras_sard.taps",
    "keras_sard.data",
    "keras_sard.data.unlabelled",
    "keras_sard.visualize",
    "keras_sard.callbacks",
)


def test_api_reference_names_every_public_name():
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as handle:
        text = handle.read()
    missing = [
        f"{module}.{name}"
        for module in DOCUMENTED_MODULES
        for name in importlib.import_module(module).__all__
        if not re.search(rf"`{re.escape(name)}[`(]", text)
    ]
    assert not missing, f"docs/api.md does not document {missing}"
