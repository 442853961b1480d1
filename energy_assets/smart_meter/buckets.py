"""Meterpoint buckets, pure: which of N buckets a meterpoint belongs to (SMART_METER_BUCKETS), so that one UK
day can be processed as N independent runs. No Dagster, no I/O.

- The bucket of a meterpoint is a stable hash of its id: the first 32 bits of its SHA-256, modulo N. The same
  id gets the same bucket in every process, machine and Python version (Python's `hash()` is salted per
  process, so it is never used).
- A reading file is `<meterpoint_id>.json` (the drop's contract: one file per meterpoint): its bucket is the
  bucket of its name without `.json`, and every row of the file belongs to that bucket. So a bucket run reads
  only its own files, and a meterpoint lives in exactly one bucket: per-bucket distinct meterpoint counts add
  up to the day's.
- Bucket keys are the strings "0".."N-1" (the bucket dimension of the partitions and the `meterpoint_bucket`
  column of the bucketed tables, a physical Delta partition column next to the day).
"""

from __future__ import annotations

import hashlib

import polars as pl

BUCKET_COLUMN = "meterpoint_bucket"
DATE_DIMENSION = "date"
BUCKET_DIMENSION = "bucket"


def bucket_of(meterpoint_id: str, buckets: int) -> int:
    """The bucket (0..buckets-1) of a meterpoint id."""
    if buckets < 1:
        raise ValueError(f"the bucket count must be at least 1, not {buckets}")
    return int(hashlib.sha256(meterpoint_id.encode("utf-8")).hexdigest()[:8], 16) % buckets


def bucket_keys(buckets: int) -> list[str]:
    """The partition keys of the bucket dimension: "0".."N-1"."""
    return [str(i) for i in range(buckets)]


def file_meterpoint(file_name: str) -> str:
    """The meterpoint a reading file belongs to: its name without `.json`."""
    return file_name[: -len(".json")] if file_name.endswith(".json") else file_name


def file_bucket(file_name: str, buckets: int) -> str:
    """The bucket key of a reading file."""
    return str(bucket_of(file_meterpoint(file_name), buckets))


def with_file_bucket(df: pl.DataFrame, buckets: int, file_column: str = "source_file") -> pl.DataFrame:
    """`df` with `meterpoint_bucket` computed from its file-name column (hashed once per distinct file)."""
    names = df.get_column(file_column).unique().drop_nulls().to_list()
    mapping = {name: file_bucket(name, buckets) for name in names}  # per file, not per row
    return df.with_columns(pl.col(file_column).replace_strict(mapping, default=None, return_dtype=pl.String).alias(BUCKET_COLUMN))


def in_buckets(names: list[str], buckets: int, keys: list[str]) -> list[str]:
    """The file names among `names` that belong to one of the bucket `keys`."""
    wanted = set(keys)
    return [n for n in names if file_bucket(n, buckets) in wanted]
