"""Every bound of the plumbing's stores in one place (STYLE.md rule 7): the field vault and the
access audit log.  The HTTP edge's bounds are in `http_limits.py`.
"""

from __future__ import annotations

# -- vault ----------------------------------------------------------------------------------
VAULT_KEY_ID_CHARS_MAX = 32
VAULT_FIELD_BYTES_MAX = 1024 * 1024  # a field, e.g. one scanned document page
VAULT_DOCUMENT_BYTES_MAX = 16 * 1024 * 1024
VAULT_ROTATE_BATCH_MAX = 500

# -- audit ----------------------------------------------------------------------------------
AUDIT_TEXT_CHARS_MAX = 500
AUDIT_VERIFY_PAGE_ROWS = 1_000
AUDIT_APPEND_RETRIES_MAX = 8
