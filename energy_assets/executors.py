"""The executor of every job of the code location, chosen by `ENERGY_ASSETS_EXECUTOR` (read once, at load).

- `in_process` (default): every step of a launched run (the UI, a backfill, a sensor's run) in the run's own
  process, as `execute_in_process` (the demo, the tests, the benchmarks) runs them. Launched as the UI launches
  runs, on an idle 2-core machine, one UK day of `uk_days_job` (42 steps) takes 1.6 s this way and 37 s with a
  process per step; a NESO year (7 steps) 4.8 s against 12.3 s; the 90-day smart-meter batch 13.7 s against
  27.7 s (BENCHMARKS.md 1h; `python -m benchmarks run --scenario launched_runs`). Each step process imports the
  code location again and plans its step over the whole partition range, which costs more than most steps'
  work. Steps of one run no longer run side by side; partitions are the unit of parallel work (runs in
  parallel, `max_concurrent_runs`), and polars and DuckDB use every core inside a step.
- `multiprocess`: no executor is set, so Dagster's default applies: a process per step in a launched run, steps
  of a run in parallel.
- `celery`: `dagster-celery`'s `celery_executor`: the run's process plans the steps and sends each one to a
  Celery broker; worker processes on any machine (`celery -A energy_assets.celery_worker worker`) execute them
  against the shared instance (PostgreSQL) and lake (object storage). Broker and result backend are
  `ENERGY_ASSETS_CELERY_BROKER_URL` / `ENERGY_ASSETS_CELERY_BACKEND_URL`, passed as env references, so a password
  in the URL is never part of the run's config.

Jobs that set their own executor (the NESO refresh sensor's in-process job) keep it.
"""

from __future__ import annotations

from dagster import ExecutorDefinition, in_process_executor

from energy_assets import settings


def celery_config() -> dict:
    """The `celery_executor` config: broker and backend as env references when set (see `settings.config_source`)."""
    broker = settings.config_source("ENERGY_ASSETS_CELERY_BROKER_URL")
    backend = (
        settings.config_source("ENERGY_ASSETS_CELERY_BACKEND_URL")
        if settings.is_set("ENERGY_ASSETS_CELERY_BACKEND_URL")
        else broker
    )
    return {"broker": broker, "backend": backend}


def build_executor(choice: str | None = None) -> ExecutorDefinition | None:
    """The executor for `choice` (default: `settings.graph().executor`); None keeps Dagster's default."""
    choice = choice or settings.graph().executor
    if choice == "multiprocess":
        return None
    if choice == "in_process":
        return in_process_executor
    if choice == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError:
            raise settings.SettingError(
                'ENERGY_ASSETS_EXECUTOR=celery needs dagster-celery: pip install -e ".[distributed]"'
            ) from None
        return celery_executor.configured(celery_config(), name="celery")
    raise settings.SettingError(f"ENERGY_ASSETS_EXECUTOR: no executor named {choice!r}")
