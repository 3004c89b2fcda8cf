"""The one way an openpyxl workbook is saved: atomically, with the ribbon put back.

openpyxl (keep_vba=True) carries the customUI part over but writes ``_rels/.rels`` anew without its
relationship, so Excel would show no ribbon: every save re-adds it (see :mod:`sop_xl.workbook.ribbon`).
Callers hold the workbook's lock (:class:`sop_xl.workbook.locking.WorkbookLock`) while they save.
"""
from __future__ import annotations

from pathlib import Path

from sop_xl.workbook import ribbon
from sop_xl.workbook.safe_io import atomic_save


def save_workbook(wb, target, custom_ui: str | None, *, backup: bool) -> Path:
    """Write ``wb`` to ``target`` atomically, with ``custom_ui`` (the ribbon XML read from the file when it
    was opened; None: none) related again; ``backup`` keeps the previous file as ``<name>.backup<ext>``."""
    target = Path(target)

    def write(tmp: Path) -> None:
        wb.save(tmp)
        if custom_ui:
            ribbon.add_custom_ui(tmp, custom_ui)

    atomic_save(target, write, backup=backup)
    return target
