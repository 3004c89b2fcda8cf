"""The one way an openpyxl workbook is saved: atomically, with the ribbon put back.

openpyxl (keep_vba=True) carries the customUI part over but writes ``_rels/.rels`` anew without its
relationship, so Excel would show no ribbon: every save re-adds it (see :mod:`sop_xl.workbook.ribbon`).
Callers hold the workbook's lock (:class:`sop_xl.workbook.locking.WorkbookLock`) while they save.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sop_xl.workbook import ribbon, vba
from sop_xl.workbook.safe_io import atomic_save


def save_workbook(wb, target, custom_ui: str | None, *, backup: bool) -> Path:
    """Write ``wb`` to ``target`` atomically, with ``custom_ui`` (the ribbon XML read from the file when it
    was opened; None: none) related again; ``backup`` keeps the previous file as ``<name>.backup<ext>``."""
    target = Path(target)

    def write(tmp: Path) -> None:
        if _sheets_without_code_name(wb):
            _save_with_document_modules(wb, tmp)
        else:
            wb.save(tmp)
        if custom_ui:
            ribbon.add_custom_ui(tmp, custom_ui)

    atomic_save(target, write, backup=backup)
    return target


def _sheets_without_code_name(wb) -> bool:
    """A macro workbook with sheets added since it was opened (a run's family pages)."""
    return getattr(wb, "vba_archive", None) is not None and any(
        not ws.sheet_properties.codeName for ws in wb.worksheets)


def _save_with_document_modules(wb, tmp: Path) -> None:
    """Save ``wb`` so that every sheet has a code name and the VBA project a document module for it, as
    Excel keeps them (a sheet without one makes Excel add its module on open; a module without its
    sheet is a damaged project). The project is rebuilt from its own modules; one holding user forms
    is left as it was."""
    with tempfile.TemporaryDirectory(prefix="sop-xl-vba-") as folder:
        work = Path(folder) / "book.xlsm"  # the VBA writer works on a file named .xlsm
        wb.save(work)
        modules = vba.project_modules(work)
        if modules is not None:
            vba.give_code_names(wb)
            wb.save(work)
            vba.rebuild_for_new_sheets(work, modules)
        shutil.copyfile(work, tmp)
