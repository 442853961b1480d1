"""Smart-meter batch domain: the utility's reading files and SQLite database -> raw -> silver -> presentation.

Source (see docs in `source.py`, generator in `energy_assets/devtools/smart_meter_generator.py`): `SMART_METER_READINGS_DIR` holds one JSON file
per meterpoint (pandas split orient, naive UK-local `interval_start`), re-delivered with new versions every
morning; `SMART_METER_DB_PATH` holds `agreement`, `product`, `meterpoint`.

Partitions: every asset of readings is on `uk_settlement_days` (a UK local day; 46/48/50 half-hours) with a
single-run backfill policy, so a year is one run; the database tables and active agreements are not partitioned
(below). With `SMART_METER_BUCKETS` = N > 1 the per-meterpoint assets (raw
readings, ingestion log, silver readings and quarantine) are on UK day x meterpoint bucket instead, so a day is
N independent runs on as many workers (`buckets.py`, `assets.build_assets`, `sensors.build_orchestration`).

Incremental ingestion (raw/smart_meter_readings + raw/ingestion_log, one step)
-------------------------------------------------------------------------------
A file covers several days and is re-delivered; a run covers a set of days W. The step:

1. lists the folder once (name, size, mtime) and reads from the ingestion log only narrow columns: each
   version's identity and first/last day, and the (file, hash, day) rows of W (partition-pruned);
2. a file whose (name, size, mtime) matches a logged version *is* that version (content hash and days
   come from the log, the file is not opened). It is read only if one of its days in W is not yet logged
   for that version. Files with an unknown (new or changed) version are read: hashed (SHA-256, the
   version identity, in a thread) while ONE DuckDB `read_json` pass parses the whole list;
3. every row gets a settlement day: the local date of `interval_start`; rows without a readable date (and
   the error row of a malformed file) go to the version's home day (its last dated day, else the mtime day);
4. the raw partitions of W are rebuilt from the rows already in the lake for W, with the rows of each
   (file, day) that a new version touches replaced by the new version's rows (rows of other files, and of
   days a new version does not touch, stay: a daily delivery may hold only the new days). Overwrite of
   exactly W: idempotent; a failed run changes nothing (one Delta transaction per table);
5. the log gets (file, hash, day) rows for the days written (insert-only, so re-runs add nothing). The raw
   table is committed before the log: a failure in between only means the version is read again next
   time (and replaces the same rows), never that rows are lost or doubled.

So a run for day D reads only files with a new version (cost grows with new data, not history: unchanged
files are not opened, other days' partitions are not read), a changed file re-ingests exactly the days its
rows touch, and a single run over a year reads each file once. Days of a new version outside W are read
but not written; the sensor requests runs for them (see `sensors.py`).

Silver and presentation
-----------------------
Silver (`silver.silver_readings`) works on integer keys (meterpoint code + day / half-hour), parses and
converts each distinct local time string once and attributes each (meterpoint, day) once. It converts local -> UTC in Europe/London: the ambiguous autumn hour is
resolved by occurrence in file order (first = BST, second = GMT, more = duplicates); a non-existent spring
time is quarantined. Duplicates (same meterpoint and UTC instant) keep the first row in file order and go
to the quarantine table as disposition `duplicate`; every other unusable row is `quarantined` with a
reason. Raw rows = silver + duplicates + quarantined, per day (metadata and a blocking check).
Attribution is per (meterpoint, day) against the database's agreements: valid_from <= day <
valid_to (dates are UK local days, so this is exactly half-open [valid_from, valid_to) in local time);
overlaps pick the latest-starting agreement and are flagged; readings without agreement are kept and
reported (presentation/readings_without_agreement and a warning check).

The database is not a daily fact: raw/agreements, raw/products and raw/meterpoints are unpartitioned tables
versioned by content. Every run loads the database, but a new Delta version is committed only when its rows
changed (write mode `replace_if_changed`), so the Delta history of a table is the history of the database,
and its content hash is the asset's Dagster data version. Silver uses the version current when it runs (Dagster
records the data versions it read in its provenance) and attributes by validity dates; re-running a day after a
correction of the database re-attributes it. They stay in the one job the sensor and schedule run (a job may
mix unpartitioned assets with one partitioning).

The presentation aggregates are DuckDB SQL over silver registered through Arrow (one step, one read of
silver); `active_agreements` is one set as of one date (run config `as_of_date`, else SMART_METER_AS_OF_DATE,
default 2021-01-01) with strict bounds, also versioned by content.

Modules
-------
- `source.py`: I/O of the drop (folder listing, hashes, DuckDB parse of the files, SQLite tables).
- `ingestion.py`, `silver.py`, `presentation.py`: pure functions of frames (planning and raw rows, silver
  and quarantine, the aggregates' SQL), no Dagster, no I/O.
- `pipeline.py`: runs them over a run's days a chunk at a time (files, days, the hashing thread, DuckDB),
  reading the domain's own tables through a `Lake`; no Dagster.
- `assets.py`, `checks.py`, `sensors.py`, `definitions.py`: the Dagster wiring (thin).
"""
