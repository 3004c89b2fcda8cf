"""The closing cycle as the workbook holds it, read through the contract (the workbook is only read)."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pandas as pd

from sop_xl import __version__
from sop_xl import contract as k
from sop_xl.archive.store import Cycle
from sop_xl.engine.demand import with_consensus
from sop_xl.plan.context import Context
from sop_xl.plan.runlog import current_user
from sop_xl.plan.validation import Problem, ValidationError, parse_settings

# Columns the add-in writes into input tables: they are results, not inputs, so they stay out of the
# fingerprint (re-running Forecast does not make the inputs "different").
_COMPUTED = {c.field for t in k.INPUT_TABLES for c in t.columns if not c.editable or c.formula}


def inputs_fingerprint(ctx: Context) -> str:
    """SHA-256 over every input table's values and the settings: equal fingerprints, equal inputs."""
    digest = hashlib.sha256()
    for table in sorted(k.INPUT_TABLES, key=lambda t: t.name):
        frame = ctx.frame(table)
        frame = frame[[c for c in frame.columns if c not in _COMPUTED]]
        digest.update(f"{table.name}|{','.join(frame.columns)}|{len(frame)}|".encode())
        if len(frame):
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(repr(sorted((n, str(v)) for n, v in ctx.settings.items())).encode())
    return digest.hexdigest()


def cycle_from_book(book, progress=None, user: str | None = None) -> Cycle:
    """Everything the archive keeps about the cycle the workbook closes (validated like a run)."""
    ctx = Context(book, progress)
    ctx.status("Archive: reading the plan …")
    ctx.load(k.INPUT_TABLES)
    demand = with_consensus(ctx.frame(k.DEMAND))
    if demand.empty or demand["stat_forecast"].isna().all():
        raise ValidationError([Problem(k.DEMAND.sheet, k.DEMAND.name, None, None, "there is no forecast to archive",
                                       "Run Forecast (and Balance, Financials) first")])
    items = ctx.frame(k.ITEMS)
    items = items.assign(owner=items["owner"] if "owner" in items.columns else None)
    models = ctx.previous(k.FORECAST_MODELS, missing_ok=True)
    if len(models):
        items = items.merge(models[["item", "model"]].drop_duplicates("item"), on="item", how="left")
    start = pd.Timestamp(ctx.settings["PlanStart"])
    return Cycle(
        cycle=start.date(), archived_by=user or current_user(), archived_at=datetime.now(timezone.utc),
        workbook=str(getattr(book, "label", "")), inputs_fingerprint=inputs_fingerprint(ctx),
        horizon=int(ctx.settings["Horizon"]), sop_xl_version=__version__,
        parts={"items": items, "demand": demand,
               "supply": ctx.previous(k.SUPPLY_PLAN, missing_ok=True),
               "financials": ctx.previous(k.FINANCIALS, missing_ok=True)},
    )


def configured_url(book) -> str | None:
    """The Settings' ArchiveUrl; None when blank or absent (then: the SQLite file beside the workbook)."""
    if not book.has_setting("ArchiveUrl"):
        return None
    settings, _problems = parse_settings({"ArchiveUrl": book.read_setting("ArchiveUrl")})  # TEXT: none
    return str(settings["ArchiveUrl"] or "").strip() or None


def archive_url(book, url: str | None = None) -> str | None:
    """Where to archive: ``--db`` first, then Settings ArchiveUrl, else None (the default file)."""
    return url or configured_url(book)


def archive_book(book, url: str | None = None, progress=None) -> tuple[Cycle, dict[str, int], str]:
    """Store the cycle of an open workbook (a file or the one in Excel) in its archive: ``url``, else
    Settings ArchiveUrl, else NAME.archive.sqlite beside it. Returns the cycle, rows per part and where."""
    from sop_xl.archive.store import open_archive

    cycle = cycle_from_book(book, progress)
    archive = open_archive(archive_url(book, url), workbook=book.path)
    try:
        written = archive.write(cycle)
    finally:
        archive.dispose()
    return cycle, written, archive.where


def archive_workbook(path, url: str | None = None, progress=None) -> tuple[Cycle, dict[str, int], str]:
    """Read the workbook (never writing it) and store its cycle. Returns the cycle, rows per part
    and where it went (password masked)."""
    from sop_xl.archive.store import open_archive
    from sop_xl.workbook import open_file

    if url:  # a bad --db is refused before the workbook is read
        open_archive(url, workbook=path).dispose()
    with open_file(path, writable=False, progress=progress) as book:
        return archive_book(book, url, progress)


def snapshot_and_archive(book, label: str | None = None, approve: bool = False, against: str | None = None,
                         url: str | None = None, progress=None) -> tuple[str, str]:
    """The Snapshot button and ``sop-xl snapshot``: the snapshot in the workbook, then the cycle in
    the plan archive (``url``, Settings ArchiveUrl, else NAME.archive.sqlite beside the workbook).

    The snapshot is the review's record and stays even when archiving fails (a server down must not
    stop the meeting): the second line says why, and ``sop-xl archive`` stores the cycle later.
    Returns (snapshot line, archive line: "archived …" or the reason it was not)."""
    from sop_xl.archive.errors import ArchiveError
    from sop_xl.plan.review import take_snapshot

    line = take_snapshot(book, label=label, progress=progress, approve=approve, against=against)
    try:
        cycle, written, where = archive_book(book, url, progress)
    except (ArchiveError, ValidationError) as exc:
        reason = "; ".join(map(str, exc.problems[:3])) if isinstance(exc, ValidationError) else str(exc)
        return line, f"{reason}; run sop-xl archive once it is fixed"
    finally:
        book.status(None)
    return line, f"archived cycle {cycle.cycle:%Y-%m} to {where} ({sum(written.values())} rows)"
