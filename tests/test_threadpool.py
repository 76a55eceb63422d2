"""fastprop inside other people's thread pools: threadpoolctl sees and limits its threads, and
joblib's workers keep to the thread count joblib gives them."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastprop

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture
def two_threads():
    """fastprop at 2 threads for the test (whatever the machine's count), restored after."""
    before = fastprop.get_num_threads()
    fastprop.set_num_threads(2)
    yield
    fastprop.set_num_threads(before)


def _fastprop_entries(info):
    return [lib for lib in info if lib["internal_api"] == "fastprop"]


def test_threadpool_info_lists_fastprop(two_threads):
    (entry,) = _fastprop_entries(threadpoolctl.threadpool_info())
    assert entry["user_api"] == "fastprop" and entry["num_threads"] == 2
    assert entry["version"] == fastprop.__version__
    assert os.path.realpath(entry["filepath"]) == os.path.realpath(fastprop._core.__file__)


@pytest.mark.parametrize("kwargs", [{}, {"user_api": "fastprop"}])
def test_threadpool_limits_limits_fastprop(two_threads, kwargs):
    with threadpoolctl.threadpool_limits(limits=1, **kwargs):
        assert fastprop.get_num_threads() == 1
        (entry,) = _fastprop_entries(threadpoolctl.threadpool_info())
        assert entry["num_threads"] == 1
    assert fastprop.get_num_threads() == 2  # restored on exit


def test_blas_limits_leave_fastprop_alone(two_threads):
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert fastprop.get_num_threads() == 2


def test_controller_limits_fastprop(two_threads):
    controller = threadpoolctl.ThreadpoolController().select(internal_api="fastprop")
    with controller.limit(limits=1):
        assert fastprop.get_num_threads() == 1
    assert fastprop.get_num_threads() == 2


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_fastprop_alone_registers_the_controller():
    """A fresh interpreter: nothing but fastprop imported before threadpoolctl is asked."""
    out = _run("import fastprop\n"
               "from threadpoolctl import threadpool_info\n"
               "print(sorted(lib['internal_api'] for lib in threadpool_info()))")
    assert "'fastprop'" in out


def test_without_threadpoolctl_fastprop_imports_as_before():
    out = _run("import sys\n"
               "sys.modules['threadpoolctl'] = None  # as if it were not installed\n"
               "import fastprop, fastprop._threadpool as tp\n"
               "print(tp._registered, fastprop.get_num_threads() >= 1)")
    assert out == "False True"


def _worker_threads():
    import os

    import fastprop

    return fastprop.get_num_threads(), os.environ.get("OMP_NUM_THREADS")


def test_loky_workers_keep_to_the_thread_count_joblib_sets(monkeypatch):
    joblib = pytest.importorskip("joblib")
    monkeypatch.delenv("FASTPROP_NUM_THREADS", raising=False)  # else it would take precedence
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        seen = joblib.Parallel(n_jobs=2)(joblib.delayed(_worker_threads)() for _ in range(4))
    assert all(threads == 1 and omp == "1" for threads, omp in seen), seen


def test_loky_workers_default_thread_count_is_joblibs(monkeypatch):
    """Without inner_max_num_threads, joblib gives each of n_jobs workers cpu_count // n_jobs
    threads through OMP_NUM_THREADS, and fastprop follows."""
    joblib = pytest.importorskip("joblib")
    monkeypatch.delenv("FASTPROP_NUM_THREADS", raising=False)
    seen = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_worker_threads)() for _ in range(4))
    assert all(threads == int(omp) for threads, omp in seen), seen
    if "OMP_NUM_THREADS" not in os.environ:  # else the workers inherit the parent's
        assert {threads for threads, _ in seen} == {max(joblib.cpu_count() // 2, 1)}


def test_grid_search_in_parallel_gives_the_serial_results():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    from fastprop.sklearn import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16
    y = y[:600]
    grid = {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(16,), (32,)]}
    results = []
    for n_jobs in (1, 2):
        search = GridSearchCV(MLPClassifier(max_iter=15, random_state=0), grid, cv=3,
                              n_jobs=n_jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
        results.append(search.cv_results_["mean_test_score"])
    # one thread in each worker, two in the serial run: fastprop's sums are the same bits
    np.testing.assert_array_equal(results[0], results[1])
