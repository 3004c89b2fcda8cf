"""Excel's FORECAST.ETS as a baseline, computed by LibreOffice Calc (sop_xl.libreoffice).

LibreOffice implements Excel's FORECAST.ETS (additive Holt-Winters, "AAA") and imports Excel's
``_xlfn.FORECAST.ETS`` from xlsx as its FORECAST.ETS.ADD. Every series becomes columns of a workbook
written by openpyxl, with array formulas ``=FORECAST.ETS(targets, values, timeline[, seasonality])``
under its history (one model fit per series and formula, as an Excel user forecasting h periods at
once gets); LibreOffice recalculates the book and the results are read back.

Two variants per series, same workbook, same recalculation:

- ``auto``: the seasonality argument left out (Excel's default 1 = "detect the seasonality"). Excel's
  detection is not published; LibreOffice's (``CalcPeriodLen`` in sc/source/core/tool/interpr8.cxx)
  takes the period p in 1..n/2 whose lag-p differences best repeat the lag-1 differences, ties to
  the shorter one. On M3 monthly it returns 12 for only 265 of 1428 series (1, 24, 36, 3, 48, 2, 37,
  ... for the rest), so this variant measures LibreOffice's detection at least as much as the
  smoothing; ``seasons`` (FORECAST.ETS.SEASONALITY of every series) shows what it picked.
- ``stated``: the data's own period typed in (12 for monthly, 4 for quarterly; 0 = no seasonality for
  yearly data): what a user who knows the data's calendar gets, and the fairer baseline.

The timeline is 1..n (a constant step; LibreOffice turns a month-start date timeline into the same
month numbers). Targets are n+1..n+h. Data completion and aggregation keep their defaults (the
series have no gaps and no repeated timestamps, so neither applies).
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class ExcelEts:
    #: unique_id, ds, auto, stated (NaN where LibreOffice returned an error).
    forecasts: pd.DataFrame
    #: unique_id -> the seasonality FORECAST.ETS.SEASONALITY detected (the ``auto`` variant's).
    seasons: pd.Series
    #: the seasonality argument of the ``stated`` variant.
    stated: int
    #: LibreOffice's wall time (start, load, recalculation, read-back).
    seconds: float


def excel_ets_forecast(train: pd.DataFrame, h: int, season_length: int, freq: str = "MS",
                       timeout: float = 3600.0) -> ExcelEts:
    """FORECAST.ETS of every series of ``train`` (long format, sorted by ds, regular ``freq``),
    ``h`` steps: seasonality detected (``auto``) and stated (``season_length``; 1 -> 0 = none)."""
    import openpyxl
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.formula import ArrayFormula

    from sop_xl import libreoffice

    # 1 would mean "detect" to FORECAST.ETS; a season of one period is "no seasonality" = 0
    stated = int(season_length) if season_length > 1 else 0
    groups = [(uid, g["y"].to_numpy(float), g["ds"].iloc[-1]) for uid, g in train.groupby("unique_id", sort=False)]
    longest = max(len(y) for _, y, _ in groups)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    seas = wb.create_sheet("P")
    ws.cell(1, 1, "t")
    for i in range(longest + h):
        ws.cell(2 + i, 1, i + 1)
    for j, (uid, y, _) in enumerate(groups):
        n = len(y)
        for k, arg in enumerate(("", f",{stated}")):
            col = 2 + 2 * j + k
            c = get_column_letter(col)
            ws.cell(1, col, str(uid))
            for i, v in enumerate(y):
                ws.cell(2 + i, col, float(v))
            ws[f"{c}{2 + n}"] = ArrayFormula(
                f"{c}{2 + n}:{c}{1 + n + h}",
                f"=_xlfn.FORECAST.ETS(A{2 + n}:A{1 + n + h},{c}2:{c}{1 + n},A2:A{1 + n}{arg})")
        c = get_column_letter(2 + 2 * j)
        seas.cell(1 + j, 1, str(uid))
        seas.cell(1 + j, 2, f"=_xlfn.FORECAST.ETS.SEASONALITY(S!{c}2:{c}{1 + n},S!A2:A{1 + n})")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ets.xlsx")
        wb.save(path)
        t0 = time.perf_counter()
        ins = libreoffice.inspect(path, ["S", "P"], timeout=timeout)
        seconds = time.perf_counter() - t0
    rows, prow = ins.values["S"], ins.values["P"]

    def number(v) -> float:
        return float(v) if isinstance(v, (int, float)) else np.nan  # error text ('#NUM!', 'Err:502') -> NaN

    out = []
    for j, (uid, y, last) in enumerate(groups):
        n = len(y)
        cols = {}
        for k, name in enumerate(("auto", "stated")):
            cols[name] = [number(rows[1 + n + i][1 + 2 * j + k]) if 1 + n + i < len(rows) else np.nan
                          for i in range(h)]
        ds = pd.date_range(last, periods=h + 1, freq=freq)[1:]
        out.append(pd.DataFrame({"unique_id": uid, "ds": ds, **cols}))
    seasons = pd.Series([number(prow[j][1]) for j in range(len(groups))],
                        index=[uid for uid, _, _ in groups], name="season")
    return ExcelEts(pd.concat(out, ignore_index=True), seasons, stated, seconds)
