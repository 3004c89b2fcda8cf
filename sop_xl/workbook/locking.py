"""One writer at a time: a lock file beside the workbook.

The lock holds the owner's host, process id and user. A second run on the same workbook is refused
with a message naming the owner; a lock left by a process that no longer exists (on this host) is
stale and is cleared.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from sop_xl.plan.runlog import current_user


class WorkbookLocked(RuntimeError):
    pass


LOCK_SUFFIX = ".sop-xl.lock"


def lock_path(path: Path) -> Path:
    """``~NAME.sop-xl.lock`` beside the workbook; for a name too long for that (file names end at 255
    bytes) the name is cut and a digest of the whole name keeps two such workbooks apart."""
    name = f"~{path.name}{LOCK_SUFFIX}"
    if len(name.encode("utf-8")) <= 255:
        return path.with_name(name)
    import hashlib
    digest = hashlib.sha1(path.name.encode("utf-8")).hexdigest()[:10]
    cut = path.name.encode("utf-8")[:200].decode("utf-8", "ignore")
    return path.with_name(f"~{cut}.{digest}{LOCK_SUFFIX}")


JUNK_GRACE_SECONDS = 5.0  # an unreadable lock younger than this may be one being written right now
PID_REUSE_MARGIN_SECONDS = 120.0


def _pid(owner: dict) -> int:
    try:
        return int(owner.get("pid", 0))
    except (TypeError, ValueError):
        return 0


def _age(file: Path) -> float:
    try:
        return time.time() - file.stat().st_mtime
    except OSError:
        return float("inf")


def _alive(pid: int, owner: dict | None = None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:  # e.g. Windows: an invalid pid
        return False
    started = _start_time(pid)
    if owner is not None and started is not None:
        try:
            since = float(owner.get("since", 0))
        except (TypeError, ValueError):
            since = 0.0
        # The pid now belongs to a process born after the lock was taken: reused. The margin is wide
        # because /proc start times follow wall-clock steps (NTP) made after the process started.
        if started > since + PID_REUSE_MARGIN_SECONDS:
            return False
    return True


def _start_time(pid: int) -> float | None:
    """When a process started (Linux /proc; None elsewhere or if unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return None


def _when(stamp) -> str:
    """The lock's time for a message; a damaged one (text, out of range) reads 'an unknown time'."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(stamp)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "an unknown time"


def excel_owner_file(path: Path) -> Path:
    """The owner file Excel keeps beside a workbook while it has it open: ``~$NAME``."""
    return path.with_name("~$" + path.name)


def _excel_owner(file: Path) -> str:
    """The user name Excel writes into its owner file (a length byte, then the name), best effort."""
    try:
        data = file.read_bytes()[:200]
        n = data[0] if data else 0
        name = data[1:1 + n].decode("cp1252", errors="replace").strip()
        return name if name.isprintable() and name else "someone"
    except OSError:
        return "someone"


def _refuse_if_open_in_excel(path: Path) -> None:
    owner = excel_owner_file(path)
    try:
        present = owner.is_file()
    except OSError:  # '~$' + a 255-byte name is no valid name: Excel cannot have written it either
        present = False
    if present:
        raise WorkbookLocked(
            f"{path.name} is open in Excel (by {_excel_owner(owner)}: {owner.name} is beside it). Close it "
            f"in Excel first; if Excel is not running, delete {owner.name}")


class WorkbookLock:
    def __init__(self, path):
        self.path = Path(path)
        self.file = lock_path(self.path)
        self.held = False

    def _owner(self) -> dict | None:
        try:
            owner = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return None
        return owner if isinstance(owner, dict) else None

    def acquire(self) -> None:
        _refuse_if_open_in_excel(self.path)
        if self.file.is_dir():
            raise WorkbookLocked(f"a folder named {self.file.name} stands where {self.path.name}'s lock file goes; "
                                 f"remove that folder, then run again")
        me = {"host": socket.gethostname(), "pid": os.getpid(), "user": current_user(), "since": time.time()}
        deadline = time.monotonic() + JUNK_GRACE_SECONDS + 1
        attempts = 0
        while attempts < 3:
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None and _age(self.file) < JUNK_GRACE_SECONDS and time.monotonic() < deadline:
                    # Just created by another process that has not written its name yet: not junk.
                    time.sleep(0.05)
                    continue
                if owner is None or (owner.get("host") == me["host"] and not _alive(_pid(owner), owner)):
                    # Stale: the process that held it is gone (or the file is unreadable junk).
                    self.file.unlink(missing_ok=True)
                    attempts += 1
                    continue
                since = _when(owner.get("since"))
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
