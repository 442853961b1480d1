"""The `minimum_interval_seconds` that makes a polling sensor tick every N seconds, as its setting says.

Dagster's sensor daemon looks at each sensor once per loop of 5 s (`MIN_INTERVAL_LOOP_TIME` in Dagster 1.13's
`dagster/_daemon/sensor.py`) and starts a tick when at least `minimum_interval_seconds` have passed since the last
tick started. A tick starts a little after its loop began, and the look that comes a whole number of loops later is
then short of the interval by those few milliseconds about half of the time: with an interval of 10 s, ticks came
10 or 15 s apart (measured: BENCHMARKS.md 1h, freshness), so a change waited up to 15 s for the tick that saw it.

`minimum_interval_seconds(n)` is one second less than `n` (never below 1): ticks then come every `n` s whenever `n`
is a multiple of the 5-s loop, and at the next loop after `n` s otherwise. No two ticks come closer than `n - 1` s.
"""

DAEMON_LOOP_SECONDS = 5
TOLERANCE_SECONDS = 1
# The sentence the sensors' descriptions end with: the UI shows the minimum interval, one second short of the setting.
SAID_IN_DESCRIPTIONS = (
    f"Its minimum interval is {TOLERANCE_SECONDS} s short of the setting, so that ticks come every interval on the "
    f"daemon's {DAEMON_LOOP_SECONDS}-s loop (energy_assets.sensor_cadence)."
)


def minimum_interval_seconds(interval_seconds: int) -> int:
    """The sensor's `minimum_interval_seconds` for ticks every `interval_seconds` (see the module docstring)."""
    if interval_seconds < 1:
        raise ValueError(f"a sensor interval must be at least 1 s, not {interval_seconds}")
    return max(1, int(interval_seconds) - TOLERANCE_SECONDS)
