"""The governance contract's state: the consortium's members, written by genesis.

Member changes by quorum-signed governance transactions arrive with cluster mode; until then the
contract owns the `governance/` keys and exposes no methods, so no transaction can touch them.
"""

from __future__ import annotations

from zhijin.chain.contract import Contract

GOVERNANCE_CONTRACT = Contract(name="governance", version="1", methods={})
