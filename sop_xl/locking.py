"""One writer at a time: a lock file beside the workbook.

The lock holds the owner's host, process id and user. A second run on the same workbook is refused
with a message naming the owner; a lock left by a process that no longer exists (on this host) is
stale and is cleared.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import time
from pathlib import Path


class WorkbookLocked(RuntimeError):
    pass


def lock_path(path: Path) -> Path:
    return path.with_name(f"~{path.name}.sop-xl.lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkbookLock:
    def __init__(self, path):
        self.path = Path(path)
        self.file = lock_path(self.path)
        self.held = False

    def _owner(self) -> dict | None:
        try:
            return json.loads(self.file.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        me = {"host": socket.gethostname(), "pid": os.getpid(), "user": _user(), "since": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None or (owner.get("host") == me["host"] and not _alive(int(owner.get("pid", 0)))):
                    # Stale: the process that held it is gone (or the file is unreadable junk).
                    self.file.unlink(missing_ok=True)
                    continue
                since = time.strftime("%Y-%m-%d %H:%M", time.localtime(owner.get("since", 0)))
                raise WorkbookLocked(
                    f"{self.path.name} is being updated by {owner.get('user', '?')} "
                    f"(process {owner.get('pid')} on {owner.get('host')}, since {since}). "
                    f"Wait for that run to finish; if it crashed on another machine, delete {self.file.name}.")
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            return
        raise WorkbookLocked(f"could not take the lock {self.file}")

    def release(self) -> None:
        if self.held:
            owner = self._owner()
            if owner and owner.get("pid") == os.getpid():
                self.file.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return "unknown"
