"""A throwaway Redis server (the Celery broker) on a free loopback port, from the machine's `redis-server`.

Debian's `redis-server` package; CI installs it (.ci/run). Where it is missing the tests are skipped with the
install hint, unless ENERGY_ASSETS_REQUIRE_SYSTEM_PACKAGES=1 (CI) turns that into a failure.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager

import pytest

from energy_assets_tests.reliability.s3_server import free_port
from energy_assets_tests._processes import stop


def _unavailable(reason: str):
    if os.environ.get("ENERGY_ASSETS_REQUIRE_SYSTEM_PACKAGES") == "1":
        pytest.fail(f"Redis is required (ENERGY_ASSETS_REQUIRE_SYSTEM_PACKAGES=1) but {reason}")
    pytest.skip(f"no local Redis server could be started: {reason} (CI installs it: apt-get install redis-server)")


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server():
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if binary is None:
        _unavailable("redis-server is not on PATH")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="energy-assets-redis-")
    log = os.path.join(workdir, "redis.log")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir, "--logfile", log],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                detail = open(log).read()[-1000:] if os.path.exists(log) else ""
                _unavailable(f"redis-server did not answer on port {port}: {detail}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
