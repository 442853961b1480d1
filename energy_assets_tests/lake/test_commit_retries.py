"""The bounded retry around Delta commits: conflicts are retried with backoff, everything else is not."""

import pytest
from deltalake.exceptions import CommitFailedError, SchemaMismatchError

from energy_assets.lake.engine import LakeCommitConflictError, with_commit_retries


def flaky(conflicts: int, error=CommitFailedError):
    calls = {"n": 0}

    def action():
        calls["n"] += 1
        if calls["n"] <= conflicts:
            raise error("Commit failed: a concurrent transactions added new data.")
        return "committed"

    return action, calls


def test_conflicts_are_retried_until_the_commit_lands_and_logged():
    action, calls = flaky(conflicts=3)
    messages = []
    result, attempts = with_commit_retries(action, "silver/x", max_attempts=5, backoff_s=0.001, backoff_max_s=0.002, log=messages.append)
    assert (result, attempts, calls["n"]) == ("committed", 4, 4)
    assert len(messages) == 3 and "silver/x" in messages[0] and "attempt 1/5" in messages[0]


def test_retries_are_bounded_and_the_error_names_the_table():
    action, calls = flaky(conflicts=100)
    with pytest.raises(LakeCommitConflictError, match="silver/x: gave up after 3 attempts"):
        with_commit_retries(action, "silver/x", max_attempts=3, backoff_s=0.001, backoff_max_s=0.002)
    assert calls["n"] == 3


def test_other_errors_are_not_retried():
    action, calls = flaky(conflicts=1, error=SchemaMismatchError)
    with pytest.raises(SchemaMismatchError):
        with_commit_retries(action, "silver/x", max_attempts=5, backoff_s=0.001)
    assert calls["n"] == 1
