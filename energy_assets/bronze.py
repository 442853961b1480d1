"""The one bronze contract of every API domain (NESO national, regional and generation, Electricity Maps, and
any later feed). Pure polars and plain data: no Dagster, no I/O.

Columns: the table's partition columns (a UK `settlement_date`, or `date` and `zone`), then

| column | meaning |
|---|---|
| `fetched_at` | UTC time of the latest fetch that returned this content |
| `request_url` | the request, without secrets (keys travel in headers, never in the URL) |
| `http_status` | the HTTP status of the answer |
| `body` | the answer verbatim (text) |
| `content_hash` | SHA-256 of `body` |
| `attempts` | requests made for this answer (retries included) |
| `problem` | null when the answer is usable; else why not (HTTP 500, `{}`, truncated JSON, NaN, "no data") |

The write rule (`bronze_metadata`): a MERGE on (partition columns, `request_url`, `content_hash`), the newest
`fetched_at` winning. A new content adds a row and no body is ever rewritten or deleted (bronze is the only
history of what an API said); an identical refetch adds no row but moves that row's `fetched_at` forward.

The read rule (`latest_fetches`): what a partition "is now" is its newest fetch: per partition, the row with
the greatest `fetched_at`. Because an identical refetch moves `fetched_at`, a good answer after an outage is
the newest again even when its content was seen before, so every table recovers on the next good fetch.

The error model: an unusable answer is kept with its `problem` (nothing an API said is lost) and the blocking
check `rule_latest_fetch_usable` fails the run before silver is built from it. Errors that concern the caller
rather than the data (a missing or invalid key) stay errors: they are raised, not written.

Auxiliary feeds (`AUXILIARY_RULE`): where a table combines a primary feed with an auxiliary one (the national
intensity with the generation mix; Electricity Maps carbon intensity with the power breakdown), primary data
is never held back by a missing auxiliary feed: the derived columns are null, a column says why, and a
non-blocking check warns with the count. Only the auxiliary feed's own bronze check fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import polars as pl

from energy_assets.check_outcome import CheckOutcome

FETCH_COLUMNS: dict[str, pl.DataType] = {
    "fetched_at": pl.Datetime("us", "UTC"),
    "request_url": pl.String(),
    "http_status": pl.Int32(),
    "body": pl.String(),
    "content_hash": pl.String(),
    "attempts": pl.Int32(),
    "problem": pl.String(),
}

AUXILIARY_RULE = (
    "primary data is never held back by a missing auxiliary feed: derived columns are null, a column says why, "
    "and a non-blocking check warns with the count"
)


def content_hash(body: str | bytes) -> str:
    data = body.encode() if isinstance(body, str) else body
    return hashlib.sha256(data).hexdigest()


def fetch_columns(answer) -> dict:
    """The contract's columns of one answer (any object with those attributes: a NESO `FetchedResponse`, an
    Electricity Maps `Fetch`), for a bronze row: `{**partition values, **fetch_columns(answer)}`."""
    return {column: getattr(answer, column) for column in FETCH_COLUMNS}


def requests_by_partition(answered: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """`{partition key: its request lines}` from (partition key, request line) pairs, each line once per partition,
    in the order given: a run over many partitions reports on each partition the requests that answered for it,
    not every request of the run."""
    out: dict[str, list[str]] = {}
    for key, line in answered:
        lines = out.setdefault(key, [])
        if line not in lines:
            lines.append(line)
    return out


def bronze_schema(partition_columns: dict[str, pl.DataType]) -> dict[str, pl.DataType]:
    """The bronze schema of a table partitioned by `partition_columns` (name -> type)."""
    return {**partition_columns, **FETCH_COLUMNS}


def bronze_metadata(partition_expr: str | dict[str, str]) -> dict:
    """Asset metadata for the IO manager: the partition column(s) and the one bronze write rule."""
    columns = [partition_expr] if isinstance(partition_expr, str) else list(partition_expr.values())
    return {
        "partition_expr": partition_expr,
        "write_mode": "merge",
        "merge_keys": [*columns, "request_url", "content_hash"],
        "merge_order_by": "fetched_at",
    }


def without_bodies(bronze: pl.DataFrame | pl.LazyFrame, by: Sequence[str]) -> pl.DataFrame:
    """The partition columns and fetch facts of bronze rows, without their bodies: all the fetch rules read. Given a
    lazy scan of the table, the bodies are never read (a NESO range holds one copy of a 13-day body per day)."""
    return bronze.lazy().select([*by, *(c for c in FETCH_COLUMNS if c != "body")]).collect()


def latest_fetches(bronze: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """Per partition (`by`), the newest bronze row (greatest `fetched_at`; a tie keeps the row with the
    greater content hash, so the answer does not depend on the order rows were read in)."""
    if bronze.is_empty():
        return bronze
    return bronze.sort([*by, "fetched_at", "content_hash"]).group_by(list(by), maintain_order=True).last()


def latest_fetch_problems(bronze: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """The partitions whose newest fetch is unusable (the rows that must fail a run), sorted."""
    latest = latest_fetches(bronze, by)
    if latest.is_empty():
        return latest
    return latest.filter(pl.col("problem").is_not_null()).sort(list(by))


def rule_latest_fetch_usable(bronze: pl.DataFrame | pl.LazyFrame, by: Sequence[str], what: str = "bronze") -> CheckOutcome:
    """Blocking: the newest fetch of every partition in the run is usable (bodies are not read)."""
    bronze = without_bodies(bronze, by)
    bad = latest_fetch_problems(bronze, by)
    partitions = latest_fetches(bronze, by).height
    if bad.height:
        first = bad.row(0, named=True)
        where = ", ".join(f"{c}={first[c]}" for c in by)
        found = (
            f"{bad.height} of {partitions} partition(s) whose newest answer is unusable; first: {where}: "
            f"{first['problem']} (GET {first['request_url']}, HTTP {first['http_status']})"
        )
    else:
        found = f"the newest answer of each of {partitions} partition(s) is usable"
    return CheckOutcome(
        passed=bad.height == 0,
        checked=f"the newest fetch of every partition of {what} is a usable answer (an outage is kept, then fails the run)",
        found=found,
        details={"partitions": partitions, "unusable_partitions": bad.height},
        offending=bad.select([*by, "fetched_at", "request_url", "http_status", "problem"]) if bad.height else None,
    )
