"""Stopping the servers and workers the tests start: SIGTERM, a grace period, then SIGKILL."""

import subprocess


def stop(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """Ask the process to end (SIGTERM), wait up to `grace_s`, then kill it; returns once it is gone."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
