"""Saving and loading networks: one .npz file per network, readable without pickle.

The format, version 1
---------------------
A NumPy ``.npz`` archive (a zip of ``.npy`` arrays, as written by :func:`numpy.savez`) with
these arrays; strings are fixed-width unicode arrays (dtype ``<U…``), never object arrays,
so the file loads with ``allow_pickle=False``:

===============  ===================  ================================================
key              dtype, shape         meaning
===============  ===================  ================================================
``format``       str, ()              always ``"fastprop"``
``version``      int64, ()            1
``layers``       int64, (n+1,)        (l_0, ..., l_n)
``activations``  str, (n−1,)          σ_1 ... σ_{n−1}, one name per hidden layer
``bias``         bool, ()             whether every layer has b_i
``loss``         str, ()              the loss name, e.g. ``"sse"``
``dtype``        str, ()              ``"float64"`` or ``"float32"``
``seed``         uint64, ()           the initialisation seed (``net.seed``)
``fits``         int64, ()            optional (0 when absent): the fits the network
                                      ran, which with ``seed`` draw the next fit's
                                      shuffles and DP-SGD noise
``huber_delta``  float64, ()          optional: the delta of loss ``"huber"``
``params``       float64 or float32,  the parameter buffer ``net.params`` in the
                 (P,)                 network's dtype: W_0, b_0, W_1, b_1, ... (no b_i
                                      without bias), each W_i row-major;
                                      P = Σ_i l_{i+1} l_i (+ l_{i+1} with bias)
``extra_NAME``   any but object       optional user data: ``save(..., extra={"classes":
                                      a})`` stores ``a`` as ``extra_classes``
===============  ===================  ================================================

Other keys are ignored by :func:`load`, so later minor additions stay readable. A reader
of another language needs only a zip and an ``.npy`` parser.

:func:`save` appends ``".npz"`` to a name without it, as :func:`numpy.savez` does, and
writes atomically (a temporary file in the same directory, fsync, ``os.replace``).
:func:`load` checks every array against the others and raises ``ValueError`` naming the
problem for anything else: a truncated or corrupted archive, a pickle, an object array,
another format or version, a missing key, a wrong ``params`` length, an unknown name.

Hostile files
-------------
:func:`load` costs what the model in the file needs, whatever the file claims. It opens
only regular files (a directory, FIFO, device or socket is refused before anything is
read, and the open cannot block), and reads only the members the format needs: the
``extra_`` ones only with ``return_extra=True``, other keys never. Before it decompresses
any data it checks, from the zip directory and each member's .npy header alone:

- the zip directory takes at most 1 MiB (some 10,000 members); members are stored or
  deflated, as :func:`numpy.savez` and :func:`numpy.savez_compressed` write them;
- each .npy header is at most 10,000 bytes, describes no object array, and matches the
  size the directory declares for its member;
- the names and scalars have shape () and at most 64 characters, ``layers`` has at most
  one size more than ``params`` has values, ``activations`` one name per hidden layer, and
  ``params`` exactly the count ``layers`` implies;
- the members read decompress to at most 100 times their compressed size (plus 1 MiB; a
  file written by :func:`save` is stored, 1 time) and fit in the memory available.

Each refusal is a ``ValueError`` naming the file and the member.

The arrays hold the state that pickling a network keeps too (``fastprop._state.state``),
and a network is made from them by the function unpickling runs
(``fastprop.network.network_from_state``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, overload

import numpy as np

from . import _state
from ._state import FORMAT, VERSION
from ._validate import message, typed
from .network import Network, network_from_state

__all__ = ["FORMAT", "VERSION", "save", "load"]


def save(net: Network, path: str | os.PathLike[str], *,
         extra: Mapping[str, np.ndarray] | None = None) -> str:
    """Write ``net`` to ``path`` in the fastprop .npz format (see the module docstring).

    The file is written atomically: to a temporary file in the same directory, flushed to
    disk, then renamed over ``path``, so a crash leaves either the old file or the new one,
    never a half-written model. A symbolic link at ``path`` is written through (the file it
    leads to is replaced, the link stays).

    Parameters
    ----------
    net : Network
    path : str or os.PathLike
        Where to write. As with :func:`numpy.savez`, ``".npz"`` is appended when the name
        does not already end with it; an existing directory is refused (IsADirectoryError).
    extra : mapping of str to array-like, optional
        Additional arrays stored alongside (e.g. class names), each under the key
        ``"extra_" + name``; read them back with ``load(path, return_extra=True)``. Names
        must be identifiers; arrays must not be object arrays (store text as ``str``).

    Returns
    -------
    str
        The path actually written (with ``".npz"``).

    Raises
    ------
    OSError
        Its subclass for the failure (FileNotFoundError when the directory does not exist,
        PermissionError, IsADirectoryError, ...), with a message naming the path; also when
        something other than a regular file (a FIFO, a device) is at ``path``, which a
        rename would replace.
    """
    if not isinstance(net, Network):
        raise TypeError(message("net", "a fastprop.Network", typed(net)))
    return _state.save(net, path, extra=extra)


@overload
def load(path: str | os.PathLike[str], return_extra: Literal[False] = ...) -> Network: ...
@overload
def load(path: str | os.PathLike[str],
         return_extra: Literal[True]) -> tuple[Network, dict[str, np.ndarray]]: ...


def load(path: str | os.PathLike[str],
         return_extra: bool = False) -> Network | tuple[Network, dict[str, np.ndarray]]:
    """Read a network written by :func:`save`; the parameters are restored bit for bit.

    Nothing in the file is unpickled or executed: it is opened with
    ``np.load(path, allow_pickle=False)`` and every array is checked before use.

    Parameters
    ----------
    path : str or os.PathLike
        The file. When it does not exist and its name lacks ``".npz"``, ``path + ".npz"``
        is tried, mirroring :func:`save`.
    return_extra : bool, default False
        Also return the ``extra`` arrays given to :func:`save`, as a dict (empty if none).

    Returns
    -------
    Network, or (Network, dict of str to ndarray) with ``return_extra=True``

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ValueError
        When the file is not a fastprop model: not a regular file, not an .npz archive,
        truncated or corrupted, a pickle, another format or version, a missing key, arrays
        that do not fit together (e.g. ``params`` of the wrong length for ``layers``), or
        members out of proportion (see "Hostile files"). The message names the file and
        what is wrong.
    """
    net, extra = _state.load(path, network_from_state, extra=return_extra)
    return (net, extra) if return_extra else net
