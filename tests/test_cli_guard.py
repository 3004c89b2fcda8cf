"""The command line never shows a traceback: OS errors are plain messages, anything unexpected is one
line plus a log file holding the traceback; the workbook is left as it was."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from sop_xl.cli import EXIT_ERROR, main

from .workbooks import demo_xlsx, digest


def test_an_unexpected_error_is_one_line_and_a_log_file(tmp_path, monkeypatch, capsys):
    path = demo_xlsx(tmp_path)
    before = digest(path)

    def broken(ctx):
        raise ZeroDivisionError("float division by zero")

    from sop_xl.plan import steps
    monkeypatch.setitem(steps.STEPS, "cost_rollup", (broken, steps.STEPS["cost_rollup"][1]))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR

    assert main(["run", str(path), "--steps", "cost_rollup", "--quiet"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("sop-xl: unexpected error (ZeroDivisionError: float division by zero)")
    log = re.search(r"details in (\S+\.log)$", err).group(1)
    text = Path(log).read_text(encoding="utf-8")
    assert "Traceback" in text and "in broken" in text and "ZeroDivisionError" in text
    assert digest(path) == before


def test_a_folder_given_as_the_output_is_a_plain_message(tmp_path, capsys):
    path = demo_xlsx(tmp_path)
    before = digest(path)
    out = tmp_path / "a_folder.xlsx"
    out.mkdir()
    code = main(["run", str(path), "--steps", "cost_rollup", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_ERROR
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("sop-xl: cannot use") and str(out) in err
    assert digest(path) == before


def test_bad_arguments_give_usage_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run"])
    assert stop.value.code == 2
    assert "usage: sop-xl run" in capsys.readouterr().err
