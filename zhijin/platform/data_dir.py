"""A data directory's plumbing: its genesis, this node's key, the operator token and the lock.

A data directory holds `genesis.json`, the chain database (SQLite by default), and for local
and demo networks the member key files under `keys/`.  Everything in it is owner-only
(directories 0700, files 0600, see chain/files.py); a secret file open to group or others
stops the node at start.  One process at a time may run a node on a data directory:
`node.lock` is held with an exclusive advisory lock.  The node host that opens one lives in the
composition root (zhijin/node/runtime.py); this part imports no domain.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import IO

from zhijin.chain.crypto import KeyPair
from zhijin.chain.errors import ZhijinError
from zhijin.chain.files import check_secret_file, loose_mode, touch_private
from zhijin.chain.genesis import Genesis
from zhijin.platform.settings import CoreSettings

__all__ = [
    "OPERATOR_TOKEN_FILE",
    "DataDirError",
    "check_data_dir",
    "check_operator_token",
    "load_genesis",
    "load_node_key",
    "lock_data_dir",
]

log = logging.getLogger("zhijin.platform")

OPERATOR_TOKEN_FILE = "operator-token"


class DataDirError(ZhijinError):
    code = "data_dir"


def load_genesis(settings: CoreSettings) -> Genesis:
    if not settings.genesis_path.exists():
        raise DataDirError(
            message=f"no genesis at {settings.genesis_path}: run `zhijin chain init --data {settings.data}`"
        )
    return Genesis.load(settings.genesis_path)


def load_node_key(settings: CoreSettings, genesis: Genesis) -> KeyPair:
    """This node's member key: `node_key` if set, else the key file of the solo orderer."""
    if settings.node_key is not None:
        return KeyPair.load(settings.node_key)
    for path in sorted(settings.keys_dir.glob("*.key")):
        key = KeyPair.load(path)
        if key.did == genesis.orderer:
            return key
    raise DataDirError(
        message=f"no key file for the orderer {genesis.orderer} in {settings.keys_dir}"
    )


def check_data_dir(settings: CoreSettings) -> None:
    """At start: refuse an operator token open to group or others (keys and vault keys are
    checked by their loaders), and warn when others may list or enter the data directory."""
    token = settings.data / OPERATOR_TOKEN_FILE
    if token.exists():
        check_secret_file(token, "operator token")
    mode = loose_mode(settings.data)
    if mode is not None:
        log.warning(
            "data directory %s has mode %04o: others may list it and open any file a mistake "
            "left readable; run `chmod 700 %s`",
            settings.data,
            mode,
            settings.data,
        )


def check_operator_token(settings: CoreSettings, presented: str) -> bool:
    path = settings.data / OPERATOR_TOKEN_FILE
    if not path.exists() or not presented:
        return False
    # Checked on every use too: a token loosened while the node runs stops working at once.
    check_secret_file(path, "operator token")
    expected = hashlib.sha256(path.read_text().strip().encode()).digest()
    return hmac.compare_digest(expected, hashlib.sha256(presented.encode()).digest())


def lock_data_dir(data: Path) -> IO[str]:
    touch_private(data / "node.lock")
    handle = open(data / "node.lock", "a+")  # noqa: SIM115 - held for the node's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise DataDirError(
            "data_dir_in_use",
            f"another zhijin process runs a node on {data}; stop it or use its HTTP API",
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid()}))
    handle.flush()
    return handle
