"""Own votes are published until the signature stream acknowledges them (no NATS needed).

The regression behind these tests: a peer stopped re-publishing its vote once it saw the block
final itself, so a vote refused while the stream elected a new leader was never stored, and
the peer that needed it waited for ever (tests/cluster/test_faults.py found it under load).
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.js.errors import NoStreamResponseError

from zhijin.chain.block import Signature
from zhijin.chain.codec import canonical
from zhijin.chain.ordering.jetstream import BlockVote, VotePublisher
from zhijin.chain.ordering.jetstream.limits import VOTE_PUBLISH_PARALLEL_MAX, VOTE_RETRY_MAX_S


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


class Stream:
    """Refuses every publish until `leader` is set, then stores (and acknowledges) each."""

    def __init__(self) -> None:
        self.leader = False
        self.attempts: list[str] = []
        self.stored: list[str] = []

    async def publish(self, vote: BlockVote) -> Any:
        self.attempts.append(vote.msg_id)
        if not self.leader:
            raise NoStreamResponseError
        self.stored.append(vote.msg_id)
        return {"seq": len(self.stored)}


def vote(height: int, signer: str = "did:key:z6MkTest") -> BlockVote:
    header = canonical({"height": height, "chain_id": "t"})
    return BlockVote(height, header, Signature(signer, b"\x01" * 64))


def rounds(publisher: VotePublisher, clock: Clock, *, seconds: float) -> None:
    """Run publish rounds over `seconds` of fake time, in 50 ms steps."""

    async def run() -> None:
        end = clock.now_s + seconds
        while clock.now_s < end:
            await publisher.publish_due()
            clock.now_s += 0.05

    asyncio.run(run())


def test_a_refused_vote_is_retried_until_the_stream_stores_it() -> None:
    clock, stream = Clock(), Stream()
    publisher = VotePublisher(stream.publish, clock=clock)
    publisher.add(vote(15))
    rounds(publisher, clock, seconds=5.0)  # the stream is electing a leader
    assert stream.stored == [] and publisher.pending() == 1
    # Backoff doubles from the first delay and stays bounded: 0.2, 0.4, 0.8, 1.6, 2.0 ...
    assert 4 <= len(stream.attempts) <= 6
    stream.leader = True
    rounds(publisher, clock, seconds=VOTE_RETRY_MAX_S + 0.1)
    assert stream.stored == [vote(15).msg_id]
    assert publisher.pending() == 0 and publisher.acked == 1
    attempts = len(stream.attempts)
    rounds(publisher, clock, seconds=5.0)
    assert len(stream.attempts) == attempts, "an acknowledged vote is not sent again"


def test_a_reconnect_makes_waiting_votes_due_at_once() -> None:
    clock, stream = Clock(), Stream()
    publisher = VotePublisher(stream.publish, clock=clock)
    publisher.add(vote(7))
    rounds(publisher, clock, seconds=6.0)  # now backed off to the longest delay
    stream.leader = True
    publisher.retry_now()
    asyncio.run(publisher.publish_due())
    assert stream.stored == [vote(7).msg_id]


def test_votes_in_flight_are_bounded_and_each_is_queued_once() -> None:
    clock, stream = Clock(), Stream()
    stream.leader = True
    publisher = VotePublisher(stream.publish, clock=clock)
    count = VOTE_PUBLISH_PARALLEL_MAX + 10
    for height in range(1, count + 1):
        publisher.add(vote(height))
        publisher.add(vote(height))  # the same vote again: one entry
    assert publisher.pending() == count
    asyncio.run(publisher.publish_due())
    assert len(stream.attempts) == VOTE_PUBLISH_PARALLEL_MAX
    asyncio.run(publisher.publish_due())
    assert sorted(stream.stored) == sorted(vote(h).msg_id for h in range(1, count + 1))
    assert publisher.pending() == 0
