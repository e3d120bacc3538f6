"""The generic errors every domain raises: each has a stable `code` the API maps one to one to a
problem+json response (a subclass or the `code` argument names the precise rule).

A domain's own failures stay in its own module (identity's `SessionInvalid`, payments'
`PaymentsError`); these are the ones that mean the same whoever raises them.
"""

from __future__ import annotations

from zhijin.chain.errors import ZhijinError

__all__ = ["Conflict", "DecryptionFailed", "Forbidden", "InvalidInput"]


class Forbidden(ZhijinError):
    """An authorisation refusal; the code names the rule (permission_denied, sod_..., ...)."""

    code = "forbidden"
    http_status = 403


class InvalidInput(ZhijinError):
    code = "invalid_input"
    http_status = 422


class Conflict(ZhijinError):
    code = "conflict"
    http_status = 409


class DecryptionFailed(ZhijinError):
    """AES-GCM refused a ciphertext (the field vault): it was changed, moved to another field,
    or the key is wrong."""

    code = "decryption_failed"
    http_status = 500
