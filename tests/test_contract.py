"""The contract is declared once and consistent with the engine it feeds."""
from sop_xl import contract as k
from sop_xl.engine.forecast import MODEL_NAMES


def test_names_are_unique_and_every_table_sheet_is_in_the_workbook():
    assert len({t.name for t in k.TABLES.values()}) == len(k.TABLES)
    for t in k.TABLES.values():
        assert t.sheet in k.SHEET_ORDER, t.sheet
        assert len(set(t.fields)) == len(t.fields), t.name
        assert len({h.lower() for h in t.headers}) == len(t.headers), t.name
        assert set(t.keys) <= set(t.fields), t.name
        for ref in t.refs:
            assert ref.field in t.fields and ref.target_field in k.TABLES[ref.table].fields
    assert len(set(k.SHEET_ORDER)) == len(k.SHEET_ORDER)


def test_forecast_model_setting_offers_only_models_the_engine_knows():
    assert set(k.SETTINGS_BY_NAME["ForecastModel"].choices) <= set(MODEL_NAMES)


def test_formula_columns_name_fields_of_their_table():
    import re
    named = []
    for t in k.TABLES.values():
        for c in t.columns:
            if c.formula:
                for field in re.findall(r"\{C:(\w+)\}", c.formula):
                    assert field in t.fields, (t.name, c.header, field)
                    named.append((t.name, field))
    assert (k.DEMAND.name, "sales_override") in named  # the check above saw the formulas


def test_every_setting_is_read_by_the_code():
    """A setting on the Settings sheet that nothing reads would mislead the planner."""
    from pathlib import Path
    root = Path(k.__file__).parent
    source = "\n".join(p.read_text() for p in root.rglob("*.py") if p.name != "contract.py")
    for s in k.SETTINGS:
        reads = (f'["{s.name}"]', f"['{s.name}']", f'.get("{s.name}")')
        assert any(r in source for r in reads), f"setting {s.name} is read by nothing"
