"""Data-parallel training over MPI processes, the same bits as one process.

Run the same script on R processes (``mpiexec -n R python script.py``); rank r passes its part
of the rows, and the data set is the ranks' parts concatenated in rank order::

    from fastprop import Network, distributed
    net = Network([784, 256, 10], activation="relu", bias=True, seed=0)   # same seed everywhere
    X_r = np.load("X.npy", mmap_mode="r")[lo:hi]                          # this rank's rows
    history = distributed.fit(net, X_r, Y_r, epochs=10, lr=1e-3, batch_size=512)

Every minibatch is drawn from the whole data set as a single process would draw it (same
``seed``); it is cut into blocks of ``block_rows`` rows, each rank computes the gradients of
its share of the blocks (its rows are sent to it once per epoch, in one all-to-all), the
partial sums are the nodes of a fixed binary tree over the blocks; each rank completes the
tree for its slice of the parameters from every rank's nodes' slices (one all-to-all per
step) and the summed slices are all-gathered, so every rank applies the same update. The tree does not
depend on the number of ranks, so the parameters after training are the same bits on 1, 2, 3
or any number of ranks, and the same as ``Network.fit(..., block_rows=block_rows)`` in one
process. MPI comes from mpi4py (``pip install mpi4py mpich``, or ``pip install ".[mpi]"``
from the clone); without it, or outside ``mpiexec``, :func:`fit` runs as a single rank.

:func:`fit_many` spreads whole networks over the ranks instead (each network trained by one
rank, the results sent to every rank), and ``GridSearchCV``, ``RandomizedSearchCV``,
``cross_validate`` and ``cross_val_score`` (imported from here on first use; they need
scikit-learn) spread a search's candidates × folds the same way: on every rank, the same
networks and results as one process.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _core, optim
from ._checkpoint import Checkpoint
from ._progress import Progress
from ._sparse import is_sparse
from ._validate import check_bool, check_callable, check_choice, check_int, check_real, \
    check_sample_weight, check_seed
from .history import History
from .many import FitManyResult, _fit_many
from .network import Network, _FitPlan, _stops

__all__ = ["fit", "fit_many", "world", "DistributedError", "last_stats"]

#: Counters of the last :func:`fit` on this rank: ``steps`` (reduce-scatters of the gradient
#: tree), ``tree_bytes`` (bytes this rank sent for the trees, the validation loss's included),
#: ``exchange_seconds`` (time in them, waiting for the other ranks included), ``row_bytes``
#: (bytes of data rows it sent to other ranks), ``epochs`` (of the epoch hook, when there is
#: one).
last_stats: dict[str, Any] = {}


class DistributedError(RuntimeError):
    """An error on another rank, raised on every rank (the message names the rank)."""


class _Single:
    """The communicator of a single process without MPI."""

    rank = 0
    size = 1

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def Barrier(self) -> None:  # noqa: N802  (mpi4py's name)
        pass


def world() -> Any:
    """MPI's COMM_WORLD when mpi4py is installed, else a communicator of one process."""
    try:
        from mpi4py import MPI
    except ImportError:
        return _Single()
    return MPI.COMM_WORLD


def _mpi_type(dtype: np.dtype) -> Any:
    from mpi4py import MPI

    return MPI.DOUBLE if dtype == np.float64 else MPI.FLOAT


def _agree(comm: Any, work: Callable[[], Any], share: bool = False) -> Any:
    """work() on every rank; when it raised on any rank, every rank raises the same error
    naming the rank(s). Returns this rank's result, or with `share` every rank's (sent to
    every rank)."""
    try:
        out, error = work(), None
    except Exception as exc:  # reported to every rank below
        out, error = None, (type(exc).__name__, str(exc))
    results = comm.allgather((error, out if share else None))
    failed = [(q, e) for q, (e, _) in enumerate(results) if e is not None]
    if failed:
        ranks: dict[tuple[str, str], list[str]] = {}  # the ranks of each error
        for q, e in failed:
            ranks.setdefault(e, []).append(str(q))
        text = "; ".join(f"rank{'s' if len(qs) > 1 else ''} {', '.join(qs)} of {comm.size}: "
                         f"{name}: {msg}" for (name, msg), qs in ranks.items())
        kind = {"ValueError": ValueError, "TypeError": TypeError,
                "FloatingPointError": FloatingPointError}.get(failed[0][1][0], DistributedError)
        raise kind(text)
    return [theirs for _, theirs in results] if share else out


def _same(values: Sequence[Any], name: str) -> None:
    """ValueError naming the ranks when the ranks' values of `name` differ."""
    if any(v != values[0] for v in values):
        shown = ", ".join(f"rank {q}: {v}" for q, v in enumerate(values))
        raise ValueError(f"{name} must be the same on every rank, got {shown}")


def _check_finite(A: np.ndarray, name: str) -> None:
    """ValueError naming the first row with NaN or inf (read in chunks: memmaps stay on disk)."""
    step = max(1, (1 << 22) // max(1, A[0].size if len(A) else 1))
    for r0 in range(0, len(A), step):
        bad = ~np.isfinite(A[r0:r0 + step]).reshape(min(step, len(A) - r0), -1).all(axis=1)
        if bad.any():
            row = r0 + int(np.argmax(bad))
            raise ValueError(f"{name} has NaN or inf in its row {row}")


class _Rows:
    """One rank's rows (X, Y, w), to be sent to the ranks whose blocks need them."""

    def __init__(self, comm: Any, parts: list[np.ndarray], offsets: np.ndarray,
                 dtype: np.dtype) -> None:
        self.comm, self.parts, self.offsets, self.dtype = comm, parts, offsets, dtype
        self.widths = [1 if p.ndim == 1 else p.shape[1] for p in parts]
        self.sent = 0

    def fetch(self, needs: list[np.ndarray]) -> list[np.ndarray]:
        """The rows with global indices needs[rank], in that order (every rank calls this
        with the same needs, for every rank)."""
        comm, rank, R = self.comm, self.comm.rank, self.comm.size
        lo, hi = int(self.offsets[rank]), int(self.offsets[rank + 1])
        width = sum(self.widths)

        def local(idx: np.ndarray) -> np.ndarray:
            block = np.empty((len(idx), width), self.dtype)
            c = 0
            order = np.argsort(idx, kind="stable")  # memmaps read in file order
            for part, k in zip(self.parts, self.widths):
                block[order, c:c + k] = np.asarray(part[idx[order]]).reshape(len(idx), k)
                c += k
            return block

        if R == 1:
            packed = local(needs[0] - lo)
        else:
            def prepare() -> tuple[np.ndarray, list[int]]:
                send_idx = [need[(need >= lo) & (need < hi)] - lo for need in needs]
                counts = [len(i) * width for i in send_idx]
                return local(np.concatenate(send_idx)), counts

            send, send_counts = _agree(comm, prepare)
            mine = needs[rank]
            source = np.searchsorted(self.offsets, mine, side="right") - 1
            perm = np.argsort(source, kind="stable")
            recv_counts = (np.bincount(source, minlength=R) * width).tolist()
            recv = np.empty((len(mine), width), self.dtype)
            kind = _mpi_type(self.dtype)
            comm.Alltoallv([send, (send_counts, np.cumsum([0] + send_counts[:-1]).tolist()), kind],
                           [recv, (recv_counts, np.cumsum([0] + recv_counts[:-1]).tolist()), kind])
            self.sent += (sum(send_counts) - send_counts[rank]) * self.dtype.itemsize
            packed = np.empty_like(recv)
            packed[perm] = recv
        out, c = [], 0
        for part, k in zip(self.parts, self.widths):
            column = packed[:, c:c + k]
            out.append(np.ascontiguousarray(column[:, 0] if part.ndim == 1 else column))
            c += k
        return out


def _owned_rows(rows: int, block_rows: int, rank: int, ranks: int) -> tuple[int, int]:
    """The rows [lo, hi) of a batch of `rows` rows in rank's blocks (as blocks::owned)."""
    nb = -(-rows // block_rows)
    a, b = nb * rank // ranks, nb * (rank + 1) // ranks
    return min(a * block_rows, rows), min(b * block_rows, rows)


def _needs(order: np.ndarray, batch: int, block_rows: int, ranks: int) -> list[np.ndarray]:
    """For every rank, the global rows of its blocks of every minibatch of an epoch."""
    t = len(order)
    out = []
    for q in range(ranks):
        pieces = []
        for r0 in range(0, t, batch):
            lo, hi = _owned_rows(min(batch, t - r0), block_rows, q, ranks)
            pieces.append(np.arange(r0 + lo, r0 + hi))
        out.append(order[np.concatenate(pieces)] if pieces else np.empty(0, np.intp))
    return out


def _params_digest(net: Network) -> str:
    return hashlib.sha256(np.ascontiguousarray(net.params).tobytes()).hexdigest()[:16]


def _told_every_rank(error: BaseException) -> BaseException:
    """``error``, marked as one every rank knows of (rank 0's callback's, which the others
    raise as DistributedError): not a reason to end the job, whatever it is."""
    try:
        error._fastprop_told_every_rank = True  # type: ignore[attr-defined]
    except AttributeError:  # an exception class without a __dict__
        pass
    return error


def _one_rank_stops(error: BaseException) -> bool:
    """Whether ``error`` stops this rank alone, while the others go on to a collective that
    would then wait for it forever: Ctrl-C (it reaches the ranks at different moments; the
    core reports one inside an exchange as RuntimeError("interrupted")) and running out of
    memory. Everything else fit raises is raised on every rank (checked together, or told
    to every rank)."""
    if getattr(error, "_fastprop_told_every_rank", False):
        return False
    return (isinstance(error, (KeyboardInterrupt, MemoryError))
            or (type(error) is RuntimeError and str(error) == "interrupted"))


def _ends_the_job_when_one_rank_stops(function: Callable[..., Any]) -> Callable[..., Any]:
    """With several ranks, what stops one rank alone (_one_rank_stops) ends the job
    (MPI_Abort, exit 130, as a shell reports SIGINT) instead of leaving the others waiting."""

    @functools.wraps(function)
    def ending(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BaseException as error:
            if _one_rank_stops(error):
                _end_job(kwargs.get("comm") or world(), error)
            raise

    return ending


@_ends_the_job_when_one_rank_stops
def fit(
    net: Network,
    X_local: ArrayLike,
    Y_local: ArrayLike,
    epochs: int,
    lr: float | None = None,
    *,
    optimizer: str | optim.Optimizer = "adam",
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    validation_data: tuple[ArrayLike, ...] | None = None,
    validation_fraction: float | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    callback: Callable[[int, dict[str, Any]], Any] | None = None,
    verbose: bool = False,
    sample_weight: ArrayLike | None = None,
    lr_schedule: optim.Schedule | None = None,
    clip_norm: float | None = None,
    block_rows: int = 64,
    debug: bool = False,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    comm: Any = None,
    **hyperparameters: Any,
) -> History:
    """Data-parallel :meth:`Network.fit`: every rank passes its rows, all ranks end with the
    same parameters, those of ``net.fit`` on the concatenated rows with ``block_rows``.

    Parameters
    ----------
    net : Network
        The same network on every rank (same layers, activations, loss, dtype and
        parameters: construct it with the same ``seed``).
    X_local, Y_local : array-like of shape (t_r, l_0) and (t_r, l_n)
        This rank's rows (t_r may be 0); the data set is every rank's rows in rank order.
        A ``np.load(..., mmap_mode="r")`` slice in the network's dtype stays on disk: each
        epoch reads the rows this rank sends.
    epochs, lr, optimizer, batch_size, shuffle, seed, patience, min_delta, restore_best, \
sample_weight, clip_norm, **hyperparameters
        As in :meth:`Network.fit`, for the whole data set (``sample_weight``: this rank's
        rows' weights). They must be the same on every rank (``seed`` None: rank 0's
        network's next seed, as ``Network.fit`` takes it).
    lr_schedule : StepLR, CosineAnnealingLR, InvScaling or None
        The core's schedules, as in :meth:`Network.fit` (a callable or ``Adaptive`` is not
        supported here yet).
    validation_data : (X_val, Y_val) or (X_val, Y_val, sample_weight_val), or None
        This rank's part of the validation set (the ranks' parts concatenated).
    validation_fraction : float or None
        The last rows of the whole data set, as in :meth:`Network.fit`.
    callback, verbose
        Run on rank 0 only, with the global losses; the callback's False stops every rank.
    block_rows : int, default 64
        Rows per block of a minibatch: the unit of work that is spread over the ranks and
        the leaves of the summation tree. Part of the result: the same value gives the same
        bits on any number of ranks.
    debug : bool
        After every epoch, check that every rank holds the same parameters.
    checkpoint, checkpoint_every
        As in :meth:`Network.fit`, written by rank 0 and read by rank 0 (sent to the others):
        a run resumed from it on any number of ranks ends with the bits of an uninterrupted
        one.
    comm : mpi4py communicator or None
        Default: ``MPI.COMM_WORLD`` (a single rank without mpi4py).

    Returns
    -------
    History
        The same on every rank: the global training and validation losses.

    Raises
    ------
    ValueError, TypeError
        On every rank, naming the rank, when one rank's arguments are bad or differ from
        the others' (layers, dtype, feature counts, hyperparameters, parameters).
    FloatingPointError
        On every rank, naming the rank whose part of the gradient was first not finite.
    DistributedError
        On every rank, when another rank raised (its callback, reading its rows).
    """
    comm = world() if comm is None else comm
    rank, R = comm.rank, comm.size

    # ---------------------------------------------------------------- checks, on every rank
    def local_checks() -> dict[str, Any]:
        if not isinstance(net, Network):
            raise TypeError(f"net must be a fastprop.Network, got {type(net).__name__}")
        if is_sparse(X_local):
            raise TypeError("distributed.fit needs a dense X_local (a NumPy array or memmap), "
                            "got a sparse matrix")
        X, Y = net._batch(X_local, Y_local)
        # The totals are those of every rank's weights, checked below: one rank's may be 0.
        w = None if sample_weight is None else check_sample_weight(
            sample_weight, len(X), net.dtype, totals=False)
        _check_finite(X, "X_local")
        _check_finite(Y, "Y_local")
        net._check_targets(Y, "Y_local")
        e = check_int(epochs, "epochs", low=0)
        rate = None if lr is None else float(lr)
        if isinstance(optimizer, (optim.Optimizer, optim.LevenbergMarquardt)):
            if hyperparameters:
                raise TypeError(f"hyperparameters {sorted(hyperparameters)} go to the optimizer "
                                f"object's constructor, not to fit")
            opt = optimizer
        else:
            opt = optim.make(optimizer, lr, **hyperparameters)
        if isinstance(opt, optim.LevenbergMarquardt):
            raise ValueError("optimizer 'lm' is not data-parallel: use a first-order optimiser")
        if isinstance(opt, optim.DPSGD):
            raise ValueError("optimizer 'dpsgd' is not data-parallel (its per-sample clipping "
                             "takes each minibatch whole): use Network.fit or fit_many")
        if callable(lr_schedule) and not isinstance(lr_schedule, optim.Schedule) or \
                isinstance(lr_schedule, optim.Adaptive):
            raise ValueError("distributed.fit takes the core's schedules (StepLR, "
                             "CosineAnnealingLR, InvScaling) or None as lr_schedule, not a "
                             "callable or Adaptive")
        schedule, _ = Network._schedule(lr_schedule, False)
        clip = 0.0 if clip_norm is None else check_real(clip_norm, "clip_norm", low=0,
                                                        low_open=True)
        val = None
        if validation_data is not None:
            if validation_fraction is not None:
                raise ValueError("give validation_data or validation_fraction, not both")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise TypeError("validation_data must be a pair (X_val, Y_val) or a triple "
                                "(X_val, Y_val, sample_weight_val)")
            X_val, Y_val = net._batch(validation_data[0], validation_data[1], ("X_val", "Y_val"))
            w_val = None
            if len(validation_data) == 3:
                w_val = check_sample_weight(validation_data[2], len(X_val), net.dtype,
                                            "sample_weight_val", totals=False)
            val = (X_val, Y_val, w_val)
        fraction = None
        if validation_fraction is not None:
            fraction = check_real(validation_fraction, "validation_fraction", low=0)
        sig = {
            "the network (layers, activations, bias, dtype, loss)":
                (net.layers, net.activations, net.bias, net.dtype.name, net.loss_name),
            "the network's parameters (construct it with the same seed)": _params_digest(net),
            "epochs": e, "lr": rate,
            "optimizer (its hyperparameters, step count and state)":
                (repr(opt), opt.steps, sorted((k, _digest(v)) for k, v in opt.state.items())),
            "batch_size": None if batch_size is None else check_int(batch_size, "batch_size",
                                                                    low=1),
            "shuffle": check_bool(shuffle, "shuffle"),
            "seed": None if seed is None else check_seed(seed),
            "patience": None if patience is None else check_int(patience, "patience", low=0),
            "min_delta": check_real(min_delta, "min_delta", low=0),
            "restore_best": check_bool(restore_best, "restore_best"),
            "block_rows": check_int(block_rows, "block_rows", low=1),
            "lr_schedule": repr(lr_schedule), "clip_norm": clip,
            "debug": check_bool(debug, "debug"),
            "checkpoint": (None if checkpoint is None else os.fspath(checkpoint),
                           check_int(checkpoint_every, "checkpoint_every", low=1)),
            "sample_weight (given or not)": w is not None,
            "validation (validation_data with or without weights, validation_fraction)":
                (None if val is None else val[2] is not None, fraction),
        }
        check_callable(callback, "callback")
        check_bool(verbose, "verbose")
        return {"X": X, "Y": Y, "w": w, "opt": opt, "val": val, "sig": sig,
                "t": len(X), "t_val": 0 if val is None else len(val[0]),
                "fresh_seed": net._fit_seed() if seed is None else 0,
                "schedule": schedule, "clip": clip,
                "hook": callback is not None or bool(verbose)}

    mine = None

    def checked() -> dict[str, Any]:
        nonlocal mine
        mine = local_checks()
        return {k: mine[k] for k in ("sig", "t", "t_val", "fresh_seed", "hook")}

    everyone = _agree(comm, checked, share=True)
    for name in everyone[0]["sig"]:
        _same([e["sig"][name] for e in everyone], name)
    assert mine is not None
    X, Y, w, opt, val = mine["X"], mine["Y"], mine["w"], mine["opt"], mine["val"]
    B = int(block_rows)
    epochs = int(epochs)
    offsets = np.cumsum([0] + [e["t"] for e in everyone])
    t_all = int(offsets[-1])
    if t_all == 0:
        raise ValueError("fit needs at least one sample, got 0 rows on every rank")
    w_all = None
    if w is not None:
        w_all = np.concatenate(comm.allgather(w)).astype(net.dtype, copy=False)

    # ------------------------------------------------- the training and validation rows
    train_parts = [X, Y] + ([w] if w is not None else [])
    t_train = t_all
    val_parts = None
    val_offsets = None
    w_val_all = None
    if validation_fraction is not None:
        n_val = int(round(float(validation_fraction) * t_all))
        if not 0 < validation_fraction < 1 or n_val < 1 or n_val >= t_all:
            raise ValueError(f"validation_fraction must leave at least one row on each side "
                             f"of the split, in (0, 1); got {validation_fraction} for "
                             f"{t_all} rows")
        t_train = t_all - n_val
        lo, hi = int(offsets[rank]), int(offsets[rank + 1])
        cut = min(max(t_train - lo, 0), hi - lo)  # this rank's rows before the split
        val_parts = [p[cut:] for p in train_parts]
        train_parts = [p[:cut] for p in train_parts]
        offsets_val = np.minimum(np.maximum(offsets - t_train, 0), n_val)
        offsets = np.minimum(offsets, t_train)
        val_offsets = offsets_val
        if w is not None:
            w_val_all, w_all = w_all[t_train:], w_all[:t_train]
    elif val is not None:
        val_parts = [val[0], val[1]] + ([val[2]] if val[2] is not None else [])
        val_offsets = np.cumsum([0] + [e["t_val"] for e in everyone])
        if int(val_offsets[-1]) == 0:
            raise ValueError("validation_data must have at least one row, got 0 on every rank")
        if val[2] is not None:
            w_val_all = np.concatenate(comm.allgather(val[2])).astype(net.dtype, copy=False)

    # The weights of the training and validation rows, each checked whole (on every rank
    # alike, from the gathered weights): one rank's may all be zero.
    if w_all is not None:
        check_sample_weight(w_all, len(w_all), net.dtype)
    if w_val_all is not None:  # named as Network.fit names them
        check_sample_weight(w_val_all, len(w_val_all), net.dtype,
                            "sample_weight of the validation rows"
                            if validation_fraction is not None else "sample_weight_val")
    batch = t_train if batch_size is None else check_int(batch_size, "batch_size", low=1)
    batch = min(batch, t_train)
    seed_value = seed if seed is not None else everyone[0]["fresh_seed"]
    rows = _Rows(comm, train_parts, offsets, net.dtype)
    shuffled = bool(shuffle) and batch < t_train
    cache: dict[str, Any] = {}

    def epoch_rows(order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if "rows" in cache:  # without shuffling every epoch takes the same rows
            return cache["rows"]
        needs = _needs(np.array(order, dtype=np.intp), batch, B, R)
        got = rows.fetch(needs)
        out = (got[0], got[1], got[2] if len(got) > 2 else None)
        if not shuffled:
            cache["rows"] = out
        return out

    val_rows = None
    t_val = 0
    if val_parts is not None:
        t_val = int(val_offsets[-1])
        lo, hi = _owned_rows(t_val, B, rank, R)
        needs = [np.arange(*_owned_rows(t_val, B, q, R)) for q in range(R)]
        got = _Rows(comm, val_parts, val_offsets, net.dtype).fetch(needs)
        val_rows = (got[0], got[1], got[2] if len(got) > 2 else None)

    stats: dict[str, Any] = {"steps": 0, "tree_bytes": 0, "row_bytes": 0, "epochs": 0,
                             "exchange_seconds": 0.0}

    def exchange(send: memoryview | None, recv: memoryview, counts: list[int]) -> None:
        from mpi4py import MPI

        displs = np.cumsum([0] + counts[:-1]).tolist()
        start = time.perf_counter()  # send None: this rank's part is in recv already
        comm.Allgatherv(MPI.IN_PLACE if send is None else [send, MPI.BYTE],
                        [recv, (counts, displs), MPI.BYTE])
        stats["exchange_seconds"] += time.perf_counter() - start
        stats["tree_bytes"] += counts[rank] * (R - 1)  # to every other rank

    def scatter(send: memoryview, counts_to: list[int], displs_to: list[int],
                recv: memoryview, counts_from: list[int]) -> None:
        from mpi4py import MPI

        displs_from = np.cumsum([0] + counts_from[:-1]).tolist()
        start = time.perf_counter()
        comm.Alltoallv([send, (counts_to, displs_to), MPI.BYTE],
                       [recv, (counts_from, displs_from), MPI.BYTE])
        stats["exchange_seconds"] += time.perf_counter() - start
        stats["steps"] += 1
        stats["tree_bytes"] += sum(counts_to) - counts_to[rank]

    # ---------------------------------------------------------------- checkpoints
    state = opt.state_for(net.n_params, net.dtype)
    ckpt, resume = None, {}
    if checkpoint is not None:
        ckpt = _agree(comm, lambda: Checkpoint(  # rank 0 writes it: its directory is checked
            checkpoint, checkpoint_every, writes=rank == 0, params=net.params, state=state,
            epochs=epochs,
            patience=0 if patience is None else int(patience), min_delta=float(min_delta),
            restore_best=bool(restore_best), validation=val_rows is not None,
            identity={"network": [net.layers, net.activations, net.bias, net.dtype.name,
                                  net.loss_name],
                      "rows": t_train, "validation rows": t_val,
                      "batch_size": batch if batch_size is not None else 0,
                      "shuffle": bool(shuffle), "optimizer": repr(opt), "lr": lr,
                      "block_rows": B, "patience": 0 if patience is None else int(patience),
                      "min_delta": float(min_delta), "restore_best": bool(restore_best),
                      "lr_schedule": repr(lr_schedule), "clip_norm": mine["clip"]}))
        ckpt.seed = seed_value
        saved = comm.bcast(_agree(comm, lambda: ckpt.read() if rank == 0 else None), root=0)
        if saved is not None:
            _agree(comm, lambda: resume.update(ckpt.resume(saved)))  # opt's step count too
            seed_value = ckpt.seed
    best_params = resume.pop("best_params", None)

    # ---------------------------------------------------------------- the epoch hook
    any_hook = any(e["hook"] for e in everyone) or debug or ckpt is not None
    progress = Progress(epochs, t_train) if verbose and rank == 0 and epochs > 0 else None
    epoch_end = None
    if any_hook:
        def epoch_end(log: Any) -> Any:
            stats["epochs"] += 1
            stop, error, source = False, None, "writing of the checkpoint"
            due = ckpt is not None and ckpt.epoch_end(log.epoch, log.loss, log.val_loss,
                                                      log.time, log.lr)
            if rank == 0:
                logs = {"loss": log.loss, "time": log.time}
                if val_rows is not None:
                    logs["val_loss"] = log.val_loss
                try:
                    if due:
                        ckpt.write()
                    source = "callback"
                    if progress is not None:
                        progress.update(log.epoch, logs)
                    if callback is not None and _stops(callback(log.epoch, logs)):
                        stop = True
                except BaseException as exc:  # reaches every rank below
                    error = exc
            told = comm.bcast((stop, None if error is None else f"{source} raised "
                               f"{type(error).__name__}: {error}"), root=0)
            if debug:
                digests = comm.allgather(_params_digest(net))
                if len(set(digests)) > 1:
                    differ = [q for q, d in enumerate(digests) if d != digests[0]]
                    raise DistributedError(f"after epoch {log.epoch}, the parameters of ranks "
                                           f"{differ} differ from rank 0's")
            if error is not None:
                raise _told_every_rank(error)
            if told[1] is not None:
                raise DistributedError(f"rank 0's {told[1]}")
            return _core.EpochControl(stop=True) if told[0] else None

    options = _core.TrainOptions(
        epochs=epochs, batch_size=0 if batch_size is None else batch, shuffle=bool(shuffle),
        seed=seed_value, patience=0 if patience is None else int(patience),
        min_delta=float(min_delta), restore_best=bool(restore_best), block_rows=B,
        schedule=mine["schedule"], clip_norm=mine["clip"], **resume)
    last_stats.clear()
    try:
        net._core.fit_parallel(t_train, w_all, options=options, optimizer=opt.config(lr),
                               state=state, rank=rank, ranks=R, epoch_rows=epoch_rows,
                               exchange=exchange, scatter=scatter, val_rows=val_rows,
                               w_val=w_val_all,
                               t_val=t_val, callback=epoch_end, best_params=best_params)
    finally:
        if progress is not None:
            progress.close()
        stats["row_bytes"] = rows.sent
        last_stats.update(stats)
        record = net._core.last_fit
        if record is not None and ckpt is not None:
            net.history = ckpt.history(record, patience)
        elif record is not None:
            net.history = _FitPlan.history_of(record, val_rows is not None, patience)
    return net.history


# ---------------------------------------------------------------- many networks over ranks


def _digest(A: np.ndarray) -> str:
    """A hash of an array's values (a memmap is read in chunks)."""
    h = hashlib.blake2b(digest_size=8)
    flat = A.reshape(-1) if A.flags.c_contiguous else None
    if flat is None:
        for row in A:
            h.update(np.ascontiguousarray(row).tobytes())
    else:
        step = 1 << 22
        for r0 in range(0, flat.size, step):
            h.update(np.ascontiguousarray(flat[r0:r0 + step]).tobytes())
    return h.hexdigest()


def _fingerprint(value: Any) -> Any:
    """What identifies an argument alike on every rank: its values (an array by its shape,
    dtype and a hash of its values), never an object's address."""
    if value is None or isinstance(value, (bool, int, float, complex, str, np.generic)):
        return repr(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufc":
            return f"array of shape {value.shape} and dtype {value.dtype}, hash {_digest(value)}"
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, *(_fingerprint(v) for v in value)]
    if isinstance(value, dict):
        return {str(k): _fingerprint(v) for k, v in sorted(value.items(), key=str)}
    if isinstance(value, optim.Optimizer):
        state = ", ".join(f"{k} hash {_digest(b)}" for k, b in value.state.items())
        return f"{value!r} after {value.steps} steps, state: {state or 'none'}"
    if isinstance(value, (optim.LevenbergMarquardt, optim.Schedule)):
        return repr(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if is_sparse(value):
        return f"a sparse matrix of shape {getattr(value, 'shape', None)}"
    if callable(value):
        return f"a callable {getattr(value, '__qualname__', type(value).__name__)}"
    return f"a {type(value).__name__}"


def _many_signature(networks: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a fit_many call, as every rank must give them (see fit_many)."""
    if isinstance(networks, Network) or not isinstance(networks, Sequence):
        raise TypeError(f"networks must be a list of fastprop.Network, got "
                        f"{type(networks).__name__}")
    sig: dict[str, Any] = {"the number of networks": len(networks)}
    for k, net in enumerate(networks):
        if not isinstance(net, Network):
            raise TypeError(f"networks[{k}] must be a fastprop.Network, got "
                            f"{type(net).__name__}")
        sig[f"networks[{k}] (layers, activations, bias, dtype, loss)"] = (
            net.layers, net.activations, net.bias, net.dtype.name, net.loss_name)
        sig[f"networks[{k}]'s parameters (construct it with the same seed on every rank)"] = \
            _params_digest(net)
        sig[f"networks[{k}]'s seed and count of fits (construct and fit it alike on every "
            f"rank)"] = (net.__dict__.get("_seed"), net.__dict__.get("_fits", 0))
    sig["the keywords given"] = sorted(arguments)
    for name, value in arguments.items():
        sig[name] = _fingerprint(value)
    return sig


def _costs(networks: list[Network], X: Any, epochs: Any, indices: Any) -> list[float]:
    """Each network's work, about parameters × rows × epochs (1 where that is unknown)."""
    n = len(networks)

    def each(value: Any) -> list[Any]:
        return value if isinstance(value, list) and len(value) == n else [value] * n

    out = []
    for net, x, e, index in zip(networks, each(X), each(epochs), each(indices)):
        try:
            rows = len(index) if index is not None else np.shape(x)[0]
            out.append(float(net.n_params) * float(rows) * max(float(e), 1.0))
        except Exception:  # noqa: BLE001  bad input: fit_many's own checks report it
            out.append(1.0)
    return out


def _owners(costs: list[float], ranks: int) -> list[int]:
    """The rank that trains each network: the largest first, each to the least loaded rank
    (the lowest on ties), so every rank computes the same assignment."""
    load = [0.0] * ranks
    owner = [0] * len(costs)
    for k in sorted(range(len(costs)), key=lambda k: (-costs[k], k)):
        q = min(range(ranks), key=lambda q: (load[q], q))
        owner[k] = q
        load[q] += costs[k]
    return owner


def _portable(error: BaseException | None) -> tuple[Any, str, str] | None:
    """An exception as (its class when it can be pickled, else None; its name; its text)."""
    if error is None:
        return None
    kind: Any = type(error)
    try:
        pickle.dumps(kind)
    except Exception:  # noqa: BLE001  a class defined where the other ranks cannot find it
        kind = None
    return kind, type(error).__name__, str(error)


def _rank_error(rank: int, ranks: int, portable: tuple[Any, str, str]) -> BaseException:
    """The exception of `portable` raised on `rank`, as every rank reports it: its class
    (DistributedError when that cannot be rebuilt), the message naming the rank."""
    kind, name, text = portable
    message = f"rank {rank} of {ranks}: {name}: {text}"
    if kind is not None:
        try:
            return kind(message)
        except Exception:  # noqa: BLE001  a class whose constructor takes other arguments
            pass
    return DistributedError(message)


def _end_job(comm: Any, error: BaseException) -> None:
    """Ctrl-C (or SystemExit) on one rank while the others wait in a collective: with several
    ranks the job is ended (MPI_Abort, exit 130) instead of leaving them waiting."""
    if comm.size > 1 and hasattr(comm, "Abort"):
        import sys

        what = ("interrupted" if isinstance(error, KeyboardInterrupt) or str(error) ==
                "interrupted" else "ran out of memory" if isinstance(error, MemoryError)
                else "exited")
        print(f"fastprop.distributed: rank {comm.rank} of {comm.size} {what}; ending the job",
              file=sys.stderr, flush=True)
        comm.Abort(130)


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
    comm: Any = None,
    **fit_arguments: Any,
) -> FitManyResult:
    """:func:`fastprop.fit_many` with the networks spread over MPI ranks: every rank ends
    with every network exactly as one process's ``fastprop.fit_many`` leaves it.

    Run the same script on R processes (``mpiexec -n R python script.py``), every rank with
    the same networks (made with the same seeds) and the same arguments. Each network is
    trained by one rank (the largest first, each to the least loaded rank, by parameters ×
    rows × epochs: the same assignment on every rank), all of a rank's networks in one call
    of the core, spread over its threads; then every rank's results are sent to every rank:
    the parameters, the history, why it stopped, its error, and the state of an optimiser
    object that was given for it. Each network's fit does not depend on where it runs, so
    the parameters and histories are the same bits as in one process, on every rank.

    Parameters
    ----------
    networks, X, Y, epochs, lr, indices, errors, **fit_arguments
        As in :func:`fastprop.fit_many`, the same on every rank (compared before training:
        the networks' layers, parameters and seeds, every argument, arrays by their values).
    callback : callable(epoch, logs), a list with one per network, or None
        As in :func:`fastprop.fit_many`, run by the rank that trains the network (what it
        changes outside the network stays on that rank).
    verbose : bool
        One progress bar on rank 0, for the networks it trains.
    comm : mpi4py communicator or None
        Default: ``MPI.COMM_WORLD``. On one rank, or without mpi4py, this is
        :func:`fastprop.fit_many`.

    Returns
    -------
    FitManyResult
        The same on every rank. A failed network's error (``errors``, and what
        ``errors="raise"`` raises) has its class and a message naming the rank that
        trained it (:class:`DistributedError` when its class cannot be rebuilt there).

    Raises
    ------
    ValueError, TypeError
        On every rank, naming the rank(s): bad input, or arguments that differ between
        ranks (before any network is trained; the networks are left as they were).
    KeyboardInterrupt
        Ctrl-C on one rank ends the whole job (MPI_Abort, exit 130), as in :func:`fit`.
    """
    comm = world() if comm is None else comm
    rank, R = comm.rank, comm.size
    arguments = {"X": X, "Y": Y, "epochs": epochs, "lr": lr, "indices": indices,
                 "errors": errors, "verbose": verbose, "callback": callback, **fit_arguments}
    if R == 1:
        return _fit_many(networks, X, Y, epochs, lr, indices, errors, verbose, callback,
                         fit_arguments, _core.fit_many)

    # ------------------------------------------------ the same call on every rank
    def signature() -> dict[str, Any]:
        check_choice(errors, "errors", ("warn", "raise", "ignore"))
        return _many_signature(networks, arguments)

    everyone = _agree(comm, signature, share=True)
    for name in everyone[0]:
        _same([e.get(name) for e in everyone], name)
    networks = list(networks)
    n = len(networks)
    owner = _owners(_costs(networks, X, epochs, indices), R)
    before = [(net.__dict__.get("history"), net.__dict__.get("_fits")) for net in networks]

    def restore() -> None:
        """Nothing trained: every network as it was (as fastprop.fit_many leaves them)."""
        for net, (history, fits) in zip(networks, before):
            net.__dict__["history"] = history
            if fits is None:
                net.__dict__.pop("_fits", None)
            else:
                net._fits = fits

    stage = "checks"

    def run(jobs: list[Any]) -> None:
        nonlocal stage
        stage = "agreeing"
        _agree(comm, lambda: None)  # every rank's checks passed (else every rank raises)
        stage = "training"
        if len(jobs) != n:
            raise RuntimeError(f"fit_many made {len(jobs)} jobs for {n} networks")
        mine = [job for job, q in zip(jobs, owner) if q == rank]
        if mine:
            _core.fit_many(mine)

    failure: Exception | None = None
    try:
        result = _fit_many(networks, X, Y, epochs, lr, indices, "ignore",
                           bool(verbose) and rank == 0, callback, fit_arguments, run)
    except Exception as error:
        if stage == "checks":  # this rank's checks failed: the others learn it here
            def fail() -> None:
                raise error

            try:
                _agree(comm, fail)
            except Exception as every:
                restore()
                raise every from None
        if stage == "agreeing":  # another rank's checks failed
            restore()
            raise
        failure = error
    except BaseException as error:
        _end_job(comm, error)
        raise

    # ------------------------------------------------ every rank's results to every rank
    optimizers = fit_arguments.get("optimizer")
    optimizers = optimizers if isinstance(optimizers, list) else [optimizers] * n

    def pack() -> list[bytes]:
        if failure is not None:
            raise failure
        out = []
        for k, net in enumerate(networks):
            if owner[k] != rank:
                continue
            opt = optimizers[k]
            opt_state = None
            if isinstance(opt, optim.Optimizer):
                opt_state = ("optimizer", dict(vars(opt)))
            elif isinstance(opt, optim.LevenbergMarquardt):
                opt_state = ("lm", opt.mu)
            out.append(pickle.dumps({
                "k": k, "params": np.array(net.params), "history": net.history,
                "stop": result.stops[k], "error": _portable(result.errors.get(k)),
                "lanes": result.lanes[k], "optimizer": opt_state}))
        return out

    gathered = _agree(comm, pack, share=True)
    for q, packed in enumerate(gathered):
        for blob in packed:
            got = pickle.loads(blob)
            k = got["k"]
            net = networks[k]
            if q != rank:
                net.params = got["params"]
                net.history = got["history"]
                if got["optimizer"] is not None:
                    kind, value = got["optimizer"]
                    if kind == "optimizer":
                        vars(optimizers[k]).update(value)
                    else:
                        optimizers[k].mu = value
            result[k] = net.history
            result.stops[k] = got["stop"]
            result.lanes[k] = got["lanes"]  # as its rank stepped it
            if got["error"] is not None:
                error = _rank_error(q, R, got["error"])
                if q == rank:
                    error.__cause__ = result.errors[k]
                result.errors[k] = error
            else:
                result.errors.pop(k, None)
    result.errors = dict(sorted(result.errors.items()))
    if result.errors:
        if errors == "raise":
            raise result.errors[result.failed[0]]
        if errors == "warn":
            import warnings

            names = ", ".join(f"{k} ({result.stops[k]})" for k in result.failed)
            warnings.warn(f"{len(result.errors)} of {n} networks failed and stopped early: "
                          f"{names}; the others trained on (see the result's errors)",
                          RuntimeWarning, stacklevel=2)
    return result


# ---------------------------------------------------------------- searches over ranks


def _train_ahead_over_ranks(comm: Any, pending: list[tuple[Any, Any, Any]]) -> None:
    """fastprop.model_selection's fits trained ahead ((trained, estimator, job) triples),
    spread over the ranks as :func:`fit_many` spreads networks; afterwards every rank holds
    every fit's outcome (the fitted estimator's state, its error, its warnings), as
    model_selection._run_here leaves them in one process."""
    from .model_selection import _complete

    rank, R = comm.rank, comm.size
    hashes: dict[int, str] = {}

    def digest(A: Any) -> str | None:
        if A is None:
            return None
        if id(A) not in hashes:  # a fold's arrays are shared by the candidates
            hashes[id(A)] = _fingerprint(A if is_sparse(A) else np.asarray(A))
        return hashes[id(A)]

    def signature() -> list[Any]:
        return [(_fingerprint(trained.params), digest(trained.X), digest(trained.y),
                 digest(trained.w)) for trained, _, _ in pending]

    try:
        everyone = _agree(comm, signature, share=True)
        if any(s != everyone[0] for s in everyone):
            differ = [q for q, s in enumerate(everyone) if s != everyone[0]]
            raise DistributedError(
                f"the fits of this search differ between ranks: ranks {differ} have other "
                f"candidates or folds than rank 0, or a Pipeline step before the network "
                f"failed on some ranks only (the same data, parameters, splits and steps are "
                f"needed on every rank: give RandomizedSearchCV, and a cv splitter that "
                f"shuffles, a random_state)")
    except (ValueError, TypeError) as error:
        raise DistributedError(str(error)) from None

    def cost(final: Any, trained: Any) -> float:
        try:
            return float(final._net.n_params) * float(trained.X.shape[0]) * float(final.max_iter)
        except Exception:  # noqa: BLE001
            return 1.0

    owner = _owners([cost(final, trained) for trained, final, _ in pending], R)
    failure: Exception | None = None
    try:
        mine = [plan.job for (_, _, plan), q in zip(pending, owner) if q == rank]
        if mine:
            _core.fit_many(mine)
    except Exception as error:  # noqa: BLE001  reported to every rank below
        failure = error
    except BaseException as error:
        _end_job(comm, error)
        raise

    def pack() -> list[bytes]:
        if failure is not None:
            raise failure
        out = []
        for i, ((trained, final, plan), q) in enumerate(zip(pending, owner)):
            if q != rank:
                continue
            _complete(trained, final, plan)
            error: Any = trained.error
            try:
                pickle.dumps(error)
            except Exception:  # noqa: BLE001
                error = _rank_error(rank, R, _portable(error))
            caught = []
            for w in trained.warnings:
                message = w.message
                try:
                    pickle.dumps(message)
                except Exception:  # noqa: BLE001
                    message = str(message)
                caught.append((message, w.category, w.filename, w.lineno))
            out.append(pickle.dumps({"i": i, "state": trained.state, "error": error,
                                     "warnings": caught, "seconds": trained.seconds}))
        return out

    try:
        gathered = _agree(comm, pack, share=True)
    except Exception as error:  # noqa: BLE001  the search raises it on every rank
        raise DistributedError(str(error)) from None
    import warnings

    for q, packed in enumerate(gathered):
        if q == rank:
            continue
        for blob in packed:
            got = pickle.loads(blob)
            trained = pending[got["i"]][0]
            trained.state, trained.error = got["state"], got["error"]
            trained.seconds = got["seconds"]  # its preparation, training and end on rank q
            trained.warnings = [warnings.WarningMessage(*w) for w in got["warnings"]]


def __getattr__(name: str) -> Any:
    """GridSearchCV, RandomizedSearchCV, cross_validate and cross_val_score over ranks, on
    first use (they need scikit-learn)."""
    if name in ("GridSearchCV", "RandomizedSearchCV", "cross_validate", "cross_val_score"):
        from . import _distributed_search

        return getattr(_distributed_search, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
