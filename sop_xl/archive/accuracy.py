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


def archived_forecasts(archive, lags=LAGS):
    """The archived statistical forecast and consensus at ``lags``, with each item's family and owner
    as they were in that cycle (a planner is credited for the families they owned then)."""
    demand = archive.read("demand", lag=lags, columns=("stat_forecast", "consensus"))
    items = archive.read("items", columns=("family", "owner"))
    return demand.merge(items, on=["cycle", "item"], how="left")


def _accuracy(book, forecasts, lags, progress) -> AccuracyByLag:
    ctx = Context(book, progress)
    ctx.load((k.ITEMS, k.ACTUALS))
    return accuracy_by_lag(forecasts, ctx.frame(k.ACTUALS), lags=lags, season_length=int(ctx.settings["SeasonLength"]))


def accuracy_for_workbook(path, url: str | None = None, lags=LAGS, progress=None, write: bool = False) -> AccuracyByLag:
    """Accuracy by lag of the archive's forecasts against the workbook's actuals. With ``write`` the
    ForecastAccuracy sheet gets the result (and the Dashboard's accuracy KPI then comes from it);
    without, the workbook is only read."""
    from sop_xl.workbook import open_file

    archive = open_archive(url, workbook=path)
    try:
        forecasts = archived_forecasts(archive, lags)
    finally:
        archive.dispose()
    with open_file(path, writable=write, progress=progress) as book:
        if not write:
            return _accuracy(book, forecasts, lags, progress)
        with recording(book, "accuracy") as rec:
            res = _accuracy(book, forecasts, lags, progress)
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
        book.save()
    return res
