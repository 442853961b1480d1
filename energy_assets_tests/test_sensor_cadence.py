"""Polling sensors tick every N s: their minimum interval is set one second short of N (energy_assets.sensor_cadence)."""

import pytest

from energy_assets import sensor_cadence


def test_the_minimum_interval_is_one_second_short_and_never_below_one():
    assert [sensor_cadence.minimum_interval_seconds(n) for n in (1, 2, 10, 60, 1800)] == [1, 1, 9, 59, 1799]
    with pytest.raises(ValueError, match="at least 1 s"):
        sensor_cadence.minimum_interval_seconds(0)


def test_the_daemon_loop_it_allows_for_is_dagsters():
    """The tolerance makes sense for a 5-s daemon loop: a Dagster whose sensor daemon loops otherwise fails here."""
    from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME

    assert MIN_INTERVAL_LOOP_TIME == sensor_cadence.DAEMON_LOOP_SECONDS
    assert 0 < sensor_cadence.TOLERANCE_SECONDS < sensor_cadence.DAEMON_LOOP_SECONDS


def test_the_polling_sensors_tick_at_their_settings_interval():
    from energy_assets.electricity_maps.definitions import latest_sensor
    from energy_assets.electricity_maps.sensors import sensor_interval_s
    from energy_assets.forecast.sensors import interval_seconds, neso_forecast_archive_sensor
    from energy_assets.neso.sensors import neso_carbon_intensity_poller, sensor_interval_seconds

    for sensor, interval in (
        (neso_carbon_intensity_poller, sensor_interval_seconds()),
        (latest_sensor, sensor_interval_s()),
        (neso_forecast_archive_sensor, interval_seconds()),
    ):
        assert sensor.minimum_interval_seconds == interval - 1, sensor.name
        assert sensor.description.endswith(sensor_cadence.SAID_IN_DESCRIPTIONS), sensor.name  # what the UI shows says why
