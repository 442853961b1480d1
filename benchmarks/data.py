"""Benchmark data, made by the project's own generator and cached by its parameters."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class SmartMeterData:
    meterpoints: int
    days: int
    start: str = "2021-01-01"
    seed: int = 7
    bad_rate: float = 0.0
    with_db: bool = True

    @property
    def expected_readings(self) -> int:
        """Half-hours that exist in UK local time over the days, times meterpoints (before duplicates)."""
        from zoneinfo import ZoneInfo

        uk = ZoneInfo("Europe/London")
        first = dt.date.fromisoformat(self.start)
        last = first + dt.timedelta(days=self.days)
        a = dt.datetime.combine(first, dt.time(0), tzinfo=uk).astimezone(dt.UTC)
        b = dt.datetime.combine(last, dt.time(0), tzinfo=uk).astimezone(dt.UTC)
        return self.meterpoints * int((b - a).total_seconds() // 1800)

    def key(self) -> str:
        return f"sm-{self.meterpoints}mp-{self.days}d-{self.start}-s{self.seed}-b{self.bad_rate}-{'db' if self.with_db else 'nodb'}"


def ensure_smart_meter(workdir: Path, spec: SmartMeterData) -> tuple[Path, dict]:
    """Generate (once) `<workdir>/data/<key>/readings/*.json` and `case_study.db`; returns the folder and facts."""
    from energy_assets.devtools import smart_meter_generator as generator

    folder = workdir / "data" / spec.key()
    marker = folder / "generated.json"
    if marker.exists():
        return folder, json.loads(marker.read_text())
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    argv = [
        "--meterpoints", str(spec.meterpoints), "--days", str(spec.days), "--start", spec.start,
        "--seed", str(spec.seed), "--out", str(folder), "--bad-rate", str(spec.bad_rate),
    ]  # fmt: skip
    if not spec.with_db:
        argv.append("--no-db")
    began = time.perf_counter()
    code = generator.main(argv)
    if code:
        raise RuntimeError(f"generator failed with exit code {code}: {argv}")
    readings = folder / "readings"
    files = sorted(readings.glob("*.json"))
    facts = {
        **asdict(spec),
        "generator_argv": argv,
        "generate_s": time.perf_counter() - began,
        "files": len(files),
        "json_bytes": sum(f.stat().st_size for f in files),
        "expected_readings_before_duplicates": spec.expected_readings,
    }
    marker.write_text(json.dumps(facts, indent=2))
    return folder, facts
