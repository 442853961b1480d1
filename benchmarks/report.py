"""`python -m benchmarks report [--size full] [--label L]`: a markdown table of the latest results beside their targets."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.harness import RESULTS_DIR

ORDER = ["smart_meter_batch", "incremental_day", "freshness", "neso_backfill", "scale", "day_bucket", "launched_runs"]


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "GiB":
        return f"{value:.2f} GiB"
    if unit == "s":
        return f"{value:.1f} s"
    return f"{value:g} {unit}"


def _spread(result: dict, target: str) -> str:
    s = result.get("summary", {})
    pick = {
        "pipeline wall": s.get("pipeline_work_s"),
        "peak RSS of the process tree": s.get("pipeline_peak_rss_tree_bytes"),
        "new day onto": s.get("new_day_onto_history_s"),
        "tick -> silver": s.get("tick_to_gold_commit_s"),
        "change -> commit": s.get("change_to_commit_s"),
        "one year into bronze + silver,": s.get("backfill_s_no_politeness_delay"),
        "one year into bronze + silver": s.get("backfill_s"),
        "in one run, peak RSS": s.get("peak_rss_tree_bytes"),
        "one (day, bucket) run": s.get("bucket_rows_per_s"),
        **{  # launched_runs: the project's default executor, per case
            case_summary_key: s.get(case, {}).get("in_process", {}).get("work_s")
            for case, case_summary_key in (("uk_day", "one UK day of uk_days_job"), ("neso_year", "the NESO year"),
                                           ("smart_meter_batch", "the 90-day smart-meter batch"))
        },
    }
    for prefix, summary in pick.items():
        if prefix in target and isinstance(summary, dict) and summary.get("n"):
            return f"n={summary['n']}, spread {summary.get('spread_pct') or 0:.0f}%"
    return ""


def table(size: str = "full", results_dir: Path = RESULTS_DIR, label: str | None = None) -> str:
    lines = ["| scenario | target | measured (median) | limit | met | repetitions |", "|---|---|---|---|---|---|"]
    machine = None
    for name in ORDER:
        path = results_dir / f"{name}-{size}{f'-{label}' if label else ''}-latest.json"
        if not path.exists():
            lines.append(f"| {name} | (not run at size {size}) | | | | |")
            continue
        result = json.loads(path.read_text())
        machine = machine or result.get("machine")
        for t in result.get("targets", []):
            met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
            lines.append(
                f"| {name} | {t['target']} | {_fmt(t['value'], t['unit'])} | {t['op']} {t['limit']} {t['unit']} | {met} | "
                f"{_spread(result, t['target'])} |"
            )
    lines.extend(_breakdown_lines(results_dir / f"smart_meter_batch-{size}{f'-{label}' if label else ''}-latest.json"))
    if machine:
        lines.append("")
        lines.append(
            f"Machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores, {machine['ram_bytes'] / 2**30:.0f} GiB RAM, "
            f"{machine['os']}, Python {machine['python']}, dagster {machine['versions'].get('dagster')}, "
            f"deltalake {machine['versions'].get('deltalake')}, polars {machine['versions'].get('polars')}, "
            f"duckdb {machine['versions'].get('duckdb')}, pyspark {machine['versions'].get('pyspark')}, {machine.get('java')}; "
            f"commit {machine.get('git_commit')}."
        )
    return "\n".join(lines)


def _breakdown_lines(path: Path) -> list[str]:
    """The batch taken apart (`benchmarks/breakdown.py`), from the same invocation as the batch's figures."""
    b = json.loads(path.read_text()).get("summary", {}).get("breakdown") if path.exists() else None
    if not b:
        return []
    t = b["typed_raw"]
    return [
        "",
        f"The batch taken apart (same invocation, medians): the work the plain script also does {b['data_work_s']:.1f} s "
        f"({b['data_work_over_script']:.2f}x the script); what the lakehouse adds {b['lakehouse_additions_s']:.1f} s; "
        f"the pipeline's remaining {b['ours_minus_data_and_additions_s']:.1f} s is Dagster (the bookkeeping floor: "
        f"{b['floor_s']:.1f} s). Typed raw instead of text: parse {t['parse_extra_s']:+.2f} s, raw write "
        f"{-t['raw_write_saved_s']:+.2f} s, silver's text parsing {-t['silver_text_parsing_saved_s']:+.2f} s: net "
        f"{t['net_s']:+.2f} s (faithful: {t['faithful']}).",
    ]


def main(size: str, label: str | None = None) -> int:
    print(table(size, label=label))
    return 0
