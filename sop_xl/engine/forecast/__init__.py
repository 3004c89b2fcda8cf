"""Statistical demand forecasting for S&OP (pure: frames in, frames out).

Entry point: :func:`forecast`. Input is statsforecast long format (unique_id, ds, y).

How items are handled (``model="auto"``, the default)
-----------------------------------------------------
1. Cleaning: ids to str, dates rolled back to the period start, duplicate periods summed, missing
   periods *inside* a series filled with 0 (warning; counted per item in ``ForecastResult.filled``),
   NaN values treated as 0 (warning), leading zeros before the first non-zero value ignored (item
   not yet launched).
2. Classification (:func:`classify_demand`): zero / new / constant / intermittent / lumpy / short /
   smooth / erratic (Syntetos-Boylan ADI 1.32, CV^2 0.49).
3. One-offs (smooth / erratic / short items, ``clean=True``): outliers of the robust seasonal
   decomposition's remainder are replaced by their fitted value for model fitting only
   (:mod:`.cleaning`); the caller's history is not changed; ``selection.cleaned`` lists them.
   Known promotions (``exclude``: unique_id, ds) are replaced the same way, first, in every class
   (``cleaning.replace_marked``: the robust fit of the other periods) and listed as "(promotion)".
4. Per class, one frame-level statsforecast call per group of series, every series divided by its
   mean |y| and the forecasts multiplied back (``models.unit_scale``: the same forecast in any units):

   * smooth / erratic (>= 2 seasons): the ``ensemble`` of DynamicOptimizedTheta, damped seasonal
     ETS on log(y), CES on the seasonally adjusted series and seasonal CES on quarterly totals (see
     forecast_models), combined per item with weights 1 / (member's holdout MAE) when the item has
     a holdout (``HOLDOUT_WEIGHTS``), else their mean. The seasonal-naive floor: SeasonalNaive
     replaces it where its holdout MAE is more than ``FLOOR_MARGIN`` lower. A single candidate
     (DynamicOptimizedTheta, ETSDamped, SeasonalNaive or Naive) may replace it if its holdout MAE
     is more than ``SWITCH_MARGIN`` lower; off by default (None) because per-item selection is
     noisy and made M3 worse. With 2-4 seasons of history all members are fitted to the seasonally
     adjusted series (lenient seasonality rule), because the models' own seasonal tests rarely
     fire on so few seasons.
   * short (< 2 seasons, >= 8 observations): the same ensemble with non-seasonal variants.
   * intermittent / lumpy: CrostonSBA, TSB, ADIDA, IMAPA; the one with the lowest holdout MASE
     wins (CrostonSBA when the history is too short for a holdout).
   * fewer than 8 observations (incl. 'new' items with 1-2): mean of the last 3 observations.
   * constant: the constant; zero: zeros.
5. Forecasts (and intervals) are clipped at 0 for items whose history has no negative values.

A fixed ``model`` name is applied to every item that has at least 8 observations and is not
constant/zero (seasonal models use their non-seasonal variant below 2 seasons of history).

Holdout: ``StatsForecast.cross_validation`` (models.cross_validate) with ``holdout`` periods per
window (default ``min(horizon, season_length)``) and ``N_WINDOWS`` rolling origins; an item too
short for a full window gets one shorter window (:func:`holdout_plan`), so every item with 2 seasons
has accuracy figures. Accuracy per item is pooled over the windows
(``engine.metrics.holdout_metrics``, utilsforecast's definitions), against the cleaned history
(a listed one-off is not demand to forecast, nor to hold safety stock for); ``accuracy.rmse`` is the
σ of the forecast error the safety stock uses, ``accuracy.volume`` the mean |actual| of the holdout
(the item's weight in a volume-weighted WAPE). FVA < 0 (the chosen model lost to seasonal naive) is
said in the item's note. ``holdout=0`` skips the holdout (no accuracy figures, no per-item choice).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import warnings as warnings_module

import numpy as np
import pandas as pd
from utilsforecast.preprocessing import fill_gaps

from sop_xl.engine.metrics import HOLDOUT_METRICS, holdout_metrics
from sop_xl.engine.forecast.cleaning import clean_outliers, replace_marked
from sop_xl.engine.forecast.intermittent import classify_demand, flat_frame, window_average
from sop_xl.engine.forecast.models import (ENSEMBLE_COMPONENTS, INTERMITTENT_MODELS, cross_validate, holdout_weights,
                                           is_sorted, predict)

MODEL_NAMES: tuple[str, ...] = (
    "auto",
    "ensemble",
    "AutoETS",
    "AutoTheta",
    "DynamicOptimizedTheta",
    "Theta",
    "AutoARIMA",
    "AutoCES",
    "SeasonalNaive",
    "Naive",
    "CrostonSBA",
    "TSB",
    "ADIDA",
    "IMAPA",
)
DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy", "short", "constant", "zero", "new")
MAX_HORIZON = 240
MIN_MODEL_OBS = 8  # below this a flat mean of the last observations is used
N_WINDOWS = 2  # rolling-origin holdout windows
MIN_HOLDOUT = 3  # shortest holdout window (periods) used for items too short for a full one
ADJUST_ALL_BELOW = 4  # 2-4 seasons of history: all models fitted to the seasonally adjusted series
# auto: a single model replaces the ensemble for an item only if its holdout MAE is this much lower.
# None = never. On M3 monthly a 25 % margin made 'auto' worse (sMAPE 13.44 vs 13.34 for the pure
# ensemble: 2 holdout windows are too noisy to pick per item), so it is off by default.
SWITCH_MARGIN: float | None = None
# auto: the seasonal-naive floor. An item whose SeasonalNaive holdout MAE is this much below the
# ensemble's gets SeasonalNaive: a stable seasonal pattern repeated beats a smoothed one. Cheap, as
# SeasonalNaive is in every holdout already (for FVA); the wide margin keeps noisy picks rare.
FLOOR_MARGIN: float | None = 0.40
ENSEMBLE_LABEL = "mean of " + ", ".join(ENSEMBLE_COMPONENTS)
# The ensemble's members are combined per item with weights 1 / (the member's holdout MAE) when the
# item has a holdout (models.holdout_weights; the members' holdout forecasts are computed anyway for
# the ensemble's own). Chosen on M3 monthly and Tourism monthly, see bench/ and the README.
# False: the plain mean.
HOLDOUT_WEIGHTS = True
WEIGHTED_LABEL = "combination of " + ", ".join(ENSEMBLE_COMPONENTS) + " weighted by 1 / holdout MAE"
# Every holdout window refits the models (statsforecast's cross_validation refit=True). Applying
# the first window's fitted models to the later window instead (refit=False, statsforecast's
# ``forward``) halves the holdout's cost but made M3 monthly worse: sMAPE 14.127 / MASE 0.853 vs
# 13.186 / 0.822 (219 items switched to the seasonal-naive floor); Tourism 18.244 vs 18.184.
# auto: single models that may replace the ensemble for an item (all have cheap native intervals)
SWITCH_CANDIDATES = ("DynamicOptimizedTheta", "ETSDamped", "SeasonalNaive", "Naive")


@dataclass
class ForecastResult:
    forecasts: pd.DataFrame  # unique_id, ds, model, yhat, lo_L, hi_L ...
    selection: pd.DataFrame  # unique_id, demand_class, model, n_obs, note
    accuracy: pd.DataFrame  # unique_id, model, mase, smape, wape, bias, fva, rmse, volume
    warnings: list[str] = field(default_factory=list)
    filled: dict[str, int] = field(default_factory=dict)  # item -> missing periods filled with 0
    # the chosen model's holdout forecasts: unique_id, ds, cutoff, y (cleaned), yhat - the forecast
    # errors MinT reconciliation (.hierarchy) estimates its covariance from
    holdout: pd.DataFrame | None = None
    # .hierarchy only: family and total forecasts (level, unique_id, ds, base, yhat)
    aggregates: pd.DataFrame | None = None


# ----------------------------------------------------------------------------------------------
# validation and cleaning
# ----------------------------------------------------------------------------------------------
def _validate(history, horizon, season_length, freq, model, levels, holdout):
    if not isinstance(history, pd.DataFrame):
        raise ValueError("history must be a DataFrame with columns unique_id, ds, y")
    missing = {"unique_id", "ds", "y"} - set(history.columns)
    if missing:
        raise ValueError(f"history is missing column(s): {', '.join(sorted(missing))}")
    if history.empty:
        raise ValueError("history is empty")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or not 1 <= horizon <= MAX_HORIZON:
        raise ValueError(f"horizon must be a whole number between 1 and {MAX_HORIZON}")
    if isinstance(season_length, bool) or not isinstance(season_length, (int, np.integer)) or not 1 <= season_length <= 366:
        raise ValueError("season_length must be a whole number between 1 and 366")
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model '{model}'; choose one of: {', '.join(MODEL_NAMES)}")
    try:
        levels = tuple(int(lv) for lv in levels)
    except (TypeError, ValueError):
        raise ValueError("levels must be whole numbers between 1 and 99") from None
    if any(not 0 < lv < 100 for lv in levels):
        raise ValueError("levels must be whole numbers between 1 and 99")
    if holdout is not None and (isinstance(holdout, bool) or not isinstance(holdout, (int, np.integer)) or holdout < 0):
        raise ValueError("holdout must be None or a whole number >= 0")
    try:
        pd.tseries.frequencies.to_offset(freq)
    except (TypeError, ValueError):
        raise ValueError(f"unknown frequency '{freq}'") from None
    return tuple(sorted(set(levels)))


def _clean(history: pd.DataFrame, freq: str, warnings: list[str], filled_counts: dict[str, int]) -> pd.DataFrame:
    df = history[["unique_id", "ds", "y"]].copy()
    df["unique_id"] = df["unique_id"].astype(str)
    try:
        df["ds"] = pd.to_datetime(df["ds"])
    except (TypeError, ValueError):
        raise ValueError("ds must contain dates") from None
    df["y"] = pd.to_numeric(df["y"], errors="coerce")
    bad_ds = df["ds"].isna()
    if bad_ds.any():
        warnings.append(f"{int(bad_ds.sum())} row(s) without a date ignored")
        df = df[~bad_ds]
    if df.empty:
        raise ValueError("history has no usable rows")
    off = pd.tseries.frequencies.to_offset(freq)
    uniq = pd.Series(df["ds"].unique())
    on = uniq.map(off.is_on_offset)
    if not on.all():
        mapping = dict(zip(uniq, uniq.map(lambda d: d if off.is_on_offset(d) else off.rollback(d))))
        df["ds"] = df["ds"].map(mapping)
        warnings.append(f"dates not on the '{freq}' period start were moved to the period start")
    nan_y = df["y"].isna()
    if nan_y.any():
        for uid, k in df[nan_y].groupby("unique_id")["y"].size().items():
            warnings.append(f"item {uid}: {k} empty or non-numeric value(s) treated as 0")
        df["y"] = df["y"].fillna(0.0)
    dup = df.duplicated(["unique_id", "ds"], keep=False)
    if dup.any():
        for uid in sorted(df.loc[dup, "unique_id"].unique()):
            warnings.append(f"item {uid}: duplicate periods summed")
        df = df.groupby(["unique_id", "ds"], as_index=False)["y"].sum()
    if not is_sorted(df):  # a stable sort of sorted rows would keep them as they are
        df = df.sort_values(["unique_id", "ds"], kind="stable")
    df = df.reset_index(drop=True)
    if not _has_gaps(df, off):  # the usual case; fill_gaps costs ~4 ms even with nothing to fill
        df["y"] = df["y"].astype(float)
        return df
    filled = fill_gaps(df, freq=freq, start="per_serie", end="per_serie")
    gaps = filled["y"].isna()
    if gaps.any():
        for uid, k in filled[gaps].groupby("unique_id")["y"].size().items():
            filled_counts[str(uid)] = int(k)
            warnings.append(f"item {uid}: {k} missing period{'s' if k != 1 else ''} filled with 0")
        filled["y"] = filled["y"].fillna(0.0)
    filled["y"] = filled["y"].astype(float)
    return filled.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def _has_gaps(df: pd.DataFrame, off) -> bool:
    """Whether a period is missing inside a series of ``df`` (sorted by unique_id, ds, dates on
    the period start, no duplicates): some date is not the one before it plus one period."""
    ds = pd.DatetimeIndex(df["ds"])
    same = df["unique_id"].to_numpy()[1:] == df["unique_id"].to_numpy()[:-1]
    if not same.any():
        return False
    with warnings_module.catch_warnings():
        warnings_module.simplefilter("ignore", pd.errors.PerformanceWarning)  # offsets without a vectorised path
        expected = ds[:-1] + off
    return bool((ds[1:][same] != expected[same]).any())


def _trim_leading_zeros(df: pd.DataFrame) -> pd.DataFrame:
    # numpy (~1 ms less than a groupby cummax): a row is kept from its item's first non-zero row on
    codes, ids = pd.factorize(df["unique_id"])
    nz = np.flatnonzero(df["y"].to_numpy() != 0)
    first = np.full(len(ids), len(df))
    np.minimum.at(first, codes[nz], nz)
    started = np.arange(len(df)) >= first[codes]
    return df[started].reset_index(drop=True)


def _rows(df: pd.DataFrame, ids) -> pd.DataFrame:
    """The rows of the items ``ids``; ``df`` itself when it has no other item (a cell's one series:
    filtering would copy the frame for nothing, ~0.5 ms a time)."""
    uid = df["unique_id"].to_numpy()
    mask = uid == ids[0] if len(ids) == 1 else df["unique_id"].isin(ids).to_numpy()
    return df if mask.all() else df[mask]


# ----------------------------------------------------------------------------------------------
# holdout
# ----------------------------------------------------------------------------------------------
def holdout_plan(n: pd.Series, hv: int, min_train: int, L_eff: int) -> pd.DataFrame:
    """Holdout window length and count per item (``n``: observations per item, indexed by id).

    Normally ``N_WINDOWS`` windows of ``hv`` periods, as many as fit after ``min_train`` observations.
    An item too short for one full window gets one shorter window, so that every item with at least
    2 seasons (or MIN_MODEL_OBS + MIN_HOLDOUT observations when non-seasonal) has accuracy figures:
    the rest after ``min_train`` if that is at least ``MIN_HOLDOUT`` periods, else (seasonal items
    with 2 seasons and a few months) the last half season, fitted on at least one season.
    Returns columns ``h`` and ``windows`` (0 = no holdout)."""
    nv = n.to_numpy(int)  # numpy, not Series arithmetic: this runs once per cell
    spare = nv - min_train
    windows = np.clip(spare // hv, 0, N_WINDOWS) if hv > 0 else np.zeros_like(nv)
    h = np.full(len(nv), hv)
    short = (windows == 0) & (spare >= MIN_HOLDOUT) & (hv > 0)
    h[short] = np.minimum(spare[short], hv)
    windows[short] = 1
    if L_eff > 1 and hv > 0:
        half = max(MIN_HOLDOUT, L_eff // 2)
        tiny = (windows == 0) & (nv >= 2 * L_eff) & (nv - half >= L_eff)
        h[tiny] = min(half, hv)
        windows[tiny] = 1
    return pd.DataFrame({"h": h.astype(int), "windows": windows.astype(int)}, index=n.index)


def _holdout(df, ids, candidates, L, freq, plan, n_jobs, adjust_all=False):
    """Rolling-origin holdout (:func:`cross_validate`) of the items ``ids`` (``df``: their history)
    as ``plan`` (:func:`holdout_plan`) says: one frame-level call per (window length, windows) group."""
    plan = plan.reindex(ids)
    parts = []
    for (h, w), grp in plan[plan["windows"] > 0].groupby(["h", "windows"]):
        parts.append(cross_validate(_rows(df, list(grp.index)), int(h), int(w), candidates, L, freq,
                                    n_jobs, adjust_all))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["unique_id", "ds", "cutoff", "y", *candidates])


# ----------------------------------------------------------------------------------------------
# main entry point
# ----------------------------------------------------------------------------------------------
def forecast(
    history: pd.DataFrame,
    horizon: int,
    season_length: int = 12,
    freq: str = "MS",
    model: str = "auto",
    levels: tuple[int, ...] = (80, 95),
    holdout: int | None = None,
    n_jobs: int = 1,
    clean: bool = True,
    exclude: pd.DataFrame | None = None,
) -> ForecastResult:
    """Forecast every item of ``history`` ``horizon`` periods ahead. See the module docstring.

    ``exclude``: periods (unique_id, ds) known to be unusual - promotions - replaced for fitting only
    (:func:`.cleaning.replace_marked`) and listed in ``selection.cleaned``."""
    levels = _validate(history, horizon, season_length, freq, model, levels, holdout)
    horizon, L = int(horizon), int(season_length)
    warnings: list[str] = []
    filled: dict[str, int] = {}
    full = _clean(history, freq, warnings, filled)
    has_neg = full.groupby("unique_id", sort=False)["y"].min() < 0
    last_ds = full.groupby("unique_id", sort=False)["ds"].max()
    raw = _trim_leading_zeros(full)
    cls = classify_demand(raw, L).set_index("unique_id")
    all_ids = list(full["unique_id"].unique())
    cls = cls.reindex(all_ids)
    cls["n_obs"] = cls["n_obs"].fillna(0).astype(int)
    cls["demand_class"] = cls["demand_class"].fillna("zero")
    hv = int(holdout) if holdout is not None else min(horizon, L if L > 1 else 6)
    # models are fitted to the history with its one-offs replaced (regular demand only); ``raw``
    # stays for accuracy, classification and the trivial classes
    cleanable = cls.index[cls["demand_class"].isin(["smooth", "erratic", "short"])]
    df, cleaned = raw, {}
    if exclude is not None and len(exclude):
        df, cleaned = replace_marked(df, _marks(exclude, freq), L)
    if clean:
        df, found = clean_outliers(df, cleanable, L)
        cleaned = {u: "; ".join(filter(None, (cleaned.get(u, ""), found.get(u, ""))))
                   for u in set(cleaned) | set(found)}
    volumes: list[pd.Series] = []

    notes: dict[str, str] = {}
    chosen: dict[str, str] = {}
    frames: list[pd.DataFrame] = []
    cv_metrics: list[pd.DataFrame] = []
    holdouts: list[pd.DataFrame] = []

    # ---- trivial classes ---------------------------------------------------------------------
    zero_ids = cls.index[cls["demand_class"] == "zero"]
    const_ids = cls.index[cls["demand_class"] == "constant"]
    few_ids = cls.index[~cls["demand_class"].isin(["zero", "constant"]) & (cls["n_obs"] < MIN_MODEL_OBS)]
    if len(zero_ids):
        z = pd.Series(0.0, index=zero_ids)
        frames.append(flat_frame(z, z, last_ds, horizon, levels, freq).assign(model="Zero"))
        for u in zero_ids:
            chosen[u], notes[u] = "Zero", "all-zero history: forecast 0"
    if len(const_ids):
        val = df[df["unique_id"].isin(const_ids)].groupby("unique_id")["y"].last()
        frames.append(flat_frame(val, val * 0.0, last_ds, horizon, levels, freq).assign(model="Constant"))
        for u in const_ids:
            chosen[u], notes[u] = "Constant", "constant history: the value is repeated"
    if len(few_ids):
        wa = window_average(df, few_ids, horizon, levels, freq)
        frames.append(wa.assign(model="WindowAverage"))
        for u in few_ids:
            k = int(cls.at[u, "n_obs"])
            chosen[u] = "WindowAverage"
            notes[u] = f"only {k} observation{'s' if k != 1 else ''}: mean of the last {min(k, 3)}"

    # ---- model groups ------------------------------------------------------------------------
    modelled = cls.index.difference(zero_ids.union(const_ids).union(few_ids), sort=False)
    groups: dict[tuple, list[str]] = {}
    for u in modelled:
        c = cls.at[u, "demand_class"]
        n_u = int(cls.at[u, "n_obs"])
        seasonal = n_u >= 2 * L and L > 1
        L_eff = L if seasonal else 1
        adj_all = seasonal and n_u < ADJUST_ALL_BELOW * L
        if model == "auto":
            kind = "intermittent" if c in ("intermittent", "lumpy") else "regular"
        else:
            kind = "fixed"
        groups.setdefault((kind, L_eff, adj_all), []).append(u)

    for (kind, L_eff, adj_all), ids in groups.items():
        if kind == "intermittent":
            cands = list(INTERMITTENT_MODELS)
            default = "CrostonSBA"
        elif kind == "regular":
            cands = ["ensemble"]
            default = "ensemble"
        else:
            cands = [model]
            default = model
        extra = ["SeasonalNaive"] if L_eff > 1 else ["Naive"]
        if kind == "regular" and SWITCH_MARGIN is not None:
            extra = list(SWITCH_CANDIDATES)
        cv_cands = list(dict.fromkeys(cands + extra))
        min_train = 2 * L_eff if L_eff > 1 else MIN_MODEL_OBS
        met = pd.DataFrame()
        weights = None
        plan = holdout_plan(cls.loc[ids, "n_obs"].astype(int), hv, min_train, L_eff)
        group = _rows(df, ids)  # the group's history, for the holdout, its metrics and the fit
        if hv > 0:
            # judged on the cleaned history: a listed one-off is not demand a model should forecast
            # (nor a safety stock cover), and would otherwise dominate the error of a short holdout
            cv = _holdout(group, ids, cv_cands, L_eff, freq, plan, n_jobs, adj_all)
            met = holdout_metrics(cv, group, L_eff, cv_cands)
            if HOLDOUT_WEIGHTS and "ensemble" in cands:
                weights = holdout_weights(cv)
            if not met.empty:
                cv_metrics.append(met)
                volumes.append(cv["y"].abs().groupby(cv["unique_id"]).mean())
        # per-item choice
        pick = pd.Series(default, index=ids, dtype=object)
        if not met.empty and kind in ("intermittent", "regular"):
            m = met.set_index(["unique_id", "candidate"])["mae"].unstack("candidate")
            if kind == "intermittent":
                m = m[[c for c in cands if c in m.columns]].dropna(how="all")
                best = m.idxmin(axis=1)
                pick.loc[best.index] = best
            else:
                alts = [c for c in m.columns if c != "ensemble"]
                if "ensemble" in m.columns and alts and SWITCH_MARGIN is not None:
                    best = m[alts].idxmin(axis=1)
                    best_val = m[alts].min(axis=1)
                    switch = best_val < (1 - SWITCH_MARGIN) * m["ensemble"]
                    pick.loc[switch[switch].index] = best[switch]
                if "ensemble" in m.columns and "SeasonalNaive" in m.columns and FLOOR_MARGIN is not None:
                    floor = m["SeasonalNaive"] < (1 - FLOOR_MARGIN) * m["ensemble"]
                    pick.loc[floor[floor].index] = "SeasonalNaive"
        has_cv = set(met["unique_id"]) if not met.empty else set()
        for u in ids:
            p = pick[u]
            chosen[u] = p
            c = cls.at[u, "demand_class"]
            short = "" if L_eff == L or L == 1 else f"history shorter than 2 seasons ({cls.at[u, 'n_obs']} obs): non-seasonal variant; "
            if adj_all:
                short = "2-4 seasons of history: models fitted to the seasonally adjusted series; "
            if kind == "intermittent":
                notes[u] = (f"{c} demand: lowest holdout MASE among {len(cands)} intermittent methods"
                            if u in has_cv else f"{c} demand, history too short for a holdout: CrostonSBA default")
            elif kind == "regular":
                if p == "ensemble" and weights is not None and u in weights.index:
                    w = ", ".join(f"{c} {v:.2f}" for c, v in weights.loc[u].items())
                    notes[u] = short + f"{WEIGHTED_LABEL} ({w}; holdout accuracy shown: the plain mean's)"
                elif p == "ensemble":
                    notes[u] = short + f"{ENSEMBLE_LABEL} (robust default combination)"
                elif p == "SeasonalNaive" and FLOOR_MARGIN is not None:
                    notes[u] = short + (f"seasonal-naive floor: its holdout MAE is more than "
                                        f"{int(FLOOR_MARGIN * 100)} % below the ensemble's")
                else:
                    notes[u] = short + f"holdout MAE of {p} more than {int((SWITCH_MARGIN or 0) * 100)} % below the ensemble"
            else:
                notes[u] = short + f"model fixed by the user: {model}"
        for u in has_cv:
            h_u, w_u = int(plan.at[u, "h"]), int(plan.at[u, "windows"])
            if h_u < hv:
                notes[u] += f"; accuracy from a shorter holdout ({w_u} window of {h_u} periods: short history)"
        if hv > 0 and len(cv):
            mine_cv = cv[cv["unique_id"].isin(has_cv)]
            chosen_col = mine_cv["unique_id"].map(pick).to_numpy(object)
            yhat_cv = np.full(len(mine_cv), np.nan)
            for c in set(chosen_col):
                yhat_cv[chosen_col == c] = mine_cv.loc[chosen_col == c, c].to_numpy(float)
            holdouts.append(mine_cv[["unique_id", "ds", "cutoff", "y"]].assign(yhat=yhat_cv))
        final_cands = list(dict.fromkeys(pick.tolist()))
        fc = predict(group, horizon, final_cands, L_eff, freq, levels, n_jobs, adj_all,
                     weights)
        fc = fc[fc["candidate"] == fc["unique_id"].map(pick)]
        frames.append(fc.rename(columns={"candidate": "model"}))

    # ---- assemble ----------------------------------------------------------------------------
    cols = ["unique_id", "ds", "model", "yhat"] + [f"{b}_{lv}" for lv in levels for b in ("lo", "hi")]
    fc = pd.concat(frames, ignore_index=True)[cols]
    order = {u: i for i, u in enumerate(all_ids)}
    if not is_sorted(fc, order):  # one group's frames are in order already; the sort costs ~2 ms
        fc = fc.sort_values(["unique_id", "ds"], key=lambda s: s.map(order) if s.name == "unique_id" else s,
                            kind="stable")
    fc = fc.reset_index(drop=True)
    vals = ["yhat"] + cols[4:]
    nonneg = ~fc["unique_id"].map(has_neg).fillna(False).to_numpy(bool)
    arr = fc[vals].to_numpy(float)
    arr = np.where(np.isfinite(arr), arr, np.nan)
    yhat = np.where(np.isnan(arr[:, 0]), 0.0, arr[:, 0])
    arr[:, 0] = yhat
    for j in range(1, arr.shape[1]):
        arr[:, j] = np.where(np.isnan(arr[:, j]), yhat, arr[:, j])
    arr[nonneg] = np.maximum(arr[nonneg], 0.0)
    fc[vals] = arr
    # intervals: lo <= yhat <= hi, wider levels contain narrower ones
    prev_lo, prev_hi = fc["yhat"].to_numpy(float), fc["yhat"].to_numpy(float)
    for lv in levels:
        lo = np.minimum(fc[f"lo_{lv}"].to_numpy(float), prev_lo)
        hi = np.maximum(fc[f"hi_{lv}"].to_numpy(float), prev_hi)
        fc[f"lo_{lv}"], fc[f"hi_{lv}"] = lo, hi
        prev_lo, prev_hi = lo, hi

    acc = pd.DataFrame({"unique_id": all_ids, "model": [chosen[u] for u in all_ids]})
    metrics = pd.concat(cv_metrics, ignore_index=True) if cv_metrics else pd.DataFrame(
        columns=["unique_id", "candidate", *HOLDOUT_METRICS])
    # each item's chosen model's metrics, looked up by (item, model): a merge costs ~1 ms a call.
    # Position -1 (no holdout) picks the NaN appended to every column.
    row = {k: i for i, k in enumerate(zip(metrics["unique_id"], metrics["candidate"]))}
    pos = np.array([row.get((u, chosen[u]), -1) for u in all_ids], dtype=int)
    mine = acc.assign(**{c: np.append(metrics[c].to_numpy(float), np.nan)[pos] for c in HOLDOUT_METRICS})
    def mae_of(candidate):  # by unique_id
        rows = metrics[metrics["candidate"] == candidate]
        return pd.Series(rows["mae"].to_numpy(), index=rows["unique_id"].to_numpy(), dtype=rows["mae"].dtype)

    snaive = mae_of("SeasonalNaive")
    if snaive.empty:
        snaive = mae_of("Naive")
    ref = mine["unique_id"].map(snaive).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        fva = 1.0 - mine["mae"].astype(float) / ref.where(ref > 0)
    accuracy = pd.DataFrame(
        {
            "unique_id": mine["unique_id"],
            "model": mine["model"],
            "mase": mine["mase"].astype(float),
            "smape": mine["smape"].astype(float),
            "wape": mine["wape"].astype(float),
            "bias": mine["bias"].astype(float),
            "fva": fva.replace([np.inf, -np.inf], np.nan),
            "rmse": mine["rmse"].astype(float),
            "volume": mine["unique_id"].map(pd.concat(volumes) if volumes else pd.Series(dtype=float)).astype(float),
        }
    )
    # negative value added: the chosen model lost to seasonal naive on the holdout - said per item
    for u, v in zip(all_ids, accuracy["fva"].to_numpy(float)):
        if not v < 0:
            continue
        why = (f"kept: seasonal naive must win by more than {int(FLOOR_MARGIN * 100)} % to replace it"
               if model == "auto" and FLOOR_MARGIN is not None else "kept")
        notes[u] += f"; NEGATIVE VALUE ADDED: holdout MAE {-v:.0%} above seasonal naive's ({why})"
    selection = pd.DataFrame(
        {
            "unique_id": all_ids,
            "demand_class": [cls.at[u, "demand_class"] for u in all_ids],
            "model": [chosen[u] for u in all_ids],
            "n_obs": [int(cls.at[u, "n_obs"]) for u in all_ids],
            "note": [notes[u] for u in all_ids],
            "cleaned": [cleaned.get(u, "") for u in all_ids],
        }
    )
    hold = (pd.concat(holdouts, ignore_index=True) if holdouts
            else pd.DataFrame(columns=["unique_id", "ds", "cutoff", "y", "yhat"]))
    return ForecastResult(forecasts=fc, selection=selection, accuracy=accuracy, warnings=warnings, filled=filled,
                          holdout=hold)


def _marks(exclude: pd.DataFrame, freq: str) -> pd.DataFrame:
    """``exclude`` as (unique_id str, ds on the period start), as :func:`_clean` makes the history."""
    missing = {"unique_id", "ds"} - set(exclude.columns)
    if missing:
        raise ValueError(f"exclude is missing column(s): {', '.join(sorted(missing))}")
    m = exclude[["unique_id", "ds"]].dropna().copy()
    m["unique_id"] = m["unique_id"].astype(str)
    m["ds"] = pd.to_datetime(m["ds"])
    off = pd.tseries.frequencies.to_offset(freq)
    m["ds"] = m["ds"].map(lambda d: d if off.is_on_offset(d) else off.rollback(d))
    return m.drop_duplicates()
