"""Tests for sop_xl.engine.forecast (synthetic data, fast)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.forecast import MODEL_NAMES, ForecastResult, forecast

warnings.filterwarnings("ignore")

RNG = np.random.default_rng(42)
DS = pd.date_range("2021-01-01", periods=48, freq="MS")


def frame(uid: str, y, start: str = "2021-01-01") -> pd.DataFrame:
    y = np.asarray(y, float)
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq="MS"), "y": y})


def seasonal(n=48, peak_month=7, noise=3.0, level=100.0, amp=40.0, seed=1):
    rng = np.random.default_rng(seed)
    months = np.arange(n) % 12 + 1  # series starts in January
    return level + amp * np.cos(2 * np.pi * (months - peak_month) / 12) + rng.normal(0, noise, n)


def intermittent(n=48, p=0.25, seed=2):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < p, rng.integers(3, 6, n), 0).astype(float)


@pytest.fixture(scope="module")
def mixed() -> ForecastResult:
    """One call with many kinds of items (also the 'several items in one call' case)."""
    rng = np.random.default_rng(7)
    gap = frame("gap", seasonal(seed=5)).drop(index=[10, 11, 30]).reset_index(drop=True)
    h = pd.concat(
        [
            frame("seas", seasonal()),
            frame("trend", 50 + 3 * np.arange(48) + rng.normal(0, 2, 48)),
            frame("inter", intermittent()),
            frame("short", 20 + rng.normal(0, 1, 15)),
            frame("const", np.full(30, 7.0)),
            frame("zero", np.zeros(24)),
            frame("new", [5.0, 6.0], start="2024-11-01"),
            frame("neg", rng.normal(0, 5, 48)),
            gap,
        ],
        ignore_index=True,
    )
    return forecast(h, horizon=12)


def sel(res: ForecastResult, uid: str) -> pd.Series:
    return res.selection.set_index("unique_id").loc[uid]


def fc(res: ForecastResult, uid: str) -> pd.DataFrame:
    return res.forecasts[res.forecasts["unique_id"] == uid].reset_index(drop=True)


# --------------------------------------------------------------------------- shapes / contract
def test_result_frames_have_contract_columns(mixed):
    assert list(mixed.forecasts.columns) == ["unique_id", "ds", "model", "yhat", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert list(mixed.selection.columns) == ["unique_id", "demand_class", "model", "n_obs", "note", "cleaned"]
    assert list(mixed.accuracy.columns) == ["unique_id", "model", "mase", "smape", "wape", "bias", "fva", "rmse",
                                            "volume"]
    ids = {"seas", "trend", "inter", "short", "const", "zero", "new", "neg", "gap"}
    assert set(mixed.selection["unique_id"]) == ids
    assert set(mixed.accuracy["unique_id"]) == ids
    # every item gets exactly 12 consecutive future months after its own last period
    assert mixed.forecasts.groupby("unique_id").size().eq(12).all()
    f = fc(mixed, "new")
    assert f["ds"].iloc[0] == pd.Timestamp("2025-01-01") and f["ds"].iloc[-1] == pd.Timestamp("2025-12-01")
    assert mixed.forecasts[["yhat", "lo_80", "hi_80", "lo_95", "hi_95"]].notna().all().all()
    assert set(mixed.selection["demand_class"]) <= {"smooth", "erratic", "intermittent", "lumpy", "short", "constant", "zero", "new"}
    assert (mixed.selection["note"].str.len() > 5).all()


def test_intervals_are_ordered(mixed):
    f = mixed.forecasts
    assert (f["lo_95"] <= f["lo_80"] + 1e-9).all()
    assert (f["lo_80"] <= f["yhat"] + 1e-9).all()
    assert (f["yhat"] <= f["hi_80"] + 1e-9).all()
    assert (f["hi_80"] <= f["hi_95"] + 1e-9).all()
    s = fc(mixed, "seas")
    assert (s["hi_95"] - s["lo_95"] > 0).all()  # a noisy series has real, non-degenerate intervals


def test_seasonal_forecast_follows_peak_month(mixed):
    s = fc(mixed, "seas")
    assert sel(mixed, "seas")["demand_class"] == "smooth"
    peak = s.loc[s["yhat"].idxmax(), "ds"].month
    trough = s.loc[s["yhat"].idxmin(), "ds"].month
    assert peak in (6, 7, 8)
    assert trough in (12, 1, 2)
    assert s["yhat"].max() - s["yhat"].min() > 40  # amplitude 2*40 in the data, not flattened


@pytest.mark.parametrize("n", [24, 36])
def test_seasonality_kept_with_two_or_three_seasons(n):
    res = forecast(frame("s", seasonal(n=n, peak_month=3)), horizon=12, model="ensemble", holdout=0)
    s = res.forecasts
    assert s.loc[s["yhat"].idxmax(), "ds"].month in (2, 3, 4)
    assert s["yhat"].max() - s["yhat"].min() > 30


def test_trend_is_extrapolated(mixed):
    t = fc(mixed, "trend")
    assert t["yhat"].iloc[0] > 175  # last actual ~ 50 + 3*47 = 191
    assert t["yhat"].iloc[-1] > t["yhat"].iloc[0]


def test_intermittent_item_gets_croston_family(mixed):
    s = sel(mixed, "inter")
    assert s["demand_class"] in ("intermittent", "lumpy")
    assert s["model"] in ("CrostonSBA", "TSB", "ADIDA", "IMAPA")
    f = fc(mixed, "inter")
    y = intermittent()
    assert 0 < f["yhat"].iloc[0] < y.max()  # a demand rate, not a spike
    assert (f["lo_95"] >= 0).all()


def test_classification_of_intermittent_vs_lumpy():
    rng = np.random.default_rng(3)
    lumpy = np.where(rng.random(48) < 0.25, rng.choice([1, 50], 48), 0).astype(float)
    res = forecast(pd.concat([frame("i", intermittent()), frame("l", lumpy)]), horizon=6, holdout=0)
    assert sel(res, "i")["demand_class"] == "intermittent"
    assert sel(res, "l")["demand_class"] == "lumpy"
    assert sel(res, "i")["model"] == "CrostonSBA"  # documented default without a holdout


def test_short_constant_zero_new_fallbacks(mixed):
    short = sel(mixed, "short")
    assert short["demand_class"] == "short" and "shorter than 2 seasons" in short["note"]
    assert abs(fc(mixed, "short")["yhat"].mean() - 20) < 3
    assert sel(mixed, "const")["demand_class"] == "constant"
    assert np.allclose(fc(mixed, "const")["yhat"], 7.0)
    assert sel(mixed, "zero")["demand_class"] == "zero"
    z = fc(mixed, "zero")
    assert (z[["yhat", "lo_95", "hi_95"]] == 0).all().all()
    new = sel(mixed, "new")
    assert new["demand_class"] == "new" and new["n_obs"] == 2
    assert np.allclose(fc(mixed, "new")["yhat"], 5.5)


@pytest.mark.parametrize("values", [[3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
def test_tiny_histories_never_raise(values):
    res = forecast(frame("x", values), horizon=3)
    assert len(res.forecasts) == 3
    assert res.forecasts["yhat"].notna().all()


def test_gaps_are_zero_filled_with_warning(mixed):
    assert "item gap: 3 missing periods filled with 0" in mixed.warnings
    assert not any("item seas" in w for w in mixed.warnings)
    assert sel(mixed, "gap")["n_obs"] == 48


def test_negative_history_keeps_negative_forecasts_others_clipped():
    y = -50 + np.random.default_rng(4).normal(0, 3, 36)  # net returns every month
    y2 = np.maximum(100 - 3 * np.arange(36.0), 1)  # falling towards zero: would extrapolate below 0
    res = forecast(pd.concat([frame("neg", y), frame("down", y2)]), horizon=24)
    assert (fc(res, "neg")["yhat"] < 0).all()
    d = fc(res, "down")
    assert (d[["yhat", "lo_80", "hi_80", "lo_95", "hi_95"]] >= 0).all().all()


def test_accuracy_present_for_modelled_items(mixed):
    acc = mixed.accuracy.set_index("unique_id")
    for uid in ("seas", "trend", "inter"):
        assert np.isfinite(acc.loc[uid, "mase"]) and acc.loc[uid, "mase"] >= 0
        assert 0 <= acc.loc[uid, "smape"] <= 2  # a fraction (engine.metrics)
        assert 0 <= acc.loc[uid, "wape"] and np.isfinite(acc.loc[uid, "bias"])
    assert acc.loc["trend", "fva"] > 0.3  # a trend beats the seasonal naive clearly
    assert acc.loc["seas", "model"] == sel(mixed, "seas")["model"]
    assert acc.loc[["zero", "new", "const"], "mase"].isna().all()


# --------------------------------------------------------------------------- fixed models
@pytest.mark.parametrize("name", ["SeasonalNaive", "Naive", "CrostonSBA", "DynamicOptimizedTheta"])
def test_fixed_model_choice_is_honoured(name):
    h = pd.concat([frame("a", seasonal()), frame("b", seasonal(seed=9, peak_month=2))])
    res = forecast(h, horizon=6, model=name, holdout=0)
    assert set(res.selection["model"]) == {name}
    assert set(res.forecasts["model"]) == {name}
    if name == "SeasonalNaive":
        last_year = h[h["unique_id"] == "a"]["y"].to_numpy()[-12:-6]
        assert np.allclose(fc(res, "a")["yhat"], last_year)
    if name == "Naive":
        assert np.allclose(fc(res, "a")["yhat"], h[h["unique_id"] == "a"]["y"].iloc[-1])


def test_accuracy_fva_is_zero_for_seasonal_naive():
    res = forecast(frame("a", seasonal()), horizon=6, model="SeasonalNaive")
    assert res.accuracy["fva"].iloc[0] == pytest.approx(0.0)


def test_every_model_name_runs_as_a_fixed_model():
    # MODEL_NAMES is what the sheet's model choice offers: each name must really run and be reported
    h = frame("a", seasonal())
    for name in MODEL_NAMES:
        res = forecast(h, horizon=3, model=name, holdout=0)
        assert len(res.forecasts) == 3 and res.forecasts["yhat"].notna().all(), name
        if name == "auto":
            assert res.selection["model"].iloc[0] == "ensemble"  # a smooth seasonal series: the default
        else:
            assert list(res.selection["model"]) == [name] and set(res.forecasts["model"]) == {name}


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs",
    [
        {"horizon": 0},
        {"horizon": 241},
        {"horizon": 12, "model": "Prophet"},
        {"horizon": 12, "levels": (80, 120)},
        {"horizon": 12, "holdout": -1},
    ],
)
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        forecast(frame("a", seasonal()), **kwargs)


def test_empty_or_malformed_history_raises():
    with pytest.raises(ValueError, match="empty"):
        forecast(pd.DataFrame(columns=["unique_id", "ds", "y"]), horizon=3)
    with pytest.raises(ValueError, match="missing column"):
        forecast(pd.DataFrame({"item": ["a"], "ds": [pd.Timestamp("2024-01-01")], "y": [1.0]}), horizon=3)


def test_seasonal_naive_floor_for_an_exactly_repeating_pattern():
    # A jagged yearly pattern repeated exactly: last year's month is the best forecast, and the
    # smoothing ensemble cannot match it on the holdout, so the seasonal-naive floor takes over.
    rng = np.random.default_rng(3)
    pattern = rng.uniform(20, 200, 12).round()
    ds = pd.date_range("2019-01-01", periods=48, freq="MS")
    df = pd.DataFrame({"unique_id": "J", "ds": ds, "y": np.tile(pattern, 4)})
    res = forecast(df, horizon=12)
    sel = res.selection.set_index("unique_id").loc["J"]
    assert sel["model"] == "SeasonalNaive"
    assert "floor" in sel["note"]
    np.testing.assert_allclose(res.forecasts["yhat"].to_numpy(), pattern)
