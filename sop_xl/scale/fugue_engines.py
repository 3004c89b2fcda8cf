"""The same partition function on Ray or Spark, through Fugue.

``--engine ray`` and ``--engine spark`` run :func:`~sop_xl.scale.series_forecast.forecast_partition`,
the function ``local`` and ``dask`` run, with ``fugue.transform``: the data is loaded by the cluster,
typed by :func:`~sop_xl.scale.source.to_engine_frame` and given a bucket number per series (a fixed
hash of the item, so whole series stay together), then partitioned by that bucket, so each call
forecasts a few hundred whole series at once: the engine's per-call set-up is amortised, and a
failing call can be named with its series. The output schema is declared with float64 columns, so the
numbers are the local ones (statsforecast's own Fugue path returns float32: not used).

Ray and PySpark are optional extras, imported only here and only when asked for; a missing one, a
missing Java runtime (Spark) or a cluster that does not answer is one plain :class:`ScaleError`.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from sop_xl.scale import ScaleError
from sop_xl.scale import series_forecast as sf
from sop_xl.scale.source import Columns, data_files, to_engine_frame

PART = "_sop_part"  # the bucket column: which call forecasts the series
CONNECT_TIMEOUT_S = sf.CONNECT_TIMEOUT_S
PIP = {"ray": "pip install 'sop-xl[ray]'", "spark": "pip install 'sop-xl[spark]'"}


def _require(engine: str) -> None:
    """One plain line naming the pip command when the extra is not installed."""
    try:
        import fugue  # noqa: F401
        if engine == "ray":
            import fugue_ray  # noqa: F401
            import ray  # noqa: F401
        else:
            import fugue_spark  # noqa: F401
            import pyspark  # noqa: F401
    except ImportError:
        raise ScaleError(f"--engine {engine} needs {'Ray' if engine == 'ray' else 'PySpark'}: {PIP[engine]}") from None


def _probe(address: str, what: str, default_port: int, hint: str) -> None:
    """Fail within CONNECT_TIMEOUT_S when nothing listens at ``address`` (Ray's and Spark's own clients
    retry for minutes, or hang, before they give up)."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError:  # a port that is not a number
        host, port = None, None
    if not host:
        raise ScaleError(f"cannot reach the {what} at {address}: expected host:port ({hint})")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc) or type(exc).__name__) if not isinstance(exc, TimeoutError) else "no answer"
        raise ScaleError(f"cannot reach the {what} at {address} within {CONNECT_TIMEOUT_S} s ({reason}); "
                         f"is it running? ({hint})") from None


@contextmanager
def ray_engine(address: str | None = None, workers: int | None = None) -> Iterator[tuple[object, str, int]]:
    """(Fugue engine, description, worker slots) on the Ray cluster at ``address`` ("auto": the one
    started on this machine by ``ray start``), or on a local Ray instance started here and stopped
    afterwards. A cluster that was already running is only disconnected from, never stopped."""
    _require("ray")
    import ray
    from fugue_ray import RayExecutionEngine

    hint = "`ray start --head` starts one; ray://host:10001 for a remote cluster"
    if address and address != "auto":
        _probe(address, "Ray cluster", 10001 if address.startswith("ray://") else 6379, hint)
    quiet = dict(logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            # "local": a new instance even when `ray start` runs (or once ran) on this machine; without
            # it Ray joins that cluster (and refuses num_cpus), or a stale record of it
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:  # "auto" without a cluster, version mismatch
        raise ScaleError(f"cannot start or reach Ray{' at ' + address if address else ''}: "
                         f"{str(exc).splitlines()[0][:200]} ({hint})") from None
    try:
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False  # sop-xl reports progress itself
        # No plan and timing lines per step; a failed task's traceback reaches the user once, as
        # PartitionFailed naming its series (as with Dask).
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        slots = int(ray.cluster_resources().get("CPU", 1))
        where = address or f"a local Ray instance ({slots} CPU)"
        yield RayExecutionEngine(conf={"fugue.ray.remote.num_cpus": 1}), f"Ray: {where}", slots
    finally:
        ray.shutdown()  # with an address: disconnects this driver; the cluster keeps running


@contextmanager
def spark_engine(master: str | None = None, workers: int | None = None) -> Iterator[tuple[object, str, int]]:
    """(Fugue engine, description, worker slots) on the Spark master at ``master``, or on
    ``local[N]`` (N: --workers or one per core). Only this application is stopped afterwards."""
    _require("spark")
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise ScaleError("--engine spark needs a Java runtime (17 or 21): install one (e.g. apt-get install "
                         "default-jre-headless) or set JAVA_HOME")
    if master and master.startswith("spark://"):
        _probe(master, "Spark master", 7077, "`start-master.sh` starts one")
    # The workers run Python too: the same interpreter as this one (with sop-xl), unless told otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from fugue_spark import SparkExecutionEngine
    from pyspark.sql import SparkSession

    url = master or f"local[{workers or os.cpu_count() or 1}]"
    log_conf = None
    builder = SparkSession.builder
    if not master:  # a Spark of our own: its JVM logs errors only (a cluster's own settings are left alone)
        with tempfile.NamedTemporaryFile("w", prefix="sop-xl-log4j2-", suffix=".properties", delete=False) as f:
            f.write(QUIET_LOG4J)
        log_conf = Path(f.name)
        builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log_conf.as_uri()}")
    builder = (builder.master(url).appName("sop-xl forecast")
               # one task per bucket as asked: adaptive execution must not merge the buckets' partitions
               .config("spark.sql.adaptive.coalescePartitions.enabled", "false")
               # periods are naive month starts: no shift by the machine's time zone on the way through
               .config("spark.sql.session.timeZone", "UTC")
               # pandas writes Parquet timestamps in nanoseconds, which Spark cannot read as timestamps:
               # they arrive as integers (ns since 1970) and to_engine_frame makes them dates again
               .config("spark.sql.legacy.parquet.nanosAsLong", "true")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false"))
    if master:
        builder = builder.config("spark.log.level", "ERROR")
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM did not start or the master refused: one line
        raise ScaleError(f"cannot start Spark at {url}: {str(exc).splitlines()[0][:200]}") from None
    finally:
        if log_conf is not None:
            log_conf.unlink(missing_ok=True)  # read once, when the JVM started
    try:
        slots = spark.sparkContext.defaultParallelism
        yield SparkExecutionEngine(spark), f"Spark: {url} ({slots} task slot(s))", slots
    finally:
        spark.stop()  # this application only; a standalone cluster keeps running


ENGINES = {"ray": ray_engine, "spark": spark_engine}

# Spark's default log4j profile prints WARN lines (host name, native Hadoop) on every start.
QUIET_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def bucket_of(ids: pd.Series, n_parts: int) -> np.ndarray:
    """A fixed bucket per series (pandas' keyed hash, the same on every machine and run)."""
    return (pd.util.hash_pandas_object(ids, index=False).to_numpy() % np.uint64(n_parts)).astype("int64")


def _typed(frame: pd.DataFrame, mapping: dict, where: str, n_parts: int) -> pd.DataFrame:
    out = to_engine_frame(frame, mapping, where)
    out[PART] = bucket_of(out["unique_id"], n_parts)
    return out


def _forecast_bucket(part: pd.DataFrame, settings: sf.Settings, folder: str | None) -> pd.DataFrame:
    number = int(part[PART].iloc[0])
    return sf._write_part(sf.forecast_partition(part.drop(columns=PART), settings, number), folder, number)


def _schema(frame: pd.DataFrame) -> str:
    kinds = {"object": "str", "float64": "double", "int64": "long", "datetime64[ns]": "datetime"}
    return ",".join(f"{c}:{kinds[str(t)]}" for c, t in frame.dtypes.items())


TALLY = pd.DataFrame({"model": pd.Series(dtype=object), "demand_class": pd.Series(dtype=object),
                      "series": pd.Series(dtype="int64")})


def _user_error(exc: BaseException) -> ScaleError | None:
    """Our own error inside whatever the engine wrapped it in (Ray: the exception or its cause; Spark:
    the worker's traceback as text), or None for anything else."""
    seen, inner = set(), exc
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        cause = getattr(inner, "cause", None)  # Ray's RayTaskError(PartitionFailed): its str is a traceback
        if isinstance(cause, BaseException):
            inner = cause
        elif type(inner) in (ScaleError, sf.PartitionFailed):
            return inner
        else:
            inner = inner.__cause__ or inner.__context__
    found = re.search(r"\b(PartitionFailed|ScaleError): ([^\n]+)", str(exc))
    if found:
        return (sf.PartitionFailed if found.group(1) == "PartitionFailed" else ScaleError)(found.group(2).strip())
    return None


def _shuffle_into(engine, n_parts: int) -> None:
    """As many shuffle partitions as buckets: the engines' default (200) would mostly be empty tasks."""
    if type(engine).__module__.startswith("fugue_spark"):
        engine.spark_session.conf.set("spark.sql.shuffle.partitions", str(n_parts))
    elif type(engine).__module__.startswith("fugue_ray"):
        from ray.data import DataContext

        DataContext.get_current().default_hash_shuffle_parallelism = n_parts


def run(data, columns: Columns, settings: sf.Settings, engine, slots: int, n_parts: int | None = None,
        folder: str | None = None, progress: Callable[[str], None] = lambda _: None) -> pd.DataFrame:
    """Load ``data`` on the cluster, bucket whole series, forecast each bucket with the local function."""
    import fugue.api as fa

    kind, files = data_files(data)
    n_parts = n_parts or 2 * max(1, slots)
    _shuffle_into(engine, n_parts)  # before the first data set: Ray's copy their context
    paths = [str(f.resolve()) for f in files]
    typed_schema = f"unique_id:str,ds:datetime,y:double,{PART}:long"
    try:
        # CSV as text (item codes such as 00123 keep their zeros); to_engine_frame types the columns.
        with warnings.catch_warnings():
            # fugue 0.9.7's Ray reader uses an argument Ray 2.5x deprecates: not the user's concern
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            raw = (fa.load(paths, format_hint="csv", header=True, infer_schema=False, engine=engine)
                   if kind == "csv" else fa.load(paths, format_hint="parquet", engine=engine))
        mapping = columns.resolve(fa.get_column_names(raw), str(data))
        typed = fa.transform(fa.select_columns(raw, list(mapping)), _typed, schema=typed_schema,
                             params=dict(mapping=mapping, where=str(data), n_parts=n_parts), engine=engine)
        progress(f"forecasting {n_parts} partition(s) of whole series …")
        out_schema = _schema(settings.empty() if folder is None else TALLY)
        result = fa.transform(typed, _forecast_bucket, schema=out_schema, partition={"by": [PART]},
                              params=dict(settings=settings, folder=folder), engine=engine, as_local=True)
    except Exception as exc:  # noqa: BLE001 - a worker's failure comes back wrapped by the engine
        mine = _user_error(exc)
        if mine is not None:
            raise mine from None
        raise ScaleError(f"the cluster failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}") from None
    result = fa.as_pandas(result)
    progress(f"{n_parts} partition(s) done")
    # Arrow hands back nullable and string dtypes (Float64, string): the local run's plain ones instead
    return result.astype((settings.empty() if folder is None else TALLY).dtypes.to_dict())
