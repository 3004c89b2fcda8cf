"""Fill a copy of the template with the demo company."""
from __future__ import annotations

import shutil
from pathlib import Path

from sop_xl import contract as k
from sop_xl.workbook import open_file
from sop_xl.demo.company import make_demo
from sop_xl.plan.pipeline import rows_for
from sop_xl.template.builder import template_path


def fill_workbook(book, frames: dict, settings: dict) -> None:
    """Write input frames (contract field names) and settings into an open workbook adapter."""
    for name, frame in frames.items():
        table = k.TABLES[name]
        book.write_table(table, rows_for(table, frame, table.header_row + 1, table.first_col))
    for name, value in settings.items():
        book.write_named(name, value)


def make_demo_workbook(out: Path, seed: int = 7) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.copy")
    shutil.copyfile(template_path(), tmp)
    tmp.replace(out)
    frames, settings = make_demo(seed)
    with open_file(out) as book:
        fill_workbook(book, frames, settings)
        book.save()
    return out
