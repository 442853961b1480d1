"""Reading the utility's drop: the readings folder (JSON files) and the static SQLite database.

Everything here is I/O; the decisions (what to read, how rows become silver) live in `ingestion.py` and `silver.py`.

- `snapshot_folder`: one `os.scandir` of the folder: name, size and modification time of every file.
- `hash_files`: SHA-256 of the files' bytes, the identity of a file *version* (`read_versions`: the same, and
  the search for numbers DuckDB rewrites, below, in one read of each file).
- `parse_reading_files`: every file of a list in ONE DuckDB `read_json` pass (parallel, no Python per
  row). `data` is read as `VARCHAR[][]`, so every cell arrives as delivered text (numbers as written,
  strings unquoted, JSON null as null); columns are located by name from each file's `columns`, so a
  file with its columns in another order still parses. If the batch fails (a malformed file), the files
  are parsed one by one to name the bad ones; each bad file becomes one error row and the others parse
  as usual.
- Numbers as written: DuckDB reads a JSON number as a value and gives back its own text of it (`0.50` ->
  "0.5", `1E2` -> "100.0", `0.00001` -> "1e-05", `-0` -> "0", digits past a double's precision lost).
  Such numbers are rare, so the files' bytes are searched for them (one Rust regex per file, polars,
  `INEXACT_NUMBER`; in the same read as the hash, `read_versions`) and only a file that has one is read
  again with Python's `json`, its number cells taken as written (`numbers_as_written`).
- `read_static_tables`: the three SQLite tables, as polars frames with the database's text kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
from dagster import ConfigurableResource
from pydantic import Field

from energy_assets import settings

READING_COLUMNS = ("interval_start", "consumption_delta", "meterpoint_id")

FOLDER_SCHEMA = {"file_name": pl.String, "size_bytes": pl.Int64, "modified_ns": pl.Int64}

PARSED_SCHEMA = {
    "file_name": pl.String,
    "source_row": pl.Int64,
    "interval_start": pl.String,
    "consumption_delta": pl.String,
    "meterpoint_id": pl.String,
    "file_error": pl.String,
}

_PARSE_SQL = """
SELECT parse_filename(filename) AS file_name, i - 1 AS source_row,
       d[its] AS interval_start, d[ic] AS consumption_delta, d[im] AS meterpoint_id,
       (its IS NULL OR ic IS NULL OR im IS NULL) AS bad_layout
FROM (
  SELECT filename, its, ic, im, unnest(data) AS d, unnest(range(1, len(data) + 1)) AS i
  FROM (
    SELECT filename, data,
           list_position(columns, 'interval_start') AS its,
           list_position(columns, 'consumption_delta') AS ic,
           list_position(columns, 'meterpoint_id') AS im
    FROM read_json($files, columns = {'columns': 'VARCHAR[]', 'data': 'VARCHAR[][]'},
                   format = 'auto', records = true, filename = true, maximum_object_size = {max_object_size})
  )
)
"""

# Only for the few files that gave no rows or lack a column: what their layout is.
_LAYOUT_SQL = """
SELECT parse_filename(filename) AS file_name, columns, data IS NULL AS no_data
FROM read_json($files, columns = {'columns': 'VARCHAR[]', 'data': 'VARCHAR[][]'},
               format = 'auto', records = true, filename = true, maximum_object_size = {max_object_size})
"""


def max_object_size(paths: list[str]) -> int:
    """DuckDB's `maximum_object_size` for these files: a power of two above the largest (a file is one JSON
    object), at least 16 MiB. DuckDB sizes its read buffers by it: at 1 GiB, reading 64 MiB of 180 kB files took
    0.85 s against 0.37 s at 16 MiB (BENCHMARKS.md, section 1d), so it follows the files, not the largest allowed."""
    def size(path: str) -> int:
        try:
            return os.stat(path).st_size
        except OSError:  # vanished since the listing: DuckDB's read names it, the size does not matter
            return 0

    largest = max((size(p) for p in paths), default=0)
    return max(1 << 24, 1 << int(largest + 1).bit_length())


class ReadingFileError(ValueError):
    """A reading file that cannot be parsed as the utility's format."""


class SmartMeterSource(ConfigurableResource):
    """Where the utility drops its files, and the settings of the smart-meter domain."""

    readings_dir: str = Field(description="Folder of `<meterpoint_id>.json` reading files (SMART_METER_READINGS_DIR).")
    db_path: str = Field(description="SQLite database with agreement, product and meterpoint (SMART_METER_DB_PATH).")
    as_of_date: str = Field(
        default="2021-01-01",
        description="As-of date of presentation/active_agreements, YYYY-MM-DD (SMART_METER_AS_OF_DATE).",
    )
    def as_of(self, chosen: str | None = None) -> dt.date:
        """The as-of date a run chose (its config), else SMART_METER_AS_OF_DATE."""
        text, what = (self.as_of_date, "SMART_METER_AS_OF_DATE") if chosen is None else (chosen, "active_agreements config as_of_date")
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{what} must be YYYY-MM-DD, not {text!r}") from None

    def folder(self) -> Path:
        return Path(self.readings_dir)


def default_source() -> SmartMeterSource:
    return SmartMeterSource(
        readings_dir=settings.env_var("SMART_METER_READINGS_DIR"),
        db_path=settings.env_var("SMART_METER_DB_PATH"),
        as_of_date=settings.env_var("SMART_METER_AS_OF_DATE"),
    )


def snapshot_folder(folder: Path) -> pl.DataFrame:
    """Name, size and mtime (ns) of every `*.json` file in the folder (one directory listing)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"smart-meter readings folder {folder} does not exist (SMART_METER_READINGS_DIR)")
    entries = [(e.name, e.stat()) for e in os.scandir(folder) if e.name.endswith(".json") and e.is_file()]
    return pl.DataFrame(
        {
            "file_name": [name for name, _ in entries],
            "size_bytes": [st.st_size for _, st in entries],
            "modified_ns": [st.st_mtime_ns for _, st in entries],
        },
        schema=FOLDER_SCHEMA,
    ).sort("file_name")


VANISHED_HASH = "vanished-before-hashing"  # content hash of a listed file that was gone when read


def hash_files(folder: Path, names: list[str]) -> pl.DataFrame:
    """SHA-256 of each file's bytes: the content hash that identifies a file version."""
    return read_versions(folder, names, search=False)[0]


def read_versions(folder: Path, names: list[str], search: bool = True) -> tuple[pl.DataFrame, list[str]]:
    """Each file read once: its SHA-256 (`hash_files`) and, searched in the same bytes, the names of the files with a
    number DuckDB may not give back as written (`INEXACT_NUMBER`; see `numbers_as_written`). `search=False`: hashes
    only (the list is empty)."""
    limit = settings.smart_meter_max_file_bytes()
    hashes, contents = [], []
    for name in names:  # per file, not per row
        path = folder / name
        try:
            if path.stat().st_size > limit:  # never parsed (over the limit): hashed in pieces, not held, not searched
                hashes.append(_sha256_in_pieces(path))
                contents.append(b"")
                continue
            data = path.read_bytes()
        except FileNotFoundError:  # vanished after the listing: parse_reading_files reports it
            hashes.append(VANISHED_HASH)
            contents.append(b"")
            continue
        hashes.append(hashlib.sha256(data).hexdigest())
        contents.append(data if search else b"")
    frame = pl.DataFrame({"file_name": names, "content_hash": hashes}, schema={"file_name": pl.String, "content_hash": pl.String})
    if not search:
        return frame, []
    return frame, [name for name, hit in zip(names, _has_inexact_number(contents), strict=True) if hit]


def _sha256_in_pieces(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def parse_reading_files(folder: Path, names: list[str], as_written: bool = True) -> pl.DataFrame:
    """Rows of the files as delivered (text), with `source_row` the position in the file's `data`.

    A file that is not valid split-orient JSON with the three columns yields one row with `file_error`
    set (the parser's message naming the file) and the reading columns null.

    Numbers are kept as written (`read_versions` finds the files with numbers DuckDB rewrites, `numbers_as_written`
    takes their text). `as_written=False`: DuckDB's text only, for a caller that searches the files in its own read
    (ingestion: beside the parse, while hashing) or needs no number (the sensor: days only).
    """
    if not names:
        return pl.DataFrame(schema=PARSED_SCHEMA)
    rows = _parse_files(folder, names)
    return numbers_as_written(rows, folder, read_versions(folder, names)[1]) if as_written else rows


def _parse_files(folder: Path, names: list[str]) -> pl.DataFrame:
    if not names:
        return pl.DataFrame(schema=PARSED_SCHEMA)
    unreadable = [_error_row(n, e) for n in names if (e := _unreadable(folder / n))]
    if unreadable:  # vanished, empty or too large: reported by name, never parsed
        bad = {row["file_name"][0] for row in unreadable}
        rest = _parse_files(folder, [n for n in names if n not in bad])
        return pl.concat([rest, *unreadable], how="vertical")
    paths = [str(folder / n) for n in names]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        try:
            return _parse(con, paths)
        except (duckdb.Error, OSError):  # streamed batches raise OSError
            pass  # at least one file is malformed: find which, one file at a time
        frames = []
        for path in paths:
            try:
                frames.append(_parse(con, [path]))
            except (duckdb.Error, OSError) as exc:
                frames.append(_error_row(Path(path).name, _short(str(exc), path)))
        return pl.concat(frames, how="vertical")
    finally:
        con.close()


# A JSON number in an array (after `[` or `,`) that DuckDB may give back in other text than written: a negative zero,
# an exponent, a fraction ending in 0, a magnitude below 1e-4 (DuckDB writes 1e-05), or 16 or more digits (beyond
# a double's 15 exact ones). A superset: a number it matches and DuckDB keeps costs only a re-read of its file; a
# number with at most 15 digits and none of these forms is DuckDB's own text of its value, so none is missed.
INEXACT_NUMBER = r"[\[,]\s*(?:-0\s*[,\]]|-?\d+(?:\.\d+)?[eE]|-?\d+\.\d+0\s*[,\]]|-?0\.0000|-?[\d.]{17,})"


def _has_inexact_number(contents: list[bytes]) -> list[bool]:
    """Per file's bytes: does `INEXACT_NUMBER` match (one Rust regex per file, polars, both cores)? Bytes that are not
    UTF-8 are not JSON: DuckDB's parse reports such a file, so it is not searched."""
    found = pl.Series(contents, dtype=pl.Binary).cast(pl.String, strict=False).str.contains(INEXACT_NUMBER)
    return found.fill_null(False).to_list()


class _AsWritten(str):
    """A JSON number's text as written in the file (Python's `json` hands it over untouched)."""


def numbers_as_written(rows: pl.DataFrame, folder: Path, names: list[str]) -> pl.DataFrame:
    """`rows` (a parse, PARSED_SCHEMA) with every reading cell that is a JSON number in one of the files `names`
    replaced by its text as written. Only these files are read again, with Python's `json`; a file that did not parse
    (an error row) is left as it is. Row order is kept."""
    counts = dict(rows.filter(pl.col("file_error").is_null()).group_by("file_name").len().iter_rows())
    patches = []
    for name in names:
        if name not in counts:
            continue
        patch = _numbers_of(folder / name)
        if patch.height != counts[name]:  # replaced between the two reads: never mix rows of two versions
            raise ReadingFileError(
                f"{name}: changed while it was being read ({counts[name]} rows parsed, {patch.height} rows on the second read); "
                "nothing was written, the next run reads the new version"
            )
        patches.append(patch)
    if not patches:
        return rows
    patch = pl.concat(patches, how="vertical")
    return (
        rows.join(patch, on=["file_name", "source_row"], how="left", maintain_order="left")
        .with_columns(pl.coalesce(f"__{c}", c).alias(c) for c in READING_COLUMNS)
        .select(list(PARSED_SCHEMA))
    )


def _numbers_of(path: Path) -> pl.DataFrame:
    """(file_name, source_row, __<column>): each reading cell that is a JSON number, as written (else null)."""
    try:
        doc = json.loads(path.read_bytes(), parse_float=_AsWritten, parse_int=_AsWritten)
    except (OSError, ValueError) as exc:  # DuckDB parsed it a moment ago: it vanished or changed since
        reason = str(exc).replace(str(path), path.name)  # the file's name, not the host's path
        raise ReadingFileError(f"{path.name}: could not be read again for its numbers as written ({reason}); nothing was written") from None
    at = {c: doc["columns"].index(c) for c in READING_COLUMNS}
    data = doc["data"]

    def number(row, i: int) -> str | None:
        cell = row[i] if isinstance(row, list) and i < len(row) else None
        return str(cell) if isinstance(cell, _AsWritten) else None

    return pl.DataFrame(
        {"file_name": path.name, "source_row": range(len(data)), **{f"__{c}": [number(row, i) for row in data] for c, i in at.items()}},
        schema={"file_name": pl.String, "source_row": pl.Int64, **{f"__{c}": pl.String for c in READING_COLUMNS}},
    )


def _parse(con: duckdb.DuckDBPyConnection, paths: list[str]) -> pl.DataFrame:
    # streamed in record batches: DuckDB never holds the whole result next to the polars copy
    sql = _PARSE_SQL.replace("{max_object_size}", str(max_object_size(paths)))
    reader = con.sql(sql, params={"files": paths}).to_arrow_reader(1 << 20)
    batches = [pl.from_arrow(batch) for batch in reader]
    rows = pl.concat(batches, how="vertical", rechunk=False) if batches else pl.DataFrame(schema={**PARSED_SCHEMA, "bad_layout": pl.Boolean}).drop("file_error")
    del batches
    names = [Path(p).name for p in paths]
    bad_layout = set(rows.filter("bad_layout")["file_name"].unique().to_list())
    no_rows = set(names) - set(rows["file_name"].unique().to_list())
    suspects = sorted(bad_layout | no_rows)
    frames = [
        rows.filter(~pl.col("file_name").is_in(list(bad_layout)))
        .drop("bad_layout")
        .with_columns(file_error=pl.lit(None, pl.String))
        .cast(PARSED_SCHEMA)  # type: ignore[arg-type]
    ]
    if suspects:
        folder = Path(paths[0]).parent
        suspect_paths = [str(folder / n) for n in suspects]
        layout = con.sql(_LAYOUT_SQL.replace("{max_object_size}", str(max_object_size(suspect_paths))), params={"files": suspect_paths}).pl()
        for name, columns, no_data in layout.iter_rows():  # per suspect file
            if no_data:
                frames.append(_error_row(name, f"{name}: no 'data' array (expected pandas split orient)"))
            elif name in bad_layout or not set(READING_COLUMNS) <= set(columns or []):
                frames.append(
                    _error_row(name, f"{name}: columns {columns} are not {list(READING_COLUMNS)} (expected pandas split orient)")
                )
            # else: a well-formed file with an empty data array: no rows, nothing to report
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


MAX_FILE_BYTES_ENV = "SMART_METER_MAX_FILE_BYTES"


def _unreadable(path: Path) -> str | None:
    """Why a listed file cannot be parsed before trying: vanished, empty, or over the size limit."""
    limit = settings.smart_meter_max_file_bytes()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{path.name}: vanished between the folder listing and the reading (deleted or moved while ingesting)"
    if size == 0:
        return f"{path.name}: empty file (0 bytes)"
    if size > limit:
        return f"{path.name}: {size} bytes is over the {limit}-byte limit ({MAX_FILE_BYTES_ENV}); not parsed"
    return None


def _short(message: str, path: str) -> str:
    name = Path(path).name
    first = message.strip().splitlines()[0] if message.strip() else "unreadable"
    return f"{name}: malformed JSON: {first.replace(path, name)}"[:500]


def _error_row(name: str, error: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"file_name": [name], "source_row": [None], "interval_start": [None], "consumption_delta": [None],
         "meterpoint_id": [None], "file_error": [error]},
        schema=PARSED_SCHEMA,
    )  # fmt: skip


@dataclass(frozen=True)
class StaticTables:
    agreements: pl.DataFrame
    products: pl.DataFrame
    meterpoints: pl.DataFrame


def read_static_tables(db_path: Path) -> StaticTables:
    """The three tables as delivered (dates stay text here; `silver.typed_agreements` parses them)."""
    if not db_path.is_file():
        raise FileNotFoundError(f"smart-meter database {db_path} does not exist (SMART_METER_DB_PATH)")
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        def query(sql: str, schema: dict) -> pl.DataFrame:
            cur = con.execute(sql)
            names = [c[0] for c in cur.description]
            return pl.DataFrame(cur.fetchall(), schema=names, orient="row").cast(schema)  # type: ignore[arg-type]

        agreements = query(
            "SELECT agreement_id, agreement_valid_from, agreement_valid_to, product_id, meterpoint_id, account_id FROM agreement",
            {"agreement_id": pl.Int64, "agreement_valid_from": pl.String, "agreement_valid_to": pl.String,
             "product_id": pl.String, "meterpoint_id": pl.String, "account_id": pl.String},
        )  # fmt: skip
        products = query(
            "SELECT display_name, is_variable, id, product_id FROM product",
            {"display_name": pl.String, "is_variable": pl.Int64, "id": pl.Int64, "product_id": pl.String},
        )
        meterpoints = query("SELECT region, meterpoint_id FROM meterpoint", {"region": pl.String, "meterpoint_id": pl.String})
    except sqlite3.Error as exc:
        raise ValueError(f"smart-meter database {db_path}: {exc}") from None
    finally:
        con.close()
    return StaticTables(agreements, products, meterpoints)
