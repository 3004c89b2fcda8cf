"""The workbook contract, declared once.

Every sheet name, Excel table (ListObject) name, column header, type, unit and named settings cell
lives here. The template builder, the readers, the writers and the validators all read this module;
nothing else in the code base spells a sheet or header name. Engine code sees only the snake_case
``field`` names (see docs/engine-frames.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

# Column kinds. Validation turns each into a typed pandas column.
TEXT, NUMBER, INTEGER, DATE, CHOICE, PERCENT, BOOL = "text", "number", "integer", "date", "choice", "percent", "bool"

INPUT, OUTPUT, MIXED = "input", "output", "mixed"


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    kind: str = NUMBER
    unit: str = ""
    required: bool = True
    default: Any = None
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    choices: tuple[str, ...] = ()
    help: str = ""
    width: int = 12
    # Excel formula for computed columns; {r} is the Excel row, {C:field} the column letter of field.
    formula: str | None = None
    editable: bool = True  # False: written by the add-in, even inside an input table
    kept: bool = False  # typed by people on an output sheet; carried to the next run by the table's keys
    fmt: str = ""  # number format when the kind's default does not fit (whole units, money without cents)

    @property
    def number_format(self) -> str:
        if self.fmt:
            return self.fmt
        if self.unit == "currency":  # money totals: whole, so millions fit their column
            return "#,##0"
        return {
            DATE: "yyyy-mm",
            PERCENT: "0.0%",
            INTEGER: "0",
            NUMBER: "#,##0.00",
        }.get(self.kind, "General")


@dataclass(frozen=True)
class Ref:
    """A foreign key: values of ``field`` must exist in ``table``.``target_field``."""
    field: str
    table: str
    target_field: str = "item"


@dataclass(frozen=True)
class Table:
    sheet: str
    name: str  # the Excel ListObject name
    role: str
    title: str
    description: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...] = ()
    refs: tuple[Ref, ...] = ()
    min_rows: int = 0  # an input table that must hold data

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    @property
    def fields(self) -> list[str]:
        return [c.field for c in self.columns]

    def column(self, field_name: str) -> Column:
        for c in self.columns:
            if c.field == field_name:
                return c
        raise KeyError(f"{self.name} has no field {field_name!r}")

    # Header row and first column of the table on its sheet (rows 1-3 hold title and description).
    header_row: int = 4
    first_col: int = 1


def C(header, field_name, kind=NUMBER, **kw) -> Column:  # noqa: N802 - reads like a declaration
    return Column(header, field_name, kind, **kw)


WHOLE = "#,##0"  # units and hours on review sheets: whole numbers read faster in a meeting

_item = C("Item", "item", TEXT, help="Item code, as in the Items table", width=14)
_period = C("Period", "period", DATE, help="First day of the month", width=11)
_family = C("Family", "family", TEXT, width=14)
_resource = C("Resource", "resource", TEXT, width=14)

ITEMS = Table(
    "Items", "tblItems", INPUT, "Items",
    "One row per item: finished goods (FG), sub-assemblies (SA) and components (RM).",
    (
        _item,
        C("Description", "description", TEXT, required=False, default="", width=28),
        C("Family", "family", TEXT, required=False, default="", width=14,
          help="Product family for finance and scenarios (finished goods)"),
        C("Type", "item_type", CHOICE, choices=("FG", "SA", "RM"), width=6,
          help="FG finished good, SA sub-assembly, RM raw material / component"),
        C("Price", "price", NUMBER, unit="currency/unit", required=False, default=0.0, min=0),
        C("InitialInventory", "initial_inventory", NUMBER, unit="units", required=False, default=0.0, min=0),
        C("SafetyStock", "safety_stock", NUMBER, unit="units", required=False, default=None, min=0,
          help="Blank = from the SafetyStockPolicy setting (service level or periods of cover)"),
        C("MaxInventory", "max_inventory", NUMBER, unit="units", required=False, default=None, min=0,
          help="Blank = no limit"),
        C("HoldingCost", "holding_cost", NUMBER, unit="currency/unit/period", required=False, default=0.0, min=0),
        C("ShortageCost", "shortage_cost", NUMBER, unit="currency/unit/period", required=False, default=None,
          min=0, help="Cost of a unit backlogged one period, or lost; blank = the price"),
        C("Policy", "policy", CHOICE, choices=("backlog", "lost"), required=False, default="backlog", width=9),
        C("LeadTime", "lead_time", INTEGER, unit="periods", required=False, default=0, min=0, max=36, width=9,
          help="Whole months from the start of production (or the order) to availability"),
        C("OpeningBacklog", "opening_backlog", NUMBER, unit="units", required=False, default=0.0, min=0,
          help="Units owed to customers at the plan start (shipped late, first)"),
        C("Priority", "priority", NUMBER, unit="currency/unit", required=False, default=None, min=0,
          help="Extra value per unit shipped: higher priority is served first when capacity is short"),
        C("MinBatch", "min_batch", NUMBER, unit="units", required=False, default=None, min=0,
          help="If produced in a month, at least this many (solved as a MIP)"),
        C("LotSize", "lot_size", NUMBER, unit="units", required=False, default=None, min=0, min_inclusive=False,
          help="Production is a whole multiple of this (solved as a MIP)"),
        # product life cycle (engine.forecast.lifecycle)
        C("LaunchDate", "launch_date", DATE, required=False, default=None,
          help="New item: forecast 0 before this month"),
        C("LikeItem", "like_item", TEXT, required=False, default=None, width=14,
          help="New item with less than a year of sales: forecast = this item's forecast, scaled to LaunchVolume"),
        C("LaunchVolume", "launch_volume", NUMBER, unit="units/period", required=False, default=None, min=0,
          help="Expected mean monthly demand in the first year after launch; blank = as much as the LikeItem"),
        C("PhaseOutDate", "phase_out_date", DATE, required=False, default=None,
          help="Forecast 0 from this month on"),
        C("Owner", "owner", TEXT, required=False, default="", width=12,
          help="The planner who answers for this item's overrides, uplifts and decisions (sop-xl collect)"),
    ),
    keys=("item",), refs=(Ref("like_item", "tblItems"),), min_rows=1,
)

ACTUALS = Table(
    "Actuals", "tblActuals", INPUT, "Sales actuals",
    "Long and paste-friendly: one row per item and month. Returns may be negative.",
    (_item, _period, C("Qty", "qty", NUMBER, unit="units"),
     C("Promo", "promo", BOOL, required=False, default=False, width=8,
       help="TRUE = a promotion month: left out of model fitting (replaced like a one-off); Qty is kept")),
    keys=("item", "period"), refs=(Ref("item", "tblItems"),), min_rows=1,
)

DEMAND = Table(
    "Demand", "tblDemand", MIXED, "Consensus demand",
    "Stat forecast is written by Forecast. Type overrides and event uplifts; Consensus is a formula.",
    (
        _item, _period,
        C("StatForecast", "stat_forecast", NUMBER, unit="units", required=False, editable=False, default=0.0),
        C("SalesOverride", "sales_override", NUMBER, unit="units", required=False, min=0,
          help="Replaces the statistical forecast when filled"),
        C("EventUplift", "event_uplift", NUMBER, unit="units", required=False, default=0.0,
          help="Units added for promotions and events"),
        C("Consensus", "consensus", NUMBER, unit="units", required=False, editable=False,
          formula="=IF(ISNUMBER({C:sales_override}{r}),{C:sales_override}{r},{C:stat_forecast}{r})"
                  "+N({C:event_uplift}{r})"),
        C("Reason", "reason", TEXT, required=False, default="", width=28,
          help="Why the override or uplift: kept with it in the Audit table and the archive"),
    ),
    keys=("item", "period"), refs=(Ref("item", "tblItems"),),
)

RESOURCES = Table(
    "Resources", "tblResources", INPUT, "Resource capacity",
    "Hours available per resource and month, and how much overtime is possible at what cost.",
    (
        _resource, _period,
        C("AvailableHours", "available_hours", NUMBER, unit="hours", min=0),
        C("MaxOvertimeHours", "max_overtime_hours", NUMBER, unit="hours", required=False, default=0.0, min=0),
        C("OvertimeCost", "overtime_cost", NUMBER, unit="currency/hour", required=False, default=0.0, min=0),
    ),
    keys=("resource", "period"), min_rows=1,
)

ROUTING = Table(
    "Routing", "tblRouting", INPUT, "Routing",
    "Hours of each resource needed to make one unit of an item.",
    (_item, _resource, C("HoursPerUnit", "hours_per_unit", NUMBER, unit="hours/unit", min=0)),
    keys=("item", "resource"),
    refs=(Ref("item", "tblItems"), Ref("resource", "tblResources", "resource")),
)

BOM = Table(
    "BOM", "tblBOM", INPUT, "Bill of materials",
    "One row per parent-component line. Scrap is a percentage of the quantity.",
    (
        C("Parent", "parent", TEXT, width=14), C("Component", "component", TEXT, width=14),
        C("QtyPer", "qty_per", NUMBER, unit="units/unit", min=0, min_inclusive=False),
        C("ScrapPct", "scrap_pct", PERCENT, required=False, default=0.0, min=0, max=0.99),
    ),
    keys=("parent", "component"),
    refs=(Ref("parent", "tblItems"), Ref("component", "tblItems")),
)

RECEIPTS = Table(
    "Receipts", "tblReceipts", INPUT, "Scheduled receipts",
    "Open purchase and production orders and work in progress: units that become available at the start "
    "of the month. Orders due before the plan start are taken in the first month and reported.",
    (_item, _period, C("Qty", "qty", NUMBER, unit="units", min=0)),
    refs=(Ref("item", "tblItems"),),
)

SUPPLY = Table(
    "SupplyLimits", "tblSupply", INPUT, "Supply limits",
    "The most that can be bought (or started) of an item per month: supplier capacity or allocation.",
    (_item, _period, C("MaxQty", "max_qty", NUMBER, unit="units", min=0)),
    keys=("item", "period"), refs=(Ref("item", "tblItems"),),
)

COSTS = Table(
    "Costs", "tblCosts", INPUT, "Own costs per unit",
    "Cost added at this level only; components are rolled up from the BOM.",
    (
        _item,
        C("Material", "material", NUMBER, unit="currency/unit", required=False, default=0.0, min=0),
        C("Labour", "labour", NUMBER, unit="currency/unit", required=False, default=0.0, min=0),
        C("Overhead", "overhead", NUMBER, unit="currency/unit", required=False, default=0.0, min=0),
    ),
    keys=("item",), refs=(Ref("item", "tblItems"),),
)

BUDGET = Table(
    "Budget", "tblBudget", INPUT, "Budget",
    "Revenue, cost of goods sold and (optionally) units budgeted per family and month.",
    (
        _family, _period,
        C("Revenue", "revenue", NUMBER, unit="currency", min=0),
        C("COGS", "cogs", NUMBER, unit="currency", min=0),
        C("Units", "units", NUMBER, unit="units", required=False, min=0, fmt="#,##0",
          help="Units budgeted to ship; blank = no units budget (the family pages then show none)"),
    ),
    keys=("family", "period"),
)

SCENARIOS = Table(
    "Scenarios", "tblScenarios", INPUT, "Scenarios",
    "Each row changes one thing in a named scenario: demand by family, capacity by resource, or cost by item.",
    (
        C("Scenario", "scenario", TEXT, width=14),
        C("Change", "change", CHOICE, choices=("demand", "capacity", "cost"), width=10),
        C("Target", "target", TEXT, width=14, help="Family (demand), resource (capacity) or item (cost); * = all"),
        C("Factor", "factor", NUMBER, min=0, help="1.10 = +10 %"),
    ),
    keys=("scenario", "change", "target"),
)

# ----------------------------------------------------------------------------- outputs
FORECAST = Table(
    "Forecast", "tblForecast", OUTPUT, "Statistical forecast",
    "Written by Forecast: the forecast and its prediction intervals per item and month.",
    (
        _item, _period,
        C("Forecast", "yhat", NUMBER, unit="units"),
        C("Lo80", "lo_80", NUMBER, unit="units"), C("Hi80", "hi_80", NUMBER, unit="units"),
        C("Lo95", "lo_95", NUMBER, unit="units"), C("Hi95", "hi_95", NUMBER, unit="units"),
        C("Model", "model", TEXT, width=18),
    ),
)

FORECAST_MODELS = Table(
    "ForecastModels", "tblForecastModels", OUTPUT, "Model choice and accuracy",
    "Per item: demand class, chosen model and why, holdout accuracy, value added vs seasonal naive.",
    (
        _item,
        C("DemandClass", "demand_class", TEXT),
        C("Model", "model", TEXT, width=18),
        C("Observations", "n_obs", INTEGER),
        C("MASE", "mase"), C("sMAPE", "smape", PERCENT), C("WAPE", "wape", PERCENT), C("Bias", "bias", PERCENT),
        C("FVA", "fva", PERCENT, help="Forecast value added vs seasonal naive"),
        C("ErrorSD", "rmse", NUMBER, unit="units",
          help="σ of the forecast error: holdout RMSE; the service-level safety stock uses it"),
        C("HoldoutDemand", "volume", NUMBER, unit="units",
          help="Mean monthly demand in the holdout: the weight of the item in the accuracy KPI"),
        C("Note", "note", TEXT, width=48),
        C("Cleaned", "cleaned", TEXT, width=28,
          help="One-offs replaced for model fitting only (month: actual → value used); Actuals is unchanged"),
    ),
)

SUPPLY_PLAN = Table(
    "SupplyPlan", "tblSupplyPlan", OUTPUT, "Supply plan",
    "Written by Balance: a plan that respects capacity, supply limits and lead times. Shipped = on time + "
    "from backlog; production starts in Production and is available LeadTime months later (Completions).",
    (
        _item, _period,
        C("Demand", "demand", NUMBER, unit="units"),
        C("ShippedOnTime", "shipped_on_time", NUMBER, unit="units"),
        C("ShippedFromBacklog", "shipped_from_backlog", NUMBER, unit="units"),
        C("Shipped", "shipped", NUMBER, unit="units"),
        C("Backlog", "backlog", NUMBER, unit="units", help="Owed to customers at the end of the month"),
        C("Lost", "lost", NUMBER, unit="units"),
        C("Production", "production", NUMBER, unit="units", help="Started (or ordered) this month"),
        C("Completions", "completions", NUMBER, unit="units"),
        C("Receipts", "receipts", NUMBER, unit="units"),
        C("DependentDemand", "dependent_demand", NUMBER, unit="units", help="Used by parents' production"),
        C("Inventory", "inventory", NUMBER, unit="units"),
        C("SafetyStock", "safety_stock", NUMBER, unit="units"),
        C("Cover", "cover", NUMBER, unit="periods"),
    ),
)

def _use_of_a_limit(used: tuple[str, str], limit: tuple[str, str], unit: str, extra: tuple = ()) -> tuple:
    """Columns of a capacity-like output (resource hours, material supply): use, limit, [extra],
    utilisation and the shadow price of one more unit of the limit."""
    per = unit[:-1] if unit.endswith("s") else unit
    return (C(used[0], used[1], NUMBER, unit=unit), C(limit[0], limit[1], NUMBER, unit=unit), *extra,
            C("Utilization", "utilization", PERCENT), C("ShadowPrice", "shadow_price", NUMBER, unit=f"currency/{per}"))


UTILIZATION = Table(
    "Utilization", "tblUtilization", OUTPUT, "Capacity utilisation",
    "Load against available hours; the shadow price is what one more hour would save.",
    (
        _resource, _period,
        *_use_of_a_limit(("LoadHours", "load_hours"), ("AvailableHours", "available_hours"), "hours",
                         extra=(C("OvertimeHours", "overtime_hours", NUMBER, unit="hours"),)),
    ),
)

MATERIALS = Table(
    "Materials", "tblMaterials", OUTPUT, "Material supply",
    "Use of each supply-limited item against its limit; the shadow price is what one more unit would save.",
    (
        _item, _period,
        *_use_of_a_limit(("Used", "used"), ("MaxQty", "max_qty"), "units"),
    ),
)

BOTTLENECKS = Table(
    "Bottlenecks", "tblBottlenecks", OUTPUT, "Bottlenecks",
    "Binding resource- and material-months ranked by what one more hour or unit is worth, with the items "
    "whose plan they change and the money at stake.",
    (
        C("Rank", "rank", INTEGER, width=6),
        C("Kind", "kind", TEXT, width=9, help="resource or material"),
        C("Constraint", "constraint", TEXT, width=14, help="The resource, or the supply-limited item"),
        _period,
        C("ShadowPrice", "shadow_price", NUMBER, unit="currency/unit"),
        C("Utilization", "utilization", PERCENT),
        C("Items", "items", TEXT, width=48),
        C("ValueAtStake", "value_at_stake", NUMBER, unit="currency"),
    ),
)

UNMET = Table(
    "Unmet", "tblUnmet", OUTPUT, "Unmet demand",
    "Demand the plan cannot serve on time, and why.",
    (
        _item, _period, C("Demand", "demand", NUMBER, unit="units"), C("Unmet", "unmet", NUMBER, unit="units"),
        C("Reason", "reason", TEXT, width=48),
    ),
)

BALANCE_COSTS = Table(
    "BalanceCosts", "tblBalanceCosts", OUTPUT, "Plan cost",
    "Cost of the capacity-constrained plan beside the unconstrained (infinite capacity) plan.",
    (
        C("Component", "component", TEXT, width=22),
        C("Constrained", "constrained", NUMBER, unit="currency"),
        C("Unconstrained", "unconstrained", NUMBER, unit="currency"),
        C("Delta", "delta", NUMBER, unit="currency"),
    ),
)

COST_ROLLUP = Table(
    "CostRollup", "tblCostRollup", OUTPUT, "Cost roll-up",
    "Unit cost of every item rolled up through the BOM, by cost element.",
    (
        _item, C("Level", "level", INTEGER, width=7),
        C("Material", "material", unit="currency/unit"), C("Labour", "labour", unit="currency/unit"),
        C("Overhead", "overhead", unit="currency/unit"), C("OwnCost", "own_cost", unit="currency/unit"),
        C("ChildrenCost", "children_cost", unit="currency/unit"), C("UnitCost", "unit_cost", unit="currency/unit"),
    ),
)

REQUIREMENTS = Table(
    "Requirements", "tblRequirements", OUTPUT, "Component requirements",
    "The supply plan exploded through the BOM: dependent demand per component and month.",
    (_item, _period, C("Qty", "qty", NUMBER, unit="units")),
)

FINANCIALS = Table(
    "Financials", "tblFinancials", OUTPUT, "Financial plan",
    "Revenue, cost of goods sold and margin per family and month, against budget.",
    (
        _family, _period, C("Units", "units", unit="units", fmt=WHOLE),
        C("Revenue", "revenue", unit="currency"), C("COGS", "cogs", unit="currency"),
        C("Margin", "margin", unit="currency"), C("MarginPct", "margin_pct", PERCENT),
        C("BudgetRevenue", "budget_revenue", unit="currency"), C("BudgetMargin", "budget_margin", unit="currency"),
        C("RevenueVar", "revenue_var", unit="currency"), C("MarginVar", "margin_var", unit="currency"),
        C("InventoryValue", "inventory_value", unit="currency"),
    ),
)

EXCEPTIONS = Table(
    "Exceptions", "tblExceptions", OUTPUT, "Decisions by money",
    "One row per problem, money lost first. Owner, Decision and Status are yours: kept when the plan is re-run.",
    (
        C("Rank", "rank", INTEGER, width=6), C("Kind", "kind", TEXT, width=17),
        C("Subject", "subject", TEXT, width=10), C("Family", "family", TEXT, width=12),
        C("From", "period_from", DATE, width=9), C("To", "period_to", DATE, width=9),
        C("Qty", "qty", NUMBER, width=9, fmt=WHOLE,
          help="Units (unmet, below safety stock) or overtime hours; a margin or bias is in the message"),
        C("ValueAtRisk", "value_at_risk", NUMBER, unit="currency", width=13,
          help="Unmet: revenue at price; overload: overtime cost; low margin: margin short of the threshold; "
               "below safety stock: the largest shortfall at cost; bias: plan revenue at that bias"),
        C("Message", "message", TEXT, width=40),
        C("Owner", "owner", TEXT, width=10, kept=True), C("Decision", "decision", TEXT, width=26, kept=True),
        C("Status", "status", TEXT, width=9, kept=True, help="open, decided, done"),
    ),
    keys=("kind", "subject", "period_from"),
)

SCENARIO_RESULTS = Table(
    "ScenarioResults", "tblScenarioResults", OUTPUT, "Scenarios side by side",
    "Each scenario run through consensus, balance and finance.",
    (
        C("Scenario", "scenario", TEXT, width=14), C("ServiceLevel", "service_level", PERCENT),
        C("Revenue", "revenue", unit="currency"), C("Margin", "margin", unit="currency"),
        C("MarginPct", "margin_pct", PERCENT), C("OvertimeHours", "overtime_hours", unit="hours", fmt=WHOLE),
        C("AvgInventory", "avg_inventory", unit="units", fmt=WHOLE), C("Unmet", "unmet", unit="units", fmt=WHOLE),
        C("PlanCost", "plan_cost", unit="currency"),
        C("RevenueVsBase", "revenue_vs_base", unit="currency", width=14),
        C("MarginVsBase", "margin_vs_base", unit="currency", width=14),
    ),
)

SCENARIO_DIFFS = Table(
    "ScenarioDiffs", "tblScenarioDiffs", OUTPUT, "Scenarios against Base",
    "Each scenario minus Base, per family and month; the whole horizon (blank period) first. Overtime "
    "belongs to resources: it is on the Total rows.",
    (
        C("Scenario", "scenario", TEXT, width=14), _family,
        C("Period", "period", DATE, width=11, help="Blank: the whole horizon (inventory value: its average)"),
        C("Units", "units", unit="units", fmt=WHOLE), C("Revenue", "revenue", unit="currency"),
        C("Margin", "margin", unit="currency"), C("ServiceLevel", "service_level", PERCENT, fmt="+0.0%;-0.0%;0.0%"),
        C("OvertimeHours", "overtime_hours", unit="hours", fmt=WHOLE),
        C("InventoryValue", "inventory_value", unit="currency", width=15),
    ),
)

SNAPSHOTS = Table(
    "Snapshots", "tblSnapshots", OUTPUT, "Plan snapshots",
    "Saved versions of the plan (consensus, supply, financials). Type approved in Approved (any row of a "
    "version) to make it the plan PlanChanges compares with.",
    (
        C("Version", "version", TEXT, width=26), C("Measure", "measure", TEXT, width=14),
        C("Key", "key", TEXT, width=14), _period, C("Value", "value"),
        C("Approved", "approved", TEXT, width=10, kept=True, help="approved = the plan agreed in the review"),
    ),
)

PLAN_CHANGES = Table(
    "PlanChanges", "tblPlanChanges", OUTPUT, "Plan vs approved plan",
    "What changed against the approved snapshot (or the one asked for), by family; units and money apart. "
    "The first row: how much of the first 3 months' production moved.",
    (
        C("Against", "against", TEXT, width=18), _family, C("Measure", "measure", TEXT, width=12),
        C("Key", "key", TEXT, width=12), _period,
        C("PreviousUnits", "previous_units", unit="units", fmt=WHOLE, width=14),
        C("CurrentUnits", "current_units", unit="units", fmt=WHOLE, width=13),
        C("ChangeUnits", "change_units", unit="units", fmt=WHOLE, width=13),
        C("PreviousMoney", "previous_money", unit="currency", width=15),
        C("CurrentMoney", "current_money", unit="currency", width=14),
        C("ChangeMoney", "change_money", unit="currency", width=14),
        C("ChangePct", "change_pct", PERCENT, width=11),
    ),
)

AUDIT = Table(
    "Audit", "tblAudit", OUTPUT, "Changes collected from planners' copies",
    "Written by sop-xl collect: one row per accepted change of an override, uplift, reason or decision.",
    (
        C("Timestamp", "timestamp", TEXT, width=20), C("Planner", "planner", TEXT),
        C("Table", "table", TEXT, width=13), C("Key", "key", TEXT, width=30), C("Column", "column", TEXT, width=14),
        C("Old", "old", TEXT, width=14), C("New", "new", TEXT, width=14), C("Reason", "reason", TEXT, width=32),
        C("Copy", "copy", TEXT, width=24, help="The planner's copy the change came from"),
    ),
)

# Accuracy of archived forecasts (sop-xl accuracy --write): one row per level, key and lag.
_ACC = tuple((f"{m}{f}", f"{m.lower()}_{fld}", fmt) for m, fmt in (("WAPE", PERCENT), ("Bias", PERCENT), ("MASE", NUMBER))
             for f, fld in (("Statistical", "statistical"), ("Consensus", "consensus"), ("Naive", "seasonal_naive")))
FORECAST_ACCURACY = Table(
    "ForecastAccuracy", "tblForecastAccuracy", OUTPUT, "Forecast accuracy by lag (archive)",
    "Archived forecasts against the actuals that then arrived, at lags 1, 3 and 6, per family, planner (owner) "
    "and in total. ValueAdded = 1 - consensus error / statistical error: what overrides and uplifts added.",
    (
        C("Level", "level", TEXT, width=8), C("Key", "key", TEXT, width=14), C("Lag", "lag", INTEGER, width=5),
        C("Pairs", "n", INTEGER, width=7, help="Forecast-actual pairs evaluated"),
        C("Actual", "actual", NUMBER, unit="units", fmt=WHOLE),
        *(C(h, f, kind, width=11, fmt="0.00" if kind == NUMBER else "") for h, f, kind in _ACC),
        C("ValueAdded", "fva", PERCENT, width=11),
        C("Cycles", "cycles", TEXT, width=16, help="The archived cycles evaluated"),
    ),
)

LOG = Table(
    "Log", "tblLog", OUTPUT, "Run log",
    "One row per run of a step.",
    (
        C("Timestamp", "timestamp", TEXT, width=20), C("User", "user", TEXT), C("Step", "step", TEXT),
        C("Status", "status", TEXT, width=8), C("Seconds", "seconds"), C("Message", "message", TEXT, width=70),
    ),
)

DASHBOARD_MONTHS = 18  # months the dashboard's monthly block and heat map show
HEATMAP = Table(
    "Dashboard", "tblHeatmap", OUTPUT, "Utilisation heat map",
    "Load / available hours by resource and plan month (written by Balance).",
    (C("Resource", "resource", TEXT, width=14),)
    + tuple(C(f"M{m:02d}", f"m{m:02d}", PERCENT, width=7) for m in range(1, DASHBOARD_MONTHS + 1)),
    header_row=62,  # below the dashboard's figures and charts (sop_xl/template/dashboard.py)
)

INPUT_TABLES = (ITEMS, ACTUALS, DEMAND, RESOURCES, ROUTING, BOM, RECEIPTS, SUPPLY, COSTS, BUDGET, SCENARIOS)
OUTPUT_TABLES = (FORECAST, FORECAST_MODELS, FORECAST_ACCURACY, SUPPLY_PLAN, UTILIZATION, MATERIALS, BOTTLENECKS, UNMET, BALANCE_COSTS,
                 COST_ROLLUP, REQUIREMENTS, FINANCIALS, EXCEPTIONS, SCENARIO_RESULTS, SCENARIO_DIFFS, SNAPSHOTS,
                 PLAN_CHANGES, LOG, AUDIT, HEATMAP)
TABLES = {t.name: t for t in INPUT_TABLES + OUTPUT_TABLES}

# The workbook's layout version, kept in the workbook as the name SopXlFormat (=N). Raised when a release
# changes sheets, tables, columns or named cells so that `sop-xl upgrade` must migrate older workbooks
# (sop_xl/template/upgrade.py); a workbook without the name is of format 1 (the first release).
WORKBOOK_FORMAT = 3  # 3: the family pages' stamp (named cell StampFamilyPages on Start)
FORMAT_NAME = "SopXlFormat"
# Sheets and tables renamed since the first release: (old sheet, old table, the table now).
RENAMED = (("History", "tblHistory", ACTUALS),)


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Setting:
    name: str  # also the workbook-level defined name of the cell
    label: str
    kind: str
    default: Any
    help: str = ""
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    unit: str = ""


SETTINGS = (
    Setting("PlanStart", "Plan start", DATE, date(2026, 1, 1), "First month of the plan (first day of a month)"),
    Setting("Horizon", "Horizon", INTEGER, 18, "Months to plan", min=1, max=120, unit="months"),
    Setting("SeasonLength", "Season length", INTEGER, 12, "Periods per seasonal cycle", min=1, max=52,
            unit="periods"),
    Setting("ServiceLevel", "Service level", PERCENT, 0.95,
            "Probability of not running out: sets the safety stock of items whose SafetyStock is blank "
            "(policy 'service')", min=0.5, max=0.999),
    Setting("SafetyStockPolicy", "Safety stock policy", CHOICE, "service",
            "Blank SafetyStock cells: 'service' = z(ServiceLevel) × forecast error × √(lead time + 1); "
            "'cover' = SafetyCover months of average demand", choices=("service", "cover")),
    Setting("SafetyCover", "Safety cover", NUMBER, 0.5, "Months of average demand held as safety stock "
            "(policy 'cover')", min=0, max=12, unit="months"),
    Setting("Currency", "Currency", TEXT, "EUR", "Shown in money columns"),
    Setting("ForecastModel", "Forecast model", CHOICE, "auto",
            "auto = best per item by holdout; or a fixed model",
            choices=("auto", "ensemble", "AutoETS", "AutoTheta", "AutoARIMA", "AutoCES", "SeasonalNaive",
                     "Naive", "CrostonSBA", "TSB", "ADIDA", "IMAPA")),
    Setting("Reconciliation", "Reconciliation", CHOICE, "none",
            "Item forecasts made coherent with family and total forecasts (hierarchicalforecast): none, "
            "bottom_up, ols, wls_struct or mint_shrink (MinTrace, shrunk covariance of holdout errors)",
            choices=("none", "bottom_up", "ols", "wls_struct", "mint_shrink")),
    Setting("Scenario", "Scenario", TEXT, "Base", "Scenario applied to Balance, Financials and Run all (Base = none)"),
    Setting("Objective", "Objective", CHOICE, "cost",
            "cost = meet demand at least cost; margin = earn the most (revenue − variable cost − holding − "
            "overtime − penalties): scarce capacity goes to the demand that earns most", choices=("cost", "margin")),
    Setting("EndInventoryCover", "End inventory", INTEGER, None,
            "Inventory the plan must leave at the horizon end: blank = the safety stock; N = N months of "
            "average demand", min=0, max=24, unit="months"),
    Setting("WholeUnits", "Whole units", BOOL, False,
            "TRUE = produce whole units (a MIP: slower); MinBatch / LotSize on Items also make it a MIP"),
    Setting("MipGap", "MIP gap", PERCENT, 0.005, "A whole-unit plan within this of the best possible is accepted",
            min=0, max=0.5),
    Setting("ExtendLastMonth", "Extend last month", BOOL, False,
            "TRUE = horizon months beyond Resources, Budget or Costs repeat their last month; FALSE = refuse "
            "to plan months they do not cover"),
    Setting("Solver", "Solver", CHOICE, "highs", "LP solver", choices=("highs", "cbc")),
    Setting("SolverMethod", "Solver method", CHOICE, "auto",
            "auto, simplex, interior point, or pdlp (first-order, for very large plans; its gap is logged)",
            choices=("auto", "simplex", "ipm", "pdlp")),
    Setting("MaxUtilization", "Overload threshold", PERCENT, 0.95,
            "Utilisation above this and above 100 % (overtime) is an exception: a resource fully used "
            "without overtime is not overloaded", min=0, max=5),
    Setting("MinMarginPct", "Margin threshold", PERCENT, 0.25, "Margin % below this is an exception",
            min=-1, max=1),
    Setting("Planner", "Planner", TEXT, "",
            "Who plans in this copy of the workbook: sop-xl collect credits its changes to this name and "
            "accepts them for the items this planner owns (Items Owner)"),
    Setting("MaxBiasPct", "Bias threshold", PERCENT, 0.15, "Forecast bias beyond ± this is an exception",
            min=0, max=1),
    Setting("ArchiveUrl", "Archive URL", TEXT, None,
            "Plan archive for Snapshot, New cycle and sop-xl archive: blank = the SQLite file "
            "NAME.archive.sqlite beside the workbook; a team: a SQLAlchemy URL (postgresql+psycopg://host/db)"),
    Setting("ActualsFile", "Actuals file", TEXT, None,
            "The CSV or XLSX file of the closing month's actuals that New cycle rolls in (the button asks for it)"),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}

# Sheets that hold no table, in workbook order around the table sheets.
START_SHEET = "Start"
SETTINGS_SHEET = "Settings"
DASHBOARD_SHEET = "Dashboard"
XLWINGS_CONF_SHEET = "xlwings.conf"  # read by the xlwings VBA module; name fixed by xlwings
LAST_RUN_NAME = "LastRunStatus"  # a named cell on Start

SHEET_ORDER = (
    [START_SHEET, DASHBOARD_SHEET, EXCEPTIONS.sheet, SETTINGS_SHEET]
    + [t.sheet for t in INPUT_TABLES]
    + [t.sheet for t in (FORECAST, FORECAST_MODELS, FORECAST_ACCURACY, SUPPLY_PLAN, UTILIZATION, MATERIALS, BOTTLENECKS, UNMET,
                         BALANCE_COSTS,
                         COST_ROLLUP, REQUIREMENTS, FINANCIALS, SCENARIO_RESULTS, SCENARIO_DIFFS, PLAN_CHANGES,
                         SNAPSHOTS, LOG, AUDIT)]
    + [XLWINGS_CONF_SHEET]
)


def table_by_sheet(sheet: str) -> Table | None:
    """The table that owns a sheet (the Dashboard's heat map does not own its sheet)."""
    return next((t for t in TABLES.values() if t.sheet == sheet and t is not HEATMAP), None)


@dataclass
class Settings:
    """Typed settings as the engine steps use them."""
    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None
