"""A backfill launched from its own process, as a run worker would: one run per partition range of `uk_days_job`,
restricted to the assets of the given groups, executed with the code location's executor (the test sets
ENERGY_ASSETS_EXECUTOR=celery, so every step goes to the Celery workers). Prints one JSON line per run.

    python -m energy_assets_tests.distributed._backfill neso,neso_regional 2021-03-26:2021-03-27 2021-03-28:2021-03-29
"""

import json
import sys

from dagster import DagsterInstance, execute_job, reconstructable

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # every event is in the instance anyway


def uk_days_job():
    """The code location's job, rebuilt by name wherever a step runs (the workers import this module)."""
    from energy_assets.definitions import defs

    return defs.resolve_job_def("uk_days_job")


def group_keys(groups: list[str]) -> list:
    """The job's asset keys in the given groups (`["*"]`: every group)."""
    from energy_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    job_keys = uk_days_job().asset_layer.asset_graph.get_all_asset_keys()
    return sorted((k for k in job_keys if graph.has(k) and ("*" in groups or graph.get(k).group_name in groups)), key=str)


def main(argv: list[str]) -> int:
    groups, ranges = argv[0].split(","), [r.split(":") for r in argv[1:]]
    keys = group_keys(groups)
    failed = 0
    with DagsterInstance.get() as instance:
        for start, end in ranges:
            tags = {PARTITION_RANGE_START: start, PARTITION_RANGE_END: end}
            result = execute_job(
                reconstructable(uk_days_job), instance=instance, tags=tags, asset_selection=keys, raise_on_error=False, run_config=QUIET
            )
            failed += not result.success
            problems = [] if result.success else [
                f"{e.asset_key.to_user_string()}:{e.check_name}: {e.metadata.get('found').value if e.metadata.get('found') else ''}"
                for e in result.get_asset_check_evaluations()
                if not e.passed
            ]
            print(json.dumps({"run_id": result.run_id, "success": result.success, "range": [start, end], "groups": groups, "problems": problems}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
