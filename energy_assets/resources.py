"""Shared resources: the lake (one `LakeResource` for every reader and writer), the IO manager writing into
it, and the HTTP session every API client uses."""

from __future__ import annotations

from energy_assets.http import HttpSession
from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource


def shared_resources() -> dict:
    lake = LakeResource()  # the lake settings, read when a run starts
    return {"lake": lake, "io_manager": DeltaLakeIOManager(lake=lake), "http": HttpSession()}


def http_session() -> HttpSession:
    return HttpSession()
