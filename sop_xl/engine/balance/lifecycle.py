"""Safety stock over an item's life: per item and month, 0 where there is nothing left to protect.

An item's safety stock (typed, or from the SafetyStockPolicy) is one number; the plan holds it at the
end of every month. For an item that launches or is phased out inside the horizon (Items' LaunchDate,
PhaseOutDate: the forecast is 0 before the launch month and from the phase-out month on, see
engine.forecast.lifecycle) that would make the factory build stock nobody will buy. So the target
becomes one per (item, month):

* **Phase-out.** The stock held at the end of month t protects the sales of the months after it, up
  to the item's lead time plus one month ahead (the span the service-level formula
  z × σ × √(LeadTime + 1) buffers: an order placed now arrives after the lead time). When fewer than
  LeadTime + 1 months of sales are left after t, the forecast error to protect accumulates over only
  k of them, so the target is ``SafetyStock × √(k / (LeadTime + 1))``; at the end of the month before
  the phase-out k = 0: no safety stock, no production for a month with no demand after it. With lead
  time 0 this is simply "full safety stock until the month before the last month of sale". The same
  factor scales a typed or a cover-policy safety stock (read as the buffer for a full lead time).
* **Launch.** No safety stock before the launch month: the launch month's demand is planned like
  any other month's; the buffer is built from the launch month on (stock of a product not yet
  selling is the costliest to hold, and a launch forecast is a borrowed one).
* **End of the horizon.** The end-of-horizon target follows: with EndInventoryCover blank it is the
  last month's target; with N months of cover it is the average demand × the months still sold after
  the horizon, at most N (none once the item is phased out by then).

Items without a LaunchDate or PhaseOutDate keep their one safety stock in every month, unchanged.
Dates are read as the month they fall in (a PhaseOutDate of 15 March: nothing sold from March on).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _month_number(values, n: int) -> np.ndarray:
    """Year × 12 + month of each date (NaN where blank or not a date)."""
    if values is None:
        return np.full(n, np.nan)
    d = pd.to_datetime(pd.Series(list(values), dtype=object), errors="coerce")
    return (d.dt.year * 12 + d.dt.month - 1).to_numpy(dtype=float)


def months_on_sale(launch, phase_out, periods: pd.DatetimeIndex, lead: np.ndarray, n: int):
    """Per item and period: (months of sale within the ``lead + 1`` months after the period, whether
    the period is before the launch month); and per item the months of sale after the horizon
    (inf = no phase-out)."""
    start = _month_number(launch, n)[:, None]
    stop = _month_number(phase_out, n)[:, None]  # first month without sales
    start = np.where(np.isnan(start), -np.inf, start)
    stop = np.where(np.isnan(stop), np.inf, stop)
    m = np.asarray(periods.year * 12 + periods.month - 1, dtype=float)[None, :]
    window_lo = np.maximum(m + 1, start)
    window_hi = np.minimum(m + 2 + lead[:, None], stop)  # exclusive: months m+1 .. m+1+lead
    sold = np.clip(window_hi - window_lo, 0, None)
    before_launch = m < start
    last = m[0, -1] if m.size else 0.0
    after = np.clip(stop[:, 0] - np.maximum(last + 1, start[:, 0]), 0, None)
    return sold, before_launch, after


def safety_targets(ss: np.ndarray, lead: np.ndarray, periods: pd.DatetimeIndex, launch=None,
                   phase_out=None) -> np.ndarray:
    """n x T safety-stock target: ``ss`` (n) shaped by the items' launch and phase-out (module doc)."""
    n = len(ss)
    sold, before_launch, _ = months_on_sale(launch, phase_out, periods, lead, n)
    share = np.sqrt(np.minimum(sold, lead[:, None] + 1) / (lead[:, None] + 1.0))
    return np.where(before_launch, 0.0, ss[:, None] * share)


def months_sold_after(launch, phase_out, periods: pd.DatetimeIndex, lead: np.ndarray) -> np.ndarray:
    """Per item: months still sold after the horizon's last month (inf = no phase-out)."""
    return months_on_sale(launch, phase_out, periods, lead, len(lead))[2]
