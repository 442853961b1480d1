"""Run the project's fake NESO API (`energy_assets.devtools.neso_fake_api`) as a separate process for a scenario.

It runs outside the measured process tree (it stands for the remote API) and logs every request, so the
harness counts the requests the pipeline really made.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeNeso:
    def __init__(self, log_path: Path, revise_every_s: float = 1e9):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.revise_every_s = revise_every_s
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> FakeNeso:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        cmd = [
            sys.executable, "-m", "energy_assets.devtools.neso_fake_api", "--port", str(self.port),
            "--revise-every", str(self.revise_every_s), "--verbose",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.control("")
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"fake NESO API exited: {self.log_path.read_text()[-2000:]}") from None
                time.sleep(0.2)
        raise RuntimeError("fake NESO API did not start within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()

    def control(self, query: str) -> str:
        with urllib.request.urlopen(f"{self.base_url}/_control?{query}", timeout=10) as resp:
            return resp.read().decode()

    def data_requests(self) -> list[str]:
        """Request lines of data endpoints (not `/_control`) served so far."""
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [ln for ln in lines if '"GET /' in ln and "/_control" not in ln]
