"""Where domains and the request plumbing still find the node host type (`Platform`).

The host lives in the composition root (zhijin/node/runtime.py) and the data directory's
plumbing in zhijin/platform/data_dir.py.  Payments (api, service, demo, cli), the identity and
notary CLIs, and `deps`/`chain_read` here name `Platform` in their signatures; until each
declares the small host protocol it needs (an `expected.py`), they import it from this one
place, which is the last edge from the plumbing up to the root.
"""

from __future__ import annotations

from zhijin.node.runtime import Platform, init_data_dir
from zhijin.platform.data_dir import (
    DataDirError,
    check_data_dir,
    check_operator_token,
    load_genesis,
    load_node_key,
)

__all__ = [
    "DataDirError",
    "Platform",
    "check_data_dir",
    "check_operator_token",
    "init_data_dir",
    "load_genesis",
    "load_node_key",
]
