"""Real databases for the archive tests: a SQLite file, and a throwaway PostgreSQL cluster.

The cluster is created by initdb in a temporary folder, run by pg_ctl on a free port as an
unprivileged user (``postgres`` when the tests run as root, since PostgreSQL refuses to run as root),
with password logins over TCP so wrong credentials can be tested, and removed at the end of the
session. Without PostgreSQL the PostgreSQL cases skip, unless SOP_XL_REQUIRE_POSTGRES=1 (CI), where
they fail.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

PG_USER, PG_PASSWORD = "sopxl", "archive-test-pw"


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(reason: str):
    if os.environ.get("SOP_XL_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"SOP_XL_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


class Cluster:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="sop-xl-pg-"))
        self.data = self.folder / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            # initdb/postgres refuse root: run them as the unprivileged system user.
            runuser = shutil.which("runuser")
            if not runuser:
                raise RuntimeError("running as root and runuser is missing")
            self.as_user = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres", "postgres")

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(self.as_user + list(cmd), capture_output=True, text=True, timeout=120)
        if done.returncode:
            log = self.folder / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr or done.stdout}\n{tail}")

    def start(self) -> None:
        pwfile = self.folder / "pw"
        pwfile.write_text(PG_PASSWORD + "\n")
        if self.as_user:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_USER, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync")
        opts = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.folder / "log"),
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres", password: str = PG_PASSWORD) -> str:
        return f"postgresql+psycopg://{PG_USER}:{password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import sqlalchemy as sa

        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_cluster():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'sop-xl[postgres]')")
    bindir = _pg_bin()
    if bindir is None:
        _unavailable("PostgreSQL (initdb, pg_ctl) is not installed")
    cluster = Cluster(bindir)
    try:
        cluster.start()
    except Exception as exc:  # noqa: BLE001 - report why the cluster did not start
        shutil.rmtree(cluster.folder, ignore_errors=True)
        _unavailable(f"a throwaway PostgreSQL cluster did not start: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request, tmp_path):
    """A fresh, empty archive database: a SQLite file, or a new database on the throwaway cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'plan.archive.sqlite'}"
    return request.getfixturevalue("postgres_cluster").new_database()
