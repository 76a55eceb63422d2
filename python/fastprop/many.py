"""fastprop.fit_many: many networks trained in one call of the core, spread over its threads."""

from __future__ import annotations

import warnings
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _core, optim
from ._progress import ManyProgress
from ._sparse import is_sparse
from ._validate import check_bool, check_choice, check_lr, message, typed
from .history import History
from .network import Network

__all__ = ["fit_many", "FitManyResult"]

_ERRORS = ("warn", "raise", "ignore")


class FitManyResult(list):
    """What :func:`fit_many` returns: the :class:`~fastprop.History` of every network, in
    the order of ``networks`` (each also kept in its network's ``history``).

    Attributes
    ----------
    stops : list of str
        Why each network stopped: "done", "early_stopping", "callback", "converged",
        "non_finite" (its loss or gradient became NaN or infinite: its parameters are the
        last finite ones), "error" (its callback raised; see ``errors``) or "interrupted"
        (Ctrl-C).
    errors : dict of int to BaseException
        For each network that failed (stop "non_finite" or "error"), the exception its own
        ``fit`` would have raised.
    lanes : list of int
        For each network, how many networks (itself included) were stepped together with it
        in SIMD lanes, or 0 when it was trained alone (see the README's "Many networks").
    """

    stops: list[str]
    errors: dict[int, BaseException]
    lanes: list[int]

    @property
    def failed(self) -> list[int]:
        """The positions of the networks that stopped on a non-finite loss or an error."""
        return sorted(self.errors)


# Arguments whose one value is itself an array (of rows) or a tuple (of hyperparameters): a
# NumPy array or a tuple of numbers given for the others is a per-network list mistyped.
_ARRAY_VALUED = frozenset({"X", "Y", "indices", "sample_weight"})
_TUPLE_VALUED = frozenset({"betas", "etas", "step_sizes", "validation_data"})


def _per_network(value: Any, name: str, n: int) -> list[Any]:
    """A list of n values: a list is one value per network (its length checked), anything
    else is one value for all."""
    if name == "indices" and isinstance(value, tuple) and not all(map(np.isscalar, value)):
        hint = (" (np.nonzero returns a tuple: for one index array for every network, pass "
                "np.flatnonzero(mask))") if len(value) == 1 else ""
        raise TypeError(f"{name}: one index array per network goes in a list, got a tuple of "
                        f"{len(value)} arrays{hint}")
    if name not in _ARRAY_VALUED and (
            (isinstance(value, np.ndarray) and value.ndim == 1)
            or (name not in _TUPLE_VALUED and isinstance(value, tuple) and value
                and all(isinstance(v, (int, float, np.number)) for v in value))):
        kind, fix = (("a NumPy array", ".tolist()") if isinstance(value, np.ndarray)
                     else ("a tuple", "list(...)"))
        raise TypeError(f"{name}: one value per network goes in a list, got {kind} of "
                        f"{len(value)} (pass {fix} of it); one value for all networks is a "
                        f"number")
    if isinstance(value, list):
        if len(value) != n:
            raise ValueError(f"{name}: a list gives one value per network, so it must have "
                             f"{n} entries (one per network), got {len(value)}")
        return value
    return [value] * n


def fit_many(
    networks: Sequence[Network],
    X: ArrayLike | list[ArrayLike],
    Y: ArrayLike | list[ArrayLike],
    epochs: int | list[int],
    lr: float | None | list[float | None] = None,
    *,
    indices: ArrayLike | None | list[ArrayLike | None] = None,
    errors: str = "warn",
    verbose: bool = False,
    callback: Callable[[int, dict[str, Any]], Any] | None | list[Any] = None,
    **fit_arguments: Any,
) -> FitManyResult:
    """Train several networks in one native call, spread over the core's threads.

    Every network is trained exactly as ``net.fit(X, Y, epochs, lr, **fit_arguments)`` would
    train it alone, to the same bits, whatever the number of threads
    (:func:`fastprop.set_num_threads`): with at least two networks and two threads each
    network runs on one thread, the networks taken one after the other by the threads,
    largest first; the whole call runs without the GIL.

    Parameters
    ----------
    networks : sequence of Network
        Distinct networks; they may differ in layers, activations, loss, dtype and bias.
    X, Y : array-like, or a list with one per network
        Shared training data (each network converts it once to its dtype, without a copy
        when it already is), or one (X, Y) per network.
    epochs, lr : int, float, or a list with one per network
        As in :meth:`Network.fit`.
    indices : integer array, None, or a list with one per network (arrays or None)
        The rows of X (and Y, sample_weight) that make each network's training set, as if
        its fit were given ``X[indices]``: the folds of a cross-validation or bootstrap
        samples, without copying X (each minibatch is gathered from X as it is drawn).
        With ``validation_fraction`` or ``optimizer="lm"`` the selected rows are copied.
    errors : "warn", "raise" or "ignore", default "warn"
        What to do when some networks fail (their loss becomes NaN or infinite, or their
        callback raises): the others train on regardless, and afterwards "warn" issues one
        RuntimeWarning naming them, "raise" raises the first failed network's exception
        (what its own fit would raise), "ignore" only reports them in the result.
    verbose : bool
        One progress bar for the whole set (epochs of all networks).
    callback : callable(epoch, logs) or a list with one per network
        As in :meth:`Network.fit`; ``logs["network"]`` is the network's position. It is
        called from the thread training that network, so calls for different networks may
        overlap (Python switches threads inside them as in any threaded code): guard state
        that callbacks share with a ``threading.Lock``.
    **fit_arguments
        Every other argument of :meth:`Network.fit` (optimizer and its hyperparameters,
        batch_size, shuffle, seed, validation_data, validation_fraction, patience,
        min_delta, restore_best, sample_weight), each one value for all or a list with one
        value per network. A list always means one per network, so a single
        validation set is a tuple ``(X_val, Y_val)``. An optimiser object keeps one
        network's state: give one per network (or a name).

    Returns
    -------
    FitManyResult
        The list of the networks' histories, with ``stops`` and ``errors``.

    Raises
    ------
    ValueError, TypeError
        For bad input, before any network is trained: a list of the wrong length, a network
        whose input width does not match X, indices out of range, ...
    KeyboardInterrupt
        On Ctrl-C, after every network stopped at its last completed update (their
        histories hold the completed epochs).
    """
    return _fit_many(networks, X, Y, epochs, lr, indices, errors, verbose, callback,
                     fit_arguments, _core.fit_many)


def _fit_many(networks: Any, X: Any, Y: Any, epochs: Any, lr: Any, indices: Any, errors: str,
              verbose: bool, callback: Any, fit_arguments: dict[str, Any],
              run: Callable[[list[Any]], Any]) -> FitManyResult:
    """fit_many's work; ``run(jobs)`` trains the jobs (one per network, in their order):
    ``_core.fit_many``, or fastprop.distributed's, which trains a share of them."""
    if isinstance(networks, Network):
        raise TypeError("networks must be a list of fastprop.Network, got one Network: give "
                        "[net] (or call net.fit)")
    if not isinstance(networks, Sequence):
        raise TypeError(message("networks", "a list of fastprop.Network", typed(networks)))
    networks = list(networks)
    n = len(networks)
    for k, net in enumerate(networks):
        if not isinstance(net, Network):
            raise TypeError(message(f"networks[{k}]", "a fastprop.Network", typed(net)))
    if len({id(net) for net in networks}) != n:
        raise ValueError("networks must be distinct: a network appears more than once in the "
                         "list (its fits cannot run at the same time)")
    errors = check_choice(errors, "errors", _ERRORS)
    verbose = check_bool(verbose, "verbose")
    for name, value in (("X", X), ("Y", Y)):
        for k, part in enumerate(value if isinstance(value, list) else [value]):
            if is_sparse(part):
                where = f"{name}[{k}]" if isinstance(value, list) else name
                raise TypeError(f"fit_many needs a dense {where} (a NumPy array); got a sparse "
                                f"matrix: fit each network with net.fit, which takes sparse X")
    arguments = {"X": X, "Y": Y, "epochs": epochs, "lr": lr, "index": indices,
                 "callback": callback, **fit_arguments}
    columns = {key: _per_network(value, "indices" if key == "index" else key, n)
               for key, value in arguments.items()}
    if isinstance(X, list) and any(np.ndim(x) != 2 for x in X):
        k = next(k for k, x in enumerate(X) if np.ndim(x) != 2)
        raise ValueError(f"X: a list gives one X per network, each of shape (t, l_0), but X[{k}] "
                         f"has {np.ndim(X[k])} dimensions; for one X shared by every network, "
                         f"pass a NumPy array")
    # The same file under two names (./, .., a symbolic link) is the same file.
    first_of: dict[str, int] = {}
    for k, path in enumerate(columns.get("checkpoint", [])):
        if path is None:
            continue
        real = os.path.realpath(os.fspath(path))
        if real in first_of:
            raise ValueError(f"checkpoint: a file holds the checkpoint of one fit, so each "
                             f"network needs its own path (a list with one path per network), "
                             f"but networks[{first_of[real]}] and networks[{k}] both name "
                             f"{real}")
        first_of[real] = k
    # Only optimiser objects hold state; anything else is judged by each network's fit.
    optimizers = [o for o in columns.get("optimizer", [])
                  if isinstance(o, (optim.Optimizer, optim.LevenbergMarquardt))]
    if len({id(o) for o in optimizers}) != len(optimizers):
        raise ValueError("an optimiser object keeps the state of one network: give one object "
                         "per network (a list of distinct objects), or the optimiser's name")

    if not isinstance(X, list) and np.ndim(X) == 2:
        width = np.shape(X)[-1]
        for k, net in enumerate(networks):
            if net._core.layers[0] != width:
                raise ValueError(f"networks[{k}] has {net.layers[0]} inputs (l_0), but the "
                                 f"shared X has {width} columns: every network trained on a "
                                 f"shared X must have l_0 = {width}")
    # The shared X converted once per dtype (networks of the same dtype read one array).
    converted: dict[tuple[int, np.dtype], Any] = {}

    def shared(A: Any, dtype: np.dtype) -> Any:
        if not isinstance(A, np.ndarray) or A.dtype.kind not in "fc":
            return A
        key = (id(A), dtype)
        if key not in converted:
            with np.errstate(over="ignore"):
                converted[key] = (A, np.require(A, dtype=dtype, requirements=("C", "A")))
        return converted[key][1]

    plans: list[Any] = []  # None for the networks in `copies`
    fits = [net.__dict__.get("_fits") for net in networks]  # each plan counts a fit
    # Columns whose entries are all the same object: a network given the same arguments as
    # the first but for lr copies the first's checked plan (Network._fit_plan_like), or,
    # without a progress bar, has its job made from the first's in C++ (FitJob.like), its
    # lr (checked) in `copies`.
    same = {key for key, column in columns.items() if key != "lr" and (
        not isinstance(arguments[key], list) or all(value is column[0] for value in column))}
    like = len(same) == len(columns) - 1
    copies: dict[int, float | None] = {}
    lrs = columns["lr"]
    bulk = None  # whether the first's plan may be copied in C++ (known from the first's plan)
    for k, net in enumerate(networks):
        try:
            plan = None
            if k > 0 and like:
                first = plans[0]
                if bulk is None:
                    bulk = not verbose and first.copyable()
                if bulk:
                    lr = lrs[k]
                    if net._copies_plan_of(first, lr):
                        copies[k] = None if lr is None else check_lr(lr)
                        plans.append(None)
                        if not first.seed_given:  # counted as _fit_plan counts it
                            net._fits = net.__dict__.get("_fits", 0) + 1
                        continue
                plan = net._fit_plan_like(first, lrs[k])
            if plan is None:
                args = {key: column[k] for key, column in columns.items()}
                args["X"] = shared(args["X"], net.dtype)
                if net.loss_name != "cross_entropy":
                    args["Y"] = shared(args["Y"], net.dtype)
                plan = net._fit_plan(**args, verbose=False)
            plans.append(plan)
        except BaseException as error:  # Ctrl-C too
            for other, count in zip(networks, fits):  # nothing trained: nothing counted
                if count is None:
                    other.__dict__.pop("_fits", None)
                else:
                    other._fits = count
            if type(error) in (ValueError, TypeError):  # fit's checks: said of network k
                raise type(error)(f"networks[{k}]: {error}") from None
            if isinstance(error, Exception) and hasattr(error, "add_note"):
                error.add_note(f"(raised while preparing the fit of networks[{k}])")
            raise  # any other exception (a subclass of the user's, say) as it is

    total = sum(plan.epochs for plan in plans if plan is not None)
    progress = ManyProgress(total, n) if verbose and total > 0 else None
    jobs = [None if plan is None else plan.job(progress, {"network": k})
            for k, plan in enumerate(plans)]
    if copies:
        job_class = type(jobs[0])
        for k, job in zip(copies, job_class.like(jobs[0], [networks[k]._core for k in copies],
                                                 list(copies.values()))):
            jobs[k] = job
    try:
        run(jobs)
    finally:
        if progress is not None:
            progress.close()
        result = FitManyResult()
        result.stops, result.errors = [], {}
        result.lanes = [job.lanes for job in jobs]
        # The copies' records, read in one call (a plain fit's: no validation or checkpoint).
        outcomes, patience = {}, 0
        if copies:
            outcomes = dict(zip(copies, type(jobs[0]).outcomes([jobs[k] for k in copies])))
            patience = plans[0].patience
        for k, (plan, job) in enumerate(zip(plans, jobs)):
            net = networks[k]
            if plan is None:
                stop, loss, seconds, rates, best, done, failed = outcomes[k]
                if stop is None:
                    history, stop = History(np.empty(0)), "done"
                else:  # History(loss, None, seconds, best, stop, rates), made as a view
                    history = loss.view(History)
                    history.time, history.lr = seconds, rates
                    history.best_epoch = best if patience else None
            else:
                record = job.record
                plan.finish(record)
                history = net.history if record is not None else History(np.empty(0))
                stop = "done" if record is None else record.stop.name
                done = 0 if record is None else record.epochs
                failed = job.failed
            if failed:
                stop = "error"
                try:
                    job.raise_error()
                except BaseException as error:  # noqa: BLE001  (kept for the caller)
                    result.errors[k] = error
            elif stop == "non_finite":
                result.errors[k] = FloatingPointError(
                    f"networks[{k}]: {_core.non_finite_message(done)}")
            history.stop = stop
            net.history = history
            result.append(history)
            result.stops.append(stop)
    # KeyboardInterrupt, SystemExit and the like from a network's callback or schedule end
    # the whole call, as they end Network.fit: they are not one network's failure.
    for k in result.failed:
        error = result.errors.get(k)
        if error is not None and not isinstance(error, Exception):
            raise error
    if result.errors:
        if errors == "raise":
            raise result.errors[result.failed[0]]
        if errors == "warn":
            names = ", ".join(f"{k} ({result.stops[k]})" for k in result.failed)
            warnings.warn(f"{len(result.errors)} of {n} networks failed and stopped early: "
                          f"{names}; the others trained on (see the result's errors)",
                          RuntimeWarning, stacklevel=3)
    return result
