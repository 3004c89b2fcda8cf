"""Model registry and frame-level fitting for the forecast engine.

Every model is run through ``StatsForecast(models=[...]).forecast(df=...)`` (:func:`predict`) or
``.cross_validation(df=...)`` (:func:`cross_validate`, the holdout) on *all* series of a group at once,
never through a Python loop over items, so the same calls can be handed to statsforecast's
Fugue/Spark/Dask/Ray backends. Per-series preprocessing (seasonal adjustment, temporal aggregation)
lives inside statsforecast-compatible wrapper models (``SeasonallyAdjusted``, ``TemporalAggregate``),
so forecast and holdout run the same models and a holdout window re-estimates it on its own data.

Candidates
----------
A *candidate* is one forecast method the engine can choose. It is either a single statsforecast
model (``AutoETS``, ``CrostonSBA`` ...) or the ``ensemble`` combination of its components.

Ensemble components (chosen on M3 monthly and Tourism monthly, see bench/forecast_m3.py and
bench/forecast_tourism.py; the comparisons are in the README):

* ``DynamicOptimizedTheta`` on the raw series (its own classical multiplicative seasonal adjustment),
* ``ETSDampedLog``: seasonal ETS restricted to damped trends (``AutoETS(damped=True)``) fitted to
  log(y) for series with every value > 0 (``LogTransformed``; the raw series otherwise). It replaced
  ``ETSDamped`` on the raw series: better alone and in the ensemble on M3 monthly (ensemble sMAPE
  13.29 -> 13.23) and Tourism monthly (18.42 -> 18.31, MASE 1.479 -> 1.468) at the same cost,
* ``CESAdjusted``: non-seasonal complex exponential smoothing (``AutoCES``) fitted to the seasonally
  adjusted series (classical decomposition, see ``_one_index``) and re-seasonalised.
* ``CESTemporal`` (temporal aggregation, as in ADIDA/MAPA): seasonal ``AutoCES`` fitted to the series
  summed over blocks of 3 periods (quarters of a monthly series, season L/3), split back into periods
  with each period's average share of its block over the last 3 years. Only when the season length
  is a multiple of 3 and >= 12 and the history has >= 4 seasons; otherwise the ensemble has 3 members.

Combination: the plain mean, or per item weights from the members' holdout errors
(:func:`holdout_weights`, 1 / MAE normalised; the engine's default when an item has a holdout).

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
    log: bool = False  # fitted to log(y) where every value is > 0 (LogTransformed)
    seasonal: bool = True  # uses season_length (short series get the season_length=1 variant)


# Alias of each statsforecast model = the registry key, so output columns are predictable.
SPECS: dict[str, ModelSpec] = {
    "AutoETS": ModelSpec(lambda L: AutoETS(season_length=L, alias="AutoETS")),
    "ETSDamped": ModelSpec(lambda L: AutoETS(season_length=L, damped=True, alias="ETSDamped")),
    "ETSDampedLog": ModelSpec(lambda L: AutoETS(season_length=L, damped=True, alias="ETSDampedLog"), log=True),
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

ENSEMBLE_COMPONENTS: tuple[str, ...] = ("DynamicOptimizedTheta", "ETSDampedLog", "CESAdjusted", "CESTemporal")
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


def _block_shares(q: np.ndarray, per: int) -> np.ndarray:
    """Each period's average share of its block over the last 3 years (blocks with a non-positive
    period are skipped; equal shares where none is left). ``q``: blocks x TEMPORAL_BLOCK."""
    k = q.shape[1]
    pos = np.arange(len(q)) % per
    shares = np.full((per, k), 1.0 / k)
    for j in range(per):
        blk = q[pos == j][-3:]
        blk = blk[(blk > 0).all(axis=1)] if len(blk) else blk
        if len(blk):
            shares[j] = (blk / blk.sum(axis=1, keepdims=True)).mean(axis=0)
    return shares


# ----------------------------------------------------------------------------------------------
# wrapper models: per-series preprocessing inside a statsforecast-compatible model, so that
# StatsForecast.forecast and .cross_validation (and their Dask/Ray/Spark backends) run them like any
# other model, and a holdout window re-estimates the preprocessing on its own training data.
# ----------------------------------------------------------------------------------------------
class LogTransformed:
    """``inner`` fitted to log(y) and its forecast and interval bounds taken back with exp (the
    forecast is then the median of a log-normal: multiplicative trend and season, errors growing with
    the level) - for series with every value > 0; other series get ``inner`` on y itself. If
    ``inner`` fails, Naive on the same scale."""

    uses_exog = False  # read by StatsForecast

    def __init__(self, inner, alias: str):
        self.inner, self.alias = inner, alias

    def __repr__(self) -> str:
        return self.alias

    def new(self):
        return LogTransformed(self.inner.new(), self.alias)

    def forecast(self, y, h, X=None, X_future=None, level=None, fitted=False):
        y = np.asarray(y, float)
        use_log = bool(len(y) and np.all(y > 0))
        z = np.log(y) if use_log else y
        kw = {"level": level} if level else {}
        try:
            res = self.inner.forecast(y=z, h=h, **kw)
        except Exception:  # noqa: BLE001 - the same fallback StatsForecast applies to plain models
            res = Naive().forecast(y=z, h=h, **kw)
        return {key: (np.exp(v) if use_log else v) for key, v in res.items() if key != "fitted"}


class SeasonallyAdjusted:
    """``inner`` (a non-seasonal model) fitted to the seasonally adjusted series (``_one_index``) and
    its forecast and interval bounds re-seasonalised. If ``inner`` fails, Naive on the adjusted series."""

    uses_exog = False  # read by StatsForecast

    def __init__(self, inner, season_length: int, lenient: bool, alias: str):
        self.inner, self.season_length, self.lenient, self.alias = inner, int(season_length), lenient, alias

    def __repr__(self) -> str:
        return self.alias

    def new(self):
        return SeasonallyAdjusted(self.inner.new(), self.season_length, self.lenient, self.alias)

    def forecast(self, y, h, X=None, X_future=None, level=None, fitted=False):
        y = np.asarray(y, float)
        L, n = self.season_length, len(y)
        si, mult = _one_index(y, L, self.lenient)
        past, future = si[np.arange(n) % L], si[(n + np.arange(h)) % L]
        kw = {"level": level} if level else {}
        y_adj = y / past if mult else y - past
        try:
            res = self.inner.forecast(y=y_adj, h=h, **kw)
        except Exception:  # noqa: BLE001 - the same fallback StatsForecast applies to plain models
            res = Naive().forecast(y=y_adj, h=h, **kw)
        return {key: (v * future if mult else v + future) for key, v in res.items() if key != "fitted"}


class TemporalAggregate:
    """``inner`` (seasonal, season ``L / TEMPORAL_BLOCK``) fitted to the series summed over blocks of
    TEMPORAL_BLOCK periods aligned on the last observation; block forecasts are split back into
    periods with ``_block_shares``. Point forecasts only. If ``inner`` fails, Naive on the blocks."""

    uses_exog = False  # read by StatsForecast

    def __init__(self, inner, season_length: int, alias: str):
        self.inner, self.season_length, self.alias = inner, int(season_length), alias

    def __repr__(self) -> str:
        return self.alias

    def new(self):
        return TemporalAggregate(self.inner.new(), self.season_length, self.alias)

    def forecast(self, y, h, X=None, X_future=None, fitted=False):
        k, per = TEMPORAL_BLOCK, self.season_length // TEMPORAL_BLOCK
        y = np.asarray(y, float)
        q = y[len(y) % k:].reshape(-1, k)
        shares = _block_shares(q, per)
        hq = -(-h // k)
        try:
            agg = self.inner.forecast(y=q.sum(axis=1), h=hq)["mean"]
        except Exception:  # noqa: BLE001 - the same fallback StatsForecast applies to plain models
            agg = Naive().forecast(y=q.sum(axis=1), h=hq)["mean"]
        step = np.arange(h)
        b = step // k
        return {"mean": np.asarray(agg, float)[b] * shares[(len(q) + b) % per, step % k]}


class PointOnly:
    """``inner`` without the ``level`` parameter: statsforecast asks a model for intervals only when
    its ``forecast`` accepts ``level`` (core._get_cols), so in a call with levels this model gives
    its point forecast only, exactly as in a call without levels."""

    uses_exog = False  # read by StatsForecast

    def __init__(self, inner):
        self.inner, self.alias = inner, repr(inner)

    def __repr__(self) -> str:
        return self.alias

    def new(self):
        return PointOnly(self.inner.new())

    def forecast(self, y, h, X=None, X_future=None, fitted=False):
        return self.inner.forecast(y=y, h=h, X=X, X_future=X_future, fitted=fitted)


def member_models(candidates: list[str], L: int, adjust_all: bool = False) -> dict[str, object]:
    """The statsforecast model of every member of ``candidates`` (an ensemble's components, or the
    candidate itself), keyed by name = output column. ``L``: season length (1 = non-seasonal
    variants); ``adjust_all``: seasonal models fitted to the seasonally adjusted series instead."""
    use_temporal = L >= 12 and L % TEMPORAL_BLOCK == 0 and not adjust_all
    out: dict[str, object] = {}
    for name in sorted({c for cand in candidates for c in components_of(cand)}):
        spec = SPECS[name]
        if spec.temporal:
            if use_temporal:
                out[name] = TemporalAggregate(spec.factory(L), L, name)
        elif spec.adjusted or (adjust_all and spec.seasonal):
            inner = LogTransformed(spec.factory(1), name) if spec.log else spec.factory(1)
            out[name] = SeasonallyAdjusted(inner, L, adjust_all, name)
        elif spec.log:
            out[name] = LogTransformed(spec.factory(L if spec.seasonal else 1), name)
        else:
            out[name] = spec.factory(L if spec.seasonal else 1)
    return out


def candidate_point(wide: pd.DataFrame, candidate: str, members, weights: pd.DataFrame | None = None) -> np.ndarray:
    """A candidate's point forecast from its members' columns of ``wide``. The ensemble: their mean,
    or with ``weights`` (rows = unique_id, columns = members, rows summing to 1) each item's
    weighted sum (items without a row: the mean)."""
    comps = [c for c in components_of(candidate) if c in members]
    X = np.stack([wide[c].to_numpy(float) for c in comps], axis=1)
    if weights is None or len(comps) == 1:
        return X.mean(axis=1)
    # each row's item's weights (a lookup, not a merge: ~1 ms less per call); items without: NaN
    W = weights.reindex(columns=comps).reindex(wide["unique_id"].to_numpy()).to_numpy(float)
    missing = ~np.isfinite(W).all(axis=1)
    W[missing] = 1.0 / len(comps)
    W = W / W.sum(axis=1, keepdims=True)
    return (W * X).sum(axis=1)


def holdout_weights(cv: pd.DataFrame, candidate: str = "ensemble") -> pd.DataFrame:
    """Per item, each ensemble member's combination weight from its holdout errors: proportional to
    1 / MAE over the item's windows (Bates-Granger style inverse-error weights, no optimisation, so
    two short windows cannot overfit much). ``cv``: :func:`cross_validate` output with the members'
    columns. Rows = unique_id, columns = members; empty when the members are not in ``cv``."""
    comps = [c for c in components_of(candidate) if c in cv.columns]
    if len(comps) < 2 or cv.empty:
        return pd.DataFrame(columns=comps)
    # numpy, the same operations as the pandas they replace (~2 ms a call); the per-item mean stays
    # pandas' groupby (its compensated summation), the row means/sums skip NaN as pandas' do
    err = np.abs(cv[comps].to_numpy(float) - cv["y"].to_numpy(float)[:, None])
    mae = pd.DataFrame(err, columns=comps).groupby(cv["unique_id"].to_numpy()).mean()
    M = mae.to_numpy(float)
    ok = ~np.isnan(M)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(ok, M, 0.0).sum(axis=1) / ok.sum(axis=1)
        inv = 1.0 / np.maximum(M, 1e-9 * np.where(scale > 0, scale, 1.0)[:, None])
        total = np.where(np.isnan(inv), 0.0, inv).sum(axis=1)
        return pd.DataFrame(inv / total[:, None], index=mae.index, columns=mae.columns)


def _statsforecast(models: list, freq: str, n_jobs: int) -> StatsForecast:
    return StatsForecast(models=models, freq=freq, n_jobs=n_jobs, fallback_model=Naive())


# ----------------------------------------------------------------------------------------------
# frame-level fit/predict and cross-validation
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


def unit_scale(df: pd.DataFrame) -> pd.Series:
    """Each series' mean |y| (1 for an all-zero series), by unique_id.

    The models are fitted to every series divided by this (and their forecasts multiplied back), so
    a forecast does not depend on the units the quantities are in: several statsforecast models are
    not scale-equivariant (the admissible ETS forms depend on the values' signs and size, the
    optimisers start from scale-dependent points), and on 60 M3 series, quantities given in
    thousands changed 12 forecasts by more than 1 % (one by 41 %). On the log scale (ETSDampedLog)
    this puts the series around 0, where ETS keeps to additive forms: log-additive = multiplicative."""
    s = df["y"].abs().groupby(df["unique_id"].to_numpy(), sort=False).mean()
    return s.where(s > 0, 1.0)


def _in_units(df: pd.DataFrame, scale: pd.Series) -> pd.DataFrame:
    return df.assign(y=df["y"].to_numpy(float) / df["unique_id"].map(scale).to_numpy(float))


def _from_units(frame: pd.DataFrame, scale: pd.Series, columns) -> pd.DataFrame:
    s = frame["unique_id"].map(scale).to_numpy(float)
    columns = set(columns)
    # a new frame from the columns (same products; a copy and column-wise assignment cost ~1 ms)
    return pd.DataFrame({c: frame[c].to_numpy(float) * s if c in columns else frame[c] for c in frame.columns},
                        index=frame.index)


def _frame(res: pd.DataFrame) -> pd.DataFrame:
    res = res.reset_index() if "unique_id" not in res.columns else res
    if is_sorted(res):  # statsforecast's usual output; a stable sort would not move a row
        return res.reset_index(drop=True)
    return res.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def is_sorted(frame: pd.DataFrame, order=None) -> bool:
    """Whether ``frame`` is sorted by (unique_id, ds) - unique_id in ``order`` (a dict id -> rank)
    or by value: a stable sort would leave it as it is, so it can be skipped (~1 ms per sort)."""
    ids = frame["unique_id"].to_numpy()
    if order is not None:
        ids = np.array([order[u] for u in ids]) if len(ids) else ids
    ds = frame["ds"].to_numpy()
    if len(ids) < 2:
        return True
    same = ids[1:] == ids[:-1]
    try:
        up = ids[1:] > ids[:-1]
    except TypeError:  # mixed types: let pandas decide
        return False
    return bool(np.all(up | (same & (ds[1:] >= ds[:-1]))))


def predict(df: pd.DataFrame, h: int, candidates: list[str], L: int, freq: str, levels, n_jobs: int = 1,
            adjust_all: bool = False, weights: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fit the candidates on all series of ``df`` at once and forecast ``h`` steps.

    Returns long format: unique_id, ds, candidate, yhat, lo_<lv>, hi_<lv>.
    ``L`` is the season length to use (1 = non-seasonal variants). ``adjust_all``: every model is
    fitted (non-seasonal variant) to the seasonally adjusted series, with the lenient seasonality
    rule; used for 2-4 seasons of history, where models' own seasonal fitting is unreliable.
    ``weights``: the ensemble's per-item member weights (:func:`holdout_weights`); None = the mean.
    """
    members = member_models(candidates, L, adjust_all)
    levels = list(levels)
    # inside an ensemble, components with slow intervals give point forecasts only
    ens_only = {c for c in ENSEMBLE_COMPONENTS if not SPECS[c].cheap_pi} - set(candidates)
    # One StatsForecast call for all members (each call costs ~2-4 ms of frame handling even for one
    # series): the members that must not compute intervals - approximate-interval ones and point-only
    # ensemble members - are wrapped in PointOnly, which statsforecast calls without ``level``.
    point_only = [n for n in members if levels and (not SPECS[n].native_pi or n in ens_only)]
    models = [PointOnly(m) if n in point_only else m for n, m in members.items()]
    scale = unit_scale(df)
    df = _in_units(df, scale)
    wide = _frame(_statsforecast(models, freq, n_jobs).forecast(df=df, h=h, level=levels or None))
    for n in point_only:
        if not SPECS[n].native_pi:
            wide = _approx_intervals(wide, df, n, levels, max(L, 1))
    wide = _from_units(wide, scale, [c for c in wide.columns if c not in ("unique_id", "ds")])

    frames = []
    for cand in candidates:
        comps = [c for c in components_of(cand) if c in members]
        b = wide[["unique_id", "ds"]].copy()
        b["yhat"] = candidate_point(wide, cand, members, weights)
        for lv in levels:
            lo = [f"{c}-lo-{lv}" for c in comps]
            hi = [f"{c}-hi-{lv}" for c in comps]
            has = [a in wide.columns for a in lo]
            if len(comps) == 1:
                b[f"lo_{lv}"] = wide[lo[0]].to_numpy(float) if has[0] else np.nan
                b[f"hi_{lv}"] = wide[hi[0]].to_numpy(float) if has[0] else np.nan
                continue
            # ensemble: yhat -/+ the mean half-width of the members that have intervals
            below = np.stack([wide[c].to_numpy(float) - wide[a].to_numpy(float) if ok else np.full(len(wide), np.nan)
                              for c, a, ok in zip(comps, lo, has)])
            above = np.stack([wide[z].to_numpy(float) - wide[c].to_numpy(float) if ok else np.full(len(wide), np.nan)
                              for c, z, ok in zip(comps, hi, has)])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                b[f"lo_{lv}"] = b["yhat"] - np.nanmean(np.maximum(below, 0), axis=0)
                b[f"hi_{lv}"] = b["yhat"] + np.nanmean(np.maximum(above, 0), axis=0)
        b.insert(2, "candidate", cand)
        frames.append(b)
    return pd.concat(frames, ignore_index=True)


def cross_validate(df: pd.DataFrame, h: int, n_windows: int, candidates: list[str], L: int, freq: str,
                   n_jobs: int = 1, adjust_all: bool = False) -> pd.DataFrame:
    """Rolling-origin holdout of the candidates: ``StatsForecast.cross_validation`` with ``n_windows``
    origins ``h`` periods apart, each forecasting ``h`` steps (refit per window), on all series of
    ``df`` at once - the same models as :func:`predict`, points only.

    Returns wide format: unique_id, ds, cutoff, y, one column per candidate (an ensemble from its
    members' columns: their plain mean) and one per member. Every series needs more than ``h * n_windows`` observations."""
    members = member_models(candidates, L, adjust_all)
    scale = unit_scale(df)
    cv = _statsforecast(list(members.values()), freq, n_jobs).cross_validation(
        df=_in_units(df, scale), h=h, n_windows=n_windows, step_size=h)
    cv = cv.reset_index() if "unique_id" not in cv.columns else cv
    cv = _from_units(cv, scale, ["y", *members])
    out = cv[["unique_id", "ds", "cutoff", "y"]].copy()
    for cand in candidates:
        out[cand] = candidate_point(cv, cand, members)
    for name in members:  # the members' own forecasts too (combination weights)
        if name not in out.columns:
            out[name] = cv[name].to_numpy(float)
    return out
