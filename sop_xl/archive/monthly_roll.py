"""``sop-xl roll``: archive the closing cycle, then roll the workbook to the next month.

Order matters: everything is validated first (workbook and actuals), then the cycle is archived
(a failure stops the roll with the workbook unchanged), then a backup of the workbook is made and
the rolled workbook saved atomically. Re-running after a failed save re-archives the same cycle,
which replaces it: nothing is duplicated, nothing is lost.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from sop_xl.archive.from_workbook import archive_url, cycle_from_book
from sop_xl.archive.store import open_archive
from sop_xl.plan.roll import Roll, apply_roll, prepare_roll


def backup_path(path: Path, roll: Roll) -> Path:
    return path.with_name(f"{path.stem}.before-roll-{roll.closing:%Y-%m}{path.suffix}")


def roll_book(book, actuals_path, url: str | None = None, progress=None, backup=None):
    """Roll an open workbook (a file, or the one in Excel: the New cycle button). ``backup(path)``
    keeps the workbook as it was before anything changes (default: the adapter's ``save_copy``, the
    state in memory). Returns the roll, the archived cycle, rows written per part, the archive
    (masked) and the backup; the caller saves (Excel: the planner)."""
    from sop_xl.workbook.actuals_file import read_actuals_file

    raw = read_actuals_file(actuals_path)
    cycle = cycle_from_book(book, progress)
    roll = prepare_roll(book, raw, progress)
    archive = open_archive(archive_url(book, url), workbook=book.path)
    try:
        written = archive.write(cycle)
    finally:
        archive.dispose()
    target = backup_path(Path(book.path), roll)
    (backup or book.save_copy)(target)  # restoring it undoes the roll
    apply_roll(roll)
    return roll, cycle, written, archive.where, target


def roll_workbook(path, actuals_path, url: str | None = None, progress=None):
    """:func:`roll_book` on a file, saved atomically; the backup is a byte copy of the file."""
    from sop_xl.workbook import open_file

    path = Path(path)
    if url:  # a bad --db is refused before the workbook is opened
        open_archive(url, workbook=path).dispose()
    with open_file(path, progress=progress) as book:  # the lock is held from reading to saving
        result = roll_book(book, actuals_path, url, progress, backup=lambda target: shutil.copy2(path, target))
        book.save()
    return result
