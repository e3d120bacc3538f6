"""The projector process: query tables applied on a core of their own.

CPython runs one thread at a time in a process, so projections on a thread of the node's process
take their CPU from block production (about a third of it for payments).  A `ProjectionRunner`
given a factory of its projections therefore applies blocks in a child process instead: the
child opens the chain database to read committed blocks and the platform database to write the
query tables, exactly as the thread did, and the node's process only tells it how far it may go
and learns how far it got.

The protocol, over one `multiprocessing` pipe:
- node → projector: `("advance", height)` after each commit (on a cluster peer, each new final
  height), and `("stop",)`;
- projector → node: `("progress", heights, cpu_s)` after each chunk of blocks a projection
  applied (the runner's `wait_for` wakes on it: read-your-writes for the API, per projection),
  and `("stopped", ...)` last.

In the child each projection applies blocks on a lane (a thread) of its own, as the runner does
on threads of the node's process, so a slow or failing projection holds back only its cursor.

Crash safety does not depend on the pipe: a projection's cursor moves in the same database
transaction as its rows, so whatever process applies a block, it is applied once.  If the child
dies, the node's process logs it and starts another, which resumes from the cursors; if the
node's process dies, the child sees the pipe close and exits.

Children start from a fork server that has already imported this module and the projections,
so a start costs a fork, not an interpreter start-up, and never forks the node's threads.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zhijin.platform.gc_tuning import GcMode
    from zhijin.platform.projections import Projection, ProjectionRunner

__all__ = ["ProjectorProcess"]

log = logging.getLogger("zhijin.projector")

WAKE_INTERVAL_S = 1.0
RESTART_DELAY_S = 1.0  # doubled after each failure in a row, up to the maximum
RESTART_DELAY_S_MAX = 60.0
STOP_TIMEOUT_S = 120.0  # the child applies what it was told before it stops
KILL_TIMEOUT_S = 5.0

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["zhijin.platform.projector", "zhijin.node.modules"])


class ProjectorProcess:
    """The node's side of one projector child (restarted if it dies) for one runner."""

    def __init__(
        self, runner: ProjectionRunner, factory: Callable[[], Sequence[Projection]]
    ) -> None:
        self._runner = runner
        self._factory = factory
        self._send_lock = threading.Lock()
        self._target = -1
        self._stopping = threading.Event()
        self._process: Any = None  # multiprocessing's Process of the forkserver context
        self._conn: Connection | None = None
        self._reader: threading.Thread | None = None
        self._cpu_s_done = 0.0  # CPU seconds of children that exited
        self._cpu_s_child = 0.0
        self._restart_delay_s = RESTART_DELAY_S

    # -- the node's process ----------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    def start(self, head: int | None) -> None:
        self._target = -1 if head is None else head
        with self._send_lock:
            self._spawn()
        self._reader = threading.Thread(
            target=self._read, name="zhijin-projector-reader", daemon=True
        )
        self._reader.start()

    def advance(self, height: int) -> None:
        """Let the child apply blocks up to `height` (committed, or final on a cluster peer)."""
        with self._send_lock:
            self._target = max(self._target, height)
            self._send(("advance", height))

    def stop(self) -> None:
        """Ask the child to apply what it was told and exit; wait for it."""
        self._stopping.set()
        with self._send_lock:
            self._send(("stop",))
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT_S)
        process = self._process
        if process is not None:
            process.join(KILL_TIMEOUT_S)
            if process.is_alive():
                log.warning("projector process %d did not stop; terminating it", process.pid)
                process.terminate()
                process.join(KILL_TIMEOUT_S)
        if self._conn is not None:
            self._conn.close()

    def _spawn(self) -> None:
        """Start a child at the current target (the caller holds the send lock)."""
        ours, theirs = _context.Pipe()
        engine_url = self._runner.engine.url.render_as_string(hide_password=False)
        process = _context.Process(
            target=_main,
            args=(
                theirs,
                self._runner.store.url,
                engine_url,
                self._factory,
                self._target,
                logging.getLogger().getEffectiveLevel(),
                self._runner.gc_mode,
            ),
            name="zhijin-projector",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, ours
        log.info("projector process %d started", process.pid)

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._conn is None:
            return
        # If the child is gone, the reader restarts it at the current target.
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(message)

    def _read(self) -> None:
        """Relay the child's progress to the runner; restart the child if it dies."""
        while True:
            conn = self._conn
            assert conn is not None
            try:
                kind, heights, cpu_s = conn.recv()
            except (EOFError, OSError):
                if self._stopping.is_set():
                    return
                self._process.join(KILL_TIMEOUT_S)
                log.error(
                    "projector process %d exited with code %s; starting another in %.0f s",
                    self._process.pid,
                    self._process.exitcode,
                    self._restart_delay_s,
                )
                self._cpu_s_done += self._cpu_s_child
                self._cpu_s_child = 0.0
                if self._stopping.wait(self._restart_delay_s):
                    return
                self._restart_delay_s = min(self._restart_delay_s * 2, RESTART_DELAY_S_MAX)
                with self._send_lock:
                    conn.close()
                    self._spawn()
                continue
            self._cpu_s_child = cpu_s
            self._restart_delay_s = RESTART_DELAY_S  # it is working
            self._runner.record_progress(heights, self._cpu_s_done + cpu_s)
            if kind == "stopped":
                return


# -- the child -----------------------------------------------------------------------------------
def _main(
    conn: Connection,
    chain_url: str,
    platform_url: str,
    factory: Callable[[], Sequence[Projection]],
    target: int,
    log_level: int,
    gc_mode: GcMode = "tuned",
) -> None:
    """Apply committed blocks up to the highest height the node announced, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the node, which stops us
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s (projector): %(message)s"
    )
    from zhijin.chain.store import ChainStore, make_engine
    from zhijin.platform.gc_tuning import tune_gc
    from zhijin.platform.projections import ProjectionRunner

    store = ChainStore(chain_url)
    engine = make_engine(platform_url)
    limit = [target]
    runner = ProjectionRunner(store, engine, factory(), head=lambda: limit[0])
    # The node's collector mode (ZHIJIN_GC), once the child's start-up objects exist: block
    # loading and the projections allocate as block production does.
    tune_gc(gc_mode)
    send_lock = threading.Lock()  # each projection's lane reports its own progress

    def send(kind: str) -> None:
        with send_lock:
            conn.send((kind, dict(runner.heights), runner.cpu_s))

    runner.on_applied = lambda: send("progress")
    stopping = False

    def read_messages(timeout_s: float) -> None:
        nonlocal stopping
        try:
            while conn.poll(timeout_s):
                timeout_s = 0
                message = conn.recv()
                if message[0] == "advance":
                    limit[0] = max(limit[0], message[1])
                    runner.notify(message[1])
                else:
                    stopping = True
        except (EOFError, OSError):
            log.warning("the node's process is gone; the projector stops")
            raise SystemExit(0) from None

    try:
        send("progress")
        runner.start()  # one lane per projection: a slow one holds back only itself
        runner.notify(limit[0])
        while not stopping:
            read_messages(WAKE_INTERVAL_S)
        runner.stop()
        try:
            while runner.catch_up():  # what the node announced before it said stop
                pass
        except Exception:
            log.exception("projection catch-up failed while stopping")
        send("stopped")
    finally:
        store.close()
        engine.dispose()
