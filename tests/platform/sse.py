"""Reading a server-sent event stream in tests."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import httpx

__all__ = ["Event", "read_until"]

Event = dict[str, Any]


_lines: weakref.WeakKeyDictionary[httpx.Response, Iterator[str]] = weakref.WeakKeyDictionary()


def read_until(response: httpx.Response, done: Callable[[list[Event]], bool]) -> list[Event]:
    """Parse the stream's next events until `done` holds, or the stream ends (a read timeout
    fails the test)."""
    lines = _lines.setdefault(response, response.iter_lines())
    events: list[Event] = []
    current: Event = {}
    for line in lines:
        if not line:
            if "event" in current:
                current["data"] = json.loads(current["data"])
                events.append(current)
                if done(events):
                    return events
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            current[name] = value
    return events
