"""Model registry and frame-level fitting for the forecast engine.

Every model is run through ``StatsForecast(models=[...]).forecast(df=...)`` on *all* series of a
group at once (one call per group and model family), never through a Python loop over items, so
the same calls can later be handed to statsforecast's Fugue/Spark/Dask backends.

Candidates
----------
A *candidate* is one forecast method the engine can choose. It is either a single statsforecast
model (``AutoETS``, ``CrostonSBA`` ...) or the ``ensemble`` combination, which is the plain mean of
its components (point forecasts and interval bounds averaged).

Ensemble components (chosen on M3 monthly, see bench/forecast_m3.py):

* ``DynamicOptimizedTheta`` on the raw series (its own classical multiplicative seasonal adjustment),
* ``ETSDamped``: seasonal ETS restricted to damped trends (``AutoETS(damped=True)``) on the raw series,
* ``CESAdjusted``: non-seasonal complex exponential smoothing (``AutoCES``) fitted to the seasonally
  adjusted series (classical decomposition, see ``_one_index``) and re-seasonalised.
* ``CESTemporal`` (temporal aggregation, as in ADIDA/MAPA): seasonal ``AutoCES`` fitted to the series
  summed over blocks of 3 periods (quarters of a monthly series, season L/3), split back into periods
  with each period's average share of its block over the last 3 years. Only when the season length
  is a multiple of 3 and >= 12 and the history has >= 4 seasons; otherwise the ensemble has 3 members.

Ensemble intervals: ``yhat_ensemble -/+`` the mean half-width (below / above) of the components
whose intervals are cheap (CES intervals cost ~100x its point forecast, so CES contributes only to
the point forecast).

Models without native prediction intervals (Croston family, TSB, ADIDA, IMAPA) get a documented
approximation: ``yhat +/- z * sigma`` where sigma is the root mean squared difference between the
last ``max(2 * season_length, 12)`` observations and the first-step forecast (the demand
variability around the level the model predicts), constant over the horizon.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsforecast import StatsForecast
from statsforecast.models import (
    ADIDA,
    IMAPA,
    TSB,
    AutoARIMA,
    AutoCES,
    AutoETS,
    AutoTheta,
    CrostonSBA,
    DynamicOptimizedTheta,
    Naive,
    SeasonalNaive,
    Theta,
)


@dataclass(frozen=True)
class ModelSpec:
    """How to build one statsforecast model. ``factory(season_length)`` returns the model;
    ``adjusted`` means it is fitted to the seasonally adjusted series; ``native_pi`` says whether
    the model returns prediction intervals itself."""

    factory: Callable[[int], object]
    native_pi: bool = True
    adjusted: bool = False
    cheap_pi: bool = True  # False: native intervals are very slow (CES); skipped inside the ensemble
    temporal: bool = False  # fitted to the series aggregated over blocks of 3 periods (quarters)
    seasonal: bool = True  # uses season_length (short series get the season_length=1 variant)


# Alias of each statsforecast model = the registry key, so output columns are predictable.
SPECS: dict[str, ModelSpec] = {
    "AutoETS": ModelSpec(lambda L: AutoETS(season_length=L, alias="AutoETS")),
    "ETSDamped": ModelSpec(lambda L: AutoETS(season_length=L, damped=True, alias="ETSDamped")),
    "AutoTheta": ModelSpec(lambda L: AutoTheta(season_length=L, alias="AutoTheta")),
    "Theta": ModelSpec(lambda L: Theta(season_length=L, alias="Theta")),
    "DynamicOptimizedTheta": ModelSpec(
        lambda L: DynamicOptimizedTheta(season_length=L, alias="DynamicOptimizedTheta")
    ),
    "AutoARIMA": ModelSpec(lambda L: AutoARIMA(season_length=L, alias="AutoARIMA")),
    "AutoCES": ModelSpec(lambda L: AutoCES(season_length=L, alias="AutoCES")),
    "CESAdjusted": ModelSpec(
        lambda L: AutoCES(season_length=1, alias="CESAdjusted"), adjusted=True, cheap_pi=False
    ),
    "CESTemporal": ModelSpec(
        lambda L: AutoCES(season_length=max(L // 3, 1), alias="CESTemporal"), cheap_pi=False, temporal=True
    ),
    "SeasonalNaive": ModelSpec(lambda L: SeasonalNaive(season_length=L, alias="SeasonalNaive")),
    "Naive": ModelSpec(lambda L: Naive(alias="Naive"), seasonal=False),
    "CrostonSBA": ModelSpec(lambda L: CrostonSBA(alias="CrostonSBA"), native_pi=False, seasonal=False),
    "TSB": ModelSpec(lambda L: TSB(alpha_d=0.1, alpha_p=0.1, alias="TSB"), native_pi=False, seasonal=False),
    "ADIDA": ModelSpec(lambda L: ADIDA(alias="ADIDA"), native_pi=False, seasonal=False),
    "IMAPA": ModelSpec(lambda L: IMAPA(alias="IMAPA"), native_pi=False, seasonal=False),
}

ENSEMBLE_COMPONENTS: tuple[str, ...] = ("DynamicOptimizedTheta", "ETSDamped", "CESAdjusted", "CESTemporal")
TEMPORAL_BLOCK = 3
INTERMITTENT_MODELS: tuple[str, ...] = ("CrostonSBA", "TSB", "ADIDA", "IMAPA")


def components_of(candidate: str) -> tuple[str, ...]:
    return ENSEMBLE_COMPONENTS if candidate == "ensemble" else (candidate,)


# ----------------------------------------------------------------------------------------------
# seasonal adjustment (classical multiplicative decomposition, Theta-style seasonality test)
# ----------------------------------------------------------------------------------------------
def _one_index(y: np.ndarray, L: int, lenient: bool = False) -> tuple[np.ndarray, bool]:
    """Seasonal component of one series and whether it is multiplicative. Same rule as
    statsforecast's Theta: test the lag-L autocorrelation (90 %) when n >= 2L; multiplicative
    decomposition for positive data, additive otherwise; no adjustment when not seasonal.
    ``lenient`` (used for 2-4 seasons of history, where that test almost never fires) also accepts
    a seasonal strength 1 - var(remainder) / var(detrended) >= 0.64."""
    n = len(y)
    if L < 2 or n < 2 * L:
        return np.ones(L), True
    yc = y - y.mean()
    denom = np.sum(yc * yc)
    if denom <= 0:
        return np.ones(L), True
    ma = pd.Series(y).rolling(L, center=True).mean()
    if L % 2 == 0:  # centred 2xL moving average
        ma = ma.rolling(2).mean().shift(-1)
    ma = ma.to_numpy()
    pos = np.arange(n) % L
    acf = np.array([np.sum(yc[k:] * yc[: n - k]) for k in range(L + 1)]) / denom
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[1:L] ** 2)) / n)
    seasonal = L >= 4 and abs(acf[L]) > limit
    if not seasonal and lenient:
        det = y - ma
        ok = ~np.isnan(det)
        s_add = np.array([np.nanmean(det[pos == k]) if np.any(ok & (pos == k)) else 0.0 for k in range(L)])
        rem = det[ok] - s_add[pos[ok]]
        v = np.var(det[ok])
        seasonal = bool(v > 0 and 1 - np.var(rem) / v >= 0.64)
    if not seasonal:
        return np.ones(L), True
    mult = bool(np.all(y > 0))
    if mult:
        ratio = y / ma
        si = np.array([np.nanmean(ratio[pos == k]) for k in range(L)])
        if np.all(np.isfinite(si)) and np.all(si > 0.01):
            return si / si.mean(), True
    diff = y - ma
    si = np.array([np.nanmean(diff[pos == k]) for k in range(L)])
    si = np.where(np.isfinite(si), si, 0.0)
    return si - si.mean(), False


def _adjust(df: pd.DataFrame, L: int, lenient: bool = False):
    """Seasonally adjust every series (df sorted by unique_id, ds). Cheap numpy preprocessing per
    series (no model fit); returns the adjusted frame and {uid: (index, n, multiplicative)}."""
    info = {}
    factors = []
    mults = []
    for uid, g in df.groupby("unique_id", sort=False):
        y = g["y"].to_numpy(float)
        si, mult = _one_index(y, L, lenient)
        info[uid] = (si, len(y), mult)
        factors.append(si[np.arange(len(y)) % L])
        mults.append(np.full(len(y), mult))
    adj = df.copy()
    if info:
        f = np.concatenate(factors)
        m = np.concatenate(mults)
        y = df["y"].to_numpy(float)
        adj["y"] = np.where(m, y / np.where(m, f, 1.0), y - np.where(m, 0.0, f))
    return adj, info


def _reseasonalise(fc: pd.DataFrame, info: dict, L: int, cols: list[str]) -> pd.DataFrame:
    step = fc.groupby("unique_id", sort=False).cumcount().to_numpy()
    uids = fc["unique_id"].to_numpy()
    f = np.array([info[u][0][(info[u][1] + k) % L] for u, k in zip(uids, step)])
    m = np.array([info[u][2] for u in uids], dtype=bool)
    fc = fc.copy()
    for c in cols:
        v = fc[c].to_numpy(float)
        fc[c] = np.where(m, v * np.where(m, f, 1.0), v + np.where(m, 0.0, f))
    return fc


def _aggregate(df: pd.DataFrame, L: int):
    """Blocks of TEMPORAL_BLOCK periods, aligned on the last observation. Returns the aggregated
    frame (integer ds) and {uid: (shares[L/k, k], n_blocks)}."""
    k = TEMPORAL_BLOCK
    per = L // k
    rows, info = [], {}
    for uid, g in df.groupby("unique_id", sort=False):
        y = g["y"].to_numpy(float)
        q = y[len(y) % k:].reshape(-1, k)
        nq = len(q)
        pos = np.arange(nq) % per
        shares = np.full((per, k), 1.0 / k)
        for j in range(per):
            blk = q[pos == j][-3:]
            blk = blk[(blk > 0).all(axis=1)] if len(blk) else blk
            if len(blk):
                shares[j] = (blk / blk.sum(axis=1, keepdims=True)).mean(axis=0)
        info[uid] = (shares, nq)
        rows.append(pd.DataFrame({"unique_id": uid, "ds": np.arange(nq), "y": q.sum(axis=1)}))
    return pd.concat(rows, ignore_index=True), info


def _disaggregate(agg_fc: pd.DataFrame, name: str, info: dict, like: pd.DataFrame, L: int) -> pd.DataFrame:
    """Spread block forecasts over the periods of ``like`` (unique_id, ds of the h future periods)."""
    k, per = TEMPORAL_BLOCK, L // TEMPORAL_BLOCK
    agg_fc = agg_fc.sort_values(["unique_id", "ds"], kind="stable")
    vals = {u: g[name].to_numpy(float) for u, g in agg_fc.groupby("unique_id", sort=False)}
    out = like[["unique_id", "ds"]].copy()
    step = out.groupby("unique_id", sort=False).cumcount().to_numpy()
    res = np.empty(len(out))
    for i, (u, st) in enumerate(zip(out["unique_id"].to_numpy(), step)):
        shares, nq = info[u]
        b = st // k
        res[i] = vals[u][b] * shares[(nq + b) % per, st % k]
    out[name] = res
    return out


# ----------------------------------------------------------------------------------------------
# frame-level fit/predict
# ----------------------------------------------------------------------------------------------
def _approx_intervals(fc: pd.DataFrame, df: pd.DataFrame, name: str, levels, L: int) -> pd.DataFrame:
    """Documented approximation for models without native intervals (see module doc)."""
    w = max(2 * L, 12)
    first = fc.groupby("unique_id", sort=False)[name].first()
    tail = df.groupby("unique_id", sort=False).tail(w)
    dev = (tail["y"].to_numpy(float) - tail["unique_id"].map(first).to_numpy(float)) ** 2
    sigma = pd.Series(dev, index=tail["unique_id"].to_numpy()).groupby(level=0).mean() ** 0.5
    s = fc["unique_id"].map(sigma).fillna(0.0).to_numpy(float)
    for lv in levels:
        z = norm.ppf(0.5 + lv / 200.0)
        fc[f"{name}-lo-{lv}"] = fc[name].to_numpy(float) - z * s
        fc[f"{name}-hi-{lv}"] = fc[name].to_numpy(float) + z * s
    return fc


def predict(df: pd.DataFrame, h: int, candidates: list[str], L: int, freq: str, levels, n_jobs: int = 1,
            adjust_all: bool = False) -> pd.DataFrame:
    """Fit the candidates on all series of ``df`` at once and forecast ``h`` steps.

    Returns long format: unique_id, ds, candidate, yhat, lo_<lv>, hi_<lv>.
    ``L`` is the season length to use (1 = non-seasonal variants). ``adjust_all``: every model is
    fitted (non-seasonal variant) to the seasonally adjusted series, with the lenient seasonality
    rule; used for 2-4 seasons of history, where models' own seasonal fitting is unreliable.
    """
    needed = sorted({c for cand in candidates for c in components_of(cand)})
    levels = list(levels)
    # inside an ensemble, components with slow intervals give point forecasts only
    ens_only = {c for c in ENSEMBLE_COMPONENTS if not SPECS[c].cheap_pi} - set(candidates)
    use_temporal = L >= 12 and L % TEMPORAL_BLOCK == 0 and not adjust_all
    tmp_models = [m for m in needed if SPECS[m].temporal and use_temporal]
    needed = [m for m in needed if not SPECS[m].temporal]
    raw_models = [m for m in needed if not SPECS[m].adjusted and not (adjust_all and SPECS[m].seasonal)]
    adj_models = [m for m in needed if m not in raw_models]
    per_model: dict[str, pd.DataFrame] = {}

    def run(frame, names, L_model):
        if not levels:
            groups = ((names, None, False),)
        else:
            native = [n for n in names if SPECS[n].native_pi and n not in ens_only]
            other = [n for n in names if not SPECS[n].native_pi]
            point = [n for n in names if n in ens_only]
            groups = ((native, levels, False), (other, None, True), (point, None, False))
        res = []
        for group, lv, approx in groups:
            if not group:
                continue
            sf = StatsForecast(
                models=[SPECS[n].factory(L_model if SPECS[n].seasonal else 1) for n in group],
                freq=freq,
                n_jobs=n_jobs,
                fallback_model=Naive(),
            )
            fc = sf.forecast(df=frame, h=h, level=lv)
            fc = fc.reset_index() if "unique_id" not in fc.columns else fc
            fc = fc.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
            if approx:
                for n in group:
                    fc = _approx_intervals(fc, frame, n, levels, max(L_model, 1))
            res.append(fc)
        return res

    if raw_models:
        for fc in run(df, raw_models, L):
            for n in raw_models:
                if n in fc.columns:
                    per_model[n] = fc
    if adj_models:
        if L > 1:
            adj, info = _adjust(df, L, lenient=adjust_all)
            fcs = run(adj, adj_models, 1)
            fcs = [_reseasonalise(fc, info, L, [c for c in fc.columns if c not in ("unique_id", "ds")]) for fc in fcs]
        else:
            fcs = run(df, adj_models, 1)
        for fc in fcs:
            for n in adj_models:
                if n in fc.columns:
                    per_model[n] = fc

    if tmp_models and per_model:
        agg, info = _aggregate(df, L)
        hq = -(-h // TEMPORAL_BLOCK)
        sf = StatsForecast(models=[SPECS[m].factory(L) for m in tmp_models], freq=1, n_jobs=n_jobs,
                           fallback_model=Naive())
        afc = sf.forecast(df=agg, h=hq)
        afc = afc.reset_index() if "unique_id" not in afc.columns else afc
        like = next(iter(per_model.values()))
        for m in tmp_models:
            per_model[m] = _disaggregate(afc, m, info, like, L)

    def block(name: str) -> pd.DataFrame:
        fc = per_model[name]
        out = fc[["unique_id", "ds"]].copy()
        out["yhat"] = fc[name].to_numpy(float)
        for lv in levels:
            has = f"{name}-lo-{lv}" in fc.columns
            out[f"lo_{lv}"] = fc[f"{name}-lo-{lv}"].to_numpy(float) if has else np.nan
            out[f"hi_{lv}"] = fc[f"{name}-hi-{lv}"].to_numpy(float) if has else np.nan
        return out.reset_index(drop=True)

    frames = []
    for cand in candidates:
        comps = [c for c in components_of(cand) if c in per_model]
        blocks = [block(c) for c in comps]
        b = blocks[0].copy()
        if len(blocks) > 1:
            yh = np.stack([x["yhat"].to_numpy(float) for x in blocks])
            b["yhat"] = yh.mean(axis=0)
            for lv in levels:
                below = np.stack([x["yhat"].to_numpy(float) - x[f"lo_{lv}"].to_numpy(float) for x in blocks])
                above = np.stack([x[f"hi_{lv}"].to_numpy(float) - x["yhat"].to_numpy(float) for x in blocks])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    b[f"lo_{lv}"] = b["yhat"] - np.nanmean(np.maximum(below, 0), axis=0)
                    b[f"hi_{lv}"] = b["yhat"] + np.nanmean(np.maximum(above, 0), axis=0)
        b.insert(2, "candidate", cand)
        frames.append(b)
    return pd.concat(frames, ignore_index=True)
