"""The Demand sheet's Consensus formula and Python's consensus rule agree on every row of the demo.

LibreOffice recalculates the saved demo workbook (with overrides and uplifts typed in as numbers)
and every Consensus cell is compared with what the plan uses (engine.demand.with_consensus on the
validated Demand table). Text in those cells is refused by validation (tests/test_bad_inputs.py), so
no accepted workbook can make the two disagree.
"""
from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl import libreoffice as lo
from sop_xl.engine.demand import with_consensus
from sop_xl.plan.context import Context
from sop_xl.workbook import open_file

pytestmark = [pytest.mark.libreoffice, pytest.mark.slow,
              pytest.mark.skipif(not lo.available(), reason="needs LibreOffice (soffice) and python3-uno")]


def test_every_consensus_cell_matches_python(demo_workbook, tmp_path):
    path = tmp_path / "consensus.xlsm"
    path.write_bytes(demo_workbook.read_bytes())
    wb = load_workbook(path, keep_vba=True)
    ws = wb[k.DEMAND.sheet]
    first = k.DEMAND.header_row + 1
    col = {f: k.DEMAND.first_col + k.DEMAND.fields.index(f) for f in k.DEMAND.fields}
    last = first
    while ws.cell(last + 1, col["item"]).value is not None:
        last += 1
    # Overrides (including 0) and uplifts (including negative ones) on a spread of rows.
    for i, r in enumerate(range(first, last + 1, 7)):
        ws.cell(r, col["sales_override"]).value = [0, 12.5, 400, None][i % 4]
        ws.cell(r, col["event_uplift"]).value = [None, -3, 250, 1000.25][(i // 2) % 4]
    wb.save(path)

    with open_file(path) as book:
        ctx = Context(book)
        ctx.load((k.ITEMS, k.DEMAND))
        python = with_consensus(ctx.frame(k.DEMAND))
    sheet = lo.inspect(path, [k.DEMAND.sheet]).values[k.DEMAND.sheet]
    header = sheet[k.DEMAND.header_row - 1]
    rows = [dict(zip(header, r)) for r in sheet[k.DEMAND.header_row:] if r and r[0] is not None]
    calc = pd.DataFrame(rows)
    calc["Period"] = pd.to_datetime(pd.to_numeric(calc["Period"]), unit="D", origin="1899-12-30")
    assert len(calc) == len(python) == last - first + 1
    merged = python.merge(calc, left_on=["item", "period"], right_on=["Item", "Period"], how="outer",
                          indicator=True)
    assert (merged["_merge"] == "both").all()
    assert pd.to_numeric(merged["Consensus"]).to_numpy() == pytest.approx(merged["consensus"].to_numpy(), abs=1e-9)
    assert merged["sales_override"].notna().sum() > 10  # the typed overrides were really compared
