"""Shared test settings. Area fixtures live in tests/fixtures_<area>.py."""

from __future__ import annotations

import os

import pytest

# Tests run on a 2-core machine, several processes at once: keep native thread pools small
# so that a test's own timing-independent behaviour is not starved by oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def no_imgcheck_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No IMGCHECK_* variable of the machine running the tests reaches the command under test
    (they override config files and defaults, see imgcheck.config)."""
    for var in list(os.environ):
        if var.startswith("IMGCHECK_"):
            monkeypatch.delenv(var)
