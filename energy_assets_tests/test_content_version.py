"""The content version silver reports as its data version: equal content, equal version; any change, a new one."""

import polars as pl

from energy_assets.content_version import content_version

FRAME = pl.DataFrame({"zone": ["GR", "GR", "DE"], "hour": [2, 1, 1], "value": [1.5, None, 0.0], "fetched_at": [7, 8, 9]})


def version(frame: pl.DataFrame) -> str:
    return content_version(frame, sort_by=("zone", "hour"), ignore=("fetched_at",))


def test_row_and_column_order_and_ignored_columns_do_not_change_the_version():
    shuffled = FRAME.reverse().select("fetched_at", "value", "hour", "zone").with_columns(pl.col("fetched_at") + 100)
    assert version(shuffled) == version(FRAME)


def test_a_changed_value_a_null_made_zero_or_an_extra_row_changes_it():
    base = version(FRAME)
    assert version(FRAME.with_columns(pl.when(pl.col("zone") == "DE").then(0.1).otherwise(pl.col("value")).alias("value"))) != base
    assert version(FRAME.with_columns(pl.col("value").fill_null(0.0))) != base  # null and 0 stay distinct
    assert version(pl.concat([FRAME, FRAME.head(1)])) != base
    assert version(FRAME.with_columns(extra=pl.lit(None, pl.String))) != base  # a new column is a change
