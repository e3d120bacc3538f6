"""The demo clock: it stands still until moved, never runs back, never passes the wall clock,
and runs what was left for the present once, when it gets there."""

from __future__ import annotations

from zhijin.platform.demo_clock import DAY_MS, DemoClock


def test_it_moves_only_forward_and_never_past_the_wall_clock() -> None:
    wall = [100 * DAY_MS]
    clock = DemoClock(90 * DAY_MS, wall=lambda: wall[0])
    assert clock() == 90 * DAY_MS and clock.days_left() == 10
    assert clock.advance_to(95 * DAY_MS) == 95 * DAY_MS
    assert clock.advance_to(91 * DAY_MS) == 95 * DAY_MS  # never back
    assert clock.advance_to(500 * DAY_MS) == 100 * DAY_MS  # never past the wall clock
    assert clock.days_left() == 0
    wall[0] += DAY_MS
    assert clock() == 100 * DAY_MS  # it stands still until moved
    assert DemoClock(200 * DAY_MS, wall=lambda: wall[0])() == wall[0]  # a start in the future


def test_finish_brings_it_to_the_present_and_runs_the_steps_once_in_order() -> None:
    wall = [10 * DAY_MS]
    clock = DemoClock(0, wall=lambda: wall[0])
    seen: list[tuple[str, int]] = []
    clock.at_present(lambda: seen.append(("quotes", clock())))
    clock.at_present(lambda: seen.append(("more", clock())))
    assert clock.finish() == 10 * DAY_MS
    assert seen == [("quotes", 10 * DAY_MS), ("more", 10 * DAY_MS)]
    clock.finish()
    assert len(seen) == 2  # each step once
