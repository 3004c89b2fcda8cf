"""Forecasts made out of the workbook, back into it: families, or the top N items.

The workbook cannot hold 100k series, but its review works by family (or on the few items that
matter). ``aggregate`` sums the series' forecasts per family, or keeps the N items with the most
forecast volume; ``write_forecast`` puts the result into Forecast, ForecastModels and Demand with
the same checks and save path as the Forecast step (overrides and uplifts in Demand are kept).

Intervals of a sum (documented method): the series' errors are taken as independent and roughly
normal, so each side's half-width adds in quadrature,
``lo = Σ yhat − sqrt(Σ (yhat − lo_i)²)``, ``hi = Σ yhat + sqrt(Σ (hi_i − yhat)²)``. Errors of items
in one family are usually positively correlated, so the true interval is wider; the simple sum of
the bounds (perfect correlation) is the other extreme. The lower bound is clipped at 0 when no
member may go negative.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from sop_xl import contract as k
from sop_xl.scale import ScaleError

INTERVAL_NOTE = "intervals: series errors taken as independent (half-widths added in quadrature)"


def aggregate(forecasts: pd.DataFrame, level: str, family_of: pd.Series | None = None,
              top: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(forecast rows: item, period, yhat, lo_80 … model) and (one ForecastModels row per key)."""
    fc = forecasts.rename(columns={"forecast": "yhat"})
    bounds = [c for c in fc.columns if c[:3] in ("lo_", "hi_")]
    if level == "item":
        volume = fc.groupby("item")["yhat"].sum().sort_values(ascending=False, kind="stable")
        keep = volume.index[:top] if top else volume.index
        rows = fc[fc["item"].isin(keep)].copy()
        models = rows.drop_duplicates("item")[["item", "demand_class", "model", "n_obs"]].assign(
            note="forecast out of the workbook (sop-xl forecast)")
        return rows, models.reset_index(drop=True)
    if family_of is None:
        raise ScaleError("--level family needs the family of each series (--family COLUMN)")
    fam = fc["item"].map(family_of)
    if fam.isna().any():
        missing = sorted(fc.loc[fam.isna(), "item"].unique())
        raise ScaleError(f"{len(missing)} series have no family, e.g. {', '.join(missing[:5])}")
    fc = fc.assign(family=fam.astype(str))
    half = {c: ((fc["yhat"] - fc[c]) if c.startswith("lo_") else (fc[c] - fc["yhat"])).clip(lower=0) ** 2
            for c in bounds}
    work = fc.assign(**{f"_{c}": v for c, v in half.items()}, _neg=(fc[bounds[0]] < 0) if bounds else False)
    g = work.groupby(["family", "period"], sort=True)
    out = g["yhat"].sum().to_frame()
    for c in bounds:
        width = np.sqrt(g[f"_{c}"].sum())
        out[c] = out["yhat"] - width if c.startswith("lo_") else out["yhat"] + width
        if c.startswith("lo_"):
            out[c] = out[c].where(g["_neg"].any(), out[c].clip(lower=0))
    per_family = fc.drop_duplicates("item").groupby("family")
    size = per_family["item"].size()
    mix = per_family["model"].agg(lambda m: ", ".join(f"{name} {n}" for name, n in m.value_counts().items()))
    out = out.reset_index().rename(columns={"family": "item"})
    out["model"] = out["item"].map(lambda f: f"sum of {size[f]} series")
    models = pd.DataFrame({"item": size.index, "demand_class": "family", "model": [f"sum of {n} series" for n in size],
                           "n_obs": np.nan,
                           "note": [f"{mix[f]}; {INTERVAL_NOTE}" for f in size.index]})
    return out, models


def write_forecast(workbook, rows: pd.DataFrame, models: pd.DataFrame,
                   progress: Callable[[str], None] | None = None) -> tuple[list[str], list[str]]:
    """Forecast, ForecastModels and Demand of ``workbook`` from ``rows``/``models``; the keys must be
    Items of the workbook. Nothing is saved if a check fails. Returns (the tables written, one line
    per output now stale - its stamp says so)."""
    from sop_xl.engine import demand as demand_engine
    from sop_xl.plan.context import Context
    from sop_xl.plan.freshness import stamp_outputs
    from sop_xl.plan.pipeline import write_results
    from sop_xl.plan.validation import ValidationError
    from sop_xl.workbook import open_file

    with open_file(Path(workbook), progress=progress) as book:
        ctx = Context(book, progress)
        try:
            ctx.load((k.ITEMS, k.DEMAND))
        except ValidationError as exc:
            raise ScaleError(exc.summary()) from None
        known = set(ctx.frame(k.ITEMS)["item"])
        unknown = sorted(set(models["item"]) - known)
        if unknown:
            raise ScaleError(f"{len(unknown)} forecast key(s) are not in the workbook's Items, e.g. "
                             f"{', '.join(unknown[:5])}; add them (one row per family or item) first")
        periods = ctx.periods
        fc = rows[rows["period"].isin(periods)]
        short = sorted(set(models["item"]) - set(fc.groupby("item")["period"].nunique().loc[
            lambda n: n == len(periods)].index))
        if short:
            raise ScaleError(f"{len(short)} key(s) lack forecasts for some of the plan months "
                             f"{periods[0]:%Y-%m}..{periods[-1]:%Y-%m}, e.g. {', '.join(short[:5])}; "
                             f"raise --horizon so it reaches the end of the plan")
        ctx.put(k.FORECAST, fc)
        ctx.put(k.FORECAST_MODELS, models)
        stat = fc[["item", "period", "yhat"]].rename(columns={"yhat": "stat_forecast"})
        ctx.put(k.DEMAND, demand_engine.merge_forecast(stat, ctx.frame(k.DEMAND), periods))
        written = write_results(ctx)
        # Forecast and ForecastModels are current, computed from outside: their stamp names the
        # inputs read here (Items, and not Actuals, which this forecast did not come from), and
        # outputs computed from the old Demand are marked stale, as after a Forecast run
        stale = stamp_outputs(ctx, ["forecast"], book)
        book.save()
    return written, stale
