"""Accuracy by lag of the archived forecasts against the actuals the workbook now holds."""
from __future__ import annotations

from sop_xl import contract as k
from sop_xl.archive.store import open_archive
from sop_xl.engine.accuracy_by_lag import AccuracyByLag, accuracy_by_lag
from sop_xl.plan.context import Context

LAGS = (1, 3, 6)


def archived_forecasts(archive, lags=LAGS):
    """The archived statistical forecast and consensus at ``lags``, with each item's family and owner
    as they were in that cycle (a planner is credited for the families they owned then)."""
    demand = archive.read("demand", lag=lags, columns=("stat_forecast", "consensus"))
    items = archive.read("items", columns=("family", "owner"))
    return demand.merge(items, on=["cycle", "item"], how="left")


def accuracy_for_workbook(path, url: str | None = None, lags=LAGS, progress=None) -> AccuracyByLag:
    from sop_xl.archive.from_workbook import archive_url
    from sop_xl.workbook import open_file

    with open_file(path, writable=False, progress=progress) as book:
        ctx = Context(book, progress)
        ctx.load((k.ITEMS, k.ACTUALS))
        actuals = ctx.frame(k.ACTUALS)
        season = int(ctx.settings["SeasonLength"])
        url = archive_url(book, url)
    archive = open_archive(url, workbook=path)
    try:
        forecasts = archived_forecasts(archive, lags)
    finally:
        archive.dispose()
    return accuracy_by_lag(forecasts, actuals, lags=lags, season_length=season)
