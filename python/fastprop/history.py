"""What ``Network.fit`` and ``Network.trace`` return: :class:`History` and :class:`Trace`."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np

__all__ = ["History", "Trace"]


class Trace(NamedTuple):
    """Every z_i and a_i of a forward pass, indexed by layer as in the model.

    ``z[i]`` for 1 ≤ i ≤ n (``z[0]`` is None) and ``a[i]`` for 0 ≤ i ≤ n−1 (``a[0]`` is the
    input, ``a[n]`` is None): arrays of shape (t, l_i), or (l_i,) for a single sample.
    """

    z: list[np.ndarray | None]
    a: list[np.ndarray | None]


class History(np.ndarray):
    """The loss of every epoch of a :meth:`Network.fit`: a float64 array, with more attached.

    Attributes
    ----------
    val_loss : ndarray or None
        The loss on the validation data after every epoch, when there was any.
    time : ndarray
        Wall-clock seconds since fit began, at the end of every epoch.
    best_epoch : int or None
        With ``patience``: the epoch of the best monitored loss (0-based).
    stop : str
        Why training ended: "done", "early_stopping", "callback", or "converged"
        (Levenberg–Marquardt found no better point).
    lr : ndarray or None
        The learning rate of every epoch (None for Levenberg–Marquardt, which has none).

    Arrays derived from it (slices, arithmetic) are plain data without these attributes;
    ``copy.copy``, ``copy.deepcopy`` and pickle keep them.
    """

    val_loss: np.ndarray | None
    time: np.ndarray
    best_epoch: int | None
    stop: str
    lr: np.ndarray | None

    def __new__(cls, loss: np.ndarray, val_loss: np.ndarray | None = None,
                time: np.ndarray | None = None, best_epoch: int | None = None,
                stop: str = "done", lr: np.ndarray | None = None) -> "History":
        obj = np.asarray(loss, dtype=np.float64).view(cls)
        obj.val_loss = val_loss
        obj.time = np.zeros(len(obj)) if time is None else time
        obj.best_epoch = best_epoch
        obj.stop = stop
        obj.lr = lr
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.val_loss, self.time, self.best_epoch, self.stop = None, None, None, "done"
        self.lr = None

    def __reduce__(self):
        return (History, (np.asarray(self), self.val_loss, self.time, self.best_epoch, self.stop,
                          self.lr))

    def __copy__(self) -> "History":
        return History(np.array(self), self.val_loss, self.time, self.best_epoch, self.stop,
                       self.lr)

    def __deepcopy__(self, memo: dict) -> "History":
        return History(np.array(self), *copy.deepcopy(
            (self.val_loss, self.time, self.best_epoch, self.stop, self.lr), memo))
