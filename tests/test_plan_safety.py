"""Safety stock from the ServiceLevel setting (policy 'service') or months of cover (policy 'cover')."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from sop_xl.plan.safety import forecast_error_sigma, safety_stock

MONTHS = pd.date_range("2024-01-01", periods=24, freq="MS")


def _history():
    rng = np.random.default_rng(3)
    a = rng.normal(100, 15, 24).round()
    b = rng.normal(40, 8, 24).round()
    return pd.DataFrame({"item": ["A"] * 24 + ["B"] * 24, "period": list(MONTHS) * 2, "qty": np.r_[a, b]}), a, b


def _items(ss_a=np.nan, ss_b=np.nan):
    return pd.DataFrame({"item": ["A", "B", "C"], "safety_stock": [ss_a, ss_b, np.nan], "lead_time": [3, 0, 1]})


def test_service_policy_uses_holdout_error_and_lead_time():
    hist, a, b = _history()
    models = pd.DataFrame({"item": ["A"], "rmse": [12.5]})  # B has no holdout figure: falls back to σ(sales)
    ss = safety_stock(_items(), policy="service", service_level=0.95, cover_months=0, models=models, history=hist,
                      demand=pd.DataFrame(columns=["item", "period", "qty"]))
    z = norm.ppf(0.95)
    expect_a = z * 12.5 * np.sqrt(3 + 1)  # the forecast error's σ (ErrorSD), not the sales' spread
    expect_b = z * np.std(b, ddof=1) * np.sqrt(0 + 1)
    assert ss.iloc[0] == pytest.approx(expect_a, rel=1e-9)
    assert ss.iloc[1] == pytest.approx(expect_b, rel=1e-9)
    assert ss.iloc[2] == 0.0  # no history, no forecast: nothing to size it on


def test_typed_values_win_and_higher_service_needs_more_stock():
    hist, _, _ = _history()
    models = pd.DataFrame({"item": ["A", "B"], "rmse": [10.0, 4.0]})
    kw = dict(policy="service", cover_months=0, models=models, history=hist,
              demand=pd.DataFrame(columns=["item", "period", "qty"]))
    typed = safety_stock(_items(ss_a=7.0), service_level=0.95, **kw)
    assert typed.iloc[0] == 7.0
    low = safety_stock(_items(), service_level=0.90, **kw)
    high = safety_stock(_items(), service_level=0.99, **kw)
    assert (high.iloc[:2] > low.iloc[:2]).all()
    assert high.iloc[0] / low.iloc[0] == pytest.approx(norm.ppf(0.99) / norm.ppf(0.90))


def test_cover_policy_is_months_of_average_demand():
    demand = pd.DataFrame({"item": ["A", "A", "B"], "period": MONTHS[:3].tolist()[:2] + [MONTHS[0]],
                           "qty": [100.0, 300.0, 50.0]})
    ss = safety_stock(_items(), policy="cover", service_level=0.95, cover_months=0.5,
                      models=pd.DataFrame(), history=pd.DataFrame(), demand=demand)
    assert list(ss) == [100.0, 25.0, 0.0]


def test_sigma_is_never_negative_and_covers_every_item():
    hist, _, _ = _history()
    sigma = forecast_error_sigma(["A", "B", "Z"], pd.DataFrame(columns=["item", "rmse"]), hist)
    assert list(sigma.index) == ["A", "B", "Z"] and (sigma >= 0).all() and sigma["Z"] == 0
