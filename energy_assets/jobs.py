"""Jobs derived from the assets: one per partitioning, so any set of partitions runs as one run.

- `uk_days_job`: every asset partitioned by UK settlement day;
- `electricity_maps_job`: every asset partitioned by UTC day x zone;
- `static_job`: unpartitioned assets;
- `<group>_checks_job`: the asset checks of that group alone, evaluated against the current lake
  (partitioned checks take the partition, or range, from the run's tags).
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetKey, AssetsDefinition, AssetSelection, PartitionsDefinition, define_asset_job

from energy_assets.partitions import uk_settlement_days, utc_day_by_zone

GROUPS: dict[str, PartitionsDefinition | None] = {
    "uk_days": uk_settlement_days,
    "electricity_maps": utc_day_by_zone,
    "static": None,
}


def asset_keys_by_group(assets: Sequence[AssetsDefinition]) -> dict[str, list[AssetKey]]:
    grouped: dict[str, list[AssetKey]] = {name: [] for name in GROUPS}
    for assets_def in assets:
        for key in assets_def.keys:
            pdef = assets_def.partitions_def
            group = next((name for name, p in GROUPS.items() if p == pdef), None)
            if group is None:
                raise ValueError(
                    f"{key.to_user_string()} uses a partitions definition not in energy_assets.partitions; "
                    "use uk_settlement_days, utc_day_by_zone or none"
                )
            grouped[group].append(key)
    return grouped


def build_jobs(assets: Sequence[AssetsDefinition]) -> list:
    jobs = []
    for group, keys in asset_keys_by_group(assets).items():
        if not keys:
            continue
        selection = AssetSelection.assets(*keys)
        jobs.append(
            define_asset_job(
                f"{group}_job",
                selection=selection,  # the partitioning is inferred from the selected assets
                description=f"Materialise every {group.replace('_', ' ')} asset (and run their checks).",
            )
        )
        jobs.append(
            define_asset_job(
                f"{group}_checks_job",
                selection=AssetSelection.checks_for_assets(*keys),
                description=f"Evaluate the asset checks of the {group.replace('_', ' ')} assets against the lake.",
            )
        )
    return jobs
