"""Long data (item, period, qty) from CSV or Parquet: a file, or a folder of part files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sop_xl.scale import ScaleError

SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class Columns:
    """Which source column holds the item, the period and the quantity (case-insensitive)."""
    item: str = "item"
    period: str = "period"
    qty: str = "qty"

    def resolve(self, available: list[str], where: str) -> dict[str, str]:
        """Source column name -> engine name (unique_id, ds, y), or a ScaleError naming what is missing."""
        by_lower = {str(c).lower(): str(c) for c in available}
        found, missing = {}, []
        for wanted, engine_name in ((self.item, "unique_id"), (self.period, "ds"), (self.qty, "y")):
            actual = by_lower.get(wanted.lower())
            if actual is None:
                missing.append(wanted)
            else:
                found[actual] = engine_name
        if missing:
            raise ScaleError(f"{where}: no column {', '.join(repr(m) for m in missing)} "
                             f"(columns: {', '.join(map(str, available))}); name them with --item/--period/--qty")
        return found


def data_files(path) -> tuple[str, list[Path]]:
    """The kind ('csv' or 'parquet') and the files of ``path`` (a file, or a folder of same-kind parts)."""
    path = Path(path)
    if not path.exists():
        raise ScaleError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise ScaleError(f"{path}: the folder holds no .csv or .parquet files")
    kinds = {"csv" if p.suffix.lower() == ".csv" else "parquet" for p in files}
    if len(kinds) > 1:
        raise ScaleError(f"{path}: mixes CSV and Parquet parts; keep one kind per folder")
    if files[0].suffix.lower() not in SUFFIXES:
        raise ScaleError(f"{path}: expected a .csv or .parquet file")
    return kinds.pop(), files


def read_long(path, columns: Columns = Columns()) -> pd.DataFrame:
    """The whole data set in memory as the engine's long frame (unique_id, ds, y)."""
    kind, files = data_files(path)
    # CSV as text, as Dask reads it: item codes such as 00123 keep their zeros; periods and quantities
    # are typed by to_engine_frame.
    parts = [pd.read_csv(f, dtype=str) if kind == "csv" else pd.read_parquet(f) for f in files]
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return to_engine_frame(frame, columns.resolve(list(frame.columns), str(path)), str(path))


def read_long_dask(path, columns: Columns = Columns()):
    """The same, as a lazy Dask frame (read by the workers, part by part)."""
    import dask.dataframe as dd

    kind, files = data_files(path)
    names = [str(f) for f in files]
    frame = dd.read_csv(names, dtype=str) if kind == "csv" else dd.read_parquet(names)
    mapping = columns.resolve(list(frame.columns), str(path))
    meta = pd.DataFrame({"unique_id": pd.Series(dtype=object), "ds": pd.Series(dtype="datetime64[ns]"),
                         "y": pd.Series(dtype=float)})
    return frame[list(mapping)].map_partitions(to_engine_frame, mapping, str(path), meta=meta)


def to_engine_frame(frame: pd.DataFrame, mapping: dict[str, str], where: str) -> pd.DataFrame:
    """Rename to unique_id/ds/y and type the columns; bad periods are refused with an example."""
    out = frame[list(mapping)].rename(columns=mapping)
    out["unique_id"] = out["unique_id"].astype(str)
    ds = pd.to_datetime(out["ds"], errors="coerce")
    bad = ds.isna() & out["ds"].notna()
    if bad.any():
        first = out.loc[bad].iloc[0]
        raise ScaleError(f"{where}: {int(bad.sum())} period value(s) are not dates, e.g. {first['ds']!r} "
                         f"for item {first['unique_id']}")
    out["ds"] = ds.astype("datetime64[ns]")
    # Quantities that are not numbers become NaN: the engine treats them as 0 and says so per item.
    out["y"] = pd.to_numeric(out["y"], errors="coerce").astype(float)
    return out


def read_families(path, item: str, family: str) -> pd.Series:
    """item -> family from two columns of the data (one family per item, or a ScaleError)."""
    kind, files = data_files(path)
    parts = []
    for f in files:
        head = pd.read_csv(f, nrows=0) if kind == "csv" else pd.read_parquet(f).iloc[:0]
        by_lower = {str(c).lower(): str(c) for c in head.columns}
        if item.lower() not in by_lower or family.lower() not in by_lower:
            raise ScaleError(f"{f}: no column {family!r} for --family (columns: {', '.join(map(str, head.columns))})")
        cols = [by_lower[item.lower()], by_lower[family.lower()]]
        frame = pd.read_csv(f, usecols=cols, dtype=str) if kind == "csv" else pd.read_parquet(f, columns=cols)
        parts.append(frame.set_axis(["item", "family"], axis=1).astype(str).drop_duplicates())
    pairs = pd.concat(parts).drop_duplicates()
    twice = pairs[pairs["item"].duplicated(keep=False)]
    if len(twice):
        raise ScaleError(f"item {twice['item'].iloc[0]} belongs to more than one family "
                         f"({', '.join(sorted(twice[twice['item'] == twice['item'].iloc[0]]['family']))})")
    return pairs.set_index("item")["family"]
