"""Outliers and one-offs: found on the seasonally adjusted, detrended remainder, replaced for model
fitting only (the caller keeps the raw history for accuracy and output).

The rule is R forecast's ``tsoutliers`` (Hyndman): decompose, and flag a remainder outside
``[Q1 - 3 IQR, Q3 + 3 IQR]`` of all remainders (about ±4.7 σ for normal noise, so a clean series
is almost never touched) and off by more than ``MIN_RELATIVE`` of its fitted value (and of the
item's median month). The decomposition is robust so that the spike itself does not shape it:

* trend: centred running median over one season (``L + 1`` periods when ``L`` is even);
* seasonal: per position in the season, the median of the detrended values (only with at least
  ``MIN_SEASONS`` full seasons, so a one-off in one May is out-voted by the other Mays), centred;
* remainder = y - trend - seasonal; a flagged value is replaced by trend + seasonal.

Not cleaned: intermittent / lumpy items (their spikes are the demand), histories shorter than
``MIN_SEASONS`` seasons (``MIN_OBS`` periods without seasonality: a seasonal peak would look like a
one-off), the first and last half season (no centred trend there: a level shift would look like
one-offs) and a run of flagged values that reaches the last period (it may be a new level, which
the models must see), and a month of the season flagged in two or more years (a seasonal pattern
the all-years median misses, e.g. a season growing with the level, is not a one-off). At most
``MAX_SHARE`` of an item's periods are replaced (the largest ones).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

IQR_FACTOR = 3.0
MIN_SEASONS = 2
MIN_OBS = 12  # non-seasonal items: fewer observations are not cleaned
MAX_SHARE = 0.05
MIN_RELATIVE = 0.5  # a one-off also differs from its fitted value by half the median |y|


def _robust_fit(y: np.ndarray, L: int, min_periods: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(fit = trend + seasonal, mask of values the fit matches exactly, trend window) of one series.
    NaN values (marked periods) are left out of both medians; ``min_periods``: observations a
    running-median window needs (default: all of it)."""
    n = len(y)
    w = L + 1 if L % 2 == 0 else L
    w = max(w, 5)
    # full windows only by default (a partial one at an end would mix a few months of the season);
    # the ends take the level of the nearest full window
    trend = pd.Series(y).rolling(w, center=True, min_periods=min_periods or w).median().bfill().ffill().to_numpy()
    det = y - trend
    season = np.zeros(n)
    # "exactly" up to rounding relative to the series' size: an exact == would hold for whole numbers
    # and fail for the same numbers in thousands, and the cleaning must not depend on the units
    tol = 1e-9 * (np.nanmax(np.abs(y)) if np.isfinite(y).any() else 0.0)
    exact = np.abs(det) <= tol  # fitted exactly by the running median
    if L > 1 and n >= MIN_SEASONS * L:
        pos = np.arange(n) % L
        med = np.array([np.nanmedian(det[pos == k]) if np.isfinite(det[pos == k]).any() else 0.0
                        for k in range(L)])
        exact = np.abs(det - med[pos]) <= tol  # fitted exactly by its month's median
        season = (med - med.mean())[pos]
    return trend + season, exact, w


def _flags(y: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """(flagged mask, replacement values) of one series."""
    n = len(y)
    fit, exact, w = _robust_fit(y, L)
    rem = y - fit
    # the spread from the remainders that are not 0 by construction (with 3 seasons the median of
    # each month's 3 values fits one of them exactly, and the running median fits its centre):
    # counting those zeros would shrink the IQR and flag ordinary noise
    scale = np.nanmedian(np.abs(y))
    live = rem[np.isfinite(rem) & ~exact]
    if len(live) < 4:
        return np.zeros(n, bool), fit
    q1, q3 = np.percentile(live, [25, 75])
    iqr = q3 - q1
    if not np.isfinite(iqr) or iqr <= 0:
        return np.zeros(n, bool), fit
    flag = (rem < q1 - IQR_FACTOR * iqr) | (rem > q3 + IQR_FACTOR * iqr)
    # ... and material: a one-off must move the month by MIN_RELATIVE of the typical level. With 2-4
    # seasons the robust fit follows the data closely, so the IQR understates the noise and ordinary
    # Poisson-like wobbles (±30 %) would pass the first test alone (seen on the demo's items)
    flag &= np.abs(rem) > MIN_RELATIVE * np.maximum(np.abs(fit), scale)
    # the first and last half window have no centred trend (it is extrapolated), so a level shift
    # there would look like a run of one-offs: never cleaned
    flag[: w // 2] = False
    flag[n - w // 2:] = False
    # a run that reaches the end may be a new level: leave it to the models
    k = n - 1
    while k >= 0 and flag[k]:
        flag[k] = False
        k -= 1
    # a one-off happens once: the same month flagged in two or more years is a seasonal pattern the
    # all-years median misses (a season growing with the level, a moved holiday), not an outlier
    if L > 1:
        pos = np.arange(n) % L
        repeated = np.bincount(pos[flag], minlength=L) >= 2
        flag &= ~repeated[pos]
    cap = int(MAX_SHARE * n)
    if flag.sum() > cap:
        keep = np.argsort(-np.abs(np.where(flag, rem, 0.0)))[:cap]
        flag = np.zeros(n, bool)
        flag[keep] = True
    return flag, fit


def clean_outliers(df: pd.DataFrame, ids, season_length: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """A copy of ``df`` (unique_id, ds, y; gap-filled, sorted) with the outliers of the items ``ids``
    replaced, and per cleaned item a description "2025-05: 930 → 412; ..." (period: raw → used)."""
    out = df.copy()
    y_all = out["y"].to_numpy(float).copy()
    notes: dict[str, str] = {}
    wanted = set(ids)
    L = int(season_length)
    for uid, idx in out.groupby("unique_id", sort=False).indices.items():
        if uid not in wanted:
            continue
        y = y_all[idx]
        L_eff = L if L > 1 and len(y) >= MIN_SEASONS * L else 1
        if len(y) < (MIN_SEASONS * L if L_eff > 1 else MIN_OBS):
            continue
        flag, fit = _flags(y, L_eff)
        if not flag.any():
            continue
        new = fit[flag]
        if (y >= 0).all():
            new = np.maximum(new, 0.0)
        y_all[idx[flag]] = new
        days = out["ds"].to_numpy()[idx[flag]]
        notes[uid] = "; ".join(f"{pd.Timestamp(d):%Y-%m}: {a:,.0f} → {b:,.0f}" for d, a, b in zip(days, y[flag], new))
    out["y"] = y_all
    return out, notes


def replace_marked(df: pd.DataFrame, marks: pd.DataFrame, season_length: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """A copy of ``df`` (unique_id, ds, y; gap-filled, sorted) with the periods of ``marks``
    (unique_id, ds: known promotions) replaced by the robust fit of the *other* periods - the same
    decomposition as the one-offs, with the marked values left out of its medians - and per item a
    description "2025-05: 930 → 412 (promotion); ...". Unlike a detected one-off, a marked period is
    replaced wherever it is (also at the ends: the user says it is not regular demand); an item
    whose periods are nearly all marked keeps them (nothing regular to fit)."""
    out = df.copy()
    y_all = out["y"].to_numpy(float).copy()
    key = pd.MultiIndex.from_frame(out[["unique_id", "ds"]])
    hit = key.isin(pd.MultiIndex.from_frame(marks[["unique_id", "ds"]]))
    notes: dict[str, str] = {}
    L = int(season_length)
    for uid, idx in out.groupby("unique_id", sort=False).indices.items():
        m = hit[idx]
        if not m.any() or m.sum() > len(idx) // 2:
            continue
        y = y_all[idx].copy()
        raw = y.copy()
        y[m] = np.nan
        L_eff = L if L > 1 and (~m).sum() >= MIN_SEASONS * L else 1
        fit, _, _ = _robust_fit(y, L_eff, min_periods=w_half(L_eff))
        new = fit[m]
        if not np.isfinite(new).all():
            new = np.where(np.isfinite(new), new, np.nanmedian(y))
        if (raw >= 0).all():
            new = np.maximum(new, 0.0)
        y_all[idx[m]] = new
        days = out["ds"].to_numpy()[idx[m]]
        fmt = "%Y-%m" if all(pd.Timestamp(d).day == 1 for d in days) else "%Y-%m-%d"
        notes[uid] = "; ".join(f"{pd.Timestamp(d):{fmt}}: {a:,.0f} → {b:,.0f} (promotion)"
                               for d, a, b in zip(days, raw[m], new))
    out["y"] = y_all
    return out, notes


def w_half(L: int) -> int:
    """Observations a running-median window needs when marked periods are left out: half of it."""
    w = max(L + 1 if L % 2 == 0 else L, 5)
    return w // 2 + 1
