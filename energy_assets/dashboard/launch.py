"""`energy-assets dashboard`: start the Streamlit app on 127.0.0.1 (needs the `[dashboard]` extra)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from energy_assets import settings

APP = Path(__file__).resolve().parent / "app.py"


def command(port: int, address: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", address, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="energy-assets dashboard", description="Serve the live dashboard.")
    parser.add_argument("--port", type=int, default=None, help="port (default ENERGY_DASHBOARD_PORT or 8501)")
    parser.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--refresh", type=int, default=None, help="seconds between refreshes (default ENERGY_DASHBOARD_REFRESH_SECONDS or 30)")
    args = parser.parse_args(argv)
    try:
        import streamlit  # noqa: F401
    except ImportError:
        print("the dashboard needs Streamlit: pip install -e '.[dashboard]'", file=sys.stderr)
        return 2
    port = args.port if args.port is not None else settings.dashboard_port()
    overrides = {"ENERGY_DASHBOARD_REFRESH_SECONDS": str(args.refresh)} if args.refresh is not None else {}
    print(f"dashboard on http://{args.address}:{port} (lake: {settings.lake_uri()})")
    return subprocess.call(command(port, args.address), env=settings.process_environment(**overrides))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
