"""A local S3-compatible server (moto in server mode) on a free loopback port, for object-storage tests.

`moto[server]` is a dev dependency. The lake is configured exactly as in production: `ENERGY_LAKE_URI`
plus the standard AWS variables, which delta-rs and polars read from the environment by themselves.
"""

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager

import pytest
from energy_assets_tests._processes import stop

BUCKET = "energy-lake"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-access-key", "AWS_SECRET_ACCESS_KEY": "test-secret-key", "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server():
    pytest.importorskip("moto.server", reason="moto[server] (a dev dependency) is needed for the object-storage tests")
    port = free_port()
    # moto logs every request: to a file, never to an unread pipe (a full pipe would stall the server)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"moto server did not start: {log.read().decode()[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        stop(proc)
        log.close()


def s3_environment(endpoint: str, prefix: str) -> dict[str, str]:
    """The environment a deployment sets: lake URI and AWS variables (no storage options in code)."""
    return {
        "ENERGY_LAKE_URI": f"s3://{BUCKET}/{prefix}",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_EC2_METADATA_DISABLED": "true",
        **CREDENTIALS,
    }


def create_bucket(endpoint: str, bucket: str = BUCKET) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_REGION"],
    )
    client.create_bucket(Bucket=bucket)


def list_keys(endpoint: str, prefix: str, bucket: str = BUCKET) -> list[str]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_REGION"],
    )
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


@pytest.fixture(scope="session")
def s3_endpoint():
    with moto_server() as url:
        create_bucket(url)
        yield url


@pytest.fixture
def s3_lake(s3_endpoint, monkeypatch, request):
    """Point the process environment at a fresh prefix of the bucket; returns the lake URI."""
    prefix = f"lake-{request.node.name}".replace("[", "-").replace("]", "").replace("/", "-")[:80]
    env = s3_environment(s3_endpoint, prefix)
    for key in ("ENERGY_LAKE_STORAGE_OPTIONS", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_S3_ALLOW_UNSAFE_RENAME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env["ENERGY_LAKE_URI"]
