"""The main job and the checks command as users run them: subprocesses on a fresh lake and instance."""

import os
import shutil
import subprocess
import sys

import polars as pl
import pytest
from deltalake import write_deltalake

from energy_assets import settings
from energy_assets.cli import build_parser


@pytest.fixture
def fresh_env(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(settings.DEFAULT_DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k != "ENERGY_ASSETS_SOURCE"}
    env.update(
        DAGSTER_HOME=str(home),
        ENERGY_LAKE_URI=str(tmp_path / "lake"),
        ENERGY_DUCKDB_PATH=str(tmp_path / "energy.duckdb"),
    )
    return env, tmp_path


def energy_assets(env, *args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "energy_assets.cli", *args],
        env=env, cwd=settings.PROJECT_ROOT, capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_demo_builds_every_table_then_check_passes_and_catches_bad_data(demo_run, tmp_path):
    from energy_assets.definitions import defs
    from energy_assets_tests.conftest import copy_demo

    out = demo_run["stdout"]
    assert "source mode: replay" in out and str(demo_run["lake"]) in out
    # every lake table of the code location is listed with its rows; none is left unmaterialised
    for key in defs.resolve_asset_graph().materializable_asset_keys:
        assert key.to_user_string() in out
    assert "not materialised" not in out
    assert "FAIL" not in out and " 0 check(s) failed" in out
    # warnings are summarised, not printed as raw log lines between the progress lines
    assert "  WARN  uk_days_job  smart_meter_silver: " in out and "readings have no covering agreement" in out
    assert " - dagster - WARNING - " not in out
    run_lines = [line for line in out.split("Runs:\n", 1)[1].split("\n\n", 1)[0].splitlines()]
    assert len({line.index(" ok ") for line in run_lines}) == 1, run_lines  # the status column lines up
    demo = copy_demo(demo_run, tmp_path / "demo")  # the checks below change the lake: work on a copy
    env = demo["env"]
    silver = pl.read_delta(str(demo["lake"] / "silver" / "neso_carbon_intensity"))
    assert silver.height == 48 + 48 + 46 + 48  # the sample days, the spring clock change included

    # the UI lists a job's runs by the repository label tag: the demo's runs carry the code location's
    from dagster import DagsterInstance

    from energy_assets.cli import REPOSITORY_LABEL, REPOSITORY_LABEL_TAG

    with DagsterInstance.from_config(str(demo["home"])) as instance:
        runs = instance.get_runs()
        assert {r.job_name for r in runs} >= {"uk_days_job", "electricity_maps_job"}
        assert all(r.tags.get(REPOSITORY_LABEL_TAG) == REPOSITORY_LABEL for r in runs)

    check = energy_assets(env, "check")
    assert check.returncode == 0, check.stdout[-4000:]
    assert "PASS  silver/neso_carbon_intensity:unique_periods" in check.stdout

    # a duplicated half-hour written behind the pipeline's back is caught and named
    write_deltalake(str(demo["lake"] / "silver" / "neso_carbon_intensity"), silver.head(1).to_arrow(), mode="append")
    bad = energy_assets(env, "check")
    assert bad.returncode == 1, bad.stdout[-4000:]
    assert "FAIL  silver/neso_carbon_intensity:unique_periods" in bad.stdout
    assert "PASS  silver/smart_meter_readings:unique_meterpoint_interval" in bad.stdout


def test_check_on_an_empty_instance_says_what_to_do(fresh_env):
    env, _ = fresh_env
    result = energy_assets(env, "check", timeout=300)
    assert result.returncode == 1
    assert "energy-assets demo" in result.stdout


def test_unknown_arguments_are_refused_except_where_passed_through():
    parser = build_parser()
    with pytest.raises(SystemExit):
        from energy_assets.cli import main

        main(["demo", "--bogus"])
    args, extra = parser.parse_known_args(["dev", "-p", "3001"])
    assert args.passthrough and extra == ["-p", "3001"]


@pytest.mark.slow
def test_commands_started_together_on_a_new_instance_do_not_race_on_its_schema(fresh_env):
    """Four commands at once on a new DAGSTER_HOME: without the instance lock, SQLite migrations collide
    ("alembic_version has more than one head"); with it, every command gets to its own answer."""
    env, _ = fresh_env
    procs = [
        subprocess.Popen([sys.executable, "-m", "energy_assets.cli", "check"], env=env, cwd=settings.PROJECT_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(4)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for out in outputs:
        assert "Traceback" not in out, out[-3000:]
        assert "No materialised partitions to check" in out, out[-3000:]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_dev(env, port):
    import time
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "energy_assets.cli", "dev", "--offline", "-p", str(port), "--host", "127.0.0.1"],
        env=env, cwd=settings.PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, as a terminal would give it
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as answer:
                if answer.status == 200:
                    return proc
        except OSError:
            time.sleep(1)
    proc.kill()
    raise AssertionError("dagster dev did not answer within 240 s")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_dev_stops_cleanly_and_leaves_no_dagster_process_behind(fresh_env, how):
    import signal

    import psutil

    env, _ = fresh_env
    proc = _start_dev(env, _free_port())
    tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    assert len(tree) >= 3, "dagster dev runs a webserver and a daemon below the command"
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)  # what a process manager sends: only to our command
    else:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
    out = proc.communicate(timeout=200)[0]
    assert "offline: API requests are answered from the bundled samples" in out
    assert "Traceback" not in out, out[-3000:]  # (dagster dev itself logs "KeyboardInterrupt received")
    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    _, alive = psutil.wait_procs([psutil.Process(pid) for pid in tree if running(pid)], timeout=30)
    left = [f"{p.pid} {' '.join(p.cmdline()[:6])}" for p in alive if running(p.pid)]
    assert not left, f"processes left running 30 s after {how}: {left}"


def test_the_repository_label_names_the_workspace_code_location():
    import yaml

    from energy_assets.cli import CODE_LOCATION, REPOSITORY_LABEL

    workspace = yaml.safe_load((settings.PROJECT_ROOT / "workspace.yaml").read_text())
    assert [entry["python_module"]["location_name"] for entry in workspace["load_from"]] == [CODE_LOCATION]
    assert REPOSITORY_LABEL == f"__repository__@{CODE_LOCATION}"


# A stand-in for `dagster dev`: it starts a grandchild in its own process group and, when it is told to stop,
# stops the grandchild in its own way (SIGUSR1 here; dagster dev sends its webserver a message on a pipe). Both
# write the signals they receive to the log.
_PARENT = """
import signal, subprocess, sys, time
log = sys.argv[1]
child = subprocess.Popen([sys.executable, "-c", sys.argv[2], log])
def stop(signum, _frame):
    with open(log, "a") as f:
        f.write(f"command got {signum}\\n")
    time.sleep(0.3)
    child.send_signal(signal.SIGUSR1)
    child.wait()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while True:
    time.sleep(0.05)
"""
_GRANDCHILD = """
import signal, sys, time
log = sys.argv[1]
def got(signum, _frame):
    with open(log, "a") as f:
        f.write(f"grandchild got {signum}\\n")
    sys.exit(0)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
    signal.signal(s, got)
with open(log, "a") as f:
    f.write("ready\\n")
while True:
    time.sleep(0.05)
"""


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_reaches_the_command_alone_which_stops_its_own_processes(tmp_path, how):
    """`run_in_own_group` (what `energy-assets dev` runs dagster dev with) passes SIGTERM or Ctrl-C to the command
    only: the processes the command started are stopped by the command, in its order, not signalled beside it
    (dagster dev's code server, signalled together with its webserver, died first and the webserver logged a
    traceback)."""
    import signal
    import time

    log = tmp_path / "signals.log"
    wrapper = (
        "import sys\nfrom energy_assets.cli import run_in_own_group\n"
        "sys.exit(run_in_own_group([sys.executable, '-c', sys.argv[1], sys.argv[2], sys.argv[3]], stop_timeout_s=20))"
    )
    proc = subprocess.Popen([sys.executable, "-c", wrapper, _PARENT, str(log), _GRANDCHILD], cwd=settings.PROJECT_ROOT)
    deadline = time.monotonic() + 60
    while not (log.exists() and "ready" in log.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "the command's grandchild never started"
        time.sleep(0.05)
    signum = getattr(signal, how)
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == 128 + signum
    assert log.read_text().splitlines() == ["ready", f"command got {signum}", f"grandchild got {int(signal.SIGUSR1)}"]
