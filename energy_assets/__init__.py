"""energy_assets: a Dagster lakehouse for grid carbon and smart-meter data on Delta Lake."""
