"""A stand-in for the parts of xlwings' object model the LiveBook adapter uses, backed by openpyxl.

No Excel runs on Linux, so this mimics xlwings' documented behaviour: ``Range.value`` of one cell is
a scalar, ``options(ndim=2)`` always gives rows of values, assigning a list of rows writes a block
from the top-left cell, ``Table.resize(range)`` moves the table's extent.
"""
from openpyxl.utils import get_column_letter, range_boundaries


class FakeRange:
    def __init__(self, ws, r1, c1, r2=None, c2=None, ndim=None):
        self.ws, self.r1, self.c1 = ws, r1, c1
        self.r2, self.c2 = r2 or r1, c2 or c1
        self.ndim = ndim

    row = property(lambda self: self.r1)
    sheet = property(lambda self: FakeSheet(self.ws))
    column = property(lambda self: self.c1)
    merge_cells = False

    @property
    def address(self):
        return f"${get_column_letter(self.c1)}${self.r1}:${get_column_letter(self.c2)}${self.r2}"

    def options(self, ndim=None, **_kw):
        return FakeRange(self.ws, self.r1, self.c1, self.r2, self.c2, ndim)

    @property
    def value(self):
        grid = [[self.ws.cell(r, c).value for c in range(self.c1, self.c2 + 1)] for r in range(self.r1, self.r2 + 1)]
        if self.ndim == 2:
            return grid
        if self.ndim == 1 or len(grid) == 1 or len(grid[0]) == 1:
            flat = [v for row in grid for v in row]
            return flat[0] if (len(flat) == 1 and self.ndim is None) else flat
        return grid

    @value.setter
    def value(self, data):
        if not isinstance(data, list):
            data = [[data]]
        elif data and not isinstance(data[0], list):
            data = [data]
        for i, row in enumerate(data):
            for j, v in enumerate(row):
                self.ws.cell(self.r1 + i, self.c1 + j).value = v

    # formatting, as xlwings offers it (the family pages); COM-only calls (``api``) are not mimicked
    def _cells(self):
        return [self.ws.cell(r, c) for r in range(self.r1, self.r2 + 1) for c in range(self.c1, self.c2 + 1)]

    @property
    def number_format(self):
        return self.ws.cell(self.r1, self.c1).number_format

    @number_format.setter
    def number_format(self, fmt):
        for cell in self._cells():
            cell.number_format = fmt

    @property
    def font(self):
        return _FakeFont(self)

    @property
    def color(self):
        return self.ws.cell(self.r1, self.c1).fill.fgColor.rgb

    @color.setter
    def color(self, colour):
        from openpyxl.styles import PatternFill
        for cell in self._cells():
            cell.fill = PatternFill("solid", fgColor=colour.lstrip("#"))

    @property
    def column_width(self):
        return self.ws.column_dimensions[get_column_letter(self.c1)].width

    @column_width.setter
    def column_width(self, width):
        self.ws.column_dimensions[get_column_letter(self.c1)].width = width

    @property
    def row_height(self):
        return self.ws.row_dimensions[self.r1].height

    @row_height.setter
    def row_height(self, height):
        self.ws.row_dimensions[self.r1].height = height

    def merge(self):
        self.ws.merge_cells(start_row=self.r1, start_column=self.c1, end_row=self.r2, end_column=self.c2)

    @property
    def api(self):
        raise AttributeError("the COM object model is not mimicked")

    def clear_contents(self):
        for r in range(self.r1, self.r2 + 1):
            for c in range(self.c1, self.c2 + 1):
                self.ws.cell(r, c).value = None


class _FakeFont:
    """xlwings' Font: setting an attribute sets it on every cell of the range."""
    _names = {"name": "name", "size": "size", "bold": "bold", "italic": "italic", "color": "color"}

    def __init__(self, rng):
        object.__setattr__(self, "_rng", rng)

    def __getattr__(self, key):
        value = getattr(self._rng.ws.cell(self._rng.r1, self._rng.c1).font, key)
        return ("#" + value.rgb[-6:]) if key == "color" and value is not None else value

    def __setattr__(self, key, value):
        from copy import copy
        for cell in self._rng._cells():
            font = copy(cell.font)
            setattr(font, key, value.lstrip("#") if key == "color" else value)
            cell.font = font


class _FakeCharts:
    def __init__(self):
        self.added = []

    def add(self, left=0, top=0, width=355, height=211):
        self.added.append((left, top, width, height))

        class _Chart:
            @property
            def api(self):
                raise AttributeError("the COM object model is not mimicked")
        return _Chart()


class FakeTable:
    def __init__(self, ws, name):
        self.ws, self.name = ws, name

    def _bounds(self):
        return range_boundaries(self.ws.tables[self.name].ref)

    @property
    def header_row_range(self):
        c1, r1, c2, _r2 = self._bounds()
        return FakeRange(self.ws, r1, c1, r1, c2)

    @property
    def data_body_range(self):
        c1, r1, c2, r2 = self._bounds()
        return FakeRange(self.ws, r1 + 1, c1, r2, c2) if r2 > r1 else None

    def resize(self, rng):
        ref = f"{get_column_letter(rng.c1)}{rng.r1}:{get_column_letter(rng.c2)}{rng.r2}"
        self.ws.tables[self.name].ref = ref
        if self.ws.tables[self.name].autoFilter is not None:
            self.ws.tables[self.name].autoFilter.ref = ref


class FakeSheet:
    def __init__(self, ws):
        self.ws, self.name = ws, ws.title

    @property
    def tables(self):
        return {name: FakeTable(self.ws, name) for name in self.ws.tables}

    @property
    def charts(self):
        return self.ws.__dict__.setdefault("_fake_charts", _FakeCharts())

    def delete(self):
        self.ws.parent.remove(self.ws)

    @property
    def api(self):
        raise AttributeError("the COM object model is not mimicked")

    def range(self, a, b=None):
        if b is None:
            return FakeRange(self.ws, a[0], a[1])
        return FakeRange(self.ws, a[0], a[1], b[0], b[1])

    @property
    def used_range(self):
        return FakeRange(self.ws, 1, 1, self.ws.max_row, self.ws.max_column)


class FakeName:
    def __init__(self, wb, name):
        sheet, coord = next(iter(wb.defined_names[name].destinations))
        c1, r1, _c2, _r2 = range_boundaries(coord.replace("$", ""))
        self.refers_to_range = FakeRange(wb[sheet], r1, c1)


class FakeApp:
    def __init__(self):
        self.status_bar = False
        self.alerts = []
        self.status_history = []

    def __setattr__(self, key, value):
        if key == "status_bar" and hasattr(self, "status_history"):
            self.status_history.append(value)
        object.__setattr__(self, key, value)

    def alert(self, text, title=None, **_kw):
        self.alerts.append((title, text))


class FakeBook:
    def __init__(self, wb, name="Plan.xlsm"):
        self.wb, self.app = wb, FakeApp()
        self.fullname = name
        self.name = name.replace("\\", "/").rsplit("/", 1)[-1]
        book = self

        class _Api:  # the COM Workbook object: only what publishing uses
            def SaveCopyAs(self, path):  # noqa: N802 - COM name
                book.wb.save(path)
        self.api = _Api()

    @property
    def sheets(self):
        return _Sheets(self.wb)

    @property
    def names(self):
        wb = self.wb

        class _Names:
            def __getitem__(self, name):
                if wb.defined_names.get(name) is None:
                    raise KeyError(name)
                return FakeName(wb, name)
        return _Names()


class _Sheets:
    def __init__(self, wb):
        self.wb = wb

    def __iter__(self):
        return iter(FakeSheet(ws) for ws in self.wb.worksheets)

    def __getitem__(self, name):
        return FakeSheet(self.wb[name])

    def add(self, name, after=None):
        index = self.wb.sheetnames.index(after.name) + 1 if after is not None else 0
        return FakeSheet(self.wb.create_sheet(name, index))
