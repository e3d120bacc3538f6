"""Bounds of the JetStream ordering: streams, queues, retries (STYLE.md rule 7)."""

from __future__ import annotations

from zhijin.chain import limits

DUPLICATE_WINDOW_S = 120.0  # JetStream drops a re-published tx or marker id inside this window
PUBLISH_TIMEOUT_S = 3.0  # a publish not acknowledged by the stream's quorum in time fails
CONNECT_TIMEOUT_S = 2.0
STREAM_SETUP_S_MAX = 30.0  # how long a peer waits for JetStream to elect its leaders at start
MESSAGE_BYTES_MAX = 8 * 1024 * 1024  # also the servers' max_payload (cluster.py writes it)
STREAM_MAX_AGE_S = 24 * 3600.0  # past this a peer catches up from another peer's blocks
STREAM_MAX_BYTES = -1  # bounded by age instead: a byte bound is reserved up front on every server
APPLY_QUEUE_MAX = 20_000  # stream messages read but not yet applied
APPLY_BATCH_MAX = 2_000  # messages applied per turn (one nonce query per run of txs)
PENDING_TXS_MAX = limits.MEMPOOL_TXS_MAX  # uncut txs a peer holds; beyond, txs are skipped
VOTE_QUEUE_MAX = 50_000
VOTE_BUFFER_HEIGHTS_MAX = 100_000  # future heights whose votes wait for the local block
STALL_S = 3.0  # no message for this long while the stream has more: re-subscribe
CUT_RETRY_S = 1.0  # a marker not seen back in the stream after this is published again
VOTE_RETRY_FIRST_S = 0.2  # an own vote the stream did not acknowledge is retried after this,
VOTE_RETRY_MAX_S = 2.0  # doubling up to this (bounded backoff), until the stream acknowledges it
VOTE_PUBLISH_PARALLEL_MAX = 64  # own votes in flight at once
UNACKED_VOTES_MAX = 100_000  # own votes waiting for the stream's acknowledgement
VOTE_REPLAY_MARGIN_S = 300.0  # a restarted peer re-reads votes from this long before its
# first non-final block's time (clock skew between members)
VOTE_LOCATE_S = 2.0  # wait for the first vote at or after that time, else start at the tail
IDLE_HEARTBEAT_S = 1.0
FAILURE_BACKOFF_S = 0.5
