"""Shared resources, configured from the environment with working local defaults."""

from __future__ import annotations

from energy_assets import settings
from energy_assets.http import HttpSession
from energy_assets.lake.io_manager import DeltaLakeIOManager


def lake_io_manager() -> DeltaLakeIOManager:
    """Delta lake at `ENERGY_LAKE_URI` (default `data/lake`); storage options from the environment."""
    return DeltaLakeIOManager(root_uri=settings.lake_uri())


def http_session() -> HttpSession:
    """The shared HTTP session; `ENERGY_ASSETS_SOURCE=replay` answers from `data/samples/`."""
    return HttpSession(
        source_mode=settings.env_or_default("ENERGY_ASSETS_SOURCE", settings.LIVE),
        samples_dir=settings.env_or_default("ENERGY_ASSETS_SAMPLES_DIR", str(settings.SAMPLES_DIR)),
    )


def shared_resources() -> dict:
    return {"io_manager": lake_io_manager(), "http": http_session()}
