"""The Forecast step's summary line: volume-weighted WAPE (the Dashboard KPI's definition), items
with negative value added, cleaned items."""
import numpy as np
import pandas as pd

from sop_xl.plan.steps import forecast_quality


def test_summary_weights_wape_by_holdout_volume_and_names_negative_value_added():
    models = pd.DataFrame({"item": ["A", "B", "C", "D"], "wape": [0.10, 0.40, np.nan, 0.20],
                           "volume": [900.0, 100.0, np.nan, 0.0], "fva": [0.2, -0.3, np.nan, 0.1],
                           "cleaned": ["", "2025-05: 930 → 240", "", ""]})
    text = forecast_quality(models)
    # (0.10 × 900 + 0.40 × 100 + 0.20 × 0) / 1000 = 13.0 %, where the plain mean of the items would be 23.3 %
    assert "holdout WAPE 13.0% (volume-weighted, 3 of 4 items)" in text
    assert "negative value added vs seasonal naive: B" in text
    assert "one-offs cleaned for fitting in 1 item" in text
