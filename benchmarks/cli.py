"""`python -m benchmarks run --scenario NAME [--repeat N] [--size tiny|full]`, and the worker entry point.

    python -m benchmarks run --scenario smart_meter_batch --size full --repeat 3
    python -m benchmarks run --scenario all --size tiny --repeat 1 --no-spark
    python -m benchmarks list
    python -m benchmarks report --size full

Scenarios: smart_meter_batch (with the Spark baseline and the DuckDB reference), incremental_day,
freshness, neso_backfill, scale, day_bucket (one (day, meterpoint bucket) run per worker, for the
national-scale plan). Results: benchmarks/results/<scenario>-<size>-<UTC time>.json and
<scenario>-<size>-latest.json. Generated data is cached under --workdir (default benchmarks/work/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SCENARIO_NAMES = ["smart_meter_batch", "incremental_day", "freshness", "neso_backfill", "scale", "day_bucket", "launched_runs"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario (or all) and write its result JSON")
    run.add_argument("--scenario", required=True, choices=[*SCENARIO_NAMES, "all"])
    run.add_argument("--size", choices=["tiny", "full"], default="tiny", help="tiny: seconds, for smoke runs; full: the issue's sizes")
    run.add_argument("--repeat", type=int, default=3, help="repetitions of the pipeline (median and spread are reported)")
    run.add_argument("--spark-repeat", type=int, default=None, help="repetitions of the Spark baseline (default: same as --repeat)")
    run.add_argument("--no-spark", action="store_true", help="skip the Spark baseline (pyspark is the optional [bench] extra)")
    run.add_argument("--sensor-interval", type=int, default=10, help="freshness: the NESO sensor interval in seconds")
    run.add_argument("--changes", type=int, default=None, help="freshness: data changes to measure (default 10 full, 1 tiny)")
    run.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                     help="extra environment for every worker (a variant, e.g. DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1)")
    run.add_argument("--home-on-tmpfs", action="store_true", help="put DAGSTER_HOME (instance SQLite files) in /dev/shm; the lake stays on disk")
    run.add_argument("--dagster-yaml", type=Path, default=None, help="instance config instead of the project's dagster_home/dagster.yaml")
    run.add_argument("--label", default="", help="variant label, appended to the result file names")
    run.add_argument("--workdir", type=Path, default=None, help="generated data and throwaway lakes (default benchmarks/work)")
    run.add_argument("--results-dir", type=Path, default=None, help="where result JSON goes (default benchmarks/results)")
    sub.add_parser("list", help="list the scenarios")
    rep = sub.add_parser("report", help="markdown table of the latest results beside the targets")
    rep.add_argument("--size", choices=["tiny", "full"], default="full")
    rep.add_argument("--label", default=None, help="the results of a labelled run (`run --label L`) instead of the unlabelled ones")
    worker = sub.add_parser("_worker", help=argparse.SUPPRESS)
    worker.add_argument("--task", required=True)
    worker.add_argument("--params", required=True)
    args = parser.parse_args(argv)

    if args.command == "list":
        for name in SCENARIO_NAMES:
            print(name)
        return 0
    if args.command == "report":
        from benchmarks import report

        return report.main(args.size, args.label)
    if args.command == "_worker":
        from benchmarks import tasks

        return tasks.main(args.task, args.params)

    from benchmarks import scenarios

    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    kwargs = {}
    if args.workdir is not None:
        kwargs["workdir"] = args.workdir.resolve()
    if args.results_dir is not None:
        kwargs["results_dir"] = args.results_dir.resolve()
    options = scenarios.Options(
        size=args.size,
        repeat=args.repeat,
        spark_repeat=args.spark_repeat if args.spark_repeat is not None else args.repeat,
        spark=not args.no_spark,
        sensor_interval_s=args.sensor_interval,
        changes=args.changes,
        env=tuple(tuple(e.split("=", 1)) for e in args.env),
        home_on_tmpfs=args.home_on_tmpfs,
        label=args.label,
        dagster_yaml=args.dagster_yaml.resolve() if args.dagster_yaml else None,
        log=lambda msg: print(msg, flush=True),
        **kwargs,
    )
    paths = scenarios.run(args.scenario, options)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
