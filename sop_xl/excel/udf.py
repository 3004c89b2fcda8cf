"""The plumbing every SOP_* worksheet function shares: declaration, guard and caches.

* :func:`udf` declares a worksheet function: xlwings' ``xw.func`` / ``xw.arg`` (real in Windows
  Excel, no-ops elsewhere; nothing from xlwings PRO), an entry in :data:`REGISTRY` (from which the
  VBA wrappers are generated) and the guard, so the function is written once, under its own name.
* The guard: a cell never shows a traceback. :class:`UdfArgError` (bad input) becomes one line
  prefixed with the function name, :class:`UserError` is shown as is (a BOM cycle path), anything
  else ``"SOP_X: internal error (TypeName): <first 80 characters>"``.
* Two bounded LRU caches make an unchanged sheet recalculate at once: engine results
  (:data:`CACHE_SIZE` entries) and parsed ranges (:data:`PARSED_SIZE`). :func:`parsed_range`
  memoises a parser on a 128-bit fingerprint of the raw cell values, and :func:`engine_result`
  memoises an engine call on its parsed arguments (so a row and a column holding the same numbers
  share one result, and UDFs that make the same call share it). Input errors are cached too (they
  are a property of the input); unexpected failures are not.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import pickle
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import xlwings as xw

from sop_xl.excel.args import UdfArgError

CATEGORY = "S&OP"
# Engine results kept. More than the forecast cells of a big sheet: an LRU smaller than the cells
# recalculated in turn misses on every one of them (each is evicted just before it is asked again).
# An entry is a few kB (18 months: ~4 kB; 240 months and a forecast table: more), so ~10-100 MB.
CACHE_SIZE = 2048
PARSED_SIZE = 256  # parsed ranges (a large table each, possibly); a miss only re-parses (~0.1 ms a column)
MAX_MESSAGE = 255  # one readable cell


# ===================================================================================== registry
@dataclass(frozen=True)
class UdfSpec:
    name: str  # the Excel (and Python) function name, SOP_*
    description: str  # one line for the function wizard
    params: list  # [(name, optional, doc), ...] in signature order
    async_mode: str | None = None  # "threading": xlwings runs it off Excel's thread (see udf())


REGISTRY: dict[str, UdfSpec] = {}
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def udf(description: str, args: dict[str, str], ranges: tuple[str, ...] = (), async_mode: str | None = None):
    """Declare a worksheet function: the guard, xlwings' decorators and an entry in REGISTRY.

    ``args`` documents every parameter (the function wizard shows it); ``ranges`` names those that
    take a range (xlwings passes them as a list of rows, ``ndim=2``). Every argument arrives raw,
    errors as text ('#N/A'); optional parameters default to None.

    ``async_mode="threading"`` (xlwings' only async mode) for a function that may run for seconds:
    xlwings returns "#N/A waiting..." at once, runs the function on a worker thread and then
    re-enters the cell's formula, which picks the finished result from xlwings' cache - Excel is
    not frozen meanwhile (README, "Cell functions": the limits). The VBA wrapper is the same as a
    synchronous function's: xlwings decides in Python (``xlwings.udfs.call_udf``)."""
    if async_mode not in (None, "threading"):
        raise ValueError('async_mode must be None or "threading" (the only mode xlwings has)')

    def deco(f: Callable) -> Callable:
        name = f.__name__
        sig = inspect.signature(f)
        names = list(sig.parameters)
        if not _PLAIN.match(name) or not name.startswith("SOP_"):
            raise ValueError(f"UDF name {name!r} must be SOP_ and letters/digits/underscore")
        if set(args) != set(names):
            raise ValueError(f"{name}: docs for {sorted(args)} but parameters {names}")
        unknown = set(ranges) - set(names)
        if unknown:
            raise ValueError(f"{name}: ranges name unknown parameters {sorted(unknown)}")
        params = []
        for p in sig.parameters.values():
            if p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD or not _PLAIN.match(p.name):
                raise ValueError(f"{name}: parameter {p.name!r} must be plain positional")
            if p.default is not inspect.Parameter.empty and p.default is not None:
                raise ValueError(f"{name}: optional {p.name!r} must default to None")
            params.append((p.name, p.default is not inspect.Parameter.empty, args[p.name]))

        @functools.wraps(f)  # keeps the signature, which xlwings reads through __wrapped__
        def guarded(*a):
            try:
                return f(*a)
            except UdfArgError as e:
                return one_line(f"{name}: {e}")
            except UserError as e:
                return one_line(str(e))
            except Exception as e:  # noqa: BLE001 - a cell must show a message, never a traceback
                return one_line(f"{name}: internal error ({type(e).__name__}): {str(e)[:80]}")

        guarded.__doc__ = description  # xlwings shows the docstring in the function wizard
        wrapped = guarded
        for p in reversed(names):  # xw.arg first, xw.func outermost (xlwings' documented order)
            ndim = {"ndim": 2} if p in ranges else {}
            wrapped = xw.arg(p, err_to_str=True, doc=args[p], **ndim)(wrapped)
        wrapped = xw.func(category=CATEGORY, **({"async_mode": async_mode} if async_mode else {}))(wrapped)
        REGISTRY[name] = UdfSpec(name, description, params, async_mode)
        return wrapped

    return deco


# ===================================================================================== guard
class UserError(Exception):
    """A message for the cell, shown as is (no function prefix), e.g. a BOM cycle path."""


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


# ===================================================================================== caches
class LRU:
    """Bounded, thread-safe memo of values (and of deterministic input errors). A key being
    computed is computed once: other callers of the same key (background cells over one history,
    SOP_FORECAST and SOP_MODEL side by side) wait for that computation and share its result."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict = {}  # key -> Event set when its computation has ended
        self.hits = self.misses = 0

    def get(self, key, compute: Callable[[], Any]):
        while True:
            with self._lock:
                if key in self._data:
                    self._data.move_to_end(key)
                    self.hits += 1
                    ok, value = self._data[key]
                    if ok:
                        return value
                    raise value
                running = self._computing.get(key)
                if running is None:
                    self.misses += 1
                    self._computing[key] = threading.Event()
                    break
            running.wait()  # then look again: a result, or (an unexpected failure) compute it here
        try:
            entry = (True, compute())
        except (UdfArgError, UserError) as e:
            entry = (False, e)
        except BaseException:
            with self._lock:
                self._computing.pop(key).set()
            raise
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
            self._computing.pop(key).set()
        if entry[0]:
            return entry[1]
        raise entry[1]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


RESULTS = LRU(CACHE_SIZE)  # engine results, keyed on the parsed arguments
PARSED = LRU(PARSED_SIZE)  # parsed ranges, keyed on a fingerprint of the raw cell values


def digest(obj) -> bytes:
    """A 128-bit fingerprint of plain values (lists/tuples of float, str, None, bool, datetime ...).

    pickle writes every value with its type (TRUE, 1 and 1.0, or '1' and 1.0, differ), and equal
    bytes always mean equal values, so the fingerprint is a safe cache key; it is made at C speed
    (about 2 ms for 8,000 cells) and the dict then compares 16 bytes, not the whole range."""
    return hashlib.blake2b(pickle.dumps(obj, protocol=5), digest_size=16).digest()


@dataclass(frozen=True)
class Parsed:
    value: Any  # the parsed argument (tuples of float / str / datetime)
    key: bytes  # digest(value): what an engine-result key holds instead of the value


def parsed(kind, parse: Callable[[], Any], *raw) -> Parsed:
    """``parse()`` memoised on ``kind`` and the raw cell values (an unchanged large range is parsed
    once; parse errors are memoised too). Input that cannot be fingerprinted is simply parsed."""

    def compute():
        value = parse()
        return Parsed(value, digest(value))

    try:
        key = (kind, digest(raw))
    except Exception:  # noqa: BLE001 - unpicklable objects in a cell
        return compute()
    return PARSED.get(key, compute)


def parsed_range(parse: Callable[[Any], Any]) -> Callable[[Any], Parsed]:
    """Decorate a parser of one raw range so that it returns a memoised :class:`Parsed`."""

    @functools.wraps(parse)
    def memo(raw) -> Parsed:
        return parsed(parse, lambda: parse(raw), raw)

    return memo


def engine_result(f: Callable) -> Callable:
    """Memoise ``f`` on its positional arguments, a :class:`Parsed` counting by its fingerprint.

    Callers pass every argument (no defaults), so equal calls always make equal keys."""

    @functools.wraps(f)
    def memo(*args):
        key = (f.__qualname__,) + tuple(a.key if isinstance(a, Parsed) else a for a in args)
        return RESULTS.get(key, lambda: f(*args))

    return memo


def clear_cache() -> None:
    RESULTS.clear()
    PARSED.clear()


def cache_info() -> dict:
    """Counters of the engine-result cache (``parsed_*``: the memo of parsed ranges)."""
    return {"hits": RESULTS.hits, "misses": RESULTS.misses, "size": len(RESULTS), "maxsize": RESULTS.maxsize,
            "parsed_hits": PARSED.hits, "parsed_misses": PARSED.misses, "parsed_size": len(PARSED)}
