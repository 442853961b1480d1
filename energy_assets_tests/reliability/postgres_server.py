"""A throwaway PostgreSQL server on a free loopback port, for testing the production Dagster instance.

Uses the PostgreSQL binaries of the machine (`initdb`/`pg_ctl` on PATH or Debian's
/usr/lib/postgresql/<version>/bin). PostgreSQL refuses to run as root, so as root the server runs as the
`postgres` user (or `nobody`) in a directory it owns. Where no server can be started the tests are skipped
with the reason, unless ENERGY_ASSETS_REQUIRE_SYSTEM_PACKAGES=1 (CI) turns that into a failure.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

USER = "dagster"
PASSWORD = "test-only-password"
DATABASE = "dagster"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster-postgres.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }

    def create_database(self, name: str) -> str:
        """A new, empty database on the server (a test's own instance or slot tables); returns its name."""
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name


def _unavailable(reason: str):
    if os.environ.get("ENERGY_ASSETS_REQUIRE_SYSTEM_PACKAGES") == "1":
        pytest.fail(f"PostgreSQL is required (ENERGY_ASSETS_REQUIRE_SYSTEM_PACKAGES=1) but {reason}")
    pytest.skip(f"no local PostgreSQL server could be started: {reason} (CI installs it: apt-get install postgresql)")


def find_bin_dir() -> str | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(initdb))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as(user: str | None) -> list[str]:
    if user is None:
        return []
    runuser = shutil.which("runuser") or shutil.which("setpriv")
    if runuser and runuser.endswith("runuser"):
        return [runuser, "-u", user, "--"]
    if runuser:
        entry = pwd.getpwnam(user)
        return [runuser, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--"]
    _unavailable("running as root and neither runuser nor setpriv is available to drop privileges")
    return []


@contextmanager
def postgres_server():
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable("initdb/pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
    user = None
    if os.geteuid() == 0:
        for candidate in ("postgres", "nobody"):
            try:
                pwd.getpwnam(candidate)
                user = candidate
                break
            except KeyError:
                continue
        if user is None:
            _unavailable("running as root and there is no unprivileged user (postgres or nobody) to run the server")
    prefix = _run_as(user)
    base = tempfile.mkdtemp(prefix="energy-assets-pg-")
    data, sockets, pwfile, log = (os.path.join(base, p) for p in ("data", "sockets", "pwfile", "server.log"))
    os.mkdir(sockets)
    with open(pwfile, "w") as f:
        f.write(PASSWORD + "\n")
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chmod(base, 0o700)
        for path in (base, sockets, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    started = False
    try:
        init = subprocess.run(
            [*prefix, f"{bin_dir}/initdb", "-D", data, "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust",
             "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"],
            capture_output=True, text=True, timeout=120,
        )
        if init.returncode != 0:
            _unavailable(f"initdb failed: {init.stderr.strip()[-1000:]}")
        start = subprocess.run(
            [*prefix, f"{bin_dir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60",
             "-o", f"-h 127.0.0.1 -p {port} -k {sockets} -F -c max_connections=60", "start"],
            capture_output=True, text=True, timeout=90,
        )
        if start.returncode != 0:
            detail = open(log).read()[-1000:] if os.path.exists(log) else start.stderr
            _unavailable(f"pg_ctl start failed: {detail.strip()}")
        started = True
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE}")
        conn.close()
        yield PostgresServer("127.0.0.1", port, USER, PASSWORD, DATABASE)
    finally:
        if started:
            subprocess.run([*prefix, f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    with postgres_server() as server:
        yield server
