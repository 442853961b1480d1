"""Jobs derived from the assets: one per partitioning, so any set of partitions runs as one run.

- `uk_days_job`: every asset partitioned by UK settlement day;
- each partitioned job also loads the *reference tables* its assets read: unpartitioned assets with nothing
  partitioned upstream (the smart-meter database, versioned by content: a run that finds it unchanged commits
  nothing), so one day on a fresh lake works;
- `electricity_maps_job`: every asset partitioned by UTC day x zone;
- `smart_meter_buckets_job`: with `SMART_METER_BUCKETS` > 1, the smart-meter assets partitioned by UK day x
  meterpoint bucket (with one bucket they are UK-day assets and this job does not exist);
- `static_job`: unpartitioned assets;
- `<partitioning>_checks_job`: the asset checks of that partitioning's assets alone, evaluated against the current lake
  (partitioned checks take the partition, or range, from the run's tags); only for a partitioning whose assets
  have checks (an empty checks job would only confuse the Jobs page).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dagster import AssetKey, AssetsDefinition, AssetSelection, PartitionsDefinition, define_asset_job

from energy_assets.partitions import uk_day_by_meterpoint_bucket, uk_settlement_days, utc_day_by_zone

PARTITIONINGS: dict[str, PartitionsDefinition | None] = {
    "uk_days": uk_settlement_days,
    "electricity_maps": utc_day_by_zone,
    "smart_meter_buckets": uk_day_by_meterpoint_bucket,  # the same as uk_days with one bucket: then unused
    "static": None,
}


def asset_keys_by_partitioning(assets: Sequence[AssetsDefinition]) -> dict[str, list[AssetKey]]:
    by_partitioning: dict[str, list[AssetKey]] = {name: [] for name in PARTITIONINGS}
    for assets_def in assets:
        for key in assets_def.keys:
            pdef = assets_def.partitions_def
            partitioning = next((name for name, p in PARTITIONINGS.items() if p == pdef), None)
            if partitioning is None:
                raise ValueError(
                    f"{key.to_user_string()} uses a partitions definition not in energy_assets.partitions; "
                    "use uk_settlement_days, utc_day_by_zone, uk_day_by_meterpoint_bucket or none"
                )
            by_partitioning[partitioning].append(key)
    return by_partitioning


def reference_tables(assets: Sequence[AssetsDefinition], keys: Sequence[AssetKey]) -> list[AssetKey]:
    """Unpartitioned assets that `keys` read directly and that have nothing partitioned upstream."""
    partitioned = {key: d.partitions_def is not None for d in assets for key in d.keys}
    deps = {key: set(d.asset_deps.get(key, ())) for d in assets for key in d.keys}

    def static_all_the_way_up(key: AssetKey, seen: frozenset = frozenset()) -> bool:
        if partitioned.get(key, False):
            return False
        return all(static_all_the_way_up(p, seen | {key}) for p in deps.get(key, ()) if p in partitioned and p not in seen)

    read = {parent for key in keys for parent in deps.get(key, ()) if parent in partitioned}
    return sorted((k for k in read if not partitioned[k] and static_all_the_way_up(k)), key=lambda k: k.to_user_string())


def checked_asset_keys(definitions: Iterable[AssetsDefinition]) -> set[AssetKey]:
    """The asset keys some check targets: checks defined with an asset (`check_specs`) or on their own."""
    return {check_key.asset_key for d in definitions for check_key in d.check_keys}


def build_jobs(assets: Sequence[AssetsDefinition], checks: Sequence[AssetsDefinition] = ()) -> list:
    """The jobs of `assets` (see the module doc); `checks` are the code location's asset checks, so a checks job
    is built only for a partitioning that has some (checks defined inside an asset count too)."""
    checked = checked_asset_keys([*assets, *checks])
    jobs = []
    for partitioning, keys in asset_keys_by_partitioning(assets).items():
        if not keys:
            continue
        references = reference_tables(assets, keys) if PARTITIONINGS[partitioning] is not None else []
        description = f"Materialise every {partitioning.replace('_', ' ')} asset (and run their checks)"
        if references:
            description += ", with the reference tables they read: " + ", ".join(k.to_user_string() for k in references)
        jobs.append(
            define_asset_job(
                f"{partitioning}_job",
                selection=AssetSelection.assets(*keys, *references),  # the partitioning is inferred from the partitioned assets
                description=description + ".",
            )
        )
        if not checked.intersection(keys):
            continue
        jobs.append(
            define_asset_job(
                f"{partitioning}_checks_job",
                selection=AssetSelection.checks_for_assets(*keys),
                description=f"Evaluate the asset checks of the {partitioning.replace('_', ' ')} assets against the lake.",
            )
        )
    return jobs
