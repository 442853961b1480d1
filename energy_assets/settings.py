"""Settings: environment variables with local defaults that work with no configuration.

Every setting is read in one place. Values that reach Dagster resources are passed as `EnvVar` when the
variable is set (so the UI shows the variable's name, never its value) and as the local default otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import EnvVar

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
DATA_DIR = PROJECT_ROOT / "data"
SAMPLES_DIR = DATA_DIR / "samples"
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / "dagster_home"

# The days the bundled sample data covers (UK settlement days; for Electricity Maps the same UTC days).
# 2021-03-28 is a clock-change day (46 half-hours).
SAMPLE_DAYS = ("2021-03-26", "2021-03-27", "2021-03-28", "2021-03-29")

LIVE = "live"
REPLAY = "replay"


def env_or_default(name: str, default: str) -> str | EnvVar:
    """`EnvVar(name)` when the variable is set, else the default (for resource config)."""
    return EnvVar(name) if os.environ.get(name) else default


def get(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value else default


def lake_uri() -> str:
    """`ENERGY_LAKE_URI`, default `data/lake` in the repository. Local paths are made absolute."""
    value = get("ENERGY_LAKE_URI", str(DATA_DIR / "lake"))
    if "://" not in value:
        value = str(Path(value).expanduser().resolve())
    return value


def source_mode() -> str:
    """`ENERGY_ASSETS_SOURCE`: `live` (default) or `replay` (answer API calls from data/samples)."""
    mode = get("ENERGY_ASSETS_SOURCE", LIVE).lower()
    if mode not in (LIVE, REPLAY):
        raise ValueError(f"ENERGY_ASSETS_SOURCE must be '{LIVE}' or '{REPLAY}', not {mode!r}")
    return mode


def dagster_home() -> Path:
    return Path(get("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME))).resolve()
