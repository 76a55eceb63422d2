"""Writing the files fastprop makes (models, checkpoints, ONNX models, C code) atomically, with
errors that say which file and why, and naming the kind of a file that is not a regular one."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat

__all__ = ["file_kind", "os_error", "write_file"]


def file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def write_file(path: str | os.PathLike[str], data: bytes, what: str) -> str:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, flushed to disk, then
    renamed over ``path``, so that a crash leaves the old file or the new one, never half of one.

    What may be at ``path`` already: nothing, or a regular file, which is replaced and whose
    permission bits the new file keeps (a file made private stays private; its other hard
    links, if any, keep the old contents, as with any rename). A symbolic link is written
    through: the file it leads to is replaced (atomically, by a temporary file beside that
    file), and the link stays. Anything else (a directory, a device, a FIFO, a socket, or a
    link to one) is refused, since a rename would put a regular file in its place.

    Raises the OSError subclass of the failure (PermissionError, FileNotFoundError,
    IsADirectoryError, ...) with a message that names ``what`` and the path.
    """
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path must be a str or os.PathLike of str, got {type(path).__name__}")
    if not path:
        raise ValueError(f"path must name the file to write the {what} to, got ''")
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise os_error(type(error), error.errno, f"cannot write the {what} to {path}: "
                                                  f"{error.strerror or error}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise os_error(IsADirectoryError, errno.EISDIR,
                        f"cannot write the {what} to {path}: it is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        link = f" (a symbolic link to {target})" if target != path else ""
        raise os_error(OSError, errno.EINVAL,
                        f"cannot write the {what} to {path}{link}: it is {file_kind(mode)}, "
                        f"not a regular file, and writing would replace it")
    directory, name = os.path.split(os.path.abspath(target))
    # The temporary name stays within 255 bytes whatever the file's: at most 64 of them kept.
    stem = os.fsencode(name)[:64].decode(errors="ignore")
    tmp = os.path.join(directory, f".{stem}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        try:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(fd, stat.S_IMODE(mode))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
    except OSError as error:
        reason = error.strerror or str(error)
        if isinstance(error, FileNotFoundError):
            if os.path.isdir(directory):  # e.g. /proc: there, but no file can be made in it
                reason = f"no file can be created in the directory {directory} ({reason})"
            else:
                reason = f"the directory {directory} does not exist"
        raise os_error(type(error), error.errno,
                        f"cannot write the {what} to {path}: {reason}") from None
    _fsync_directory(directory)
    return path


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def os_error(cls: type[OSError], code: int | None, message: str) -> OSError:
    """An OSError whose str() is the message alone, with the errno kept as an attribute."""
    error = cls(message)
    error.errno = code
    return error
