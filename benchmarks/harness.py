"""Measurement machinery: phases, peak RSS of a process tree, machine facts, repetitions, result files.

How numbers are taken (stated in every result file):

- Wall time: `time.perf_counter()` around each phase inside the worker process that does the work.
- Peak RSS: the parent samples the worker's whole process tree (the worker and every descendant: a JVM,
  a `dagster dev` webserver/daemon/code server, run subprocesses) every `SAMPLE_INTERVAL_S` with psutil and
  keeps the maximum of the *sum* of resident set sizes. Shared pages are counted once per process, so the
  figure errs high. The largest single process (`ru_maxrss` of the children, exact, kernel-tracked) is
  recorded beside it.
- Each repetition is a fresh worker process (`python -m benchmarks _worker ...`), so no repetition inherits
  caches, imported modules or heap from another; the OS page cache is not dropped (files read in one
  repetition are warm for the next), which is stated as `page_cache: warm after the first repetition`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # the [bench] extra; without it (e.g. CI's [dev] install) /proc is read directly (Linux only)
    import psutil
except ImportError:  # pragma: no cover - depends on the environment
    psutil = None

SAMPLE_INTERVAL_S = 0.05
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_WORKDIR = Path(__file__).resolve().parent / "work"


# --------------------------------------------------------------------------------------------- sampling
def _children(pid: int) -> list[int]:
    if psutil is not None:
        try:
            return [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    out: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(k) for k in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
            except (OSError, ValueError):
                continue
            out.extend(kids)
            stack.extend(kids)
    return out


def _rss(pid: int) -> int:
    if psutil is not None:
        try:
            return psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return 0
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss(pid: int) -> int:
    """Sum of RSS over `pid` and all its descendants (processes that vanish mid-walk are skipped)."""
    return sum(_rss(p) for p in [pid, *_children(pid)])


class TreeSampler:
    """Samples the RSS of a process tree in a background thread; keeps (time, bytes) for per-phase peaks."""

    def __init__(self, pids: list[int] | None = None, interval_s: float = SAMPLE_INTERVAL_S, cap_bytes: int | None = None):
        self.interval_s = interval_s
        self.cap_bytes = cap_bytes
        self.exceeded_at: float | None = None
        self.samples: list[tuple[float, int]] = []
        self._roots: list[int] = list(pids or [])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def add_root(self, pid: int) -> None:
        self._roots.append(pid)

    def _loop(self) -> None:
        while not self._stop.is_set():
            total = sum(tree_rss(pid) for pid in list(self._roots))
            self.samples.append((time.time(), total))
            if self.cap_bytes and total > self.cap_bytes and self.exceeded_at is None:
                self.exceeded_at = time.time()
                self._kill_tree()
            self._stop.wait(self.interval_s)

    def _kill_tree(self) -> None:
        """Stop the measured tree (only processes this harness started) before it exhausts a shared machine."""
        for root in list(self._roots):
            for pid in [*_children(root), root]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float | None = None, end: float | None = None) -> int:
        """Peak RSS of the tree between `start` and `end`; a window shorter than the sampling interval holds no
        sample, so it gets the nearest sample instead of a false zero."""
        values = [b for t, b in self.samples if (start is None or t >= start) and (end is None or t <= end)]
        if values or not self.samples:
            return max(values, default=0)
        moment = start if start is not None else end
        return min(self.samples, key=lambda sample: abs(sample[0] - moment))[1]


# ---------------------------------------------------------------------------------------------- phases
@dataclass
class Phases:
    """Named, timed phases of one repetition (recorded inside the worker)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str, rows: int | None = None) -> Iterator[dict[str, Any]]:
        record: dict[str, Any] = {"name": name, "start_epoch": time.time()}
        began = time.perf_counter()
        try:
            yield record
        finally:
            record["wall_s"] = time.perf_counter() - began
            record["end_epoch"] = time.time()
            if rows is not None and "rows" not in record:
                record["rows"] = rows
            self.items.append(record)

    def to_json(self) -> dict[str, Any]:
        return {"phases": self.items, **self.extra}


# ---------------------------------------------------------------------------------------------- worker
class RssCapExceeded(RuntimeError):
    """The worker's tree went over the RSS cap and was stopped; `peak_bytes` and `after_s` say when."""

    def __init__(self, task: str, cap_bytes: int, peak_bytes: int, after_s: float):
        super().__init__(f"{task}: process tree RSS exceeded the cap of {cap_bytes / 2**30:.1f} GiB after {after_s:.1f} s; stopped")
        self.cap_bytes, self.peak_bytes, self.after_s = cap_bytes, peak_bytes, after_s


def run_worker(task: str, params: dict[str, Any], env: dict[str, str] | None = None, timeout_s: float = 3600,
               rss_cap_bytes: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Run one repetition of `task` in a fresh `python -m benchmarks _worker` process and measure its tree.

    With `rss_cap_bytes`, a tree that grows past it is killed (the machine is shared) and `RssCapExceeded`
    is raised."""
    out = Path(params["result_path"])
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "benchmarks", "_worker", "--task", task, "--params", json.dumps(params)]
    full_env = {**os.environ, **(env or {})}
    began_epoch = time.time()
    began = time.perf_counter()
    with TreeSampler(cap_bytes=rss_cap_bytes) as sampler:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sampler.add_root(proc.pid)
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise RuntimeError(f"benchmark task {task} timed out after {timeout_s} s; output tail:\n{output[-4000:]}") from None
    wall = time.perf_counter() - began
    if sampler.exceeded_at is not None:
        raise RssCapExceeded(task, rss_cap_bytes or 0, sampler.peak(), sampler.exceeded_at - began_epoch)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"benchmark task {task} failed (exit {proc.returncode}); output tail:\n{output[-6000:]}")
    result = json.loads(out.read_text())
    for ph in result["phases"]:
        ph["peak_rss_tree_bytes"] = sampler.peak(ph["start_epoch"], ph["end_epoch"])
    _attach_step_peaks(result, sampler)
    result["process_wall_s"] = wall
    result["peak_rss_tree_bytes"] = sampler.peak()
    result["rss_samples"] = len(sampler.samples)
    result["started_at"] = dt.datetime.fromtimestamp(began_epoch, dt.UTC).isoformat(timespec="seconds")
    # ru_maxrss of RUSAGE_CHILDREN: the largest single descendant process so far (KiB on Linux), cumulative
    # over the parent's life, so it is recorded as "max so far", not per repetition.
    result["max_single_process_rss_bytes_so_far"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    result["load_avg_after"] = list(os.getloadavg())
    result["output_tail"] = output[-2000:]
    return result


def _attach_step_peaks(node: Any, sampler: TreeSampler) -> None:
    """Beside every `step_windows` ({step: [start, end]}) in a result, the tree's peak RSS during each step."""
    if isinstance(node, dict):
        windows = node.get("step_windows")
        if isinstance(windows, dict):
            node["step_peak_rss_bytes"] = {step: sampler.peak(a, b) for step, (a, b) in windows.items()}
        for value in list(node.values()):
            _attach_step_peaks(value, sampler)
    elif isinstance(node, list):
        for value in node:
            _attach_step_peaks(value, sampler)


# ------------------------------------------------------------------------------------------ statistics
def summarise(values: list[float]) -> dict[str, Any]:
    """Median, min, max and spread ((max - min) / median) of repetitions."""
    if not values:
        return {"n": 0}
    med = statistics.median(values)
    return {
        "n": len(values),
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread_pct": (100.0 * (max(values) - min(values)) / med) if med else None,
        "values": values,
    }


def phase_summary(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase name: wall-time and peak-RSS summaries over repetitions; rows and rows/s where known."""
    names: list[str] = []
    for rep in reps:
        for ph in rep["phases"]:
            if ph["name"] not in names:
                names.append(ph["name"])
    out: dict[str, Any] = {}
    for name in names:
        phs = [ph for rep in reps for ph in rep["phases"] if ph["name"] == name]
        entry: dict[str, Any] = {
            "wall_s": summarise([ph["wall_s"] for ph in phs]),
            "peak_rss_tree_bytes": summarise([ph.get("peak_rss_tree_bytes", 0) for ph in phs]),
        }
        rows = [ph.get("rows") for ph in phs if ph.get("rows") is not None]
        if rows:
            entry["rows"] = rows[0]
            entry["rows_per_s"] = summarise([ph["rows"] / ph["wall_s"] for ph in phs if ph.get("rows") and ph["wall_s"] > 0])
        out[name] = entry
    return out


# --------------------------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def _java_version() -> str | None:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=20)
        return (out.stderr or out.stdout).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _git_dirty() -> list[str]:
    """Uncommitted changes to the project's code at measurement time (the working tree is what ran)."""
    try:
        out = subprocess.run(
            ["git", "status", "--short", "--", "energy_assets", "dagster_home"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        return [line.strip() for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return []


def _memory() -> tuple[int, int]:
    if psutil is not None:
        vm = psutil.virtual_memory()
        return vm.total, vm.available
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info[key] = int(value.split()[0]) * 1024
    return info.get("MemTotal", 0), info.get("MemAvailable", 0)


def machine_facts() -> dict[str, Any]:
    total, available = _memory()
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True) if psutil else os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False) if psutil else None,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_bytes": total,
        "ram_available_bytes_at_start": available,
        "load_avg_at_start": list(os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("dagster", "dagster-webserver", "deltalake", "polars", "duckdb", "pyarrow", "pyspark", "psutil")
        },
        "java": _java_version(),
        "git_commit": _git_commit(),
        "git_uncommitted_in_energy_assets": _git_dirty(),
    }


def write_result(scenario: str, size: str, payload: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """`results/<scenario>-<size>-<UTC timestamp>.json` and `results/<scenario>-<size>-latest.json`."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(payload, indent=2, default=str)
    path = results_dir / f"{scenario}-{size}-{stamp}.json"
    path.write_text(text)
    (results_dir / f"{scenario}-{size}-latest.json").write_text(text)
    return path


def mib(n: float | int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f} MiB"
