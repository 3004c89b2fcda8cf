"""The forecast accuracy benches' own parts: data sets, scores and the FORECAST.ETS baseline."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.forecast_m3 import DATASETS, load, scores
from sop_xl import libreoffice


@pytest.mark.parametrize("dataset, n_first, h, step", [("m3q", 3, 8, pd.offsets.QuarterBegin(startingMonth=1)),
                                                        ("m1", 2, 18, pd.offsets.MonthBegin()),
                                                        ("m3y", 2, 6, pd.offsets.YearBegin())])
def test_load_keeps_the_competitions_horizon_and_a_regular_calendar(dataset, n_first, h, step):
    train, test, horizon = load(n_first, dataset)
    assert horizon == h
    assert train["unique_id"].nunique() == test["unique_id"].nunique() == n_first
    assert (test.groupby("unique_id").size() == h).all()
    for uid, g in pd.concat([train, test]).sort_values("ds").groupby("unique_id"):
        ds = pd.DatetimeIndex(g["ds"])
        assert (ds[1:] == ds[:-1] + step).all(), uid
    assert DATASETS[dataset][2] == {"m3q": 4, "m1": 12, "m3y": 1}[dataset]


def test_scores_scale_mase_by_the_seasonal_naive_error_of_the_given_season():
    rng = np.random.default_rng(0)
    y = 100 + rng.normal(0, 5, 20) + np.tile([10.0, -10.0, 5.0, -5.0], 5)
    ds = pd.date_range("2000-01-01", periods=24, freq="QS")
    train = pd.DataFrame({"unique_id": "a", "ds": ds[:20], "y": y})
    actual = np.array([111.0, 89.0, 104.0, 96.0])
    test = pd.DataFrame({"unique_id": "a", "ds": ds[20:], "y": actual})
    f = np.array([108.0, 92.0, 106.0, 90.0])
    smape, mase = scores(train, test, test.assign(yhat=f), season_length=4)
    assert smape == pytest.approx(100 * np.mean(2 * np.abs(f - actual) / (np.abs(f) + np.abs(actual))))
    assert mase == pytest.approx(np.mean(np.abs(f - actual)) / np.mean(np.abs(y[4:] - y[:-4])))
    assert scores(train, test, test.assign(yhat=f), season_length=1)[1] == pytest.approx(
        np.mean(np.abs(f - actual)) / np.mean(np.abs(np.diff(y))))


@pytest.mark.libreoffice
@pytest.mark.skipif(not libreoffice.available(), reason="needs LibreOffice (soffice) and python3-uno")
def test_excel_ets_detects_and_follows_a_clean_season_and_reports_errors_as_missing():
    from bench.excel_ets import excel_ets_forecast

    t = np.arange(60)
    # no zero first: LibreOffice starts the level at y[0] / (first seasonal index) even in the
    # additive model, so a first index of exactly 0 makes the whole fit an error
    season = np.array([8, 15, 20, 14, 5, -3, -10, -16, -20, -9, -4, 0], float)
    clean = 200 + 1.5 * t + season[t % 12]  # additive trend + season: what FORECAST.ETS models
    short = 50 + np.arange(20.0)  # under two seasons of 12: FORECAST.ETS(..., 12) is an error
    ds = pd.date_range("2000-01-01", periods=60, freq="MS")
    train = pd.concat([pd.DataFrame({"unique_id": "clean", "ds": ds[:48], "y": clean[:48]}),
                       pd.DataFrame({"unique_id": "short", "ds": ds[:20], "y": short})], ignore_index=True)
    res = excel_ets_forecast(train, 12, season_length=12, timeout=300)

    assert res.stated == 12 and res.seasons["clean"] == 12
    got = res.forecasts[res.forecasts["unique_id"] == "clean"]
    assert list(got["ds"]) == list(ds[48:60])
    np.testing.assert_allclose(got["stated"], clean[48:], rtol=0.01)
    np.testing.assert_allclose(got["auto"], got["stated"])  # detection found the same 12
    bad = res.forecasts[res.forecasts["unique_id"] == "short"]
    assert bad["stated"].isna().all() and bad["auto"].notna().all()
