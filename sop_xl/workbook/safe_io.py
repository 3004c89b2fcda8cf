"""Crash-safe file writes and checks on untrusted workbook packages.

A save writes a temporary file in the same folder, fsyncs it, keeps a backup of the original and
atomically replaces the target: a crash at any point leaves either the old or the new file, whole.
"""
from __future__ import annotations

import errno
import os
import re
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


MACRO_SUFFIXES = (".xlsm", ".xltm", ".xlam")  # packages that may hold a VBA project


class WrongExtension(ValueError):
    """A workbook would be saved under a name Excel refuses for its kind of package."""


def check_extension(source: Path, target: Path) -> None:
    """Excel opens a package only under the extension of its kind: a macro-enabled workbook (VBA, the
    ribbon's buttons) named .xlsx, or a macro-free one named .xlsm, is refused as 'not valid'. sop-xl
    does not convert one into the other (dropping the VBA would drop the buttons): it refuses."""
    if Path(target).is_dir():
        return  # refused elsewhere, as a folder
    macro_src = Path(source).suffix.lower() in MACRO_SUFFIXES
    macro_dst = Path(target).suffix.lower() in MACRO_SUFFIXES
    if macro_src == macro_dst:
        return
    if macro_src:
        raise WrongExtension(f"{Path(target).name}: {Path(source).name} holds macros (the ribbon's buttons), "
                             f"which an .xlsx file cannot; Excel would refuse to open it. Save it as "
                             f"{Path(target).with_suffix('.xlsm').name}")
    raise WrongExtension(f"{Path(target).name}: {Path(source).name} holds no macros, and Excel refuses a "
                         f"macro-free workbook named {Path(target).suffix}. Save it as "
                         f"{Path(target).with_suffix('.xlsx').name}")


def check_package(path: Path) -> None:
    """Refuse files that are not zip packages, or whose members would expand beyond sane sizes."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        raise UnsafeWorkbook(f"{path.name} is not an Excel workbook (.xlsx/.xlsm): not a zip package") from None
    except (NotImplementedError, ValueError, EOFError, zipfile.LargeZipFile) as exc:
        # A damaged directory can claim a zip version, flag or size no Excel package uses
        # (NotImplementedError: zip file version 6.4).
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise UnsafeWorkbook(f"{path.name} is damaged or not a valid Excel workbook ({reason})") from None
    if len(infos) > MAX_MEMBERS:
        raise UnsafeWorkbook(f"{path.name} has {len(infos)} parts; refusing to open more than {MAX_MEMBERS}")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise UnsafeWorkbook(f"{path.name}: part {info.filename[:60]} is encrypted; a workbook's parts never "
                                 f"are (Excel encrypts a whole file differently): the file is damaged or not from Excel")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            method = {9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard"}.get(info.compress_type,
                                                                                  f"method {info.compress_type}")
            raise UnsafeWorkbook(f"{path.name}: part {info.filename[:60]} is compressed with {method}, which Excel "
                                 f"neither writes nor reads; open and save the file in Excel (or re-zip it with "
                                 f"plain Deflate)")
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


def real_path(path) -> Path:
    """The file a path names, links followed: saving through a symlink must update the file it points
    to (os.replace on the link itself would turn the link into a copy)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def refuse_read_only(path: Path) -> None:
    """A file marked read-only (no write bit for anyone) is not replaced, even by a user (root) whom
    the file system would let: read-only is the owner's wish that it is not changed."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # not there yet: nothing to protect
    if not mode & 0o222:
        raise PermissionError(errno.EACCES, "the file is read-only; make it writable or save elsewhere with --out",
                              str(path))


NAME_MAX = 255  # bytes in one file name on every file system a workbook lives on (ext4, NTFS, APFS)
TEMP_STEM_CHARS = 100  # of the workbook's name in its temp files' names: a 250-character name still fits


def _stem_within(stem: str, budget: int) -> str:
    """``stem`` cut to at most ``budget`` bytes of UTF-8 (a long name's helpers must stay valid names)."""
    encoded = stem.encode("utf-8")
    return stem if len(encoded) <= budget else encoded[:budget].decode("utf-8", "ignore")


def backup_path(path: Path) -> Path:
    """``<stem>.backup<ext>`` beside the workbook; the stem is shortened when the name would be too long."""
    budget = NAME_MAX - len(f".backup{path.suffix}".encode("utf-8"))
    return path.with_name(f"{_stem_within(path.stem, budget)}.backup{path.suffix}")


def _temp_stem(target: Path) -> str:
    return _stem_within(target.stem, TEMP_STEM_CHARS)


def _temp_beside(target: Path) -> Path:
    """A new, empty temp file in the target's folder: ``.<stem>.<8 random chars><suffix>.tmp``
    (the stem shortened to TEMP_STEM_CHARS)."""
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{_temp_stem(target)}.", suffix=target.suffix + ".tmp", dir=folder)
    os.close(fd)
    return Path(tmp_name)


def stale_temps(target: Path) -> list[Path]:
    """Temp files an interrupted save of ``target`` left behind (same pattern as ``_temp_beside``)."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    pattern = re.compile(re.escape(f".{_temp_stem(target)}.") + r"[A-Za-z0-9_]{8}" + re.escape(f"{target.suffix}.tmp"))
    try:
        return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name) and p.is_file())
    except OSError:
        return []


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete what ``stale_temps`` finds. Call only while holding the workbook's lock: then no other
    process can be writing one of these files (every save of the workbook happens under the lock)."""
    removed = []
    for p in stale_temps(target):
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _keep_mode(target: Path, tmp: Path) -> None:
    """Give the new file the permissions of the one it replaces (a new file: the usual, by umask)."""
    try:
        if target.exists():
            shutil.copymode(target, tmp)
        else:
            umask = os.umask(0o022)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
    except OSError:
        pass


def atomic_save(target: Path, write: Callable[[Path], None], *, backup: bool = True) -> None:
    """Call ``write(tmp)`` to produce the new file, then swap it in atomically.

    The previous version is kept as ``<name>.backup<ext>`` (replaced on each save) when ``backup``;
    the backup is swapped in atomically too, so a crash never leaves a half-written backup. A crash
    can leave temp files named ``.<stem>.XXXXXXXX<ext>.tmp``: ``remove_stale_temps`` clears them
    (FileBook does so when it takes the workbook's lock).
    """
    target = real_path(target)  # a symlink stays a symlink: the file it points to is replaced
    if target.is_dir():  # refuse before writing anything, naming the path the user gave
        raise IsADirectoryError(errno.EISDIR, "it is a folder, not a file", str(target))
    refuse_read_only(target)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        tmp = _temp_beside(target)
    except OSError as exc:  # name the folder, not a temp file the user never heard of
        raise type(exc)(exc.errno, f"cannot write in this folder ({exc.strerror})", str(folder)) from exc
    bak_tmp = None
    try:
        try:
            write(tmp)
            _keep_mode(target, tmp)  # mkstemp makes 0600 files: others on a share could no longer read it
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        except OSError as exc:  # disk full, quota, a share gone: name the file the user asked for
            if exc.errno is None:
                raise
            raise type(exc)(exc.errno, f"{exc.strerror or 'cannot write'} while saving", str(target)) from exc
        if backup and target.exists():
            bak_tmp = _temp_beside(target)
            shutil.copy2(target, bak_tmp)
            with open(bak_tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(bak_tmp, backup_path(target))
        os.replace(tmp, target)
        fsync_dir(folder)
    finally:
        for leftover in (tmp, bak_tmp):
            if leftover is not None and leftover.exists():
                leftover.unlink()


def atomic_write_bytes(target: Path, data: bytes) -> None:
    def write(tmp: Path):
        tmp.write_bytes(data)
    atomic_save(Path(target), write, backup=False)
