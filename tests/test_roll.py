"""The monthly cycle on the demo company: roll with generated actuals, re-forecast, override,
balance, archive — three times; then accuracy by lag equals a recomputation from the archived rows."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl.cli import main


def _sheet(path, table):
    frame = pd.read_excel(path, sheet_name=table.sheet, header=table.header_row - 1)
    return frame.rename(columns={c.header: c.field for c in table.columns})


def _plan_start(path) -> pd.Timestamp:
    wb = load_workbook(path, read_only=True)
    sheet, coord = next(iter(wb.defined_names["PlanStart"].destinations))
    value = wb[sheet][coord.replace("$", "")].value
    wb.close()
    return pd.Timestamp(value)


def _override(path, item: str, period: pd.Timestamp, value: float) -> None:
    """A planner types a SalesOverride on the Demand sheet."""
    wb = load_workbook(path, keep_vba=True)
    ws = wb[k.DEMAND.sheet]
    col = {c.field: j + 1 for j, c in enumerate(k.DEMAND.columns)}
    for r in range(k.DEMAND.header_row + 1, ws.max_row + 1):
        if ws.cell(r, col["item"]).value == item and pd.Timestamp(ws.cell(r, col["period"]).value) == period:
            ws.cell(r, col["sales_override"]).value = value
            wb.save(path)
            return
    raise AssertionError(f"no Demand row for {item} {period:%Y-%m}")


@pytest.fixture()
def plan(demo_workbook, tmp_path):
    path = tmp_path / "plan.xlsm"
    path.write_bytes(demo_workbook.read_bytes())
    return path


@pytest.mark.slow
def test_three_monthly_cycles_then_accuracy_by_lag(plan, tmp_path, capsys):
    rng = np.random.default_rng(21)
    db = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    arrived = []
    for month in range(3):
        start = _plan_start(plan)
        dem = _sheet(plan, k.DEMAND)
        dem["period"] = pd.to_datetime(dem["period"])
        # Overrides on the first month (scored at lag 1) and on a later month (must survive the roll).
        _override(plan, "TE01", start, float(dem.loc[(dem["item"] == "TE01") & (dem["period"] == start),
                                                     "stat_forecast"].iloc[0]) * 1.3)
        later = start + pd.DateOffset(months=4)
        _override(plan, "BA02", later, 777.0)
        assert main(["run", str(plan), "--steps", "balance,cost_rollup,financials", "--quiet"]) == 0
        # What then happens: the month's actuals, near the statistical forecast.
        closing = dem[dem["period"] == start]
        actuals = pd.DataFrame({"Item": closing["item"], "Period": start.strftime("%Y-%m-%d"),
                                "Qty": np.round(closing["stat_forecast"] * rng.uniform(0.7, 1.3, len(closing)))})
        csv = tmp_path / f"actuals-{start:%Y-%m}.csv"
        actuals.to_csv(csv, index=False)
        arrived.append(actuals)
        before = plan.read_bytes()
        assert main(["roll", str(plan), "--actuals", str(csv), "--db", db, "--quiet"]) == 0
        backup = plan.with_name(f"plan.before-roll-{start:%Y-%m}.xlsm")
        assert backup.read_bytes() == before  # restoring it undoes the roll
        assert _plan_start(plan) == start + pd.DateOffset(months=1)
        rolled = _sheet(plan, k.DEMAND)
        rolled["period"] = pd.to_datetime(rolled["period"])
        assert rolled["period"].min() == start + pd.DateOffset(months=1)  # the closed month is gone
        kept = rolled[(rolled["item"] == "BA02") & (rolled["period"] == later)]
        assert kept["sales_override"].iloc[0] == 777.0
        hist = _sheet(plan, k.ACTUALS)
        assert (pd.to_datetime(hist["period"]) == start).sum() == len(actuals)
        assert main(["run", str(plan), "--quiet"]) == 0  # re-forecast and re-plan the new cycle
        kept = _sheet(plan, k.DEMAND)
        kept = kept[(kept["item"] == "BA02") & (pd.to_datetime(kept["period"]) == later)]
        assert kept["sales_override"].iloc[0] == 777.0  # the re-forecast keeps overrides

    # The same actuals file again is refused: its month is no longer the closing month.
    before = plan.read_bytes()
    assert main(["roll", str(plan), "--actuals", str(csv), "--db", db, "--quiet"]) == 2
    assert plan.read_bytes() == before
    capsys.readouterr()

    assert main(["accuracy", str(plan), "--db", db, "--quiet"]) == 0
    out = capsys.readouterr().out
    from sop_xl.archive.accuracy import accuracy_for_workbook
    res = accuracy_for_workbook(plan, db)
    assert {1, 3} <= set(res.accuracy["lag"]) and "total" in out

    # Independent recomputation from the archived rows (plain SQL) and the actuals files.
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        stored = pd.DataFrame(conn.execute(sa.text(
            "SELECT d.cycle, d.item, d.period, d.lag, d.stat_forecast, d.consensus, i.family "
            "FROM cycle_demand d JOIN cycle_items i ON i.cycle = d.cycle AND i.item = d.item "
            "WHERE d.lag IN (1, 3)")).all())
        assert conn.execute(sa.text("SELECT COUNT(*) FROM cycles")).scalar() == 3
    engine.dispose()
    truth = pd.concat(arrived).rename(columns={"Item": "item", "Period": "period", "Qty": "y"})
    truth["period"] = pd.to_datetime(truth["period"])
    stored["period"] = pd.to_datetime(stored["period"])
    rows = stored.merge(truth, on=["item", "period"])
    assert sorted(rows.groupby("lag").size().to_dict().items()) == [(1, 3 * 40), (3, 40)]
    acc = res.accuracy.set_index(["level", "key", "lag", "forecast"])
    va = res.value_added.set_index(["level", "key", "lag"])
    for lag, g in rows.groupby("lag"):
        sum_a = g["y"].abs().sum()
        for col, name in (("stat_forecast", "statistical"), ("consensus", "consensus")):
            assert acc.loc[("total", "total", lag, name), "wape"] == pytest.approx(
                (g[col] - g["y"]).abs().sum() / sum_a, rel=1e-9)
            assert acc.loc[("total", "total", lag, name), "bias"] == pytest.approx(
                (g[col] - g["y"]).sum() / sum_a, rel=1e-9)
        tents = g[g["family"] == "Tents"]
        assert va.loc[("family", "Tents", lag), "fva"] == pytest.approx(
            1 - (tents["consensus"] - tents["y"]).abs().sum() / (tents["stat_forecast"] - tents["y"]).abs().sum())
    # TE01's lag-1 overrides (+30 % on a forecast the actuals scatter around) change the Tents' error.
    assert va.loc[("family", "Tents", 1), "fva"] != 0
    assert va.loc[("family", "Stoves", 1), "fva"] == 0  # no overrides there

    # The ForecastAccuracy sheet (accuracy --write) against the same recomputation, per planner too.
    before_write = tmp_path / "before-write.xlsm"
    before_write.write_bytes(plan.read_bytes())
    assert main(["accuracy", str(plan), "--db", db, "--write", "--quiet"]) == 0
    sheet = _sheet(plan, k.FORECAST_ACCURACY).set_index(["level", "key", "lag"])
    assert set(sheet.index.get_level_values("level")) == {"total", "family", "owner"}
    assert set(sheet.loc["total"].index) == {("total", 1), ("total", 3)}
    owner_of = dict(zip(_sheet(plan, k.ITEMS)["item"], _sheet(plan, k.ITEMS)["owner"]))
    rows["owner"] = rows["item"].map(owner_of)  # the demo's owners did not change over the cycles
    for lag, g in rows.groupby("lag"):
        sum_a = g["y"].abs().sum()
        total = sheet.loc[("total", "total", lag)]
        assert total["n"] == len(g) and total["actual"] == pytest.approx(g["y"].sum())
        assert total["wape_consensus"] == pytest.approx((g["consensus"] - g["y"]).abs().sum() / sum_a, rel=1e-9)
        assert total["bias_statistical"] == pytest.approx((g["stat_forecast"] - g["y"]).sum() / sum_a, rel=1e-9)
        for planner, p in g.groupby("owner"):
            got = sheet.loc[("owner", planner, lag)]
            assert got["wape_statistical"] == pytest.approx((p["stat_forecast"] - p["y"]).abs().sum() / p["y"].abs().sum())
            assert got["fva"] == pytest.approx(
                1 - (p["consensus"] - p["y"]).abs().sum() / (p["stat_forecast"] - p["y"]).abs().sum())
    assert sheet.loc[("owner", "anna", 1), "fva"] != 0 and sheet.loc[("family", "Stoves", 1), "fva"] == 0
    assert (sheet["cycles"] == "2026-01 to 2026-03 (3)").all()

    # The Dashboard's accuracy KPI: from the archive once the sheet is filled, the backtest before.
    from sop_xl import libreoffice
    from sop_xl.template.dashboard import KPI_ROW, _kpi_columns, kpis
    assert libreoffice.available() or not os.environ.get("SOP_XL_REQUIRE_LIBREOFFICE")
    if libreoffice.available():
        j = _kpi_columns()[[i for i, kpi in enumerate(kpis()) if "Forecast accuracy" in kpi[0]][0]] - 1
        old, new = libreoffice.inspect_many([before_write, plan], sheets_for_values=[k.DASHBOARD_SHEET], timeout=300)
        assert old.values[k.DASHBOARD_SHEET][KPI_ROW - 1][j] == "Forecast accuracy (backtest)"
        assert new.values[k.DASHBOARD_SHEET][KPI_ROW - 1][j] == "Forecast accuracy (archive, lag 1)"
        assert new.values[k.DASHBOARD_SHEET][KPI_ROW][j] == pytest.approx(1 - sheet.loc[("total", "total", 1),
                                                                                        "wape_consensus"], rel=1e-9)

    # The next roll refreshes the filled sheet: the 4th closing month's actuals score its lag-1 forecasts.
    start = _plan_start(plan)
    dem = _sheet(plan, k.DEMAND)
    closing = dem[pd.to_datetime(dem["period"]) == start]
    fourth = pd.DataFrame({"Item": closing["item"], "Period": start.strftime("%Y-%m-%d"),
                           "Qty": np.round(closing["stat_forecast"] * rng.uniform(0.7, 1.3, len(closing)))})
    csv = tmp_path / f"actuals-{start:%Y-%m}.csv"
    fourth.to_csv(csv, index=False)
    assert main(["roll", str(plan), "--actuals", str(csv), "--db", db]) == 0
    assert "ForecastAccuracy refreshed from the archive" in capsys.readouterr().out
    sheet = _sheet(plan, k.FORECAST_ACCURACY).set_index(["level", "key", "lag"])
    assert (sheet["cycles"] == "2026-01 to 2026-04 (4)").all()
    assert sheet.loc[("total", "total", 1), "n"] == 4 * 40
    truth = pd.concat([*arrived, fourth]).rename(columns={"Item": "item", "Period": "period", "Qty": "y"})
    truth["period"] = pd.to_datetime(truth["period"])
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        lag1 = pd.DataFrame(conn.execute(sa.text(
            "SELECT item, period, consensus FROM cycle_demand WHERE lag = 1")).all())
    engine.dispose()
    lag1["period"] = pd.to_datetime(lag1["period"])
    g = lag1.merge(truth, on=["item", "period"])
    assert sheet.loc[("total", "total", 1), "wape_consensus"] == pytest.approx(
        (g["consensus"] - g["y"]).abs().sum() / g["y"].abs().sum(), rel=1e-9)


def test_a_roll_with_bad_actuals_changes_nothing(plan, tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("Item,Period,Qty\nTE01,2026-01-01,12\nNOPE,2026-01-01,3\nTE02,2026-01-01,n/a\n")
    before = plan.read_bytes()
    db = tmp_path / "a.sqlite"
    assert main(["roll", str(plan), "--actuals", str(csv), "--db", f"sqlite:///{db}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "sheet 'bad.csv'" in err and "row 4, column Qty" in err and "NOPE" in err
    assert plan.read_bytes() == before and not db.exists()


def test_a_roll_whose_archive_fails_changes_nothing(plan, tmp_path, capsys):
    csv = tmp_path / "jan.csv"
    csv.write_text("Item,Period,Qty\nTE01,2026-01-01,12\n")
    before = hashlib.sha256(plan.read_bytes()).hexdigest()
    url = f"sqlite:///{tmp_path / 'missing' / 'a.sqlite'}"
    assert main(["roll", str(plan), "--actuals", str(csv), "--db", url, "--quiet"]) == 1
    assert "nothing was rolled" in capsys.readouterr().err
    assert hashlib.sha256(plan.read_bytes()).hexdigest() == before
    assert not list(tmp_path.glob("plan.before-roll-*"))


def test_actuals_from_an_xlsx_file(plan, tmp_path, capsys):
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "History"
    ws.append(["Item", "Period", "Qty"])
    ws.append(["TE01", pd.Timestamp("2026-01-01").to_pydatetime(), 12])
    ws.append(["TE02", pd.Timestamp("2026-02-01").to_pydatetime(), 5])  # not the closing month
    path = tmp_path / "jan.xlsx"
    wb.save(path)
    before = plan.read_bytes()
    assert main(["roll", str(plan), "--actuals", str(path), "--db", f"sqlite:///{tmp_path / 'a.sqlite'}",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "sheet 'jan.xlsx!History', row 3, column Period: 2026-02 is not the closing month 2026-01" in err
    assert plan.read_bytes() == before
    ws.delete_rows(3)
    wb.save(path)
    assert main(["roll", str(plan), "--actuals", str(path), "--db", f"sqlite:///{tmp_path / 'a.sqlite'}",
                 "--quiet"]) == 0
    hist = _sheet(plan, k.ACTUALS)
    assert hist.iloc[-1]["item"] == "TE01" and hist.iloc[-1]["qty"] == 12
