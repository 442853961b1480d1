"""The real dashboard script over the demo's lake (Streamlit's AppTest runs app.py as the server would): every
section renders without an error box, and the forecast section shows the archive, the greenest windows and
the skill the demo built."""

import polars as pl
import pytest

from energy_assets import settings


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_the_dashboard_shows_the_forecast_tables_of_the_demo(demo_run, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ENERGY_LAKE_URI", str(demo_run["lake"]))
    app = AppTest.from_file(str(settings.PACKAGE_DIR / "dashboard" / "app.py"), default_timeout=120).run()
    assert not app.exception, app.exception
    assert not [e.value for e in app.error], [e.value for e in app.error]
    headers = [h.value for h in app.header]
    assert "Forecasts: spread across issues, greenest windows, skill by lead time" in headers
    archive = pl.read_delta(str(demo_run["lake"] / "silver" / "neso_forecast_archive"))
    assert f"{archive['issued_at'].n_unique()} issues archived" in " ".join(c.value for c in app.caption)
    subheaders = [s.value for s in app.subheader]
    assert "Greenest 2-hour window from the newest issue" in subheaders
    assert "National forecast error by lead time (rolling 30 days, against the final actual)" in subheaders
    assert app.table, "the greenest windows are shown as a table"
