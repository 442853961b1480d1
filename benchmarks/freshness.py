"""Scenario 3, freshness latency: `dagster dev` (webserver + daemon + code server) polling a fake NESO API.

What runs: the project's fake NESO API (`energy_assets.devtools.neso_fake_api`, outside the measured tree) and
`dagster dev -m energy_assets.definitions` with a throwaway DAGSTER_HOME (the project's dagster.yaml),
lake and `NESO_SENSOR_INTERVAL_SECONDS` (10 s by default). The sensor is switched on with
`dagster sensor start`, exactly as a user would. After the first (catch-up) run, the harness changes
the API's data (`/_control?revision=%2B1`: forecasts of open periods move) at a random moment of the
sensor's cycle, then reads from the instance and the lake:

- change -> tick: from the change being served to the start of the sensor tick that requested the run
  (0 when a tick that had already started saw the change);
- tick -> run created/started, tick -> silver commit, tick -> gold commit: the Delta commit timestamps of
  the two tables (their `_delta_log` commitInfo), not Dagster's events;
- change -> commit: from the change to the gold commit (the last table of the path).

Medians and nearest-rank p95 over the changes. Peak RSS is the `dagster dev` tree's (webserver, daemon,
code server and the run processes it launches).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.fake_neso import FakeNeso, free_port
from benchmarks.harness import REPO_ROOT, TreeSampler, summarise
from benchmarks.scenarios import GiB, Options, _cleanup, _env, _finish, _fresh_state, _target, register

SENSOR = "neso_carbon_intensity_poller"
TABLES = {"silver": ("silver", "neso_carbon_intensity"), "gold": ("gold", "neso_carbon_intensity_features")}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _dagster_bin() -> str:
    candidate = Path(sys.executable).with_name("dagster")
    return str(candidate) if candidate.exists() else "dagster"


def _commit_times(lake: Path, layer: str, table: str) -> list[float]:
    """Epoch seconds of every commit of a Delta table (commitInfo timestamps)."""
    log = lake / layer / table / "_delta_log"
    times = []
    if not log.is_dir():
        return times
    for path in sorted(log.glob("*.json")):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if "commitInfo" in entry and entry["commitInfo"].get("timestamp"):
                op = entry["commitInfo"].get("operation", "")
                if op.upper().startswith("CREATE"):
                    continue  # the schema-only create commit carries no rows
                times.append(entry["commitInfo"]["timestamp"] / 1000.0)
    return times


def _wait(predicate, timeout_s: float, what: str, poll_s: float = 0.25):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise TimeoutError(f"freshness: {what} did not happen within {timeout_s:.0f} s")


class Observer:
    """Reads ticks and runs from the instance (the same SQLite storage the daemon writes)."""

    def __init__(self, home: Path):
        os.environ["DAGSTER_HOME"] = str(home)
        from dagster import DagsterInstance

        self.instance = DagsterInstance.get()

    def sensor_state(self):
        for state in self.instance.all_instigator_state():
            if state.name == SENSOR:
                return state
        return None

    def ticks(self) -> list:
        state = self.sensor_state()
        if state is None:
            return []
        return list(self.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200))

    def run(self, run_id: str):
        return self.instance.get_run_record_by_id(run_id)


def _tick_with_run_after(observer: Observer, since: float, seen_runs: set[str]):
    """The first tick that requested a run not seen before, among ticks that ended after `since`."""
    for tick in sorted(observer.ticks(), key=lambda t: t.timestamp):
        end = tick.end_timestamp or tick.timestamp
        new = [r for r in tick.run_ids if r not in seen_runs]
        if new and end >= since:
            return tick, new
    return None


def _run_done(observer: Observer, run_ids: list[str]):
    records = [observer.run(r) for r in run_ids]
    if all(rec is not None and rec.dagster_run.status.value in FINISHED for rec in records):
        return records
    return None


def freshness(options: Options) -> Path:
    interval = int(options.sensor_interval_s)
    changes = options.changes or (10 if options.size == "full" else 1)
    state = _fresh_state(options, "freshness")
    home, lake = state / "dagster_home", state / "lake"
    port = free_port()
    dev_log = state / "dagster_dev.log"
    measurements: list[dict[str, Any]] = []
    initial: dict[str, Any] = {}
    rng = random.Random(7)
    with FakeNeso(state / "fake_api.log") as fake:
        env = {**os.environ, **_env(state, NESO_API_BASE_URL=fake.base_url, NESO_SENSOR_INTERVAL_SECONDS=str(interval))}
        with open(dev_log, "w") as log, TreeSampler() as sampler:
            started = time.time()
            dev = subprocess.Popen(
                [_dagster_bin(), "dev", "-m", "energy_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            sampler.add_root(dev.pid)
            try:
                options.log(f"  dagster dev (pid {dev.pid}) on port {port}, sensor interval {interval} s, fake API {fake.base_url}")
                _wait(lambda: _http_ok(f"http://127.0.0.1:{port}/server_info") or _dead(dev, dev_log), 300, "webserver start")
                webserver_up = time.time()
                # taken before the command: the daemon can tick the sensor (and launch the catch-up run) while
                # `dagster sensor start` is still loading the code location to exit, which a timestamp taken after
                # it would miss (seen under load: the first tick ended before the command returned)
                sensor_on = time.time()
                subprocess.run(
                    [_dagster_bin(), "sensor", "start", "-m", "energy_assets.definitions", SENSOR],
                    cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True, timeout=300,
                )  # fmt: skip
                observer = Observer(home)
                options.log(f"  webserver up after {webserver_up - started:.1f} s; sensor on; waiting for the catch-up run")
                tick, runs = _wait(lambda: _tick_with_run_after(observer, sensor_on, set()), 300, "first tick with a run")
                records = _wait(lambda: _run_done(observer, runs), 600, "catch-up run")
                seen = set(runs)
                initial = {
                    "webserver_ready_s": webserver_up - started,
                    "sensor_on_to_first_tick_s": tick.timestamp - sensor_on,
                    "catch_up_runs": len(runs),
                    "catch_up_run_s": max(r.end_time or 0 for r in records) - tick.timestamp,
                    "catch_up_status": [r.dagster_run.status.value for r in records],
                }
                options.log(f"  catch-up: {initial}")
                for i in range(changes):
                    time.sleep(rng.uniform(0, interval))  # a random moment of the sensor's cycle
                    silver_before = set(_commit_times(lake, *TABLES["silver"]))
                    gold_before = set(_commit_times(lake, *TABLES["gold"]))
                    changed_at = time.time()
                    fake.control("revision=%2B1")  # "+" in a query string is a space: encode it
                    tick, runs = _wait(lambda: _tick_with_run_after(observer, changed_at, seen), 120, f"tick after change {i + 1}")
                    seen |= set(runs)
                    records = _wait(lambda: _run_done(observer, runs), 300, f"run after change {i + 1}")
                    silver = sorted(t for t in _commit_times(lake, *TABLES["silver"]) if t not in silver_before)
                    gold = sorted(t for t in _commit_times(lake, *TABLES["gold"]) if t not in gold_before)
                    status = [r.dagster_run.status.value for r in records]
                    tick_at = tick.timestamp
                    m = {
                        "change": i + 1,
                        "status": status,
                        "runs": len(runs),
                        "change_to_tick_s": max(0.0, tick_at - changed_at),
                        "tick_start_minus_change_s": tick_at - changed_at,  # < 0: a tick already running saw it
                        "tick_duration_s": (tick.end_timestamp or tick_at) - tick_at,
                        "tick_to_run_created_s": min(r.create_timestamp.timestamp() for r in records) - tick_at,
                        "tick_to_run_started_s": min((r.start_time or 0) for r in records) - tick_at,
                        "tick_to_silver_commit_s": (silver[-1] - tick_at) if silver else None,
                        "tick_to_gold_commit_s": (gold[-1] - tick_at) if gold else None,
                        "tick_to_run_end_s": max((r.end_time or 0) for r in records) - tick_at,
                        "change_to_commit_s": (gold[-1] - changed_at) if gold else None,
                    }
                    m["ticks_around_change"] = [
                        {"start_after_change_s": round(t.timestamp - changed_at, 2),
                         "duration_s": round((t.end_timestamp or t.timestamp) - t.timestamp, 2),
                         "status": t.status.value, "runs": len(t.run_ids)}
                        for t in sorted(observer.ticks(), key=lambda t: t.timestamp)
                        if changed_at - 2 * interval <= t.timestamp <= tick_at
                    ]  # fmt: skip
                    measurements.append(m)
                    options.log(
                        f"    change {i + 1}: change->tick {m['change_to_tick_s']:.1f} s, tick->silver "
                        f"{_fmt(m['tick_to_silver_commit_s'])} s, tick->gold {_fmt(m['tick_to_gold_commit_s'])} s, "
                        f"change->commit {_fmt(m['change_to_commit_s'])} s ({', '.join(status)})"
                    )
            finally:
                _stop(dev)
        peak = sampler.peak()
    requests = len(fake.data_requests())

    def col(name):
        return [m[name] for m in measurements if m.get(name) is not None]

    tick_to_commit = col("tick_to_gold_commit_s")
    change_to_commit = col("change_to_commit_s")
    summary = {
        name: {**summarise(col(name)), "p95": p95(col(name))}
        for name in ("change_to_tick_s", "tick_duration_s", "tick_to_run_created_s", "tick_to_run_started_s",
                     "tick_to_silver_commit_s", "tick_to_gold_commit_s", "tick_to_run_end_s", "change_to_commit_s")
    }  # fmt: skip
    summary["peak_rss_tree_bytes"] = peak
    summary["api_requests_served"] = requests
    failed = [m for m in measurements if any(s != "SUCCESS" for s in m["status"])]
    result = _finish(options, "freshness", {
        "setup": {"sensor_interval_s": interval, "changes": changes, "dagster_dev": "dagster dev -m energy_assets.definitions",
                  "instance": "the project's dagster_home/dagster.yaml in a temporary DAGSTER_HOME", **initial},
        "summary": summary,
        "failed_runs": len(failed),
        "targets": [
            _target("tick -> silver and gold committed, median", summary["tick_to_gold_commit_s"].get("median"), 5, "<", "s"),
            _target(f"change -> commit p95 ({interval} s sensor interval)", p95(change_to_commit), 15, "<", "s"),
            _target("peak RSS of the dagster dev tree (context)", peak / GiB, 24, "<", "GiB"),
        ],
        "measurements": measurements,
        "dagster_dev_log_tail": dev_log.read_text()[-3000:] if dev_log.exists() else "",
    })  # fmt: skip
    if not tick_to_commit:
        raise RuntimeError(f"freshness: no change reached gold; see {dev_log}")
    _cleanup(state)
    return result


def _fmt(v):
    return "-" if v is None else f"{v:.1f}"


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _dead(proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"dagster dev exited with {proc.returncode}: {log.read_text()[-3000:]}")
    return False


def _stop(proc: subprocess.Popen) -> None:
    """Stop the `dagster dev` we started: its own process group (its webserver, daemon, code server, runs)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


register("freshness")(freshness)
