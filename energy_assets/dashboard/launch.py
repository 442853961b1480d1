"""`energy-assets dashboard`: start the Streamlit app on 127.0.0.1 (needs the `[dashboard]` extra)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def command(port: int, address: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", address, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="energy-assets dashboard", description="Serve the live dashboard.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("ENERGY_DASHBOARD_PORT", "8501")))
    parser.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--refresh", type=int, default=None, help="seconds between refreshes (ENERGY_DASHBOARD_REFRESH_S, default 30)")
    args = parser.parse_args(argv)
    try:
        import streamlit  # noqa: F401
    except ImportError:
        print("the dashboard needs Streamlit: pip install -e '.[dashboard]'", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if args.refresh is not None:
        env["ENERGY_DASHBOARD_REFRESH_S"] = str(args.refresh)
    print(f"dashboard on http://{args.address}:{args.port} (lake: {env.get('ENERGY_LAKE_URI', 'data/lake')})")
    return subprocess.call(command(args.port, args.address), env=env)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
