"""One writer per results file: an exclusive lock on a sidecar file ``<file>.lock``.

The writer takes an exclusive ``flock`` on ``<results file>.lock`` (e.g. ``run.h5.lock``) and
writes who holds it there (pid, host, start time, command); a second writer of the same file is
refused at once with :class:`~analogsim.errors.ResultsFileError` naming the file and the holder.
The lock goes with the process: closing the writer releases it and removes the sidecar, and the
system releases the lock of a process that was killed, so the next run takes a stale sidecar
over. Where the file system offers no ``flock`` (some network file systems), the record alone
decides: a holder recorded on this host whose process is gone is taken over; one on another
host is respected.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import platform
import sys
from pathlib import Path

from analogsim.errors import ResultsFileError

try:
    import fcntl
except ImportError:  # not on POSIX: the record alone decides
    fcntl = None  # type: ignore[assignment]

_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


def lock_path(path: Path) -> Path:
    """The sidecar lock file of results file ``path``: ``<path>.lock``."""
    return path.with_name(path.name + ".lock")


def _read_holder(fd: int) -> dict[str, object]:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        holder = json.loads(os.read(fd, 65536).decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def describe_holder(holder: dict[str, object]) -> str:
    """``pid 123 on host h, started 2024-…`` (or what the record has)."""
    if not holder.get("pid"):
        return "a process that has not recorded itself yet"
    return (f"pid {holder.get('pid')} on host {holder.get('host', '?')}, started "
            f"{holder.get('started', '?')}")


def _alive_here(holder: dict[str, object]) -> bool:
    """Whether the recorded holder may still be running (always, on another host)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if holder.get("host") != platform.node():
        return True
    if pid == os.getpid():
        return True  # this process holds it already (a second writer of the same file)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ResultsLock:
    """The exclusive lock of one results file, held from construction to :meth:`release`.

    Raises:
        ResultsFileError: another writer holds the file; the message names it and the holder.
    """

    def __init__(self, path: Path, command: str | None = None) -> None:
        self.path = path
        self.lock_file = lock_path(path)
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if self._acquire(fd):
                    break  # the sidecar is still the one we locked
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # removed by its previous holder between open and lock: again
        self.fd: int | None = fd
        record = {"pid": os.getpid(), "host": platform.node(),
                  "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                  "command": command if command is not None else " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode("utf-8"))
        os.fsync(fd)

    def _acquire(self, fd: int) -> bool:
        """Lock ``fd``; False when it no longer is the sidecar on disk (retry)."""
        flocked = False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                flocked = True
            except BlockingIOError:
                self._refuse(_read_holder(fd))
            except OSError as error:
                if error.errno not in _NO_FLOCK:
                    raise
        if not flocked and _alive_here(holder := _read_holder(fd)):
            self._refuse(holder)
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.lock_file))
        except FileNotFoundError:
            return False

    def _refuse(self, holder: dict[str, object]) -> None:
        raise ResultsFileError(
            f"{self.path} is being written by another analogsim run ({describe_holder(holder)}; "
            f"lock {self.lock_file}); wait for it to finish, or write to another results file")

    def release(self) -> None:
        """Remove the sidecar and release the lock (idempotent)."""
        if self.fd is None:
            return
        try:
            self.lock_file.unlink(missing_ok=True)
        finally:
            os.close(self.fd)  # closing releases the flock
            self.fd = None
