"""``sop-xl collect MASTER COPY…``: planners' copies merged into the master, the changes audited in the
master and in the archive.

Order, as for the roll: the master is locked and read, every copy read and validated, the merge computed
in memory; then the audit rows go to the archive (one transaction: a failure stops here with the
master unchanged); then the master is saved atomically (the one save path). A save that fails after
the archive committed leaves audit rows in the archive for changes the master does not hold; the
collect can simply be run again (its changes are found again) — the archive then holds them twice,
with two timestamps, which is the honest record of two attempts.
"""
from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from sop_xl.archive.store import open_archive
from sop_xl.plan.collect import CollectResult, collect
from sop_xl.plan.validation import Problem, ValidationError


def collect_files(master, copies, url: str | None = None, progress=None) -> tuple[CollectResult, str]:
    """Merge ``copies`` (paths) into ``master`` (a path) and save it. Returns the result and where the
    audit went (password masked)."""
    from sop_xl.workbook import open_file

    master = Path(master)
    same = [c for c in copies if Path(c).resolve() == master.resolve()]
    if same:
        raise ValidationError([Problem(str(same[0]), None, None, None, "is the master itself, not a copy",
                                       "Name the planners' copies after the master")])
    archive = open_archive(url, workbook=master)  # a bad URL is refused before any workbook is read
    try:
        with ExitStack() as stack:
            book = stack.enter_context(open_file(master, progress=progress))  # locked from reading to saving
            books = [(Path(c).name, stack.enter_context(open_file(c, writable=False, lock=False))) for c in copies]
            when = datetime.now(timezone.utc)
            result = collect(book, books, progress, when=when.astimezone())
            archive.write_audit(result.audit, result.cycle.date(), master.name, when)
            book.save()
    finally:
        archive.dispose()
    return result, archive.where
