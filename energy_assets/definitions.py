"""The code location: every domain's definitions, the shared resources and the derived jobs.

Each domain package (`neso/`, `smart_meter/`, `electricity_maps/`, ...) exposes `defs`: its assets,
checks, sensors, schedules and its own resources. Shared resources (`io_manager`, `http`) live here.
"""

from dagster import Definitions

from energy_assets.jobs import build_jobs
from energy_assets.resources import shared_resources
from energy_assets.electricity_maps import definitions as electricity_maps_definitions
from energy_assets.neso import definitions as neso_definitions
from energy_assets.smart_meter import definitions as smart_meter_definitions
from energy_assets.neso_regional import definitions as neso_regional_definitions
from energy_assets.carbon import definitions as carbon_definitions
from energy_assets.serving import definitions as serving_definitions
from energy_assets.maintenance import definitions as maintenance_definitions

DOMAINS: list[Definitions] = []
# Domain definitions are appended here, one line each:
# (keep this list explicit: a domain that fails to import must fail the code location, not vanish)
DOMAINS.append(electricity_maps_definitions.defs)
DOMAINS.append(neso_definitions.defs)
DOMAINS.append(smart_meter_definitions.defs)
DOMAINS.append(neso_regional_definitions.defs)
DOMAINS.append(carbon_definitions.defs)
DOMAINS.append(maintenance_definitions.defs)
DOMAINS.append(serving_definitions.build_defs(DOMAINS))  # keep last: the serving database depends on every lake table above


def build_definitions() -> Definitions:
    merged = Definitions.merge(*DOMAINS) if DOMAINS else Definitions()
    assets = list(merged.assets or [])
    return Definitions.merge(merged, Definitions(resources=shared_resources(), jobs=build_jobs(assets)))


defs = build_definitions()
