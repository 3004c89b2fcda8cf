"""Coherent families: item forecasts reconciled with their family and total forecasts.

S&OP decides by family; the item plans must add up to the family numbers it decides on. The items'
history is summed per family and in total (``hierarchicalforecast.utils.aggregate``), every series
(items, families, total) is forecast by :func:`sop_xl.engine.forecast.forecast` in one call, and the
forecasts are reconciled by Nixtla's hierarchicalforecast (``HierarchicalReconciliation``):

* ``bottom_up``: the items' own forecasts; families and total are their sums (no information flows
  down, so the items are unchanged - listed for comparison),
* ``ols`` / ``wls_struct``: MinTrace with identity / structural (number of items) weights,
* ``mint_shrink``: MinTrace with the shrunk covariance of the forecast errors. The errors are the
  chosen models' *holdout* errors (``ForecastResult.holdout``: out-of-sample, 1 to h steps ahead),
  not in-sample residuals: the engine's ensembles have no common in-sample fit, and holdout errors
  are what the forecasts will make. Series without a holdout (too short) have no error variance,
  so then ``wls_struct`` is used instead and a warning says so.

Conventions (documented in the README):

* Every item's history is extended to the latest period with zeros (as gaps inside a series are),
  so all series end together and their forecasts cover the same periods.
* Intermittent items join: their flat forecasts are a mean rate, which sums as well as any other.
* Reconciliation moves the point forecast; an item's intervals are moved with it (same widths):
  they remain per-item intervals, not coherent ones.
* Reconciled item forecasts below zero (MinT can give them) are set to 0 for items whose history has
  no negative value, and families and total are re-summed from the items (``aggregates``), so what
  is reported always adds up. The library's own ``nonnegative`` option is not used: it solves a QP
  per period and rounds to float32, which breaks exact coherence.
* Accuracy figures stay those of each item's base model (the holdout is run before reconciling).
* Promotion months (``exclude``) are left out of every level's fit: the family and total series are
  summed from the items' history with those months replaced.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

RECONCILIATION_METHODS = ("none", "bottom_up", "ols", "wls_struct", "mint_shrink")
TOTAL = "Total"
NO_FAMILY = "(no family)"
_SEP = "/"  # aggregate() joins the levels' values with "/"


def _reconciler(method: str):
    from hierarchicalforecast.methods import BottomUp, MinTrace

    return BottomUp() if method == "bottom_up" else MinTrace(method=method)


def structure(history: pd.DataFrame, families: dict[str, str], freq: str = "MS") -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """(Y_df: every series' history, S_df, tags, {bottom id: item}) of items grouped by ``families``
    (item -> family; an item without one goes to ``NO_FAMILY``), each item extended with zeros to the
    latest period."""
    from hierarchicalforecast.utils import aggregate

    h = history[["unique_id", "ds", "y"]].copy()
    h["unique_id"] = h["unique_id"].astype(str)
    h["ds"] = pd.to_datetime(h["ds"])
    h = h.groupby(["unique_id", "ds"], as_index=False)["y"].sum()
    end = h["ds"].max()
    last = h.groupby("unique_id")["ds"].max()
    pads = []
    for uid, d in last[last < end].items():
        more = pd.date_range(d, end, freq=freq)[1:]
        pads.append(pd.DataFrame({"unique_id": uid, "ds": more, "y": 0.0}))
    if pads:
        h = pd.concat([h, *pads], ignore_index=True)
    fam = h["unique_id"].map(lambda u: str(families.get(u) or "").strip() or NO_FAMILY)
    h = h.assign(total=TOTAL, family=fam, item=h["unique_id"]).drop(columns="unique_id")
    spec = [["total"], ["total", "family"], ["total", "family", "item"]]
    Y_df, S_df, tags = aggregate(h, spec)
    Y_df = Y_df.reset_index() if "unique_id" not in Y_df.columns else Y_df
    S_df = S_df.reset_index().rename(columns={"index": "unique_id"}) if "unique_id" not in S_df.columns else S_df
    bottom = {f"{TOTAL}{_SEP}{f}{_SEP}{u}": u for u, f in h[["item", "family"]].drop_duplicates().itertuples(index=False)}
    return Y_df[["unique_id", "ds", "y"]], S_df, tags, bottom


def reconcile(base: pd.DataFrame, S_df: pd.DataFrame, tags: dict, method: str,
              errors: pd.DataFrame | None = None) -> pd.DataFrame:
    """Reconciled point forecasts of every series: ``base`` (unique_id, ds, yhat) -> the same rows
    with ``yhat`` reconciled by ``method``. ``errors`` (unique_id, ds, y, yhat: holdout forecasts)
    is needed by ``mint_shrink`` only."""
    from hierarchicalforecast.core import HierarchicalReconciliation

    Y_hat = base[["unique_id", "ds", "yhat"]].rename(columns={"yhat": "base"})
    Y_df = None
    if method == "mint_shrink":
        # one row per series and holdout period; periods a series was not held out are NaN (the
        # library's masked shrinkage covariance leaves them out)
        e = errors[["unique_id", "ds", "y", "yhat"]].rename(columns={"yhat": "base"})
        grid = pd.MultiIndex.from_product([S_df["unique_id"], sorted(e["ds"].unique())], names=["unique_id", "ds"])
        Y_df = e.set_index(["unique_id", "ds"]).reindex(grid).reset_index()
    rec = HierarchicalReconciliation([_reconciler(method)]).reconcile(Y_hat_df=Y_hat, Y_df=Y_df, S_df=S_df, tags=tags)
    rec = rec.reset_index() if "unique_id" not in rec.columns else rec
    col = [c for c in rec.columns if c.startswith("base/")][0]
    out = base[["unique_id", "ds"]].merge(rec[["unique_id", "ds", col]], on=["unique_id", "ds"], how="left")
    if out[col].isna().any():
        raise ValueError(f"reconciliation ({method}) gave no forecast for some series")
    return out.rename(columns={col: "yhat"})


def forecast_families(history: pd.DataFrame, families: dict[str, str], horizon: int, method: str = "mint_shrink",
                      **kwargs):
    """:func:`sop_xl.engine.forecast.forecast` of the items of ``history``, reconciled with their
    family and total forecasts by ``method`` (see the module docstring). ``kwargs`` go to forecast.

    Returns a ForecastResult of the items (as forecast's), with ``aggregates``: level (total /
    family), unique_id (``Total`` or the family), ds, base (its own forecast) and yhat (the sum of
    the reconciled items). ``method='none'`` is plain forecast()."""
    from sop_xl.engine.forecast import forecast

    if method not in RECONCILIATION_METHODS:
        raise ValueError(f"unknown reconciliation '{method}'; choose one of: {', '.join(RECONCILIATION_METHODS)}")
    if method == "none":
        return forecast(history, horizon, **kwargs)
    Y_df, S_df, tags, bottom = structure(history, families, kwargs.get("freq", "MS"))
    order = list(pd.unique(history["unique_id"].astype(str)))
    if kwargs.get("exclude") is not None and len(kwargs["exclude"]):
        Y_df = _regular_aggregates(history, families, kwargs["exclude"], Y_df, bottom, kwargs.get("freq", "MS"),
                                   int(kwargs.get("season_length", 12)))
        to_bottom = {u: b for b, u in bottom.items()}
        ex = kwargs["exclude"].copy()
        ex["unique_id"] = ex["unique_id"].astype(str).map(to_bottom)
        kwargs["exclude"] = ex.dropna(subset=["unique_id"])
    return reconciled(forecast(Y_df, horizon, **kwargs), Y_df, S_df, tags, bottom, method, order)


def _regular_aggregates(history, families, exclude, Y_df, bottom, freq: str, season_length: int) -> pd.DataFrame:
    """``Y_df`` with the family and total series summed from the items' *regular* history: promotion
    months replaced as forecast() replaces them for an item's fit (:func:`.cleaning.replace_marked`),
    so a promotion is left out of every level's fit. The items' own series stay raw (forecast()
    replaces and lists them itself)."""
    from sop_xl.engine.forecast import _clean, _marks
    from sop_xl.engine.forecast.cleaning import replace_marked

    regular, _ = replace_marked(_clean(history, freq, [], {}), _marks(exclude, freq), season_length)
    Y_reg = structure(regular, families, freq)[0]
    aggregate_rows = ~Y_reg["unique_id"].isin(bottom)
    return pd.concat([Y_df[Y_df["unique_id"].isin(bottom)], Y_reg[aggregate_rows]], ignore_index=True)


def reconciled(res, Y_df: pd.DataFrame, S_df: pd.DataFrame, tags: dict, bottom: dict, method: str,
               order: list[str] | None = None):
    """The items' ForecastResult from ``res`` (forecast() of every series of :func:`structure`)
    reconciled by ``method``; see :func:`forecast_families`."""
    res = copy.copy(res)
    res.warnings = list(res.warnings)
    fc = res.forecasts
    has_neg = Y_df.groupby("unique_id")["y"].min() < 0
    used = method
    if method == "mint_shrink":
        with_err = set(res.holdout["unique_id"]) if res.holdout is not None else set()
        lacking = [u for u in S_df["unique_id"] if u not in with_err]
        if lacking:
            used = "wls_struct"
            res.warnings.append(f"reconciliation: {len(lacking)} series have no holdout errors (history too short, "
                                f"constant or all zero) - wls_struct used instead of mint_shrink")
    try:
        rec = reconcile(fc, S_df, tags, used, res.holdout)
    except Exception as exc:  # noqa: BLE001 - a numerical failure inside the library must not stop the plan:
        # the items keep their own forecasts (bottom-up, always coherent) and the run says why
        res.warnings.append(f"reconciliation ({used}) failed ({type(exc).__name__}: {str(exc)[:120]}); "
                            f"the items' own forecasts are used (bottom_up)")
        used = "bottom_up"
        rec = fc[["unique_id", "ds", "yhat"]]
    delta = rec["yhat"].to_numpy(float) - fc["yhat"].to_numpy(float)
    out = fc.copy()
    bands = [c for c in fc.columns if c.startswith(("lo_", "hi_"))]
    for c in ["yhat", *bands]:
        out[c] = fc[c].to_numpy(float) + delta
    clip = ~out["unique_id"].map(has_neg).fillna(False).to_numpy(bool)
    clipped = clip & (out["yhat"].to_numpy(float) < 0)
    out.loc[clip, ["yhat", *bands]] = out.loc[clip, ["yhat", *bands]].clip(lower=0.0)
    items = out[out["unique_id"].isin(bottom)].copy()
    base_items = fc[fc["unique_id"].isin(bottom)]
    n_clipped = int((clipped & out["unique_id"].isin(bottom).to_numpy()).sum())
    if n_clipped:
        res.warnings.append(f"reconciliation: {n_clipped} negative item-month forecast(s) set to 0")

    # families and total: the sums of the final items (coherent whatever was clipped)
    fam_of = {b: b.split(_SEP)[1] for b in bottom}
    summed = items.assign(family=items["unique_id"].map(fam_of))
    fam = summed.groupby(["family", "ds"], as_index=False)["yhat"].sum().rename(columns={"family": "unique_id"})
    tot = summed.groupby("ds", as_index=False)["yhat"].sum().assign(unique_id=TOTAL)
    agg_base = fc[~fc["unique_id"].isin(bottom)][["unique_id", "ds", "yhat"]].rename(columns={"yhat": "base"})
    agg_base["level"] = np.where(agg_base["unique_id"].eq(TOTAL), "total", "family")
    agg_base["unique_id"] = agg_base["unique_id"].map(lambda u: u.split(_SEP, 1)[1] if _SEP in u else u)
    aggregates = pd.concat([tot.assign(level="total"), fam.assign(level="family")], ignore_index=True)
    aggregates = aggregates.merge(agg_base, on=["level", "unique_id", "ds"], how="left")[
        ["level", "unique_id", "ds", "base", "yhat"]]

    # back to item ids; notes say what reconciliation did to the item
    items["unique_id"] = items["unique_id"].map(bottom)
    base_sum = base_items.groupby("unique_id")["yhat"].sum()
    rec_sum = out[out["unique_id"].isin(bottom)].groupby("unique_id")["yhat"].sum()
    sel = res.selection[res.selection["unique_id"].isin(bottom)].copy()
    change = {}
    for b in bottom:
        bs, rs = float(base_sum.get(b, 0.0)), float(rec_sum.get(b, 0.0))
        change[b] = f"{(rs - bs) / bs:+.1%}" if bs > 0 else f"{rs - bs:+,.0f} units"
    sel["note"] = [f"{n}; reconciled with family {fam_of[u]} and total ({used}): horizon total {change[u]} vs the "
                   f"model's own; intervals moved with the forecast (per item)" for u, n in zip(sel["unique_id"], sel["note"])]
    sel["unique_id"] = sel["unique_id"].map(bottom)
    acc = res.accuracy[res.accuracy["unique_id"].isin(bottom)].copy()
    acc["unique_id"] = acc["unique_id"].map(bottom)
    hold = res.holdout[res.holdout["unique_id"].isin(bottom)].copy() if res.holdout is not None else None
    if hold is not None:
        hold["unique_id"] = hold["unique_id"].map(bottom)
    # the item order of the caller's history
    order = {u: i for i, u in enumerate(order or sorted(bottom.values()))}
    items = items.sort_values(["unique_id", "ds"], key=lambda s: s.map(order) if s.name == "unique_id" else s,
                              kind="stable").reset_index(drop=True)
    sel = sel.sort_values("unique_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    acc = acc.sort_values("unique_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    filled = {bottom[k]: v for k, v in res.filled.items() if k in bottom}
    return type(res)(forecasts=items, selection=sel, accuracy=acc, warnings=res.warnings, filled=filled,
                     holdout=hold, aggregates=aggregates)
