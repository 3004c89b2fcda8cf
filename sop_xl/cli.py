"""The ``sop-xl`` command: the ribbon's steps, headless, on a saved workbook."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

from sop_xl import __version__

EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_LOCKED = 0, 1, 2, 3


def _progress(quiet: bool):
    start = time.perf_counter()

    def say(text: str) -> None:
        if not quiet:
            print(f"  [{time.perf_counter() - start:6.1f} s] {text}", file=sys.stderr, flush=True)
    return say


def cmd_demo(args) -> int:
    from sop_xl.demo.workbook import make_demo_workbook
    from sop_xl.plan.pipeline import STEP_ORDER, run
    from sop_xl.workbook import open_file

    out = Path(args.out)
    if out.suffix.lower() != ".xlsm":
        out = out / "SOP_Demo.xlsm"
    say = _progress(args.quiet)
    say(f"Filling a copy of the template with the demo company (seed {args.seed}) …")
    make_demo_workbook(out, seed=args.seed)
    with open_file(out, progress=say) as book:
        report = run(book, list(STEP_ORDER), progress=None)
        say("Saving …")
        book.save()
    _print_report(report, out)
    return EXIT_OK


def _print_report(report, path: Path) -> None:
    print(f"sop-xl {__version__}: {', '.join(report.steps)} in {report.seconds:.1f} s")
    for line in report.summary:
        print(f"  {line}")
    if report.warnings:
        print(f"  {len(report.warnings)} warning(s), first: {report.warnings[0]}")
    print(f"Workbook: {path.resolve()}")


def check_extension(source: Path, target: Path) -> None:
    from sop_xl.workbook.safe_io import check_extension as check

    check(source, target)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def cmd_run(args) -> int:
    from sop_xl.workbook import open_file
    from sop_xl.plan.pipeline import STEP_ORDER, run

    steps = args.steps or list(STEP_ORDER)
    path = Path(args.workbook)
    if args.out:
        check_extension(path, Path(args.out))  # before any work: the result could not be saved
    say = _progress(args.quiet)
    # With --out elsewhere the workbook is only read: no lock beside it and no write permission needed,
    # so a plan on a read-only share (or a file marked read-only) can be run into a copy of one's own.
    elsewhere = bool(args.out) and not _same_file(path, Path(args.out))
    with open_file(path, progress=say, writable=not elsewhere) as book:
        report = run(book, steps)
        book.save(args.out)
    _print_report(report, Path(args.out) if args.out else path)
    return EXIT_OK


def cmd_validate(args) -> int:
    from sop_xl.workbook import open_file
    from sop_xl.plan.pipeline import validate

    with open_file(args.workbook, writable=False) as book:
        validate(book)
    print(f"{args.workbook}: all input tables and settings are valid")
    return EXIT_OK


def cmd_build_template(args) -> int:
    from sop_xl.template.builder import REPO_TEMPLATE, build_template

    if args.check:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            fresh = build_template(Path(tmp) / "fresh.xlsm")
            same = REPO_TEMPLATE.exists() and fresh.read_bytes() == REPO_TEMPLATE.read_bytes()
        print(f"{REPO_TEMPLATE}: {'up to date' if same else 'DIFFERS from a fresh build: run sop-xl build-template'}")
        return EXIT_OK if same else EXIT_ERROR
    out = build_template(args.out) if args.out else build_template()
    print(f"Template written: {out}")
    return EXIT_OK


def cmd_setup_excel(args) -> int:
    from sop_xl.excel.setup import setup_workbook

    if args.out:
        check_extension(Path(args.workbook), Path(args.out))

    for line in setup_workbook(Path(args.workbook), python=args.python, out=args.out):
        print(line)
    return EXIT_OK


def cmd_upgrade(args) -> int:
    from sop_xl.template.upgrade import upgrade_workbook

    result = upgrade_workbook(args.workbook, dry_run=args.dry_run)
    name = Path(args.workbook).name
    if not result.needed:
        print(f"{name} is in the current layout (format {result.format_before}); nothing to do")
    else:
        print(f"{name}: {'would change' if args.dry_run else 'upgraded'} (format {result.format_before} →"
              f" current):")
        for line in result.changes:
            print(f"  - {line}")
    for line in result.notes:
        print(f"  note: {line}")
    if result.needed and not args.dry_run:
        print("The workbook before the upgrade is kept as the backup beside it. Run `sop-xl run "
              f"{name}` to fill the new columns and sheets.")
    return EXIT_OK


def cmd_new(args) -> int:
    from sop_xl.template.builder import template_path

    out = Path(args.out)
    check_extension(template_path(), out)
    if out.exists() and not args.force:
        print(f"{out} exists; use --force to replace it", file=sys.stderr)
        return EXIT_ERROR
    shutil.copyfile(template_path(), out)
    print(f"New workbook from the template: {out.resolve()}")
    return EXIT_OK


def cmd_review(args) -> int:
    from sop_xl.plan import review
    from sop_xl.workbook import open_file

    say = _progress(args.quiet)
    with open_file(args.workbook, progress=say) as book:
        if args.command == "scenarios":
            result = review.run_scenarios(book)
        elif args.command == "snapshot":
            from sop_xl.archive.from_workbook import snapshot_and_archive
            result, archived = snapshot_and_archive(book, label=args.label, approve=args.approve,
                                                    against=args.against, url=args.db)
            if not archived.startswith("archived"):  # the snapshot is kept (saved below)
                print(f"sop-xl: warning: not archived: {archived}", file=sys.stderr)
            else:
                result = f"{result}\n{archived}"
        else:
            from sop_xl.excel.publish import publish
            result = publish(book, out_dir=args.out, with_inputs=args.with_inputs)
        book.save()  # the Log row (and the snapshot or scenario results)
    if hasattr(result, "to_string"):
        print(result.to_string(index=False, float_format=lambda v: f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"))
    else:
        print(result)
    return EXIT_OK


def cmd_adopt(args) -> int:
    from sop_xl.plan import adopt
    from sop_xl.workbook import open_file

    with open_file(args.workbook, progress=_progress(args.quiet)) as book:  # refused: nothing is saved
        if args.command == "adopt":
            line, version = adopt.adopt_scenario(book, args.scenario)
            line += f'\nUndo: sop-xl restore "{args.workbook}" "{version}"'
        else:
            line = adopt.restore_inputs(book, args.snapshot, replan=not args.no_run)
        book.save()
    print(line)
    return EXIT_OK


def cmd_archive(args) -> int:
    from sop_xl.archive import ArchiveError
    from sop_xl.archive.from_workbook import archive_workbook

    try:
        cycle, written, where = archive_workbook(args.workbook, args.db, progress=_progress(args.quiet))
    except ArchiveError as exc:
        print(f"sop-xl: {exc}; the workbook is unchanged", file=sys.stderr)
        return EXIT_ERROR
    rows = ", ".join(f"{part} {n}" for part, n in written.items())
    print(f"cycle {cycle.cycle:%Y-%m} archived by {cycle.archived_by} to {where}: {rows} rows")
    return EXIT_OK


def cmd_accuracy(args) -> int:
    from sop_xl.archive import ArchiveError
    from sop_xl.archive.accuracy import accuracy_for_workbook

    try:
        res = accuracy_for_workbook(args.workbook, args.db, progress=_progress(args.quiet), write=args.write)
    except ArchiveError as exc:
        print(f"sop-xl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if res.empty:
        print("No archived forecast has its actuals yet: archive a cycle, then roll in the next month's actuals")
        return EXIT_OK
    levels = ("item", "family", "total") if args.items else ("family", "total")
    acc = res.accuracy[res.accuracy["level"].isin(levels)]
    fmt = {c: "{:.3f}".format for c in ("wape", "bias", "mase", "wape_statistical", "wape_consensus", "fva")}
    print(f"Forecast accuracy by lag ({res.rows} forecast-actual pairs)")
    print(acc.to_string(index=False, formatters=fmt, na_rep="-"))
    print("\nValue added by overrides and uplifts (fva = 1 - error of consensus / error of statistical)")
    print(res.value_added.to_string(index=False, formatters=fmt, na_rep="-"))
    return EXIT_OK


def cmd_roll(args) -> int:
    from sop_xl.archive import ArchiveError
    from sop_xl.archive.monthly_roll import roll_workbook

    try:
        roll, cycle, written, where, backup = roll_workbook(args.workbook, args.actuals, args.db,
                                                            progress=_progress(args.quiet))
    except ArchiveError as exc:
        print(f"sop-xl: {exc}; nothing was rolled, the workbook is unchanged", file=sys.stderr)
        return EXIT_ERROR
    print(f"cycle {cycle.cycle:%Y-%m} archived to {where} ({sum(written.values())} rows)")
    print(roll.summary())
    for line in roll.warnings:
        print(f"  {line}")
    print(f"Backup of the workbook before the roll: {backup}")
    return EXIT_OK


def cmd_collect(args) -> int:
    from sop_xl.archive import ArchiveError
    from sop_xl.archive.collect_copies import collect_files

    try:
        result, where = collect_files(args.master, args.copies, args.db, progress=_progress(args.quiet))
    except ArchiveError as exc:
        print(f"sop-xl: {exc}; nothing was collected, the master is unchanged", file=sys.stderr)
        return EXIT_ERROR
    print(f"{args.master}: {result.summary()}; audit rows also in {where}")
    for _, row in result.audit.iterrows():
        print(f"  {row['planner']}: {row['table']} {row['key']} {row['column']} {row['old'] or '(blank)'} -> "
              f"{row['new'] or '(blank)'}" + (f" ({row['reason']})" if row["reason"] else ""))
    if result.conflicts:
        print(f"{len(result.conflicts)} conflict(s): these cells keep the master's value; settle them in the "
              f"master or the copies and collect again:", file=sys.stderr)
        for conflict in result.conflicts:
            print(f"  - {conflict}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def cmd_forecast(args) -> int:
    """Forecast series from files, out of any workbook (sop_xl.scale.series_forecast says how)."""
    from sop_xl.scale import ScaleError
    from sop_xl.scale import series_forecast as sf
    from sop_xl.scale.source import Columns, read_long, read_long_dask

    say = _progress(args.quiet)
    try:
        levels = tuple(int(v) for v in args.levels.split(","))
    except ValueError:
        print(f"sop-xl: --levels {args.levels!r}: expected whole numbers such as 80,95", file=sys.stderr)
        return EXIT_ERROR
    columns = Columns(args.item, args.period, args.qty)
    try:
        settings = sf.Settings(args.horizon, args.season_length, args.model, levels)
        out, folder = sf.check_out(args.out)
        if args.engine == "local":
            say(f"Reading {args.data} …")
            frame = read_long(args.data, columns)
            say(f"{frame['unique_id'].nunique()} series, {len(frame)} rows; forecasting here …")
            result = sf.run_local(frame, settings, args.partition_series, folder, say, n_jobs=args.jobs)
        elif args.engine in ("ray", "spark"):
            from sop_xl.scale import fugue_engines as fe

            with fe.ENGINES[args.engine](args.master if args.engine == "spark" else args.address,
                                         args.workers) as (engine, where, slots):
                say(f"{where}; reading {args.data} …")
                result = fe.run(args.data, columns, settings, engine, slots, args.partitions, folder, say)
        else:
            client = sf.dask_client(args.address, args.workers)
            try:
                say(f"Dask: {client.scheduler.address} with {len(client.nthreads())} worker(s); forecasting …")
                result = sf.run_dask(read_long_dask(args.data, columns), settings, client, args.partitions,
                                     folder, say)
            finally:
                cluster = client.cluster
                client.close()
                if cluster is not None and not args.address:
                    cluster.close()
    except ScaleError as exc:
        print(f"sop-xl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    result = sf.sort_output(result)
    if folder is None:
        sf.write_output(result, out)
        by_model = result.drop_duplicates("item")["model"].value_counts()
        n = result["item"].nunique()
    else:
        by_model = result.groupby("model")["series"].sum().sort_values(ascending=False)
        n = int(result["series"].sum())
    print(f"{n} series forecast {args.horizon} months ahead ({args.engine}) -> {out}")
    print("models: " + ", ".join(f"{m} {c}" for m, c in by_model.items()))
    return _forecast_to_workbook(args, result if folder is None else None, out) if args.to_workbook else EXIT_OK


def _forecast_to_workbook(args, result, out) -> int:
    """Families (or the top N items) of the forecast just made into a workbook (sop_xl.scale.to_workbook)."""
    import pandas as pd

    from sop_xl.scale import ScaleError
    from sop_xl.scale.source import read_families
    from sop_xl.scale.to_workbook import aggregate, write_forecast

    try:
        if result is None:  # parts written by the workers: the workbook needs them all
            result = pd.read_parquet(out)
        family_of = read_families(args.data, args.item, args.family) if args.level == "family" and args.family else None
        rows, models = aggregate(result, args.level, family_of, args.top)
        written, stale = write_forecast(args.to_workbook, rows, models, progress=_progress(args.quiet))
    except ScaleError as exc:
        print(f"sop-xl: {exc}; the workbook was not changed (the forecast file is written)", file=sys.stderr)
        return EXIT_ERROR
    print(f"{args.to_workbook}: {models['item'].nunique()} {args.level} row(s) written: {', '.join(written)}")
    for line in stale:
        print(f"  {line}")
    return EXIT_OK


def cmd_import(args) -> int:
    """An ERP extract into one input table (sop_xl.scale.extract_import says how it is checked)."""
    from sop_xl.scale import ScaleError
    from sop_xl.scale.extract_import import ImportRefused, import_extract, read_mapping

    try:
        mapping, query = read_mapping(args.map) if args.map else ({}, None)
        report = import_extract(args.workbook, args.table, args.source, mapping, args.query or query,
                                dry_run=args.dry_run, progress=_progress(args.quiet))
    except ImportRefused as exc:
        print(f"sop-xl: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except ScaleError as exc:
        print(f"sop-xl: {exc}; nothing was written", file=sys.stderr)
        return EXIT_ERROR
    for line in report.lines():
        print(line)
    print("dry run: nothing was written" if args.dry_run else f"Workbook saved: {args.workbook}")
    return EXIT_OK


def _steps(text: str) -> list[str]:
    """--steps: known step names, comma-separated; a typo is a usage error (exit 2), caught before any
    file is opened."""
    from sop_xl.plan.steps import STEP_ORDER

    steps = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEP_ORDER]
    if unknown or not steps:
        import difflib
        hints = [f"'{u[:30]}'" + (f" (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, STEP_ORDER, 1))
                                  else "") for u in unknown]
        raise argparse.ArgumentTypeError(f"unknown step {', '.join(hints) or '(none given)'}; known: "
                                         f"{', '.join(STEP_ORDER)}")
    return steps


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sop-xl", description="S&OP planning in an Excel workbook, headless.")
    p.add_argument("--version", action="version", version=f"sop-xl {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="fill a copy of the template with the demo company and run every step")
    d.add_argument("--out", default="out", help="folder or .xlsm path (default: out/SOP_Demo.xlsm)")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run planning steps on a workbook and save it")
    r.add_argument("workbook")
    r.add_argument("--steps", type=_steps, help="comma-separated: forecast,balance,cost_rollup,financials,exceptions "
                                   "(default: all, in that order)")
    r.add_argument("--out", help="save to this path instead of over the workbook")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check every input table and setting; change nothing")
    v.add_argument("workbook")
    v.set_defaults(func=cmd_validate)

    b = sub.add_parser("build-template", help="regenerate workbook/SOP_Template.xlsm from the sources")
    b.add_argument("--out", help="write here instead of workbook/SOP_Template.xlsm")
    b.add_argument("--check", action="store_true", help="only check that the committed template is up to date")
    b.set_defaults(func=cmd_build_template)

    n = sub.add_parser("new", help="copy the template to start a new planning workbook")
    n.add_argument("out")
    n.add_argument("--force", action="store_true")
    n.set_defaults(func=cmd_new)

    s = sub.add_parser("setup-excel", help="point a workbook at this Python and repair an xlwings version mismatch")
    s.add_argument("workbook")
    s.add_argument("--python", help="interpreter to write (default: this one; pythonw.exe on Windows)")
    s.add_argument("--out", help="write the set-up copy here (default: in place)")
    s.set_defaults(func=cmd_setup_excel)

    u = sub.add_parser("upgrade", help="bring a workbook made by an older sop-xl to the current layout "
                                       "(renamed sheets, new columns, sheets and settings; a backup is kept)")
    u.add_argument("workbook")
    u.add_argument("--dry-run", action="store_true", help="say what would change; change nothing")
    u.set_defaults(func=cmd_upgrade)

    for name, text in (("scenarios", "run every scenario and write the side-by-side comparison"),
                       ("snapshot", "store the current plan as a version for plan-vs-last-plan, and the cycle in the archive"),
                       ("publish", "write a values-only .xlsx (and a PDF where LibreOffice is installed)")):
        q = sub.add_parser(name, help=text)
        q.add_argument("workbook")
        q.add_argument("--quiet", action="store_true")
        if name == "snapshot":
            q.add_argument("--label", help="version label (default: date and user)")
            q.add_argument("--approve", action="store_true", help="mark this snapshot as the approved plan")
            q.add_argument("--against", help="compare with this snapshot (default: the approved one)")
            q.add_argument("--db", help="archive URL (default: Settings ArchiveUrl, else NAME.archive.sqlite "
                                        "beside the workbook)")
        if name == "publish":
            q.add_argument("--out", help="folder for the published files (default: beside the workbook)")
            q.add_argument("--with-inputs", action="store_true",
                           help="also copy the input and working sheets (default: the review sheets only)")
        q.set_defaults(func=cmd_review)

    a = sub.add_parser("adopt", help="make a scenario the plan: snapshot (for undo), write its changes into the "
                                     "inputs, set Scenario to Base, re-plan")
    a.add_argument("workbook")
    a.add_argument("scenario", help="a scenario of the Scenarios sheet")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=cmd_adopt)

    u = sub.add_parser("restore", help="write back the inputs a snapshot holds (undo of adopt) and re-plan")
    u.add_argument("workbook")
    u.add_argument("snapshot", help="the snapshot's Version, as the adopt's Log row names it")
    u.add_argument("--no-run", action="store_true", help="restore the inputs only; leave the outputs stale")
    u.add_argument("--quiet", action="store_true")
    u.set_defaults(func=cmd_adopt)

    db_help = "SQLAlchemy URL (default: Settings ArchiveUrl, else the sqlite file NAME.archive.sqlite beside the workbook)"
    for name, text, func in (
            ("archive", "store the closing cycle (forecast, consensus, plan, financials) in the archive", cmd_archive),
            ("accuracy", "accuracy by lag of the archived forecasts against the actuals", cmd_accuracy),
            ("roll", "archive the closing cycle, append the month's actuals, move PlanStart one month", cmd_roll)):
        q = sub.add_parser(name, help=text)
        q.add_argument("workbook")
        if name == "roll":
            q.add_argument("--actuals", required=True, help="CSV or XLSX with Item, Period, Qty for the closing month")
        q.add_argument("--db", help=db_help)
        if name == "accuracy":
            q.add_argument("--items", action="store_true", help="show every item, not only families and the total")
            q.add_argument("--write", action="store_true", help="also write the ForecastAccuracy sheet (the Dashboard's "
                                                                "accuracy KPI then comes from the archive)")
        q.add_argument("--quiet", action="store_true")
        q.set_defaults(func=func)

    c = sub.add_parser("collect", help="merge planners' copies (their overrides, uplifts, reasons, decisions) "
                                       "into the master; conflicts listed, every change audited")
    c.add_argument("master")
    c.add_argument("copies", nargs="+", metavar="copy", help="a planner's copy; its Settings Planner names the planner")
    c.add_argument("--db", help=db_help + "; the audit rows go there too")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_collect)

    f = sub.add_parser("forecast", help="forecast series from CSV/Parquet files (long: item, period, qty), "
                                        "here or on a Dask, Ray or Spark cluster; no workbook needed")
    f.add_argument("data", help="a .csv or .parquet file, or a folder of them")
    f.add_argument("--out", required=True, help="OUT.parquet or OUT.csv (one file), or a folder for Parquet parts")
    f.add_argument("--engine", choices=("local", "dask", "ray", "spark"), default="local")
    f.add_argument("--address", help="Dask scheduler (tcp://host:8786) or Ray cluster (ray://host:10001, auto) "
                                     "(default: start a local cluster)")
    f.add_argument("--master", help="spark: master URL, e.g. spark://host:7077 (default: local[N], N = --workers)")
    f.add_argument("--workers", type=int, help="local Dask/Ray/Spark: worker processes (default: one per core)")
    f.add_argument("--partitions", type=int, help="dask/ray/spark: partitions of whole series "
                                                  "(default: 2 per worker thread)")
    f.add_argument("--partition-series", type=int, default=500, help="local: series per partition (default 500)")
    f.add_argument("--jobs", type=int, default=1, help="local: processes statsforecast may use (-1: all cores)")
    f.add_argument("--item", default="item", help="column holding the item (default: item)")
    f.add_argument("--period", default="period", help="column holding the month (default: period)")
    f.add_argument("--qty", default="qty", help="column holding the quantity (default: qty)")
    f.add_argument("--horizon", type=int, default=18, help="months ahead (default 18)")
    f.add_argument("--season-length", type=int, default=12)
    f.add_argument("--model", default="auto", help="auto (as the workbook's default) or one model name")
    f.add_argument("--levels", default="80,95", help="prediction interval levels (default 80,95)")
    f.add_argument("--to-workbook", metavar="BOOK", help="also write Forecast, ForecastModels and Demand of BOOK "
                                                           "at --level family (sums) or item (--top N)")
    f.add_argument("--level", choices=("family", "item"), default="family")
    f.add_argument("--family", help="column holding each series' family (for --level family)")
    f.add_argument("--top", type=int, help="--level item: only the N items with the most forecast volume")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=cmd_forecast)

    m = sub.add_parser("import", help="replace an input table (Actuals, Items, ...) by an extract: CSV, Parquet "
                                      "or a SQL query; checked like the workbook, nothing written on a problem")
    m.add_argument("workbook")
    m.add_argument("table", help="input table by sheet or table name: Actuals, Items, Demand, ...")
    m.add_argument("source", help="a .csv or .parquet file, or a SQLAlchemy URL (sqlite:///erp.db, postgresql://...)")
    m.add_argument("--query", help="SQL for a database source (or [source] query in the mapping file)")
    m.add_argument("--map", help="TOML mapping file: [columns] WorkbookHeader = \"source column\"")
    m.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(func=cmd_import)
    return p


def _os_error_line(exc: OSError) -> str:
    """An operating-system error in plain words: what failed, on which file, why."""
    where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
    reason = exc.strerror or type(exc).__name__
    return f"sop-xl: cannot use{where}: {reason}; the workbook was not changed"


def _crash_log(exc: BaseException) -> Path | None:
    """The traceback of an unexpected failure, for support, in a file (never on the terminal)."""
    import tempfile
    import traceback
    from datetime import datetime

    folder = Path(tempfile.gettempdir()) / "sop-xl"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"error-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
        log.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        return log
    except OSError:
        return None


def main(argv=None) -> int:
    from sop_xl.workbook.locking import WorkbookLocked
    from sop_xl.workbook.safe_io import UnsafeWorkbook, WrongExtension
    from sop_xl.plan.validation import ValidationError

    args = build_parser().parse_args(argv)  # bad arguments: usage on stderr, exit 2 (argparse)
    try:
        with warnings.catch_warnings():
            # openpyxl's remarks on a package ("Data Validation extension is not supported", "Cell B20 is
            # marked as a date but … outside the limits") are not the user's to act on: what matters in
            # them reaches the user as a problem naming the cell, once.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")
            return args.func(args)
    except ValidationError as exc:
        print(exc.summary(), file=sys.stderr)
        return EXIT_INVALID
    except WrongExtension as exc:
        print(f"sop-xl: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except WorkbookLocked as exc:
        print(f"sop-xl: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except (UnsafeWorkbook, FileNotFoundError) as exc:
        print(f"sop-xl: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # whoever read our output stopped reading (`| head`): not a failure of ours
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except OSError as exc:  # permissions, disk full, a folder where a file was expected, ...
        print(_os_error_line(exc), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("sop-xl: interrupted; the workbook was not changed", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback in a file
        log = _crash_log(exc)
        first = (str(exc).splitlines() or [""])[0][:200]
        print(f"sop-xl: unexpected error ({type(exc).__name__}: {first}); the workbook was not changed"
              + (f"; details in {log}" if log else ""), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
