"""Generate smart-meter data in exactly the utility's format: reading files plus the SQLite database.

`main(argv)` is the `energy-assets generate-smart-meter` command:

    energy-assets generate-smart-meter --meterpoints 100 --days 4 --start 2021-03-26 --seed 7 --out data

writes `<out>/readings/<meterpoint_id>.json` (pandas `orient="split"` without index: naive UK-local
`interval_start`, `consumption_delta` in kWh, `meterpoint_id`) and `<out>/case_study.db` (tables
`agreement`, `product`, `meterpoint`). Deterministic for a seed: the same arguments give the same bytes.

What the data contains, on purpose:
- rows shuffled inside a file; about 0.5 % duplicated rows; about 15 % zero readings;
- every half-hour that exists in UK local time: the spring-forward hour is absent and the autumn
  hour (01:00 and 01:30) appears twice with the same local string, the BST reading first in the file
  (the source contract the silver layer relies on: the first occurrence of an ambiguous local time is BST);
- agreements: most meterpoints have one covering agreement, about a fifth switch product on a day in
  the middle of the range, some have overlapping agreements, zero-length agreements (from = to),
  agreements starting or ending exactly on 2021-01-01 (the as-of date's strict bounds), and about 5 %
  have no agreement covering the reading dates; about 1 % of reading files belong to meterpoints missing
  from the `meterpoint` table;
- products whose display names are not unique; 13 regions;
- with `--bad-rate R > 0`, that share of rows is spoiled (negative or non-numeric consumption,
  impossible timestamps) so the quarantine has something to show.

Meterpoint ids depend only on the seed and the index, so a later run with `--start` moved on and the same
seed writes new versions of the same files (a new day arriving for the same meterpoints). Use
`--no-db` for such follow-up deliveries to keep the database as it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sqlite3
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import random

import polars as pl

UK = ZoneInfo("Europe/London")

REGIONS = (
    "Eastern England", "East Midlands", "London", "Merseyside and Northern Wales", "West Midlands",
    "North Eastern England", "North Western England", "Southern England", "South Eastern England",
    "Southern Wales", "South Western England", "Yorkshire", "Southern Scotland",
)  # fmt: skip

# (product_id, display_name, is_variable): display names deliberately repeat.
PRODUCTS = (
    ("VAR-17-01-11", "Flexible Octopus", 1),
    ("VAR-19-04-12", "Flexible Octopus", 1),
    ("AGILE-18-02-21", "Agile Octopus", 1),
    ("FIX-12M-19-06-10", "Octopus 12M Fixed", 0),
    ("FIX-12M-20-03-01", "Octopus 12M Fixed", 0),
    ("FIX-12M-20-09-21", "Octopus 12M Fixed", 0),
    ("GO-18-06-12", "Octopus Go", 1),
    ("FIX-24M-20-06-01", "Octopus 24M Fixed", 0),
)

AS_OF_EDGE = dt.date(2021, 1, 1)


def meterpoint_ids(n: int, seed: int) -> list[str]:
    """10-hex ids that depend only on (seed, index): stable across deliveries."""
    return [hashlib.sha1(f"{seed}:{i}".encode()).hexdigest()[:10] for i in range(n)]


def local_half_hours(start: dt.date, days: int) -> tuple[list[str], list[bool]]:
    """Every half-hour of `days` UK local days from `start`: (naive local strings, is_second_occurrence)."""
    begin = dt.datetime(start.year, start.month, start.day, tzinfo=UK).astimezone(dt.UTC)
    end_day = start + dt.timedelta(days=days)
    end = dt.datetime(end_day.year, end_day.month, end_day.day, tzinfo=UK).astimezone(dt.UTC)
    utc = pl.datetime_range(begin, end, "30m", closed="left", time_zone="UTC", eager=True)
    local = utc.dt.convert_time_zone("Europe/London").dt.replace_time_zone(None)
    frame = pl.DataFrame({"local": local.dt.strftime("%Y-%m-%d %H:%M:%S")})
    second = frame.select(pl.int_range(pl.len()).over("local") > 0).to_series()
    return frame["local"].to_list(), second.to_list()


def uniform(n: int, seed: int, salt: int) -> pl.Series:
    """`n` deterministic uniforms in [0, 1) for (seed, salt): a hash of the row index, no per-row Python."""
    bits = pl.int_range(n, eager=True, dtype=pl.UInt64).hash(seed=seed * 1_000_003 + salt)
    return (bits // (1 << 11)).cast(pl.Float64) / float(1 << 53)


def generate(
    out: Path,
    meterpoints: int,
    days: int,
    start: dt.date,
    seed: int,
    bad_rate: float = 0.0,
    write_db: bool = True,
) -> dict[str, int]:
    run_seed = seed * 100_000 + start.toordinal()
    ids = meterpoint_ids(meterpoints, seed)
    slots, second = local_half_hours(start, days)
    n_slots = len(slots)
    readings_dir = out / "readings"
    readings_dir.mkdir(parents=True, exist_ok=True)
    ambiguous = pl.Series(slots).filter(pl.Series(second))

    # ---- readings, all meterpoints at once
    n = meterpoints * n_slots
    idx = pl.int_range(n, eager=True)
    u = [uniform(n, run_seed, salt) for salt in range(5)]
    frame = pl.DataFrame(
        {
            "mp": (idx // n_slots).cast(pl.Int32),
            "slot": (idx % n_slots).cast(pl.Int32),
            "key": u[0],
        }
    ).with_columns(
        ts=pl.lit(pl.Series(slots)).gather(pl.col("slot")),
        second=pl.lit(pl.Series(second)).gather(pl.col("slot")),
        scale=pl.lit(uniform(meterpoints, seed, 9) * 1.5 + 0.5).gather(pl.col("mp")),
        # a skewed, positive half-hourly load: -ln(u1 * u2) is Gamma(2, 1)
        base=-(u[1] * u[2] + 1e-12).log() * 0.15,
    )
    frame = frame.with_columns(
        kwh=pl.when(u[3] < 0.15).then(0.0).otherwise((pl.col("base") * pl.col("scale")).round(3)),
        dup=(u[4] < 0.005) & ~pl.col("ts").is_in(ambiguous.implode()),
    ).select("mp", "slot", "ts", "second", "kwh", "key", "dup")
    dups = frame.filter("dup")
    frame = pl.concat([frame, dups.with_columns(key=uniform(dups.height, run_seed, 7))])
    frame = frame.with_columns(mp_id=pl.lit(pl.Series(ids)).gather(pl.col("mp")))
    # file order is shuffled, but an ambiguous autumn time keeps its BST reading first, GMT right after
    frame = frame.with_columns(
        key=pl.when(pl.col("ts").is_in(ambiguous.implode()))
        .then(pl.col("key").min().over(["mp", "ts"]) + pl.col("second").cast(pl.Float64) * 1e-12)
        .otherwise(pl.col("key"))
    )
    value = pl.col("kwh").cast(pl.String)
    ts = pl.col("ts")
    if bad_rate > 0:
        frame = frame.with_columns(
            spoil=(uniform(frame.height, run_seed, 11) < bad_rate) & ~pl.col("ts").is_in(ambiguous.implode()),
            kind=(uniform(frame.height, run_seed, 12) * 4).cast(pl.Int32),
        )
        value = (
            pl.when(pl.col("spoil") & (pl.col("kind") == 0))
            .then(pl.lit("-") + (pl.col("kwh") + 0.1).round(3).cast(pl.String))
            .when(pl.col("spoil") & (pl.col("kind") == 1))
            .then(pl.lit('"n/a"'))
            .when(pl.col("spoil") & (pl.col("kind") == 2))
            .then(pl.lit("null"))
            .otherwise(value)
        )
        ts = (
            pl.when(pl.col("spoil") & (pl.col("kind") == 3))
            .then(pl.col("ts").str.slice(0, 11) + pl.lit("25") + pl.col("ts").str.slice(13))
            .otherwise(pl.col("ts"))
        )
    rows = (
        frame.sort(["mp", "key"])
        .select(
            "mp",
            row=pl.concat_str([pl.lit('["'), ts, pl.lit('",'), value, pl.lit(',"'), pl.col("mp_id"), pl.lit('"]')]),
        )
        .group_by("mp", maintain_order=True)
        .agg(pl.col("row").str.join(","))
    )
    head = '{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":['
    for mp, body in rows.iter_rows():  # one write per file, not per row
        (readings_dir / f"{ids[mp]}.json").write_text(head + body + "]}")

    if write_db:
        write_database(out / "case_study.db", ids, start, days, seed)
    return {"files": meterpoints, "rows": frame.height}


def write_database(path: Path, ids: list[str], start: dt.date, days: int, seed: int) -> None:
    """`agreement`, `product`, `meterpoint` as pandas' `to_sql` writes them (TEXT dates, INTEGER flags)."""
    rng = random.Random(seed * 7919 + 99)
    n = len(ids)
    end = start + dt.timedelta(days=days)
    mid = start + dt.timedelta(days=max(days // 2, 1))
    n_products = len(PRODUCTS)

    # about 1 % of reading files (and the last one) belong to meterpoints the database does not know
    unknown = [i >= 10 and (rng.random() < 0.01 or i == n - 1) for i in range(n)]
    meterpoint_rows = [(REGIONS[rng.randrange(len(REGIONS))], mp) for mp, u in zip(ids, unknown, strict=True) if not u]

    def day(offset_days: int, base: dt.date = start) -> str:
        return (base + dt.timedelta(days=int(offset_days))).isoformat()

    agreements: list[tuple] = []
    for i, mp in enumerate(ids):  # per meterpoint (thousands), not per reading
        p1, p2 = rng.sample(range(n_products), 2)
        account = f"A-{hashlib.sha1(f'{seed}:acc:{i}'.encode()).hexdigest()[:8].upper()}"
        since = day(-rng.randrange(30, 900))
        k = rng.random()
        if k < 0.55:  # one open-ended agreement
            agreements.append((since, None, p1, mp, account))
        elif k < 0.75:  # product switch in the middle of the data
            agreements.append((since, mid.isoformat(), p1, mp, account))
            agreements.append((mid.isoformat(), None, p2, mp, account))
        elif k < 0.80:  # ended before the readings start: no covering agreement
            agreements.append((since, day(-1), p1, mp, account))
        elif k < 0.83:  # starts after the readings end: no covering agreement
            agreements.append((day(1, end), None, p1, mp, account))
        elif k < 0.87:  # overlapping agreements
            agreements.append((since, None, p1, mp, account))
            agreements.append((day(-5), day(2, end), p2, mp, account))
        elif k < 0.91:  # a zero-length agreement inside the range, then the real one
            agreements.append((mid.isoformat(), mid.isoformat(), p2, mp, account))
            agreements.append((since, None, p1, mp, account))
        elif k < 0.94:  # strict as-of bounds: ends exactly on the as-of date, next starts exactly on it
            agreements.append((day(-400, AS_OF_EDGE), AS_OF_EDGE.isoformat(), p1, mp, account))
            agreements.append((AS_OF_EDGE.isoformat(), None, p2, mp, account))
        elif k < 0.97:  # several historical agreements, then the current one
            agreements.append((day(-700), day(-500), p2, mp, account))
            agreements.append((day(-500), day(-200), p1, mp, account))
            agreements.append((day(-200), None, p2, mp, account))
        else:  # active across the as-of date, closed before the readings
            agreements.append((day(-30, AS_OF_EDGE), day(-3), p1, mp, account))
    agreement_rows = [
        (i + 1, f, t, PRODUCTS[p][0], mp, acc) for i, (f, t, p, mp, acc) in enumerate(agreements)
    ]
    product_rows = [(name, var, i + 1, pid) for i, (pid, name, var) in enumerate(PRODUCTS)]

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".db.tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        con.executescript(
            """
            CREATE TABLE "agreement" ("agreement_id" INTEGER, "agreement_valid_from" DATE, "agreement_valid_to" DATE,
                                      "product_id" TEXT, "meterpoint_id" TEXT, "account_id" TEXT);
            CREATE TABLE "product" ("display_name" TEXT, "is_variable" INTEGER, "id" INTEGER, "product_id" TEXT);
            CREATE TABLE "meterpoint" ("region" TEXT, "meterpoint_id" TEXT);
            """
        )
        con.executemany("INSERT INTO agreement VALUES (?, ?, ?, ?, ?, ?)", agreement_rows)
        con.executemany("INSERT INTO product VALUES (?, ?, ?, ?)", product_rows)
        con.executemany("INSERT INTO meterpoint VALUES (?, ?)", meterpoint_rows)
        con.commit()
    finally:
        con.close()
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="energy-assets generate-smart-meter",
        description=(
            "Write smart-meter reading files (one <10-hex id>.json per meterpoint, pandas split orient, naive UK-local "
            "interval_start) and the static SQLite database (agreement, product, meterpoint) in the utility's format. "
            "The defaults regenerate the committed sample byte for byte; a later --start with --no-db delivers new "
            "versions of the same files. About a million readings a second, for benchmarks."
        ),
    )
    parser.add_argument("--meterpoints", type=int, default=100, help="meterpoints (one file each; default 100)")
    parser.add_argument("--days", type=int, default=4, help="UK days of half-hourly readings (default 4)")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2021, 3, 26), help="first UK local day")
    parser.add_argument("--seed", type=int, default=7, help="random seed: the same arguments give the same bytes (default 7)")
    parser.add_argument("--out", type=Path, default=Path("data"), help="writes OUT/readings/*.json and OUT/case_study.db")
    parser.add_argument("--bad-rate", type=float, default=0.0, help="share of rows spoiled on purpose (0..1)")
    parser.add_argument("--no-db", action="store_true", help="write reading files only (a follow-up delivery)")
    args = parser.parse_args(argv)
    if args.meterpoints < 1 or args.days < 1:
        parser.error("--meterpoints and --days must be at least 1")
    if not 0 <= args.bad_rate <= 1:
        parser.error("--bad-rate must be between 0 and 1")
    began = time.perf_counter()
    stats = generate(args.out, args.meterpoints, args.days, args.start, args.seed, args.bad_rate, not args.no_db)
    took = time.perf_counter() - began
    print(
        f"wrote {stats['rows']:,} readings in {stats['files']:,} files to {args.out / 'readings'} "
        f"({stats['rows'] / max(took, 1e-9):,.0f} rows/s, {took:.1f} s)"
        + ("" if args.no_db else f" and {args.out / 'case_study.db'}")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
