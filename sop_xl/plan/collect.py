"""Several planners: merge the overrides, uplifts, reasons and decisions of planners' copies into the master.

A copy is a file copy of the master that one planner edited; its Settings ``Planner`` names that
planner. The merge is three-way; the base of a cell is its value when the copy was taken: the
master's value, unless a collect changed the cell since — the master's Audit rows the copy does not
hold (it is a copy of the master, Audit included) say so, and the earliest one's Old is the base.
A copy's cell equal to its base or to the master is no change (a copy taken before a collected
change does not undo it); a cell that differs from both is that planner's change. A change is accepted when

* the planner owns the row (Items ``Owner`` of the Demand row's item; for an Exceptions row, the
  owner of its Subject item, else the one owner of all its Family's items; a row nobody owns may be
  changed by any planner), and
* no other copy changed the same cell to a different value, and no collect changed the cell since
  the copy was taken.

Everything else is a conflict, listed with the master's value and every copy's value; a conflicting
cell keeps the master's value (nothing is overwritten silently). Every accepted change becomes one
row of the master's Audit table (who, when, table, key, column, old, new, reason, copy).

Only the columns planners own are merged (``MERGED``); rows are matched by the table's keys, and a
row of a copy that the master no longer has (the master was re-run since) is reported, not added.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from sop_xl import contract as k
from sop_xl.plan import pipeline
from sop_xl.plan.book import TableMissing
from sop_xl.plan.context import Context
from sop_xl.plan.runlog import recording
from sop_xl.plan.validation import Problem, ValidationError, missing_table_problem

# Per table: the key fields rows are matched on, the fields planners change, and the field whose
# value explains a change (kept in the Audit row).
MERGED = {
    k.DEMAND.name: (("item", "period"), ("sales_override", "event_uplift", "reason"), "reason"),
    k.EXCEPTIONS.name: (k.EXCEPTIONS.keys, ("owner", "decision", "status"), "decision"),
}


@dataclass
class Proposal:
    planner: str
    copy: str
    value: object


@dataclass
class Conflict:
    table: str
    key: str
    column: str
    master: object
    proposals: list[Proposal]
    why: str

    def __str__(self) -> str:
        values = "; ".join(f"{p.planner} ({p.copy}) {show(p.value)}" for p in self.proposals)
        return f"{self.table} {self.key} {self.column}: master {show(self.master)}; {values} — {self.why}"


@dataclass
class CollectResult:
    audit: pd.DataFrame                 # the Audit rows written (k.AUDIT fields)
    conflicts: list[Conflict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cycle: pd.Timestamp | None = None   # the master's PlanStart

    def summary(self) -> str:
        return (f"{len(self.audit)} change(s) merged, {len(self.conflicts)} conflict(s)"
                + (f"; {'; '.join(self.notes)}" if self.notes else ""))


# ------------------------------------------------------------------------------------------ values
def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT or (isinstance(v, str) and not v.strip())


def same(a, b) -> bool:
    """Cell equality as a planner sees it: blanks are equal, numbers to 9 significant digits, text trimmed."""
    if _blank(a) or _blank(b):
        return _blank(a) and _blank(b)
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)), abs(float(b)))
    return str(a).strip() == str(b).strip()


def show(v) -> str:
    if _blank(v):
        return "(blank)"
    if isinstance(v, (float, np.floating)):
        return format(float(v), ".12g")
    if isinstance(v, (pd.Timestamp, datetime)):
        return f"{v:%Y-%m}"
    return str(v).strip()


def _key_label(values) -> str:
    return " ".join(show(v) for v in values if not _blank(v))


def _norm(name) -> str:
    return "" if _blank(name) else str(name).strip().casefold()


# ------------------------------------------------------------------------------------------ owners
def row_owners(items: pd.DataFrame, table: str, frame: pd.DataFrame) -> pd.Series:
    """The owner (normalised name, "" = nobody) of every row of ``frame``."""
    owner_of = {i: _norm(o) for i, o in zip(items["item"], items["owner"])}
    if table == k.DEMAND.name:
        return frame["item"].map(owner_of).fillna("")
    family_owner = {}
    for fam, owners in items.assign(o=items["item"].map(owner_of)).groupby("family")["o"]:
        distinct = set(owners)
        family_owner[fam] = distinct.pop() if len(distinct) == 1 else ""
    by_subject = frame["subject"].map(owner_of)
    by_family = frame["family"].map(family_owner)
    return by_subject.where(frame["subject"].isin(owner_of.keys()), by_family).fillna("")


# ------------------------------------------------------------------------------------------ reading
def _copy_problem(label: str, p: Problem) -> Problem:
    return Problem(f"{label}: {p.sheet}", p.table, p.row, p.column, p.message, p.fix)


def _read_copy(label: str, book, start: pd.Timestamp) -> tuple[str, dict[str, pd.DataFrame], pd.DataFrame]:
    """The copy's planner, its merged tables and its Audit rows, validated; problems name the copy's file."""
    ctx = Context(book)
    try:
        ctx.load((k.ITEMS, k.DEMAND))
        frames = {k.DEMAND.name: ctx.frame(k.DEMAND), k.EXCEPTIONS.name: ctx.previous(k.EXCEPTIONS)}
        history = ctx.previous(k.AUDIT)
    except ValidationError as exc:
        raise ValidationError([_copy_problem(label, p) for p in exc.problems]) from None
    except TableMissing as exc:
        raise ValidationError([_copy_problem(label, missing_table_problem(exc))]) from None
    planner = str(ctx.settings.get("Planner") or "").strip()
    sheet, row, col = ctx.where.get("Planner", (k.SETTINGS_SHEET, None, None))
    problems = []
    if not planner:
        problems.append(Problem(f"{label}: {sheet}", None, row, "Planner",
                                "names no planner, so its changes cannot be credited to anyone",
                                "Type the planner's name (as in Items Owner) in Settings Planner of the copy"))
    if pd.Timestamp(ctx.settings["PlanStart"]) != start:
        problems.append(Problem(f"{label}: {k.SETTINGS_SHEET}", None, None, "PlanStart",
                                f"the copy plans from {pd.Timestamp(ctx.settings['PlanStart']):%Y-%m}, the master "
                                f"from {start:%Y-%m}: it was taken in another cycle",
                                "Copy the master again and re-enter the changes"))
    if problems:
        raise ValidationError(problems)
    return planner, frames, history


# ------------------------------------------------------------------------------------------ merging
_AUDIT_ID = ("timestamp", "planner", "table", "key", "column", "old", "new")


def _audit_rows(frame: pd.DataFrame) -> list[tuple]:
    return [tuple("" if _blank(v) else str(v).strip() for v in r) for r in frame[list(_AUDIT_ID)].itertuples(
        index=False, name=None)]


def changed_since(master_audit: pd.DataFrame, copy_audit: pd.DataFrame) -> dict[tuple, tuple[str, str]]:
    """Cells a collect changed after the copy was taken: (sheet, key, column header) -> (the cell's value
    then, i.e. the earliest unknown change's Old; who changed it). Audit rows are in time order."""
    known = set(_audit_rows(copy_audit))
    since: dict[tuple, tuple[str, str]] = {}
    for row in _audit_rows(master_audit):
        if row not in known:
            since.setdefault((row[2], row[3], row[4]), (row[5], row[1]))
    return since


def _changes(table: str, master: pd.DataFrame, copy: pd.DataFrame, planner: str, label: str,
             owners: pd.Series, since: dict[tuple, tuple[str, str]]) -> tuple[list[dict], int]:
    """One dict per cell the copy changed, and how many copy rows the master does not have."""
    keys, fields, why = MERGED[table]
    sheet = k.TABLES[table].sheet
    m = master[list(keys) + list(fields)].assign(_owner=owners.to_numpy(), _pos=np.arange(len(master)))
    c = copy[list(keys) + list(fields)].drop_duplicates(list(keys))
    both = m.merge(c, on=list(keys), how="right", suffixes=("", "@copy"), indicator=True)
    unknown = int((both["_merge"] == "right_only").sum())
    both = both[both["_merge"] == "both"]
    out = []
    for row in both.itertuples(index=False, name=None):  # a few thousand rows: readability over speed
        values = dict(zip(both.columns, row))
        key = None
        for f in fields:
            old, new = values[f], values[f + "@copy"]
            if same(old, new):
                continue
            key = key or _key_label(values[x] for x in keys)
            base = since.get((sheet, key, k.TABLES[table].column(f).header))
            if base is not None and (show(new) if not _blank(new) else "") == base[0]:
                continue  # the copy still holds the value from before a collected change: not a change
            out.append({"table": table, "pos": int(values["_pos"]), "key": key,
                        "field": f, "old": old, "new": new, "planner": planner, "copy": label,
                        "owner": values["_owner"], "reason": values[why + "@copy"],
                        "since": None if base is None else base[1]})
    return out, unknown


def merge_changes(candidates: list[dict]) -> tuple[list[dict], list[Conflict]]:
    """Accepted changes (one per cell) and the conflicts, by the rules in the module docstring."""
    accepted, conflicts = [], []
    cells: dict[tuple, list[dict]] = {}
    for ch in candidates:
        cells.setdefault((ch["table"], ch["pos"], ch["field"]), []).append(ch)
    for (table, _pos, fld), changes in cells.items():
        first = changes[0]
        header = k.TABLES[table].column(fld).header
        sheet = k.TABLES[table].sheet
        allowed = [c for c in changes if (not c["owner"] or c["owner"] == _norm(c["planner"])) and not c.get("since")]
        for c in changes:
            if c in allowed:
                continue
            why = (f"{c['planner']} does not own this row (owner {c['owner']})"
                   if c["owner"] and c["owner"] != _norm(c["planner"])
                   else f"{c['since']}'s change was collected after this copy was taken")
            conflicts.append(Conflict(sheet, c["key"], header, c["old"], [Proposal(c["planner"], c["copy"], c["new"])],
                                      why))
        if not allowed:
            continue
        if any(not same(c["new"], allowed[0]["new"]) for c in allowed[1:]):
            conflicts.append(Conflict(sheet, first["key"], header, first["old"],
                                      [Proposal(c["planner"], c["copy"], c["new"]) for c in allowed],
                                      "copies changed it differently"))
            continue
        accepted.append({**allowed[0], "planner": ", ".join(dict.fromkeys(c["planner"] for c in allowed)),
                         "copy": ", ".join(dict.fromkeys(c["copy"] for c in allowed))})
    return accepted, conflicts


def _apply(frame: pd.DataFrame, changes: list[dict]) -> pd.DataFrame:
    frame = frame.copy()
    for ch in changes:
        col = frame.columns.get_loc(ch["field"])
        if frame[ch["field"]].dtype.kind == "f" and _blank(ch["new"]):
            frame.iloc[ch["pos"], col] = np.nan
        else:
            if frame[ch["field"]].dtype.kind == "f":
                frame.iloc[ch["pos"], col] = float(ch["new"])
            else:
                frame[ch["field"]] = frame[ch["field"]].astype(object)
                frame.iloc[ch["pos"], col] = ch["new"]
    return frame


def collect(master, copies: list[tuple[str, object]], progress=None, when: datetime | None = None) -> CollectResult:
    """Merge the copies (label, adapter) into the ``master`` adapter (in memory: the caller saves).

    Raises ValidationError (nothing written) when the master or a copy is invalid, names no planner,
    or belongs to another cycle."""
    when = when or datetime.now()
    with recording(master, "collect") as rec:
        ctx = Context(master, progress)
        ctx.status("Collect: reading the master …")
        ctx.load(k.INPUT_TABLES)
        try:
            history = ctx.previous(k.AUDIT)
            frames = {k.DEMAND.name: ctx.frame(k.DEMAND), k.EXCEPTIONS.name: ctx.previous(k.EXCEPTIONS)}
        except TableMissing as exc:
            raise ValidationError([missing_table_problem(exc)]) from None
        start = pd.Timestamp(ctx.settings["PlanStart"])
        items = ctx.frame(k.ITEMS)
        owners = {t: row_owners(items, t, f) for t, f in frames.items()}
        candidates, notes, problems = [], [], []
        for label, book in copies:
            ctx.status(f"Collect: reading {label} …")
            try:
                planner, theirs, their_history = _read_copy(label, book, start)
            except ValidationError as exc:
                problems += exc.problems
                continue
            since = changed_since(history, their_history)
            for table, frame in theirs.items():
                found, unknown = _changes(table, frames[table], frame, planner, label, owners[table], since)
                candidates += found
                if unknown:
                    notes.append(f"{unknown} {k.TABLES[table].sheet} row(s) of {label} are not in the master "
                                 f"(re-run since the copy was taken): not collected")
        if problems:
            raise ValidationError(problems)
        accepted, conflicts = merge_changes(candidates)
        stamp = when.strftime("%Y-%m-%d %H:%M:%S")
        audit = pd.DataFrame([{
            "timestamp": stamp, "planner": ch["planner"], "table": k.TABLES[ch["table"]].sheet, "key": ch["key"],
            "column": k.TABLES[ch["table"]].column(ch["field"]).header, "old": show(ch["old"]) if not _blank(ch["old"]) else "",
            "new": show(ch["new"]) if not _blank(ch["new"]) else "",
            "reason": show(ch["reason"]) if not _blank(ch["reason"]) else "", "copy": ch["copy"]}
            for ch in accepted], columns=k.AUDIT.fields)
        for table, frame in frames.items():
            mine = [ch for ch in accepted if ch["table"] == table]
            if mine:
                ctx.put(k.TABLES[table], _apply(frame, mine))
        ctx.status("Collect: writing the master …")
        pipeline.write_results(ctx)
        if len(audit):
            master.append_rows(k.AUDIT, pipeline.rows_for(k.AUDIT, audit, 0))
        result = CollectResult(audit, conflicts, notes, start)
        rec.message = result.summary()[:500]
    return result


__all__ = ["collect", "CollectResult", "Conflict", "Proposal", "MERGED", "changed_since", "merge_changes", "row_owners",
           "same"]
