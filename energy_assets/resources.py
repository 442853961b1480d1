"""Shared resources: the lake (one `LakeResource` for every reader and writer) and the IO manager writing into
it; and the HTTP session's shared configuration, which each API domain nests in its client resource."""

from __future__ import annotations

from energy_assets.http import HttpSession
from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource


def shared_resources() -> dict:
    lake = LakeResource()  # the lake settings, read when a run starts
    return {"lake": lake, "io_manager": DeltaLakeIOManager(lake=lake)}


def http_session() -> HttpSession:
    """The session every API client nests (NESO, Electricity Maps): timeouts, retries, politeness, replay."""
    return HttpSession()
