"""The lake as a Dagster resource: the one place runs learn the lake's root and storage options."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from energy_assets import settings
from energy_assets.lake.store import Lake


class LakeResource(ConfigurableResource):
    """The Delta lake every asset, check, sensor and command reads and writes (`<root>/<layer>/<table>`)."""

    root_uri: str = Field(
        default="",
        description=(
            "Root of the Delta lake: a local path or any delta-rs URI (s3://, az://, gs://). Empty (the default): "
            f"{settings.LAKE_URI_VARIABLE}, read when the run starts (default data/lake)."
        ),
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "delta-rs storage options, merged over ENERGY_LAKE_STORAGE_OPTIONS. Secrets belong in the environment "
            "(AWS_*, ENERGY_LAKE_STORAGE_OPTIONS), not in run config."
        ),
    )

    def lake(self) -> Lake:
        """The lake in force now (the environment is read at this call, not at import)."""
        return Lake.from_settings(self.root_uri or None, self.storage_options)
