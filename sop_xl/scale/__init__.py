"""Beyond one workbook: forecasting many series from files or a cluster, and bringing extracts in.

- :mod:`sop_xl.scale.source`: long data (item, period, qty) from CSV or Parquet, a file or a folder of parts.
- :mod:`sop_xl.scale.series_forecast`: the engine's forecast run on partitions of whole series, in this
  process (``local``) or on a Dask cluster (``dask``); both call the same partition function, so the
  numbers and the model per series are identical.
- :mod:`sop_xl.scale.fugue_engines`: the same partition function on Ray or Spark through
  ``fugue.transform`` (buckets of whole series, float64 schema), on a local instance or a cluster.
- :mod:`sop_xl.scale.extract_import`: an ERP extract (CSV, Parquet, SQL query) into a workbook input table
  through the workbook's own validation and save path.

Dask, Ray and Spark are optional extras (``pip install sop-xl[dask]``, ``[ray]``, ``[spark]``); nothing
here imports them unless asked to.
"""


class ScaleError(Exception):
    """A problem with the data or the options, in plain words for the user (no traceback)."""
