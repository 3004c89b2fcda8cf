"""Permissions the file system enforces: a read-only folder, a workbook one may not read, a folder one may
not enter. Root ignores permission bits through two capabilities (DAC override and DAC read-search), so
when the tests run as root the CLI runs as root without them (setpriv drops them from the bounding set):
the bits then bind it as they bind any owner, and the checkout stays readable wherever it lies. Each case:
a plain one-line message naming the path, the right exit code, the workbook byte-identical and nothing
left beside it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .workbooks import demo_xlsx, digest, folder_listing

REPO = Path(__file__).resolve().parents[1]
SETPRIV = shutil.which("setpriv")

pytestmark = pytest.mark.skipif(os.geteuid() == 0 and SETPRIV is None,
                                reason="running as root without setpriv (util-linux): permissions are not enforced")


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sop_xl", *args]
    if os.geteuid() == 0:
        cmd = [SETPRIV, "--bounding-set=-dac_override,-dac_read_search", *cmd]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture
def shared(tmp_path):
    """A folder of the test's own; permissions given back afterwards so that it can be cleaned up."""
    folder = tmp_path / "perm"
    folder.mkdir()
    yield folder
    for p in [folder, *folder.rglob("*")]:
        p.chmod(0o755) if p.is_dir() else p.chmod(0o644)


def _plain(err: str, path: Path) -> None:
    assert "Traceback" not in err and "unexpected error" not in err, err
    assert len(err.strip().splitlines()) == 1 and str(path.name) in err, err


def test_a_workbook_in_a_read_only_folder_is_refused_plainly_and_runs_into_a_copy_elsewhere(shared):
    inbox = shared / "share"
    inbox.mkdir()
    path = demo_xlsx(inbox)
    # the file itself is writable: the folder is what is not
    inbox.chmod(0o555)
    before, listing = digest(path), folder_listing(inbox)
    out = _cli("run", str(path), "--steps", "cost_rollup", "--quiet")
    assert out.returncode == 1, out.stderr
    _plain(out.stderr, path)
    assert "Permission denied" in out.stderr
    assert digest(path) == before and folder_listing(inbox) == listing
    # --out elsewhere only reads the workbook: it works from a read-only share
    mine = shared / "mine"
    mine.mkdir()
    out = _cli("run", str(path), "--steps", "cost_rollup", "--quiet", "--out", str(mine / "plan.xlsx"))
    assert out.returncode == 0, out.stderr
    assert (mine / "plan.xlsx").exists() and digest(path) == before and folder_listing(inbox) == listing


def test_a_read_only_workbook_runs_into_a_copy_with_out(shared):
    path = demo_xlsx(shared)
    path.chmod(0o444)
    before = digest(path)
    out = _cli("run", str(path), "--steps", "cost_rollup", "--quiet")
    assert out.returncode == 1 and "read-only" in out.stderr, out.stderr
    out = _cli("run", str(path), "--steps", "cost_rollup", "--quiet", "--out", str(shared / "copy.xlsx"))
    assert out.returncode == 0, out.stderr
    assert digest(path) == before


@pytest.mark.parametrize("command", [["validate"], ["run", "--steps", "cost_rollup"], ["upgrade"]])
def test_a_workbook_one_may_not_read_is_a_plain_error(shared, command):
    path = demo_xlsx(shared)
    path.chmod(0o200)  # write-only: its owner, who runs the CLI, may not read it
    listing = folder_listing(shared)
    out = _cli(command[0], str(path), *command[1:])
    assert out.returncode == 1, (out.returncode, out.stderr)
    _plain(out.stderr, path)
    path.chmod(0o644)
    assert folder_listing(shared) == listing


def test_a_folder_one_may_not_enter_is_a_plain_error(shared):
    closed = shared / "closed"
    closed.mkdir()
    path = demo_xlsx(closed)
    closed.chmod(0o000)
    out = _cli("validate", str(path))
    assert out.returncode == 1, out.stderr
    _plain(out.stderr, path)
