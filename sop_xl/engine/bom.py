"""Bill of materials: validation, low-level codes, cost rollup, where-used, explosion.

Frames follow docs/engine-frames.md:

* ``bom``   -- parent, component, qty_per, scrap_pct (fraction, 0.02 = 2 %)
* ``costs`` -- item, material, labour, overhead (own cost of that level only)

Everything heavy is vectorised on a compiled :class:`BomGraph`: item names are factorised once
into integer ids, the lines are counting-sorted into one CSR matrix ``A[parent, component] =
qty_per * (1 + scrap_pct)``, and a vectorised topological peel (Kahn, one numpy step per level)
gives the low-level codes.  The rolled cost ``x = c + A x`` is then solved bottom-up, one
sparse product per level over that level's parents, so every BOM line is touched once and a
sub-assembly used by many parents is costed once; the same pass carries the contribution of
each depth (``by_level``).  A BOM is acyclic exactly when the peel reaches every item; if it
does not, ``scipy.sparse.csgraph.connected_components(connection='strong')`` runs on the
items left over and each non-trivial strongly connected component is reported with one exact
cycle path.  No per-item Python recursion anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

__all__ = [
    "BomError",
    "BomProblem",
    "BomGraph",
    "Rollup",
    "check_bom",
    "low_level_codes",
    "rollup",
    "where_used",
    "explode",
]

ARROW = " \u2192 "  # ' → '
COST_ELEMENTS = ("material", "labour", "overhead")
PROBLEM_KINDS = ("unknown_item", "self_reference", "bad_quantity", "duplicate_line", "cycle")


# --------------------------------------------------------------------------- problems


@dataclass
class BomProblem:
    kind: str  # 'unknown_item' | 'self_reference' | 'bad_quantity' | 'duplicate_line' | 'cycle'
    rows: list[int]  # 0-based positions in the bom frame of the lines involved
    message: str  # plain English, e.g. 'cycle: A → B → C → A'
    path: list[str] | None = None  # for cycles: the full cycle path, first item repeated at end


class BomError(ValueError):
    """Carries ``.problems: list[BomProblem]``; ``str()`` is a short summary."""

    def __init__(self, problems: Iterable[BomProblem]):
        self.problems: list[BomProblem] = list(problems)
        super().__init__(_summary(self.problems))


def _summary(problems: list[BomProblem]) -> str:
    if not problems:
        return "BOM has no problems"
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    parts = [f"{counts[k]} {k.replace('_', ' ')}" for k in PROBLEM_KINDS if k in counts]
    n = len(problems)
    return (
        f"BOM has {n} problem{'s' if n != 1 else ''} ({', '.join(parts)}); "
        f"first: {problems[0].message}"
    )


# --------------------------------------------------------------------------- compiled graph


def _blank_mask(names: np.ndarray) -> np.ndarray:
    """True for names that are empty or whitespace only (names already str)."""
    return np.fromiter(map(str.isspace, names), dtype=bool, count=len(names)) | (names == "")


def _norm_name(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # Excel hands numeric item codes over as floats: 1001.0 -> '1001'
    return str(v)


def _factorize_names(arrays: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Factorise several arrays of item names into one id space.

    Returns the code arrays (-1 for blank / missing) and the names (object array of str)."""
    lens = [len(a) for a in arrays]
    vals = np.concatenate([np.asarray(a, dtype=object) for a in arrays]) if arrays else np.zeros(0, object)
    codes, uniq = pd.factorize(vals, use_na_sentinel=True)
    uniq = np.asarray(uniq, dtype=object)
    if len(uniq) and pd.api.types.infer_dtype(uniq, skipna=False) != "string":
        # mixed types (e.g. numeric codes from Excel): normalise to str, merge equal spellings
        norm = np.array([_norm_name(u) for u in uniq], dtype=object)
        remap, uniq = pd.factorize(norm)
        uniq = np.asarray(uniq, dtype=object)
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    blank = _blank_mask(uniq)
    if blank.any():
        keep = ~blank
        newid = np.cumsum(keep) - 1
        newid[blank] = -1
        codes = np.where(codes >= 0, newid[np.maximum(codes, 0)], -1)
        uniq = uniq[keep]
    codes = codes.astype(np.int64, copy=False)
    out, start = [], 0
    for n in lens:
        out.append(codes[start : start + n])
        start += n
    return out, uniq


@dataclass(eq=False)
class BomGraph:
    """A BOM compiled to integer ids (line order preserved: line i is bom row position i).

    ``names[id]`` is the item; ``parent``/``component`` are ids per line (-1 = blank cell).
    Build it once with :meth:`from_frame` and pass it to the functions below to avoid
    re-factorising strings."""

    names: np.ndarray
    parent: np.ndarray
    component: np.ndarray
    qty_per: np.ndarray
    scrap_pct: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_items(self) -> int:
        return len(self.names)

    @property
    def n_lines(self) -> int:
        return len(self.parent)

    @classmethod
    def from_frame(cls, bom: pd.DataFrame, extra_items: Iterable | None = None) -> "BomGraph":
        missing = [c for c in ("parent", "component", "qty_per") if c not in bom.columns]
        if missing:
            raise ValueError(f"bom frame is missing column(s): {', '.join(missing)}")
        if extra_items is None:
            extra = np.zeros(0, dtype=object)
        elif isinstance(extra_items, np.ndarray):
            extra = extra_items.astype(object, copy=False)
        else:
            extra = np.asarray(list(extra_items), dtype=object)
        (p, c, _), names = _factorize_names(
            [bom["parent"].to_numpy(dtype=object), bom["component"].to_numpy(dtype=object), extra]
        )
        qty = pd.to_numeric(bom["qty_per"], errors="coerce").to_numpy(dtype=float)
        if "scrap_pct" in bom.columns:
            scrap = pd.to_numeric(bom["scrap_pct"], errors="coerce").to_numpy(dtype=float)
        else:
            scrap = np.zeros(len(bom))
        g = cls(names, p, c, qty, scrap)
        g._cache["extra_codes"] = _
        return g

    @classmethod
    def from_codes(cls, names, parent, component, qty_per, scrap_pct) -> "BomGraph":
        """Build directly from integer ids (no pandas); used by the benchmark."""
        return cls(
            np.asarray(names, dtype=object),
            np.asarray(parent, dtype=np.int64),
            np.asarray(component, dtype=np.int64),
            np.asarray(qty_per, dtype=float),
            np.asarray(scrap_pct, dtype=float),
        )

    def ids(self, items: Iterable) -> np.ndarray:
        """Ids of the given item names (-1 where unknown)."""
        items = [_norm_name(i) for i in items]
        return pd.Index(self.names).get_indexer(items).astype(np.int64)

    # -- compiled structure -------------------------------------------------------------
    def _valid(self) -> np.ndarray:
        if "valid" not in self._cache:
            self._cache["valid"] = (self.parent >= 0) & (self.component >= 0)
        return self._cache["valid"]

    def structure(self) -> "_Structure":
        """CSR adjacency of the non-blank lines (built once, cached) with duplicate lines and
        the topological peel (low-level codes)."""
        if "structure" not in self._cache:
            self._cache["structure"] = _build_structure(self)
        return self._cache["structure"]

    def weight_matrix(self) -> sparse.csr_matrix:
        """``A[p, c]`` = qty_per * (1 + scrap_pct), duplicate lines summed."""
        if "A" not in self._cache:
            st = self.structure()
            A = sparse.csr_matrix((st.weight, st.indices, st.indptr), shape=(self.n_items,) * 2)
            if st.dup_entries.size:
                A = A.copy()
                A.sum_duplicates()
            else:
                A.has_sorted_indices = True
                A.has_canonical_format = True
            self._cache["A"] = A
        return self._cache["A"]


@dataclass(eq=False)
class _Structure:
    graph: "BomGraph"
    indptr: np.ndarray  # CSR over parents, column indices sorted within each row
    indices: np.ndarray  # component id per entry
    weight: np.ndarray  # qty_per * (1 + scrap_pct) per entry
    dup_entries: np.ndarray  # entry positions that repeat the previous (parent, component)
    level: np.ndarray  # low-level code per id; -1 = on a cycle or below one (not peeled)
    layers: list  # ids per level, top (0) first

    @property
    def line(self) -> np.ndarray:
        """bom line (row position) per entry -- only needed to report problems, so built lazily
        by the same counting sort with the line number as payload."""
        if not hasattr(self, "_line"):
            g = self.graph
            line = np.flatnonzero(g._valid())
            _, indices, data = _coo_to_csr(g.n_items, g.parent[line], g.component[line], line.astype(float))
            assert np.array_equal(indices, self.indices)
            self._line = data.astype(np.int64)
        return self._line


def _coo_to_csr(n: int, row: np.ndarray, col: np.ndarray, data: np.ndarray):
    """Counting-sort the entries by row (no summing of duplicates), then sort within rows."""
    nnz = len(row)
    idx = np.int32 if max(n, nnz) < np.iinfo(np.int32).max else np.int64
    try:
        from scipy.sparse import _sparsetools  # O(nnz + n) counting sort, keeps duplicates

        indptr = np.empty(n + 1, dtype=idx)
        indices = np.empty(nnz, dtype=idx)
        out = np.empty(nnz, dtype=data.dtype)
        _sparsetools.coo_tocsr(n, n, nnz, row.astype(idx), col.astype(idx), data, indptr, indices, out)
    except Exception:  # pragma: no cover - private scipy API moved: plain stable sort
        order = np.argsort(row, kind="stable")
        indices, out = col[order].astype(idx), data[order]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))]).astype(idx)
    M = sparse.csr_matrix((out, indices, indptr), shape=(n, n))
    M.sort_indices()  # sorts the data along with the indices
    return M.indptr, M.indices, M.data


def _peel(n: int, indptr: np.ndarray, indices: np.ndarray):
    """Kahn's algorithm, one vectorised step per level: level[i] = longest path from a top item.
    Items on a cycle, or below one, are never peeled (level -1)."""
    indeg = np.bincount(indices, minlength=n)
    frontier = np.flatnonzero(indeg == 0)
    level = np.full(n, -1, dtype=np.int64)
    layers = []
    while frontier.size:
        level[frontier] = len(layers)
        layers.append(frontier)
        starts = indptr[frontier].astype(np.int64)
        lens = indptr[frontier + 1] - starts
        tot = int(lens.sum())
        if tot == 0:
            break
        pos = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(tot)
        dec = np.bincount(indices[pos], minlength=n)
        indeg -= dec
        touched = np.flatnonzero(dec)
        frontier = touched[indeg[touched] == 0]
    return level, layers


def _build_structure(g: "BomGraph") -> _Structure:
    n = g.n_items
    valid = g._valid()
    if valid.all():
        p, c, w = g.parent, g.component, g.qty_per * (1.0 + g.scrap_pct)
    else:
        p, c, w = g.parent[valid], g.component[valid], (g.qty_per * (1.0 + g.scrap_pct))[valid]
    indptr, indices, weight = _coo_to_csr(n, p, c, w)
    # duplicates: equal neighbours inside one row (indices are sorted within rows)
    same = indices[1:] == indices[:-1]
    if same.any():
        row_start = np.zeros(len(indices), dtype=bool)
        row_start[indptr[:-1][np.diff(indptr) > 0]] = True
        dup = np.flatnonzero(same & ~row_start[1:]) + 1
    else:
        dup = np.zeros(0, dtype=np.int64)
    level, layers = _peel(n, indptr, indices)
    return _Structure(g, indptr, indices, weight, dup, level, layers)


def _graph(bom, extra_items=None) -> BomGraph:
    if not isinstance(bom, BomGraph):
        return BomGraph.from_frame(bom, extra_items)
    if extra_items is not None and len(extra_items):
        extra = [_norm_name(i) for i in extra_items if not pd.isna(i)]
        extra = [i for i in extra if i.strip()]
        new = pd.Index(extra)[bom.ids(extra) < 0].unique()
        if len(new):
            return BomGraph(
                np.concatenate([bom.names, new.to_numpy(dtype=object)]),
                bom.parent, bom.component, bom.qty_per, bom.scrap_pct,
            )
    return bom


# --------------------------------------------------------------------------- checks


def _fmt(x: float) -> str:
    return "blank" if np.isnan(x) else f"{x:g}"


def _group_rows(keys: np.ndarray, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Group ``rows`` by ``keys`` (both 1-d); groups ordered by their first row."""
    if len(keys) == 0:
        return []
    order = np.lexsort((rows, keys))
    k, r = keys[order], rows[order]
    cuts = np.flatnonzero(np.diff(k)) + 1
    groups = [(int(kk[0]), rr) for kk, rr in zip(np.split(k, cuts), np.split(r, cuts))]
    groups.sort(key=lambda g: int(g[1][0]))
    return groups


def _find_cycles(g: BomGraph) -> list[BomProblem]:
    """One exact cycle per non-trivial strongly connected component.

    The topological peel (needed for the low-level codes anyway) already proves a BOM acyclic
    when it reaches every item, so connected_components(connection='strong') only runs on
    the items the peel could not reach (those on a cycle or below one)."""
    st = g.structure()
    stuck = st.level < 0
    if not stuck.any():
        return []
    # entries (parent -> component) between stuck items, self-references excluded
    rows = np.repeat(np.arange(g.n_items), np.diff(st.indptr))
    cols = st.indices.astype(np.int64)
    keep = stuck[rows] & stuck[cols] & (rows != cols)
    p, c, line = rows[keep], cols[keep], st.line[keep]
    if p.size == 0:
        return []
    nodes = np.unique(np.concatenate([p, c]))
    lp_all, lc_all = np.searchsorted(nodes, p), np.searchsorted(nodes, c)
    m = len(nodes)
    S = sparse.csr_matrix((np.ones(len(p)), (lp_all, lc_all)), shape=(m, m))
    ncomp, labels = csgraph.connected_components(S, directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=ncomp)
    lab = labels[lp_all]
    inner = (lab == labels[lc_all]) & (sizes[lab] > 1)
    problems = []
    # group the cycle edges by component; order components by their first line
    for _, idx in _group_rows(lab[inner], np.flatnonzero(inner)):
        ep, ec, el = p[idx], c[idx], line[idx]
        nodes = np.unique(np.concatenate([ep, ec]))  # global ids, sorted: first = earliest seen
        lp_, lc_ = np.searchsorted(nodes, ep), np.searchsorted(nodes, ec)
        sub = sparse.csr_matrix((np.ones(len(idx)), (lp_, lc_)), shape=(len(nodes),) * 2)
        start = int(np.searchsorted(nodes, ep[np.argmin(el)]))  # parent of the first line
        order, pred = csgraph.breadth_first_order(
            sub, start, directed=True, return_predecessors=True
        )
        into_start = set(lp_[lc_ == start].tolist())
        u = next(int(x) for x in order if int(x) in into_start)  # nearest node closing the loop
        chain = [u]
        while chain[-1] != start:
            chain.append(int(pred[chain[-1]]))
        chain.reverse()
        chain.append(start)
        rows_by_edge: dict[tuple[int, int], list[int]] = {}
        for a, b, r in zip(lp_.tolist(), lc_.tolist(), el.tolist()):
            rows_by_edge.setdefault((a, b), []).append(r)
        rows = [r for a, b in zip(chain[:-1], chain[1:]) for r in sorted(rows_by_edge[(a, b)])]
        path = [str(g.names[nodes[i]]) for i in chain]
        msg = "cycle: " + ARROW.join(path)
        if len(nodes) > len(chain) - 1:
            msg += f" ({len(nodes)} items are tangled in cycles here; this is one of them)"
        problems.append(BomProblem("cycle", rows, msg, path))
    problems.sort(key=lambda pr: min(pr.rows))  # in bom order
    return problems


def _check(g: BomGraph, known_items: Iterable[str] | None = None) -> list[BomProblem]:
    names = g.names
    p, c, q, s = g.parent, g.component, g.qty_per, g.scrap_pct
    out: dict[str, list[BomProblem]] = {k: [] for k in PROBLEM_KINDS}

    # unknown / blank items
    for r in np.flatnonzero((p < 0) | (c < 0)).tolist():
        which = " and ".join(w for w, x in (("parent", p[r]), ("component", c[r])) if x < 0)
        other = f" ({names[p[r]] if p[r] >= 0 else '?'}{ARROW}{names[c[r]] if c[r] >= 0 else '?'})"
        out["unknown_item"].append(
            BomProblem("unknown_item", [r], f"BOM line has a blank {which}{other}")
        )
    if known_items is not None:
        known = pd.Index([_norm_name(k) for k in known_items if not pd.isna(k)])
        is_known = np.append(pd.Index(names).isin(known), True)  # index -1 -> True (blank)
        bad_p, bad_c = ~is_known[p], ~is_known[c]
        keys = np.concatenate([p[bad_p], c[bad_c]])
        rows = np.concatenate([np.flatnonzero(bad_p), np.flatnonzero(bad_c)])
        for item, rr in _group_rows(keys, rows):
            rr = np.unique(rr).tolist()
            n = len(rr)
            out["unknown_item"].append(BomProblem(
                "unknown_item", rr,
                f"unknown item '{names[item]}' (not in the item list) "
                f"used in {n} BOM line{'s' if n != 1 else ''}",
            ))

    # self references
    for r in np.flatnonzero((p == c) & (p >= 0)).tolist():
        out["self_reference"].append(BomProblem(
            "self_reference", [r], f"self-reference: '{names[p[r]]}' lists itself as a component"
        ))

    # bad quantities (NaN fails every comparison, so test the good range and negate)
    bad_q = ~(q > 0) | ~np.isfinite(q)
    bad_s = ~((s >= 0) & (s < 1))
    for r in np.flatnonzero(bad_q | bad_s).tolist():
        what = []
        if bad_q[r]:
            what.append(f"qty_per is {_fmt(q[r])} (must be a number above 0)")
        if bad_s[r]:
            what.append(f"scrap_pct is {_fmt(s[r])} (must be from 0 up to below 1, e.g. 0.02 for 2 %)")
        lbl = f"{names[p[r]] if p[r] >= 0 else '?'}{ARROW}{names[c[r]] if c[r] >= 0 else '?'}"
        out["bad_quantity"].append(
            BomProblem("bad_quantity", [r], f"bad quantity on {lbl}: " + " and ".join(what))
        )

    # duplicates: equal neighbours in the compiled CSR (sorted within rows)
    st = g.structure()
    if st.dup_entries.size:
        first = st.dup_entries - 1  # walk back to the first entry of each run
        while True:
            back = np.isin(first, st.dup_entries)
            if not back.any():
                break
            first = np.where(back, first - 1, first)
        entries = np.concatenate([first, st.dup_entries])
        keys = np.concatenate([first, first])
        for _, ee in _group_rows(keys, entries):
            rr = np.unique(st.line[ee])
            r0 = int(rr[0])
            out["duplicate_line"].append(BomProblem(
                "duplicate_line", rr.tolist(),
                f"duplicate line: '{names[p[r0]]}' lists component '{names[c[r0]]}' "
                f"{len(rr)} times",
            ))

    out["cycle"] = _find_cycles(g)
    return [prob for k in PROBLEM_KINDS for prob in out[k]]


def check_bom(bom: pd.DataFrame | BomGraph, known_items: Iterable[str] | None = None) -> list[BomProblem]:
    """All problems in the BOM (empty list = clean).

    kinds: 'unknown_item' (blank cell, or not in ``known_items`` when given),
    'self_reference', 'bad_quantity' (qty_per <= 0 / NaN, scrap_pct < 0, >= 1 or NaN),
    'duplicate_line' (same parent & component twice), 'cycle' (one exact path per strongly
    connected component, with the rows of its edges in path order)."""
    return _check(_graph(bom), known_items)


def _raise_if(problems: list[BomProblem], kinds: Iterable[str] | None = None) -> None:
    if kinds is not None:
        kinds = set(kinds)
        problems = [p for p in problems if p.kind in kinds]
    if problems:
        raise BomError(problems)


# --------------------------------------------------------------------------- levels


def low_level_codes(bom: pd.DataFrame | BomGraph) -> pd.Series:
    """item -> low-level code (0 = top / finished goods; an item's code is the deepest level at
    which it appears anywhere).  Raises BomError on cycles, self-references and blank items
    (quantities and duplicates do not matter for levels)."""
    g = _graph(bom)
    _raise_if(_check(g), ("cycle", "self_reference", "unknown_item"))
    lvl = g.structure().level
    return pd.Series(lvl, index=pd.Index(g.names, name="item"), name="level")


# --------------------------------------------------------------------------- rollup


@dataclass
class Rollup:
    unit_cost: pd.DataFrame  # item, level, material, labour, overhead, own_cost, children_cost, unit_cost
    by_level: pd.DataFrame  # item, level_below, cost


@dataclass
class _RollupArrays:
    """Per item id; ``order`` lists the ids by low-level code (then id)."""

    order: np.ndarray
    level: np.ndarray  # low-level code
    own: np.ndarray  # n x 3 own cost per element
    rolled: np.ndarray  # n x 3 rolled cost per element
    by_level: np.ndarray  # (max_level + 1) x n: by_level[d, i] = contribution of depth d to i
    height: np.ndarray  # deepest level below each item


def _rollup_arrays(A: sparse.csr_matrix, layers: list, own: np.ndarray) -> _RollupArrays:
    """Bottom-up over the low-level codes: each level's parents in one sparse product.

    Work matrix Z = [rolled material, labour, overhead | depth 0, 1, ..., L contributions].
    For the parents P of level l (their components all sit deeper, so are final already):
        Z[P, :3] = own[P] + A[P] @ Z[:, :3]
        Z[P, 4:] = A[P] @ Z[:, 3:3+L]       (depth d of a parent = depth d-1 of its children)
    Every BOM line is touched exactly once; a shared sub-assembly is costed once."""
    n = A.shape[0]
    L = max(len(layers) - 1, 0)
    Z = np.zeros((n, 4 + L))
    Z[:, :3] = own
    Z[:, 3] = own.sum(axis=1)
    # heights fit a small int: the gathers below then mostly hit the cache
    hdt = np.int16 if L < np.iinfo(np.int16).max else np.int64
    height = np.zeros(n, dtype=hdt)
    has_kids = np.diff(A.indptr) > 0
    for l in range(L - 1, -1, -1):
        rows = layers[l]
        rows = rows[has_kids[rows]]
        if rows.size == 0:
            continue
        S = A[rows]
        Y = S @ Z
        Y[:, :3] += own[rows]
        Y[:, 4:] = Y[:, 3:-1]
        Y[:, 3] = Z[rows, 3]
        Z[rows] = Y
        height[rows] = np.maximum.reduceat(height[S.indices], S.indptr[:-1]) + 1
    order = np.concatenate(layers) if layers else np.zeros(0, dtype=np.int64)
    level = np.empty(n, dtype=np.int64)
    level[order] = np.repeat(np.arange(len(layers)), [len(x) for x in layers])
    return _RollupArrays(order, level, own, Z[:, :3], Z[:, 3:].T, height.astype(np.int64))


def _cost_matrix(g: BomGraph, costs: pd.DataFrame | None, ids: np.ndarray | None = None) -> np.ndarray:
    own = np.zeros((g.n_items, 3))
    if costs is None or len(costs) == 0:
        return own
    if "item" not in costs.columns:
        raise ValueError("costs frame is missing column: item")
    if ids is None:
        ids = g.ids(costs["item"].tolist())
    dup = pd.Series(ids[ids >= 0]).duplicated()
    if dup.any():
        twice = sorted({str(g.names[i]) for i in ids[ids >= 0][dup.to_numpy()]})
        raise ValueError(f"costs list these item(s) more than once: {', '.join(twice[:10])}")
    ok = ids >= 0
    for j, col in enumerate(COST_ELEMENTS):
        if col in costs.columns:
            vals = pd.to_numeric(costs[col], errors="coerce").fillna(0.0).to_numpy(dtype=float)
            own[ids[ok], j] = vals[ok]
    return own


def rollup(bom: pd.DataFrame | BomGraph, costs: pd.DataFrame | None, items: Iterable[str] | None = None) -> Rollup:
    """Rolled-up standard cost.

    unit cost = own material + labour + overhead + sum(qty_per * (1 + scrap_pct) * child unit
    cost).  ``unit_cost`` columns material/labour/overhead are the rolled totals per element
    (so they add up to unit_cost); own_cost + children_cost == unit_cost too.  ``by_level`` has
    one row per item and depth 0..(deepest level below the item); its costs add up to
    unit_cost.  Items absent from ``costs`` have own cost 0; ``items`` restricts (and orders)
    the output and may name items that are not in the BOM.  Raises BomError on any problem
    reported by check_bom."""
    if items is not None:
        items = [_norm_name(i) for i in items if not (pd.isna(i) or str(i).strip() == "")]
        items = list(dict.fromkeys(items))
    extra = costs["item"].to_numpy(dtype=object) if costs is not None and "item" in costs.columns else np.zeros(0, object)
    all_extra = np.concatenate([extra, np.asarray(items or [], dtype=object)])
    cost_ids = None
    if isinstance(bom, BomGraph):
        g = _graph(bom, all_extra)
    else:  # cost items are factorised together with the bom: no second lookup
        g = BomGraph.from_frame(bom, all_extra)
        cost_ids = g._cache.pop("extra_codes")[: len(extra)]
    _raise_if(_check(g))
    own = _cost_matrix(g, costs, cost_ids)
    r = _rollup_arrays(g.weight_matrix(), g.structure().layers, own)

    if items is None:  # by level, then in BOM order (sorting a million strings is slow)
        sel = r.order
    else:
        sel = g.ids(items)
    own_cost = r.own[sel].sum(axis=1)
    total = r.rolled[sel].sum(axis=1)
    unit_cost = pd.DataFrame({
        "item": g.names[sel],
        "level": r.level[sel],
        "material": r.rolled[sel, 0],
        "labour": r.rolled[sel, 1],
        "overhead": r.rolled[sel, 2],
        "own_cost": own_cost,
        "children_cost": total - own_cost,
        "unit_cost": total,
    })
    h = r.height[sel]
    rep = np.repeat(np.arange(len(sel)), h + 1)
    depth = np.arange(len(rep)) - np.repeat(np.cumsum(h + 1) - (h + 1), h + 1)
    bl = r.by_level
    by_level = pd.DataFrame({
        "item": g.names[sel][rep],
        "level_below": depth.astype(np.int64),
        "cost": bl[depth, sel[rep]],
    })
    return Rollup(unit_cost, by_level)


# --------------------------------------------------------------------------- where used


def where_used(bom: pd.DataFrame | BomGraph, item: str, indented: bool = True) -> pd.DataFrame:
    """Every item that uses ``item``, directly or through sub-assemblies.

    indented=True: one row per path, depth first (an indented where-used report): parent,
    level (1 = direct parent), qty_per = quantity of ``item`` per one parent along that path
    (product of qty_per * (1 + scrap_pct)), component = the item the parent uses on that path.
    indented=False: one row per ancestor: parent, level = deepest level at which it uses
    ``item``, qty_per = total over all paths.  Raises BomError on any BOM problem."""
    item = _norm_name(item)
    g = _graph(bom, [item])
    _raise_if(_check(g))
    A = g.weight_matrix()
    target = int(g.ids([item])[0])
    if not indented:
        n = g.n_items
        v = np.zeros(n)
        v[target] = 1.0
        tot = np.zeros(n)
        lvl = np.zeros(n, dtype=np.int64)
        d = 0
        while d <= n:
            v = A @ v
            d += 1
            hit = v > 0
            if not hit.any():
                break
            tot += v
            lvl[hit] = d
        idx = np.flatnonzero(tot > 0)
        df = pd.DataFrame({"parent": g.names[idx].astype(object), "level": lvl[idx], "qty_per": tot[idx]})
        return df.sort_values(["level", "parent"], kind="stable").reset_index(drop=True)

    AC = A.tocsc()
    names = g.names

    def parents_of(x: int):
        lo, hi = AC.indptr[x], AC.indptr[x + 1]
        rows, w = AC.indices[lo:hi], AC.data[lo:hi]
        order = np.argsort(names[rows].astype(str), kind="stable")
        return rows[order], w[order]

    out_p, out_l, out_q, out_c = [], [], [], []
    stack = []
    ps, ws = parents_of(target)
    stack.extend((int(pp), 1, float(ww), target) for pp, ww in zip(ps[::-1], ws[::-1]))
    while stack:
        node, lvl_, q, child = stack.pop()
        out_p.append(names[node]); out_l.append(lvl_); out_q.append(q); out_c.append(names[child])
        ps, ws = parents_of(node)
        stack.extend((int(pp), lvl_ + 1, q * float(ww), node) for pp, ww in zip(ps[::-1], ws[::-1]))
    return pd.DataFrame({
        "parent": pd.Series(out_p, dtype=object),
        "level": pd.Series(out_l, dtype=np.int64),
        "qty_per": pd.Series(out_q, dtype=float),
        "component": pd.Series(out_c, dtype=object),
    })


# --------------------------------------------------------------------------- explosion


def explode(production: pd.DataFrame, bom: pd.DataFrame | BomGraph) -> pd.DataFrame:
    """Dependent demand: production (item, period, qty) -> item, period, qty of every component
    at every level (gross of scrap: qty_per * (1 + scrap_pct)), summed per item and period, in
    the same period (no lead-time offset).  Produced items themselves are not included unless
    they are also components of something produced.  Raises BomError on any BOM problem."""
    for col in ("item", "period", "qty"):
        if col not in production.columns:
            raise ValueError(f"production frame is missing column: {col}")
    g = _graph(bom, production["item"].tolist())
    _raise_if(_check(g))
    empty = pd.DataFrame({
        "item": pd.Series([], dtype=object),
        "period": production["period"].iloc[:0].reset_index(drop=True),
        "qty": pd.Series([], dtype=float),
    })
    if len(production) == 0 or g.n_items == 0:
        return empty
    ids = g.ids(production["item"].tolist())
    pcode, periods = pd.factorize(production["period"], sort=True)
    qty = pd.to_numeric(production["qty"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    ok = (ids >= 0) & (pcode >= 0)
    n, T = g.n_items, len(periods)
    P = sparse.csr_matrix((qty[ok], (ids[ok], pcode[ok])), shape=(n, T))
    AT = g.weight_matrix().T.tocsr()
    R = sparse.csr_matrix((n, T))
    cur = P
    for _ in range(n + 1):
        cur = AT @ cur
        cur.eliminate_zeros()
        if cur.nnz == 0:
            break
        R = R + cur
    R = R.tocoo()
    R.eliminate_zeros()
    if R.nnz == 0:
        return empty
    df = pd.DataFrame({
        "item": g.names[R.row].astype(object),
        "period": periods[R.col],
        "qty": R.data,
    })
    return df.sort_values(["item", "period"], kind="stable").reset_index(drop=True)
