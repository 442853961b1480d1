"""The lake: where every table lives and how it is opened and scanned. delta-rs and polars only, no Dagster.

A table is `<root>/<layer>/<table>` (asset keys are `[layer, table]`). `Lake` is the one place that builds
a table's URI and carries the storage options, so readers and writers of one process always agree on
where a table is and how to reach it (a local path, `s3://`, `az://`, `gs://`). Dagster code gets a `Lake`
from `energy_assets.lake.resource.LakeResource`; commands build one from the settings (`Lake.from_settings()`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.fs as pafs
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from deltalake.fs import DeltaStorageHandler

LAYERS = ("raw", "bronze", "silver", "gold", "presentation")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LakeTableNotFound(LookupError):
    """A `layer/table` that is not a Delta table of the lake; the message lists what exists."""


class LakeKeyError(ValueError):
    """A table key that is not `[layer, table]` of plain names."""


def table_key(key: str | Sequence[str]) -> tuple[str, str]:
    """`"silver/x"`, `"silver.x"`, `("silver", "x")` or an `AssetKey`'s path -> `("silver", "x")`, checked."""
    if isinstance(key, str):
        parts: Sequence[str] = key.replace(".", "/").split("/")
    else:
        parts = list(getattr(key, "path", key))
    if len(parts) != 2 or not all(isinstance(p, str) and _NAME.match(p) for p in parts):
        raise LakeKeyError(f"{key!r} is not a table key [layer, table] of plain names")
    return parts[0], parts[1]


@dataclass(frozen=True)
class TableRef:
    layer: str
    table: str
    uri: str

    @property
    def name(self) -> str:
        return f"{self.layer}/{self.table}"

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.table}"


@dataclass(frozen=True)
class Lake:
    """A Delta lake at `root` (local path or delta-rs URI) with the storage options to reach it."""

    root: str
    storage_options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        root = str(self.root)
        if "://" not in root:
            root = str(Path(root).expanduser().resolve())
        object.__setattr__(self, "root", root.rstrip("/") or root)
        object.__setattr__(self, "storage_options", dict(self.storage_options or {}))

    @classmethod
    def from_settings(cls, root: str | None = None, storage_options: Mapping[str, str] | None = None) -> Lake:
        """The lake the settings point at (lake URI and storage options), read now; explicit
        arguments win (options are merged over the environment's)."""
        from energy_assets import settings

        return cls(root or settings.lake_uri(), {**settings.lake_storage_options(), **(storage_options or {})})

    # ---------------------------------------------------------------------------------------- paths
    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    @property
    def options(self) -> dict[str, str] | None:
        """Storage options for delta-rs / polars (None when there are none)."""
        return dict(self.storage_options) or None

    def table_uri(self, key: str | Sequence[str]) -> str:
        layer, table = table_key(key)
        return f"{self.root}/{layer}/{table}"

    def ref(self, key: str | Sequence[str]) -> TableRef:
        layer, table = table_key(key)
        return TableRef(layer, table, self.table_uri((layer, table)))

    # ---------------------------------------------------------------------------------------- reads
    def open(self, key: str | Sequence[str]) -> DeltaTable | None:
        """The table's current snapshot, or None when it does not exist yet."""
        try:
            return DeltaTable(self.table_uri(key), storage_options=self.options)
        except TableNotFoundError:
            return None

    def exists(self, key: str | Sequence[str]) -> bool:
        return self.open(key) is not None

    def scan(self, key: str | Sequence[str], where: pl.Expr | None = None, version: int | None = None) -> pl.LazyFrame:
        """A lazy scan of the table's current snapshot (or of `version`); `where` filters (partition columns
        prune files). Raises `LakeTableNotFound` when the table does not exist."""
        if version is None and not self.exists(key):
            raise LakeTableNotFound(f"no Delta table {'/'.join(table_key(key))} in the lake at {self.root}")
        lf = pl.scan_delta(self.table_uri(key), version=version, storage_options=self.options)
        return lf.filter(where) if where is not None else lf

    def read(self, key: str | Sequence[str], where: pl.Expr | None = None, schema: Mapping | None = None,
             columns: Sequence[str] | None = None) -> pl.DataFrame:  # fmt: skip
        """The table's rows (filtered, projected). With `schema`: a missing table reads as an empty frame of
        that schema and the result is cast to it; without: a missing table raises `LakeTableNotFound`."""
        if schema is not None and not self.exists(key):
            frame = pl.DataFrame(schema=dict(schema))
            return frame.select(columns) if columns else frame
        lf = self.scan(key, where)
        if columns:
            lf = lf.select(list(columns))
        df = lf.collect()
        if schema is not None:
            df = df.cast({c: t for c, t in schema.items() if c in df.columns})  # type: ignore[arg-type]
        return df

    def version(self, key: str | Sequence[str]) -> int | None:
        table = self.open(key)
        return None if table is None else table.version()

    # -------------------------------------------------------------------------------------- listing
    def tables(self, known: Iterable[str | Sequence[str]] = ()) -> list[TableRef]:
        """Every Delta table of the lake (`<layer>/<table>` holding a `_delta_log`), sorted by layer (medallion
        order) then name. Listed through delta-rs's own object store with the lake's storage options, so a
        local folder and a bucket are listed the same way; `known` keys are probed in addition."""
        found: dict[tuple[str, str], TableRef] = {}
        try:
            fs = self._filesystem()
        except TableNotFoundError:  # a local root that does not exist yet: no tables
            fs = None
        for layer in LAYERS if fs is not None else ():
            for info in fs.get_file_info(pafs.FileSelector(layer, allow_not_found=True)):
                table = info.path.rstrip("/").rpartition("/")[2]
                if info.type != pafs.FileType.Directory or not _NAME.match(table):
                    continue
                log = fs.get_file_info(pafs.FileSelector(f"{layer}/{table}/_delta_log", allow_not_found=True))
                if any(entry.path.endswith(".json") or entry.path.endswith(".parquet") for entry in log):
                    found[(layer, table)] = self.ref((layer, table))
        for key in known:
            try:
                layer, table = table_key(key)
            except LakeKeyError:
                continue
            if layer in LAYERS and (layer, table) not in found and self.exists((layer, table)):
                found[(layer, table)] = self.ref((layer, table))
        return [found[k] for k in sorted(found, key=lambda k: (LAYERS.index(k[0]), k[1]))]

    def _filesystem(self) -> pafs.PyFileSystem:
        """The lake's root as a pyarrow file system, through delta-rs's object store (same options as reads)."""
        return pafs.PyFileSystem(DeltaStorageHandler(self.root, self.options))

    def find(self, name: str, known: Iterable[str | Sequence[str]] = ()) -> TableRef:
        """`layer/table` (or `layer.table`) -> the table, or `LakeTableNotFound` naming what exists."""
        try:
            ref = self.ref(name)
        except LakeKeyError:
            ref = None
        if ref is not None and self.exists(name):
            return ref
        available = ", ".join(t.name for t in self.tables(known)) or "none (materialise some assets first)"
        raise LakeTableNotFound(f"no Delta table {name!r} in the lake at {self.root}; tables: {available}")
