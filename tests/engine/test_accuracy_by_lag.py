"""Forecast accuracy by lag against a plain-Python recomputation from the definitions."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.accuracy_by_lag import accuracy_by_lag


def _months(start: str, n: int) -> list[pd.Timestamp]:
    return list(pd.date_range(start, periods=n, freq="MS"))


def test_one_forecast_by_hand():
    actuals = pd.DataFrame({"item": "A", "period": _months("2025-01", 13), "qty": [50.0] * 12 + [100.0]})
    # Cycle 2026-01 forecast 2026-01 (lag 1): statistical 110, consensus 95; seasonal naive = 2025-01 = 50.
    fc = pd.DataFrame({"cycle": [pd.Timestamp("2026-01-01")], "item": ["A"], "period": [pd.Timestamp("2026-01-01")],
                       "stat_forecast": [110.0], "consensus": [95.0], "family": ["F"], "owner": ["ann"]})
    res = accuracy_by_lag(fc, actuals, lags=(1,), season_length=12)
    acc = res.accuracy.set_index(["level", "forecast"])
    assert acc.loc[("item", "statistical"), "wape"] == pytest.approx(0.10)
    assert acc.loc[("item", "statistical"), "bias"] == pytest.approx(0.10)
    assert acc.loc[("item", "consensus"), "bias"] == pytest.approx(-0.05)
    assert acc.loc[("item", "seasonal_naive"), "wape"] == pytest.approx(0.50)
    # The history is one season (12 months before the cycle): the MASE scale is the lag-1 naive's
    # in-sample MAE, 0 here, so MASE is undefined rather than infinite.
    assert math.isnan(acc.loc[("item", "statistical"), "mase"])
    va = res.value_added.set_index("level")
    assert va.loc["family", "fva"] == pytest.approx(1 - 5 / 10)
    assert va.loc["owner", "key"] == "ann" and va.loc["owner", "fva"] == pytest.approx(0.5)


def _reference(fc: pd.DataFrame, actuals: pd.DataFrame, lags, m: int) -> tuple[dict, dict]:
    """The definitions, one row at a time."""
    act = {(r.item, r.period): r.qty for r in actuals.itertuples()}
    first_cycle = fc["cycle"].min()
    scale = {}
    for item, hist in actuals[actuals["period"] < first_cycle].groupby("item"):
        season = m if len(hist) > m else 1
        vals = {r.period: r.qty for r in hist.itertuples()}
        diffs = [abs(v - vals[p - pd.DateOffset(months=season)]) for p, v in vals.items()
                 if p - pd.DateOffset(months=season) in vals]
        scale[item] = sum(diffs) / len(diffs)
    rows = []
    for r in fc.itertuples():
        lag = (r.period.year - r.cycle.year) * 12 + r.period.month - r.cycle.month + 1
        back = r.period - pd.DateOffset(months=m * math.ceil(lag / m))
        if lag in lags and (r.item, r.period) in act and (r.item, back) in act:
            rows.append(dict(item=r.item, family=r.family, owner=r.owner, lag=lag, y=act[(r.item, r.period)],
                             statistical=r.stat_forecast, consensus=r.consensus, seasonal_naive=act[(r.item, back)]))
    acc, fva = {}, {}
    for level in ("item", "family"):
        keys = {(row[level], row["lag"]) for row in rows}
        for key, lag in keys:
            sel = [row for row in rows if row[level] == key and row["lag"] == lag]
            sum_a = sum(abs(row["y"]) for row in sel)
            for f in ("statistical", "consensus", "seasonal_naive"):
                err = [row[f] - row["y"] for row in sel]
                acc[(level, key, lag, f)] = (sum(abs(e) for e in err) / sum_a, sum(err) / sum_a,
                                             sum(abs(e) for e in err) / sum(scale[row["item"]] for row in sel))
            e_s = sum(abs(row["statistical"] - row["y"]) for row in sel)
            e_c = sum(abs(row["consensus"] - row["y"]) for row in sel)
            fva[(level, key, lag)] = 1 - e_c / e_s
    return acc, fva


def test_against_the_definitions_row_by_row():
    rng = np.random.default_rng(3)
    items = {"A": ("F1", "ann"), "B": ("F1", "bob"), "C": ("F2", "ann"), "D": ("F2", None)}
    periods = _months("2023-01", 42)  # actuals up to 2026-06
    actuals = pd.DataFrame([{"item": i, "period": p, "qty": float(rng.integers(20, 200))}
                            for i in items for p in periods])
    actuals = actuals.drop(index=[5, 60])  # gaps: rows without an actual or a seasonal naive drop out
    fc = []
    for cycle in _months("2025-10", 6):
        for i, (fam, owner) in items.items():
            for p in _months(str(cycle.date()), 8):
                stat = float(rng.uniform(20, 200))
                cons = stat if rng.random() < 0.5 else float(rng.uniform(20, 200))
                fc.append(dict(cycle=cycle, item=i, period=p, stat_forecast=stat, consensus=cons, family=fam,
                               owner=owner))
    fc = pd.DataFrame(fc)
    lags = (1, 3, 6)
    res = accuracy_by_lag(fc, actuals, lags=lags, season_length=12)
    want_acc, want_fva = _reference(fc, actuals, lags, 12)
    got = res.accuracy[res.accuracy["level"].isin(["item", "family"])]
    assert len(got) == len(want_acc)
    for r in got.itertuples():
        w = want_acc[(r.level, r.key, r.lag, r.forecast)]
        assert (r.wape, r.bias, r.mase) == pytest.approx(w, rel=1e-9), (r.level, r.key, r.lag, r.forecast)
    fam = res.value_added[res.value_added["level"] == "family"]
    assert len(fam) == sum(1 for key in want_fva if key[0] == "family")
    for r in fam.itertuples():
        assert r.fva == pytest.approx(want_fva[("family", r.key, r.lag)], rel=1e-9)
    owners = res.value_added[res.value_added["level"] == "owner"]
    assert set(owners["key"]) == {"ann", "bob"}  # item D has no owner: in its family, not per planner
    # The WAPEs beside the value added are the accuracy table's.
    tot = res.accuracy[(res.accuracy["level"] == "total")].pivot_table(index="lag", columns="forecast", values="wape")
    va_tot = res.value_added[res.value_added["level"] == "total"].set_index("lag")
    assert np.allclose(va_tot["wape_statistical"], tot["statistical"].reindex(va_tot.index))
    assert set(res.accuracy["lag"]) == set(lags)

    # Item level is utilsforecast's nd (WAPE) and bias on the same evaluation rows.
    from utilsforecast import losses
    from sop_xl.engine.accuracy_by_lag import FORECASTS, evaluation_rows
    ev = evaluation_rows(fc, actuals, lags, 12)
    ev["unique_id"] = ev["item"] + "|" + ev["lag"].astype(str)
    nd = losses.nd(ev, models=list(FORECASTS)).set_index("unique_id")
    mean_bias = losses.bias(ev, models=list(FORECASTS)).set_index("unique_id")
    mean_abs = ev.assign(a=ev["y"].abs()).groupby("unique_id")["a"].mean()
    items_acc = res.accuracy[res.accuracy["level"] == "item"]
    for r in items_acc.itertuples():
        uid = f"{r.key}|{r.lag}"
        assert r.wape == pytest.approx(nd.loc[uid, r.forecast], rel=1e-9)
        assert r.bias == pytest.approx(mean_bias.loc[uid, r.forecast] / mean_abs[uid], rel=1e-9)


def test_no_actuals_yet_is_empty_not_an_error():
    fc = pd.DataFrame({"cycle": [pd.Timestamp("2026-01-01")], "item": ["A"], "period": [pd.Timestamp("2026-01-01")],
                       "stat_forecast": [1.0], "consensus": [1.0]})
    actuals = pd.DataFrame({"item": ["A"], "period": [pd.Timestamp("2025-12-01")], "qty": [3.0]})
    res = accuracy_by_lag(fc, actuals)
    assert res.empty and res.accuracy.empty and res.value_added.empty
