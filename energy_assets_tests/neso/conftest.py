"""NESO test fixtures: the local fake API on 127.0.0.1 with a controllable clock, and clients for it."""

import datetime as dt

import pytest

from energy_assets.http import HttpSession
from energy_assets.neso.client import UTC, NesoClient
from energy_assets.devtools.neso_fake_api import FakeNesoState, serve


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock():
    # Frozen at "now" (so the sensor's today is the fake's today) unless a test moves it.
    return Clock(dt.datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def fake_state(clock):
    return FakeNesoState(clock=clock, revise_every_s=0)


@pytest.fixture
def fake_api(fake_state):
    server = serve(fake_state)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def neso(fake_api, fast_http):
    return NesoClient(http=fast_http, base_url=fake_api)


@pytest.fixture
def neso_resources(resources, neso):
    return {**resources, "neso": neso}


def quick_session(**overrides) -> HttpSession:
    values = dict(connect_timeout_s=1.0, read_timeout_s=1.0, max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02,
                  max_total_wait_s=1.0, min_interval_s=0.0)
    values.update(overrides)
    return HttpSession(**values)
