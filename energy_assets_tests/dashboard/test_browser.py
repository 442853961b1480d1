"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright) against the app on 127.0.0.1.

Needs Debian's Chromium (`apt-get install -y postgresql chromium`, the README's line; the browser is never downloaded) and the
`[dashboard]` extra (streamlit, playwright), which `[dev]` includes. On a machine without Chromium the test
is skipped with the install line; with `ENERGY_ASSETS_REQUIRE_SYSTEM_PACKAGES=1` (CI, which installs it)
a missing browser fails the test instead.
The screenshot is kept at `<pytest basetemp>/dashboard/dashboard.png` (and copied to
`$ENERGY_TEST_ARTIFACTS_DIR` when set); its path is printed.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from energy_assets.dashboard.launch import command
from energy_assets_tests.carbon.factories import national, t
from energy_assets_tests.dashboard import lake as test_lake
from energy_assets_tests._processes import stop

CHROMIUM = os.environ.get("ENERGY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
INSTALL_HINT = "apt-get install -y postgresql chromium"  # the README's line (test_install_hint_is_the_readmes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the dashboard did not answer on {url} within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def dashboard(lake_root, tmp_path):
    expected = test_lake.build(lake_root)
    port = free_port()
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "ENERGY_LAKE_URI": str(lake_root), "ENERGY_DASHBOARD_REFRESH_SECONDS": "2", "HOME": str(tmp_path)}
    with log.open("w") as out:
        proc = subprocess.Popen(command(port), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url, expected, lake_root
    finally:
        stop(proc, grace_s=15)


def launch_browser(playwright, user_data_dir: str):
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM}: install the system package ({INSTALL_HINT})"
        if os.environ.get("ENERGY_ASSETS_REQUIRE_SYSTEM_PACKAGES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return playwright.chromium.launch_persistent_context(
        user_data_dir, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport={"width": 1600, "height": 4200}
    )


def metric_values(page) -> list[str]:
    return [e.inner_text().strip() for e in page.query_selector_all('[data-testid="stMetricValue"]')]


def test_dashboard_renders_the_lake_numbers_and_refreshes_itself(dashboard, tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"playwright is not installed ({INSTALL_HINT})")
    url, expected, lake_root = dashboard
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = launch_browser(p, profile)
        try:
            page = context.new_page()
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_text("Freshness of each table").wait_for(timeout=90_000)
            page.get_by_text("silver/neso_carbon_intensity").first.wait_for(timeout=30_000)
            values = metric_values(page)
            for key in ("forecast_newest", "actual_settled", "difference", "index", "consumption", "emissions", "intensity"):
                assert expected[key] in values, f"{key}: {expected[key]!r} not among the page's metrics {values}"
            for zone, value in expected["zones"].items():
                assert value in values, f"zone {zone}: {value!r} not among {values}"
                assert page.get_by_text(f"{zone}: carbon intensity").count() == 1
            assert page.query_selector_all('[data-testid="stException"]') == []
            for table in ("presentation/carbon_per_product_per_day", "silver/electricity_maps_energy", "gold/smart_meter_carbon_footprint"):
                assert page.get_by_text(table, exact=True).count() >= 1
            assert page.get_by_text("Flexible Octopus").count() >= 1  # the per-product table

            shot_dir = tmp_path_factory.getbasetemp() / "dashboard"
            shot_dir.mkdir(exist_ok=True)
            shot = shot_dir / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000
            if os.environ.get("ENERGY_TEST_ARTIFACTS_DIR"):
                target = Path(os.environ["ENERGY_TEST_ARTIFACTS_DIR"])
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, target / "dashboard.png")
            print(f"\ndashboard screenshot: {shot}", file=sys.stderr)

            # A new half-hour lands in the lake: the open page shows it without a reload.
            new = national([{"period_start": t("2021-03-28T13:00"), "forecast_gco2_per_kwh": 333, "intensity_index": "very high"}])
            new.write_delta(str(lake_root / "silver" / "neso_carbon_intensity"), mode="append")
            page.locator('[data-testid="stMetricValue"]', has_text="333 gCO2/kWh").wait_for(timeout=60_000)
            assert "very high" in metric_values(page)
        finally:
            context.close()


def test_install_hint_is_the_readmes():
    """The skip message tells the same install line as the README."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"`{INSTALL_HINT}`" in readme
