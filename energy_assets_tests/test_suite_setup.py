"""The suite's own setup: tests marked `xdist_group("demo")` share one worker, so the shared demo (conftest
`demo_run`, about 20 s) runs once, not once per worker. pytest-xdist marks a group by suffixing the test id; under
pytest 9 that suffix is silently lost (setup.py pins pytest < 9 for this)."""

import os

import pytest


@pytest.mark.xdist_group("demo")
def test_xdist_groups_are_honoured(request):
    if not os.environ.get("PYTEST_XDIST_WORKER") or not getattr(request.config.option, "loadgroup", False):
        pytest.skip("only meaningful under pytest-xdist with --dist loadgroup (the README's `pytest -n auto`)")
    assert request.node.nodeid.endswith("@demo"), f"xdist_group ignored: {request.node.nodeid}"
