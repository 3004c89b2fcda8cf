"""`sop-xl forecast --engine ray|spark`: the local partition function through Fugue, the local numbers."""
from __future__ import annotations

import socket
import sys
import tempfile
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from bench.scale import synthetic_series
from sop_xl.cli import main
from sop_xl.scale import series_forecast as sf
from sop_xl.scale.source import Columns
from tests.test_scale_forecast import VALUES, assert_remote_equals_local

MAPPING = ["--item", "MATNR", "--period", "Month", "--qty", "Units", "--horizon", "12", "--quiet"]


@pytest.fixture(scope="module")
def sales(tmp_path_factory):
    """300 series (ERP column names) as one CSV and as Parquet parts cut across series, and the local
    forecast of them: the reference every engine must reproduce."""
    folder = tmp_path_factory.mktemp("sales")
    data = synthetic_series(300, months=36, seed=3, edge_cases=True).rename(
        columns={"item": "MATNR", "period": "Month", "qty": "Units"})
    data.to_csv(folder / "sales.csv", index=False)
    parts = folder / "parts"
    parts.mkdir()
    shuffled = data.sample(frac=1.0, random_state=1)
    for i in range(3):
        shuffled.iloc[i::3].to_parquet(parts / f"part-{i}.parquet", index=False)
    assert main(["forecast", str(folder / "sales.csv"), "--out", str(folder / "local.parquet"),
                 "--partition-series", "300", *MAPPING]) == 0
    return folder, pd.read_parquet(folder / "local.parquet")


def _same_as_local(local: pd.DataFrame, other: pd.DataFrame) -> None:
    assert other["item"].nunique() == 300 and len(other) == len(local) == 300 * 12
    assert other[VALUES].dtypes.eq(np.float64).all()
    pd.testing.assert_frame_equal(local[["item", "period", "model", "demand_class", "n_obs"]],
                                  other[["item", "period", "model", "demand_class", "n_obs"]], check_dtype=False)
    assert np.abs(local[VALUES].to_numpy() - other[VALUES].to_numpy()).max() <= 1e-9
    assert {"ensemble", "Zero", "Constant", "WindowAverage"} <= set(other["model"])


@pytest.mark.slow  # starts a local Ray instance
def test_ray_gives_the_local_forecasts_and_models(sales):
    pytest.importorskip("ray")
    folder, local = sales
    assert main(["forecast", str(folder / "parts"), "--engine", "ray", "--workers", "2", "--partitions", "5",
                 "--out", str(folder / "ray.parquet"), *MAPPING]) == 0
    ray_out = pd.read_parquet(folder / "ray.parquet")
    assert ray_out["period"].dtype == "datetime64[ns]"
    _same_as_local(local, ray_out)
    import ray
    assert not ray.is_initialized()  # the instance sop-xl started is stopped


@pytest.mark.slow  # starts a local Spark (a JVM)
def test_spark_gives_the_local_forecasts_and_models(sales):
    pytest.importorskip("pyspark")
    folder, local = sales
    # CSV out: the periods are written as dates and must be the local ones (no time-zone shift)
    assert main(["forecast", str(folder / "sales.csv"), "--engine", "spark", "--workers", "2",
                 "--partitions", "5", "--out", str(folder / "spark.csv"), *MAPPING]) == 0
    _same_as_local(local, pd.read_csv(folder / "spark.csv", parse_dates=["period"]))
    # a folder of parts: written by the workers, one per partition
    assert main(["forecast", str(folder / "parts"), "--engine", "spark", "--workers", "2", "--partitions", "4",
                 "--out", str(folder / "spark_parts"), *MAPPING]) == 0
    written = sorted((folder / "spark_parts").glob("part-*.parquet"))
    assert 1 <= len(written) <= 4
    _same_as_local(local, sf.sort_output(pd.concat(map(pd.read_parquet, written), ignore_index=True)))
    from pyspark.sql import SparkSession
    assert SparkSession.getActiveSession() is None  # the local Spark sop-xl started is stopped


@pytest.mark.parametrize("engine, module, pip", [("ray", "ray", "sop-xl[ray]"), ("spark", "pyspark", "sop-xl[spark]")])
def test_a_missing_extra_is_one_line_naming_the_pip_command(engine, module, pip, tmp_path, monkeypatch, capsys):
    synthetic_series(3, months=24).to_csv(tmp_path / "sales.csv", index=False)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    for name in [m for m in sys.modules if m.startswith(("fugue_ray", "fugue_spark"))]:
        monkeypatch.delitem(sys.modules, name)
    assert main(["forecast", str(tmp_path / "sales.csv"), "--engine", engine, "--out", str(tmp_path / "o.csv"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install '{pip}'" in err, err
    assert not (tmp_path / "o.csv").exists()


def test_spark_without_java_is_one_line(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pyspark")
    from sop_xl.scale import fugue_engines as fe

    synthetic_series(3, months=24).to_csv(tmp_path / "sales.csv", index=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(fe.shutil, "which", lambda name: None)  # no java on the PATH
    assert main(["forecast", str(tmp_path / "sales.csv"), "--engine", "spark", "--out", str(tmp_path / "o.csv"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--engine spark needs a Java runtime (17 or 21)" in err, err


def test_the_core_imports_neither_ray_nor_spark():
    """The extras stay optional: the CLI and the engines' module load without touching them."""
    import subprocess

    code = ("import sys, sop_xl.cli, sop_xl.scale.fugue_engines; "
            "print(sorted(m for m in ('ray', 'pyspark', 'fugue_ray', 'fugue_spark') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.mark.parametrize("engine, option, url", [("ray", "--address", "ray://127.0.0.1:{port}"),
                                                 ("spark", "--master", "spark://127.0.0.1:{port}")])
def test_an_unreachable_cluster_is_one_line(engine, option, url, tmp_path, capsys):
    pytest.importorskip("ray" if engine == "ray" else "pyspark")
    synthetic_series(3, months=24).to_csv(tmp_path / "sales.csv", index=False)
    address = url.format(port=_closed_port())
    t0 = time.monotonic()
    assert main(["forecast", str(tmp_path / "sales.csv"), "--engine", engine, option, address,
                 "--out", str(tmp_path / "o.csv"), "--quiet"]) == 1
    assert time.monotonic() - t0 < 15
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot reach the {'Ray cluster' if engine == 'ray' else 'Spark master'} at {address}" in err, err


# A failing partition: the workers are other processes, so the engine is broken in them at start-up
# (Ray: a worker set-up hook; Spark: a sitecustomize on the Python workers' path).
BROKEN = textwrap.dedent("""
    import sop_xl.engine.forecast as engine
    _real = engine.forecast
    def _broken(history, **kw):
        if "SKU000004" in set(history["unique_id"]):
            raise ValueError("no convergence")
        return _real(history, **kw)
    engine.forecast = _broken
""")



def _bad_period_is_one_line(tmp_path, engine):
    """A period that is not a date, found by a worker: the local message, not the engine's traceback."""
    from sop_xl.scale import ScaleError
    from sop_xl.scale import fugue_engines as fe

    (tmp_path / "bad.csv").write_text("item,period,qty\nA,2025-01-01,3\nA,someday,4\n")
    with pytest.raises(ScaleError) as caught:
        fe.run(tmp_path / "bad.csv", Columns(), sf.Settings(horizon=3, model="Naive"), engine, slots=1, n_parts=2)
    assert str(caught.value) == f"{tmp_path / 'bad.csv'}: 1 period value(s) are not dates, e.g. 'someday' for item A"


@pytest.mark.slow
def test_a_failing_partition_on_ray_is_named_with_its_series(tmp_path):
    ray = pytest.importorskip("ray")
    from fugue_ray import RayExecutionEngine

    from sop_xl.scale import fugue_engines as fe

    def break_the_engine():  # nested: Ray ships it by value, the workers need not import this test module
        exec(BROKEN, {})

    synthetic_series(12, months=24).to_csv(tmp_path / "sales.csv", index=False)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": break_the_engine})
    try:
        with pytest.raises(sf.PartitionFailed, match=r"^partition \d \(\d series: .*SKU000004.*\) failed: "
                                                     r"ValueError: no convergence$"):
            fe.run(tmp_path / "sales.csv", Columns(), sf.Settings(horizon=3, model="Naive"), RayExecutionEngine(),
                   slots=1, n_parts=3)
        _bad_period_is_one_line(tmp_path, RayExecutionEngine())
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_a_failing_partition_on_spark_is_named_with_its_series(tmp_path, monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    from fugue_spark import SparkExecutionEngine
    from pyspark.sql import SparkSession

    from sop_xl.scale import fugue_engines as fe

    synthetic_series(12, months=24).to_csv(tmp_path / "sales.csv", index=False)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BROKEN)
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.executorEnv.PYTHONPATH", f"{hook}{os.pathsep}{root}").getOrCreate())
    try:
        with pytest.raises(sf.PartitionFailed, match=r"^partition \d \(\d series: .*SKU000004.*\) failed: "
                                                     r"ValueError: no convergence$"):
            fe.run(tmp_path / "sales.csv", Columns(), sf.Settings(horizon=3, model="Naive"),
                   SparkExecutionEngine(spark), slots=1, n_parts=3)
        _bad_period_is_one_line(tmp_path, SparkExecutionEngine(spark))
    finally:
        spark.stop()


@pytest.mark.slow
def test_an_existing_spark_cluster_gives_the_local_numbers_and_keeps_running(tmp_path):
    """`--master spark://…` against a standalone master and worker someone else started (as
    `start-master.sh` / `start-worker.sh` run them): the local numbers, and the cluster is left running."""
    pyspark = pytest.importorskip("pyspark")
    import os
    import subprocess
    from pathlib import Path

    data = synthetic_series(40, months=36, seed=5, edge_cases=True)
    data.to_csv(tmp_path / "sales.csv", index=False)
    spark_class = str(Path(pyspark.__file__).parent / "bin" / "spark-class")
    port = _closed_port()
    master = f"spark://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(tmp_path), "SPARK_WORKER_DIR": str(tmp_path / "work")}
    started = [subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                 "--port", str(port), "--webui-port", str(_closed_port())], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 120
        while True:  # the master listens once its JVM is up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the Spark master did not start"
                time.sleep(1)
        started.append(subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker", master, "--cores", "1",
                                         "--memory", "1g", "--webui-port", str(_closed_port())], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        assert_remote_equals_local(tmp_path, "--engine", "spark", "--master", master)
        time.sleep(0.5)
        assert all(p.poll() is None for p in started)  # still running: not sop-xl's to stop
    finally:
        for p in reversed(started):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_an_existing_ray_cluster_gives_the_local_numbers_and_keeps_running(tmp_path):
    """`--address host:port` against a Ray head someone else started (`ray start --head --block`, a
    process of this test, so stopping it stops its raylet and workers): the local numbers, and the
    cluster is left running."""
    pytest.importorskip("ray")
    import os
    import subprocess
    from pathlib import Path

    data = synthetic_series(40, months=36, seed=5, edge_cases=True)
    data.to_csv(tmp_path / "sales.csv", index=False)
    port = _closed_port()
    # Ray's token authentication, as a cluster would run it: the head and sop-xl share the token (with
    # an explicit address Ray sends one only when RAY_AUTH_MODE=token says so). Ray reads these when
    # it starts, so sop-xl runs as its own process, as a user runs it.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(32).hex()}
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                             "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
                             "--include-dashboard", "false"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:  # the head's GCS listens on --port once it is up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not start"
                time.sleep(1)
        args = ["--horizon", "6", "--quiet"]
        assert main(["forecast", str(tmp_path / "sales.csv"), "--out", str(tmp_path / "local.csv"), *args]) == 0
        done = subprocess.run([sys.executable, "-m", "sop_xl", "forecast", str(tmp_path / "sales.csv"), "--engine",
                               "ray", "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "remote.csv"), *args],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        local, remote = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "remote.csv")
        pd.testing.assert_frame_equal(local[["item", "period", "model"]], remote[["item", "period", "model"]])
        assert np.abs(local[VALUES].to_numpy() - remote[VALUES].to_numpy()).max() <= 1e-9
        time.sleep(0.5)
        assert head.poll() is None  # sop-xl disconnected and left the cluster running
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        # `ray start` records its address for `--address auto`; a terminated head leaves it behind
        record = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if record.is_file() and record.read_text().strip().endswith(f":{port}"):
            record.unlink()
