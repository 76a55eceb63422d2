"""The README's "Many networks" section runs as written and prints what it says it prints."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Many networks")
    section = text[start:text.index("\n## ", start + 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _expected(code: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in code.splitlines()
            if line.startswith("print(") and "#" in line]


def test_the_section_shows_fit_many_the_search_and_the_ensemble():
    blocks = _blocks()
    assert len(blocks) == 3
    assert "fit_many" in blocks[0] and "GridSearchCV" in blocks[1]
    assert "MLPEnsembleClassifier" in blocks[2]


def test_the_blocks_print_what_the_readme_says():
    """One namespace for all blocks, as a reader would run them one after the other."""
    blocks = _blocks()
    if any("sklearn" in block for block in blocks):
        pytest.importorskip("sklearn")
        pytest.importorskip("scipy")
        from sklearn.exceptions import ConvergenceWarning
    namespace = {"__name__": "__readme__"}
    for code in blocks:
        with contextlib.redirect_stdout(io.StringIO()) as out, warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            exec(compile(code, str(README), "exec"), namespace)
        assert out.getvalue().splitlines() == _expected(code)
