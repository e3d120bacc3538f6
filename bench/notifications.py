"""Notification fan-out: what one projected block costs the hub per live subscriber.

For each case, blocks of single-transfer txs between 10 000 accounts, one in five of them
touching a subscriber's account, are fanned out to the subscribers exactly as the hub does
(`NotificationHub._notices` and `Subscriber.offer`, onto an event loop running in another
thread, as the server's is): signed-in end users with two accounts each, or anonymous readers
(block events only).  Figures: the hub thread's CPU per block and per subscriber-block, and how
many such blocks per second one core could fan out.  No arguments; one JSON line per case.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from types import SimpleNamespace
from typing import Any

from sqlalchemy import create_engine

from zhijin.payments.notifications import ACCOUNTS_KEY, PaymentsNotifier
from zhijin.platform.notifications import Audience, NotificationHub, Subscriber
from zhijin.platform.projections import BlockView, TxView

ACCOUNTS = 10_000
BLOCKS = 5


def _block(height: int, transfers: int, rng: random.Random) -> BlockView:
    txs = []
    for position in range(transfers):
        debit, credit = rng.sample(range(ACCOUNTS), 2)
        attrs = {
            "id": f"t-{height}-{position}",
            "debit_account_id": f"acct-{debit}",
            "credit_account_id": f"acct-{credit}",
            "amount": rng.randrange(1, 10_000),
            "currency": "CNY",
            "flags": [],
        }
        event = {"type": "payments.transfer_created", "attrs": attrs}
        txs.append(
            TxView(
                tx_hash=f"{height:08x}{position:056x}",
                position=position,
                sender="did:key:zBench",
                signer="did:key:zBench",
                contract="payments",
                method="create_transfers",
                args={},
                result={"status": "ok", "events": [event]},
            )
        )
    return BlockView(height, 1_750_000_000_000 + height, txs, [])


def run_case(subscribers: int, transfers: int, signed_in: bool) -> dict[str, Any]:
    rng = random.Random(subscribers * 31 + transfers)
    notifier = PaymentsNotifier(create_engine("sqlite://"))
    runner = SimpleNamespace(projected_height=-1, add_listener=lambda _listener: None)
    hub = NotificationHub(None, runner, [notifier])  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    # Subscribers own the accounts the first fifth of the id space names: about one transfer
    # in five (either side) touches one of them.
    owned_space = ACCOUNTS // 5
    audiences = []
    for index in range(subscribers):
        audience = Audience(f"did:key:zOwner{index}" if signed_in else None)
        if signed_in:
            first = (2 * index) % owned_space
            audience.keys[ACCOUNTS_KEY] = {f"acct-{first}", f"acct-{first + 1}"}
        audiences.append(Subscriber(loop, audience, None))
    blocks = [_block(height, transfers, rng) for height in range(BLOCKS)]
    notices = 0
    started = time.thread_time()
    for block in blocks:
        for subscriber in audiences:
            batch = hub._notices(block, subscriber.audience)
            notices += len(batch)
            subscriber.offer(batch)
    cpu_s = time.thread_time() - started
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    per_block_ms = cpu_s / BLOCKS * 1e3
    return {
        "bench": "notifications",
        "case": "signed_in" if signed_in else "anonymous",
        "subscribers": subscribers,
        "transfers_per_block": transfers,
        "notices_per_block": notices // BLOCKS,
        "fan_out_ms_per_block": round(per_block_ms, 2),
        "us_per_subscriber_block": round(per_block_ms * 1e3 / subscribers, 2),
        "blocks_per_s_one_core": round(1e3 / per_block_ms, 1),
        "cores": os.cpu_count(),
    }


def main() -> None:
    for signed_in in (True, False):
        for subscribers in (100, 1_000):
            for transfers in (100, 4_000):
                print(json.dumps(run_case(subscribers, transfers, signed_in)), flush=True)


if __name__ == "__main__":
    main()
