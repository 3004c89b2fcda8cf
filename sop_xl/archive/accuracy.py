"""Accuracy by lag of the archived forecasts against the actuals the workbook now holds."""
from __future__ import annotations

from sop_xl import contract as k
from sop_xl.archive.store import open_archive
from sop_xl.engine.accuracy_by_lag import AccuracyByLag, accuracy_by_lag, accuracy_table
from sop_xl.plan.book import TableMissing
from sop_xl.plan.columns import column_positions
from sop_xl.plan.context import Context
from sop_xl.plan.pipeline import rows_for
from sop_xl.plan.runlog import recording
from sop_xl.plan.validation import ValidationError, missing_table_problem

LAGS = (1, 3, 6)


def archived_forecasts(archive, lags=LAGS, until=None):
    """The archived statistical forecast and consensus at ``lags`` (periods up to ``until``), with each
    item's family and owner as they were in that cycle (a planner is credited for the families they
    owned then)."""
    return archive.read_forecasts(lags, until)


def _accuracy(book, archive, lags, progress) -> AccuracyByLag:
    ctx = Context(book, progress)
    ctx.load((k.ITEMS, k.ACTUALS))
    actuals = ctx.frame(k.ACTUALS)
    until = actuals["period"].max() if len(actuals) else None  # later forecasts have nothing to meet yet
    forecasts = archived_forecasts(archive, lags, until)
    return accuracy_by_lag(forecasts, actuals, lags=lags, season_length=int(ctx.settings["SeasonLength"]))


def accuracy_for_workbook(path, url: str | None = None, lags=LAGS, progress=None, write: bool = False) -> AccuracyByLag:
    """Accuracy by lag of the archive's forecasts against the workbook's actuals. With ``write`` the
    ForecastAccuracy sheet gets the result (and the Dashboard's accuracy KPI then comes from it);
    without, the workbook is only read."""
    from sop_xl.archive.from_workbook import archive_url
    from sop_xl.workbook import open_file

    with open_file(path, writable=write, progress=progress) as book:
        archive = open_archive(archive_url(book, url), workbook=path)  # --db, Settings ArchiveUrl, the default
        try:
            if not write:
                return _accuracy(book, archive, lags, progress)
            res = write_accuracy(book, archive, lags, progress)
            book.save()
        finally:
            archive.dispose()
    return res


def write_accuracy(book, archive, lags, progress) -> AccuracyByLag:
    """Accuracy into the ForecastAccuracy sheet, logged like every write (the caller saves)."""
    with recording(book, "accuracy") as rec:
        res = _accuracy(book, archive, lags, progress)
        table = accuracy_table(res)
        try:
            raw = book.read_table(k.FORECAST_ACCURACY)
            column_positions(raw.headers, k.FORECAST_ACCURACY)
        except TableMissing as exc:
            raise ValidationError([missing_table_problem(exc)]) from None
        book.write_table(k.FORECAST_ACCURACY, rows_for(k.FORECAST_ACCURACY, table, raw.first_row, raw.first_col,
                                                       raw.headers))
        rec.message = (f"{len(table)} rows from {res.rows} forecast-actual pairs"
                       + (f", cycles {table['cycles'].iloc[0]}" if len(table) else ""))
    return res
