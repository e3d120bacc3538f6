"""Block time for a demo chain whose story starts in the past.

A loan only turns M1, M3+ or defaulted after weeks and months of block time, and a chain's block
time follows its node's clock.  `zhijin chain init --demo` therefore writes its genesis
`DEMO_HISTORY_DAYS` ago and seeds under a `DemoClock`: the clock stands at the story's start
while the domains seed their data, and a domain whose demo has a history (lending: months of
collections) moves it on, day by day, to the present.  It never runs backwards and never passes
the wall clock, so every block time is monotonic and none is in the future; once the seeding
ends the node goes back to the wall clock.

The clock reaches the seeds in their `seeded` mapping under `DEMO_CLOCK`; a seed that finds none
(a chain whose story starts now) seeds the present only.  What must be fresh at the present (an
FX quote lives 23 hours) a seed leaves to `at_present`, which `finish` runs once the clock has
reached the wall clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from zhijin.chain.node import now_ms

__all__ = ["DAY_MS", "DEMO_CLOCK", "DEMO_HISTORY_DAYS", "DemoClock"]

DAY_MS = 24 * 3600 * 1000
DEMO_HISTORY_DAYS = 200  # long enough for a loan missed in the second month to default at 90 days
DEMO_CLOCK = "demo_clock"  # the key of the clock in the seeds' `seeded` mapping


class DemoClock:
    """A node clock (callable, milliseconds) that a demo seed moves forward explicitly."""

    def __init__(self, start_ms: int, *, wall: Callable[[], int] = now_ms) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self._ms = min(start_ms, wall())
        self._at_present: list[Callable[[], Any]] = []

    def __call__(self) -> int:
        return self._ms

    def advance_to(self, time_ms: int) -> int:
        """Move to `time_ms` (no further than the wall clock, never back); the time it is."""
        with self._lock:
            self._ms = max(self._ms, min(time_ms, self._wall()))
            return self._ms

    def days_left(self) -> int:
        """Whole days between this clock and the wall clock: how much story is left to tell."""
        return max(self._wall() - self._ms, 0) // DAY_MS

    def at_present(self, step: Callable[[], Any]) -> None:
        """Run `step` once the story has reached the present (in `finish`)."""
        self._at_present.append(step)

    def finish(self) -> int:
        """Bring the clock to the wall clock and run what was left for the present, in order."""
        now = self.advance_to(self._wall())
        steps, self._at_present = self._at_present, []
        for step in steps:
            step()
        return now
