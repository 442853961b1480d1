"""The NESO Carbon Intensity domain: national intensity, generation mix and regional intensity assets, their
checks, the polling sensor and its API clients.

Each client holds its HTTP session as a nested resource (`NesoClient.http`): the assets' client the shared
session's configuration, the poller's client a quicker one (a tick must finish well within the sensor
timeout).
"""

from dagster import Definitions

from energy_assets import settings
from energy_assets.http import HttpSession
from energy_assets.neso.assets import NESO_ASSETS, NESO_REGIONAL_ASSETS
from energy_assets.neso.checks import NESO_CHECKS, NESO_REGIONAL_CHECKS
from energy_assets.neso.client import NesoClient
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


def neso_client(http: HttpSession) -> NesoClient:
    """A NESO client over `http` (a nested resource), at NESO_API_BASE_URL when set."""
    return NesoClient(http=http, base_url=settings.env_var("NESO_API_BASE_URL"))


defs = Definitions(
    assets=[*NESO_ASSETS, *NESO_REGIONAL_ASSETS],
    asset_checks=[*NESO_CHECKS, *NESO_REGIONAL_CHECKS],
    sensors=[neso_carbon_intensity_poller],
    jobs=[neso_refresh_job],
    resources={
        "neso": neso_client(http_session()),
        "neso_poller": neso_client(poller_http_session()),
    },
)
