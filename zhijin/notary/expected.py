"""What the notary needs of the node host beyond the platform's `Host`: the access audit log
(platform's, which identity's service writes too), where a user's own anchor is recorded."""

from __future__ import annotations

from typing import Protocol

from zhijin.platform.audit import AuditLog
from zhijin.platform.host import Host

__all__ = ["NotaryHost"]


class NotaryHost(Host, Protocol):
    audit: AuditLog
