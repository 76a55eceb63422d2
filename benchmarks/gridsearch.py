"""GridSearchCV over fastprop's MLPClassifier on digits: n_jobs=2 against n_jobs=1.

    python benchmarks/gridsearch.py [--repeats 5] [--sklearn]

Each repeat times one search with n_jobs=1 and one with n_jobs=2, alternated so that the
noise of a shared machine falls on both alike. The workers of n_jobs=2 are joblib's loky
processes: they are started (and import NumPy, scikit-learn and fastprop) by the first
parallel search, timed apart as "cold"; later searches reuse them. In a worker fastprop runs
the threads joblib gives it (OMP_NUM_THREADS = CPUs // n_jobs), so two workers on two CPUs
do not fight over them; with n_jobs=1 fastprop uses every CPU for its matrix products.
--sklearn times scikit-learn's own MLPClassifier the same way, for reference. On a machine
that other work keeps busy the times say little: there a process with more threads simply
gets a larger share of the CPUs; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import joblib
from sklearn import neural_network
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastprop
from fastprop.sklearn import MLPClassifier

GRID = {"mlpclassifier__hidden_layer_sizes": [(32,), (64,)],
        "mlpclassifier__alpha": [1e-4, 1e-3]}


def search(estimator, X, y, n_jobs: int) -> float:
    """Seconds for one GridSearchCV (4 candidates × 3 folds = 12 fits, then the refit)."""
    grid = GridSearchCV(make_pipeline(StandardScaler(), estimator), GRID, cv=3, n_jobs=n_jobs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sklearn", action="store_true",
                        help="also time scikit-learn's own MLPClassifier")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    contenders = {"fastprop": MLPClassifier(random_state=0)}
    if args.sklearn:
        contenders["sklearn"] = neural_network.MLPClassifier(random_state=0)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (load average "
          f"{os.getloadavg()[0]:.1f}); fastprop {fastprop.__version__} with "
          f"{fastprop.get_num_threads()} threads, joblib {joblib.__version__}; digits "
          f"{X.shape}, 4 candidates x 3 folds")
    for name, estimator in contenders.items():
        cold = search(estimator, X, y, n_jobs=2)  # starts the loky workers
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for n_jobs in (1, 2):
                times[n_jobs].append(search(estimator, X, y, n_jobs))
        one, two = statistics.median(times[1]), statistics.median(times[2])
        print(f"{name:8s} n_jobs=1: median {one:.2f} s  {[round(t, 2) for t in times[1]]}")
        print(f"{name:8s} n_jobs=2: median {two:.2f} s  {[round(t, 2) for t in times[2]]}  "
              f"(cold, starting the workers: {cold:.2f} s)")
        print(f"{name:8s} n_jobs=2 / n_jobs=1: {two / one:.2f}  (load average now "
              f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
