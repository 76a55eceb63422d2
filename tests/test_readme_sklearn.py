"""The README's scikit-learn section runs as written and prints what it says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

README = Path(__file__).resolve().parent.parent / "README.md"


def _section() -> str:
    """The README's paragraph on fastprop.sklearn, up to the next heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index("**scikit-learn**: `fastprop.sklearn.")
    return text[start:text.index("\n## ", start)]


def _blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _run(code: str) -> list[str]:
    """What the code prints, line by line."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    return out.getvalue().splitlines()


def _expected(code: str) -> list[str]:
    """The comments after the print calls: what the README says each prints."""
    return [line.split("#", 1)[1].strip() for line in code.splitlines()
            if line.startswith("print(") and "#" in line]


def test_the_section_has_the_estimator_example():
    blocks = _blocks(_section())
    assert blocks and all("fastprop.sklearn" in block for block in blocks)
    assert all(_expected(block) for block in blocks)


@pytest.mark.parametrize("index", range(len(_blocks(_section()))))
def test_each_block_prints_what_the_readme_says(index):
    code = _blocks(_section())[index]
    assert _run(code) == _expected(code)


def test_sklearns_own_estimator_prints_what_the_readme_says():
    """The sentence after the example: scikit-learn's MLPClassifier in fastprop's place."""
    section = _section()
    claim = re.search(r"stops after (\d+) epochs, at ([0-9.]+) too", section)
    assert claim, "the README no longer states scikit-learn's result"
    code = _blocks(section)[0].replace("from fastprop.sklearn import MLPClassifier",
                                       "from sklearn.neural_network import MLPClassifier")
    assert "sklearn.neural_network" in code
    assert _run(code) == [f"{claim[1]} {claim[2]}"]
