"""The Celery app of the `celery` executor's workers: `celery -A energy_assets.celery_worker worker`.

The same broker and result backend as the executor (`ENERGY_ASSETS_CELERY_BROKER_URL`,
`ENERGY_ASSETS_CELERY_BACKEND_URL`), and dagster-celery's own task, queue (`dagster`) and defaults (one task
prefetched at a time). A worker needs what a run needs: the package, `DAGSTER_HOME` with the shared instance
(deploy/dagster-postgres.yaml), and the lake's settings; it imports `energy_assets.definitions` when its first
step arrives (or at start with `--include energy_assets.definitions`).

    DAGSTER_HOME=... (the lake settings) ENERGY_ASSETS_CELERY_BROKER_URL=redis://broker:6379/0 \\
        celery -A energy_assets.celery_worker worker --pool=solo -n worker1@%h
"""

from __future__ import annotations

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from energy_assets import settings

app = make_app(CeleryExecutor.for_cli(broker=settings.celery_broker_url(), backend=settings.celery_backend_url()).app_args())

execute_plan = create_task(app)
