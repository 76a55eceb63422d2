"""The live progress bar of ``Network.fit(verbose=True)``."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Progress"]


class Progress:
    """A live progress bar for fit: tqdm when installed, a plain one-line bar otherwise."""

    def __init__(self, epochs: int, samples: int) -> None:
        self.epochs, self.samples = epochs, samples
        self.last = 0.0
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=epochs, unit="epoch", dynamic_ncols=True)

    def update(self, epoch: int, logs: dict[str, Any]) -> None:
        seconds = logs["time"]
        rate = self.samples * (epoch + 1) / seconds if seconds > 0 else float("inf")
        info = f"loss {logs['loss']:.4g}"
        if "val_loss" in logs:
            info += f", val {logs['val_loss']:.4g}"
        info += f", {rate:,.0f} samples/s"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(info, refresh=False)
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and epoch + 1 < self.epochs:
            return  # at most ten redraws a second
        self.last = now
        done = (epoch + 1) / self.epochs
        eta = seconds / done - seconds
        bar = "#" * int(24 * done)
        sys.stderr.write(f"\repoch {epoch + 1}/{self.epochs} [{bar:<24}] {info}, ETA {eta:.1f} s ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")


class ManyProgress:
    """One progress bar for :func:`fastprop.fit_many`: the epochs of all networks."""

    def __init__(self, epochs: int, networks: int) -> None:
        self.epochs, self.networks, self.done = epochs, networks, 0
        self.last = 0.0
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=epochs, unit="epoch", dynamic_ncols=True)

    def update(self, epoch: int, logs: dict[str, Any]) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and self.done < self.epochs:
            return  # at most ten redraws a second
        self.last = now
        bar = "#" * int(24 * self.done / self.epochs)
        sys.stderr.write(f"\r{self.networks} networks: {self.done}/{self.epochs} epochs of "
                         f"them all [{bar:<24}] ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")
