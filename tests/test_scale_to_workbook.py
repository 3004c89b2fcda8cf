"""`sop-xl forecast … --to-workbook`: family sums (or the top N items) into Forecast and Demand."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.scale import synthetic_series
from sop_xl import contract as k
from sop_xl.cli import main
from sop_xl.plan.validation import parse_table
from sop_xl.workbook import open_file
from tests.workbooks import append_row, demo_xlsx, small_demo


def _table(path, table: k.Table) -> pd.DataFrame:
    with open_file(path, writable=False) as book:
        frame, _ = parse_table(book.read_table(table), table)
    return frame.drop(columns="_row")


def _plan():
    frames, settings = small_demo()
    start = pd.Timestamp(settings["PlanStart"])
    return frames, start, int(settings["Horizon"])


def test_family_sums_and_their_intervals_go_to_forecast_and_demand(tmp_path, capsys):
    frames, start, horizon = _plan()
    families = frames["tblItems"].query("item_type == 'FG'")["item"].head(2).tolist()  # the workbook plans these
    # A typed override for a plan month must survive the new statistical forecast.
    def override(wb):
        append_row(wb, k.DEMAND, {"item": families[0], "period": start.to_pydatetime(), "sales_override": 777.0})
    book = demo_xlsx(tmp_path, override)
    data = synthetic_series(6, months=30, seed=2, end=f"{start - pd.DateOffset(months=1):%Y-%m-%d}")
    data["family"] = data["item"].map(lambda s: families[int(s[-1]) % 2])
    data.to_csv(tmp_path / "sku.csv", index=False)

    assert main(["forecast", str(tmp_path / "sku.csv"), "--out", str(tmp_path / "fc.parquet"), "--horizon",
                 str(horizon), "--model", "Naive", "--to-workbook", str(book), "--level", "family",
                 "--family", "family", "--quiet"]) == 0
    assert "2 family row(s) written" in capsys.readouterr().out

    series = pd.read_parquet(tmp_path / "fc.parquet")
    series["family"] = series["item"].map(lambda s: families[int(s[-1]) % 2])
    got = _table(book, k.FORECAST).set_index(["item", "period"]).sort_index()
    assert set(got.index.get_level_values(0)) == set(families) and len(got) == 2 * horizon
    for (fam, period), grp in series.groupby(["family", "period"]):
        row = got.loc[(fam, period)]
        assert np.isclose(row["yhat"], grp["forecast"].sum())
        assert np.isclose(row["lo_95"], max(grp["forecast"].sum() - np.sqrt(((grp["forecast"] - grp["lo_95"]) ** 2).sum()), 0))
        assert np.isclose(row["hi_80"], grp["forecast"].sum() + np.sqrt(((grp["hi_80"] - grp["forecast"]) ** 2).sum()))
        assert row["model"] == "sum of 3 series"
    demand = _table(book, k.DEMAND).set_index(["item", "period"])
    first = demand.loc[(families[0], start)]
    assert np.isclose(first["stat_forecast"], got.loc[(families[0], start), "yhat"]) and first["sales_override"] == 777.0
    models = _table(book, k.FORECAST_MODELS).set_index("item")
    assert set(models.index) == set(families) and "independent" in models.loc[families[0], "note"]
    # Stamped current, from Items and Settings only: the workbook's Actuals are not what it came from.
    from sop_xl.plan.freshness import parse, stamp_name
    with open_file(book, writable=False) as wb:
        for table in (k.FORECAST, k.FORECAST_MODELS):
            stamp = parse(wb.read_setting(stamp_name(table)))
            assert not stamp["stale"] and stamp["step"] == "forecast", stamp
            assert set(stamp["inputs"]) == {k.ITEMS.sheet, "Settings"}


def test_top_items_and_unknown_keys(tmp_path, capsys):
    frames, start, horizon = _plan()
    items = frames["tblItems"].query("item_type == 'FG'")["item"].head(3).tolist()
    book = demo_xlsx(tmp_path)
    data = synthetic_series(3, months=30, seed=4, end=f"{start - pd.DateOffset(months=1):%Y-%m-%d}")
    data["item"] = data["item"].map(lambda s: items[int(s[-1])])
    data.to_parquet(tmp_path / "items.parquet", index=False)
    args = ["forecast", str(tmp_path / "items.parquet"), "--out", str(tmp_path / "fc.csv"), "--horizon", str(horizon),
            "--model", "Naive", "--to-workbook", str(book), "--level", "item", "--quiet"]
    assert main(args + ["--top", "2"]) == 0
    series = pd.read_csv(tmp_path / "fc.csv")
    top = series.groupby("item")["forecast"].sum().nlargest(2).index
    assert set(_table(book, k.FORECAST)["item"]) == set(top)

    before = book.read_bytes()
    data.assign(item="NOT-IN-ITEMS").to_parquet(tmp_path / "items.parquet", index=False)
    assert main(args) == 1
    assert "not in the workbook's Items, e.g. NOT-IN-ITEMS" in capsys.readouterr().err
    assert book.read_bytes() == before
