"""A pool's slot has one holder: the event log's slot claim on a real PostgreSQL server (energy_assets.postgres_storage).

A step of a pool runs once `claim_concurrency_slot` says CLAIMED. Before that, Dagster's pending-step queue decides
which steps may try; when steps arrive together it can let more try than there are slots (`has_unassigned_slots`
and `add_pending_step` are separate statements), so here both steps are put in the queue as assigned, as that
race leaves them, and the slot rows alone must decide.

- With dagster-postgres's stock claim (SELECT ... FOR UPDATE SKIP LOCKED, then UPDATE, in autocommit), two steps
  that both look before either writes both get CLAIMED for the one slot: shown deterministically by holding each
  claim after its SELECT until both have run it.
- The project's claim is one statement: under the same hold, one step gets the slot and the other is BLOCKED until
  the first frees it; and with steps racing freely, round after round, exactly one holds the slot.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from energy_assets_tests.reliability.postgres_server import postgres  # noqa: F401

dagster_postgres = pytest.importorskip("dagster_postgres", reason="dagster-postgres (the production instance's storage) is not installed")

POOL = "neso_api"
WAIT_S = 30  # a barrier that times out means a claim hung: fail, never hang the suite


@pytest.fixture
def pg_url(postgres, tmp_path):
    """A fresh database (its own slot and pending-step tables) for each test."""
    database = postgres.create_database(f"slots_{tmp_path.name.lower().replace('-', '_')}"[:60])
    return f"postgresql+psycopg2://{postgres.user}:{postgres.password}@{postgres.host}:{postgres.port}/{database}"


def _stock(url):
    return dagster_postgres.PostgresEventLogStorage(url)


def _ours(url):
    from energy_assets.postgres_storage import PostgresEventLogStorage

    return PostgresEventLogStorage(url)


class _HoldAfterSlotLookup:
    """A connection that, once it has run the statement looking for a free slot (the one with SKIP LOCKED: the
    stock claim's SELECT, or the whole of the project's one-statement claim), waits until the other claimer has
    run its own."""

    def __init__(self, conn, barrier: threading.Barrier):
        self._conn, self._barrier = conn, barrier

    def execute(self, statement, *args, **kwargs):
        result = self._conn.execute(statement, *args, **kwargs)
        if "SKIP LOCKED" in str(statement.compile(dialect=self._conn.dialect)).upper():
            self._barrier.wait(timeout=WAIT_S)
        return result

    def __getattr__(self, name):
        return getattr(self._conn, name)


def _hold_after_slot_lookup(storage, barrier: threading.Barrier) -> None:
    index_connection = storage.index_connection

    @contextmanager
    def held():
        with index_connection() as conn:
            yield _HoldAfterSlotLookup(conn, barrier)

    storage.index_connection = held  # this storage object only


def _queue_assigned(storage, claimers) -> None:
    """The pool has one slot, and every claimer is in the pending-step queue as assigned (allowed to try)."""
    storage.set_concurrency_slots(POOL, 1)
    for run_id, step_key in claimers:
        storage.add_pending_step(concurrency_key=POOL, run_id=run_id, step_key=step_key, should_assign=True)


def _claim_together(storages, claimers, barrier=None) -> list[bool]:
    """Each claimer claims on its own storage object (its own connections, as separate processes would), in its
    own thread, all released at once; returns who got CLAIMED."""
    start = threading.Barrier(len(claimers))
    results: list = [None] * len(claimers)

    def claim(i):
        try:
            start.wait(timeout=WAIT_S)
            results[i] = storages[i].claim_concurrency_slot(POOL, *claimers[i]).is_claimed
        except BaseException as error:  # noqa: BLE001 - reported below, in the test's thread
            results[i] = error
            if barrier is not None:
                barrier.abort()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(claimers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=2 * WAIT_S)
    errors = [r for r in results if not isinstance(r, bool)]
    assert not errors, errors
    return results


def _holders(storage) -> list[tuple[str, str]]:
    return sorted((slot.run_id, slot.step_key) for slot in storage.get_concurrency_info(POOL).claimed_slots)


CLAIMERS = [("run_a", "bronze__api_readings"), ("run_b", "bronze__api_readings")]


def test_the_stock_claim_gives_one_slot_to_two_steps_when_both_look_before_either_writes(pg_url):
    """The defect, made deterministic: dagster-postgres's claim runs its SELECT ... FOR UPDATE in autocommit, so
    the row lock is gone before its UPDATE; both claimers pick the free row, both write it, both are CLAIMED."""
    storages = [_stock(pg_url), _stock(pg_url)]
    _queue_assigned(storages[0], CLAIMERS)
    barrier = threading.Barrier(2)
    for storage in storages:
        _hold_after_slot_lookup(storage, barrier)

    assert _claim_together(storages, CLAIMERS, barrier) == [True, True]  # two steps inside a pool of one
    assert len(_holders(storages[0])) == 1  # ... while the slot row names only the one that wrote last


def test_our_claim_gives_the_slot_to_one_step_under_the_same_interleaving(pg_url):
    storages = [_ours(pg_url), _ours(pg_url)]
    _queue_assigned(storages[0], CLAIMERS)
    barrier = threading.Barrier(2)
    for storage in storages:
        _hold_after_slot_lookup(storage, barrier)

    claimed = _claim_together(storages, CLAIMERS, barrier)
    assert sorted(claimed) == [False, True]
    winner, loser = (CLAIMERS[0], CLAIMERS[1]) if claimed[0] else (CLAIMERS[1], CLAIMERS[0])
    assert _holders(storages[0]) == [winner]

    # the loser is blocked (and retried by Dagster) until the winner frees the slot, then it gets it
    plain = _ours(pg_url)
    assert not plain.claim_concurrency_slot(POOL, *loser).is_claimed
    plain.free_concurrency_slot_for_step(*winner)
    assert plain.claim_concurrency_slot(POOL, *loser).is_claimed
    assert _holders(plain) == [loser]
    plain.free_concurrency_slot_for_step(*loser)
    assert _holders(plain) == []


def test_racing_claims_never_share_the_slot(pg_url):
    """Three claimers (three storage objects, three threads) released at once, round after round, with no hold:
    each round exactly one is CLAIMED and the slot row names it; freeing it leaves the slot free for the next."""
    storages = [_ours(pg_url) for _ in range(3)]
    storages[0].set_concurrency_slots(POOL, 1)
    for round_ in range(12):  # the held interleaving above is the deterministic proof; this adds free races
        claimers = [(f"run_{round_}_{i}", "bronze__api_readings") for i in range(3)]
        _queue_assigned(storages[0], claimers)
        claimed = _claim_together(storages, claimers)
        assert claimed.count(True) == 1, (round_, claimed)
        winner = claimers[claimed.index(True)]
        assert _holders(storages[0]) == [winner], round_
        for run_id, _ in claimers:
            storages[0].free_concurrency_slots_for_run(run_id)
        assert _holders(storages[0]) == [], round_


def test_records_written_by_our_class_read_with_the_stock_class(pg_url):
    """The same tables and rows: slots claimed through ours are seen, and freed, by dagster-postgres's class."""
    ours, stock = _ours(pg_url), _stock(pg_url)
    ours.set_concurrency_slots(POOL, 2)
    assert ours.claim_concurrency_slot(POOL, "run_a", "step").is_claimed
    info = stock.get_concurrency_info(POOL)
    assert info.slot_count == 2 and [(s.run_id, s.step_key) for s in info.claimed_slots] == [("run_a", "step")]
    stock.free_concurrency_slots_for_run("run_a")
    assert ours.get_concurrency_info(POOL).active_slot_count == 0
