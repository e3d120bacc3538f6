"""JetStream ordering: every member's peer reads one replicated stream and cuts the same blocks.

Consensus is not made here: it is NATS JetStream's (Raft over 3 or 5 servers).  This package
only turns the stream's total order into blocks, deterministically, and collects the members'
signatures that make a block final.  Its modules, in the order a message meets them: `settings`
and `limits`; `link` (the NATS connection) and `reader` (a stream read in order); `messages`
(the wire format); `cutter` (stream to blocks) with `node` (admission) and `store` (the cursor
committed with each block); `votes` and `finality`; `orderer`, which runs them all.

The ordering stream holds two kinds of message, in one total order:

- **tx**: a transaction envelope (single or member batch), published by any member's gateway
  with `Nats-Msg-Id` = its tx (or batch) hash, so JetStream drops a re-submission inside the
  duplicate window.
- **cut marker**: `{chain_id, height, time_ms, first_seq, proposer, signature}`, published by
  any peer whose view holds enough uncut txs or has waited long enough.  `Nats-Msg-Id` is
  `cut:<height>:<first_seq>`: peers with the same view publish the same id, so JetStream keeps
  one of them.

Every peer applies the same rule to the same messages (`StreamCutter`):

1. A tx message is parsed and authenticated again (a gateway's check is not trusted), then
   checked for chain id, contract and method, and for `(sender, nonce)` reuse against the
   chain *and* the txs already pending in the stream: the first copy in stream order wins,
   later ones are skipped by every peer alike.  A batch is kept or skipped as a whole.
   Checks that need a clock are not done here: expiry is decided against the block time
   when the block executes (recorded as failed `expired`), `valid_until_too_far` against the
   marker's time when the block is cut.
2. A cut marker for height h wins if h is the next height (the first marker for h in stream
   order); any other marker is ignored.  The winner's block holds the pending txs in stream
   order (at most `BLOCK_TXS_MAX` per block: a longer segment becomes several consecutive
   blocks from the same marker), block time = max(marker time, previous block time + 1), and
   proposer = the marker's signer.  A marker whose segment is empty after the checks cuts
   nothing and does not use up its height.

After each block the peer commits, signs the header and publishes its vote on the signature
stream.  A block is final when members holding `quorum_weight` signed the same header
(`FinalityTracker`); votes from non-members, bad signatures and votes over another header
never count.  A peer that sees the rest of the consortium finalise a different hash at a
height, or that can no longer reach a quorum for its own hash, halts: it stops applying and
reports the first differing height (`Divergence`).

Where the peer is in the stream is committed with every block (`cluster_cursors`, in the
block's own database transaction), so after a crash it resumes exactly where its last block
left off; see docs/cluster.md for the catch-up from another peer past the stream's retention.
"""

from zhijin.chain.ordering.jetstream.cutter import StreamCutter
from zhijin.chain.ordering.jetstream.finality import (
    Divergence,
    FinalityTracker,
    stored_final_height,
)
from zhijin.chain.ordering.jetstream.messages import BlockVote, CutMarker, StreamMessage
from zhijin.chain.ordering.jetstream.node import ClusterNode
from zhijin.chain.ordering.jetstream.orderer import JetStreamOrderer
from zhijin.chain.ordering.jetstream.settings import OrderingSettings, StreamNames
from zhijin.chain.ordering.jetstream.store import ClusterStore, StreamCursor
from zhijin.chain.ordering.jetstream.votes import VotePublisher

__all__ = [
    "BlockVote",
    "ClusterNode",
    "ClusterStore",
    "CutMarker",
    "Divergence",
    "FinalityTracker",
    "JetStreamOrderer",
    "OrderingSettings",
    "StreamCursor",
    "StreamCutter",
    "StreamMessage",
    "StreamNames",
    "VotePublisher",
    "stored_final_height",
]
