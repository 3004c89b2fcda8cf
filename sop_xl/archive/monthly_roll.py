"""``sop-xl roll``: archive the closing cycle, then roll the workbook to the next month.

Order matters: everything is validated first (workbook and actuals), then the cycle is archived
(a failure stops the roll with the workbook unchanged), then a backup of the workbook is made and
the rolled workbook saved atomically. Re-running after a failed save re-archives the same cycle,
which replaces it: nothing is duplicated, nothing is lost.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from sop_xl.archive.from_workbook import cycle_from_book
from sop_xl.archive.store import open_archive
from sop_xl.plan.roll import Roll, apply_roll, prepare_roll


def backup_path(path: Path, roll: Roll) -> Path:
    return path.with_name(f"{path.stem}.before-roll-{roll.closing:%Y-%m}{path.suffix}")


def roll_workbook(path, actuals_path, url: str | None = None, progress=None):
    """Returns the roll, the archived cycle, rows written per part, the archive (masked) and the backup."""
    from sop_xl.workbook import open_file
    from sop_xl.workbook.actuals_file import read_actuals_file

    path = Path(path)
    archive = open_archive(url, workbook=path)
    try:
        with open_file(path, progress=progress) as book:  # the lock is held from reading to saving
            raw = read_actuals_file(actuals_path)
            cycle = cycle_from_book(book, progress)
            roll = prepare_roll(book, raw, progress)
            written = archive.write(cycle)
            apply_roll(roll)
            backup = backup_path(path, roll)
            shutil.copy2(path, backup)  # the workbook as it was: restoring it undoes the roll
            book.save()
    finally:
        archive.dispose()
    return roll, cycle, written, archive.where, backup
