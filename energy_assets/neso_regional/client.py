"""Client for the NESO regional carbon intensity endpoint (`/regional/intensity/{from}/{to}`).

Reuses the NESO domain's knowledge of the API (`energy_assets.neso.client`): UK settlement days and their
UTC bounds, the one-minute boundary shift, 13-day chunks that never cross 1 January, and the
`FetchedResponse` record that bronze keeps verbatim. What is regional-specific lives here: the body check
(each half-hour carries a `regions` list; regional data is forecast only, never `actual`).
"""



import datetime as dt
from collections.abc import Sequence

from dagster import ConfigurableResource, ResourceDependency
from pydantic import Field

from energy_assets import settings
from energy_assets.http import HttpSession
from energy_assets.neso.client import (
    DEFAULT_BASE_URL,
    MAX_DAYS_PER_REQUEST,
    FetchedResponse,
    chunk_path,
    data_records,
    day_chunks,
    fetch_response,
)

REGIONAL = "regional/intensity"


def regional_path(days: Sequence[dt.date]) -> str:
    """`/regional/intensity/{from}/{to}` covering the consecutive UK days `days` (from shifted by one minute)."""
    return chunk_path(REGIONAL, list(days))


def regional_usability_problem(text: str | None) -> str | None:
    """Why a regional body cannot be used (None when it can): the NESO body rules, then the regions."""
    data, problem = data_records(text, list_hint="postcode/region endpoint?")
    if problem:
        return problem
    first = data[0]
    if not isinstance(first, dict) or "from" not in first or not isinstance(first.get("regions"), list):
        return "records lack 'from'/'regions'"
    return None


class NesoRegionalClient(ConfigurableResource):
    """NESO regional intensity client over the shared session: range chunking, boundary shift, outage detection."""

    http: ResourceDependency[HttpSession]
    base_url: str = Field(default=DEFAULT_BASE_URL, description="API base URL (NESO_API_BASE_URL).")
    max_days_per_request: int = Field(default=MAX_DAYS_PER_REQUEST, description="Days per range request (API max 14).")

    def _get(self, path: str, days: Sequence[dt.date]) -> FetchedResponse:
        return fetch_response(self.http, self.base_url, REGIONAL, path, days, regional_usability_problem)

    def fetch_days(self, days: Sequence[dt.date], stop_on_failure: bool = True) -> list[FetchedResponse]:
        """Every response needed for the UK days `days`, in as few requests as the API allows.

        Never raises for an API failure: a failed request comes back with `problem` set, so bronze keeps it
        and the blocking check fails the run visibly.
        """
        out = []
        for chunk in day_chunks(days, self.max_days_per_request):
            fetched = self._get(regional_path(chunk), chunk)
            out.append(fetched)
            if stop_on_failure and not fetched.ok:
                break
        return out


def neso_regional_client(http: HttpSession) -> NesoRegionalClient:
    return NesoRegionalClient(http=http, base_url=settings.env_var("NESO_API_BASE_URL"))
