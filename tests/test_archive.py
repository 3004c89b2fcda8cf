"""The plan archive on real databases (SQLite file and a throwaway PostgreSQL cluster): what is
stored, re-archiving, the schema version, and every failure leaving no partial cycle."""
from __future__ import annotations

import dataclasses
import hashlib
import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sop_xl import contract as k
from sop_xl.archive import Archive, ArchiveError, schema
from sop_xl.archive.from_workbook import cycle_from_book
from sop_xl.cli import main
from sop_xl.workbook import open_file
from tests import archive_db

# The database fixtures live in tests/archive_db.py; naming them here makes pytest see them.
archive_url, postgres_cluster = archive_db.archive_url, archive_db.postgres_cluster


@pytest.fixture(autouse=True)
def _archives_are_disposed(monkeypatch):
    """Every Archive a test opens gives its pooled connections back at the end of the test (PostgreSQL
    warns about connections left open; the code under test disposes its own)."""
    opened = []
    real_init = Archive.__init__

    def tracking_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(Archive, "__init__", tracking_init)
    yield
    for archive in opened:
        archive.dispose()


@pytest.fixture()
def plan(demo_workbook, tmp_path):
    path = tmp_path / "plan.xlsm"
    path.write_bytes(demo_workbook.read_bytes())
    return path


@pytest.fixture(scope="module")
def demo_cycle(demo_workbook):
    with open_file(demo_workbook, writable=False) as book:
        return cycle_from_book(book)


def _sheet(path, table):
    frame = pd.read_excel(path, sheet_name=table.sheet, header=table.header_row - 1)
    return frame.rename(columns={c.header: c.field for c in table.columns})


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shifted(cycle, months: int, scale: float = 1.0):
    """The same plan one or more months later (another cycle), demand scaled to tell them apart."""
    move = pd.DateOffset(months=months)
    parts = {}
    for name, frame in cycle.parts.items():
        frame = frame.copy()
        if "period" in frame.columns:
            frame["period"] = pd.to_datetime(frame["period"]) + move
        if name == "demand":
            frame[["stat_forecast", "consensus"]] *= scale
        parts[name] = frame
    return dataclasses.replace(cycle, cycle=(pd.Timestamp(cycle.cycle) + move).date(), parts=parts)


def _count(url, table) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return 0
            return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------ storing
def test_archive_stores_the_cycle_as_the_workbook_holds_it(plan, archive_url):
    before = _digest(plan)
    assert main(["archive", str(plan), "--db", archive_url, "--quiet"]) == 0
    assert _digest(plan) == before  # archiving only reads the workbook

    archive = Archive(archive_url)
    cycles = archive.cycles()
    assert len(cycles) == 1
    row = cycles.iloc[0]
    assert row["cycle"] == pd.Timestamp("2026-01-01") and row["horizon"] == 18
    assert len(row["inputs_fingerprint"]) == 64 and row["archived_by"] and row["workbook"] == "plan.xlsm"

    # The demand part against the Demand sheet, consensus recomputed here by the sheet's formula.
    dem = _sheet(plan, k.DEMAND)
    dem["period"] = pd.to_datetime(dem["period"])
    expect = np.where(dem["sales_override"].notna(), dem["sales_override"], dem["stat_forecast"].fillna(0)) \
        + dem["event_uplift"].fillna(0)
    got = archive.read("demand").merge(dem, on=["item", "period"], suffixes=("", "_sheet"), how="outer",
                                       indicator=True)
    assert (got["_merge"] == "both").all()
    assert np.allclose(got["stat_forecast"], got["stat_forecast_sheet"])
    assert np.allclose(got["consensus"], pd.Series(expect, index=dem.index).reindex(got.index))
    assert sorted(got["lag"].unique()) == list(range(1, 19))

    supply = archive.read("supply").merge(_sheet(plan, k.SUPPLY_PLAN).assign(
        period=lambda f: pd.to_datetime(f["period"])), on=["item", "period"], suffixes=("", "_sheet"))
    assert len(supply) == len(_sheet(plan, k.SUPPLY_PLAN))
    assert np.allclose(supply["production"], supply["production_sheet"])
    fin = archive.read("financials")
    assert fin["revenue"].sum() == pytest.approx(_sheet(plan, k.FINANCIALS)["revenue"].sum(), rel=1e-9)
    items = archive.read("items")
    assert set(items["item"]) == set(_sheet(plan, k.ITEMS)["item"])
    assert items.loc[items["item"] == "TE01", "family"].iloc[0] == "Tents"

    # The long read is the same numbers, one row per measure.
    long = archive.read_long("financials", lag=[1, 2])
    assert set(long["lag"]) == {1, 2}
    assert long.loc[long["measure"] == "margin", "value"].sum() == pytest.approx(
        fin.loc[fin["lag"] <= 2, "margin"].sum())
    archive.dispose()


def test_re_archiving_a_cycle_replaces_it(demo_cycle, archive_url):
    archive = Archive(archive_url)
    first = archive.write(demo_cycle)
    changed = demo_cycle.parts["demand"].copy()
    changed.loc[0, "sales_override"] = 12345.0
    changed.loc[0, "consensus"] = 12345.0
    again = archive.write(dataclasses.replace(demo_cycle, parts={**demo_cycle.parts, "demand": changed}))
    assert again == first
    dem = archive.read("demand")
    assert len(dem) == len(changed) and not dem.duplicated(["cycle", "item", "period"]).any()
    assert dem["sales_override"].max() == 12345.0
    assert len(archive.cycles()) == 1
    for part, (table, _, _) in schema.PARTS.items():
        assert _count(archive_url, table.name) == first[part]
    archive.dispose()


def test_the_fingerprint_follows_the_inputs_only(plan):
    with open_file(plan, writable=False) as book:
        a = cycle_from_book(book).inputs_fingerprint
    assert main(["run", str(plan), "--steps", "financials", "--quiet"]) == 0  # outputs change, inputs do not
    with open_file(plan, writable=False) as book:
        b = cycle_from_book(book).inputs_fingerprint
    from openpyxl import load_workbook
    wb = load_workbook(plan, keep_vba=True)
    wb[k.DEMAND.sheet].cell(k.DEMAND.header_row + 1, 4).value = 999.0  # an override
    wb.save(plan)
    with open_file(plan, writable=False) as book:
        c = cycle_from_book(book).inputs_fingerprint
    assert a == b != c


def test_a_workbook_without_a_forecast_is_refused(tmp_path):
    path = tmp_path / "empty.xlsm"
    assert main(["new", str(path)]) == 0
    db = tmp_path / "a.sqlite"
    assert main(["archive", str(path), "--db", f"sqlite:///{db}", "--quiet"]) == 2
    assert _count(f"sqlite:///{db}", "cycles") == 0


# ------------------------------------------------------------------------------------------ schema
def test_an_archive_from_a_newer_sop_xl_is_refused(plan, archive_url, capsys):
    Archive(archive_url).write(shifted(_tiny_cycle(), 0))
    engine = sa.create_engine(archive_url)
    with engine.begin() as conn:
        conn.execute(schema.schema_version.insert(), [{"version": schema.SCHEMA_VERSION + 1,
                                                       "applied_at": pd.Timestamp.now(tz="UTC")}])
    engine.dispose()
    before = _digest(plan)
    assert main(["archive", str(plan), "--db", archive_url, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "newer than this sop-xl knows" in err and "\n" not in err.strip()
    assert _digest(plan) == before
    assert _count(archive_url, "cycles") == 1  # only the tiny cycle written before
    with pytest.raises(ArchiveError, match="newer"):
        Archive(archive_url).read("demand")


def test_migrations_run_once_in_the_archiving_transaction(archive_url, monkeypatch):
    archive = Archive(archive_url)
    archive.write(_tiny_cycle())
    ran = []

    def add_note(conn):
        ran.append(1)
        conn.execute(sa.text("ALTER TABLE cycle_demand ADD COLUMN note VARCHAR(200)"))

    now = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", now + 1)
    monkeypatch.setattr(schema, "MIGRATIONS", {**schema.MIGRATIONS, now: add_note})
    archive.write(_tiny_cycle())
    archive.write(_tiny_cycle())
    assert ran == [1]
    with archive.engine.connect() as conn:
        assert schema.current_version(conn) == now + 1
        assert "note" in {c["name"] for c in sa.inspect(conn).get_columns("cycle_demand")}
    archive.dispose()


def test_a_database_with_foreign_tables_of_the_same_name_is_refused(archive_url):
    engine = sa.create_engine(archive_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE cycles (x INTEGER)"))
    engine.dispose()
    with pytest.raises(ArchiveError, match="not an sop-xl archive"):
        Archive(archive_url).write(_tiny_cycle())


def _tiny_cycle():
    periods = pd.date_range("2026-01-01", periods=3, freq="MS")
    demand = pd.DataFrame({"item": ["A"] * 3, "period": periods, "stat_forecast": [1.0, 2.0, 3.0],
                           "sales_override": [np.nan, 5.0, np.nan], "event_uplift": [0.0, 0.0, 1.0]})
    demand["consensus"] = [1.0, 5.0, 4.0]
    from sop_xl.archive.store import Cycle
    return Cycle(cycle=periods[0].date(), archived_by="tester", archived_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
                 workbook="tiny.xlsm", inputs_fingerprint="0" * 64, horizon=3, sop_xl_version="test",
                 parts={"items": pd.DataFrame({"item": ["A"], "family": ["F"], "item_type": ["FG"]}),
                        "demand": demand})


# ------------------------------------------------------------------------------------------ failures
def test_an_unreachable_server_is_one_line_and_exit_1(plan, capsys):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    before = _digest(plan)
    url = f"postgresql+psycopg://someone:s3cret@127.0.0.1:{port}/plans"
    assert main(["archive", str(plan), "--db", url, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot be reached" in err and "s3cret" not in err and "\n" not in err
    assert _digest(plan) == before


def test_a_sqlite_folder_that_does_not_exist(plan, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'a.sqlite'}"
    assert main(["archive", str(plan), "--db", url, "--quiet"]) == 1
    assert "cannot be opened" in capsys.readouterr().err


def test_wrong_credentials(plan, postgres_cluster, capsys):
    from tests.archive_db import PG_USER
    url = postgres_cluster.url(password="not-the-password")
    before = _digest(plan)
    assert main(["archive", str(plan), "--db", url, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "refused the user name or password" in err and PG_USER in err and "not-the-password" not in err
    assert "\n" not in err
    assert _digest(plan) == before


def _failing_on(engine, table: str, error: BaseException):
    """Fault injection: the driver call that starts writing ``table`` raises ``error``."""
    @sa.event.listens_for(engine, "before_cursor_execute")
    def _fail(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT") and f"INTO {table}" in statement:
            raise error


def _disk_full_trigger(url: str) -> None:
    """The database itself fails writing the supply plan, after the cycle's earlier parts went in."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("CREATE TRIGGER disk_full BEFORE INSERT ON cycle_supply "
                                 "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        else:
            conn.exec_driver_sql("CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                                 "RAISE EXCEPTION 'could not extend file: No space left on device'; END $$")
            conn.exec_driver_sql("CREATE TRIGGER disk_full BEFORE INSERT ON cycle_supply "
                                 "FOR EACH ROW EXECUTE FUNCTION disk_full()")
    engine.dispose()


@pytest.mark.parametrize("failure", ["database", "os"])
def test_a_failure_mid_archive_leaves_no_partial_cycle(demo_cycle, archive_url, failure):
    Archive(archive_url).write(demo_cycle)
    before = Archive(archive_url).read("demand")
    later = shifted(demo_cycle, 1)
    replaced = dataclasses.replace(demo_cycle, archived_by="someone else",
                                   parts={**demo_cycle.parts, "demand": shifted(demo_cycle, 0, 2.0).parts["demand"]})
    if failure == "database":
        _disk_full_trigger(archive_url)
    for cycle in (later, replaced):  # a new cycle, and a re-archive of the stored one
        broken = Archive(archive_url)
        if failure == "os":  # after the old version's rows were deleted
            _failing_on(broken.engine, "cycles", OSError(28, "No space left on device"))
        with pytest.raises(ArchiveError, match="disk holding the archive is full") as info:
            broken.write(cycle)
        assert "\n" not in str(info.value)
        broken.dispose()
    archive = Archive(archive_url)
    assert list(archive.cycles()["archived_by"]) == [demo_cycle.archived_by]
    pd.testing.assert_frame_equal(archive.read("demand"), before)
    for part, (table, _, _) in schema.PARTS.items():
        assert _count(archive_url, table.name) == len(demo_cycle.parts[part])


def test_sqlite_really_full(demo_cycle, tmp_path):
    """A real SQLITE_FULL (the file may not grow past max_page_count): nothing of the cycle stays,
    not even the tables created in the same transaction."""
    url = f"sqlite:///{tmp_path / 'full.sqlite'}"
    engine = sa.create_engine(url, connect_args={"timeout": 5})

    @sa.event.listens_for(engine, "connect")
    def _small(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA max_page_count = 30")

    with pytest.raises(ArchiveError, match="disk holding the archive is full"):
        Archive(url, engine=engine).write(demo_cycle)
    assert _count(url, "cycles") == 0 and _count(url, "schema_version") == 0


def test_two_planners_archiving_at_once(demo_cycle, archive_url):
    """Four writers on an empty archive at once (two cycles, each twice): every writer succeeds or
    replaces whole; both cycles are kept, with no duplicates."""
    cycles = [demo_cycle, shifted(demo_cycle, 1, 1.5)] * 2
    start = threading.Barrier(len(cycles))
    errors = []

    def archive(cycle):
        store = Archive(archive_url)
        start.wait()
        try:
            store.write(cycle)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            store.dispose()

    threads = [threading.Thread(target=archive, args=(c,)) for c in cycles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    archive = Archive(archive_url)
    assert [c.date() for c in archive.cycles()["cycle"]] == [cycles[0].cycle, cycles[1].cycle]
    dem = archive.read("demand")
    assert not dem.duplicated(["cycle", "item", "period"]).any()
    per_cycle = dem.groupby("cycle")["stat_forecast"].sum()
    total = demo_cycle.parts["demand"]["stat_forecast"].sum()
    assert per_cycle.iloc[0] == pytest.approx(total) and per_cycle.iloc[1] == pytest.approx(1.5 * total)
    for part, (table, _, _) in schema.PARTS.items():
        assert _count(archive_url, table.name) == 2 * len(demo_cycle.parts[part])
    archive.dispose()


# ------------------------------------------------------------------------------------------ accuracy
def test_accuracy_by_lag_from_the_archive(plan, demo_cycle, archive_url, capsys):
    """Two archived cycles (2026-01 by the CLI, 2026-02 through the API), then three months of actuals
    arrive in Actuals: lag-1 and lag-3 accuracy and the overrides' value added equal a recomputation
    from the archived rows read back with plain SQL."""
    from sop_xl.archive.accuracy import accuracy_for_workbook
    from sop_xl.plan.pipeline import rows_for

    assert main(["archive", str(plan), "--db", archive_url, "--quiet"]) == 0
    second = shifted(demo_cycle, 1, 0.9)
    dem2 = second.parts["demand"]
    dem2.loc[dem2.index[::3], "consensus"] = dem2.loc[dem2.index[::3], "stat_forecast"] * 1.2  # overrides
    Archive(archive_url).write(second)

    rng = np.random.default_rng(11)
    hist = _sheet(plan, k.ACTUALS)
    months = pd.date_range("2026-01-01", periods=3, freq="MS")
    items = sorted(hist["item"].unique())
    arrived = pd.DataFrame([{"item": i, "period": p, "qty": float(rng.integers(0, 400))} for i in items for p in months])
    with open_file(plan) as book:
        book.append_rows(k.ACTUALS, rows_for(k.ACTUALS, arrived, 0))
        book.write_named("PlanStart", months[-1] + pd.DateOffset(months=1))
        book.save()

    res = accuracy_for_workbook(plan, archive_url)
    assert main(["accuracy", str(plan), "--db", archive_url, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Forecast accuracy by lag" in out and "Value added" in out

    engine = sa.create_engine(archive_url)
    with engine.connect() as conn:
        stored = pd.DataFrame(conn.execute(sa.text(
            "SELECT d.cycle, d.item, d.period, d.lag, d.stat_forecast, d.consensus, i.family "
            "FROM cycle_demand d JOIN cycle_items i ON i.cycle = d.cycle AND i.item = d.item")).all())
    engine.dispose()
    stored["period"] = pd.to_datetime(stored["period"])
    truth = arrived.rename(columns={"qty": "y"})
    rows = stored.merge(truth, on=["item", "period"])  # every period has its seasonal naive (36 months back)
    assert set(rows["lag"]) == {1, 2, 3}  # 2026-01: lags 1-3; 2026-02: lags 1-2
    acc = res.accuracy.set_index(["level", "key", "lag", "forecast"])
    for (family, lag), g in rows[rows["lag"].isin([1, 3])].groupby(["family", "lag"]):
        sum_a = g["y"].abs().sum()
        assert acc.loc[("family", family, lag, "statistical"), "wape"] == pytest.approx(
            (g["stat_forecast"] - g["y"]).abs().sum() / sum_a, rel=1e-9)
        assert acc.loc[("family", family, lag, "consensus"), "bias"] == pytest.approx(
            (g["consensus"] - g["y"]).sum() / sum_a, rel=1e-9)
        fva = res.value_added.set_index(["level", "key", "lag"]).loc[("family", family, lag), "fva"]
        assert fva == pytest.approx(1 - (g["consensus"] - g["y"]).abs().sum() / (g["stat_forecast"] - g["y"]).abs().sum())
    assert acc.loc[("total", "total", 1, "statistical"), "n"] == (rows["lag"] == 1).sum() == 2 * len(items)
    assert 2 not in set(res.accuracy["lag"])


def test_two_processes_archiving_the_same_cycle(plan, archive_url):
    """Two planners' `sop-xl archive` at the same moment on one cycle: both succeed, one copy stays."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "sop_xl", "archive", str(plan), "--db", archive_url, "--quiet"]
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    procs = [subprocess.Popen(cmd, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    archive = Archive(archive_url)
    assert len(archive.cycles()) == 1
    dem = archive.read("demand")
    assert len(dem) == len(_sheet(plan, k.DEMAND)) and not dem.duplicated(["cycle", "item", "period"]).any()
    archive.dispose()


def test_the_accuracy_read_path_equals_the_general_read(demo_cycle, archive_url):
    """read_forecasts (codes, period from cycle and lag, until) holds what read + merge hold, blank owners
    missing (the demo's Stoves have no owner), periods after ``until`` left out."""
    archive = Archive(archive_url)
    for months in (0, 1, 2):
        archive.write(shifted(demo_cycle, months, 1 + months / 10))
    until = pd.Timestamp("2026-04-01")
    fast = archive.read_forecasts((1, 3, 6), until=until)
    cols = ["cycle", "item", "period", "lag", "stat_forecast", "consensus", "family", "owner"]
    fast = fast[cols].astype({"item": object, "family": object, "owner": object}).fillna({"owner": "-"})
    slow = archive.read("demand", lag=[1, 3, 6]).merge(archive.read("items"), on=["cycle", "item"], how="left")
    slow = slow.loc[slow["period"] <= until, cols]
    assert (slow["owner"] == "").any() and (slow["owner"] != "").any()
    slow["owner"] = slow["owner"].replace("", "-")  # a blank owner is missing in the accuracy path
    key = ["cycle", "item", "period"]
    pd.testing.assert_frame_equal(fast.sort_values(key, ignore_index=True), slow.sort_values(key, ignore_index=True),
                                  check_dtype=False)
    assert archive.read_forecasts((2,), until=pd.Timestamp("2025-01-01")).empty
    archive.dispose()


def test_a_reason_longer_than_its_column_is_cut_not_refused(archive_url):
    """PostgreSQL refuses text longer than VARCHAR(200); a planner's long Reason must not fail the archive."""
    cycle = _tiny_cycle()
    cycle.parts["demand"]["reason"] = ["x" * 300, None, "promo"]
    archive = Archive(archive_url)
    archive.write(cycle)
    assert list(archive.read("demand")["reason"].fillna("-").str.len()) == [200, 1, 5]
    archive.dispose()
