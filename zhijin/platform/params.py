"""Bounded integer types for path and query parameters, declared once for every route.

An integer that reaches a database must fit its column (a signed 64-bit integer): beyond it
SQLite raises OverflowError and PostgreSQL a data error, which would be a 500.  Each type is a
plain constrained int, so a route adds its own `Path(...)`/`Query(...)` for a description or
an alias:

    def get_block(height: Height) -> ...
    before_height: Annotated[Height | None, Query(description="...")] = None

Out of range is a 422 `invalid_request` like any other schema error, and the OpenAPI shows
the bounds (`minimum`, `maximum`), so generated clients and the fuzz test know them.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le

from zhijin.platform.http_limits import HEIGHT_MAX, INT64_MAX, TIME_MS_MAX

__all__ = ["Cursor", "Height", "ResumeHeight", "Size", "TimeMs"]

# A block height (genesis is 0).
Height = Annotated[int, Ge(0), Le(HEIGHT_MAX)]
# The last block height a reader saw, to resume after; -1 resumes from genesis.
ResumeHeight = Annotated[int, Ge(-1), Le(HEIGHT_MAX)]
# A page cursor: the last sequence number, entry number or height seen (0: from the start).
Cursor = Annotated[int, Ge(0), Le(INT64_MAX)]
# A count of things that exist, such as a log tree size.
Size = Annotated[int, Ge(1), Le(INT64_MAX)]
# A time in ms since the epoch (block time or wall clock).
TimeMs = Annotated[int, Ge(0), Le(TIME_MS_MAX)]
