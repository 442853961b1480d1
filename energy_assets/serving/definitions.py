"""SQL serving: the DuckDB database file mirroring the lake.

`build_defs(domains)` makes the serving asset depend on every lake table (asset keys `<layer>/<table>`) of
the domains given, so it is refreshed after any of them changes and runs after them in the demo. In
`energy_assets/definitions.py` its line therefore comes after every other domain's (a test checks this).
It reads the lake through the code location's shared `lake` resource (`energy_assets/resources.py`).
"""

from collections.abc import Sequence

from dagster import AssetKey, Definitions

from energy_assets.lake.store import LAYERS
from energy_assets.serving.assets import build_serving_asset, serving_duckdb_resource
from energy_assets.serving.sensors import serving_automation_sensor


def lake_table_keys(domains: Sequence[Definitions]) -> list[AssetKey]:
    """The asset keys of every lake table (`[layer, table]` with a lake layer) defined by `domains`."""
    keys: set[AssetKey] = set()
    for domain in domains:
        for assets_def in domain.assets or []:
            keys |= {key for key in getattr(assets_def, "keys", []) if len(key.path) == 2 and key.path[0] in LAYERS}
    return sorted(keys, key=lambda k: k.to_user_string())


def build_defs(domains: Sequence[Definitions]) -> Definitions:
    return Definitions(
        assets=[build_serving_asset(deps=lake_table_keys(domains))],
        sensors=[serving_automation_sensor],
        resources={"serving_duckdb": serving_duckdb_resource()},  # the lake: the shared "lake" resource
    )
