"""`energy-assets`: the project's console command.

Offline (bundled samples, local lake, no network):
    energy-assets demo        materialise every asset for the sample days and run every asset check
    energy-assets check       evaluate every asset check against the current lake; exit 1 on failure
    energy-assets dev --offline   the Dagster UI with API requests answered from the samples
    energy-assets show / sql / dashboard / maintain / graph        read or look after the lake
    energy-assets generate-smart-meter / fake-neso-api / *-samples  development data and fakes
Online (these call the public APIs):
    energy-assets dev         the Dagster UI; materialising a bronze asset calls NESO / Electricity Maps

Runs go to the project's Dagster instance (DAGSTER_HOME, default dagster_home/ in the repository), so they
appear in the UI afterwards. `energy-assets COMMAND --help` describes each command.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from energy_assets import settings

# The UI lists a job's runs (Jobs page, Overview timeline) by the run tag `.dagster/repository`, which runs
# launched from a code location carry; runs of `demo` and `check` execute in this process, so they carry it
# themselves: `<repository>@<code location>` of workspace.yaml (a test keeps the two equal).
CODE_LOCATION = "energy_assets"
REPOSITORY_LABEL_TAG = ".dagster/repository"
REPOSITORY_LABEL = f"__repository__@{CODE_LOCATION}"
PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"


def _prepare_environment(replay: bool) -> None:
    home = settings.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    settings.export("DAGSTER_HOME", str(home))
    if replay:
        settings.export("ENERGY_ASSETS_SOURCE", settings.REPLAY, overwrite=False)
    _create_instance_storage(home)


def _create_instance_storage(home) -> None:
    """Create the instance's storage (SQLite schemas) before anything runs, one command at a time.

    Several commands started at once on a new DAGSTER_HOME would otherwise each create the same SQLite schemas
    and fail on each other's half-made migration tables ("alembic_version has more than one head"). A file lock
    makes the first command create them and the others find them made. (For real concurrent use, use the
    PostgreSQL instance: deploy/dagster-postgres.yaml.)"""
    import fcntl

    from dagster import DagsterInstance

    with open(home / ".energy_assets_instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with DagsterInstance.get() as instance:  # each storage creates its schema on first use
                instance.get_runs(limit=1)
                instance.all_instigator_state()
                instance.get_asset_keys(limit=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class RunOutcome:
    job: str
    label: str
    success: bool
    run_id: str
    error: str = ""
    materializations: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """One run of a job: its partition selection as tags (range) or none."""

    job: str
    label: str
    tags: dict[str, str] = field(default_factory=dict)
    asset_selection: list | None = None


def _execute(defs, instance, plan: Plan, verbose: bool = False) -> RunOutcome:
    from energy_assets.range_checks import is_range_copy

    job = defs.resolve_job_def(plan.job)
    kwargs = {}
    if plan.asset_selection is not None:
        kwargs["asset_selection"] = plan.asset_selection
    # Every event is stored in the instance (and shown by `dagster dev`); the console only shows problems.
    # Warnings are gathered from the instance and printed in the summary, not as raw log lines in between.
    run_config = {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "ERROR"}}}}
    tags = {**plan.tags, REPOSITORY_LABEL_TAG: REPOSITORY_LABEL}
    result = job.execute_in_process(run_config=run_config, instance=instance, tags=tags, raise_on_error=False, **kwargs)
    outcome = RunOutcome(job=plan.job, label=plan.label, success=result.success, run_id=result.run_id)
    outcome.warnings = [
        f"{entry.step_key or plan.job}: {entry.user_message}"
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING and entry.user_message
    ]
    if not result.success:
        failures = result.get_step_failure_events()
        outcome.error = "; ".join(
            f"{event.step_key}: {event.event_specific_data.error.message.strip().splitlines()[0]}" for event in failures
        ) or "run failed"
    for event in result.get_asset_materialization_events():
        outcome.materializations.append(event.materialization)
    outcome.checks = [e for e in result.get_asset_check_evaluations() if not is_range_copy(e)]  # the range result once
    return outcome


def _range_tags(start: str, end: str) -> dict[str, str]:
    return {PARTITION_RANGE_START: start, PARTITION_RANGE_END: end}


def _static_split(defs) -> tuple[list, list]:
    """Unpartitioned assets that feed partitioned ones run first; those fed by partitioned ones last."""
    graph = defs.resolve_asset_graph()
    partitioned = {key for key in graph.get_all_asset_keys() if graph.get(key).partitions_def is not None}
    static = [key for key in graph.materializable_asset_keys if key not in partitioned]
    late = [key for key in static if graph.get(key).parent_keys and any(p in partitioned for p in graph.upstream_key_iterator(key))]
    early = [key for key in static if key not in late]
    return early, late


def demo_plans(defs) -> list[Plan]:
    from energy_assets.partitions import electricity_maps_zones

    jobs = {job.name for job in defs.resolve_all_job_defs()}
    plans: list[Plan] = []
    early, late = _static_split(defs) if "static_job" in jobs else ([], [])
    if early:
        plans.append(Plan("static_job", "static tables", asset_selection=early))
    first, last = settings.SAMPLE_DAYS[0], settings.SAMPLE_DAYS[-1]
    if "uk_days_job" in jobs:
        plans.append(Plan("uk_days_job", f"UK days {first}...{last}", _range_tags(first, last)))
    if "electricity_maps_job" in jobs:
        for zone in electricity_maps_zones():
            plans.append(
                Plan("electricity_maps_job", f"UTC days {first}...{last} x {zone}", _range_tags(f"{first}|{zone}", f"{last}|{zone}"))
            )
    if late:
        plans.append(Plan("static_job", "derived static tables", asset_selection=late))
    return plans


def check_plans(defs, instance) -> list[Plan]:
    """Checks-only runs covering every partition the instance has materialised."""
    from energy_assets.jobs import PARTITIONINGS

    graph = defs.resolve_asset_graph()
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    plans: list[Plan] = []
    for partitioning, pdef in PARTITIONINGS.items():
        job_name = f"{partitioning}_checks_job"
        if job_name not in jobs:
            continue
        keys = [key for key in graph.materializable_asset_keys if graph.get(key).partitions_def == pdef]
        if not any(graph.get(key).check_keys for key in keys):
            continue
        if pdef is None:
            plans.append(Plan(job_name, "static tables"))
            continue
        materialized: set[str] = set()
        for key in keys:
            materialized |= set(instance.get_materialized_partitions(key))
        if not materialized:
            continue
        if partitioning == "electricity_maps":
            by_zone: dict[str, list[str]] = {}
            for key in materialized:
                date, zone = key.split("|", 1)  # dimensions in name order: date|zone
                by_zone.setdefault(zone, []).append(date)
            for zone, dates in sorted(by_zone.items()):
                lo, hi = min(dates), max(dates)
                plans.append(Plan(job_name, f"{lo}...{hi} x {zone}", _range_tags(f"{lo}|{zone}", f"{hi}|{zone}")))
        else:
            lo, hi = min(materialized), max(materialized)
            plans.append(Plan(job_name, f"{lo}...{hi}", _range_tags(lo, hi)))
    return plans


def _check_line(evaluation) -> tuple[str, bool, str]:
    """`asset:check`, passed, and "what was checked -> what was found" from the check's metadata."""
    name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
    meta = evaluation.metadata or {}

    def text(key):
        value = meta.get(key)
        return str(getattr(value, "value", value)) if value is not None else ""

    checked = text("checked")
    found = text("found") or (getattr(evaluation, "description", None) or "")
    detail = " -> ".join(part for part in (checked, found) if part)
    return name, bool(evaluation.passed), detail


def _print_checks(outcomes: Sequence[RunOutcome], out) -> tuple[int, int]:
    failed_errors = failed_warnings = 0
    for outcome in outcomes:
        for evaluation in outcome.checks:
            name, passed, detail = _check_line(evaluation)
            mark = "PASS" if passed else "FAIL"
            if not passed:
                if getattr(evaluation.severity, "value", "") == "WARN":
                    failed_warnings += 1
                    mark = "WARN"
                else:
                    failed_errors += 1
            print(f"  {mark:4}  {name}  [{outcome.label}]", file=out)
            if detail:
                print(f"        {detail}", file=out)
    return failed_errors, failed_warnings


def _print_runs(outcomes: Sequence[RunOutcome], out) -> int:
    failed = 0
    job_width = max((len(o.job) for o in outcomes), default=10)
    label_width = max((len(o.label) for o in outcomes), default=10)
    for outcome in outcomes:
        status = "ok" if outcome.success else "FAILED"
        print(f"  {outcome.job:{job_width}}  {outcome.label:{label_width}}  {status:6}  run {outcome.run_id[:8]}", file=out)
        if not outcome.success:
            failed += 1
            print(f"      {outcome.error}", file=out)
    warnings = [(o.job, w) for o in outcomes for w in o.warnings]
    if warnings:
        print("\nWarnings (the runs went on; see each run in the UI):", file=out)
        for job, warning in warnings:
            print(f"  WARN  {job}  {warning}", file=out)
    return failed


def _table_summary(defs, instance, out) -> None:
    """Each table with its current row count, read from its latest materialisation."""
    graph = defs.resolve_asset_graph()
    rows = []
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        event = instance.get_latest_materialization_event(key)
        if event is None or event.asset_materialization is None:
            rows.append((key.to_user_string(), "-", "not materialised"))
            continue
        meta = event.asset_materialization.metadata
        count = meta.get("dagster/row_count")
        uri = meta.get("dagster/uri")
        rows.append((key.to_user_string(), str(count.value) if count else "-", str(uri.value) if uri else ""))
    width = max((len(r[0]) for r in rows), default=10)
    for name, count, where in rows:
        print(f"  {name:{width}}  {count:>10}  {where}", file=out)


def cmd_demo(args) -> int:
    _prepare_environment(replay=True)
    from dagster import DagsterInstance

    from energy_assets.definitions import defs

    out = sys.stdout
    with DagsterInstance.get() as instance:
        print(f"energy_assets demo: lake {settings.lake_uri()}  instance {settings.get('DAGSTER_HOME')}", file=out)
        print(f"source mode: {settings.source_mode()} (sample days {', '.join(settings.SAMPLE_DAYS)})\n", file=out)
        outcomes = []
        for plan in demo_plans(defs):
            print(f"running {plan.job} for {plan.label} ...", file=out, flush=True)
            outcomes.append(_execute(defs, instance, plan, args.verbose))
        print("\nRuns:", file=out)
        failed_runs = _print_runs(outcomes, out)
        print("\nTables (rows in the whole table):", file=out)
        _table_summary(defs, instance, out)
        print("\nAsset checks:", file=out)
        failed_checks, warned = _print_checks(outcomes, out)
    print(
        f"\n{len(outcomes) - failed_runs} of {len(outcomes)} runs succeeded; "
        f"{failed_checks} check(s) failed, {warned} warning(s).",
        file=out,
    )
    print("Open the UI:  energy-assets dev --offline   (then http://127.0.0.1:3000)", file=out)
    return 1 if failed_runs or failed_checks else 0


def cmd_check(args) -> int:
    _prepare_environment(replay=False)
    from dagster import DagsterInstance

    from energy_assets.definitions import defs

    out = sys.stdout
    with DagsterInstance.get() as instance:
        plans = check_plans(defs, instance)
        if not plans:
            print("No materialised partitions to check: run `energy-assets demo` (or materialise assets) first.", file=out)
            return 1
        outcomes = []
        for plan in plans:
            print(f"checking {plan.job} for {plan.label} ...", file=out, flush=True)
            outcomes.append(_execute(defs, instance, plan, args.verbose))
        print("\nAsset checks:", file=out)
        failed_checks, warned = _print_checks(outcomes, out)
        failed_runs = sum(1 for o in outcomes if not o.success and not o.checks)
        for outcome in outcomes:
            if not outcome.success:
                print(f"  run {outcome.run_id[:8]} ({outcome.job}, {outcome.label}) failed: {outcome.error}", file=out)
    total = sum(len(o.checks) for o in outcomes)
    print(f"\n{total - failed_checks - warned} passed, {failed_checks} failed, {warned} warned", file=out)
    return 1 if failed_checks or failed_runs else 0


def cmd_dev(args) -> int:
    """`dagster dev -w workspace.yaml` on the project's instance. Ctrl-C or SIGTERM stop it cleanly (see
    `run_in_own_group`)."""
    _prepare_environment(replay=False)
    if args.offline:
        settings.export("ENERGY_ASSETS_SOURCE", settings.REPLAY)
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(settings.PROJECT_ROOT / "workspace.yaml"), *args.dagster_args]
    mode = settings.source_mode()
    print(
        f"DAGSTER_HOME={settings.get('DAGSTER_HOME')} ENERGY_ASSETS_SOURCE={mode} {' '.join(command)}\n"
        + ("offline: API requests are answered from the bundled samples (runs are tagged energy_assets/source=replay)"
           if mode == settings.REPLAY else
           "online: materialising bronze assets calls the public APIs; `energy-assets dev --offline` uses the samples"),
        flush=True,
    )  # fmt: skip
    return run_in_own_group(command, cwd=settings.PROJECT_ROOT, env=settings.process_environment())


def run_in_own_group(command: list[str], cwd=None, env=None, stop_timeout_s: float = 150.0) -> int:
    """Run `command` in a process group of its own until it ends; Ctrl-C (SIGINT) or SIGTERM stop it cleanly.

    The group keeps a terminal's Ctrl-C to us and lets nothing below the command be left behind. The stop
    signal goes to the command alone, which stops what it started in its own order (`dagster dev`: webserver
    and daemon, then its code server; signalling the whole group kills the code server while the webserver
    still watches it, and the webserver logs a KeyError traceback). If the command has not ended within
    `stop_timeout_s` (dagster dev waits up to 60 s for its webserver, then 60 s for its daemon), its group is
    killed. Whatever is left in the group once it has ended gets SIGTERM. Returns the command's exit code, or
    128 + the signal when stopped."""
    import signal

    child = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)

    def signal_group(signum) -> None:
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    def stop_requested(signum, _frame) -> None:
        raise _StopRequested(signum)

    previous = signal.signal(signal.SIGTERM, stop_requested)
    try:
        try:
            return child.wait()
        except (KeyboardInterrupt, _StopRequested) as stop:
            signum = stop.signum if isinstance(stop, _StopRequested) else signal.SIGINT
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the shutdown short
            try:
                child.send_signal(signum)  # dagster dev treats SIGTERM as Ctrl-C
                child.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                print(f"{command[0]} did not stop within {stop_timeout_s:g} s; killing its processes", flush=True)
                signal_group(signal.SIGKILL)
                child.wait()
            return 128 + int(signum)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal_group(signal.SIGTERM)  # whatever the command left running in its group


class _StopRequested(Exception):
    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


def _delegate(module: str, function: str) -> Callable:
    def run(args) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), function)(list(args.rest)) or 0)

    return run


# Subcommands implemented by a domain: name -> (module, function(argv) -> int, help). Their own --help works.
DELEGATED: dict[str, tuple[str, str, str]] = {
    "generate-smart-meter": ("energy_assets.devtools.smart_meter_generator", "main", "generate smart-meter reading files and a static database"),
    "fake-neso-api": ("energy_assets.devtools.neso_fake_api", "main", "serve a local fake NESO Carbon Intensity API whose data changes"),
    "neso-samples": ("energy_assets.devtools.neso_samples", "main", "regenerate the NESO replay samples under data/samples/neso"),
    "neso-regional-samples": ("energy_assets.devtools.neso_regional_samples", "main", "regenerate the NESO regional replay samples"),
    "electricity-maps-samples": ("energy_assets.devtools.electricity_maps_samples", "main", "regenerate the Electricity Maps replay samples"),
    "greenest": ("energy_assets.forecast.cli", "main", "the greenest time to run a load (region, duration, deadline) from the newest forecast in the lake"),
    "show": ("energy_assets.serving.cli", "show_main", "print a lake table, e.g. show silver/neso_carbon_intensity --limit 20"),
    "sql": ("energy_assets.serving.cli", "sql_main", 'run SQL over the lake, e.g. sql "select count(*) from silver.smart_meter_readings"'),
    "dashboard": ("energy_assets.dashboard.launch", "main", "start the live dashboard (needs the [dashboard] extra)"),
    "maintain": ("energy_assets.maintenance.cli", "main", "compact and vacuum every Delta table of the lake"),
    "graph": ("energy_assets.graph", "main", "print the asset graph as a Mermaid flowchart (the README's picture)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energy-assets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (
        ("demo", cmd_demo, "materialise every asset for the sample partitions and run every check"),
        ("check", cmd_check, "evaluate every asset check against the current lake"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("-v", "--verbose", action="store_true", help="print every Dagster event, not only warnings")
        command.set_defaults(func=func)
    dev = sub.add_parser(
        "dev",
        help="the Dagster UI (dagster dev) on the project's instance; --offline answers API requests from the samples",
        description=(
            "Start `dagster dev -w workspace.yaml` with DAGSTER_HOME set to the project's instance. Online by default: "
            "materialising a bronze asset calls the NESO and Electricity Maps APIs. With --offline every API request is "
            "answered from the bundled samples (ENERGY_ASSETS_SOURCE=replay), so the sample days materialise without "
            "a network; such runs carry the tag energy_assets/source=replay. Any other argument is passed to dagster dev "
            "(e.g. `energy-assets dev --offline -p 3001`)."
        ),
    )
    dev.add_argument("--offline", action="store_true", help="answer every API request from the bundled samples")
    dev.set_defaults(func=cmd_dev, passthrough=True)
    for name, (module, function, help_text) in DELEGATED.items():
        delegated = sub.add_parser(name, help=help_text, add_help=False)
        delegated.set_defaults(func=_delegate(module, function), passthrough=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.dagster_args = args.rest = extra
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
