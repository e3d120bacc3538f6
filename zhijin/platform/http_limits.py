"""Every bound of the HTTP edge in one place (STYLE.md rule 7); docs/operations.md lists them.

Request bodies: every route takes at most BODY_BYTES_MAX unless it declares more
(`max_body_size=` on its decorator, from its domain's limits.py).  Integer path and query
parameters use the shared types in `zhijin.platform.params`, bounded here.
"""

from __future__ import annotations

from zhijin.chain import limits as chain_limits
from zhijin.chain.codec import INT_MAX

__all__ = [
    "BODY_BYTES_MAX",
    "ENVELOPES_PER_REQUEST_MAX",
    "ENVELOPE_BYTES_MAX",
    "HEIGHT_MAX",
    "INT64_MAX",
    "TIME_MS_MAX",
]

# The default for a request body: a JSON object of a few fields, or a small form.
BODY_BYTES_MAX = 64 * 1024
# A chain envelope over HTTP: a member batch of up to 64 bodies of the largest size; bigger
# batches go in pieces.
ENVELOPE_BYTES_MAX = chain_limits.TX_BYTES_MAX * 64
# POST /api/v1/chain/txs/many: envelopes in one request (within ENVELOPE_BYTES_MAX in all).
ENVELOPES_PER_REQUEST_MAX = 5_000

# What the databases (BIGINT, SQLite INTEGER) and the chain codec hold.
INT64_MAX = INT_MAX
# Heights, sequence numbers and sizes are counters: the signed 64-bit range is their domain.
HEIGHT_MAX = INT64_MAX
# Times in ms since the epoch: the last millisecond of year 9999, the latest a calendar
# (datetime, ISO 8601, ISO 20022 dates) can name.
TIME_MS_MAX = 253_402_300_799_999
