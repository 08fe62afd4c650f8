"""Shared test settings. Area fixtures live in tests/fixtures_<area>.py."""

from __future__ import annotations

import os

# Tests run on a 2-core machine, several processes at once: keep native thread pools small
# so that a test's own timing-independent behaviour is not starved by oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "2")
