"""Excel's FORECAST.ETS as a baseline, computed by LibreOffice Calc (sop_xl.libreoffice).

LibreOffice implements Excel's FORECAST.ETS (additive AAA exponential smoothing, seasonality
detected automatically - the function's default) and imports Excel's ``_xlfn.FORECAST.ETS`` from
xlsx as its FORECAST.ETS.ADD. Every series becomes one column of a workbook written by openpyxl, with
one array formula ``=FORECAST.ETS(targets, values, timeline)`` under its history (one model fit per
series, as an Excel user forecasting h months at once gets); LibreOffice recalculates the book and
the results are read back.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import pandas as pd


def excel_ets_forecast(train: pd.DataFrame, h: int, timeout: float = 3600.0) -> tuple[pd.DataFrame, float]:
    """(forecasts: unique_id, ds, yhat; seconds) of FORECAST.ETS for every series of ``train``
    (long format, sorted, monthly ``ds``), ``h`` steps, recalculated by LibreOffice."""
    import openpyxl
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.formula import ArrayFormula

    from sop_xl import libreoffice

    groups = [(uid, g) for uid, g in train.groupby("unique_id", sort=False)]
    longest = max(len(g) for _, g in groups)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    ws.cell(1, 1, "t")
    for i in range(longest + h):
        ws.cell(2 + i, 1, i + 1)
    for j, (uid, g) in enumerate(groups):
        col, n = 2 + j, len(g)
        c = get_column_letter(col)
        ws.cell(1, col, str(uid))
        for i, v in enumerate(g["y"].to_numpy(float)):
            ws.cell(2 + i, col, float(v))
        ws[f"{c}{2 + n}"] = ArrayFormula(f"{c}{2 + n}:{c}{1 + n + h}",
                                         f"=_xlfn.FORECAST.ETS(A{2 + n}:A{1 + n + h},{c}2:{c}{1 + n},A2:A{1 + n})")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ets.xlsx")
        wb.save(path)
        t0 = time.perf_counter()
        ins = libreoffice.inspect(path, ["S"], timeout=timeout)
        seconds = time.perf_counter() - t0
    rows = ins.values["S"]
    out = []
    for j, (uid, g) in enumerate(groups):
        n = len(g)
        vals = [rows[1 + n + i][1 + j] if 1 + n + i < len(rows) else None for i in range(h)]
        yhat = np.array([v if isinstance(v, (int, float)) else np.nan for v in vals], float)
        ds = pd.date_range(g["ds"].iloc[-1], periods=h + 1, freq="MS")[1:]
        out.append(pd.DataFrame({"unique_id": uid, "ds": ds, "yhat": yhat}))
    return pd.concat(out, ignore_index=True), seconds
