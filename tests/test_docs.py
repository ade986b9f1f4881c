"""Run every ```python block of README.md and docs/*.md, file by file, and
check the pages' links, the README's length and that CI runs its commands.

The blocks of one file run in order in one fresh namespace (a later block may
use what an earlier one defined), in a temporary working directory.  A block
whose fence is preceded by the line ``<!-- no-test -->`` (blank lines between
are allowed) is skipped: keep that for what cannot run here, such as reading
a dataset that must be downloaded.  Tracebacks point at the Markdown file's
own line numbers.  The docstrings' examples: tests/test_docstrings.py.
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
    "keras_sard.validation",
    "keras_sard.maps",
    "keras_sard.schedules",
    "keras_sard.training",
    "keras_sard.export.formats",
    "keras_sard.cli",
    "keras_sard.diagnostics",
    "keras_sard.batchnorm",
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


# ------------------------------------------------------------------ links

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _outside_code(text, inline=False):
    """The lines of `text` with fenced blocks blanked and inline code removed
    (kept, without its backticks, if `inline`)."""
    lines, inside = [], None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if inside is None and match:
            inside = match.group(2)[0] * len(match.group(2))
            lines.append("")
        elif inside is not None:
            if line.strip().startswith(inside) and not line.strip().strip(inside[0]):
                inside = None
            lines.append("")
        else:
            lines.append(line.replace("`", "") if inline else re.sub(r"`[^`]*`", "", line))
    return lines


def heading_anchors(text):
    """GitHub's anchors of the headings of a Markdown text."""
    anchors, seen = set(), {}
    for line in _outside_code(text, inline=True):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_heading_anchors_follow_github():
    text = "# A title\n## keras_sard.models\n## `examples/quickstart.py`\n## A title\n```\n# no\n```"
    assert heading_anchors(text) == {
        "a-title", "keras_sardmodels", "examplesquickstartpy", "a-title-1"}


def _raw_text(path):
    """The file's text with inline code kept (anchors come from raw headings)."""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("path", FILES, ids=[os.path.relpath(f, ROOT) for f in FILES])
def test_links_resolve(path):
    """Every relative link points at a file of the repository, and every
    ``#anchor`` at a heading of the page it names."""
    text = _raw_text(path)
    broken = []
    for number, line in enumerate(_outside_code(text), start=1):
        for match in _LINK.finditer(line):
            target = match.group(1) or match.group(2)
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(linked):
                broken.append(f"line {number}: {target} (no file {os.path.relpath(linked, ROOT)})")
            elif anchor and linked.endswith(".md") and anchor not in heading_anchors(_raw_text(linked)):
                broken.append(f"line {number}: {target} (no heading #{anchor})")
    assert not broken, f"{os.path.relpath(path, ROOT)}: " + "; ".join(broken)


# ------------------------------------------------------------ the front door

README_MAX_LINES = 150


def _readme_commands():
    """The README's first two ```bash blocks: the install-and-run commands."""
    text = _raw_text(os.path.join(ROOT, "README.md"))
    return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)[:2]


def test_readme_is_short():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        count = len(handle.read().splitlines())
    assert count <= README_MAX_LINES, (
        f"README.md has {count} lines (at most {README_MAX_LINES}): move reference material "
        "to a docs/ page and link it.")


def test_ci_runs_the_readme_commands_verbatim():
    commands = _readme_commands()
    assert [c.strip() for c in commands] == [
        "pip install -e . && python examples/quickstart.py",
        'pip install "torch==2.13.0" -e ".[dev]" && python tests/run_backends.py',
    ]
    # `|| exit 1` may follow: set -e does not stop on a failure left of `&&`.
    ci = [line.strip().removesuffix("|| exit 1").strip()
          for line in _raw_text(os.path.join(ROOT, ".ci", "run")).splitlines()]
    for command in commands:
        assert command.strip() in ci, (
            f".ci/run does not run the README's command {command.strip()!r} as written")
    bare, dev = (ci.index(c.strip()) for c in commands)
    check = next(i for i, line in enumerate(ci) if "tests/check_bare_install.py" in line)
    assert bare < check < dev, ".ci/run must check the bare install before installing the extras"
