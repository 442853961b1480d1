"""Translate the partitions Dagster hands an IO manager into Delta predicates and polars filters.

The stock dagster-deltalake handler compares a partition column with the *start* of a time window
(`date = window_start`), which reduces any multi-day window to its first day, and gives up on naive
timestamps and on lists of static keys. Here a time window is always a half-open range
`[start, end)` and a static dimension is an `IN` list, so one slice describes exactly the rows of the
partitions a run covers, whatever their number.

One description (`SliceCondition`) feeds both the SQL predicate delta-rs uses for overwrites and merges
and the polars expression used for reads and for validating outputs, so the two can never disagree.

Dagster-free: a slice is described with plain values (`SliceDimension(column, TimeRange(start, end))` or
`SliceDimension(column, ["GR", "DE"])`); the IO manager translates Dagster's partitions into them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SliceError(ValueError):
    """A partition cannot be expressed against the table's columns."""


def check_identifier(name: str) -> str:
    """Column names are spliced into predicates: only plain identifiers are accepted."""
    if not _IDENTIFIER.match(name):
        raise SliceError(f"{name!r} is not a plain column name; partition and key columns must match {_IDENTIFIER.pattern}")
    return name


def sql_literal(value: str) -> str:
    """A SQL string literal with quotes doubled, so a partition key can never end the literal."""
    if "\x00" in value:
        raise SliceError("partition values may not contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class TimeRange:
    """A half-open time range `[start, end)`; aware datetimes in the partitions' own time zone."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class SliceDimension:
    """One partition dimension of a write or read: the column and either a time range or the values it covers."""

    column: str
    partitions: TimeRange | Sequence[str]


@dataclass(frozen=True)
class SliceCondition:
    """One dimension of a table slice: a half-open range on a time column, or a set of values."""

    column: str
    kind: str  # "date" | "timestamp" | "timestamp_ntz" | "string"
    start: dt.date | dt.datetime | None = None
    end: dt.date | dt.datetime | None = None
    values: tuple[str, ...] | None = None

    def sql(self, alias: str | None = None) -> str:
        col = check_identifier(self.column)
        if alias:
            col = f"{check_identifier(alias)}.{col}"
        if self.values is not None:
            if not self.values:
                return "FALSE"
            return f"{col} IN ({', '.join(sql_literal(v) for v in self.values)})"
        return f"{col} >= {sql_literal(_fmt(self.start, self.kind))} AND {col} < {sql_literal(_fmt(self.end, self.kind))}"

    def expr(self) -> pl.Expr:
        col = pl.col(self.column)
        if self.values is not None:
            return col.cast(pl.String).is_in(list(self.values))
        return (col >= pl.lit(self.start)) & (col < pl.lit(self.end))


def _fmt(value, kind: str) -> str:
    if kind == "date":
        return value.isoformat()
    if kind == "timestamp":
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def column_kind(dtype: pl.DataType) -> str:
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "timestamp" if dtype.time_zone else "timestamp_ntz"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "string"
    raise SliceError(f"partition columns must be date, timestamp or string; got {dtype}")


def column_bound(value: dt.datetime, kind: str) -> dt.date | dt.datetime:
    """A time window's bound (aware, in the partitions' own time zone) as a value of a `kind` column."""
    if kind == "date":
        return value.date()  # a UK day starts at local midnight: the window's own date
    if kind == "timestamp":
        return value.astimezone(dt.timezone.utc)
    return value.replace(tzinfo=None)  # naive timestamps are wall-clock time in the partitions' time zone


def slice_conditions(dimensions: Sequence[SliceDimension] | None, schema: pl.Schema) -> list[SliceCondition]:
    """Conditions for every partition dimension, typed by the table's (or frame's) schema."""
    conditions = []
    for dim in dimensions or []:
        column = check_identifier(dim.column)
        if column not in schema:
            raise SliceError(f"partition column {column!r} is not a column of the table (columns: {list(schema)})")
        kind = column_kind(schema[column])
        parts = dim.partitions
        if isinstance(parts, TimeRange):
            if kind == "string":
                raise SliceError(f"time partitions need a date or timestamp column; {column!r} is a string")
            conditions.append(SliceCondition(column, kind, start=column_bound(parts.start, kind), end=column_bound(parts.end, kind)))
        elif not parts and kind != "string":
            conditions.append(SliceCondition(column, kind, values=()))  # no partition at all: selects nothing
        else:
            if isinstance(parts, str):
                raise SliceError(f"partitions of {column!r} must be a list of values, not the string {parts!r}")
            if kind != "string":
                raise SliceError(f"static partitions need a string column; {column!r} is {schema[column]}")
            conditions.append(SliceCondition(column, kind, values=tuple(str(v) for v in parts)))
    return conditions


def conditions_sql(conditions: Sequence[SliceCondition], alias: str | None = None) -> str | None:
    if not conditions:
        return None
    # The alias is part of the column reference as it is built: nothing is ever rewritten inside the SQL
    # text, so a partition value that looks like SQL ("x zone IN (") stays an untouched literal.
    return " AND ".join(f"({c.sql(alias)})" for c in conditions)


def conditions_expr(conditions: Sequence[SliceCondition]) -> pl.Expr | None:
    if not conditions:
        return None
    expr = conditions[0].expr()
    for c in conditions[1:]:
        expr = expr & c.expr()
    return expr


def describe(conditions: Sequence[SliceCondition]) -> str:
    return conditions_sql(conditions) or "whole table"
