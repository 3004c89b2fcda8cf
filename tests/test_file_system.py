"""Hostile file systems: symlinks kept, read-only files respected, Excel's owner file honoured, damaged
lock files explained — each a plain message with its exit code, the workbook byte-identical."""
from __future__ import annotations

import json
import os
import socket

import pytest

from sop_xl.cli import EXIT_ERROR, EXIT_LOCKED, EXIT_OK, main
from sop_xl.workbook.locking import excel_owner_file, lock_path

from .workbooks import demo_xlsx, digest


def _run(path, capsys, *extra) -> tuple[int, str]:
    code = main(["run", str(path), "--steps", "cost_rollup", "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return code, err


def test_a_symlinked_workbook_stays_a_symlink_and_its_target_is_updated(tmp_path, capsys):
    store = tmp_path / "store"
    store.mkdir()
    real = demo_xlsx(store)
    link_dir = tmp_path / "desk"
    link_dir.mkdir()
    link = link_dir / "plan.xlsx"
    link.symlink_to(real)
    before = digest(real)
    code, err = _run(link, capsys)
    assert code == EXIT_OK, err
    assert link.is_symlink() and os.path.realpath(link) == str(real)
    assert digest(real) != before  # the plan was written into the file the link points to
    assert real.with_name(f"{real.stem}.backup{real.suffix}").exists()  # the backup beside the real file
    assert not list(link_dir.glob("*.tmp")) and sorted(p.name for p in link_dir.iterdir()) == ["plan.xlsx"]


def test_a_read_only_workbook_is_refused_and_left_alone(tmp_path, capsys):
    path = demo_xlsx(tmp_path)
    path.chmod(0o444)
    before = digest(path)
    code, err = _run(path, capsys)
    assert code == EXIT_ERROR
    assert "read-only" in err and path.name in err and len(err.splitlines()) == 1
    assert digest(path) == before
    path.chmod(0o644)


def test_a_workbook_open_in_excel_is_refused_with_exit_3(tmp_path, capsys):
    path = demo_xlsx(tmp_path)
    owner = excel_owner_file(path)
    owner.write_bytes(bytes([5]) + b"Alice" + b" " * 49 + "Alice".encode("utf-16-le"))  # as Excel writes it
    before = digest(path)
    code, err = _run(path, capsys)
    assert code == EXIT_LOCKED
    assert f"{path.name} is open in Excel (by Alice" in err and owner.name in err
    assert digest(path) == before


def test_a_folder_in_place_of_the_lock_file_is_explained(tmp_path, capsys):
    path = demo_xlsx(tmp_path)
    lock_path(path).mkdir()
    before = digest(path)
    code, err = _run(path, capsys)
    assert code == EXIT_LOCKED
    assert f"a folder named {lock_path(path).name}" in err
    assert digest(path) == before


@pytest.mark.parametrize("since", ["not a time", 1e300, None])
def test_a_lock_with_a_damaged_timestamp_still_names_its_owner(tmp_path, capsys, since):
    path = demo_xlsx(tmp_path)
    lock_path(path).write_text(json.dumps({"host": socket.gethostname() + "-elsewhere", "pid": 4242,
                                           "user": "bob", "since": since}))
    before = digest(path)
    code, err = _run(path, capsys)
    assert code == EXIT_LOCKED
    assert "being updated by bob" in err and "since an unknown time" in err
    assert digest(path) == before
