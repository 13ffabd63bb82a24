"""Every Python example in the docs and the README runs, as CI runs it.

``.. testcode::`` blocks are run by Sphinx's doctest builder (``nox -s
docs``). Here: every ``.. code-block:: python`` in ``docs/`` and every
```` ```python ```` block in the README and the docs' Markdown pages. A block
is either a whole program (it calls ``trio.run``: it is started, must print
a line, and must exit 0 on SIGINT, as a service would) or a pytest file (it
defines ``test_`` functions: they must pass under the plugin, with
``trio_mode``). A block that is neither would be an example nobody runs:
that fails here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 60

_RST_BLOCK = re.compile(
    r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", re.MULTILINE
)
_MD_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _examples() -> list[tuple[str, str]]:
    found = []
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.*"))]
    for page in pages:
        text = page.read_text()
        if page.suffix == ".rst":
            blocks = [textwrap.dedent(b) for b in _RST_BLOCK.findall(text)]
        elif page.suffix == ".md":
            blocks = _MD_BLOCK.findall(text)
        else:
            continue
        for i, block in enumerate(blocks, 1):
            found.append((f"{page.name}#{i}", block))
    return found


EXAMPLES = _examples()


def test_the_docs_have_examples_to_run() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_an_example_runs(where: str, code: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if re.search(r"^(async )?def test_", code, re.MULTILINE):
        (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
        (tmp_path / "test_example.py").write_text(code)
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=LIMIT,
            env=env,
        )
        assert out.returncode == 0, f"{where}:\n{out.stdout}\n{out.stderr}"
        assert " passed" in out.stdout
        return
    assert "trio.run(" in code, (
        f"{where} is neither a whole program nor a test file, so nothing runs "
        "it: make it one, or a .. testcode:: block"
    )
    script = tmp_path / "example.py"
    script.write_text(code)
    with subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # it is up and says so
            assert first, (
                f"{where} printed nothing: {proc.stderr.read() if proc.stderr else ''}"
            )
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=LIMIT)
        finally:
            proc.kill()
    assert proc.returncode == 0, f"{where} exited {proc.returncode}:\n{err}"
