"""The NESO Carbon Intensity domain: assets, checks, the polling sensor and its API clients."""

from dagster import Definitions

from energy_assets import settings
from energy_assets.http import HttpSession
from energy_assets.neso.assets import NESO_ASSETS
from energy_assets.neso.checks import NESO_CHECKS
from energy_assets.neso.client import DEFAULT_BASE_URL, NesoClient
from energy_assets.neso.sensors import neso_carbon_intensity_poller, neso_refresh_job
from energy_assets.resources import http_session


def poller_http_session() -> HttpSession:
    """The sensor's session: a tick must finish well within the sensor timeout, so retries are few and
    short; the next tick is the real retry."""
    return HttpSession(
        connect_timeout_s=3.0,
        read_timeout_s=10.0,
        max_attempts=2,
        backoff_base_s=0.5,
        backoff_max_s=2.0,
        max_total_wait_s=5.0,
        min_interval_s=0.2,
    )


def _base_url():
    return settings.env_var("NESO_API_BASE_URL")


defs = Definitions(
    assets=NESO_ASSETS,
    asset_checks=NESO_CHECKS,
    sensors=[neso_carbon_intensity_poller],
    jobs=[neso_refresh_job],
    resources={
        "neso": NesoClient(http=http_session(), base_url=_base_url()),
        "neso_poller": NesoClient(http=poller_http_session(), base_url=_base_url()),
    },
)
