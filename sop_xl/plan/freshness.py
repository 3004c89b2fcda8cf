"""No stale outputs: every output table carries a stamp saying which run computed it from which inputs.

The stamp is a named cell on the output's sheet (``Stamp<Sheet>``), one line of text:

    Current · computed 2026-11-30 09:20:05 by balance · inputs Items#1a2b3c4d Demand#5e6f7a8b Settings#...

Each input table's fingerprint hashes its typed values (formula columns left out: they are derived,
and a saved file may not hold their results), so a fingerprint changes exactly when a planner changes
an input. After every run, each output that run did not rewrite is checked against the fingerprints
of the inputs that run read: if one differs, or an output it is computed from is newer or stale,
its stamp starts with ``STALE`` and names what changed. The Dashboard counts the stale stamps.

The family pages (generated sheets, written together by the runs that plan) are stamped as one
output: their stamp is the named cell ``StampFamilyPages`` on the Start sheet, and each page shows it
in its title row by a formula (plan/family_layout.py), so a STALE mark reaches every page at once.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from sop_xl import contract as k
from sop_xl.plan.validation import engine_frame

STALE = "STALE"
SETTINGS_KEY = "Settings"
_STAMP = re.compile(r"computed (?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) by (?P<step>\w+) · inputs ?(?P<inputs>.*)$")



@dataclass(frozen=True)
class Pages:
    """An output that is not a table: generated sheets (the family pages) stamped as one. Its stamp is
    a named cell on the Start sheet (``stamp``), which each page shows in its title row by a formula,
    so marking them stale is one write, as for a table."""
    name: str
    sheet: str  # what messages call it
    stamp: str  # the named cell


FAMILY_PAGES = Pages("FamilyPages", "Family pages", "StampFamilyPages")

_BALANCE_INPUTS = (k.ITEMS, k.ACTUALS, k.DEMAND, k.RESOURCES, k.ROUTING, k.BOM, k.RECEIPTS, k.SUPPLY, k.COSTS)
# Output -> (input tables it is computed from, outputs it is computed from)
DEPENDS: dict[str, tuple[tuple[k.Table, ...], tuple[k.Table, ...]]] = {
    k.FORECAST.name: ((k.ITEMS, k.ACTUALS), ()),
    k.FORECAST_MODELS.name: ((k.ITEMS, k.ACTUALS), ()),
    **{t.name: (_BALANCE_INPUTS, ()) for t in (k.SUPPLY_PLAN, k.UTILIZATION, k.MATERIALS, k.BOTTLENECKS, k.UNMET,
                                               k.BALANCE_COSTS)},
    k.COST_ROLLUP.name: ((k.ITEMS, k.BOM, k.COSTS), ()),
    k.REQUIREMENTS.name: ((k.ITEMS, k.BOM), (k.SUPPLY_PLAN,)),
    k.FINANCIALS.name: ((k.ITEMS, k.BOM, k.COSTS, k.BUDGET), (k.SUPPLY_PLAN,)),
    k.EXCEPTIONS.name: ((k.ITEMS,), (k.SUPPLY_PLAN, k.UTILIZATION, k.UNMET, k.FINANCIALS, k.FORECAST_MODELS)),
    # the family pages: what plan/family_output.py reads for their figures
    FAMILY_PAGES.name: ((k.ITEMS, k.ACTUALS, k.DEMAND, k.BUDGET, k.ROUTING), (k.SUPPLY_PLAN, k.FINANCIALS, k.EXCEPTIONS)),
}
STAMPED = tuple(FAMILY_PAGES if name == FAMILY_PAGES.name else k.TABLES[name] for name in DEPENDS)


def stamp_name(table: k.Table | Pages) -> str:
    """The workbook-level name of the output's stamp cell (a table's: on its own sheet)."""
    return table.stamp if isinstance(table, Pages) else "Stamp" + re.sub(r"\W", "", table.sheet)


def fingerprint(frame: pd.DataFrame, table: k.Table | None = None) -> str:
    """8 hex digits that change when any typed value of the table changes (formula columns excluded)."""
    frame = engine_frame(frame)
    fields = [c.field for c in table.columns if c.formula is None] if table else list(frame.columns)
    norm = pd.DataFrame(index=range(len(frame)))
    for f in fields:
        column = table.column(f) if table else None
        kind = column.kind if column else None
        col = frame[f].reset_index(drop=True) if f in frame.columns else pd.Series([None] * len(frame))
        if column is not None and column.default is not None:  # a blank reads back as its default
            col = col.where(col.notna(), column.default)
        if kind in (k.NUMBER, k.PERCENT, k.INTEGER):
            norm[f] = _significant(pd.to_numeric(col, errors="coerce").to_numpy(dtype=float))
        elif kind == k.DATE:
            norm[f] = pd.to_datetime(col, errors="coerce")
        else:
            norm[f] = col.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
    digest = hashlib.sha1(f"{fields}".encode())
    if len(norm):
        digest.update(pd.util.hash_pandas_object(norm, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:8]


def _significant(x: np.ndarray, digits: int = 12) -> np.ndarray:
    """Numbers to ``digits`` significant digits: a value written to the sheet and read back can differ
    in its last binary digit (the file keeps about 15-17 digits), and that is no change by a planner."""
    finite = np.isfinite(x) & (x != 0)
    mag = np.zeros_like(x)
    mag[finite] = np.floor(np.log10(np.abs(x[finite])))
    scale = 10.0 ** (digits - 1 - mag)
    return np.where(finite, np.round(x * scale) / scale, x)


# Settings no output is computed from: where the archive is, which file New cycle read last.
NOT_PLANNING_SETTINGS = frozenset({"ArchiveUrl", "ActualsFile"})


def settings_fingerprint(settings: dict) -> str:
    planning = ((n, str(v)) for n, v in settings.items() if n not in NOT_PLANNING_SETTINGS)
    return hashlib.sha1(repr(sorted(planning)).encode()).hexdigest()[:8]


def input_fingerprints(ctx) -> dict[str, str]:
    """Fingerprints of the inputs this run read, as the workbook holds them after the run."""
    out = {}
    for name in ctx.frames:
        table = k.TABLES[name]
        if table.role == k.OUTPUT:
            continue
        out[table.sheet] = fingerprint(ctx.results.get(name, ctx.frames[name]), table)
    out[SETTINGS_KEY] = settings_fingerprint(ctx.settings)
    return out


def _format(status: str, when: str, step: str, inputs: dict[str, str]) -> str:
    return f"{status} · computed {when} by {step} · inputs " + " ".join(f"{n}#{h}" for n, h in inputs.items())


def parse(stamp) -> dict | None:
    """{'stale': bool, 'when', 'step', 'inputs': {sheet: fingerprint}} or None for no / a foreign stamp."""
    if not isinstance(stamp, str):
        return None
    m = _STAMP.search(stamp)
    if not m:
        return None
    inputs = dict(part.split("#", 1) for part in m["inputs"].split() if "#" in part)
    return {"stale": stamp.startswith(STALE), "when": m["when"], "step": m["step"], "inputs": inputs}


def stamp_outputs(ctx, steps: list[str], book, now: datetime | None = None, pages: bool = False) -> list[str]:
    """Stamp the outputs this run wrote (``pages``: the family pages too); mark the others stale where
    their inputs changed.

    Returns one line per output found stale in this run (for the run's warnings).
    """
    when = f"{now or datetime.now():%Y-%m-%d %H:%M:%S}"
    current = input_fingerprints(ctx)
    step = steps[-1] if steps else "run"
    written = set(ctx.results) | ({FAMILY_PAGES.name} if pages else set())
    stamps: dict[str, dict | None] = {}
    for table in STAMPED:
        name = stamp_name(table)
        if not book.has_setting(name):
            continue
        if table.name in written:
            inputs = {t.sheet: current[t.sheet] for t in DEPENDS[table.name][0] if t.sheet in current}
            inputs[SETTINGS_KEY] = current[SETTINGS_KEY]
            producer = next((s for s in reversed(steps) if table.name in _produced_by(s)), step)
            text = _format("Current", when, producer, inputs)
            book.write_named(name, text)
            stamps[table.name] = parse(text)
        else:
            stamps[table.name] = parse(book.read_setting(name))
    stale = []
    for table in STAMPED:  # DEPENDS lists producers before their users, so staleness flows downstream
        info = stamps.get(table.name)
        if info is None or table.name in written:
            continue
        changed = [sheet for sheet, h in info["inputs"].items() if sheet in current and current[sheet] != h]
        upstream = [t.sheet for t in DEPENDS[table.name][1]
                    if (stamps.get(t.name) or {}).get("when", "") > info["when"] or (stamps.get(t.name) or {}).get("stale")]
        if not (changed or upstream) or info["stale"]:
            continue
        why = ", ".join([f"{s} changed" for s in changed] + [f"{s} is newer or stale" for s in upstream])
        text = _format(f"{STALE} since {when} ({why}): run {info['step'].replace('_', ' ')} again",
                       info["when"], info["step"], info["inputs"])
        book.write_named(stamp_name(table), text)
        stamps[table.name] = parse(text)
        stale.append(f"{table.sheet} is stale: {why}; run {info['step'].replace('_', ' ')} again")
    return stale


def _produced_by(step: str) -> set[str]:
    return PRODUCES.get(step, set())


PRODUCES = {
    "forecast": {k.FORECAST.name, k.FORECAST_MODELS.name},
    "balance": {k.SUPPLY_PLAN.name, k.UTILIZATION.name, k.MATERIALS.name, k.BOTTLENECKS.name, k.UNMET.name,
                k.BALANCE_COSTS.name, k.REQUIREMENTS.name, k.FINANCIALS.name, k.EXCEPTIONS.name, FAMILY_PAGES.name},
    "cost_rollup": {k.COST_ROLLUP.name, k.REQUIREMENTS.name},
    "financials": {k.FINANCIALS.name, FAMILY_PAGES.name},
    "exceptions": {k.EXCEPTIONS.name, FAMILY_PAGES.name},
}
