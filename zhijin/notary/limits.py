"""Bounds of the notary domain, mirrored by its request schemas."""

from zhijin.chain import limits as chain_limits

TITLE_CHARS_MAX = 200
OWNER_CHARS_MAX = chain_limits.SENDER_CHARS_MAX  # an anchor's owner is its tx's sender
PAGE_SIZE_MAX = chain_limits.PAGE_SIZE_MAX
PAGE_SIZE_DEFAULT = 50
DOCUMENT_BYTES_MAX = 64 * 1024 * 1024  # for uploads through the API; the CLI hashes any size
SIGNATURES_MAX = 1_000  # block or tree-head signatures one receipt may carry (one per member)
MEMBERSHIP_CHANGES_MAX = 10_000  # governance blocks one receipt may replay (bounded work)
