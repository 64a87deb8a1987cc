"""One server per SQLite file: an advisory lock beside the database (storage layer).

Two servers on one file would each keep their own counters and catalogue
copy and diverge silently (budgets enforced per process, offers created by
one never decided by the other), so the second one refuses to start. The lock
is an flock on `<database>.lock`, which the kernel releases when the process
ends however it ends, so a crash never leaves a stale lock behind; the file
keeps the holder's pid for the message. The keys CLI does not take it: it
writes keys that a running server picks up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DatabaseInUse(RuntimeError):
    """Another live server holds the database; the message says which process."""


class DatabaseLock:
    """Held for as long as a server serves the database."""

    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}.lock")
        self._fd: int | None = None
        self._database = database

    def acquire(self) -> DatabaseLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DatabaseInUse(
                f"database {self._database} is already served by another arbiter process (pid {holder}); "
                "stop that server first, or give this one a database of its own with --db"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
