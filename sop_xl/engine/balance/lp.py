"""The one representation of the balancing LP: arrays built once, read by every solver path.

    min  cost . x + offset   s.t.   row_lo <= A x <= row_hi,   col_lo <= x <= col_hi
    (x_j integer where ``integer[j]``)

``A`` is stored column-wise (CSC: ``start``, ``index``, ``value``), the layout highspy's
``HighsLp`` takes as is, so the main path hands these arrays to HiGHS in one ``passModel`` call.
The PuLP model (CBC fallback, writing .lp/.mps for a planner to inspect) is generated from the
same arrays.  Columns and rows are made in named blocks over an (entity x period) grid, so each
one gets a readable name (``prod_FG001_2025_03``) only when a name is asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

INF = float("inf")


@dataclass
class Block:
    """A block of columns or rows: positions [start, stop) over a grid of (axis0 x axis1) labels."""
    name: str
    start: int
    stop: int
    i: np.ndarray  # grid row (e.g. item or resource index) of each member
    t: np.ndarray  # grid column (period index) of each member
    axis0: list  # labels for i
    axis1: list  # labels for t


@dataclass
class LP:
    cost: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray
    start: np.ndarray  # CSC column starts (ncols + 1)
    index: np.ndarray  # row index of each nonzero
    value: np.ndarray
    offset: float = 0.0
    integer: np.ndarray | None = None  # bool per column, None = pure LP
    col_blocks: dict[str, Block] = field(default_factory=dict)
    row_blocks: dict[str, Block] = field(default_factory=dict)

    @property
    def ncols(self) -> int:
        return len(self.cost)

    @property
    def nrows(self) -> int:
        return len(self.row_lo)

    @property
    def nnz(self) -> int:
        return len(self.value)

    @property
    def is_mip(self) -> bool:
        return self.integer is not None and bool(self.integer.any())

    def col_range(self, name: str) -> tuple[int, int]:
        b = self.col_blocks.get(name)
        return (b.start, b.stop) if b else (0, 0)

    def row_range(self, name: str) -> tuple[int, int]:
        b = self.row_blocks.get(name)
        return (b.start, b.stop) if b else (0, 0)

    def objective_value(self, x: np.ndarray) -> float:
        return float(self.cost @ x) + self.offset

    def activity(self, x: np.ndarray) -> np.ndarray:
        """A x, computed from the CSC arrays."""
        out = np.zeros(self.nrows)
        cols = np.repeat(np.arange(self.ncols), np.diff(self.start))
        np.add.at(out, self.index, self.value * x[cols])
        return out

    def rows_csr(self):
        """(start, index, value) row-wise: what a row-by-row modeller (PuLP) needs."""
        cols = np.repeat(np.arange(self.ncols), np.diff(self.start))
        order = np.lexsort((cols, self.index))
        rstart = np.zeros(self.nrows + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.index, minlength=self.nrows), out=rstart[1:])
        return rstart, cols[order], self.value[order]

    def col_names(self) -> list[str]:
        return _names(self.col_blocks, self.ncols, "x")

    def row_names(self) -> list[str]:
        return _names(self.row_blocks, self.nrows, "r")


_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _label(x) -> str:
    if isinstance(x, pd.Timestamp):
        return x.strftime("%Y_%m") if x.day == 1 else x.strftime("%Y_%m_%d")
    return _UNSAFE.sub("_", str(x))


def _names(blocks: dict[str, Block], n: int, fallback: str) -> list[str]:
    """Readable unique names (LP/MPS-safe characters); index-suffixed where labels collide."""
    out = [f"{fallback}{k}" for k in range(n)]
    for b in blocks.values():
        a0 = [_label(x) for x in b.axis0]
        a1 = [_label(x) for x in b.axis1]
        for k, (i, t) in enumerate(zip(b.i.tolist(), b.t.tolist())):
            out[b.start + k] = f"{b.name}_{a0[i]}_{a1[t]}" if a1 else f"{b.name}_{a0[i]}"
    seen: set[str] = set()
    for k, s in enumerate(out):
        if s in seen:
            out[k] = f"{s}_{k}"
        seen.add(out[k])
    return out



def _index_grid(mask, first: int):
    """Numbers ``first``, ``first + 1``, ... for the True cells of a 2-D mask (-1 elsewhere), and the
    cells' coordinates: how a block of columns or of rows is laid out."""
    mask = np.asarray(mask, dtype=bool)
    idx = np.full(mask.shape, -1, dtype=np.int64)
    ii, tt = np.nonzero(mask)
    k = len(ii)
    idx[ii, tt] = np.arange(first, first + k)
    return mask, idx, ii, tt, k

class Builder:
    """Makes an LP block by block: columns and rows over boolean masks, then coefficient triplets."""

    def __init__(self):
        self.ncols = 0
        self.nrows = 0
        self._cost: list[np.ndarray] = []
        self._lo: list[np.ndarray] = []
        self._hi: list[np.ndarray] = []
        self._int: list[np.ndarray] = []
        self._rlo: list[np.ndarray] = []
        self._rhi: list[np.ndarray] = []
        self._r: list[np.ndarray] = []
        self._c: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self.col_blocks: dict[str, Block] = {}
        self.row_blocks: dict[str, Block] = {}

    @staticmethod
    def _at(x, mask) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=float), mask.shape)[mask]

    def cols(self, name: str, mask: np.ndarray, cost=0.0, lo=0.0, hi=INF, axes=((), ()),
             integer=False) -> np.ndarray:
        """Columns where ``mask`` (2-D) is True; returns the index grid (-1 where no column)."""
        mask, idx, ii, tt, k = _index_grid(mask, self.ncols)
        self._cost.append(self._at(cost, mask))
        self._lo.append(self._at(lo, mask))
        self._hi.append(self._at(hi, mask))
        self._int.append(np.broadcast_to(np.asarray(integer, dtype=bool), mask.shape)[mask])
        self.col_blocks[name] = Block(name, self.ncols, self.ncols + k, ii, tt, list(axes[0]), list(axes[1]))
        self.ncols += k
        return idx

    def rows(self, name: str, mask: np.ndarray, lo=-INF, hi=INF, axes=((), ())) -> np.ndarray:
        mask, idx, ii, tt, k = _index_grid(mask, self.nrows)
        self._rlo.append(self._at(lo, mask))
        self._rhi.append(self._at(hi, mask))
        self.row_blocks[name] = Block(name, self.nrows, self.nrows + k, ii, tt, list(axes[0]), list(axes[1]))
        self.nrows += k
        return idx

    def coef(self, rows, cols, vals=1.0) -> None:
        """Add A[rows, cols] += vals; entries whose row or column does not exist (-1) are skipped."""
        rows, cols, vals = np.broadcast_arrays(np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64),
                                               np.asarray(vals, dtype=float))
        rows, cols, vals = rows.ravel(), cols.ravel(), vals.ravel()
        ok = (rows >= 0) & (cols >= 0) & (vals != 0)
        self._r.append(rows[ok])
        self._c.append(cols[ok])
        self._v.append(vals[ok])

    def build(self, offset: float = 0.0) -> LP:
        cat = lambda xs, dt=float: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dtype=dt)  # noqa: E731
        r, c, v = cat(self._r, np.int64), cat(self._c, np.int64), cat(self._v)
        # column-major order; duplicates (same row and column) are added together
        order = np.lexsort((r, c))
        r, c, v = r[order], c[order], v[order]
        if len(r):
            new = np.ones(len(r), dtype=bool)
            new[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
            grp = np.cumsum(new) - 1
            v = np.bincount(grp, weights=v)
            r, c = r[new], c[new]
        start = np.zeros(self.ncols + 1, dtype=np.int64)
        np.cumsum(np.bincount(c, minlength=self.ncols), out=start[1:])
        integer = cat(self._int, bool)
        return LP(cost=cat(self._cost), col_lo=cat(self._lo), col_hi=cat(self._hi),
                  row_lo=cat(self._rlo), row_hi=cat(self._rhi), start=start, index=r.astype(np.int32),
                  value=v, offset=float(offset), integer=integer if integer.any() else None,
                  col_blocks=self.col_blocks, row_blocks=self.row_blocks)
