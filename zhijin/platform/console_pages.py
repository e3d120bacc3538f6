"""The consoles' chain-level pages: the auditor's verification of the whole chain (every
hash, root and signature re-derived from genesis, as `zhijin chain verify` does), and the
progress of any long check a console started (platform/jobs.py), which the page polls.

The chain belongs to no domain, so its verification is wired like the explorer (the root's
`CHAIN` manifest); its audience names the auditor's role by name, as the platform knows no
domain's types.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from zhijin.chain.verify import verify_chain
from zhijin.platform import jobs
from zhijin.platform.deps import PlatformDep
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import ShellViewer, page_access, render, same_origin
from zhijin.platform.web import CHAIN_CHECK, JOB_PROGRESS

__all__ = ["router"]

log = logging.getLogger("zhijin.web")

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
JobId = Annotated[str, Path(pattern=r"^job_[0-9a-f]{24}$")]


@router.get("/staff/chain", response_class=HTMLResponse)
def chain_page(
    request: Request,
    _viewer: Annotated[ShellViewer, page_access(CHAIN_CHECK)],
    platform: PlatformDep,
) -> HTMLResponse:
    return render(
        request,
        "consoles/chain.html",
        title=CHAIN_CHECK.label,
        height=platform.store.head_height(),
        read_only=True,
    )


@router.post("/staff/chain/verify", response_class=HTMLResponse)
def chain_verify(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(CHAIN_CHECK)],
    platform: PlatformDep,
) -> HTMLResponse:
    """Start the verification; the answer is the part that polls its progress."""
    same_origin(request)
    node = platform.node

    def work(progress: jobs.Progress) -> dict[str, Any]:
        total = max(0, platform.store.head_height() or 0) + 1
        report = verify_chain(
            platform.store,
            node.genesis,
            node.registry,
            progress=lambda height: progress(height + 1, total),
        )
        progress(report.blocks, total)
        log.info("chain verified from the console", extra={"ok": report.ok})
        return report.to_json()

    job = jobs.registry_of(request.app.state).start(
        kind="chain_verify",
        owner=str(viewer.user_id),
        template="consoles/_chain_verified.html",
        work=work,
    )
    return render(request, "shell/_job.html", title=CHAIN_CHECK.label, job=job)


@router.get("/staff/jobs/{job_id}", response_class=HTMLResponse)
def job_progress(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(JOB_PROGRESS)],
    job_id: JobId,
) -> HTMLResponse:
    """The job's progress part while it runs; its result part once done (no more polling)."""
    job = jobs.registry_of(request.app.state).get(job_id, owner=str(viewer.user_id))
    if not job.finished:
        template = "shell/_job.html"
    elif job.failed or job.result is None:
        template = "shell/_job_failed.html"
    else:
        template = job.template
    return render(request, template, title=JOB_PROGRESS.label, job=job)
