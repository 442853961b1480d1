"""Content versions of tables: a hash of what a frame holds, so a rewrite with the same rows is "no change".

Dagster gives every materialisation a new data version unless the asset supplies one. An asset that is rebuilt
on a schedule (the Electricity Maps revision re-fetch rebuilds silver for days that mostly did not change) reports
`content_version(frame)` as its data version, and a downstream automation condition on
`AutomationCondition.data_version_changed()` then recomputes only the partitions whose content changed.

No Dagster here: the asset wraps the string in a `DataVersion`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import polars as pl


def content_version(frame: pl.DataFrame, sort_by: Sequence[str], ignore: Iterable[str] = ()) -> str:
    """SHA-256 (first 32 hex digits) of the frame's rows sorted by `sort_by`, columns in name order, as NDJSON.

    `ignore` drops bookkeeping columns that move without the content moving (when an answer was fetched).
    Independent of row and column order; NDJSON keeps null, 0 and NaN distinct.
    """
    kept = sorted(c for c in frame.columns if c not in set(ignore))
    rows = frame.select(kept).sort(list(sort_by), nulls_last=True, maintain_order=True)
    digest = hashlib.sha256(f"{kept}".encode())
    digest.update(rows.write_ndjson().encode())
    return digest.hexdigest()[:32]
