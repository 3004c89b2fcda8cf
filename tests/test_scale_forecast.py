"""`sop-xl forecast` out of the workbook: local and a Dask local cluster give the same numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.scale import synthetic_series
from sop_xl.cli import main
from sop_xl.scale import ScaleError
from sop_xl.scale import series_forecast as sf
from sop_xl.scale.source import read_long

VALUES = ["forecast", "lo_80", "hi_80", "lo_95", "hi_95"]


def assert_remote_equals_local(tmp_path, *engine: str) -> None:
    """``sop-xl forecast`` of tmp_path/sales.csv here and with ``engine`` (a cluster's options): the
    same models and periods, the same numbers to 1e-9."""
    args = ["--horizon", "6", "--quiet"]
    assert main(["forecast", str(tmp_path / "sales.csv"), "--out", str(tmp_path / "local.csv"), *args]) == 0
    assert main(["forecast", str(tmp_path / "sales.csv"), *engine, "--out", str(tmp_path / "remote.csv"), *args]) == 0
    local, remote = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "remote.csv")
    pd.testing.assert_frame_equal(local[["item", "period", "model"]], remote[["item", "period", "model"]])
    assert np.abs(local[VALUES].to_numpy() - remote[VALUES].to_numpy()).max() <= 1e-9


def _erp_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={"item": "MATNR", "period": "Month", "qty": "Units"})


@pytest.mark.slow
def test_local_and_dask_cluster_give_the_same_forecasts_and_models(tmp_path):
    pytest.importorskip("distributed")
    data = _erp_columns(synthetic_series(300, months=36, seed=3, edge_cases=True))
    data.to_csv(tmp_path / "sales.csv", index=False)
    parts = tmp_path / "parts"  # the same data as a folder of Parquet parts, cut across series
    parts.mkdir()
    shuffled = data.sample(frac=1.0, random_state=1)
    for i in range(3):
        shuffled.iloc[i::3].to_parquet(parts / f"part-{i}.parquet", index=False)
    mapping = ["--item", "MATNR", "--period", "Month", "--qty", "Units", "--horizon", "12", "--quiet"]

    assert main(["forecast", str(tmp_path / "sales.csv"), "--out", str(tmp_path / "local.parquet"),
                 "--partition-series", "300", *mapping]) == 0
    assert main(["forecast", str(parts), "--engine", "dask", "--workers", "2", "--partitions", "5",
                 "--out", str(tmp_path / "dask.csv"), *mapping]) == 0

    local = pd.read_parquet(tmp_path / "local.parquet")
    dask = pd.read_csv(tmp_path / "dask.csv", parse_dates=["period"])
    assert local["item"].nunique() == dask["item"].nunique() == 300
    assert len(local) == len(dask) == 300 * 12
    assert local[VALUES].dtypes.eq(np.float64).all()
    pd.testing.assert_frame_equal(local[["item", "period", "model", "demand_class"]],
                                  dask[["item", "period", "model", "demand_class"]], check_dtype=False)
    assert np.abs(local[VALUES].to_numpy() - dask[VALUES].to_numpy()).max() <= 1e-9

    # Local ran the engine once on all 300 series (one partition), exactly as the workbook's Forecast
    # step calls it; Dask ran it on 5 partitions cut by a hash of the series: partitioning changes nothing.
    assert set(local["demand_class"]) >= {"smooth", "intermittent", "zero", "constant", "new"}
    assert {"ensemble", "Zero", "Constant", "WindowAverage"} <= set(local["model"])


def test_partitions_hold_whole_series_and_a_failing_one_is_named(monkeypatch):
    data = synthetic_series(7, months=24).rename(columns={"item": "unique_id", "period": "ds", "qty": "y"})
    parts = sf.chunks_of_series(data, 3)
    assert [sorted(p["unique_id"].unique()) for p in parts] == [
        ["SKU000000", "SKU000001", "SKU000002"], ["SKU000003", "SKU000004", "SKU000005"], ["SKU000006"]]
    assert sum(len(p) for p in parts) == len(data)

    import sop_xl.engine.forecast as engine

    def broken(history, **kw):
        if "SKU000004" in set(history["unique_id"]):
            raise ValueError("no convergence")
        return real(history, **kw)

    real = engine.forecast
    monkeypatch.setattr(engine, "forecast", broken)
    with pytest.raises(sf.PartitionFailed, match=r"partition 1 \(3 series: SKU000003, SKU000004, SKU000005\) "
                                                 r"failed: ValueError: no convergence"):
        sf.run_local(data, sf.Settings(horizon=3, model="Naive"), series_per_part=3)


@pytest.mark.slow  # starts a (threaded) Dask cluster
def test_a_failing_partition_on_dask_is_named_with_its_series(monkeypatch):
    pytest.importorskip("distributed")
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import sop_xl.engine.forecast as engine

    real = engine.forecast

    def broken(history, **kw):
        if "SKU000004" in set(history["unique_id"]):
            raise ValueError("no convergence")
        return real(history, **kw)

    monkeypatch.setattr(engine, "forecast", broken)  # threads, not processes: the workers see the patch
    data = synthetic_series(12, months=24).rename(columns={"item": "unique_id", "period": "ds", "qty": "y"})
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        with pytest.raises(sf.PartitionFailed, match=r"partition \d \(\d series: .*SKU000004.*\) failed: "
                                                     r"ValueError: no convergence"):
            sf.run_dask(dd.from_pandas(data, npartitions=2), sf.Settings(horizon=3, model="Naive"), client, n_parts=3)


def test_bad_data_and_options_are_one_line_each(tmp_path, capsys):
    (tmp_path / "a.csv").write_text("sku,month,units\nA,2025-01-01,3\nA,someday,4\n")
    assert main(["forecast", str(tmp_path / "a.csv"), "--out", str(tmp_path / "o.csv"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "no column 'item', 'period', 'qty'" in err and "sku, month, units" in err and "Traceback" not in err
    args = ["forecast", str(tmp_path / "a.csv"), "--out", str(tmp_path / "o.csv"), "--item", "SKU",
            "--period", "Month", "--qty", "Units", "--quiet"]
    assert main(args) == 1
    assert "1 period value(s) are not dates, e.g. 'someday' for item A" in capsys.readouterr().err
    assert main(args + ["--model", "Prophet"]) == 1
    assert "unknown model 'Prophet'" in capsys.readouterr().err
    assert main(["forecast", str(tmp_path / "missing"), "--out", str(tmp_path / "o.csv")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
    with pytest.raises(ScaleError):
        sf.Settings(horizon=0)


def test_item_codes_keep_their_leading_zeros(tmp_path):
    (tmp_path / "a.csv").write_text("item,period,qty\n" + "".join(f"00123,2025-{m:02d}-01,{m}\n" for m in range(1, 13)))
    frame = read_long(tmp_path / "a.csv")
    assert set(frame["unique_id"]) == {"00123"} and frame["y"].dtype == np.float64


def test_output_folder_gets_parquet_parts(tmp_path):
    synthetic_series(20, months=30, seed=5).to_parquet(tmp_path / "in.parquet", index=False)
    assert main(["forecast", str(tmp_path / "in.parquet"), "--out", str(tmp_path / "out"), "--horizon", "6",
                 "--partition-series", "8", "--model", "Naive", "--quiet"]) == 0
    parts = sorted((tmp_path / "out").glob("part-*.parquet"))
    assert len(parts) == 3
    frame = pd.concat(map(pd.read_parquet, parts))
    assert frame["item"].nunique() == 20 and len(frame) == 20 * 6
    assert set(frame["model"]) <= {"Naive", "Zero", "Constant", "WindowAverage"}


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_an_existing_cluster_at_an_address_gives_the_local_numbers(tmp_path):
    """`--address` against a cluster someone else started (a scheduler and a worker as separate
    processes, as `dask scheduler` / `dask worker` run them): the same forecasts as local, and the
    cluster is left running (sop-xl closes only what it started)."""
    pytest.importorskip("distributed")
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from distributed import Client

    data = synthetic_series(40, months=36, seed=5, edge_cases=True)
    data.to_csv(tmp_path / "sales.csv", index=False)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1",
                               "--nthreads", "1", "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Client(address, timeout=60) as probe:
            probe.wait_for_workers(1, timeout=120)
        assert_remote_equals_local(tmp_path, "--engine", "dask", "--address", address)
        time.sleep(0.5)
        assert scheduler.poll() is None and worker.poll() is None  # still running: not ours to close
    finally:
        for p in (worker, scheduler):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys):
    pytest.importorskip("distributed")
    data = synthetic_series(3, months=24, seed=1)
    data.to_csv(tmp_path / "sales.csv", index=False)
    assert main(["forecast", str(tmp_path / "sales.csv"), "--engine", "dask", "--address", "no-port-here",
                 "--out", str(tmp_path / "o.csv"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the Dask scheduler at no-port-here" in err, err
