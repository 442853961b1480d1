"""Shared by every domain's checks: what a check checked and what it found, turned into an
`AssetCheckResult` whose metadata a newcomer can read in the UI (and `energy-assets check` prints)."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue


def markdown_table(df: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * df.width]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join(lines)


@dataclass
class CheckOutcome:
    passed: bool
    checked: str
    found: str
    details: dict = field(default_factory=dict)
    offending: pl.DataFrame | None = None
    warn_only: bool = False

    def result(self, asset_key=None, check_name: str | None = None) -> AssetCheckResult:
        """The Dagster result; `asset_key` and `check_name` name the check when one op yields several."""
        metadata = {"checked": MetadataValue.text(self.checked), "found": MetadataValue.text(self.found)}
        for key, value in self.details.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                metadata[key] = MetadataValue.text(str(value))
            elif isinstance(value, int):
                metadata[key] = MetadataValue.int(value)
            else:
                metadata[key] = MetadataValue.float(float(value))
        if self.offending is not None and self.offending.height:
            metadata["first_offending_rows"] = MetadataValue.md(markdown_table(self.offending.head(5)))
        return AssetCheckResult(
            asset_key=asset_key,
            check_name=check_name,
            passed=self.passed,
            metadata=metadata,
            description=self.found,
            severity=AssetCheckSeverity.WARN if self.warn_only else AssetCheckSeverity.ERROR,
        )
