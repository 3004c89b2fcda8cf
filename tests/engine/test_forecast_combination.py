"""The ensemble's holdout-weighted combination (sop_xl.engine.forecast.models), against hand figures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.forecast import forecast
from sop_xl.engine.forecast.models import ENSEMBLE_COMPONENTS, candidate_point, holdout_weights

A, B, C, D = ENSEMBLE_COMPONENTS


def test_weights_are_inverse_holdout_mae_per_item():
    cv = pd.DataFrame({"unique_id": ["x"] * 4 + ["y"] * 2, "y": [10.0, 10.0, 10.0, 10.0, 5.0, 5.0],
                       A: [11.0, 9.0, 11.0, 9.0, 5.0, 5.0],  # x: MAE 1
                       B: [12.0, 8.0, 12.0, 8.0, 6.0, 4.0],  # x: MAE 2
                       C: [14.0, 6.0, 14.0, 6.0, 6.0, 4.0],  # x: MAE 4
                       D: [14.0, 6.0, 14.0, 6.0, 6.0, 4.0]})
    w = holdout_weights(cv)
    inv = np.array([1, 1 / 2, 1 / 4, 1 / 4])
    np.testing.assert_allclose(w.loc["x"].to_numpy(), inv / inv.sum(), rtol=1e-12)
    # y: A is exact (MAE 0): it takes (almost) all the weight instead of dividing by zero
    assert w.loc["y", A] > 0.999 and np.isclose(w.loc["y"].sum(), 1.0)


def test_weighted_point_is_the_weighted_sum_and_items_without_weights_get_the_mean():
    wide = pd.DataFrame({"unique_id": ["x", "x", "z"], A: [1.0, 2.0, 1.0], B: [3.0, 4.0, 3.0],
                         C: [5.0, 6.0, 5.0], D: [7.0, 8.0, 7.0]})
    weights = pd.DataFrame({A: [0.5], B: [0.5], C: [0.0], D: [0.0]}, index=["x"])
    got = candidate_point(wide, "ensemble", list(ENSEMBLE_COMPONENTS), weights)
    assert got == pytest.approx([2.0, 3.0, 4.0])  # z: no holdout, plain mean (1+3+5+7)/4
    assert candidate_point(wide, "ensemble", list(ENSEMBLE_COMPONENTS)) == pytest.approx([4.0, 5.0, 4.0])


def test_engine_note_shows_the_weights_and_they_sum_to_one():
    rng = np.random.default_rng(2)
    m = np.arange(60) % 12
    y = 100 + 0.5 * np.arange(60) + 30 * np.sin(2 * np.pi * m / 12) + rng.normal(0, 4, 60)
    hist = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2020-01-01", periods=60, freq="MS"), "y": y})
    note = forecast(hist, horizon=6).selection["note"].iloc[0]
    assert "weighted by 1 / holdout MAE" in note
    parts = note.split("(")[1].split(";")[0].split(", ")
    assert [p.rsplit(" ", 1)[0] for p in parts] == list(ENSEMBLE_COMPONENTS)
    assert sum(float(p.rsplit(" ", 1)[1]) for p in parts) == pytest.approx(1.0, abs=0.02)
