"""Row counts and content hashes of every table of a lake, to prove a redesign kept behaviour.

A table's fingerprint is its row count and the SHA-256 of its rows as sorted NDJSON lines, after dropping
the columns that record *when* something ran (fetch and ingestion times, file modification times) and
keeping floats to the millionth (so a value summed in another order still matches).

`RENAMES` maps today's names back to the names the baseline was captured with (column renames and unit
changes of the architecture issue): a table is turned back into its old shape before it is hashed, so the
comparison proves the values are the same, not only the counts.

    python -m energy_assets_tests.behaviour.fingerprints LAKE_ROOT > fingerprints.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

# Columns that say when a run happened, not what it computed.
VOLATILE = {"fetched_at", "carbon_fetched_at", "power_fetched_at", "ingested_at", "modified_ns"}

# table -> {new column: (old column, factor)}: old value = new value * factor.
RENAMES: dict[str, dict[str, tuple[str, float]]] = {}
RENAMES["gold/neso_carbon_intensity_features"] = {"low_carbon_share_fraction": ("low_carbon_share_percent", 100)}
RENAMES["silver/neso_generation_mix"] = {"generation_fraction": ("percentage", 100)}
# carbon presentation (serving helper): shares are `_fraction` (the values were already 0..1), masses `_kgco2`
_CARBON_SUMMARY_RENAMES = {
    "low_carbon_consumption_fraction": ("low_carbon_consumption_share", 1),
    "regional_intensity_consumption_fraction": ("regional_intensity_consumption_share", 1),
    "total_emissions_kgco2": ("total_emissions_kg_co2", 1),
}
RENAMES["presentation/carbon_per_product_per_day"] = _CARBON_SUMMARY_RENAMES
RENAMES["presentation/carbon_per_region_per_day"] = _CARBON_SUMMARY_RENAMES
# Electricity Maps (issue 11 items 5-7): the shared bronze contract's `request_url`; shares as fractions.
RENAMES["bronze/electricity_maps_carbon_intensity"] = {"request_url": ("endpoint", 1)}
RENAMES["bronze/electricity_maps_power_breakdown"] = {"request_url": ("endpoint", 1)}
RENAMES["silver/electricity_maps_quarantine"] = {"request_url": ("endpoint", 1)}
RENAMES["silver/electricity_maps_energy"] = {"fossil_free_fraction": ("fossil_free_percentage", 100), "renewable_fraction": ("renewable_percentage", 100)}
# table -> columns the redesign added (they say something new, e.g. which auxiliary feed was missing): left out
# of the comparison, which then proves every other column kept its values.
ADDED: dict[str, set[str]] = {
    "silver/electricity_maps_energy": {"missing_feed"},
    "gold/neso_carbon_intensity_features": {"mix_missing_reason"},
}
# new table name -> old table name
TABLE_RENAMES: dict[str, str] = {}


def _tables(root: Path) -> list[tuple[str, Path]]:
    out = []
    for layer in sorted(p for p in root.iterdir() if p.is_dir()):
        for table in sorted(p for p in layer.iterdir() if (p / "_delta_log").is_dir()):
            out.append((f"{layer.name}/{table.name}", table))
    return out


def fingerprint_frame(df: pl.DataFrame, renames: dict[str, tuple[str, float]] | None = None, added: set[str] = frozenset()) -> dict:
    renames = renames or {}
    df = df.drop([c for c in df.columns if c in VOLATILE or c in added])
    for new, (old, factor) in renames.items():
        if new in df.columns:
            col = pl.col(new) * factor if factor != 1 else pl.col(new)
            df = df.with_columns(col.alias(new)).rename({new: old})
    df = df.select(sorted(df.columns))
    # Floats to millionths, the boundary moved off the half: an average of 3-decimal values over 16 or 64
    # readings is an exact decimal ending in 5, which plain rounding would flip on a 1e-16 difference of order.
    df = df.with_columns([(pl.col(c) * 1e6 + 0.501).floor().cast(pl.Int64, strict=False) for c, t in df.schema.items() if t.is_float()])
    text = df.write_ndjson() if df.height else ""
    lines = sorted(line for line in text.split("\n") if line)
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return {"rows": df.height, "columns": df.columns, "sha256": digest}


def fingerprint_lake(root: str | Path) -> dict[str, dict]:
    result = {}
    for name, path in _tables(Path(root)):
        df = pl.from_arrow(DeltaTable(str(path)).to_pyarrow_table())
        result[TABLE_RENAMES.get(name, name)] = fingerprint_frame(df, RENAMES.get(name), ADDED.get(name, set()))
    return result


if __name__ == "__main__":
    json.dump(fingerprint_lake(sys.argv[1]), sys.stdout, indent=1, sort_keys=True)
    print()
