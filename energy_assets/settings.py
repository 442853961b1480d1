"""Settings: every environment variable the project reads, with its default, in this one module.

No other module of `energy_assets` reads the environment. Two kinds of setting:

- **load** settings shape the graph (partitions, sensor intervals). They are read ONCE, when the code
  location is imported (`graph()`), and a change needs a reload of the code location (`dagster dev` reloads
  it from the UI's "Reload" button, a deployment on restart).
- **run** settings are resolved when they are needed: when a run starts, a request is made or a command
  runs (`lake_uri()`, `source_mode()`, ...). Values that configure a Dagster resource are passed as
  `EnvVar` when the variable is set (`env_var()`), so the UI shows the variable's name, never its value.

Naming scheme: `<SCOPE>_<WHAT>[_<UNIT>]`; scopes `ENERGY_LAKE` (the lake), `ENERGY_ASSETS` (the project's
process-wide behaviour), `ENERGY_DUCKDB`, `ENERGY_DASHBOARD`, `NESO`, `ELECTRICITY_MAPS`, `SMART_METER`;
units spelled out (`_SECONDS`, `_HOURS`, `_DAYS`, `_BYTES`). A variable renamed under this scheme is still
read under its old name, with a warning that names the new one.

`SETTINGS` is the table the README's settings section is tested against.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
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

# The lake's variables, for help texts elsewhere (the environment itself is read only here).
LAKE_URI_VARIABLE = "ENERGY_LAKE_URI"
LAKE_OPTIONS_VARIABLE = "ENERGY_LAKE_STORAGE_OPTIONS"

LIVE = "live"
REPLAY = "replay"
LOAD = "load"
RUN = "run"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None  # None: no default (unset means "not configured")
    meaning: str
    when: str = RUN  # LOAD: read once when the code location loads; RUN: when needed
    default_shown: str | None = None  # the default as the README shows it (markdown), when the value is a path

    @property
    def shown_default(self) -> str:
        if self.default_shown is not None:
            return self.default_shown
        return "—" if self.default is None else f"`{self.default}`"


def _rel(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


_ALL = [
    # the lake
    Setting("ENERGY_LAKE_URI", str(DATA_DIR / "lake"), "root of the Delta lake: a local path or any delta-rs URI (`s3://…`, `az://…`, `gs://…`)", default_shown="`data/lake`"),
    Setting("ENERGY_LAKE_STORAGE_OPTIONS", None, "extra delta-rs storage options as a JSON object; delta-rs also reads `AWS_*`, `AZURE_*`, `GOOGLE_*` itself"),
    Setting("ENERGY_LAKE_VACUUM_RETENTION_HOURS", "168", "vacuum retention of the maintenance job"),
    Setting("ENERGY_LAKE_VACUUM_ENFORCE_RETENTION", "true", "`false` allows a retention below a table's own (only safe when nothing else uses the lake)"),
    # process-wide behaviour
    Setting("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME), "the Dagster instance: run history, event log, schedules, sensor cursors", default_shown="`dagster_home/` (set by `energy-assets`)"),
    Setting("ENERGY_ASSETS_SOURCE", LIVE, "`live` calls the APIs; `replay` answers every API request from the recorded samples (offline)"),
    Setting("ENERGY_ASSETS_SAMPLES_DIR", str(SAMPLES_DIR), "where `replay` finds the samples (`<source>/<path>[__<query>].json`)", default_shown="`data/samples`"),
    Setting("DAGSTER_EVENT_BATCH_SIZE", "10000", "Dagster's batched event writes: the project's event log (`energy_assets/instance_storage.py`) sets it when unset, so a run's planned events and a range step's materialisations are stored as one batch each; `0` stores event by event"),
    Setting("ENERGY_ASSETS_HTTP_MIN_INTERVAL_SECONDS", None, "lowers (never raises) the 1 s politeness interval per host, e.g. `0` against a local fake API"),
    # where the steps of a run execute (shapes the code location: every job's executor)
    Setting("ENERGY_ASSETS_EXECUTOR", "in_process", "the executor of every job: `in_process` (every step of a launched run in the run's own process: a UK day of `uk_days_job` from the UI in 2.0 s instead of 52 s), `multiprocess` (Dagster's default: a process per step, steps of a run in parallel), or `celery` (steps go to Celery workers: `pip install -e \".[distributed]\"`, `celery -A energy_assets.celery_worker worker`)", when=LOAD),
    Setting("ENERGY_ASSETS_CELERY_BROKER_URL", "redis://localhost:6379/0", "the Celery broker of the `celery` executor and of `energy_assets.celery_worker` (a password in it stays in the environment: the executor reads it as an env reference)"),
    Setting("ENERGY_ASSETS_CELERY_BACKEND_URL", None, "the Celery result backend (default: the broker URL)"),
    # serving
    Setting("ENERGY_DUCKDB_PATH", str(DATA_DIR / "energy.duckdb"), "the SQL-serving DuckDB file", default_shown="`data/energy.duckdb`"),
    Setting("ENERGY_DASHBOARD_REFRESH_SECONDS", "30", "dashboard refresh interval"),
    Setting("ENERGY_DASHBOARD_PORT", "8501", "dashboard port"),
    # NESO
    Setting("NESO_API_BASE_URL", "https://api.carbonintensity.org.uk", "NESO Carbon Intensity API (point it at a local fake for tests)"),
    Setting("NESO_SENSOR_INTERVAL_SECONDS", "60", "NESO poll interval (10 works)", when=LOAD),
    Setting("NESO_FORECAST_SENSOR_INTERVAL_SECONDS", "1800", "how often the forecast archive sensor fetches the 48-hour forecasts (the capture-rate check expects one issue per interval)", when=LOAD),
    # Electricity Maps
    Setting("ELECTRICITY_MAPS_API_BASE_URL", "https://api.electricitymap.org/v3", "Electricity Maps API v3"),
    Setting("ELECTRICITY_MAPS_API_KEY", None, "Electricity Maps key, sent only as the `auth-token` header"),
    Setting("ELECTRICITY_MAPS_PAID_TIER", "false", "`true`: backfill past days with `past-range`"),
    Setting("ELECTRICITY_MAPS_ZONES", "GR", "comma-separated zones (the zone dimension of the partitions)", when=LOAD),
    Setting("ELECTRICITY_MAPS_SENSOR_INTERVAL_SECONDS", "300", "Electricity Maps poll interval", when=LOAD),
    Setting("ELECTRICITY_MAPS_REVISION_LOOKBACK_DAYS", "0,7,30,90", "days before today the daily revision schedule re-fetches (Electricity Maps revises about three months of history)"),
    # smart meter
    Setting("SMART_METER_READINGS_DIR", str(DATA_DIR / "readings"), "the smart-meter reading files", default_shown="`data/readings`"),
    Setting("SMART_METER_DB_PATH", str(DATA_DIR / "case_study.db"), "the smart-meter SQLite database", default_shown="`data/case_study.db`"),
    Setting("SMART_METER_AS_OF_DATE", "2021-01-01", "as-of date of `presentation/active_agreements`"),
    Setting("SMART_METER_CHUNK_DAYS", "8", "days per chunk of silver, presentation and the silver checks in large smart-meter runs (8: peak memory of the 90-day benchmark batch 2.27 GiB, against 2.70 GiB with 15, at the same speed)"),
    Setting("SMART_METER_INGEST_CHUNK_BYTES", str(64 << 20), "JSON bytes per ingestion chunk of large smart-meter runs", default_shown="`67108864` (64 MiB)"),
    Setting("SMART_METER_BUCKETS", "1", "meterpoint buckets per UK day: `1` is one run per day or range; `N > 1` adds a bucket dimension so one day runs as N independent runs that can write concurrently (a stable hash of the meterpoint id; shapes the partitions: a new count needs a fresh smart-meter lake)", when=LOAD),
    Setting("SMART_METER_MAX_FILE_BYTES", str(256 << 20), "a larger reading file is quarantined by name, not parsed (a year of one meterpoint is about 1 MB)", default_shown="`268435456` (256 MiB)"),
]
SETTINGS: dict[str, Setting] = {s.name: s for s in _ALL}

# Old names, still read (with a warning) so existing shells and deployments keep working.
RENAMED = {
    "ENERGY_ASSETS_HTTP_MIN_INTERVAL_S": "ENERGY_ASSETS_HTTP_MIN_INTERVAL_SECONDS",
    "ELECTRICITY_MAPS_SENSOR_INTERVAL_S": "ELECTRICITY_MAPS_SENSOR_INTERVAL_SECONDS",
    "ENERGY_DASHBOARD_REFRESH_S": "ENERGY_DASHBOARD_REFRESH_SECONDS",
    "LAKE_VACUUM_RETENTION_HOURS": "ENERGY_LAKE_VACUUM_RETENTION_HOURS",
    "LAKE_VACUUM_ENFORCE_RETENTION": "ENERGY_LAKE_VACUUM_ENFORCE_RETENTION",
}
_OLD_NAME = {new: old for old, new in RENAMED.items()}


class SettingError(ValueError):
    """A setting has a value the project cannot use; the message names the variable."""


def _setting(name: str) -> Setting:
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"{name} is not a setting of energy_assets.settings; add it to SETTINGS") from None


def raw(name: str) -> str | None:
    """The variable's value as set (empty counts as unset), or None; the old name of a renamed one too."""
    _setting(name)
    value = os.environ.get(name)
    if value:
        return value
    old = _OLD_NAME.get(name)
    if old and os.environ.get(old):
        warnings.warn(f"{old} was renamed {name}; please set {name}", DeprecationWarning, stacklevel=3)
        return os.environ[old]
    return None


def get(name: str) -> str | None:
    """The value in force: the variable when set, else the default (None when there is none)."""
    value = raw(name)
    return value if value is not None else _setting(name).default


def is_set(name: str) -> bool:
    return raw(name) is not None


def env_var(name: str) -> str | EnvVar:
    """For resource config: `EnvVar(name)` when the variable is set (the UI shows its name, never its value),
    else the default (empty string when there is none)."""
    if os.environ.get(name):
        return EnvVar(name)
    old = _OLD_NAME.get(name)
    if old and os.environ.get(old):
        return EnvVar(old)
    return _setting(name).default or ""


def integer(name: str, minimum: int | None = None) -> int:
    value = get(name)
    try:
        number_ = int(str(value).strip())
    except (TypeError, ValueError):
        raise SettingError(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number_ < minimum:
        raise SettingError(f"{name} must be at least {minimum}, not {number_}")
    return number_


def number(name: str, minimum: float | None = None) -> float | None:
    """A float setting; None when unset and without default."""
    value = get(name)
    if value is None:
        return None
    try:
        parsed = float(str(value).strip())
    except ValueError:
        raise SettingError(f"{name} must be a number, not {value!r}") from None
    if parsed != parsed or parsed in (float("inf"), float("-inf")):
        raise SettingError(f"{name} must be a finite number, not {value!r}")
    if minimum is not None and parsed < minimum:
        raise SettingError(f"{name} must be at least {minimum}, not {parsed}")
    return parsed


def flag(name: str) -> bool:
    value = str(get(name) or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE or value == "":
        return False
    raise SettingError(f"{name} must be true or false, not {value!r}")


# ------------------------------------------------------------------------------------------- run time
def lake_uri() -> str:
    """`ENERGY_LAKE_URI`, default `data/lake` in the repository. Local paths are made absolute."""
    value = str(get("ENERGY_LAKE_URI"))
    if "://" not in value:
        value = str(Path(value).expanduser().resolve())
    return value


def lake_storage_options() -> dict[str, str]:
    """`ENERGY_LAKE_STORAGE_OPTIONS`: a JSON object of delta-rs storage options (empty when unset)."""
    value = raw("ENERGY_LAKE_STORAGE_OPTIONS")
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise SettingError(f"ENERGY_LAKE_STORAGE_OPTIONS is not valid JSON: {exc.msg}") from None
    if not isinstance(parsed, dict):
        raise SettingError("ENERGY_LAKE_STORAGE_OPTIONS must be a JSON object of option names to values")
    return {str(k): str(v) for k, v in parsed.items()}


def source_mode() -> str:
    """`ENERGY_ASSETS_SOURCE`: `live` (default) or `replay` (answer API calls from data/samples)."""
    mode = str(get("ENERGY_ASSETS_SOURCE")).strip().lower()
    if mode not in (LIVE, REPLAY):
        raise SettingError(f"ENERGY_ASSETS_SOURCE must be '{LIVE}' or '{REPLAY}', not {mode!r}")
    return mode


def samples_dir() -> Path:
    return Path(str(get("ENERGY_ASSETS_SAMPLES_DIR")))


def http_min_interval_seconds() -> float | None:
    """`ENERGY_ASSETS_HTTP_MIN_INTERVAL_SECONDS` (None when unset): may only lower the politeness interval."""
    return number("ENERGY_ASSETS_HTTP_MIN_INTERVAL_SECONDS", minimum=0.0)


def celery_broker_url() -> str:
    return str(get("ENERGY_ASSETS_CELERY_BROKER_URL"))


def celery_backend_url() -> str:
    return str(get("ENERGY_ASSETS_CELERY_BACKEND_URL") or celery_broker_url())


def config_source(name: str) -> str | dict[str, str] | None:
    """For Dagster config fields that take a `StringSource` (executor config): `{"env": name}` when the variable
    is set, so the value is resolved where the config is used and never shown; else the default (or None)."""
    if raw(name) is not None:
        return {"env": name if os.environ.get(name) else _OLD_NAME[name]}
    return _setting(name).default


def dagster_home() -> Path:
    return Path(str(get("DAGSTER_HOME"))).resolve()


def duckdb_path() -> str:
    return str(get("ENERGY_DUCKDB_PATH"))


def dashboard_refresh_seconds() -> int:
    return max(2, integer("ENERGY_DASHBOARD_REFRESH_SECONDS"))


def dashboard_port() -> int:
    return integer("ENERGY_DASHBOARD_PORT", minimum=1)


def vacuum_retention_hours() -> int:
    return integer("ENERGY_LAKE_VACUUM_RETENTION_HOURS", minimum=0)


def vacuum_enforce_retention() -> bool:
    return flag("ENERGY_LAKE_VACUUM_ENFORCE_RETENTION")


def electricity_maps_paid_tier() -> bool:
    return flag("ELECTRICITY_MAPS_PAID_TIER")


def smart_meter_chunk_days() -> int:
    return integer("SMART_METER_CHUNK_DAYS", minimum=1)


def smart_meter_ingest_chunk_bytes() -> int:
    return integer("SMART_METER_INGEST_CHUNK_BYTES", minimum=1)


def smart_meter_max_file_bytes() -> int:
    return integer("SMART_METER_MAX_FILE_BYTES", minimum=1)


# -------------------------------------------------------------------------------- the process itself
def export(name: str, value: str, overwrite: bool = True) -> None:
    """Set a setting for this process and the processes it starts (the `energy-assets` commands use it to
    point Dagster at the project's instance, or the demo at the samples)."""
    _setting(name)
    if overwrite or not os.environ.get(name):
        os.environ[name] = value


def process_environment(**overrides: str) -> dict[str, str]:
    """The environment for a child process (a copy of this one, with overrides)."""
    env = dict(os.environ)
    env.update(overrides)
    return env


# --------------------------------------------------------------------------------------- load time
@dataclass(frozen=True)
class GraphSettings:
    """What shapes the graph; read once when the code location loads."""

    electricity_maps_zones: tuple[str, ...]
    neso_sensor_interval_seconds: int
    electricity_maps_sensor_interval_seconds: int
    neso_forecast_sensor_interval_seconds: int = 1800
    executor: str = "in_process"
    smart_meter_buckets: int = 1


EXECUTORS = ("in_process", "multiprocess", "celery")


def parse_executor(value: str) -> str:
    choice = value.strip().lower().replace("-", "_")
    if choice not in EXECUTORS:
        raise SettingError(f"ENERGY_ASSETS_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {value!r}")
    return choice


def parse_zones(value: str) -> tuple[str, ...]:
    zones = tuple(z.strip() for z in value.split(",") if z.strip())
    if not zones:
        raise SettingError("ELECTRICITY_MAPS_ZONES names no zone")
    for zone in zones:
        if not all(ch.isalnum() or ch == "-" for ch in zone):
            raise SettingError(f"ELECTRICITY_MAPS_ZONES: {zone!r} is not a zone key (letters, digits and '-')")
    return zones


@functools.cache
def graph() -> GraphSettings:
    """The load-time settings, read on first use (when the code location is imported) and then kept."""
    return GraphSettings(
        electricity_maps_zones=parse_zones(str(get("ELECTRICITY_MAPS_ZONES"))),
        neso_sensor_interval_seconds=integer("NESO_SENSOR_INTERVAL_SECONDS", minimum=1),
        electricity_maps_sensor_interval_seconds=integer("ELECTRICITY_MAPS_SENSOR_INTERVAL_SECONDS", minimum=1),
        neso_forecast_sensor_interval_seconds=integer("NESO_FORECAST_SENSOR_INTERVAL_SECONDS", minimum=60),
        executor=parse_executor(str(get("ENERGY_ASSETS_EXECUTOR"))),
        smart_meter_buckets=integer("SMART_METER_BUCKETS", minimum=1),
    )


def readme_table(settings: Mapping[str, Setting] = SETTINGS) -> str:
    """The README's settings table (a test keeps the README equal to it)."""
    lines = ["| variable | default | read | meaning |", "|---|---|---|---|"]
    for s in settings.values():
        when = "at load" if s.when == LOAD else "when needed"
        lines.append(f"| `{s.name}` | {s.shown_default} | {when} | {s.meaning} |")
    return "\n".join(lines)
