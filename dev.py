#!/usr/bin/env python3
"""Set-up-on-first-use entry point: `python3 dev.py demo` and `python3 dev.py test`.

Creates .venv beside this file on first use (and again when pyproject.toml changes), installs
sop-xl with its test extras into it, then runs the command inside it. Needs only Python 3.11+.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".sop-xl-installed"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"sop-xl needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text() == want:
        return
    if not PY.exists():
        print(f"Creating {VENV} …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing sop-xl and its dependencies (first run only, a few minutes) …", flush=True)
    subprocess.check_call([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    subprocess.check_call([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test,bench]"])
    STAMP.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "sop-xl", "bench"):
        print(__doc__)
        print("usage: python3 dev.py demo [sop-xl demo options] | test [pytest options] | "
              "sop-xl ARGS | bench SCRIPT [ARGS]")
        return 2
    ensure_venv()
    cmd, rest = argv[0], argv[1:]
    if cmd == "demo":
        return subprocess.call([str(PY), "-m", "sop_xl", "demo", *rest], cwd=ROOT)
    if cmd == "sop-xl":
        return subprocess.call([str(PY), "-m", "sop_xl", *rest])
    if cmd == "bench":
        return subprocess.call([str(PY), *rest], cwd=ROOT)
    return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
