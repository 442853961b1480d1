"""The same code on a distributed executor, on this machine, with real parts.

The Dagster instance on PostgreSQL (deploy/dagster-postgres.yaml), the lake on an S3 server (moto), a Redis
broker (Debian's redis-server), and two separate Celery worker processes (`celery -A energy_assets.celery_worker
worker`), each with its own environment pointing at the same instance and lake, as two machines would be.
Two backfills run at once from their own processes (a NESO one and a smart-meter one, replaying the sample
days), one run per two-day range, with ENERGY_ASSETS_EXECUTOR=celery: every step is sent to the broker and
executed by whichever worker takes it. The tables they leave on S3 must equal those of the same runs executed
in-process on a local lake (rows sorted, run-time columns such as fetched_at dropped).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterEventType, DagsterInstance

from energy_assets.settings import PROJECT_ROOT, SAMPLE_DAYS
from energy_assets_tests.behaviour.fingerprints import fingerprint_frame
from energy_assets_tests.distributed._backfill import PARTITION_RANGE_END, PARTITION_RANGE_START, QUIET
from energy_assets_tests.distributed.redis_server import redis_server
from energy_assets_tests.reliability.postgres_server import postgres  # noqa: F401
from energy_assets_tests.reliability.s3_server import list_keys, s3_endpoint, s3_environment  # noqa: F401
from energy_assets_tests._processes import stop

pytest.importorskip("dagster_celery", reason='dagster-celery is not installed: pip install -e ".[distributed]"')
pytest.importorskip("redis", reason='the redis client (a dagster-celery[redis] dependency) is not installed: pip install -e ".[distributed]"')
pytest.importorskip("dagster_postgres", reason="dagster-postgres (the production instance's storage) is not installed")

DEPLOY_YAML = PROJECT_ROOT / "deploy" / "dagster-postgres.yaml"
RANGES = [(SAMPLE_DAYS[0], SAMPLE_DAYS[1]), (SAMPLE_DAYS[2], SAMPLE_DAYS[3])]  # two runs of two days per backfill
BACKFILLS = {"neso": ["neso"], "smart_meter": ["smart_meter"]}  # (regional samples cover only the four days at once)
WORKERS = ("worker1", "worker2")


def _database(postgres, name: str) -> dict[str, str]:
    return {**postgres.env(), "DAGSTER_PG_DB": postgres.create_database(name)}


def _environment(base: dict[str, str]) -> dict[str, str]:
    # this process's environment (with conftest's closed API base URLs: replay never needs them) without any lake,
    # instance or AWS setting, then the cluster's
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENERGY_", "SMART_METER_", "AWS_", "DAGSTER_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.update(base)
    return env


def _wait_ready(procs: dict[str, subprocess.Popen], logs: dict[str, Path], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    waiting = set(procs)
    while waiting:
        for name in list(waiting):
            if f"{name}@" in logs[name].read_text() and " ready." in logs[name].read_text():
                waiting.discard(name)
            elif procs[name].poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"celery {name} did not start:\n{logs[name].read_text()[-3000:]}")
        time.sleep(0.2)


def _worker_logs(cluster) -> str:
    return "\n".join(f"--- {name} (last lines)\n{log.read_text()[-2000:]}" for name, log in cluster["logs"].items())


def _stop(proc: subprocess.Popen) -> None:
    stop(proc, grace_s=20)  # celery: SIGTERM is a warm shutdown, the current step finishes


@pytest.fixture
def cluster(postgres, s3_endpoint, tmp_path):
    """Redis, two Celery workers and the environment a run needs (instance on PostgreSQL, lake on S3)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    pg_env = _database(postgres, f"dagster_{tmp_path.name.lower().replace('-', '_')}"[:60])
    with redis_server() as broker:
        base = {
            **pg_env,
            **s3_environment(s3_endpoint, "distributed"),
            "DAGSTER_HOME": str(home),
            "ENERGY_ASSETS_SOURCE": "replay",
            "ENERGY_ASSETS_EXECUTOR": "celery",
            "ENERGY_ASSETS_CELERY_BROKER_URL": broker,
        }
        # the instance's tables are created once, before any process opens the new database, as a deployment
        # does (`dagster instance migrate`): processes that start together on an empty database each try to
        # create them, and all but one fail (psycopg2 DuplicateObject: type "alembic_version" already exists)
        migrate = subprocess.run([sys.executable, "-m", "dagster", "instance", "migrate"], env=_environment(base), cwd=tmp_path,
                                 capture_output=True, text=True, timeout=120)
        assert migrate.returncode == 0, f"dagster instance migrate:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-3000:]}"
        procs: dict[str, subprocess.Popen] = {}
        logs = {name: tmp_path / f"{name}.log" for name in WORKERS}
        try:
            for name in WORKERS:
                # each worker its own process and environment, as on its own machine; `solo`: steps run in the
                # worker process itself, one at a time (with `--pool=threads --concurrency=2` the runs hung here)
                with open(logs[name], "w") as log:
                    procs[name] = subprocess.Popen(
                        [sys.executable, "-m", "celery", "-A", "energy_assets.celery_worker", "worker", "--pool=solo",
                         "-n", f"{name}@%h", "--include", "energy_assets_tests.distributed._backfill,energy_assets.definitions",
                         "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                        env=_environment(base), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                    )
            _wait_ready(procs, logs)
            yield {"env": base, "home": home, "workers": procs, "logs": logs}
        finally:
            for proc in procs.values():
                _stop(proc)


def _read(root: str, name: str, options: dict[str, str] | None = None) -> pl.DataFrame:
    from deltalake import DeltaTable

    return pl.from_arrow(DeltaTable(f"{root}/{name}", storage_options=options).to_pyarrow_table())


def _fingerprints(root: str, tables: list[str], options: dict[str, str] | None = None) -> dict[str, dict]:
    """Row count and hash of each table's sorted rows, without the run-time columns (fingerprints.VOLATILE)."""
    return {name: {**fingerprint_frame(_read(root, name, options)), "root": root, "options": options} for name in tables}


def _differing_columns(a: dict, b: dict) -> list[str]:
    """For a failure message: the columns whose sorted values differ between two fingerprinted tables."""
    left, right = (_read(fp["root"], name, fp["options"]) for name, fp in ((a["name"], a), (b["name"], b)))
    return [c for c in left.columns if c in right.columns and sorted(map(str, left[c].to_list())) != sorted(map(str, right[c].to_list()))]


def _lake_from_s3(env: dict[str, str], endpoint: str) -> dict[str, dict]:
    prefix = env["ENERGY_LAKE_URI"].split("/", 3)[3]
    tables = sorted({k[len(prefix) + 1 :].split("/_delta_log/")[0] for k in list_keys(endpoint, prefix) if "/_delta_log/" in k})
    options = {k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    return _fingerprints(env["ENERGY_LAKE_URI"], tables, options)


def _local_run(tmp_path: Path, monkeypatch) -> dict[str, dict]:
    """The same runs executed in this process on a local lake and an in-memory instance (in-process executor)."""
    from energy_assets.definitions import defs
    from energy_assets_tests.distributed._backfill import group_keys

    lake = tmp_path / "local_lake"
    monkeypatch.setenv("ENERGY_LAKE_URI", str(lake))
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "replay")
    monkeypatch.delenv("ENERGY_LAKE_STORAGE_OPTIONS", raising=False)
    job = defs.resolve_job_def("uk_days_job")
    with DagsterInstance.ephemeral() as instance:
        for groups in BACKFILLS.values():
            for start, end in RANGES:
                tags = {PARTITION_RANGE_START: start, PARTITION_RANGE_END: end}
                assert job.execute_in_process(instance=instance, tags=tags, asset_selection=group_keys(groups), run_config=QUIET).success
    tables = sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in lake.glob("*/*/_delta_log"))
    return _fingerprints(str(lake), tables)


@pytest.mark.slow
def test_backfills_fan_out_over_two_celery_workers_and_equal_a_local_run(cluster, s3_endpoint, tmp_path, monkeypatch):
    env = _environment(cluster["env"])
    launchers, outputs = {}, {}
    for name, groups in BACKFILLS.items():  # the two backfills at once, each from its own process
        outputs[name] = (tmp_path / f"backfill_{name}.out", tmp_path / f"backfill_{name}.err")
        with open(outputs[name][0], "w") as out, open(outputs[name][1], "w") as err:  # files, never an unread pipe
            launchers[name] = subprocess.Popen(
                [sys.executable, "-m", "energy_assets_tests.distributed._backfill", ",".join(groups), *(f"{s}:{e}" for s, e in RANGES)],
                env=env, stdout=out, stderr=err, cwd=tmp_path,
            )
    runs = []
    try:
        local = _local_run(tmp_path, monkeypatch)  # meanwhile, the same runs in this process on a local lake
        for name, proc in launchers.items():
            proc.wait(timeout=300)
            out, err = (path.read_text() for path in outputs[name])
            lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            assert proc.returncode == 0 and len(lines) == len(RANGES), f"{name} backfill:\n{out}\n{err[-4000:]}\n{_worker_logs(cluster)}"
            runs += lines
    finally:
        for proc in launchers.values():
            _stop(proc)
    assert all(r["success"] for r in runs)

    # every step ran in one of the two worker processes, and both took steps
    worker_pids = {proc.pid: name for name, proc in cluster["workers"].items()}
    for key, value in cluster["env"].items():
        if key.startswith("DAGSTER_PG"):
            monkeypatch.setenv(key, value)
    step_pids, hostnames = [], set()
    with DagsterInstance.from_config(str(cluster["home"])) as instance:
        for run in runs:
            assert instance.get_run_by_id(run["run_id"]).is_success
            for entry in instance.all_logs(run["run_id"]):
                event = entry.dagster_event
                if event is None:
                    continue
                if event.event_type == DagsterEventType.STEP_SUCCESS:
                    step_pids.append(event.pid)
                if event.event_type == DagsterEventType.ENGINE_EVENT and event.engine_event_data:
                    worker = event.engine_event_data.metadata.get("Celery worker")
                    if worker is not None:
                        hostnames.add(str(worker.value).split("@")[0])
    assert step_pids and set(step_pids) <= set(worker_pids), (set(step_pids), worker_pids)
    assert {worker_pids[p] for p in step_pids} == set(WORKERS)
    assert hostnames == set(WORKERS)
    for name, log in cluster["logs"].items():
        assert "Task execute_plan" in log.read_text() and "succeeded" in log.read_text(), name

    distributed = _lake_from_s3(cluster["env"], s3_endpoint)
    assert set(distributed) == set(local)
    assert sum(fp["rows"] > 0 for fp in local.values()) >= 10  # the backfills wrote real tables, not empty ones
    differing = {
        name: _differing_columns({**distributed[name], "name": name}, {**local[name], "name": name})
        for name in local
        if (distributed[name]["rows"], distributed[name]["sha256"]) != (local[name]["rows"], local[name]["sha256"])
    }
    assert not differing, f"tables that differ from the local run (columns with different values): {differing}"
