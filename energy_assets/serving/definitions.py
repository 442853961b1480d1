"""SQL serving: the DuckDB database file mirroring the lake.

`build_defs(domains)` makes the serving asset depend on every lake table (asset keys `<layer>/<table>`) of
the domains given, so it is refreshed after any of them changes and runs after them in the demo. In
`energy_assets/definitions.py` its line therefore comes after every other domain's (a test checks this).
It reads the lake through the code location's shared `lake` resource (`energy_assets/resources.py`) and writes
each table's column descriptions (the assets' `dagster/column_schema`) as DuckDB column comments.
"""

from collections.abc import Sequence

from dagster import AssetKey, AssetsDefinition, Definitions

from energy_assets.column_docs import declared_descriptions

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


def column_descriptions(domains: Sequence[Definitions]) -> dict[tuple[str, str], dict[str, str]]:
    """`{(layer, table): {column: description}}` of every lake table of `domains` (their `dagster/column_schema`)."""
    found = declared_descriptions(a for domain in domains for a in (domain.assets or []) if isinstance(a, AssetsDefinition))
    return {(key.path[0], key.path[1]): texts for key, texts in found.items() if len(key.path) == 2 and key.path[0] in LAYERS}


def build_defs(domains: Sequence[Definitions]) -> Definitions:
    return Definitions(
        assets=[build_serving_asset(deps=lake_table_keys(domains), descriptions=column_descriptions(domains))],
        sensors=[serving_automation_sensor],
        resources={"serving_duckdb": serving_duckdb_resource()},  # the lake: the shared "lake" resource
    )
