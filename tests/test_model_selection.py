"""fastprop.sklearn.GridSearchCV / RandomizedSearchCV: scikit-learn's scores, trained at once."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from sklearn import model_selection as skms  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import fastprop.sklearn as fs  # noqa: E402
from fastprop import model_selection  # noqa: E402


@pytest.fixture
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16, y[:400]


@pytest.fixture
def taken(monkeypatch):
    """For each fit of a search's loop that had networks trained ahead: whether it took one
    (True) or trained itself (False)."""
    seen: list[bool] = []
    original = fs._take_trained

    def spy(*args):
        active = getattr(model_selection._ahead, "queue", None) is not None
        took = original(*args)
        if active:
            seen.append(took)
        return took

    monkeypatch.setattr(fs, "_take_trained", spy)
    return seen


SCORE_KEYS = ("mean_test_score", "std_test_score", "rank_test_score")


def assert_same_results(a, b, X):
    results_a, results_b = a.cv_results_, b.cv_results_
    split_keys = [k for k in results_a if k.startswith("split") and k.endswith("_score")]
    assert split_keys
    for key in (*SCORE_KEYS, *split_keys):
        assert np.array_equal(results_a[key], results_b[key], equal_nan=True), key
    assert results_a["params"] == results_b["params"]
    assert a.best_params_ == b.best_params_ and a.best_index_ == b.best_index_
    assert np.array_equal(a.best_estimator_.predict(X), b.best_estimator_.predict(X))


def run_both(search, estimator, grid, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = getattr(fs, search)(estimator, grid, **kwargs).fit(X, y)
        theirs = getattr(skms, search)(estimator, grid, n_jobs=1, **kwargs).fit(X, y)
    return ours, theirs


def test_grid_search_scores_equal_scikit_learns(digits, taken):
    X, y = digits
    estimator = fs.MLPClassifier(max_iter=8, random_state=0, batch_size=32)
    grid = {"hidden_layer_sizes": [(8,), (16, 8)], "learning_rate_init": [1e-3, 1e-2],
            "solver": ["adam", "sgd"], "dtype": ["float64", "float32"]}
    ours, theirs = run_both("GridSearchCV", estimator, grid, X, y, cv=3)
    assert_same_results(ours, theirs, X)
    assert taken == [True] * 48  # 16 candidates × 3 folds, all from one fit_many call


def test_regressor_with_early_stopping_and_multimetric(digits, taken):
    X, y = digits
    y = y.astype(float) + 0.1 * X[:, 20]
    estimator = fs.MLPRegressor(max_iter=10, random_state=1, early_stopping=True,
                                n_iter_no_change=2)
    grid = {"alpha": [1e-4, 1e-1], "activation": ["tanh", "relu"]}
    ours, theirs = run_both("GridSearchCV", estimator, grid, X, y, cv=2,
                            scoring=["r2", "neg_mean_squared_error"], refit="r2",
                            return_train_score=True)
    for key in theirs.cv_results_:
        if "score" in key and "time" not in key:
            assert np.array_equal(ours.cv_results_[key], theirs.cv_results_[key]), key
    assert ours.best_params_ == theirs.best_params_
    assert taken.count(True) == 8


def test_randomized_search_scores_equal_scikit_learns(digits, taken):
    X, y = digits
    scipy_stats = pytest.importorskip("scipy.stats")
    estimator = fs.MLPClassifier(hidden_layer_sizes=(12,), max_iter=6, random_state=2)
    distributions = {"learning_rate_init": scipy_stats.loguniform(1e-4, 1e-1),
                     "alpha": [1e-5, 1e-3]}
    ours, theirs = run_both("RandomizedSearchCV", estimator, distributions, X, y, cv=3,
                            n_iter=5, random_state=0)
    assert_same_results(ours, theirs, X)
    assert taken.count(True) == 15


def test_pipeline_steps_fitted_per_fold(digits, taken):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), fs.MLPClassifier(max_iter=5, random_state=0))
    grid = {"mlpclassifier__hidden_layer_sizes": [(8,), (24,)]}
    ours, theirs = run_both("GridSearchCV", pipe, grid, X, y, cv=3)
    assert_same_results(ours, theirs, X)
    assert taken == [True] * 6


def test_sample_weight_and_lbfgs_fall_back_per_fit(digits, taken):
    X, y = digits
    w = np.linspace(0.5, 2.0, len(X))
    estimator = fs.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    grid = {"solver": ["adam", "lbfgs"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = fs.GridSearchCV(estimator, grid, cv=2).fit(X, y, sample_weight=w)
        theirs = skms.GridSearchCV(estimator, grid, cv=2).fit(X, y, sample_weight=w)
    assert_same_results(ours, theirs, X)
    # adam's two folds trained ahead; lbfgs' (SciPy's optimiser) fitted as usual.
    assert taken == [True, True, False, False]


def test_diverging_candidate_gets_error_score(digits, taken):
    X, y = digits
    estimator = fs.MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                                solver="sgd", alpha=0.0)
    grid = {"learning_rate_init": [1e-3, 1e200]}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "One or more of the test scores", UserWarning)
        with pytest.warns(FitFailedWarning, match="FloatingPointError"):
            ours, theirs = run_both("GridSearchCV", estimator, grid, X, y.astype(float), cv=2)
    assert np.isnan(ours.cv_results_["mean_test_score"][1])
    assert_same_results(ours, theirs, X)


def test_other_estimators_are_scikit_learns_search(digits):
    X, y = digits
    ours, theirs = run_both("GridSearchCV", Ridge(), {"alpha": [0.1, 1.0]}, X, y, cv=3)
    assert_same_results(ours, theirs, X)
    assert getattr(model_selection._ahead, "queue", None) is None


def test_same_objects_from_both_modules():
    assert fs.GridSearchCV is model_selection.GridSearchCV
    assert fs.cross_validate is model_selection.cross_validate
    assert issubclass(fs.RandomizedSearchCV, skms.RandomizedSearchCV)


def test_cross_validate_and_score_equal_scikit_learns(digits, taken):
    X, y = digits
    estimator = make_pipeline(StandardScaler(),
                              fs.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5,
                                               random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = fs.cross_validate(estimator, X, y, cv=4, scoring=["accuracy", "f1_macro"],
                                 return_train_score=True)
        theirs = skms.cross_validate(estimator, X, y, cv=4, scoring=["accuracy", "f1_macro"],
                                     return_train_score=True)
        score = fs.cross_val_score(estimator, X, y, cv=4)
    for key in theirs:
        if "time" not in key:
            assert np.array_equal(ours[key], theirs[key]), key
    assert np.array_equal(score, theirs["test_accuracy"])
    assert taken == [True] * 8  # 4 folds each for cross_validate and cross_val_score


def test_a_splitter_seeded_by_a_random_state_object_draws_scikit_learns_folds(digits, taken):
    X, y = digits
    estimator = fs.MLPClassifier((8,), max_iter=4, random_state=0)
    grid = {"learning_rate_init": [1e-3, 1e-2]}

    def cv():
        return skms.KFold(3, shuffle=True, random_state=np.random.RandomState(0))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = fs.GridSearchCV(estimator, grid, cv=cv()).fit(X, y)
        theirs = skms.GridSearchCV(estimator, grid, cv=cv()).fit(X, y)
    assert_same_results(ours, theirs, X)
    assert taken == [True] * 6  # the fits trained ahead were those of scikit-learn's folds


def test_an_estimator_seeded_by_a_random_state_object_is_not_trained_twice(digits, taken):
    X, y = digits
    estimator = fs.MLPClassifier((8,), max_iter=4, random_state=np.random.RandomState(0))
    ours, theirs = run_both("GridSearchCV", estimator, {"alpha": [1e-4, 1e-2]}, X, y, cv=2)
    assert_same_results(ours, theirs, X)
    assert taken == [False] * 4  # none trained ahead, so none trained twice


def test_fits_trained_ahead_in_chunks_of_bounded_memory(digits, taken, monkeypatch):
    X, y = digits
    calls = []
    original = model_selection._run_here

    def counting(pending):
        calls.append(len(pending))
        return original(pending)

    monkeypatch.setattr(model_selection, "_run_here", counting)
    monkeypatch.setattr(model_selection, "_CHUNK_BYTES", 1)  # every fit a chunk of its own
    estimator = fs.MLPClassifier((8,), max_iter=4, random_state=0)
    grid = {"learning_rate_init": [1e-3, 1e-2]}
    ours, theirs = run_both("GridSearchCV", estimator, grid, X, y, cv=3)
    assert_same_results(ours, theirs, X)
    assert calls == [1] * 6 and taken == [True] * 6


@pytest.mark.parametrize("n_jobs, error", [(0, ValueError), ("two", (TypeError, ValueError)),
                                           (1.5, (TypeError, ValueError))])
def test_n_jobs_is_checked_though_the_fits_trained_ahead_ignore_it(digits, n_jobs, error):
    X, y = digits
    estimator = fs.MLPClassifier((4,), max_iter=2)
    with pytest.raises(error, match="n_jobs"):
        fs.GridSearchCV(estimator, {"alpha": [1e-4]}, n_jobs=n_jobs).fit(X, y)
    with pytest.raises(error, match="n_jobs"):
        fs.cross_validate(estimator, X, y, n_jobs=n_jobs)


def test_cross_val_score_takes_only_its_own_arguments(digits):
    X, y = digits
    with pytest.raises(TypeError, match="return_train_score"):
        fs.cross_val_score(fs.MLPClassifier((4,), max_iter=2), X, y, return_train_score=True)


class _RegressorFeature(TransformerMixin, BaseEstimator):
    """A Pipeline step that fits a fastprop estimator of its own (a stacked feature)."""

    def __init__(self, hidden=4):
        self.hidden = hidden

    def fit(self, X, y=None):
        self.model_ = fs.MLPRegressor(hidden_layer_sizes=(self.hidden,), max_iter=3,
                                      random_state=0)
        self.model_.fit(X, y.astype(float))
        return self

    def transform(self, X):
        return np.column_stack([X, self.model_.predict(X)])


def test_a_pipeline_step_that_fits_a_fastprop_estimator_of_its_own(digits, taken):
    from sklearn.pipeline import Pipeline

    X, y = digits
    pipe = Pipeline([("feature", _RegressorFeature()),
                     ("mlp", fs.MLPClassifier((8,), max_iter=3, random_state=0))])
    grid = {"mlp__alpha": [1e-4, 1e-2], "feature__hidden": [4, 6]}
    ours, theirs = run_both("GridSearchCV", pipe, grid, X, y, cv=2, error_score="raise")
    assert_same_results(ours, theirs, X)
    assert taken.count(True) == 8  # the step's own fits took none of the networks'


def test_a_pipeline_step_failing_on_one_fold_leaves_the_other_fits_taken(digits, taken):
    from sklearn.exceptions import FitFailedWarning
    from sklearn.preprocessing import FunctionTransformer

    X, y = digits

    def refuses_the_first_fold(Z):
        if len(Z) == 150:
            raise ValueError("this fold is refused")
        return Z

    splits = [(np.arange(0, n), np.arange(300, 400)) for n in (150, 160, 170)]
    pipe = make_pipeline(FunctionTransformer(refuses_the_first_fold),
                         fs.MLPClassifier((8,), max_iter=3, random_state=0))
    grid = {"mlpclassifier__alpha": [1e-4, 1e-2]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.filterwarnings("ignore", "One or more of the test scores are non-finite")
        ours, theirs = run_both("GridSearchCV", pipe, grid, X, y, cv=splits)
    assert_same_results(ours, theirs, X)
    assert taken == [True] * 4  # 2 candidates × the 2 folds that train: none twice


def test_a_folds_data_is_counted_once_in_a_chunk(digits, taken, monkeypatch):
    X, y = digits
    calls = []
    original = model_selection._run_here
    monkeypatch.setattr(model_selection, "_run_here",
                        lambda pending: (calls.append(len(pending)), original(pending))[1])
    # A fold's rows (267 × 64 float64: 137 kB) are more than the budget, the nine networks
    # (6 × 160 parameters of 8 bytes each) less: shared rows are not counted as the fits' own.
    monkeypatch.setattr(model_selection, "_CHUNK_BYTES", 100_000)
    estimator = fs.MLPClassifier((2,), max_iter=2, random_state=0)
    ours, theirs = run_both("GridSearchCV", estimator, {"alpha": [1e-4, 1e-3, 1e-2]}, X, y,
                            cv=3)
    assert_same_results(ours, theirs, X)
    assert calls == [9] and taken == [True] * 9


def test_a_chunks_networks_are_freed_before_the_next_chunk_trains(digits, monkeypatch):
    """What keeps a search's memory to about one chunk: once scikit-learn's loop has scored
    the fits of a chunk, nothing of fastprop's holds their networks."""
    import gc
    import weakref

    X, y = digits
    networks, alive = [], []
    original = model_selection._run_here

    def run(pending):
        gc.collect()
        alive.append(sum(ref() is not None for ref in networks))
        original(pending)
        networks.extend(weakref.ref(final._net) for _, final, _ in pending)

    monkeypatch.setattr(model_selection, "_run_here", run)
    # 6 × 160 parameters of 8 bytes a fit: three fits reach the budget, so three chunks.
    monkeypatch.setattr(model_selection, "_CHUNK_BYTES", 20_000)
    estimator = fs.MLPClassifier((2,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fs.GridSearchCV(estimator, {"alpha": [1e-4, 1e-3, 1e-2]}, cv=3, refit=False).fit(X, y)
    assert len(networks) == 9 and alive == [0, 0, 0]


def test_each_fit_time_holds_its_own_training(digits):
    """A fold's fit time holds at least its network's training (the core's clock, in its
    History): not the first fold the whole call and the others none."""
    X, y = digits
    estimator = fs.MLPClassifier((32,), max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = fs.cross_validate(estimator, X, y, cv=4, return_estimator=True)
    trained = np.array([e._net.history.time[-1] for e in results["estimator"]])
    assert np.all(trained > 0)
    assert np.all(results["fit_time"] >= trained), (results["fit_time"], trained)


def test_a_searchs_mean_fit_times_hold_each_candidates_training(digits, monkeypatch):
    X, y = digits
    seconds = []  # each fit's training, in the loop's order (one chunk: the order trained)
    original = model_selection._complete

    def spy(trained, final, plan):
        original(trained, final, plan)
        seconds.append(trained.state["_net"].history.time[-1])

    monkeypatch.setattr(model_selection, "_complete", spy)
    estimator = fs.MLPClassifier((32,), max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = fs.GridSearchCV(estimator, {"alpha": [1e-4, 1e-3, 1e-2]}, cv=3,
                                 refit=False).fit(X, y)
    own = np.array(seconds).reshape(3, 3).mean(axis=1)
    assert np.all(own > 0)
    assert np.all(search.cv_results_["mean_fit_time"] >= own)


@pytest.mark.parametrize("first", ["fastprop", "ridge"])
def test_a_grid_that_puts_another_estimator_last_in_a_pipeline(digits, taken, first):
    """Its fits go to scikit-learn's loop alone, the fastprop ones are still trained ahead,
    and the results are scikit-learn's."""
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    network = fs.MLPClassifier((8,), max_iter=5, random_state=0)
    other = LogisticRegression(max_iter=50)
    final = [network, other] if first == "fastprop" else [other, network]
    base = Pipeline([("scale", StandardScaler()), ("m", network)])
    ours, theirs = run_both("GridSearchCV", base, {"m": final}, X, y, cv=3)
    assert_same_results(ours, theirs, X)
    assert taken.count(True) == 3  # the network's three folds, and the refit when it won


def test_a_pipelines_steps_before_the_network_count_once_in_its_fit_time(digits):
    """The loop's Pipeline.fit runs and times them; the seconds spent ahead are the
    network's alone."""
    import time

    class Slow(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            time.sleep(0.2)
            return self

        def transform(self, X):
            return X

    X, y = digits
    pipeline = make_pipeline(Slow(), fs.MLPClassifier((4,), max_iter=2, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_time = fs.cross_validate(pipeline, X, y, cv=3)["fit_time"]
    assert np.all(fit_time >= 0.2) and np.all(fit_time < 0.35), fit_time  # not 0.4: twice


def test_networks_stepped_together_share_their_clock_in_the_fit_times():
    """A lane group's networks have one clock, the group's: each fit is given its share."""
    from types import SimpleNamespace

    class Final:
        def __init__(self):
            self._net = SimpleNamespace(history=SimpleNamespace(time=np.array([1.0, 2.0])))

    trained = model_selection._Trained({}, None, None, None, Final)
    plan = SimpleNamespace(end=lambda: None, job=SimpleNamespace(lanes=4))
    model_selection._complete(trained, Final(), plan)
    assert 0.5 <= trained.seconds < 0.6
    alone = model_selection._Trained({}, None, None, None, Final)
    model_selection._complete(alone, Final(), SimpleNamespace(end=lambda: None,
                                                              job=SimpleNamespace(lanes=0)))
    assert 2.0 <= alone.seconds < 2.1


class _Refusing(TransformerMixin, BaseEstimator):
    """A step that fails on every fold when told to: its candidates never reach the network."""

    def __init__(self, fail=False):
        self.fail = fail

    def fit(self, X, y=None):
        if self.fail:
            raise ValueError("refused")
        return self

    def transform(self, X):
        return X


def test_many_fits_failing_before_the_network_leave_the_others_taken(digits, taken):
    """More failed fits in a row than the lookahead: known ahead, skipped without it."""
    from sklearn.exceptions import FitFailedWarning

    X, y = digits
    pipe = Pipeline([("f", _Refusing()), ("m", fs.MLPClassifier((8,), max_iter=3,
                                                                 random_state=0))])
    grid = {"f__fail": [True, False], "m__alpha": [1e-4, 1e-3]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.filterwarnings("ignore", "One or more of the test scores are non-finite")
        ours, theirs = run_both("GridSearchCV", pipe, grid, X, y, cv=6)
    assert_same_results(ours, theirs, X)
    assert taken[:12] == [True] * 12  # every fold of the two candidates that train


def test_a_step_that_failed_ahead_only_costs_one_fit(digits, taken):
    """A step before the network that fails when the fits are prepared but not in the loop
    (its behaviour depends on state): that one fit trains in the loop, the others are taken
    as trained."""
    calls = []

    class FailsOnce(TransformerMixin, BaseEstimator):
        def __init__(self, scale=1.0):
            self.scale = scale

        def fit(self, X, y=None):
            calls.append(1)
            if len(calls) == 2:  # the first fit prepared ahead (the first call is the loop's)
                raise RuntimeError("second call")
            return self

        def transform(self, X):
            return X * self.scale

    X, y = digits
    pipe = Pipeline([("f", FailsOnce()), ("m", fs.MLPClassifier((8,), max_iter=3,
                                                                 random_state=0))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fs.GridSearchCV(pipe, {"f__scale": [1.0, 2.0]}, cv=3, refit=False).fit(X, y)
    assert taken == [False] + [True] * 5


def test_a_step_that_works_in_place_leaves_the_fits_taken(digits, taken):
    """StandardScaler(copy=False) scales what it is given: each fit prepared ahead gets its
    own copy of the fold, so the candidates after the first still match the loop's."""
    X, y = digits
    pipe = make_pipeline(StandardScaler(copy=False),
                         fs.MLPClassifier((8,), max_iter=3, random_state=0))
    ours, theirs = run_both("GridSearchCV", pipe, {"mlpclassifier__alpha": [1e-4, 1e-3, 1e-2]},
                            X, y, cv=3)
    assert_same_results(ours, theirs, X)
    assert taken[:9] == [True] * 9


def test_warnings_of_fits_trained_ahead_point_where_the_fits_own_would(digits):
    """At the loop's call of fit, as scikit-learn's own search over the same estimator shows
    them (not at fastprop's internals, each as a warning of its own)."""
    X, y = digits
    estimator = fs.MLPClassifier((8,), max_iter=2, random_state=0)
    places = {}
    for name, search in (("ours", fs.GridSearchCV), ("theirs", skms.GridSearchCV)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            search(estimator, {"alpha": [1e-4, 1e-3]}, cv=2, refit=False).fit(X, y)
        places[name] = {(w.filename, w.lineno) for w in caught
                        if issubclass(w.category, ConvergenceWarning)}
    assert places["ours"] == places["theirs"] and len(places["ours"]) == 1, places
