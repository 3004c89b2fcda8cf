"""One definition of each forecast metric (sop_xl.engine.metrics): by-hand numpy computations, the
engine's holdout figures and SOP_ACCURACY all give the same numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine import metrics
from sop_xl.engine.forecast import forecast
from sop_xl.udfs import SOP_ACCURACY

Y = np.array([100.0, 0.0, 80.0, -20.0, 110.0, 0.0])  # a zero pair, a zero actual, a negative actual
F = np.array([90.0, 10.0, 95.0, -10.0, 100.0, 0.0])


def by_hand(y, f, metric, m=1, scale_series=None):
    e = f - y
    s = y if scale_series is None else scale_series
    if metric == "mae":
        return np.mean(np.abs(e))
    if metric == "rmse":
        return np.sqrt(np.mean(e ** 2))
    if metric == "wape":
        return np.sum(np.abs(e)) / np.sum(np.abs(y))
    if metric == "bias":
        return np.sum(e) / np.sum(np.abs(y))
    if metric == "smape":
        den = np.abs(y) + np.abs(f)
        return np.mean([0.0 if d == 0 else 2 * abs(x) / d for x, d in zip(e, den)])
    if metric == "mase":
        return np.mean(np.abs(e)) / np.mean(np.abs(s[m:] - s[:-m]))
    raise AssertionError(metric)


@pytest.mark.parametrize("metric", metrics.METRICS)
@pytest.mark.parametrize("m", [1, 2])
def test_each_metric_matches_numpy_by_hand(metric, m):
    assert metrics.accuracy(Y, F, metric, m) == pytest.approx(by_hand(Y, F, metric, m), rel=1e-12)


def test_scale_and_sign_conventions():
    # fractions, not percents; positive bias = over-forecast
    assert metrics.accuracy([100.0], [150.0], "smape") == pytest.approx(0.4)  # 40 %, M3 sMAPE 40
    assert metrics.accuracy([100.0, 100.0], [110.0, 120.0], "bias") == pytest.approx(0.15)
    assert metrics.accuracy([100.0, 100.0], [90.0, 80.0], "bias") == pytest.approx(-0.15)
    # bias divides by sum|a|: a negative actual does not shrink the denominator
    assert metrics.accuracy([-10.0, 20.0], [0.0, 20.0], "bias") == pytest.approx(10 / 30)
    hist = np.array([5.0, 9.0, 4.0, 12.0, 7.0])
    assert metrics.accuracy([6.0, 8.0], [7.0, 6.0], "mase", 1, history=hist) == pytest.approx(
        1.5 / np.mean(np.abs(np.diff(hist))))


@pytest.mark.parametrize("args,message", [
    (([0.0, 0.0], [1.0, 2.0], "wape"), "WAPE is undefined when all actuals are 0"),
    (([0.0, 0.0], [1.0, 2.0], "bias"), "bias is undefined when all actuals are 0"),
    (([5.0, 5.0], [4.0, 4.0], "mase"), "MASE is undefined when the actuals do not change"),
    (([5.0], [4.0], "mase"), "MASE needs more than 1 actuals (season_length)"),
    (([1.0, 2.0], [1.0], "mae"), "forecast has 1 numbers for 2 actuals"),
    (([1.0], [1.0], "mape"), "metric must be one of WAPE, sMAPE, MASE, MAE, RMSE, bias"),
])
def test_undefined_metrics_raise_a_short_message(args, message):
    with pytest.raises(ValueError) as e:
        metrics.accuracy(*args)
    assert str(e.value) == message


@pytest.mark.parametrize("metric", ["WAPE", "sMAPE", "MASE", "MAE", "RMSE", "bias"])
def test_sop_accuracy_is_engine_metrics_accuracy(metric):
    out = SOP_ACCURACY([[v] for v in Y], [[v] for v in F], metric)
    assert isinstance(out, float) and out == pytest.approx(by_hand(Y, F, metric.lower()), rel=1e-12)
    assert SOP_ACCURACY([[0.0], [0.0]], [[1.0], [2.0]], "bias") == "SOP_ACCURACY: bias is undefined when all actuals are 0"


def test_holdout_metrics_pool_windows_and_candidates_by_hand():
    cv = pd.DataFrame({
        "unique_id": ["a"] * 4 + ["b"] * 2,
        "ds": [1, 2, 3, 4, 3, 4],
        "cutoff": [0, 0, 2, 2, 2, 2],
        "y": [10.0, 12.0, 0.0, 14.0, 5.0, 7.0],
        "m1": [11.0, 12.0, 1.0, 10.0, 5.0, 9.0],
        "m2": [10.0, 10.0, 0.0, 15.0, 4.0, 7.0],
    })
    hist = pd.DataFrame({"unique_id": ["a"] * 5 + ["b"] * 4, "ds": list(range(5)) + list(range(4)),
                         "y": [8.0, 10.0, 12.0, 0.0, 14.0, 3.0, 4.0, 5.0, 7.0]})
    out = metrics.holdout_metrics(cv, hist, 1, ["m1", "m2"]).set_index(["unique_id", "candidate"])
    assert list(out.columns) == list(metrics.HOLDOUT_METRICS)
    for uid in ("a", "b"):
        rows = cv[cv["unique_id"] == uid]
        h = hist.loc[hist["unique_id"] == uid, "y"].to_numpy()
        for cand in ("m1", "m2"):
            y, f = rows["y"].to_numpy(), rows[cand].to_numpy()
            for metric in metrics.HOLDOUT_METRICS:
                assert out.loc[(uid, cand), metric] == pytest.approx(by_hand(y, f, metric, 1, h), rel=1e-12)


def test_engine_holdout_and_sop_accuracy_give_the_same_numbers():
    # Naive: the holdout forecasts are known by hand (the last training value of each window), so
    # the engine's pooled holdout figures can be recomputed by SOP_ACCURACY on the same points.
    rng = np.random.default_rng(11)
    y = 100 + 10 * np.sin(np.arange(48) / 2) + rng.normal(0, 4, 48)
    y[45] = 0.0  # a zero actual in the holdout
    hist = pd.DataFrame({"unique_id": "x", "ds": pd.date_range("2020-01-01", periods=48, freq="MS"), "y": y})
    # 2 windows of 3: origins after 42 and 45 obs; clean=False: the zero would be cleaned as a one-off
    res = forecast(hist, horizon=6, model="Naive", holdout=3, clean=False)
    acc = res.accuracy.set_index("unique_id").loc["x"]
    actual = y[42:48]
    fc = np.r_[np.full(3, y[41]), np.full(3, y[44])]
    for metric, col in (("WAPE", "wape"), ("sMAPE", "smape"), ("bias", "bias"), ("RMSE", "rmse")):
        assert SOP_ACCURACY([[v] for v in actual], [[v] for v in fc], metric) == pytest.approx(acc[col], rel=1e-12)
        assert acc[col] == pytest.approx(by_hand(actual, fc, col), rel=1e-12)
    # MASE: the engine scales by the item's history with the season length (12)
    assert acc["mase"] == pytest.approx(metrics.accuracy(actual, fc, "mase", 12, history=y), rel=1e-12)
    assert acc["mase"] == pytest.approx(by_hand(actual, fc, "mase", 12, y), rel=1e-12)
    # FVA against the seasonal naive on the same windows
    snaive = np.r_[y[30:33], y[33:36]]
    assert acc["fva"] == pytest.approx(1 - np.mean(np.abs(fc - actual)) / np.mean(np.abs(snaive - actual)), rel=1e-12)


def test_every_metric_equals_utilsforecast_on_random_frames():
    # engine.metrics computes the metrics with numpy (utilsforecast's frame machinery costs ~28 ms a
    # call); utilsforecast.losses is the reference its definitions must keep matching.
    from utilsforecast import losses
    from utilsforecast.evaluation import evaluate

    rng = np.random.default_rng(7)
    ids = np.repeat([f"i{k}" for k in range(30)], 6)
    cv = pd.DataFrame({"unique_id": ids, "ds": np.tile(np.arange(6), 30),
                       "y": rng.gamma(2.0, 50.0, len(ids)).round(), "a": rng.gamma(2.0, 50.0, len(ids)),
                       "b": rng.normal(80.0, 40.0, len(ids))})
    cv.loc[cv["unique_id"] == "i3", "y"] = 0.0  # all actuals 0: WAPE, bias undefined
    cv.loc[cv.index[:2], ["y", "a"]] = 0.0  # a pair of zeros
    hist = pd.DataFrame({"unique_id": np.repeat(sorted(set(ids)), 20), "ds": np.tile(np.arange(-20, 0), 30),
                         "y": rng.gamma(2.0, 50.0, 600).round()})
    hist.loc[hist["unique_id"] == "i5", "y"] = 7.0  # a history that does not change: MASE undefined
    hist = hist.sample(frac=1.0, random_state=1)  # rows in any order
    ours = metrics.holdout_metrics(cv, hist, 4, ["b", "a"]).set_index(["unique_id", "candidate"])
    ref = evaluate(cv, metrics=[losses.mae, losses.rmse, losses.wape, losses.smape, losses.bias,
                                lambda df, models, train_df, **kw: losses.mase(df, models, 4, train_df, **kw)],
                   models=["a", "b"], train_df=hist.sort_values(["unique_id", "ds"]))
    ref["metric"] = ref["metric"].replace({"<lambda>": "mase"})
    long = ref.melt(id_vars=["unique_id", "metric"], var_name="candidate").set_index(["unique_id", "candidate", "metric"])
    theirs = long["value"].unstack("metric").replace([np.inf, -np.inf], np.nan)
    scale_y = cv.assign(ay=cv["y"].abs()).groupby("unique_id")["ay"].mean()
    theirs["smape"] *= 2.0
    theirs["bias"] = theirs["bias"] / theirs.index.get_level_values(0).map(scale_y.where(scale_y > 0)).to_numpy()
    assert len(ours) == 60 and ours.index.equals(theirs.index)
    for name in metrics.HOLDOUT_METRICS:
        np.testing.assert_allclose(ours[name].to_numpy(float), theirs[name].to_numpy(float), rtol=1e-12,
                                   err_msg=name)
    assert ours.loc[("i3", "a"), ["wape", "bias"]].isna().all() and np.isnan(ours.loc[("i5", "b"), "mase"])
    # a missing forecast is skipped, as the means of pandas skip NaN
    cv.loc[cv.index[7], "a"] = np.nan
    part = metrics.holdout_metrics(cv, hist, 4, ["a"]).set_index("unique_id").loc["i1"]
    rows = cv[(cv["unique_id"] == "i1") & cv["a"].notna()]
    assert part["mae"] == pytest.approx(np.mean(np.abs(rows["a"] - rows["y"])), rel=1e-12)


def test_bench_frame_metrics_equal_holdout_metrics():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"unique_id": np.repeat(["x", "y"], 5), "ds": np.tile(np.arange(5), 2),
                       "y": rng.gamma(2.0, 9.0, 10), "yhat": rng.gamma(2.0, 9.0, 10)})
    train = pd.DataFrame({"unique_id": np.repeat(["x", "y"], 30), "ds": np.tile(np.arange(-30, 0), 2),
                          "y": rng.gamma(2.0, 9.0, 60)})
    ref = metrics.holdout_metrics(df, train, 12, ["yhat"]).set_index("unique_id")
    assert metrics.smape(df, ["yhat"]).set_index("unique_id")["yhat"].tolist() == ref["smape"].tolist()
    assert metrics.mase_with(12)(df, ["yhat"], train).set_index("unique_id")["yhat"].tolist() == ref["mase"].tolist()
