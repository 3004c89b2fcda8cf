"""History cleaning (one-offs replaced for model fitting only), holdouts for every item with two
seasons, and negative value added flagged (sop_xl.engine.forecast)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.forecast import forecast, holdout_plan
from sop_xl.engine.forecast.cleaning import clean_outliers


def series(uid, y, start="2023-01-01"):
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq="MS"), "y": np.asarray(y, float)})


def seasonal(n=36, seed=1, noise=10.0):
    rng = np.random.default_rng(seed)
    m = np.arange(n) % 12
    return 200 + 80 * np.cos(2 * np.pi * (m - 6) / 12) + rng.normal(0, noise, n)


def test_planted_spike_is_cleaned_for_fitting_only_and_not_forecast_again():
    y = seasonal()
    y[28] = 930.0  # May of the third year: a one-off promotion
    hist = series("A", y)
    before = hist.copy()
    res = forecast(hist, horizon=18)
    pd.testing.assert_frame_equal(hist, before)  # the caller's history is never changed
    sel = res.selection.set_index("unique_id").loc["A"]
    assert sel["cleaned"].startswith("2025-05: 930 → ")
    used = float(sel["cleaned"].split("→")[1].replace(",", ""))
    assert abs(used - (200 + 80 * np.cos(2 * np.pi * (4 - 6) / 12))) < 60  # back to a normal May (~240)
    f = res.forecasts.set_index("ds")["yhat"]
    may, apr, jun = f[pd.Timestamp("2026-05-01")], f[pd.Timestamp("2026-04-01")], f[pd.Timestamp("2026-06-01")]
    assert may < 1.25 * max(apr, jun)  # no seasonal peak from the spike
    raw = forecast(hist, horizon=18, clean=False).forecasts.set_index("ds")["yhat"]
    assert may < raw[pd.Timestamp("2026-05-01")] or raw.std() < 0.5 * f.std()  # uncleaned: spike or no season


def test_demo_ba01_spike_does_not_come_back_as_a_may_peak():
    from sop_xl import contract as k
    from sop_xl.demo.company import make_demo

    hist = make_demo()[0][k.ACTUALS.name]
    ba = hist[hist["item"] == "BA01"].rename(columns={"item": "unique_id", "period": "ds", "qty": "y"})
    assert ba.loc[ba["ds"] == pd.Timestamp("2025-05-01"), "y"].iloc[0] > 900  # the planted one-off
    res = forecast(ba, horizon=18)
    assert res.selection["cleaned"].iloc[0].startswith("2025-05: 931 → ")
    f = res.forecasts.set_index("ds")["yhat"]
    for year in (2026, 2027):
        may = f.get(pd.Timestamp(f"{year}-05-01"))
        if may is not None:
            neighbours = [f[pd.Timestamp(f"{year}-{m:02d}-01")] for m in (4, 6) if pd.Timestamp(f"{year}-{m:02d}-01") in f]
            assert may < 1.2 * max(neighbours), (year, may, neighbours)


def test_clean_series_level_shift_at_the_end_and_intermittent_items_are_left_alone():
    rng = np.random.default_rng(4)
    shift = np.r_[rng.normal(100, 5, 33), rng.normal(300, 5, 3)]  # a new level in the last 3 months
    inter = np.where(rng.random(36) < 0.3, rng.integers(5, 60, 36), 0).astype(float)
    hist = pd.concat([series("clean", seasonal(seed=3)), series("shift", shift), series("inter", inter)])
    out, notes = clean_outliers(hist.reset_index(drop=True), ["clean", "shift", "inter"], 12)
    assert notes == {} and np.array_equal(out["y"].to_numpy(), hist["y"].to_numpy())
    res = forecast(hist, horizon=6)
    assert (res.selection["cleaned"] == "").all()


def test_negative_value_is_replaced_and_listed():
    y = seasonal(seed=6)
    y[7] = -4.0  # a return booked as negative sales in a busy month
    out, notes = clean_outliers(series("R", y), ["R"], 12)
    assert notes["R"].startswith("2023-08: -4 → ")
    assert out["y"].iloc[7] > 150 and np.array_equal(np.delete(out["y"].to_numpy(), 7), np.delete(y, 7))


@pytest.mark.parametrize("n, h, windows", [(48, 12, 2), (40, 12, 1), (33, 9, 1), (27, 3, 1), (24, 6, 1), (20, 0, 0)])
def test_holdout_plan_gives_every_item_with_two_seasons_a_window(n, h, windows):
    plan = holdout_plan(pd.Series({"x": n}), 12, 24, 12).loc["x"]
    assert (plan["windows"], plan["h"] if plan["windows"] else 0) == (windows, h)
    if windows:
        assert n - plan["h"] * plan["windows"] >= 12  # trained on at least one season


def test_items_with_32_to_35_months_get_accuracy_and_volume_weights():
    hist = pd.concat([series(f"n{n}", seasonal(n=n, seed=n)) for n in (24, 32, 35, 36)])
    res = forecast(hist, horizon=18)
    acc = res.accuracy.set_index("unique_id")
    assert acc[["wape", "rmse", "volume"]].notna().all().all()
    notes = res.selection.set_index("unique_id")["note"]
    assert "shorter holdout (1 window of 8 periods" in notes["n32"]
    assert "shorter holdout (1 window of 6 periods" in notes["n24"]
    assert "shorter holdout" not in notes["n36"]
    # the error σ is the noise's (10), not the season's spread (~57)
    assert acc.loc["n36", "rmse"] < 25


def test_negative_value_added_is_flagged_in_the_note():
    # an exactly repeating jagged pattern with small noise: seasonal naive is hard to beat; a fixed
    # smoothing model loses to it and the note says so
    rng = np.random.default_rng(3)
    pattern = rng.uniform(20, 200, 12).round()
    hist = series("J", np.tile(pattern, 4) + rng.normal(0, 1, 48))
    res = forecast(hist, horizon=12, model="Naive")
    fva = res.accuracy.set_index("unique_id").loc["J", "fva"]
    note = res.selection.set_index("unique_id").loc["J", "note"]
    assert fva < 0 and f"NEGATIVE VALUE ADDED: holdout MAE {-fva:.0%} above seasonal naive's" in note
