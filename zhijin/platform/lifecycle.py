"""The one start/stop order of a node host, solo (`Platform`) or cluster peer (`ClusterPlatform`).

Both hosts used to carry their own copy of this sequence, and the copies drifted (one caught
its query tables up after stopping, the other did not).  Each host now builds its parts and
hands them here; what differs between them is only how its orderer starts and what "final"
means, which it passes in as callables.

Start: the orderer (a peer first catches up from the stream or its peers), the query tables
caught up and their runner started, live notifications, then each module's services in
manifest order.  Stop: the services in reverse order (a service's stop may write one last
block, such as the shutdown audit anchor, while the orderer still runs), a bounded wait until
those blocks are final, the orderer, notifications, the projection runner, one last catch-up
(so the tables hold every final block, the shutdown anchor among them), then the resources.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zhijin.platform.module import NodeService
from zhijin.platform.notifications import NotificationHub
from zhijin.platform.projections import ProjectionRunner

__all__ = ["NodeLifecycle"]


@dataclass(frozen=True, slots=True)
class NodeLifecycle:
    start_orderer: Callable[[], None]
    stop_orderer: Callable[[], None]
    # Wait (bounded) until the block at this height is final; solo ordering: returns at once.
    await_final: Callable[[int], None]
    projections: ProjectionRunner
    notifications: NotificationHub
    services: Sequence[NodeService]
    release: Callable[[], None]  # close the store and the engine, drop the data-dir lock

    def start(self) -> None:
        self.start_orderer()
        self.projections.catch_up()
        self.projections.start()
        self.notifications.start()
        for service in self.services:
            service.start()

    def stop(self) -> None:
        last_writes = [h for s in reversed(self.services) if (h := s.stop()) is not None]
        if last_writes:
            self.await_final(max(last_writes))
        self.stop_orderer()
        self.notifications.stop()
        self.projections.stop()
        self.projections.catch_up()
        self.release()
