"""``sop-xl roll``: archive the closing cycle, then roll the workbook to the next month.

Order matters: everything is validated first (workbook and actuals), then the cycle is archived
(a failure stops the roll with the workbook unchanged), then a backup of the workbook is made and
the rolled workbook saved atomically. A ForecastAccuracy sheet that holds rows is refreshed on the
way (the closing month's actuals score the archived forecasts). Re-running after a failed save re-archives the same cycle,
which replaces it: nothing is duplicated, nothing is lost.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from sop_xl import contract as k
from sop_xl.archive.accuracy import LAGS, write_accuracy
from sop_xl.archive.errors import ArchiveError
from sop_xl.archive.from_workbook import archive_url, cycle_from_book
from sop_xl.archive.store import open_archive
from sop_xl.plan.book import TableMissing
from sop_xl.plan.roll import Roll, apply_roll, prepare_roll
from sop_xl.plan.validation import ValidationError


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
    _refresh_accuracy(book, url, roll, progress)
    return roll, cycle, written, archive.where, target


def _refresh_accuracy(book, url, roll: Roll, progress) -> None:
    """The ForecastAccuracy sheet again, when the workbook uses it (``accuracy --write`` filled it):
    the closing month's actuals now score archived forecasts, and the Dashboard's accuracy KPI reads
    the sheet. A failure here does not undo the roll; it is said in the roll's warnings."""
    try:
        raw = book.read_table(k.FORECAST_ACCURACY)
    except TableMissing:
        return
    if not any(v not in (None, "") for row in raw.rows for v in row):
        return  # never filled: the KPI stays the backtest's, as before the roll
    try:
        archive = open_archive(archive_url(book, url), workbook=book.path)
        try:
            res = write_accuracy(book, archive, LAGS, progress)
        finally:
            archive.dispose()
    except (ArchiveError, ValidationError, OSError) as exc:
        reason = exc.summary() if isinstance(exc, ValidationError) else str(exc)
        roll.warnings.append(f"ForecastAccuracy was not refreshed ({reason.splitlines()[0]}); "
                             f"run sop-xl accuracy --write after the roll")
        return
    roll.warnings.append(f"ForecastAccuracy refreshed from the archive ({res.rows} forecast-actual pairs)")


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
