"""Look-alike login names: the UTS #39 skeleton of a normalised login.

Two logins that a person cannot tell apart on screen (`wang.xiaoming` and `wang.xiaomіng`
with a Cyrillic і, U+0456) must not both exist, or one can pose as the other to staff and to
the people they pay.  UTS #39 (Unicode Security Mechanisms, section 4) defines the test: two
strings are confusable when their *skeletons* are equal, where skeleton(s) = NFD(s), each
character replaced by its prototype from the Unicode confusables data, then NFD again.

The skeleton comes from ICU's SpoofChecker (through PyICU), the reference implementation of
UTS #39 kept in step with each Unicode release, rather than from a hand-copied table.  A
skeleton is for comparison only: it is never shown, and the login itself stays as typed
(normalised).  It is taken of the normalised login (NFKC + casefold, `normalize_login`),
because UTS #39's skeleton alone keeps fullwidth and case differences apart.
"""

from __future__ import annotations

import hashlib
import threading

import icu

__all__ = ["login_skeleton", "skeleton_digest"]

# ICU documents a configured SpoofChecker as safe to share between threads, but PyICU's
# wrapper gives no such promise; a lock costs nothing next to the Argon2 hash of a registration.
_CHECKER = icu.SpoofChecker()
_LOCK = threading.Lock()


def login_skeleton(normalized_login: str) -> str:
    """The UTS #39 skeleton of an already normalised login name."""
    with _LOCK:
        skeleton: str = _CHECKER.getSkeleton(0, normalized_login)
    return skeleton


def skeleton_digest(normalized_login: str) -> str:
    """SHA-256 (hex) of the skeleton: what the unique index holds, fixed in size."""
    return hashlib.sha256(login_skeleton(normalized_login).encode()).hexdigest()
