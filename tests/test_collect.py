"""Several planners: `sop-xl collect MASTER COPY…` on the demo company (owners: Tents and Backpacks
anna, SleepingBags ben, Stoves nobody)."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl.archive import Archive, schema
from sop_xl.cli import main
from sop_xl.plan.collect import merge_changes, same


def _sheet(path, table):
    frame = pd.read_excel(path, sheet_name=table.sheet, header=table.header_row - 1)
    return frame.rename(columns={c.header: c.field for c in table.columns})


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def master(demo_workbook, tmp_path):
    path = tmp_path / "master.xlsm"
    path.write_bytes(demo_workbook.read_bytes())
    return path


def _copy(master, tmp_path, name, planner, demand=(), exceptions=()):
    """A planner's copy: Settings Planner set, Demand cells ``(item, month, header, value)`` and
    Exceptions cells ``(row index, header, value)`` typed, as a planner would in Excel."""
    path = tmp_path / f"{name}.xlsm"
    wb = load_workbook(master, keep_vba=True)
    sheet, ref = next(wb.defined_names["Planner"].destinations)
    wb[sheet][ref.replace("$", "")].value = planner
    for table, cells in ((k.DEMAND, demand), (k.EXCEPTIONS, exceptions)):
        ws = wb[table.sheet]
        col = {ws.cell(table.header_row, c).value: c for c in range(1, ws.max_column + 1)}
        rows = {}
        for r in range(table.header_row + 1, ws.max_row + 1):
            if table is k.DEMAND:
                p = ws.cell(r, col["Period"]).value
                rows[(ws.cell(r, col["Item"]).value, f"{p:%Y-%m}" if p else None)] = r
        for cell in cells:
            if table is k.DEMAND:
                item, month, header, value = cell
                ws.cell(rows[(item, month)], col[header]).value = value
            else:
                index, header, value = cell
                ws.cell(table.header_row + 1 + index, col[header]).value = value
    wb.save(path)
    return path


def test_two_planners_with_one_conflict(master, tmp_path, capsys):
    """anna changes Tents and Backpacks and a Stoves (unowned) row; ben changes SleepingBags and the
    same Stoves cell differently (the conflict), and also tries a Tents override (not his: a conflict).
    Result: the master holds every accepted change, the two conflicting cells keep the master's value,
    the Audit table and the archive hold one row per accepted change."""
    db = f"sqlite:///{tmp_path / 'a.sqlite'}"
    before = _sheet(master, k.DEMAND).assign(period=lambda f: pd.to_datetime(f["period"]).dt.strftime("%Y-%m"))
    # A blank EventUplift reads as 0 (its default): the rewritten master may show it as 0.
    base = before.assign(event_uplift=before["event_uplift"].fillna(0.0)).set_index(["item", "period"])
    exc = _sheet(master, k.EXCEPTIONS)
    hers = int(exc.index[exc["family"] == "Backpacks"][0])           # an unmet-demand row of anna's family
    nobodys = int(exc.index[exc["kind"] == "capacity overload"][0])  # a resource: anyone may decide
    anna = _copy(master, tmp_path, "anna", "anna",
                 demand=[("TE01", "2026-03", "SalesOverride", 150.0), ("TE01", "2026-03", "Reason", "trade fair order"),
                         ("BA02", "2026-05", "EventUplift", 40.0),
                         ("ST01", "2026-02", "SalesOverride", 77.0)],          # Stoves: nobody's
                 exceptions=[(hers, "Decision", "expedite from stock"), (hers, "Status", "decided")])
    ben = _copy(master, tmp_path, "ben", "ben",
                demand=[("SL01", "2026-04", "SalesOverride", 310.0), ("SL01", "2026-04", "Reason", "retailer promo"),
                        ("ST01", "2026-02", "SalesOverride", 88.0),           # differs from anna: conflict
                        ("TE02", "2026-06", "EventUplift", 25.0)],           # anna's item: conflict
                exceptions=[(nobodys, "Owner", "ben"), (nobodys, "Decision", "add a Saturday shift")])
    anna_bytes, ben_bytes = _digest(anna), _digest(ben)

    assert main(["collect", str(master), str(anna), str(ben), "--db", db, "--quiet"]) == 2  # conflicts: exit 2
    out, err = capsys.readouterr()
    assert _digest(anna) == anna_bytes and _digest(ben) == ben_bytes  # copies only read

    # The conflict list: both values of each conflicting cell.
    assert "2 conflict(s)" in err
    line = next(x for x in err.splitlines() if "ST01 2026-02 SalesOverride" in x)
    assert "anna (anna.xlsm) 77" in line and "ben (ben.xlsm) 88" in line and "changed it differently" in line
    master_st01 = base.loc[("ST01", "2026-02"), "sales_override"]
    assert f"master {'(blank)' if pd.isna(master_st01) else format(master_st01, '.12g')}" in line
    line = next(x for x in err.splitlines() if "TE02 2026-06 EventUplift" in x)
    assert "ben (ben.xlsm) 25" in line and "does not own" in line and "anna" in line

    # The merged master.
    after = _sheet(master, k.DEMAND).assign(period=lambda f: pd.to_datetime(f["period"]).dt.strftime("%Y-%m"))
    merged = after.assign(event_uplift=after["event_uplift"].fillna(0.0)).set_index(["item", "period"])
    assert merged.loc[("TE01", "2026-03"), "sales_override"] == 150.0
    assert merged.loc[("TE01", "2026-03"), "reason"] == "trade fair order"
    assert merged.loc[("BA02", "2026-05"), "event_uplift"] == 40.0
    assert merged.loc[("SL01", "2026-04"), "sales_override"] == 310.0
    assert same(merged.loc[("ST01", "2026-02"), "sales_override"], master_st01)  # conflict: untouched
    assert same(merged.loc[("TE02", "2026-06"), "event_uplift"], base.loc[("TE02", "2026-06"), "event_uplift"])
    changed = {("TE01", "2026-03"), ("BA02", "2026-05"), ("SL01", "2026-04")}
    rest = [i for i in base.index if i not in changed]
    pd.testing.assert_frame_equal(merged.loc[rest, ["stat_forecast", "sales_override", "event_uplift"]],
                                  base.loc[rest, ["stat_forecast", "sales_override", "event_uplift"]], check_dtype=False)
    exc_after = _sheet(master, k.EXCEPTIONS)
    assert exc_after.loc[hers, "decision"] == "expedite from stock" and exc_after.loc[hers, "status"] == "decided"
    assert exc_after.loc[nobodys, "decision"] == "add a Saturday shift" and exc_after.loc[nobodys, "owner"] == "ben"
    kept = ["owner", "decision", "status"]
    pd.testing.assert_frame_equal(exc_after.drop(index=[hers, nobodys]), exc.drop(index=[hers, nobodys]), check_dtype=False)
    pd.testing.assert_frame_equal(exc_after.drop(columns=kept), exc.drop(columns=kept))

    # The audit rows, in the master and in the archive.
    audit = _sheet(master, k.AUDIT)
    expect = {("anna", "Demand", "TE01 2026-03", "SalesOverride", "150"),
              ("anna", "Demand", "TE01 2026-03", "Reason", "trade fair order"),
              ("anna", "Demand", "BA02 2026-05", "EventUplift", "40"),
              ("ben", "Demand", "SL01 2026-04", "SalesOverride", "310"),
              ("ben", "Demand", "SL01 2026-04", "Reason", "retailer promo"),
              ("anna", "Exceptions", None, "Decision", "expedite from stock"),
              ("anna", "Exceptions", None, "Status", "decided"),
              ("ben", "Exceptions", None, "Owner", "ben"),
              ("ben", "Exceptions", None, "Decision", "add a Saturday shift")}
    got = {(r.planner, r.table, r.key if r.table == "Demand" else None, r.column, str(r.new)) for r in audit.itertuples()}
    assert got == expect
    te01 = audit[(audit["key"] == "TE01 2026-03") & (audit["column"] == "SalesOverride")].iloc[0]
    assert te01["reason"] == "trade fair order" and te01["copy"] == "anna.xlsm"
    old = base.loc[("TE01", "2026-03"), "sales_override"]
    assert (pd.isna(te01["old"]) and pd.isna(old)) or float(te01["old"]) == pytest.approx(old)
    stored = Archive(db).audit()
    assert len(stored) == len(audit) and set(stored["planner"]) == {"anna", "ben"}
    assert (stored["cycle"] == pd.Timestamp("2026-01-01")).all() and set(stored["workbook"]) == {"master.xlsm"}
    assert set(zip(stored["row_key"], stored["column_name"], stored["new_value"])) == \
        set(zip(audit["key"].astype(str), audit["column"], audit["new"].astype(str)))

    # Collecting the same copies again: the accepted changes are now the master's values (no change),
    # the conflicts are still conflicts; nothing is audited twice.
    assert main(["collect", str(master), str(anna), str(ben), "--db", db, "--quiet"]) == 2
    assert "0 change(s) merged, 2 conflict(s)" in capsys.readouterr().out
    assert len(_sheet(master, k.AUDIT)) == len(audit) and len(Archive(db).audit()) == len(audit)
    assert main(["validate", str(master)]) == 0


def test_a_copy_without_a_planner_or_from_another_cycle_is_refused(master, tmp_path, capsys):
    nobody = _copy(master, tmp_path, "nobody", None, demand=[("TE01", "2026-03", "SalesOverride", 1.0)])
    before = _digest(master)
    db = tmp_path / "a.sqlite"
    assert main(["collect", str(master), str(nobody), "--db", f"sqlite:///{db}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nobody.xlsm: Settings" in err and "Planner" in err and "names no planner" in err
    assert _digest(master) == before and not db.exists()

    wb = load_workbook(nobody, keep_vba=True)
    sheet, ref = next(wb.defined_names["Planner"].destinations)
    wb[sheet][ref.replace("$", "")].value = "anna"
    sheet, ref = next(wb.defined_names["PlanStart"].destinations)
    wb[sheet][ref.replace("$", "")].value = pd.Timestamp("2026-02-01").to_pydatetime()
    wb.save(nobody)
    assert main(["collect", str(master), str(nobody), "--db", f"sqlite:///{db}", "--quiet"]) == 2
    assert "taken in another cycle" in capsys.readouterr().err
    assert _digest(master) == before
    assert main(["collect", str(master), str(master), "--quiet"]) == 2
    assert "is the master itself" in capsys.readouterr().err


def test_merge_rules_without_a_workbook():
    """The rules on plain change records: owner-only, same new value from two copies is one change,
    different values a conflict, blank equals blank."""
    def ch(planner, new, owner="", pos=0, fld="sales_override"):
        return {"table": k.DEMAND.name, "pos": pos, "key": "A 2026-01", "field": fld, "old": np.nan, "new": new,
                "planner": planner, "copy": f"{planner}.xlsm", "owner": owner, "reason": ""}
    accepted, conflicts = merge_changes([ch("anna", 5.0), ch("ben", 5.0 + 1e-12)])
    assert len(accepted) == 1 and accepted[0]["planner"] == "anna, ben" and not conflicts
    accepted, conflicts = merge_changes([ch("anna", 5.0, owner="anna"), ch("ben", 6.0, owner="anna")])
    assert [a["planner"] for a in accepted] == ["anna"] and len(conflicts) == 1 and "does not own" in conflicts[0].why
    accepted, conflicts = merge_changes([ch("Anna ", 5.0, owner="anna")])  # names compared trimmed, any case
    assert len(accepted) == 1
    accepted, conflicts = merge_changes([ch("anna", 5.0), ch("ben", 6.0), ch("carl", 7.0, pos=1)])
    assert [a["planner"] for a in accepted] == ["carl"] and len(conflicts) == 1
    assert len(conflicts[0].proposals) == 2
    assert same(None, np.nan) and same("", None) and not same(0.0, None) and same(" x", "x")


def test_the_archive_migrates_to_version_2_keeping_its_rows(tmp_path):
    """A version-1 archive (no reason, no audit table) is read as it is and migrated by the next write."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    old = sa.MetaData()
    for t in (schema.schema_version, schema.cycles, schema.cycle_items, schema.cycle_demand, schema.cycle_supply,
              schema.cycle_financials):
        t.to_metadata(old)
    old.tables["cycle_demand"]._columns.remove(old.tables["cycle_demand"].c.reason)  # as version 1 created it
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(schema.schema_version.insert(), [{"version": 1, "applied_at": pd.Timestamp.now(tz="UTC")}])
        conn.execute(schema.cycles.insert(), [{"cycle": pd.Timestamp("2025-12-01").date(), "archived_at": pd.Timestamp.now(tz="UTC"),
                                               "archived_by": "x", "workbook": "w", "inputs_fingerprint": "0" * 64,
                                               "horizon": 1, "sop_xl_version": "old"}])
        conn.execute(sa.text("INSERT INTO cycle_demand (cycle, item, period, lag, stat_forecast, consensus) "
                             "VALUES ('2025-12-01', 'A', '2025-12-01', 1, 3.0, 3.0)"))
    engine.dispose()
    archive = Archive(url)
    dem = archive.read("demand")
    assert len(dem) == 1 and dem["reason"].isna().all() and archive.audit().empty
    archive.write_audit(pd.DataFrame([{"planner": "anna", "table": "Demand", "key": "A 2026-01", "column": "Reason",
                                       "old": "", "new": "promo", "reason": "promo", "copy": "a.xlsm"}]),
                        pd.Timestamp("2026-01-01").date(), "m.xlsm", pd.Timestamp.now(tz="UTC").to_pydatetime())
    assert list(archive.audit()["new_value"]) == ["promo"] and len(archive.read("demand")) == 1
    with archive.engine.connect() as conn:
        assert schema.current_version(conn) == 2
    archive.dispose()


def test_a_copy_taken_before_a_collected_change():
    """The copy lacks the master's later Audit rows: its old value of such a cell is no change; a new
    value there is a conflict naming who changed it since."""
    from sop_xl.plan.collect import changed_since

    row = {"timestamp": "2026-01-05 10:00:00", "planner": "anna", "table": "Demand", "key": "TE01 2026-03",
           "column": "SalesOverride", "old": "120", "new": "150", "reason": "fair", "copy": "anna.xlsm"}
    older = {**row, "timestamp": "2026-01-02 09:00:00", "key": "TE02 2026-03", "old": "", "new": "10"}
    master_audit = pd.DataFrame([older, row], columns=k.AUDIT.fields)
    copy_audit = pd.DataFrame([older], columns=k.AUDIT.fields)  # taken between the two collects
    since = changed_since(master_audit, copy_audit)
    assert since == {("Demand", "TE01 2026-03", "SalesOverride"): ("120", "anna")}
    assert changed_since(master_audit, master_audit) == {}

    def ch(new, since_by):
        return {"table": k.DEMAND.name, "pos": 3, "key": "TE01 2026-03", "field": "sales_override", "old": 150.0,
                "new": new, "planner": "anna", "copy": "anna2.xlsm", "owner": "anna", "reason": "", "since": since_by}
    accepted, conflicts = merge_changes([ch(170.0, "anna")])
    assert not accepted and "collected after this copy was taken" in conflicts[0].why
    assert "master 150; anna (anna2.xlsm) 170" in str(conflicts[0])
