"""The web shell's templates (templates/shell/, templates/explorer/) and static files
(static/): see docs/web.md.  The chain explorer's and the API docs' navigation entries live
here, light enough for the composition root's `CHAIN` manifest to name them."""

from zhijin.platform.module import ANYONE, SIGNED_IN, NavEntry, with_roles

__all__ = ["API_DOCS", "CHAIN_CHECK", "EXPLORER", "JOB_PROGRESS"]

EXPLORER = NavEntry("/explorer", "page.explorer", ANYONE, order=70)
# The auditor's chain verification (console_pages.py): the whole chain re-derived, read-only.
CHAIN_CHECK = NavEntry("/staff/chain", "page.chain_check", with_roles("auditor"), order=15)
# The progress of a long check a console started (platform/jobs.py): its starter's only.
JOB_PROGRESS = NavEntry("/staff/jobs", "page.job", SIGNED_IN, in_nav=False)
API_DOCS = NavEntry("/docs", "page.api_docs", ANYONE, order=950)
