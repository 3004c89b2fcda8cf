"""`sop-xl import`: ERP extracts (CSV, SQLite query) into Actuals and Items, checked like the workbook."""
from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from sop_xl import contract as k
from sop_xl.cli import main
from sop_xl.plan.validation import parse_table
from sop_xl.workbook import open_file
from tests.workbooks import demo_xlsx, small_demo

ITEM_MAP = """
[columns]
Item = "MATNR"
Description = "MAKTX"
Family = "Product Group"
Type = "MTART"
Price = "Net Price"
"""


def _table(path, table: k.Table) -> pd.DataFrame:
    with open_file(path, writable=False) as book:
        frame, problems = parse_table(book.read_table(table), table)
    assert not problems
    return frame.drop(columns="_row").reset_index(drop=True)


def _items_extract(items: pd.DataFrame) -> pd.DataFrame:
    erp = items[["item", "description", "family", "item_type", "price"]].copy()
    erp.columns = ["MATNR", "MAKTX", "Product Group", "MTART", "Net Price"]
    erp["Plant"] = "1000"  # a column the workbook does not have: reported as unused
    return erp


def test_csv_into_items_and_sqlite_query_into_history(tmp_path, capsys):
    book = demo_xlsx(tmp_path)
    items, history = _table(book, k.ITEMS), _table(book, k.ACTUALS)
    (tmp_path / "items.toml").write_text(ITEM_MAP)

    # Items from a CSV: one price changed, one new finished good.
    erp = _items_extract(items)
    first_fg = erp.index[erp["MTART"] == "FG"][0]
    erp.loc[first_fg, "Net Price"] = 123.45
    new = {"MATNR": "FG-NEW", "MAKTX": "New launch", "Product Group": erp.loc[first_fg, "Product Group"],
           "MTART": "FG", "Net Price": 99.0, "Plant": "1000"}
    erp = pd.concat([erp, pd.DataFrame([new])], ignore_index=True)
    erp.to_csv(tmp_path / "items.csv", index=False)

    before = book.read_bytes()
    assert main(["import", str(book), "Items", str(tmp_path / "items.csv"), "--map", str(tmp_path / "items.toml"),
                 "--dry-run", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"would replace {len(items)} row(s) by {len(items) + 1}" in out
    assert "1 added: FG-NEW" in out and f"1 changed: {erp.loc[first_fg, 'MATNR']}" in out and "0 removed" in out
    assert "source columns not used: Plant" in out and "nothing was written" in out
    assert book.read_bytes() == before

    assert main(["import", str(book), "Items", str(tmp_path / "items.csv"), "--map", str(tmp_path / "items.toml"),
                 "--quiet"]) == 0
    got = _table(book, k.ITEMS)
    assert list(got["item"]) == list(erp["MATNR"])
    assert got.set_index("item").loc[erp.loc[first_fg, "MATNR"], "price"] == 123.45
    assert got.set_index("item").loc["FG-NEW", "description"] == "New launch"
    # Columns the extract does not carry take the table's defaults, as a blank cell would.
    assert got.set_index("item").loc["FG-NEW", "policy"] == "backlog"

    # Actuals from a SQLite query, with its own column names; the new item gets sales too.
    _, settings = small_demo()
    start = pd.Timestamp(settings["PlanStart"])
    sales = history.rename(columns={"item": "sku", "period": "month", "qty": "units"})
    sales["month"] = sales["month"].dt.strftime("%Y-%m-%d")
    launch = pd.DataFrame({"sku": "FG-NEW", "month": [f"{start - pd.DateOffset(months=m):%Y-%m-%d}" for m in (2, 1)],
                           "units": [10.0, 12.5]})
    sales = pd.concat([sales, launch], ignore_index=True)
    db = tmp_path / "erp.sqlite"
    with sqlite3.connect(db) as conn:
        sales.assign(plant="1000").to_sql("sales", conn, index=False)
        pd.DataFrame({"sku": ["X"], "month": ["2020-01-01"], "units": [1.0]}).assign(plant="2000").to_sql(
            "sales", conn, index=False, if_exists="append")
    (tmp_path / "history.toml").write_text('[columns]\nItem = "sku"\nPeriod = "month"\nQty = "units"\n\n'
                                           "[source]\nquery = \"SELECT sku, month, units FROM sales WHERE plant = '1000'\"\n")
    assert main(["import", str(book), "Actuals", f"sqlite:///{db}", "--map", str(tmp_path / "history.toml"),
                 "--quiet"]) == 0
    got = _table(book, k.ACTUALS)
    assert len(got) == len(history) + 2
    pd.testing.assert_frame_equal(got.iloc[:len(history)], history)
    assert got.iloc[-2:]["qty"].tolist() == [10.0, 12.5] and set(got.iloc[-2:]["item"]) == {"FG-NEW"}


def test_a_bad_line_is_named_by_file_and_line_and_nothing_is_written(tmp_path, capsys):
    book = demo_xlsx(tmp_path)
    history = _table(book, k.ACTUALS)
    lines = ["sku;month;units"] + [f"{r.item};{r.period:%Y-%m-%d};{r.qty}" for r in history.head(8).itertuples()]
    lines[3] = lines[3].rsplit(";", 1)[0] + ";12 pcs"  # line 4: not a number
    lines.insert(6, "")                                   # a blank line 7: the lines after keep their numbers
    lines[8] = "NO-SUCH-ITEM;" + lines[8].split(";", 1)[1]  # line 9: unknown item
    (tmp_path / "history.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "map.toml").write_text('[columns]\nItem = "sku"\nPeriod = "month"\nQty = "units"\n')
    before = book.read_bytes()
    args = ["import", str(book), "Actuals", str(tmp_path / "history.csv"), "--map", str(tmp_path / "map.toml"), "--quiet"]

    assert main(args) == 2
    err = capsys.readouterr().err
    assert "history.csv, line 4, column Qty (source 'units'): holds text '12 pcs'" in err
    assert "nothing was written" in err and "Traceback" not in err
    assert book.read_bytes() == before

    lines[3] = lines[3].rsplit(";", 1)[0] + ";12"  # fixed: now the workbook-wide check finds the unknown item
    (tmp_path / "history.csv").write_text("\n".join(lines) + "\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "history.csv, line 9, column Item (source 'sku'): 'NO-SUCH-ITEM' is not in Items" in err
    assert book.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.xlsx", "history.csv", "map.toml"]


def test_items_that_history_still_uses_cannot_be_dropped(tmp_path, capsys):
    book = demo_xlsx(tmp_path)
    items = _table(book, k.ITEMS)
    history = _table(book, k.ACTUALS)
    erp = _items_extract(items)
    gone = history["item"].iloc[0]
    erp[erp["MATNR"] != gone].to_parquet(tmp_path / "items.parquet", index=False)
    (tmp_path / "items.toml").write_text(ITEM_MAP)
    before = book.read_bytes()
    assert main(["import", str(book), "tblItems", str(tmp_path / "items.parquet"), "--map",
                 str(tmp_path / "items.toml"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "after the import: sheet 'Actuals', table tblActuals, row" in err and f"'{gone}' is not in Items" in err
    assert book.read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["Nowhere", "x.csv"], "no input table 'Nowhere'"),
    (["Actuals", "missing.csv"], "missing.csv: no such file"),
    (["Actuals", "sqlite:///x.db"], "a database needs a query"),
    (["Actuals", "h.csv"], "no source column for Item (looked for source column 'Item')"),
])
def test_unusable_requests_are_one_line(tmp_path, capsys, args, message):
    book = demo_xlsx(tmp_path)
    (tmp_path / "h.csv").write_text("sku,month,units\nA,2025-01-01,1\n")
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
    before = book.read_bytes()
    assert main(["import", str(book), *args, "--quiet"]) == 1
    assert message in capsys.readouterr().err
    assert book.read_bytes() == before
