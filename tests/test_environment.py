"""A hostile environment: odd tables, damaged packages, file-system failures, bad arguments.

Every case runs the real CLI and asserts the exit code, a plain message (no traceback, no Python class
name where the user reads), and a workbook left exactly as it was.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sop_xl import contract as k
from sop_xl.cli import EXIT_OK, main

from . import workbooks as W

REPO = Path(__file__).resolve().parents[1]
WHOLE_COLUMN_ROWS = 1048576  # Excel's last row: Format as Table on a column selection reaches it

MEASURE = textwrap.dedent("""
    import resource, sys, time
    sys.path.insert(0, {repo!r})
    from sop_xl.cli import main
    t0 = time.perf_counter()
    code = main(["validate", sys.argv[1]])
    print(code, time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def _whole_columns(*tables: k.Table):
    def mutate(wb):
        for t in tables:
            min_col, min_row, max_col, _ = W.table_ref(wb, t)
            W._set_ref(wb[t.sheet], t, min_col, min_row, max_col, WHOLE_COLUMN_ROWS)
    return mutate


@pytest.mark.slow
def test_tables_over_whole_columns_validate_in_seconds_and_little_memory(tmp_path):
    """Trailing empty rows cost nothing: reading stops at the sheet's last used row."""
    path = W.demo_xlsx(tmp_path, _whole_columns(*k.INPUT_TABLES))
    script = tmp_path / "measure.py"
    script.write_text(MEASURE.format(repo=str(REPO)))
    out = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120)
    code, seconds, max_rss_kb = out.stdout.split()[-3:]
    assert int(code) == EXIT_OK, out.stderr
    assert float(seconds) <= 5.0
    assert int(max_rss_kb) <= 500 * 1024


def test_a_run_on_whole_column_tables_writes_real_rows(tmp_path):
    path = W.demo_xlsx(tmp_path, _whole_columns(k.ITEMS, k.HISTORY, k.FORECAST, k.LOG))
    assert main(["run", str(path), "--steps", "forecast", "--quiet"]) == EXIT_OK
    from openpyxl import load_workbook
    wb = load_workbook(path)
    _, min_row, _, max_row = W.table_ref(wb, k.FORECAST)
    assert max_row - min_row == 8 * 6  # 8 items x 6 months, not a million rows
    log = wb[k.LOG.sheet]
    assert any(log.cell(r, W.col_index(wb, k.LOG, "step")).value == "forecast"
               for r in range(min_row, log.max_row + 1))
