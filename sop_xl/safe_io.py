"""Crash-safe file writes and checks on untrusted workbook packages.

A save writes a temporary file in the same folder, fsyncs it, keeps a backup of the original and
atomically replaces the target: a crash at any point leaves either the old or the new file, whole.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

# Limits for workbooks that arrive by mail: a decompression bomb is refused before anything is read.
MAX_MEMBER_BYTES = 512 * 1024 * 1024      # one XML part, uncompressed
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024  # the whole package, uncompressed
MAX_RATIO = 200                           # uncompressed / compressed for a large part
MAX_MEMBERS = 20_000


class UnsafeWorkbook(ValueError):
    """The file is not a workbook we are willing to open."""


def check_package(path: Path) -> None:
    """Refuse files that are not zip packages, or whose members would expand beyond sane sizes."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        raise UnsafeWorkbook(f"{path.name} is not an Excel workbook (.xlsx/.xlsm): not a zip package") from None
    if len(infos) > MAX_MEMBERS:
        raise UnsafeWorkbook(f"{path.name} has {len(infos)} parts; refusing to open more than {MAX_MEMBERS}")
    total = 0
    for info in infos:
        total += info.file_size
        big = info.file_size > 16 * 1024 * 1024
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MAX_MEMBER_BYTES or (big and ratio > MAX_RATIO):
            raise UnsafeWorkbook(
                f"{path.name}: part {info.filename} would expand to {info.file_size / 1e6:.0f} MB "
                f"(ratio {ratio:.0f}:1); refusing to open a possible decompression bomb")
    if total > MAX_TOTAL_BYTES:
        raise UnsafeWorkbook(f"{path.name} would expand to {total / 1e9:.1f} GB; refusing to open it")


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def backup_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.backup{path.suffix}")


def atomic_save(target: Path, write: Callable[[Path], None], *, backup: bool = True) -> None:
    """Call ``write(tmp)`` to produce the new file, then swap it in atomically.

    The previous version is kept as ``<name>.backup<ext>`` (replaced on each save) when ``backup``.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix + ".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if backup and target.exists():
            bak = backup_path(target)
            shutil.copy2(target, bak)
            with open(bak, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(folder)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: Path, data: bytes) -> None:
    def write(tmp: Path):
        tmp.write_bytes(data)
    atomic_save(Path(target), write, backup=False)
