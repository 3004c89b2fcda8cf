"""A forecast does not depend on the units the quantities are in (pieces, thousands, tonnes)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sop_xl.engine.forecast import forecast

rng = np.random.default_rng(17)
N = 54
_m = np.arange(N) % 12
SERIES = {
    # whole numbers: where exact comparisons in the cleaning held in pieces and failed in thousands
    "seasonal": np.round(900 + 4 * np.arange(N) + 250 * np.sin(2 * np.pi * _m / 12) + rng.normal(0, 30, N)),
    "spike": np.round(400 + rng.normal(0, 20, N)),
    "trend": np.round(50 + 3.0 * np.arange(N) + rng.normal(0, 6, N)),
    "intermittent": np.where(rng.random(N) < 0.55, 0.0, rng.poisson(6, N) + 1.0),
    "short": np.round(120 + rng.normal(0, 9, 14)),
}
SERIES["spike"][30] = 2600.0  # a one-off the cleaning replaces in any units


def _history(factor: float) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": u, "ds": pd.date_range("2021-01-01", periods=len(y), freq="MS"),
                                    "y": y * factor}) for u, y in SERIES.items()], ignore_index=True)


@pytest.mark.parametrize("factor", [1e-3, 1e3, 0.45359237])  # thousands, thousandths, pounds to kg
def test_the_same_forecast_in_any_units(factor):
    base, other = forecast(_history(1.0), 18), forecast(_history(factor), 18)
    assert other.selection["model"].tolist() == base.selection["model"].tolist()
    assert other.selection["cleaned"].astype(bool).tolist() == base.selection["cleaned"].astype(bool).tolist()
    assert base.selection.set_index("unique_id").loc["spike", "cleaned"]  # the one-off was found
    cols = ["yhat", "lo_80", "hi_80", "lo_95", "hi_95"]
    np.testing.assert_allclose(other.forecasts[cols].to_numpy() / factor, base.forecasts[cols].to_numpy(),
                               rtol=1e-6, atol=1e-9)
    for m in ("mase", "smape", "wape", "bias", "fva"):  # unit-free accuracy figures stay the same
        np.testing.assert_allclose(other.accuracy[m].to_numpy(float), base.accuracy[m].to_numpy(float),
                                   rtol=1e-6, atol=1e-9, err_msg=m)
    np.testing.assert_allclose(other.accuracy["rmse"].to_numpy(float) / factor, base.accuracy["rmse"].to_numpy(float),
                               rtol=1e-6)
