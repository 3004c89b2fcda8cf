"""The engine's forecast on partitions of whole series, in this process or on a Dask cluster.

One function, :func:`forecast_partition`, forecasts a frame holding *whole* series with the same
engine call the workbook's Forecast step makes (the demand classes, the ensemble, the intermittent
methods, the holdout). Every series is fitted on its own, so how series are grouped into partitions
changes nothing: ``local`` (partitions one after the other here) and ``dask`` (a shuffle by series,
then ``map_partitions`` on the workers) give the same float64 numbers and the same model per series.
Statsforecast's own Dask/Fugue path was not used: it returns float32 and costs about a third more CPU.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from sop_xl.scale import ScaleError

DEFAULT_PARTITION_SERIES = 500  # series per partition: big enough to amortise a task, small enough to balance


@dataclass(frozen=True)
class Settings:
    horizon: int = 18
    season_length: int = 12
    model: str = "auto"
    levels: tuple[int, ...] = (80, 95)

    def __post_init__(self):
        from sop_xl.engine.forecast import MAX_HORIZON, MODEL_NAMES

        # Checked here, once, rather than failing in every partition on the workers.
        if self.model not in MODEL_NAMES:
            raise ScaleError(f"unknown model '{self.model}'; choose one of: {', '.join(MODEL_NAMES)}")
        if not 1 <= self.horizon <= MAX_HORIZON:
            raise ScaleError(f"--horizon must be between 1 and {MAX_HORIZON}")
        if not 1 <= self.season_length <= 366:
            raise ScaleError("--season-length must be between 1 and 366")
        if not self.levels or any(not 0 < lv < 100 for lv in self.levels):
            raise ScaleError("--levels must be whole numbers between 1 and 99")
        object.__setattr__(self, "levels", tuple(sorted(set(self.levels))))

    @property
    def columns(self) -> list[str]:
        return (["item", "period", "forecast"] + [f"{b}_{lv}" for lv in self.levels for b in ("lo", "hi")]
                + ["model", "demand_class", "n_obs"])

    def empty(self) -> pd.DataFrame:
        """The output's shape (Dask's ``meta``)."""
        kinds = {"item": object, "period": "datetime64[ns]", "model": object, "demand_class": object, "n_obs": "int64"}
        return pd.DataFrame({c: pd.Series(dtype=kinds.get(c, float)) for c in self.columns})


class PartitionFailed(ScaleError):
    """The engine failed on one partition; the message names the partition and its series."""


def _describe(ids) -> str:
    ids = sorted(map(str, ids))
    shown = ", ".join(ids[:5]) + (f" … {ids[-1]}" if len(ids) > 5 else "")
    return f"{len(ids)} series: {shown}"


def forecast_partition(part: pd.DataFrame, settings: Settings, number: int | None = None,
                       n_jobs: int = 1) -> pd.DataFrame:
    """Forecast every series of ``part`` (unique_id, ds, y; whole series only): one row per series and
    future period with the forecast, its intervals, the chosen model and the demand class."""
    from sop_xl.engine.forecast import forecast

    if part.empty:
        return settings.empty()
    try:
        res = forecast(part, horizon=settings.horizon, season_length=settings.season_length, freq="MS",
                       model=settings.model, levels=settings.levels, n_jobs=n_jobs)
    except Exception as exc:  # noqa: BLE001 - re-raised with the series it concerns
        label = f"partition {number}" if number is not None else "partition"
        raise PartitionFailed(f"{label} ({_describe(part['unique_id'].unique())}) failed: "
                              f"{type(exc).__name__}: {exc}") from None
    sel = res.selection.set_index("unique_id")
    out = res.forecasts.rename(columns={"unique_id": "item", "ds": "period", "yhat": "forecast"})
    out = out.drop(columns=["model"]).assign(model=out["item"].map(sel["model"]),
                                             demand_class=out["item"].map(sel["demand_class"]),
                                             n_obs=out["item"].map(sel["n_obs"]).astype("int64"))
    out["period"] = out["period"].astype("datetime64[ns]")
    return out[settings.columns]


def _write_part(frame: pd.DataFrame, folder: str | None, number: int) -> pd.DataFrame:
    """With an output folder, the part goes to disk where it was computed and only a tally comes back."""
    if folder is None:
        return frame
    frame.to_parquet(Path(folder) / f"part-{number:05d}.parquet", index=False)
    return frame.groupby(["model", "demand_class"], as_index=False).agg(series=("item", "nunique"))


def _task(part: pd.DataFrame, settings: Settings, folder: str | None, partition_info=None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    return _write_part(forecast_partition(part, settings, number), folder, number)


def chunks_of_series(frame: pd.DataFrame, series_per_part: int) -> list[pd.DataFrame]:
    """Whole series, ``series_per_part`` at a time, in the order of their ids."""
    ids = np.sort(frame["unique_id"].unique())
    n_parts = max(1, math.ceil(len(ids) / series_per_part))
    part_of = pd.Series(np.arange(len(ids)) // series_per_part, index=ids)
    keys = frame["unique_id"].map(part_of).to_numpy()
    return [frame[keys == i] for i in range(n_parts)]


def run_local(frame: pd.DataFrame, settings: Settings, series_per_part: int = DEFAULT_PARTITION_SERIES,
              folder: str | None = None, progress: Callable[[str], None] = lambda _: None,
              n_jobs: int = 1) -> pd.DataFrame:
    """Partitions one after the other in this process (``n_jobs`` > 1: statsforecast's own processes)."""
    parts = chunks_of_series(frame, series_per_part)
    out = []
    for i, part in enumerate(parts):
        out.append(_write_part(forecast_partition(part, settings, i, n_jobs=n_jobs), folder, i))
        progress(f"partition {i + 1}/{len(parts)} done ({part['unique_id'].nunique()} series)")
    return pd.concat(out, ignore_index=True)


CONNECT_TIMEOUT_S = 10  # a scheduler that does not answer within this is not there


def dask_client(address: str | None = None, workers: int | None = None):
    """A client for the cluster at ``address``, or for a local cluster of one process per core."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ScaleError("--engine dask needs Dask: pip install 'sop-xl[dask]'") from None
    if address:
        try:
            return Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:  # refused, unknown host, no answer, bad address
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise ScaleError(f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s "
                             f"({reason}); is it running? (`dask scheduler` starts one, `dask worker "
                             f"{address}` adds a worker)") from None
    # Workers' own log lines (a failed task's traceback, shuffle notices) stay off the terminal: a
    # failure reaches the user once, as PartitionFailed naming its series.
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster)


def run_dask(ddf, settings: Settings, client, n_parts: int | None = None, folder: str | None = None,
             progress: Callable[[str], None] = lambda _: None) -> pd.DataFrame:
    """Shuffle the lazy frame by series, then one engine call per partition on the workers."""
    from distributed import as_completed

    if n_parts is None:
        threads = sum(client.nthreads().values()) or 1
        n_parts = max(ddf.npartitions, 2 * threads)
    by_series = ddf.shuffle(on="unique_id", npartitions=n_parts, shuffle_method="tasks")
    meta = settings.empty() if folder is None else pd.DataFrame(
        {"model": pd.Series(dtype=object), "demand_class": pd.Series(dtype=object), "series": pd.Series(dtype="int64")})
    result = by_series.map_partitions(_task, settings, folder, meta=meta)
    futures = client.compute(result.to_delayed())
    position = {f.key: i for i, f in enumerate(futures)}
    done = [None] * len(futures)
    try:
        for k, fut in enumerate(as_completed(futures), 1):
            if fut.status == "error":
                exc = fut.exception()
                raise exc if isinstance(exc, ScaleError) else ScaleError(f"a Dask task failed: {type(exc).__name__}: {exc}")
            done[position[fut.key]] = fut.result()
            progress(f"partition {k}/{len(futures)} done")
    finally:
        client.cancel(futures)
    return pd.concat(done, ignore_index=True)


def sort_output(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["item", "period"] if "period" in frame.columns else ["model", "demand_class"]
    if "period" not in frame.columns:  # tallies from several parts
        frame = frame.groupby(keys, as_index=False)["series"].sum()
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def write_output(frame: pd.DataFrame, out: Path) -> None:
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False, date_format="%Y-%m-%d")
    else:
        frame.to_parquet(out, index=False)


def check_out(out) -> tuple[Path, str | None]:
    """``OUT.csv`` / ``OUT.parquet``: one file written here; anything else: a folder of Parquet parts,
    written by whoever computed them (on a cluster, OUT must be a path every worker can write)."""
    out = Path(out)
    if out.suffix.lower() in (".csv", ".parquet"):
        if not out.parent.exists():
            raise ScaleError(f"{out.parent}: no such folder")
        return out, None
    if out.exists() and (not out.is_dir() or any(out.glob("part-*.parquet"))):
        raise ScaleError(f"{out}: exists with parts in it; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    return out, str(out.resolve())
