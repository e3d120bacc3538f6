"""Bounds of the notary domain, mirrored by its request schemas."""

TITLE_CHARS_MAX = 200
DOCUMENT_BYTES_MAX = 64 * 1024 * 1024  # for uploads through the API; the CLI hashes any size
