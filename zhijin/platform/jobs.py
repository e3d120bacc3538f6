"""Long work started from a page (a verification over the whole chain, the audit log's), run
in a thread while the page polls its progress with htmx, so no page freezes on it.

A job belongs to the user who started it: only they read its progress or result (a result
may say what was checked in their scope).  The registry is bounded: a user runs at most
`JOBS_RUNNING_PER_USER_MAX` at once (one more is refused, not queued) and the registry keeps
the newest `JOBS_KEPT_MAX` finished ones; it lives in the process, so a restart forgets them
(the work is a check to run again, never a state change).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zhijin.chain.errors import NotFound, ZhijinError

__all__ = [
    "JOBS_KEPT_MAX",
    "JOBS_RUNNING_PER_USER_MAX",
    "Job",
    "JobRegistry",
    "Progress",
    "TooManyJobs",
    "registry_of",
]

log = logging.getLogger("zhijin.jobs")

JOBS_KEPT_MAX = 64
JOBS_RUNNING_PER_USER_MAX = 2

# What a job's work reports as it goes: (done, total); total None while unknown.
Progress = Callable[[int, int | None], None]


class TooManyJobs(ZhijinError):
    code = "too_many_jobs"
    http_status = 429


@dataclass(slots=True)
class Job:
    id: str
    kind: str
    owner: str
    template: str  # the part that shows the finished job (its `result`)
    done: int = 0
    total: int | None = None
    finished: bool = False
    result: dict[str, Any] | None = None
    failed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def percent(self) -> int | None:
        if self.total is None or self.total <= 0:
            return None
        return min(100, self.done * 100 // self.total)

    def report(self, done: int, total: int | None) -> None:
        with self._lock:
            self.done, self.total = done, total


class JobRegistry:
    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def start(
        self,
        *,
        kind: str,
        owner: str,
        template: str,
        work: Callable[[Progress], dict[str, Any]],
    ) -> Job:
        """Run `work(progress)` in a thread; its returned dict is the job's result."""
        with self._lock:
            running = sum(1 for j in self._jobs.values() if j.owner == owner and not j.finished)
            if running >= JOBS_RUNNING_PER_USER_MAX:
                raise TooManyJobs(message="wait for your running checks to finish")
            job = Job(id="job_" + secrets.token_hex(12), kind=kind, owner=owner, template=template)
            self._jobs[job.id] = job
            self._trim()
        thread = threading.Thread(target=self._run, args=(job, work), daemon=True)
        thread.start()
        return job

    def _trim(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.finished]
        for job_id in finished[: max(0, len(self._jobs) - JOBS_KEPT_MAX)]:
            del self._jobs[job_id]

    @staticmethod
    def _run(job: Job, work: Callable[[Progress], dict[str, Any]]) -> None:
        try:
            result = work(job.report)
        except Exception:  # the page must show an end, whatever broke
            log.exception("job failed", extra={"job": job.id, "kind": job.kind})
            job.failed, job.result = True, None
        else:
            job.result = result
        job.finished = True

    def get(self, job_id: str, *, owner: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise NotFound("job_not_found", "no such check (it may have been forgotten)")
        return job


_MAKING = threading.Lock()


def registry_of(state: Any) -> JobRegistry:
    """The app's registry (`app.state.jobs`), made on first use."""
    with _MAKING:
        registry = getattr(state, "jobs", None)
        if not isinstance(registry, JobRegistry):
            registry = JobRegistry()
            state.jobs = registry
        return registry
