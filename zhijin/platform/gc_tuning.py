"""The node process's garbage collector settings (`ZHIJIN_GC`, docs/operations.md).

Block production allocates many short-lived dicts per tx, and CPython's default thresholds
(700, 10, 10) then run full collections that walk every object of a node's heap (the loaded
modules, the state cache's keys, the mempool): `bench/chain.py` measured them at a third of a
busy node's wall time.  `tuned` moves everything alive once the node has started into the
permanent generation (`gc.freeze`: collections skip it) and collects less often; reference
counting still frees almost everything at once, the collector only finds cycles, so the cost
is cyclic garbage living a little longer.  `default` leaves CPython's settings alone.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Literal

__all__ = ["GC_THRESHOLDS_TUNED", "GcMode", "tune_gc"]

log = logging.getLogger("zhijin.platform.gc")

GcMode = Literal["tuned", "default"]
GC_THRESHOLDS_TUNED = (50_000, 20, 100)

_applied = threading.Event()  # once per process: later starts (tests, restarts) change nothing


def tune_gc(mode: GcMode) -> bool:
    """Apply `mode` once per process, after start-up; True if this call applied it."""
    if mode == "default" or _applied.is_set():
        return False
    _applied.set()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS_TUNED)
    log.info(
        "garbage collector tuned: %d start-up objects frozen, thresholds %s",
        gc.get_freeze_count(),
        GC_THRESHOLDS_TUNED,
    )
    return True
