"""New items and phase-outs: the product-review rows of S&OP applied to the statistical forecast.

Input (one row per item that has any of them; blanks = NaN/None):
``unique_id, launch_date, like_item, launch_volume, phase_out_date``.

* **New item** (a ``like_item`` and fewer than ``own_history`` observations of its own, or none):
  the like-item's forecast of the same months (its level, trend and season) times a scale, 0 before
  the launch month. The scale is ``launch_volume`` / the like-item's mean forecast over the first
  ``SCALE_MONTHS`` months from the launch (or from the first forecast month when the launch is
  earlier), i.e. LaunchVolume is the expected mean monthly demand of the first year; blank = 1 (as
  much as the like-item). Intervals are scaled alike, and so is the forecast error σ (accuracy
  ``rmse``, ForecastModels' ErrorSD: the safety stock's input); the other accuracy figures are blank.
  Model ``like:X``. A like-item may itself be new
  (resolved in order); a cycle or a like-item without a forecast is an error.
* **Launch without a like-item**: ``launch_volume`` from the launch month on (model ``launch``),
  or, if the item has history, its own forecast with 0 before the launch.
* **Phase-out**: forecast, intervals included, 0 from the month of ``phase_out_date`` on; the
  ForecastModels model is ``phase-out`` (the note names the model used before), the Forecast rows
  from that month say ``phase-out``.

Applied after reconciliation (:mod:`.hierarchy`): these are planners' decisions on single items, and
families are the sums of their items.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SCALE_MONTHS = 12
OWN_HISTORY = 12  # a new item with this many observations of its own is forecast from them
FIELDS = ("unique_id", "launch_date", "like_item", "launch_volume", "phase_out_date")


class LifecycleError(ValueError):
    """A lifecycle row that cannot be applied; ``item`` names the Items row."""

    def __init__(self, item: str, column: str, message: str):
        super().__init__(message)
        self.item, self.column = item, column


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip()) or v is pd.NaT


def _month(v, freq: str) -> pd.Timestamp:
    d = pd.Timestamp(v)
    off = pd.tseries.frequencies.to_offset(freq)
    return d if off.is_on_offset(d) else off.rollback(d)


def apply_lifecycle(result, plan: pd.DataFrame, freq: str = "MS", own_history: int = OWN_HISTORY):
    """``result`` (a ForecastResult) with the new items and phase-outs of ``plan`` applied."""
    missing = set(FIELDS) - set(plan.columns)
    if missing:
        raise ValueError(f"lifecycle plan is missing column(s): {', '.join(sorted(missing))}")
    rows = {str(r.unique_id): r for r in plan.itertuples(index=False)}
    fc = result.forecasts.copy()
    sel = result.selection.set_index("unique_id")
    acc = result.accuracy.set_index("unique_id")
    values = ["yhat"] + [c for c in fc.columns if c.startswith(("lo_", "hi_"))]
    n_obs = sel["n_obs"] if "n_obs" in sel.columns else pd.Series(dtype=int)

    def is_new(u: str, r) -> bool:
        return not _blank(r.like_item) and int(n_obs.get(u, 0) or 0) < own_history

    for u, r in rows.items():  # a mistake whether or not the item is new yet
        if not _blank(r.like_item) and str(r.like_item).strip() == u:
            raise LifecycleError(u, "like_item", f"item {u} is its own LikeItem")
    new_rows: dict[str, dict] = {}
    done: set[str] = set()

    def resolve(u: str, path: tuple[str, ...] = ()) -> None:
        """Make item u's launch forecast (its like-item's first, when that is new too)."""
        if u in done:
            return
        if u in path:
            raise LifecycleError(u, "like_item", f"item {u}: LikeItem chain loops ({' → '.join(path + (u,))})")
        r = rows[u]
        like = str(r.like_item).strip()
        if like in rows and is_new(like, rows[like]):
            resolve(like, path + (u,))
        base = launched[like] if like in launched else fc[fc["unique_id"] == like]
        if base.empty:
            raise LifecycleError(u, "like_item", f"item {u}: its LikeItem {like} has no forecast (no sales history)")
        start = base["ds"].min()
        launch = start if _blank(r.launch_date) else _month(r.launch_date, freq)
        window = base[base["ds"] >= max(launch, start)].head(SCALE_MONTHS)
        ref = float(window["yhat"].mean()) if len(window) else float("nan")
        if _blank(r.launch_volume):
            scale, why = 1.0, f"{like}'s forecast (no LaunchVolume: same volume)"
        elif ref > 0:
            scale = float(r.launch_volume) / ref
            why = (f"{like}'s forecast × {scale:.3g} (LaunchVolume {float(r.launch_volume):,.0f} / {like}'s mean "
                   f"{ref:,.0f} over the first {len(window)} months)")
        else:
            raise LifecycleError(u, "launch_volume", f"item {u}: its LikeItem {like} has no forecast volume after the "
                                                     "launch to scale to LaunchVolume")
        mine = base.copy()
        mine["unique_id"] = u
        before = (mine["ds"] < launch).to_numpy()
        mine[values] = mine[values].to_numpy(float) * np.where(before, 0.0, scale)[:, None]
        mine["model"] = f"like:{like}"
        k = int(n_obs.get(u, 0) or 0)
        note = (f"new item ({k} month{'s' if k != 1 else ''} of history): {why}; 0 before the launch {launch:%Y-%m}"
                if launch > start else f"new item ({k} months of history): {why}")
        # its forecast error: the like-item's, scaled (no history of its own to measure it on), so a
        # launch gets a safety stock from the service level like any other item
        like_sd = acc["rmse"].get(like, np.nan) if "rmse" in acc.columns else np.nan
        if like in new_sd:
            like_sd = new_sd[like]
        if np.isfinite(like_sd):
            new_sd[u] = float(like_sd) * scale
            note += f"; ErrorSD = {like}'s × {scale:.3g}"
        new_rows[u] = {"frame": mine, "model": f"like:{like}", "note": note}
        launched[u] = mine
        done.add(u)

    launched: dict[str, pd.DataFrame] = {}
    new_sd: dict[str, float] = {}
    for u, r in rows.items():
        if is_new(u, r):
            resolve(u)
    fc = pd.concat([fc[~fc["unique_id"].isin(launched)], *launched.values()], ignore_index=True)

    grid = fc.drop_duplicates("ds")["ds"].sort_values()
    for u, r in rows.items():
        if u in new_rows or _blank(r.launch_date):
            continue
        launch = _month(r.launch_date, freq)
        own = fc["unique_id"] == u
        if own.any():  # its own forecast, 0 before the launch
            before = own & (fc["ds"] < launch)
            fc.loc[before, values] = 0.0
            if before.any():
                new_rows[u] = {"model": None, "note": f"0 before the launch {launch:%Y-%m}"}
        elif not _blank(r.launch_volume):
            vol = float(r.launch_volume)
            f = pd.DataFrame({"unique_id": u, "ds": grid.to_numpy(), "model": "launch"})
            for c in values:
                f[c] = np.where(f["ds"] >= launch, vol, 0.0)
            fc = pd.concat([fc, f], ignore_index=True)
            new_rows[u] = {"model": "launch", "note": f"new item without a LikeItem: LaunchVolume {vol:,.0f} a month "
                                                      f"from the launch {launch:%Y-%m}"}

    phased: dict[str, str] = {}
    for u, r in rows.items():
        if _blank(r.phase_out_date):
            continue
        end = _month(r.phase_out_date, freq)
        after = (fc["unique_id"] == u) & (fc["ds"] >= end)
        fc.loc[after, values] = 0.0
        fc.loc[after, "model"] = "phase-out"
        phased[u] = f"phase-out: 0 from {end:%Y-%m}"

    # inputs that had no effect are said, not dropped silently
    warnings = list(result.warnings)
    for u, r in rows.items():
        if not _blank(r.like_item) and u not in launched and u in sel.index:
            new_rows.setdefault(u, {"model": None, "note": ""})
            extra = (f"LikeItem {str(r.like_item).strip()} not used: {int(n_obs.get(u, 0) or 0)} months of its own "
                     f"history (from {own_history} on an item is forecast from its own)")
            new_rows[u]["note"] = "; ".join(filter(None, (new_rows[u]["note"], extra)))
        if (not _blank(r.launch_volume) and _blank(r.like_item) and _blank(r.launch_date)):
            warnings.append(f"item {u}: LaunchVolume ignored (it needs a LaunchDate or a LikeItem)")

    # ForecastModels rows
    for u, info in new_rows.items():
        if u not in sel.index:
            sel.loc[u, ["demand_class", "n_obs", "cleaned"]] = ["new", 0, ""]
            sel.loc[u, "note"] = info["note"]
        else:
            sel.loc[u, "note"] = (info["note"] if info["model"] else f"{sel.at[u, 'note']}; {info['note']}")
        if info["model"]:
            sel.loc[u, "model"] = info["model"]
            acc.loc[u, [c for c in acc.columns if c != "model"]] = np.nan
            acc.loc[u, "model"] = info["model"]
            if u in new_sd and "rmse" in acc.columns:
                acc.loc[u, "rmse"] = new_sd[u]
    for u, note in phased.items():
        if u in sel.index:
            sel.loc[u, "note"] = f"{note}; before: {sel.at[u, 'model']}: {sel.at[u, 'note']}"
            sel.loc[u, "model"] = "phase-out"
    sel["n_obs"] = sel["n_obs"].fillna(0).astype(int)
    order = list(result.selection["unique_id"]) + [u for u in sel.index if u not in set(result.selection["unique_id"])]
    rank = {u: i for i, u in enumerate(order)}
    fc = fc.sort_values(["unique_id", "ds"], key=lambda s: s.map(rank) if s.name == "unique_id" else s,
                        kind="stable").reset_index(drop=True)
    out = type(result)(**{**result.__dict__, "warnings": warnings})
    out.forecasts = fc
    out.selection = sel.reindex(order).rename_axis("unique_id").reset_index()
    out.accuracy = acc.reindex(order).rename_axis("unique_id").reset_index()
    return out
