"""Checkpoints of a fit (``fit(..., checkpoint=path, checkpoint_every=k)``).

Every k epochs (and after the last), the state a fit needs to go on is written to ``path``
(a .npz: temporary file, then ``os.replace``, so a reader sees the old file or the new one,
never half of one): the parameters, the optimiser's buffers and step count, the epochs done,
the history so far, the seed, and early stopping's state (best loss, its epoch, the epochs
waited, the parameters it would restore). A fit started with the same arguments while the file
exists resumes from it: the core draws the sample orders of the epochs done again (and skips
them), so the rest of the run is the bits of an uninterrupted one.
"""

from __future__ import annotations

import errno
import json
import math
import os
from typing import Any

import numpy as np

from . import _npz
from ._files import os_error
from ._state import _write_atomically
from ._validate import check_int, message, typed
from .history import History

__all__ = ["Checkpoint"]

_FORMAT = "fastprop-checkpoint-1"


class Checkpoint:
    """The checkpoint of one fit: what was resumed, and the state mirrored after each epoch.
    ``writes``: whether this process writes the file (in a data-parallel fit, rank 0 alone),
    so that its directory must exist."""

    def __init__(self, path: str | os.PathLike, every: int, *, identity: dict[str, Any],
                 params: np.ndarray, state: Any, epochs: int, patience: int, min_delta: float,
                 restore_best: bool, validation: bool, writes: bool = True) -> None:
        self.path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
        if not isinstance(self.path, str):  # refused now, not at the first write
            raise TypeError(message("checkpoint", "a file path (a str or os.PathLike of str)",
                                    typed(path)))
        if not self.path:
            raise ValueError("checkpoint must be a file path, got ''")
        directory = os.path.dirname(os.path.abspath(self.path))
        if writes and not os.path.isdir(directory):  # refused now, not after epochs of work
            raise os_error(FileNotFoundError, errno.ENOENT, f"cannot write the checkpoint to "
                           f"{self.path}: the directory {directory} does not exist")
        self.every = check_int(every, "checkpoint_every", low=1)
        self.identity = {k: _plain(v) for k, v in identity.items()}
        self.params, self.state, self.epochs = params, state, epochs
        self.patience, self.min_delta = patience, min_delta
        self.validation = validation
        self.keep = patience > 0 and restore_best
        self.loss: list[float] = []
        self.val_loss: list[float] = []
        self.time: list[float] = []
        self.lr: list[float] = []
        self.time_offset = 0.0
        self.best_loss = math.inf
        self.best_epoch = 0
        self.waited = 0
        self.best: np.ndarray | None = None
        self.stopped = False
        self.seed: int | None = None
        self.start = params.copy() if self.keep and not validation else None

    # ------------------------------------------------------------------ reading
    def read(self) -> dict[str, np.ndarray] | None:
        """The file's arrays, or None when there is no file yet. Only a regular file is
        opened, and every member is checked from its header (its dtype kind and exact shape:
        the parameters' and buffers' sizes, histories of at most the fit's epochs) before its
        data is read, so a damaged or hostile file costs no more than a real checkpoint."""
        try:
            f = _npz.open_regular(self.path, "checkpoint")
        except FileNotFoundError:
            return None
        try:
            with f:
                return self._read_archive(_npz.Archive(f))
        except _npz.DAMAGE as error:
            raise ValueError(f"checkpoint {self.path!r} is truncated or corrupted "
                             f"({type(error).__name__}: {error})") from None
        except ValueError as error:
            raise ValueError(f"checkpoint {self.path!r} is not a fastprop checkpoint of this "
                             f"fit: {error}") from None

    def _read_archive(self, archive: Any) -> dict[str, np.ndarray]:
        n = self.params.size
        epochs = None  # the histories' common length, from the first of them
        expected: dict[str, tuple[str, Any]] = {
            "format": ("U", ()), "identity": ("U", ()), "params": ("f", (n,)),
            "steps": ("iu", ()), "best_loss": ("f", ()), "best_epoch": ("iu", ()),
            "waited": ("iu", ()), "stopped": ("b", ()), "seed": ("iu", ()),
            "best": ("f", None), "loss": ("f", "epochs"), "val_loss": ("f", "epochs"),
            "time": ("f", "epochs"), "lr": ("f", "epochs")}
        for key in ("m", "v"):
            if getattr(self.state, key) is not None:
                expected[key] = ("f", (n,))
        missing = [key for key in expected if key not in archive.members]
        if missing:
            raise ValueError(f"it has no {', '.join(missing)}")
        headers = {}
        for key, (kinds, shape) in expected.items():
            npy = archive.header(key)
            if npy.dtype.kind not in kinds:
                raise ValueError(f"{key} has dtype {npy.dtype}")
            if shape == "epochs":
                if epochs is None:
                    epochs = npy.shape[0] if len(npy.shape) == 1 else -1
                shape = (epochs,) if epochs >= 0 else None
                if shape is None or npy.shape != shape:
                    raise ValueError(f"{key} has shape {npy.shape}: the histories must be "
                                     f"1-D and of one length")
            elif shape is None:  # early stopping's best parameters, or none
                if npy.shape not in ((n,), (0,)):
                    raise ValueError(f"best has shape {npy.shape}, not ({n},) or (0,)")
            elif npy.shape != shape:
                raise ValueError(f"{key} has shape {npy.shape}, not {shape}")
            if key in ("format", "identity") and npy.nbytes > (1 << 20):
                raise ValueError(f"{key} takes {npy.nbytes:,} bytes")
            headers[key] = npy
        archive.check_sizes(list(expected), None)
        saved = {key: archive.read(key, npy) for key, npy in headers.items()}
        if str(saved["format"]) != _FORMAT:
            raise ValueError(f"its format is {str(saved['format'])[:80]!r}, not {_FORMAT!r}")
        try:
            identity = json.loads(str(saved["identity"]))
        except (ValueError, RecursionError) as error:
            raise ValueError(f"its identity is not JSON ({type(error).__name__})") from None
        if not isinstance(identity, dict):
            raise ValueError("its identity is not a JSON object")
        for key in ("steps", "best_epoch", "waited"):
            if int(saved[key]) < 0 or int(saved[key]) > 2**63 - 1:
                raise ValueError(f"{key} is {int(saved[key])}")
        return saved

    def resume(self, saved: dict[str, np.ndarray]) -> dict[str, Any]:
        """Sets the parameters, the optimiser's state and the mirrored state from `saved`;
        returns the TrainOptions and fit arguments that continue the run."""
        theirs = json.loads(str(saved["identity"]))  # checked by read
        differ = [k for k in self.identity if theirs.get(k) != self.identity[k]]
        if differ:
            shown = "; ".join(f"{k}: checkpoint {theirs.get(k)!r}, this fit {self.identity[k]!r}"
                              for k in differ)
            raise ValueError(f"checkpoint {self.path!r} is of another fit ({shown}); remove it "
                             f"or use another path")
        done = len(saved["loss"])
        if done > self.epochs:
            raise ValueError(f"checkpoint {self.path!r} holds {done} epochs, more than the "
                             f"{self.epochs} this fit asks for: ask for at least {done}, or "
                             f"remove it or use another path")
        self.params[...] = saved["params"]
        for key in ("m", "v"):
            buffer = getattr(self.state, key)
            if buffer is not None:
                buffer[...] = saved[key]
        self.state.steps = int(saved["steps"])
        self.loss = saved["loss"].tolist()
        self.val_loss = saved["val_loss"].tolist()
        self.time = saved["time"].tolist()
        self.lr = saved["lr"].tolist()
        self.time_offset = self.time[-1] if self.time else 0.0
        self.best_loss = float(saved["best_loss"])
        self.best_epoch = int(saved["best_epoch"])
        self.waited = int(saved["waited"])
        self.best = saved["best"] if saved["best"].size else None
        self.stopped = bool(saved["stopped"])
        self.seed = int(saved["seed"])
        if self.start is not None:
            self.start = self.params.copy()
        done = len(self.loss)
        return {"start_epoch": self.epochs if self.stopped else min(done, self.epochs),
                "best_loss": self.best_loss if math.isfinite(self.best_loss) else math.nan,
                "best_epoch": self.best_epoch, "waited": self.waited,
                "best_params": self.best}

    # ------------------------------------------------------------------ after each epoch
    def epoch_end(self, epoch: int, loss: float, val_loss: float, seconds: float,
                  lr: float) -> bool:
        """Mirrors the epoch into the state (early stopping as the core does it); True when a
        checkpoint is due."""
        self.loss.append(loss)
        self.val_loss.append(val_loss)
        self.time.append(self.time_offset + seconds)
        self.lr.append(lr)
        if self.patience > 0:
            E = val_loss if self.validation else loss
            if math.isfinite(E) and E < self.best_loss - self.min_delta:
                self.best_loss, self.best_epoch, self.waited = E, epoch, 0
                if self.keep:
                    self.best = self.params.copy() if self.validation else self.start
            else:
                self.waited += 1
                self.stopped = self.waited >= self.patience
        if self.start is not None:
            self.start = self.params.copy()
        return (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs or self.stopped

    def write(self) -> None:
        """The state after the last epoch, to the file, atomically."""
        arrays = {
            "format": np.array(_FORMAT), "identity": np.array(json.dumps(self.identity)),
            "params": np.array(self.params), "steps": np.array(self.state.steps),
            "loss": np.array(self.loss, float), "val_loss": np.array(self.val_loss, float),
            "time": np.array(self.time, float), "lr": np.array(self.lr, float),
            "best_loss": np.array(self.best_loss),
            "best_epoch": np.array(self.best_epoch), "waited": np.array(self.waited),
            "best": np.array(self.best if self.best is not None else self.params[:0]),
            "stopped": np.array(self.stopped), "seed": np.array(self.seed or 0, np.uint64),
        }
        for key in ("m", "v"):
            buffer = getattr(self.state, key)
            if buffer is not None:
                arrays[key] = np.array(buffer)
        _write_atomically(self.path, arrays, "checkpoint")

    def history(self, record: Any, patience: int | None) -> History:
        """The whole run's history: the checkpoint's epochs, then this fit's."""
        has_val = self.validation
        loss = np.array(self.loss, float)
        stop = record.stop.name
        if self.stopped:
            stop = "early_stopping"
        return History(loss, np.array(self.val_loss, float) if has_val else None,
                       np.array(self.time, float), record.best_epoch if patience else None,
                       stop if stop in ("early_stopping", "callback", "converged") else "done",
                       np.array(self.lr, float))


def _plain(value: Any) -> Any:
    """A JSON-able form of an identity value (tuples as lists, numpy scalars as numbers)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item")
                                 else str(v)))
