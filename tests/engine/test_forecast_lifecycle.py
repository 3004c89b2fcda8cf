"""New items (like-item launch) and phase-outs applied to the forecast (lifecycle.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.forecast import forecast
from sop_xl.engine.forecast.lifecycle import SCALE_MONTHS, LifecycleError, apply_lifecycle

END = pd.Timestamp("2025-12-01")


def _series(item: str, months: int, level: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range(end=END, periods=months, freq="MS")
    season = 1 + 0.4 * np.sin(2 * np.pi * ds.month.to_numpy() / 12)
    return pd.DataFrame({"unique_id": item, "ds": ds, "y": rng.poisson(level * season).astype(float)})


@pytest.fixture(scope="module")
def base():
    hist = pd.concat([_series("LIKE", 48, 200, 1), _series("OLD", 48, 80, 2), _series("NEW", 3, 30, 3),
                      _series("GROWN", 30, 60, 4)], ignore_index=True)
    return forecast(hist, 18)


def _plan(*rows):
    return pd.DataFrame(rows, columns=["unique_id", "launch_date", "like_item", "launch_volume", "phase_out_date"])


def _fc(res, item) -> pd.DataFrame:
    return res.forecasts[res.forecasts["unique_id"] == item].set_index("ds")


def test_a_new_item_takes_its_like_items_shape_scaled_to_the_launch_volume(base):
    launch = pd.Timestamp("2026-04-01")
    out = apply_lifecycle(base, _plan(("NEW", launch, "LIKE", 50.0, None)))
    like, new = _fc(base, "LIKE"), _fc(out, "NEW")
    assert list(new.index) == list(like.index)
    after = like.index >= launch
    scale = 50.0 / like.loc[after, "yhat"].head(SCALE_MONTHS).mean()
    for col in ("yhat", "lo_80", "hi_80", "lo_95", "hi_95"):
        np.testing.assert_allclose(new.loc[after, col], like.loc[after, col] * scale, rtol=1e-12)
        assert (new.loc[~after, col] == 0).all()
    # its first launch year averages the launch volume
    assert new.loc[after, "yhat"].head(SCALE_MONTHS).mean() == pytest.approx(50.0)
    assert (new["model"] == "like:LIKE").all()
    row = out.selection.set_index("unique_id").loc["NEW"]
    assert row["model"] == "like:LIKE" and "0 before the launch 2026-04" in row["note"]
    assert out.accuracy.set_index("unique_id").loc["NEW", "model"] == "like:LIKE"
    acc = out.accuracy.set_index("unique_id")
    assert np.isnan(acc.loc["NEW", "mase"]) and np.isnan(acc.loc["NEW", "fva"])
    # the safety stock's σ: the like-item's holdout error at the new item's scale
    like_sd = base.accuracy.set_index("unique_id").loc["LIKE", "rmse"]
    assert like_sd > 0 and acc.loc["NEW", "rmse"] == pytest.approx(like_sd * scale, rel=1e-12)
    # the others are untouched
    pd.testing.assert_frame_equal(_fc(out, "LIKE"), like)


def test_without_a_launch_volume_the_new_item_sells_like_its_like_item(base):
    out = apply_lifecycle(base, _plan(("NEW", None, "LIKE", None, None)))
    np.testing.assert_allclose(_fc(out, "NEW")["yhat"], _fc(base, "LIKE")["yhat"], rtol=1e-12)


def test_an_item_with_no_sales_at_all_gets_a_forecast_and_a_models_row(base):
    out = apply_lifecycle(base, _plan(("FRESH", "2026-02-15", "LIKE", 20.0, None)))
    fresh = _fc(out, "FRESH")
    assert len(fresh) == len(_fc(base, "LIKE")) and fresh.loc[:"2026-01-01", "yhat"].eq(0).all()
    assert fresh.loc["2026-02-01", "yhat"] > 0  # a launch mid-month counts from that month
    row = out.selection.set_index("unique_id").loc["FRESH"]
    assert row["demand_class"] == "new" and row["n_obs"] == 0 and row["model"] == "like:LIKE"


def test_an_item_with_a_year_of_its_own_history_keeps_its_own_model(base):
    out = apply_lifecycle(base, _plan(("GROWN", None, "LIKE", 10.0, None)))
    pd.testing.assert_frame_equal(_fc(out, "GROWN"), _fc(base, "GROWN"))


def test_a_like_item_that_is_new_itself_is_resolved_first(base):
    out = apply_lifecycle(base, _plan(("NEW", None, "LIKE", 100.0, None), ("FRESH", None, "NEW", 50.0, None)))
    np.testing.assert_allclose(_fc(out, "FRESH")["yhat"], _fc(out, "NEW")["yhat"] * 0.5, rtol=1e-9)


def test_a_phased_out_item_is_zero_from_its_date(base):
    out = apply_lifecycle(base, _plan(("OLD", None, None, None, pd.Timestamp("2026-07-20"))))
    old, before = _fc(out, "OLD"), _fc(base, "OLD")
    gone = old.index >= "2026-07-01"
    assert (old.loc[gone, ["yhat", "lo_80", "hi_80", "lo_95", "hi_95"]] == 0).all().all()
    assert (old.loc[gone, "model"] == "phase-out").all()
    pd.testing.assert_frame_equal(old.loc[~gone], before.loc[~gone])
    row = out.selection.set_index("unique_id").loc["OLD"]
    base_model = base.selection.set_index("unique_id").loc["OLD", "model"]
    assert row["model"] == "phase-out" and "0 from 2026-07" in row["note"] and base_model in row["note"]


def test_a_launch_without_a_like_item_uses_the_launch_volume(base):
    out = apply_lifecycle(base, _plan(("SOLO", "2026-03-01", None, 40.0, None)))
    solo = _fc(out, "SOLO")
    assert solo.loc[:"2026-02-01", "yhat"].eq(0).all() and solo.loc["2026-03-01":, "yhat"].eq(40.0).all()
    assert out.selection.set_index("unique_id").loc["SOLO", "model"] == "launch"


@pytest.mark.parametrize("plan, column, message", [
    (_plan(("NEW", None, "NEW", None, None)), "like_item", "its own LikeItem"),
    (_plan(("NEW", None, "GHOST", None, None)), "like_item", "GHOST has no forecast"),
    (_plan(("NEW", None, "FRESH", None, None), ("FRESH", None, "NEW", None, None)), "like_item", "loops"),
])
def test_a_lifecycle_row_that_cannot_be_applied_names_item_and_column(base, plan, column, message):
    with pytest.raises(LifecycleError, match=message) as err:
        apply_lifecycle(base, plan)
    assert err.value.column == column and err.value.item in ("NEW", "FRESH")


def test_inputs_without_effect_are_said(base):
    out = apply_lifecycle(base, _plan(("GROWN", None, "LIKE", None, None), ("OLD", None, None, 30.0, None)))
    note = out.selection.set_index("unique_id").loc["GROWN", "note"]
    assert "LikeItem LIKE not used: 30 months of its own history" in note
    assert note.startswith(base.selection.set_index("unique_id").loc["GROWN", "note"])
    assert any("item OLD: LaunchVolume ignored" in w for w in out.warnings)
