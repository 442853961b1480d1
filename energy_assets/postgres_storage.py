"""The project's PostgreSQL event log: dagster-postgres's own, with an atomic claim of a pool's slot.

Why: a step in a pool (`@asset(pool="neso_api")`) runs only once it holds one of the pool's slots, rows of
Dagster's `concurrency_slots` table. Dagster 1.13's claim (`SqlEventLogStorage._claim_concurrency_slot`) is two
statements: `SELECT id ... WHERE step_key IS NULL ... FOR UPDATE SKIP LOCKED LIMIT 1`, then
`UPDATE concurrency_slots SET run_id, step_key WHERE id = <that id>`. dagster-postgres runs every statement in
autocommit (`isolation_level="AUTOCOMMIT"`), so the row lock ends with the SELECT, and the UPDATE does not check
that the slot is still free: two steps (in two runs, or two processes) can pick the same free row, both write it
(the second overwrites the first) and both start. With a pool of one slot, two 'API calls' ran at once in about
one test run in ten (energy_assets_tests/reliability/test_postgres_instance.py). Dagster's pending-step queue
(`has_unassigned_slots`, then `add_pending_step(should_assign=...)`) can also assign more steps than slots when
they arrive together; the slot rows are meant to be the semaphore that catches that, and with this race they do
not. Upstream reviewers pointed at the same autocommit problem in dagster PR #34092.

What this class changes: only the claim. It is one statement, so one transaction even in autocommit:
`UPDATE concurrency_slots SET run_id, step_key WHERE id = (SELECT id ... WHERE step_key IS NULL AND deleted = false
LIMIT 1 FOR UPDATE SKIP LOCKED) AND step_key IS NULL RETURNING id`. The row stays locked until the UPDATE has
written it, a concurrent claim skips it (or, once it is committed, no longer sees it free), so a slot has at most
one holder; a step that loses is BLOCKED and Dagster retries it, as for any full pool. Everything else (the tables,
the records, the pending-step queue, freeing slots) is dagster-postgres's: an instance written by this class reads
with the stock `dagster_postgres.PostgresEventLogStorage` and back.

Configured in deploy/dagster-postgres.yaml (`event_log_storage`). It imports no Dagster internal: the base class
is dagster-postgres's public one, the statement is SQL on Dagster's table, and the claim's result type is taken
from the signature of the method it replaces (see `ConcurrencySlotStatus` below).
energy_assets_tests/reliability/test_pool_slot_claim.py shows the stock claim giving one slot to two steps and
this one never doing so.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any

from dagster_postgres import PostgresEventLogStorage as DagsterPostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
from sqlalchemy import text


def _slot_status_enum() -> type[Enum]:
    """Dagster's `ConcurrencySlotStatus` (CLAIMED / BLOCKED), which the claim must return: Dagster compares it by
    identity (`ConcurrencyClaimStatus.is_claimed`). Dagster exports it from no public module, so it is read from
    the return annotation of the method this class overrides; if Dagster renames or drops that method or changes
    what it returns, importing this module fails loudly instead of the override silently going unused."""
    status = typing.get_type_hints(DagsterPostgresEventLogStorage._claim_concurrency_slot)["return"]
    if not (isinstance(status, type) and issubclass(status, Enum) and {"CLAIMED", "BLOCKED"} <= set(status.__members__)):
        raise ImportError(f"dagster's _claim_concurrency_slot no longer returns ConcurrencySlotStatus (got {status!r})")
    return status


ConcurrencySlotStatus = _slot_status_enum()

# One statement: the row locked by the sub-select stays locked until the UPDATE has written it. The outer
# `step_key IS NULL` is the same check again on the locked row (free of cost, and exact whatever the plan).
CLAIM_SLOT = text(
    """
    UPDATE concurrency_slots
    SET run_id = :run_id, step_key = :step_key
    WHERE id = (
        SELECT id FROM concurrency_slots
        WHERE concurrency_key = :concurrency_key AND step_key IS NULL AND deleted = false
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    AND step_key IS NULL
    RETURNING id
    """
)


class PostgresEventLogStorage(DagsterPostgresEventLogStorage):
    """dagster-postgres's event log with an atomic claim of a pool's slot. Same constructor and configuration
    (`postgres_db` or `postgres_url`, `should_autocreate_tables`) as the stock class."""

    @classmethod
    def from_config_value(cls, inst_data, config_value: Mapping[str, Any]) -> PostgresEventLogStorage:
        # the stock class builds `PostgresEventLogStorage(...)` by name: this builds this class, same arguments
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str):
        """Give one free slot of `concurrency_key` to (run_id, step_key) in one statement: CLAIMED if this call
        wrote a slot row, BLOCKED if none was free (or every free one was being claimed at that instant)."""
        with self.index_connection() as conn:
            claimed = conn.execute(CLAIM_SLOT, {"concurrency_key": concurrency_key, "run_id": run_id, "step_key": step_key}).fetchone()
        return ConcurrencySlotStatus.CLAIMED if claimed else ConcurrencySlotStatus.BLOCKED
