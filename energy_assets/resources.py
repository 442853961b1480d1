"""Shared resources, configured from the environment with working local defaults."""

from __future__ import annotations

from energy_assets.http import HttpSession
from energy_assets.lake.io_manager import DeltaLakeIOManager


def lake_io_manager() -> DeltaLakeIOManager:
    """Delta lake at `ENERGY_LAKE_URI` (default `data/lake`), read when a run starts; storage options from the
    environment."""
    return DeltaLakeIOManager()


def http_session() -> HttpSession:
    """The shared HTTP session. It reads `ENERGY_ASSETS_SOURCE` (`replay` answers from `data/samples/`) and
    `ENERGY_ASSETS_SAMPLES_DIR` when it makes a request, not when the code location is imported."""
    return HttpSession()


def shared_resources() -> dict:
    return {"io_manager": lake_io_manager(), "http": http_session()}
