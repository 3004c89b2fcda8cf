"""Reliability: crash-safe saves, one writer at a time, and workbooks that arrive from strangers.

Child processes (the venv's python) open a demo workbook with FileBook and are killed with SIGKILL
in the middle of a save or while holding the lock; the workbook must survive whole.

Leftovers: a save killed mid-way can leave temp files named ``.<stem>.XXXXXXXX<ext>.tmp`` beside the
workbook (and the lock file of the dead process). The next writer that opens the workbook clears
both: the stale lock (its process is gone) and then, holding the lock, the stale temp files.
"""
from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from sop_xl import contract as k
from sop_xl.cli import EXIT_ERROR, EXIT_INVALID, EXIT_LOCKED, EXIT_OK, main
from sop_xl.workbook.locking import lock_path
from sop_xl.workbook.safe_io import UnsafeWorkbook, backup_path, check_package, stale_temps

from . import workbooks as W

REPO = Path(__file__).resolve().parents[1]
POSIX = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fork semantics")

CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    import sop_xl.workbook.safe_io as sio
    from sop_xl.workbook.file_book import FileBook

    path, stage, ready = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

    def signal_ready_and_hang():
        ready.write_text(str(os.getpid()))
        time.sleep(120)

    book = FileBook(path)
    book.wb["Items"]["B5"].value = "NEW VERSION"
    if stage == "hold":                     # hold the lock, do nothing
        signal_ready_and_hang()
    elif stage == "writing":                # killed while the temp file is half written
        real_save = book.wb.save
        def slow_save(tmp):
            real_save(tmp)
            data = Path(tmp).read_bytes()
            Path(tmp).write_bytes(data[: len(data) // 2])
            signal_ready_and_hang()
        book.wb.save = slow_save
    elif stage == "fsync":                  # killed with a complete temp file, before the swap
        def slow_fsync(fd):
            signal_ready_and_hang()
        sio.os.fsync = slow_fsync
    elif stage == "backup":                 # killed while copying the backup
        def slow_copy(src, dst):
            Path(dst).write_bytes(Path(src).read_bytes()[:1000])
            signal_ready_and_hang()
        sio.shutil.copy2 = slow_copy
    elif stage == "loop":                   # saving over and over; killed at a random moment
        i = 0
        while True:
            book.wb["Items"]["B5"].value = f"v{{i}}"
            book.save()
            if i == 0:
                ready.write_text(str(os.getpid()))
            i += 1
    book.save()
""").format(repo=str(REPO))


def _start(path: Path, stage: str) -> tuple[subprocess.Popen, Path]:
    ready = path.with_name(f"ready-{stage}")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), stage, str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, ready


def _wait_ready(proc: subprocess.Popen, ready: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("child never got ready")
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)  # reaped: a zombie would still count as alive for the lock
    proc.stdout.close()
    proc.stderr.close()


def _items_b5(path: Path):
    wb = load_workbook(path, read_only=True)
    try:
        return wb["Items"]["B5"].value
    finally:
        wb.close()


# ------------------------------------------------------------------------------------ crash-safe saves
@POSIX
@pytest.mark.slow  # four child processes saving workbooks, killed mid-save
def test_save_killed_at_any_stage_leaves_the_workbook_whole(tmp_path):
    stages = ("writing", "fsync", "backup", "loop")
    books, children = {}, {}
    for stage in stages:  # all children at once: their start-up overlaps
        folder = tmp_path / stage
        folder.mkdir()
        books[stage] = W.demo_xlsx(folder)
        if stage == "backup":  # an earlier backup exists: a killed backup copy must not damage it
            backup_path(books[stage]).write_bytes(books[stage].read_bytes())
        children[stage] = _start(books[stage], stage)
    original = {s: W.digest(p) for s, p in books.items()}
    old_value = _items_b5(books["writing"])
    try:
        for stage in stages:
            proc, ready = children[stage]
            _wait_ready(proc, ready)
            if stage == "loop":
                time.sleep(0.4)  # somewhere inside one of the next saves
            _kill(proc)
    finally:
        for proc, _ in children.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    for stage, path in books.items():
        value = _items_b5(path)  # opens whole with openpyxl
        if stage == "loop":
            assert value == old_value or re.fullmatch(r"v\d+", value), value
        else:
            assert value == old_value and W.digest(path) == original[stage], stage
        bak = backup_path(path)
        if bak.exists():
            _items_b5(bak)  # a backup, if there is one, is a whole workbook too
        leftovers = W.strays(path.parent, path) - {bak.name, lock_path(path).name}
        assert all(W.TMP_PATTERN.match(name) for name in leftovers), leftovers
        assert {p.name for p in stale_temps(path)} == leftovers
        if stage in ("writing", "fsync"):
            assert leftovers, "the killed save's temp file should still be there"
        assert lock_path(path).exists()  # the dead writer's lock

    # The next writer clears the stale lock and the temp files, and its run succeeds.
    path = books["writing"]
    assert main(["run", str(path), "--steps", "cost_rollup", "--quiet"]) == EXIT_OK
    assert W.strays(path.parent, path) == {backup_path(path).name}
    assert _items_b5(path) == old_value
    assert load_workbook(path, read_only=True)["CostRollup"]["A5"].value is not None


def test_atomic_save_failure_keeps_the_original_and_cleans_up(tmp_path):
    from sop_xl.workbook.safe_io import atomic_save

    target = tmp_path / "book.xlsx"
    target.write_bytes(b"old")

    def broken(tmp: Path):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_save(target, broken)
    assert target.read_bytes() == b"old"
    assert W.folder_listing(tmp_path) == {"book.xlsx"}

    atomic_save(target, lambda tmp: tmp.write_bytes(b"new"))
    assert target.read_bytes() == b"new" and backup_path(target).read_bytes() == b"old"
    assert W.folder_listing(tmp_path) == {"book.xlsx", backup_path(target).name}


# ------------------------------------------------------------------------------------ one writer at a time
@POSIX
def test_a_second_run_is_refused_while_locked_then_a_dead_owner_is_cleared(tmp_path, capsys):
    path = W.demo_xlsx(tmp_path)
    proc, ready = _start(path, "hold")
    try:
        _wait_ready(proc, ready)
        before = W.digest(path)
        capsys.readouterr()
        assert main(["run", str(path), "--steps", "cost_rollup", "--quiet"]) == EXIT_LOCKED
        err = capsys.readouterr().err
        from sop_xl.plan.runlog import current_user

        assert f"{path.name} is being updated by {current_user()} " in err
        assert f"process {proc.pid} on " in err and "Wait for that run to finish" in err
        assert W.digest(path) == before
        # Reading is not writing: validate works while someone else holds the lock.
        assert main(["validate", str(path)]) == EXIT_OK
    finally:
        _kill(proc)
    assert lock_path(path).exists()  # SIGKILL: the owner could not clean up
    capsys.readouterr()
    assert main(["run", str(path), "--steps", "cost_rollup", "--quiet"]) == EXIT_OK, capsys.readouterr().err
    assert not lock_path(path).exists()
    assert W.strays(tmp_path, path) == {backup_path(path).name}


def test_a_lock_held_by_another_host_is_not_broken(tmp_path, capsys):
    import json

    path = W.demo_xlsx(tmp_path)
    lock_path(path).write_text(json.dumps({"host": "far-away-pc", "pid": 1, "user": "anna", "since": 0}))
    assert main(["run", str(path), "--steps", "cost_rollup", "--quiet"]) == EXIT_LOCKED
    err = capsys.readouterr().err
    assert "anna" in err and "far-away-pc" in err and lock_path(path).name in err
    assert lock_path(path).exists()


# ------------------------------------------------------------------------------------ untrusted workbooks
def test_openpyxl_parses_with_defusedxml():
    import defusedxml.ElementTree
    import openpyxl.xml
    import openpyxl.xml.functions as f

    assert openpyxl.xml.DEFUSEDXML is True
    assert f.iterparse is defusedxml.ElementTree.iterparse


LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                    for i in range(1, 10))
          + "]>")


@pytest.mark.parametrize("command", ["validate", "run"])
def test_billion_laughs_is_refused_quickly(tmp_path, capsys, command):
    path = W.demo_xlsx(tmp_path)

    def bomb(xml: str) -> str:
        xml = re.sub(r"^<\?xml[^>]*\?>", "", xml)
        return LAUGHS + xml.replace("<t>Items</t>", "<t>&lol9;</t>", 1)

    W.patch_sheet_xml(path, "Items", bomb)
    before = W.digest(path)
    started = time.monotonic()
    code = main([command, str(path)] + (["--steps", "cost_rollup", "--quiet"] if command == "run" else []))
    err = capsys.readouterr().err
    assert code == EXIT_ERROR, err
    assert time.monotonic() - started < 20
    assert "not allowed in a workbook" in err and "refusing to open it" in err and "Traceback" not in err
    assert W.digest(path) == before and W.strays(tmp_path, path) == set()


def _with_member(path: Path, name: str, data: bytes) -> None:
    W.rewrite_members(path, lambda n, d: None)  # normalise, then append
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)


def _declare_size(path: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size a zip declares for ``member`` (local and central headers)."""
    raw = bytearray(path.read_bytes())
    name = member.encode()
    for sig, size_at, name_len_at, head in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        start = 0
        while (i := raw.find(sig, start)) >= 0:
            n = struct.unpack_from("<H", raw, i + name_len_at)[0]
            if raw[i + head:i + head + n] == name:
                struct.pack_into("<I", raw, i + size_at, size)
            start = i + 4
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("kind", ["ratio", "declared-size"])
def test_decompression_bomb_is_refused_before_reading(tmp_path, capsys, monkeypatch, kind):
    import sop_xl.workbook.file_book as fb

    path = W.demo_xlsx(tmp_path)
    if kind == "ratio":
        _with_member(path, "xl/media/padding.bin", b"\0" * (20 * 1024 * 1024))  # ~20 kB compressed
    else:
        _with_member(path, "xl/media/padding.bin", b"\0" * 1024)
        _declare_size(path, "xl/media/padding.bin", 3_000_000_000)
    with pytest.raises(UnsafeWorkbook, match="decompression bomb"):
        check_package(path)

    def must_not_parse(*a, **kw):
        raise AssertionError("the package was parsed before it was checked")

    monkeypatch.setattr(fb, "load_workbook", must_not_parse)
    monkeypatch.setattr(fb.ribbon, "read_custom_ui", must_not_parse)
    before = W.digest(path)
    for argv in (["validate", str(path)], ["run", str(path), "--quiet"]):
        assert main(argv) == EXIT_ERROR
        err = capsys.readouterr().err
        assert "refusing to open a possible decompression bomb" in err and "padding.bin" in err
    assert W.digest(path) == before and W.strays(tmp_path, path) == set()


@pytest.mark.parametrize("content", [b"", b"hello", b"Item;Qty\nA;1\n", b"<html><body>x</body></html>",
                                     b"%PDF-1.7\n", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504],
                         ids=["empty", "text", "csv", "html", "pdf", "old-xls"])
def test_a_file_that_is_not_a_zip_is_refused(tmp_path, capsys, content):
    path = tmp_path / "book.xlsx"
    path.write_bytes(content)
    assert main(["run", str(path), "--quiet"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "not an Excel workbook (.xlsx/.xlsm): not a zip package" in err and "Traceback" not in err
    assert path.read_bytes() == content and W.folder_listing(tmp_path) == {"book.xlsx"}


def test_a_damaged_sheet_is_refused_with_a_plain_message(tmp_path, capsys):
    """A number cell holding 'NaN' (some writers do that) makes openpyxl raise ValueError while loading."""
    path = W.demo_xlsx(tmp_path)
    _, ref = W.coordinate(k.ACTUALS, 0, "qty")
    W.set_cells(path, k.ACTUALS.sheet, {ref: W.Xml(' t="n"', "<v>NaN</v>")})
    for argv in (["validate", str(path)], ["run", str(path), "--steps", "forecast", "--quiet"]):
        assert main(argv) == EXIT_ERROR
        err = capsys.readouterr().err
        assert "is damaged or not a valid Excel workbook" in err and "Traceback" not in err
    assert W.strays(tmp_path, path) == set()


PAYLOAD = "__import__('os').system('touch {marker}')"


def test_formula_in_an_input_cell_is_never_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = W.demo_xlsx(tmp_path)
    _, ref = W.coordinate(k.ITEMS, 0, "description")
    _, setting = W.setting_cell("Currency")
    W.set_cells(path, k.ITEMS.sheet, {ref: "=" + PAYLOAD.format(marker=marker)})
    W.set_cells(path, k.SETTINGS_SHEET, {setting: "=" + PAYLOAD.format(marker=marker)})
    assert main(["validate", str(path)]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "row 5, column Description: holds the formula =__import__" in err
    assert "column B (Currency, named cell Currency): holds the formula =__import__" in err
    assert main(["run", str(path), "--steps", "cost_rollup", "--quiet"]) == EXIT_INVALID
    assert not marker.exists()


def test_code_as_text_stays_text(tmp_path, capsys):
    marker = tmp_path / "pwned"
    text = PAYLOAD.format(marker=marker)
    path = W.demo_xlsx(tmp_path)
    _, ref = W.coordinate(k.ITEMS, 0, "description")
    W.set_cells(path, k.ITEMS.sheet, {ref: text})
    _, routing_ref = W.coordinate(k.ROUTING, 0, "item")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(path.read_bytes())
    W.set_cells(bad, k.ROUTING.sheet, {routing_ref: text})

    assert main(["run", str(path), "--steps", "cost_rollup", "--quiet"]) == EXIT_OK
    assert load_workbook(path, read_only=True)["Items"][ref].value == text  # kept, as text
    assert main(["run", str(bad), "--steps", "balance", "--quiet"]) == EXIT_INVALID
    assert "is not in Items (tblItems)" in capsys.readouterr().err
    assert not marker.exists()


VBA = REPO / "sop_xl" / "template" / "vba"


def _vba_statements(source: str):
    """Logical VBA lines: continuations joined, comments dropped."""
    logical = re.sub(r" _\r?\n\s*", " ", source)
    for line in logical.splitlines():
        code, in_string = [], False
        for ch in line:
            if ch == '"':
                in_string = not in_string
            if ch == "'" and not in_string:
                break
            code.append(ch)
        yield "".join(code).strip()


def test_every_runpython_call_passes_one_constant_string():
    files = sorted(VBA.glob("*.bas")) if VBA.is_dir() else []
    if not files:
        pytest.skip("no VBA sources yet")
    import sop_xl.macros as macros

    calls = []
    for f in files:
        for stmt in _vba_statements(f.read_text(encoding="utf-8-sig")):
            if re.search(r"\bRunPython\b", stmt, re.I):
                calls.append((f.name, stmt))
    assert calls, "no RunPython calls found"
    literal = re.compile(r'^(?:Call\s+)?RunPython\s*\(?\s*"((?:[^"]|"")*)"\s*\)?$', re.I)
    for name, stmt in calls:
        m = literal.match(stmt)
        assert m, f"{name}: RunPython must be given one constant string literal: {stmt}"
        code = m.group(1)
        call = re.fullmatch(r"import sop_xl\.macros as m; m\.([a-z_]+)\(\)", code)
        assert call, f"{name}: unexpected Python in RunPython: {code}"
        assert callable(getattr(macros, call.group(1), None)), f"{name}: sop_xl.macros has no {call.group(1)}()"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_atomic_save_keeps_the_file_permissions(tmp_path):
    from sop_xl.workbook.safe_io import atomic_save

    shared = tmp_path / "shared.xlsx"
    shared.write_bytes(b"old")
    shared.chmod(0o664)
    atomic_save(shared, lambda tmp: tmp.write_bytes(b"new"))
    assert shared.stat().st_mode & 0o777 == 0o664  # not mkstemp's 0600
    fresh = tmp_path / "fresh.xlsx"
    atomic_save(fresh, lambda tmp: tmp.write_bytes(b"new"))
    umask = os.umask(0o022)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask


def test_lock_edge_cases(tmp_path, monkeypatch):
    """A lock file still being written is not junk; junk and a reused pid are stale."""
    import json

    from sop_xl.workbook import locking
    from sop_xl.workbook.locking import WorkbookLock, WorkbookLocked

    book = tmp_path / "b.xlsx"
    lock = lock_path(book)
    monkeypatch.setattr(locking, "JUNK_GRACE_SECONDS", 0.5)
    import threading

    lock.write_text("")  # another process between creating the file and writing its name ...
    writer = threading.Timer(0.2, lambda: lock.write_text(json.dumps(
        {"host": "other-pc", "pid": 1, "user": "bob", "since": time.time()})))
    writer.start()
    with pytest.raises(WorkbookLocked, match="bob"):  # ... is waited for, not broken
        WorkbookLock(book).acquire()
    writer.join()
    lock.write_text("")  # stays unreadable past the grace period: junk
    with WorkbookLock(book) as held:
        assert held.held and json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
    lock.write_text("[1, 2]")
    os.utime(lock, (time.time() - 10, time.time() - 10))
    with WorkbookLock(book):
        pass
    if locking._start_time(os.getpid()) is not None:  # Linux: our pid, but the lock predates us
        import socket
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "user": "x",
                                    "since": time.time() - 3 * 86400}))
        with WorkbookLock(book):
            pass
        assert not lock.exists()


@pytest.mark.parametrize("members", [{"hello.txt": "hi"}, {"[Content_Types].xml": "<Types/>"}],
                         ids=["any-zip", "no-workbook-part"])
def test_a_zip_that_is_not_a_workbook_is_refused(tmp_path, capsys, members):
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    assert main(["run", str(path), "--quiet"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "is damaged or not a valid Excel workbook" in err and "Traceback" not in err
    assert W.folder_listing(tmp_path) == {"book.xlsx"}
