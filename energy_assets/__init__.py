"""energy_assets: a Dagster lakehouse for grid carbon and smart-meter data on Delta Lake."""

import warnings

from dagster import BetaWarning, PreviewWarning

# The project uses these Dagster features on purpose and pins Dagster 1.13: single-run backfill policies,
# partitioned asset checks, MultiPartitionMapping and allow_nonexistent_upstream_partitions. Their
# Beta/Preview notices would otherwise print on every import of the code location (dagster dev, CLI).
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
