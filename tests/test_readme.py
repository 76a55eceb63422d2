"""Every ```python block of README.md runs as written and prints what the README says.

Each block runs in a fresh interpreter in a temporary directory. A block that continues an
earlier one (``net.fit(X, Y, ...)`` in the Training section) gets the names it leaves to the
reader from SETUP, matched by the block's first line; a block that needs an optional package
that is not installed (onnx, skl2onnx, scipy, ...) is skipped. After a ``print(...)`` a
comment is what that line prints: the whole comment, or what follows its first ": ".
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
OPTIONAL = ("onnx", "onnxruntime", "skl2onnx", "onnxscript", "torch", "scipy", "sklearn", "tqdm")

_REGRESSION = """
import numpy as np
import fastprop
rng = np.random.default_rng(0)
X = rng.uniform(-1, 1, (256, 1)); Y = np.sin(3 * X)
net = fastprop.Network([1, 16, 1], "tanh", seed=0)
"""
_W2_DATA = """
import numpy as np
import fastprop
rng = np.random.default_rng(0)
X = rng.standard_normal((512, 64)).astype("float32")
Y = rng.standard_normal((512, 10)).astype("float32")
"""
# The names a block leaves to the reader, by the start of its first line.
SETUP = {
    "history = net.fit(X, Y, epochs=20": _REGRESSION,
    "net.fit(X, Y, 100, optimizer=\"adam\"": _REGRESSION,
    "net = fastprop.Network([1, 10, 1]": _REGRESSION,
    "clf = fastprop.Network([1, 16, 3]": _REGRESSION + """
labels = rng.integers(0, 3, 256)
""",
    "history = net.fit(X, Y, 500": _REGRESSION,
    "net = fastprop.Network([64, 64, 64, 10]": _W2_DATA,
    "opt = fastprop.optim.DPSGD(": _W2_DATA + """
net = fastprop.Network([64, 64, 64, 10], "sigmoid", bias=True, dtype="float32", seed=0)
""",
    "net.fit(X, Y, 100, lr=0.01, lr_schedule": _REGRESSION,
    "from scipy.optimize import minimize": _REGRESSION,
    "model = net.to_onnx(": _REGRESSION,
    "net.to_c(": _REGRESSION,
}


def blocks() -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    text = README.read_text(encoding="utf-8")
    return [(text[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S)]


def setup_for(code: str) -> str:
    first = code.lstrip().splitlines()[0]
    matches = [setup for start, setup in SETUP.items() if first.startswith(start)]
    assert len(matches) <= 1, first
    return matches[0] if matches else ""


def expected_prints(code: str) -> list[str]:
    """What each commented print line says it prints."""
    return [line.split("#", 1)[1].strip() for line in code.splitlines()
            if line.startswith("print(") and "#" in line]


def matches(printed: str, comment: str) -> bool:
    return printed == comment or (": " in comment and comment.split(": ", 1)[1] == printed)


def run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def missing_optional(stderr: str) -> str | None:
    found = re.search(r"(?:ModuleNotFoundError|ImportError): No module named '([\w.]+)'", stderr)
    if found and found[1].split(".")[0] in OPTIONAL:
        return found[1]
    found = re.search(r"pip install '?fastprop\[(\w+)\]", stderr)  # fastprop's own message
    return found[1] if found else None


BLOCKS = blocks()


def test_the_readme_has_blocks_and_claims():
    assert len(BLOCKS) >= 5
    assert sum(len(expected_prints(code)) for _, code in BLOCKS) >= 4


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_block_runs_and_prints_what_the_readme_says(tmp_path, line, code):
    result = run(setup_for(code) + code, tmp_path)
    if result.returncode != 0:
        package = missing_optional(result.stderr)
        if package:
            pytest.skip(f"README line {line} needs {package}, not installed")
    assert result.returncode == 0, f"README line {line}:\n{result.stderr[-3000:]}"
    expected = expected_prints(code)
    printed = result.stdout.splitlines()
    assert len(printed) == len(expected), (printed, expected)
    for out, comment in zip(printed, expected):
        assert matches(out, comment), f"README line {line} prints {out!r}, says {comment!r}"


def test_scikit_learns_own_estimator_does_what_the_readme_says(tmp_path):
    """The sentence after the estimator example: scikit-learn's MLPClassifier in its place."""
    pytest.importorskip("sklearn")
    text = README.read_text(encoding="utf-8")
    claim = re.search(r"own `MLPClassifier` in its place stops after (\d+) epochs, at "
                      r"([0-9.]+) too", text)
    assert claim, "the README no longer states scikit-learn's result"
    (code,) = [code for _, code in BLOCKS
               if "from fastprop.sklearn import MLPClassifier\n" in code]
    code = code.replace("from fastprop.sklearn import MLPClassifier",
                        "from sklearn.neural_network import MLPClassifier")
    result = run(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [f"{claim[1]} {claim[2]}"]
