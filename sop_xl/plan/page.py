"""A review page described as data: cells, column widths, charts, page breaks and print setup.

Pages generated at run time (the family pages) must be written by both adapters -- FileBook with
openpyxl, LiveBook with xlwings -- so the layout is decided once, here, as plain values, and each
adapter only renders it. The geometry (column pixels, where chart frames go) is shared with the
template's Dashboard, so every review sheet places its charts by the same rule and the same test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Landscape on A4 or Letter: the narrower page (Letter, 11 in) with 0.4 in side margins, and the lower
# one (A4, 8.27 in) with 0.5 in top and bottom margins, in 96 dpi pixels (the unit of column widths).
PRINT_WIDTH_PX = (11 - 2 * 0.4) * 96
PRINT_HEIGHT_PX = (8.27 - 2 * 0.5) * 96
MIN_SCALE = 73  # 11 pt body text stays at 8 pt or more
ROW_PX = 20  # default row height, 15 pt
PX_PER_CM = 96 / 2.54


def column_px(width: float) -> int:
    """Screen pixels of a column of ``width`` characters (Calibri 11: 7 px a digit plus 5 px padding)."""
    return int(width * 7 + 5)


def scale_for(width_px: float) -> int:
    """The print scale that fits ``width_px`` across the page, but no smaller than MIN_SCALE: a wider
    sheet prints on more pages across rather than in unreadable type."""
    fit = math.floor(100 * PRINT_WIDTH_PX / max(width_px, 1))
    return max(MIN_SCALE, min(100, fit))


def place_charts(widths_px: list[float], first_row: int, rows: list[list[tuple[float, float]]],
                 gap_px: int = 16, row_px: int = ROW_PX) -> list[tuple[int, int]]:
    """(row, column) anchors, 1-based, of charts laid out in rows: ``rows`` holds per row of charts
    their (width, height) in cm. A chart starts at the first column boundary past the frame to its left
    plus a gap; a row of charts starts at the first row below the tallest frame above plus a gap. Frames
    therefore never overlap, whatever the column widths."""
    anchors = []
    row = first_row
    for charts in rows:
        col, x = 1, 0.0  # x: left edge of column ``col`` in pixels
        for i, (w_cm, _h_cm) in enumerate(charts):
            anchors.append((row, col))
            if i == len(charts) - 1:
                break
            right = x + w_cm * PX_PER_CM + gap_px
            while x < right:
                if col > len(widths_px):
                    raise ValueError("the charts do not fit across the columns given")
                x += widths_px[col - 1]
                col += 1
        tallest = max(h for _w, h in charts) * PX_PER_CM
        row += math.ceil((tallest + gap_px) / row_px)
    return anchors


def rows_reached(anchor_row: int, height_cm: float, row_px: int = ROW_PX) -> int:
    """The last row a chart frame anchored at ``anchor_row`` reaches into."""
    return anchor_row + math.ceil(height_cm * PX_PER_CM / row_px)


@dataclass
class Cell:
    value: Any
    number_format: str = "General"
    bold: bool = False
    italic: bool = False
    size: float = 11
    colour: str = "000000"
    fill: str | None = None      # background colour, e.g. "EDEDED"
    align: str | None = None     # "left", "right", "center"
    wrap: bool = False
    indent: int = 0
    merge_to: int | None = None  # last column of a merged cell on the same row


@dataclass
class Series:
    row: int                  # the row holding the values; its label cell is in ``label_col``
    first_col: int
    last_col: int
    label_col: int
    colour: str
    kind: str = "line"        # "line" or "bar"
    dashed: bool = False
    secondary: bool = False   # on a second value axis (right), e.g. days next to units


@dataclass
class Chart:
    title: str
    anchor: tuple[int, int]    # (row, column), 1-based
    width_cm: float
    height_cm: float
    categories: tuple[int, int, int]  # (row, first column, last column) of the month labels
    series: list[Series]
    y_title: str = ""
    y2_title: str = ""


@dataclass
class Page:
    """One generated sheet. ``print_columns`` limits the printed area (chart data may sit beside it)."""
    sheet: str
    cells: dict[tuple[int, int], Cell]
    widths: dict[int, float]           # column -> width in characters
    heights: dict[int, float] = field(default_factory=dict)  # row -> height in points
    charts: list[Chart] = field(default_factory=list)
    row_breaks: list[int] = field(default_factory=list)      # a new printed page after these rows
    print_columns: int = 0
    title_rows: tuple[int, int] | None = None                # repeated on every printed page
    tab_colour: str = "C55A11"

    @property
    def last_row(self) -> int:
        return max((r for r, _c in self.cells), default=1)

    def printed_width_px(self) -> float:
        return sum(column_px(self.widths.get(c, 8.43)) for c in range(1, self.print_columns + 1))

    @property
    def scale(self) -> int:
        return scale_for(self.printed_width_px())


def safe_sheet_name(text: str, taken: set[str], prefix: str = "") -> str:
    """A sheet name Excel accepts, unique against ``taken`` (compared as Excel does, ignoring case):
    at most 31 characters, none of []:*?/\\, not starting or ending with an apostrophe."""
    clean = "".join(" " if ch in '[]:*?/\\' else ch for ch in str(text))
    clean = " ".join(clean.split()).strip("'") or "(blank)"
    name = (prefix + clean)[:31].rstrip()
    lowered = {t.lower() for t in taken}
    n = 2
    while name.lower() in lowered:
        tail = f" ({n})"
        name = (prefix + clean)[: 31 - len(tail)].rstrip() + tail
        n += 1
    return name
