"""fastprop's namespace: its submodules on first use, and no stray public names."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import fastprop


def test_public_names_are_all_or_submodules():
    public = {name for name in vars(fastprop) if not name.startswith("_")}
    allowed = set(fastprop.__all__) | set(fastprop._SUBMODULES)
    assert public <= allowed, sorted(public - allowed)
    for name in public - set(fastprop.__all__):
        assert isinstance(getattr(fastprop, name), types.ModuleType), name
    assert "version" not in vars(fastprop) and "PackageNotFoundError" not in vars(fastprop)


def test_dir_lists_all_and_the_submodules():
    assert dir(fastprop) == sorted(set(fastprop.__all__) | set(fastprop._SUBMODULES))
    for name in fastprop.__all__:
        assert hasattr(fastprop, name), name


def test_every_name_in_all_exists_and_star_import_brings_only_them():
    namespace: dict = {}
    exec("from fastprop import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(fastprop.__all__)


@pytest.mark.parametrize("name", ["sklearn", "export", "interop", "io", "optim", "reference"])
def test_submodule_after_a_plain_import(name):
    if name == "sklearn":
        pytest.importorskip("sklearn")
    code = (f"import fastprop\n"
            f"module = fastprop.{name}\n"
            f"assert module.__name__ == 'fastprop.{name}', module\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sklearn_estimators_after_a_plain_import():
    pytest.importorskip("sklearn")
    code = ("import fastprop\n"
            "clf = fastprop.sklearn.MLPClassifier(hidden_layer_sizes=(3,), max_iter=5)\n"
            "assert clf.get_params()['hidden_layer_sizes'] == (3,)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_attribute_still_raises_attribute_error():
    with pytest.raises(AttributeError, match=r"module 'fastprop' has no attribute 'version'"):
        fastprop.version  # noqa: B018
