"""The code location: every domain's definitions, the shared resources and the derived jobs.

Each domain package exposes `defs`: its assets, checks, sensors, schedules and its own resources. Shared
resources (`io_manager`, `http`), the jobs derived from the assets' partitionings and the executor chosen by
`ENERGY_ASSETS_EXECUTOR` (energy_assets/executors.py; none by default, so Dagster's default) are added here. The
list is explicit: a domain that fails to import fails the code location instead of vanishing from it.
"""

from dagster import Definitions

from energy_assets.carbon import definitions as carbon
from energy_assets.electricity_maps import definitions as electricity_maps
from energy_assets.forecast import definitions as forecast
from energy_assets.executors import build_executor
from energy_assets.jobs import build_jobs
from energy_assets.maintenance import definitions as maintenance
from energy_assets.neso import definitions as neso
from energy_assets.resources import shared_resources
from energy_assets.serving import definitions as serving
from energy_assets.smart_meter import definitions as smart_meter

DOMAINS: list[Definitions] = [
    neso.defs,
    smart_meter.defs,
    electricity_maps.defs,
    carbon.defs,
    maintenance.defs,
    forecast.defs,
]
# The SQL-serving database depends on every lake table above, so it is built from them, last.
DOMAINS.append(serving.build_defs(DOMAINS))


def build_definitions() -> Definitions:
    merged = Definitions.merge(*DOMAINS)
    jobs = build_jobs(list(merged.assets or []), list(merged.asset_checks or []))
    return Definitions.merge(merged, Definitions(resources=shared_resources(), jobs=jobs, executor=build_executor()))


defs = build_definitions()
