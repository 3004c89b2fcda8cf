"""The decision list of the review: exceptions consolidated per cause, ranked by money, with the
planner's Owner / Decision / Status carried from one run to the next.

One row per cause: a resource over a run of consecutive months, an item with unmet demand (all its
months), an item below safety stock over a run of months, a family below the margin threshold over a
run of months, an item with a biased forecast.
"""
from __future__ import annotations

import pandas as pd

from sop_xl.engine.exceptions import BIAS, LOSS_KINDS, LOW_MARGIN, LOW_STOCK, OVERLOAD, UNMET

COLUMNS = ["rank", "kind", "subject", "family", "period_from", "period_to", "qty", "value_at_risk", "message",
           "owner", "decision", "status"]
KEY = ["kind", "subject", "period_from"]
PLANNER = ["owner", "decision", "status"]  # typed by people; kept across runs
GONE = "(no longer in the plan) "


def _runs(periods: pd.Series) -> pd.Series:
    """A run number per row: consecutive months share one (periods sorted)."""
    p = pd.to_datetime(periods)
    months = p.dt.year * 12 + p.dt.month
    return (months.diff().fillna(1) != 1).cumsum()


def consolidate(exc: pd.DataFrame) -> pd.DataFrame:
    """One row per cause from the per-month exceptions of ``find_exceptions``."""
    rows = []
    for (kind, subject), g in exc.groupby(["kind", "subject"], sort=False):
        g = g.sort_values("period")
        if kind in (UNMET, BIAS):  # per item: one decision covers all its months
            groups = [g]
        else:
            groups = [r for _n, r in g.groupby(_runs(g["period"]).to_numpy(), sort=False)]
        for r in groups:
            rows.append(_row(kind, subject, r))
    out = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank" and c not in PLANNER])
    return rank(out)


def _units(qty: float) -> str:
    return f"{qty:,.0f} unit{'' if round(qty) == 1 else 's'}"


def _limits(notes) -> str:
    """"Filling capacity", "Packing capacity", "RM017 supply" -> "Filling, Packing capacity; RM017 supply"."""
    by_kind: dict[str, list[str]] = {}
    for note in dict.fromkeys(n for n in notes if n):
        name, _, kind = note.rpartition(" ")
        by_kind.setdefault(kind, []).append(name or note)
    return "; ".join(f"{', '.join(names)} {kind}" for kind, names in by_kind.items())


def _row(kind: str, subject: str, r: pd.DataFrame) -> dict:
    # From, To and ValueAtRisk are columns of their own: the message stays one short line. Qty holds
    # units or hours; a margin or a bias is a percentage, said in the message.
    value, qty = float(r["value"].sum()), float("nan")
    if kind == UNMET:
        qty = float(r["qty"].sum())
        msg = f"{_units(qty)} late or lost: {_limits(r['note'])}"
    elif kind == OVERLOAD:
        qty = float(r["qty"].sum())
        msg = f"{qty:,.0f} h overtime over {len(r)} month{'s' if len(r) > 1 else ''}"
    elif kind == LOW_STOCK:
        worst = r.loc[r["qty"].idxmax()]
        qty, value = float(worst["qty"]), float(worst["value"])
        msg = f"up to {_units(qty)} below safety stock"
    elif kind == LOW_MARGIN:
        msg = f"margin down to {float(r['qty'].min()):.1%}"
    else:  # BIAS
        bias = float(r["qty"].iloc[0])
        msg = f"{'over' if bias > 0 else 'under'}-forecast by {abs(bias):.0%} ({r['note'].iloc[0]})"
    return {"kind": kind, "subject": subject, "family": r["family"].iloc[0], "period_from": r["period"].min(),
            "period_to": r["period"].max(), "qty": qty, "value_at_risk": value, "message": msg}


def rank(d: pd.DataFrame) -> pd.DataFrame:
    """Money the plan loses (revenue not served, overtime, margin short) first, then exposure (stock
    below safety stock, a biased forecast): each by value at risk, largest first."""
    d = d.assign(_loss=~d["kind"].isin(LOSS_KINDS))
    d = d.sort_values(["_loss", "value_at_risk", "kind", "subject"], ascending=[True, False, True, True],
                      kind="stable").drop(columns="_loss").reset_index(drop=True)
    d.insert(0, "rank", range(1, len(d) + 1))
    return d


def carry_decisions(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Owner, Decision and Status from the previous list onto the current one.

    Matched on kind, subject and first month; a previous row whose range moved is matched to the
    current row of the same kind and subject whose months overlap it. A previous row with something
    typed in it that matches nothing stays on the list, marked as no longer in the plan, so a decision
    is never lost silently.
    """
    out = current.copy()
    for c in PLANNER:
        out[c] = ""
    if previous is None or not len(previous):
        return out[COLUMNS]
    prev = previous.copy()
    for c in PLANNER:
        prev[c] = prev[c].fillna("").astype(str).str.strip() if c in prev else ""
    prev = prev[(prev[PLANNER] != "").any(axis=1)]
    used = set()
    for i, p in prev.iterrows():
        same = out[(out["kind"] == p["kind"]) & (out["subject"] == p["subject"])]
        exact = same[same["period_from"].eq(p["period_from"])
                     | (same["period_from"].isna() & pd.isna(p["period_from"]))]
        hit = exact if len(exact) else same[(same["period_from"] <= p["period_to"])
                                            & (same["period_to"] >= p["period_from"])]
        hit = hit[~hit.index.isin(used)]
        if len(hit):
            j = hit.index[0]
            used.add(j)
            out.loc[j, PLANNER] = p[PLANNER].to_numpy()
        else:
            gone = {c: p.get(c) for c in COLUMNS if c in p}
            gone["value_at_risk"] = 0.0
            msg = str(p.get("message") or "")
            gone["message"] = msg if msg.startswith(GONE) else GONE + msg
            out = pd.concat([out, pd.DataFrame([gone])], ignore_index=True)
    out["rank"] = range(1, len(out) + 1)
    return out[COLUMNS]
