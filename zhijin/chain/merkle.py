"""RFC 6962 / RFC 9162 Merkle trees: block roots, the global log tree, and their proofs.

Three parts, from pure to stateful:

- Hashing and in-memory trees: `leaf_hash`, `node_hash`, `merkle_root` (the per-block tx and
  results roots) and `inclusion_proof_in` (a proof within one block's small list of leaves).
- Verifiers: `verify_inclusion` and `verify_consistency` are the RFC 9162 §2.1.3.2 and
  §2.1.4.2 algorithms, step for step, behind precondition checks that name what is wrong.
  `verify_*_json` parse the wire format strictly first.
- The global append-only log tree, `LogTree`, over a `NodeStore` of full subtrees.

Log tree storage.  A node (level, index) is the root of the FULL subtree of 2**level leaves
that starts at leaf index * 2**level; only full subtrees are ever stored, so a stored node never
changes once written.  Any tree size n is covered by one full subtree per set bit of n (its
"frontier"), and every node of an inclusion or consistency proof for a past size is either a
full subtree or the hash of a short run of them along the right edge.  So every root and proof,
for any past size, costs O(log n) stored nodes, gathered first and read in one `get_nodes` call.

Rollback.  `append` updates the tree's in-memory frontier at once and returns the new nodes,
which the caller writes in the same database transaction as the block.  If that transaction
fails, the caller throws the tree away and builds `LogTree(store, committed_size)` again: the
frontier reloads in one `get_nodes` call of at most 62 nodes.  This is the same path as a
restart, so there is no second recovery mechanism to keep correct.  Until its nodes are
stored, a new size serves `root()` (from the frontier) but not proofs or older roots; asking
for them raises `InvariantViolation` naming the missing node.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from zhijin.chain.errors import InvariantViolation, ZhijinError, invariant

__all__ = [
    "BATCH_LEAVES_MAX",
    "EMPTY_ROOT",
    "HASH_BYTES",
    "PROOF_HASHES_MAX",
    "TREE_SIZE_MAX",
    "LogTree",
    "MemoryNodeStore",
    "NodeStore",
    "ProofError",
    "consistency_to_json",
    "inclusion_proof_in",
    "inclusion_to_json",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "verify_consistency",
    "verify_consistency_json",
    "verify_inclusion",
    "verify_inclusion_json",
]

HASH_BYTES = 32
TREE_SIZE_MAX = 2**62  # sizes travel as signed 64-bit JSON integers; this leaves headroom
PROOF_HASHES_MAX = 64  # a real proof for TREE_SIZE_MAX has at most 62; refuse more unread
BATCH_LEAVES_MAX = 65_536  # one in-memory tree or one append; a block holds far fewer

EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_INCLUSION_KEYS = frozenset({"leaf_index", "tree_size", "leaf_hash", "root", "proof"})
_CONSISTENCY_KEYS = frozenset({"size1", "size2", "root1", "root2", "proof"})

Coord = tuple[int, int]  # (level, index) of a full subtree


class ProofError(ZhijinError):
    """A proof that does not verify ("bad_proof"), or a request for a proof or root that the
    tree cannot answer ("bad_size": an index or size outside the tree)."""

    code = "bad_proof"


# -- hashing and in-memory trees ----------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the prefix keeps a leaf from passing for an inner node."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(b"\x01" + left + right).digest()


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH (RFC 9162 §2.1.1) over leaves that are already leaf-hashed; EMPTY_ROOT if none."""
    _check_leaves(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


def inclusion_proof_in(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) (RFC 9162 §2.1.3.1) within an in-memory list of leaf hashes."""
    _check_leaves(leaf_hashes)
    if not 0 <= index < len(leaf_hashes):
        raise ProofError("bad_size", f"leaf {index} is not in a list of {len(leaf_hashes)}")
    proof: list[bytes] = []
    level = list(leaf_hashes)
    while len(level) > 1:
        # A last node without a sibling is promoted unchanged and adds nothing to the path.
        if index ^ 1 < len(level):
            proof.append(level[index ^ 1])
        level = _parent_level(level)
        index >>= 1
    return proof


def _parent_level(level: list[bytes]) -> list[bytes]:
    # Pairing neighbours and promoting an odd last node as is builds exactly RFC 6962's tree
    # (which splits at the largest power of two below n), without recursion or slicing.
    sha256 = _sha256
    parents = [
        sha256(b"\x01" + left + right).digest()
        for left, right in zip(level[0::2], level[1::2], strict=False)
    ]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def _check_leaves(leaf_hashes: Sequence[bytes]) -> None:
    invariant(len(leaf_hashes) <= BATCH_LEAVES_MAX, f"more than {BATCH_LEAVES_MAX} leaves")
    # Over the distinct types and lengths (C loops): blocks pass thousands of leaves here.
    invariant(
        all(issubclass(kind, bytes) for kind in set(map(type, leaf_hashes)))
        and set(map(len, leaf_hashes)) <= {HASH_BYTES},
        f"every leaf hash must be {HASH_BYTES} bytes",
    )


# -- verifiers (RFC 9162 §2.1.3.2 and §2.1.4.2) ---------------------------------------------------


def verify_inclusion(
    *, leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless `proof` shows `leaf_hash` at `leaf_index` in the tree `root`.

    The claimed root is only compared, so a root of the wrong length simply does not match.
    """
    _check_size("tree_size", tree_size)
    _check_size("leaf_index", leaf_index)
    if leaf_index >= tree_size:
        raise ProofError(message=f"leaf_index {leaf_index} is not below tree_size {tree_size}")
    _check_hash("leaf_hash", leaf_hash)
    _check_proof_hashes(proof)
    wanted = _inclusion_proof_length(leaf_index, tree_size)
    if len(proof) != wanted:
        raise ProofError(
            message=f"proof has {len(proof)} hashes; leaf {leaf_index} of a tree of "
            f"size {tree_size} needs {wanted}"
        )
    computed = _root_from_inclusion(leaf_index, tree_size, leaf_hash, proof)
    if computed != root:
        raise ProofError(message=f"proof leads to root {computed.hex()}, not {_show(root)}")


def verify_consistency(
    *, size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless `proof` shows the tree (size2, root2) extends (size1, root1).

    As in transparency-dev/merkle (whose test vectors we pass): size1 must be above 0, as
    every tree extends the empty one, so such a proof proves nothing; equal sizes need an
    empty proof and equal roots.
    """
    _check_size("size1", size1)
    _check_size("size2", size2)
    if size1 > size2:
        raise ProofError(message=f"size1 {size1} is above size2 {size2}")
    if size1 == 0:
        raise ProofError(message="a consistency proof from the empty tree proves nothing")
    _check_proof_hashes(proof)
    if size1 == size2:
        if proof:
            raise ProofError(message=f"equal sizes need an empty proof, got {len(proof)} hashes")
        if root1 != root2:
            raise ProofError(message=f"equal sizes but root1 {_show(root1)} != {_show(root2)}")
        return
    # root1 is hashed as the first path entry when size1 is a power of two (step 2).
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    wanted = _consistency_proof_length(size1, size2)
    if len(proof) != wanted:
        raise ProofError(
            message=f"proof has {len(proof)} hashes; sizes {size1} to {size2} need {wanted}"
        )
    first, second = _roots_from_consistency(size1, size2, root1, proof)
    if first != root1:
        raise ProofError(message=f"proof leads to root1 {first.hex()}, not {root1.hex()}")
    if second != root2:
        raise ProofError(message=f"proof leads to root2 {second.hex()}, not {root2.hex()}")


def _root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 steps 2 to 5; the length check above makes steps 4a and 5 redundant,
    but they stay so that this reads as the RFC does."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(message="proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _shift_while_even(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(message="proof is shorter than the path to the root")
    return r


def _roots_from_consistency(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2 to 7: the roots of size1 and size2 that the proof implies."""
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(message="proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                fn, sn = _shift_while_even(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(message="proof is shorter than the path to the root")
    return fr, sr


def _shift_while_even(fn: int, sn: int) -> tuple[int, int]:
    # Right-shift both until LSB(fn) is set or fn is 0: skips the levels where the node on
    # the path is the last one and has no sibling.  Bounded by fn's at most 62 bits.
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def _inclusion_proof_length(index: int, size: int) -> int:
    # Levels below the node where the paths to `index` and to the last leaf part, plus one
    # left sibling for each set bit of `index` above that point.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_proof_length(size1: int, size2: int) -> int:
    # The inclusion path of the last leaf of size1, starting at the largest full subtree that
    # ends there, plus that subtree's hash unless it is the whole of tree size1.
    shift = _trailing_zeros(size1)
    length = _inclusion_proof_length(size1 - 1, size2) - shift
    return length if size1 == 1 << shift else length + 1


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1


def _check_size(name: str, value: int) -> None:
    # `type(...) is int` refuses bools, which are ints to Python but not sizes on the wire.
    if type(value) is not int or not 0 <= value <= TREE_SIZE_MAX:
        raise ProofError(message=f"{name} must be an integer in 0..2**62, got {value!r}")


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise ProofError(message=f"{name} must be {HASH_BYTES} bytes, got {_show(value)}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    if isinstance(proof, bytes | str) or not isinstance(proof, Sequence):
        raise ProofError(message="proof must be a sequence of hashes")
    if len(proof) > PROOF_HASHES_MAX:
        raise ProofError(message=f"proof has {len(proof)} hashes, more than {PROOF_HASHES_MAX}")
    for position, item in enumerate(proof):
        _check_hash(f"proof[{position}]", item)


def _show(value: object) -> str:
    """A short description of a claimed hash for an error message."""
    if isinstance(value, bytes):
        return value.hex() if len(value) == HASH_BYTES else f"{len(value)} bytes"
    return type(value).__name__


# -- wire format ----------------------------------------------------------------------------------


def inclusion_to_json(
    *, leaf_index: int, tree_size: int, leaf_hash: bytes, root: bytes, proof: Sequence[bytes]
) -> dict[str, Any]:
    """The wire form of an inclusion proof (hashes as lowercase hex)."""
    return {
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "leaf_hash": leaf_hash.hex(),
        "root": root.hex(),
        "proof": [p.hex() for p in proof],
    }


def consistency_to_json(
    *, size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> dict[str, Any]:
    """The wire form of a consistency proof (hashes as lowercase hex)."""
    return {
        "size1": size1,
        "size2": size2,
        "root1": root1.hex(),
        "root2": root2.hex(),
        "proof": [p.hex() for p in proof],
    }


def verify_inclusion_json(obj: Any) -> None:
    """Parse a wire inclusion proof strictly and verify it; ProofError on anything wrong."""
    fields = _json_object(obj, _INCLUSION_KEYS)
    verify_inclusion(
        leaf_index=_json_size(fields, "leaf_index"),
        tree_size=_json_size(fields, "tree_size"),
        leaf_hash=_json_hash(fields["leaf_hash"], "leaf_hash"),
        proof=_json_proof(fields["proof"]),
        root=_json_hash(fields["root"], "root"),
    )


def verify_consistency_json(obj: Any) -> None:
    """Parse a wire consistency proof strictly and verify it; ProofError on anything wrong."""
    fields = _json_object(obj, _CONSISTENCY_KEYS)
    verify_consistency(
        size1=_json_size(fields, "size1"),
        size2=_json_size(fields, "size2"),
        root1=_json_hash(fields["root1"], "root1"),
        root2=_json_hash(fields["root2"], "root2"),
        proof=_json_proof(fields["proof"]),
    )


def _json_object(obj: Any, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ProofError(message=f"a proof must be a JSON object, got {type(obj).__name__}")
    missing = sorted(keys - obj.keys())
    if missing:
        raise ProofError(message=f"proof object lacks {', '.join(missing)}")
    unknown = sorted(str(key) for key in obj.keys() - keys)
    if unknown:
        raise ProofError(message=f"proof object has unknown keys {', '.join(unknown)}")
    return obj


def _json_size(fields: Mapping[str, Any], name: str) -> int:
    value = fields[name]
    _check_size(name, value)
    return int(value)


def _json_hash(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise ProofError(message=f"{name} must be 64 lowercase hex digits, got {value!r:.80}")
    return bytes.fromhex(value)


def _json_proof(value: Any) -> list[bytes]:
    if not isinstance(value, list):
        raise ProofError(message=f"proof must be a JSON array, got {type(value).__name__}")
    if len(value) > PROOF_HASHES_MAX:
        raise ProofError(message=f"proof has {len(value)} hashes, more than {PROOF_HASHES_MAX}")
    return [_json_hash(item, f"proof[{position}]") for position, item in enumerate(value)]


# -- the global log tree --------------------------------------------------------------------------


class NodeStore(Protocol):
    """Where the log tree's full subtrees live (the chain database, or memory)."""

    def get_nodes(self, coords: Collection[Coord]) -> dict[Coord, bytes]:
        """The stored hashes of those (level, index) nodes; absent ones are left out."""
        ...


class MemoryNodeStore:
    """A NodeStore in a dict, for replays (`chain verify`) and tests."""

    def __init__(self) -> None:
        self._nodes: dict[Coord, bytes] = {}

    def get_nodes(self, coords: Collection[Coord]) -> dict[Coord, bytes]:
        nodes = self._nodes
        return {coord: nodes[coord] for coord in coords if coord in nodes}

    def put_nodes(self, rows: Iterable[tuple[int, int, bytes]]) -> None:
        """Store (level, index, hash) rows; rewriting a node with another hash is refused,
        because a full subtree, once written, is history."""
        nodes = self._nodes
        for level, index, digest in rows:
            if nodes.setdefault((level, index), digest) != digest:
                raise InvariantViolation(f"log node ({level}, {index}) would change")

    def __len__(self) -> int:
        return len(self._nodes)


@dataclass(frozen=True, slots=True)
class _PathPlan:
    """Which stored nodes make up the path from one node up to the root of a tree size."""

    siblings: tuple[Coord, ...]  # below the fork: full subtrees, lowest level first
    right: tuple[Coord, ...]  # left to right; together they hash to the fork's sibling
    left: tuple[Coord, ...]  # full subtrees left of the fork, nearest (lowest) first

    def coords(self) -> list[Coord]:
        return [*self.siblings, *self.right, *self.left]

    def hashes(self, nodes: Mapping[Coord, bytes]) -> list[bytes]:
        proof = [nodes[coord] for coord in self.siblings]
        if self.right:
            proof.append(_fold([nodes[coord] for coord in self.right]))
        proof.extend(nodes[coord] for coord in self.left)
        return proof


def _path_plan(level: int, index: int, size: int) -> _PathPlan:
    """The path of node (level, index) in the tree of `size` leaves (as transparency-dev's
    proof.nodes).  The fork is the ancestor where this path parts from the path to the last
    leaf: everything under the fork is full, and its sibling covers the ragged right edge."""
    inner = (index ^ (size >> level)).bit_length() - 1
    fork_level = level + inner
    begin = (index >> inner) << fork_level
    end = begin + (1 << fork_level)
    siblings = tuple((level + up, (index >> up) ^ 1) for up in range(inner))
    left = tuple(reversed(_range_coords(0, begin)))
    return _PathPlan(siblings, tuple(_range_coords(end, size)), left)


def _range_coords(begin: int, end: int) -> list[Coord]:
    """The full subtrees covering leaves [begin, end), largest (leftmost) first.

    Only called where `begin` is 0 or a multiple of a power of two above end - begin, so the
    cover has one subtree per set bit of end - begin."""
    coords: list[Coord] = []
    count, position = end - begin, begin
    for level in range(count.bit_length() - 1, -1, -1):
        if count >> level & 1:
            coords.append((level, position >> level))
            position += 1 << level
    return coords


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The root over consecutive full subtrees, largest first, as RFC 6962 pairs them: the
    smaller ones on the right combine first."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


class LogTree:
    """The global append-only RFC 6962 tree over every committed tx, backed by a NodeStore.

    Only the frontier (one hash per set bit of `size`) is held in memory.  See the module
    docstring for how the caller persists `append`'s nodes and how it rolls back.
    """

    def __init__(self, store: NodeStore, size: int) -> None:
        invariant(type(size) is int and 0 <= size <= TREE_SIZE_MAX, f"bad tree size {size!r}")
        self._store = store
        self._size = size
        self._frontier = self._load(_range_coords(0, size))

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf_hashes: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
        """Add leaves; return every new full subtree as (level, index, hash), leaves included,
        for the caller to store in the block's database transaction.

        All or nothing: the inputs are checked first and the frontier is swapped at the end.
        """
        _check_leaves(leaf_hashes)
        invariant(self._size + len(leaf_hashes) <= TREE_SIZE_MAX, "log tree would be too big")
        frontier = list(self._frontier)
        size = self._size
        new_nodes: list[tuple[int, int, bytes]] = []
        sha256 = _sha256
        for leaf in leaf_hashes:
            new_nodes.append((0, size, leaf))
            frontier.append(leaf)
            size += 1
            # Each trailing zero bit of the new size closes one more full subtree.
            level = 0
            while not size >> level & 1:
                right = frontier.pop()
                parent = sha256(b"\x01" + frontier.pop() + right).digest()
                frontier.append(parent)
                level += 1
                new_nodes.append((level, (size >> level) - 1, parent))
        self._frontier, self._size = frontier, size
        return new_nodes

    def root(self, size: int | None = None) -> bytes:
        """The root at `size` (default: now) from at most 62 stored nodes."""
        if size is None or size == self._size:
            hashes = self._frontier
        else:
            self._check_request(0 <= size <= self._size, f"size {size}")
            hashes = self._load(_range_coords(0, size))
        return _fold(hashes) if hashes else EMPTY_ROOT

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """PATH(leaf_index, D[tree_size]) for any past tree size, in one store read."""
        self._check_request(
            0 <= leaf_index < tree_size <= self._size,
            f"leaf {leaf_index} at size {tree_size}",
        )
        plan = _path_plan(0, leaf_index, tree_size)
        return plan.hashes(self._fetch(plan.coords()))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """PROOF(size1, D[size2]) for 0 < size1 <= size2 <= size, in one store read."""
        self._check_request(0 < size1 <= size2 <= self._size, f"sizes {size1} to {size2}")
        if size1 == size2:
            return []
        # Start from the largest full subtree that ends at size1; its own hash is left out
        # when it is the whole of tree size1, since the verifier holds that root already.
        level = _trailing_zeros(size1)
        index = (size1 - 1) >> level
        plan = _path_plan(level, index, size2)
        seed = [(level, index)] if index else []
        nodes = self._fetch([*seed, *plan.coords()])
        return [nodes[coord] for coord in seed] + plan.hashes(nodes)

    def _check_request(self, ok: bool, what: str) -> None:
        if not ok:
            raise ProofError("bad_size", f"{what} is outside the log tree of size {self._size}")

    def _load(self, coords: list[Coord]) -> list[bytes]:
        nodes = self._fetch(coords)
        return [nodes[coord] for coord in coords]

    def _fetch(self, coords: list[Coord]) -> dict[Coord, bytes]:
        if not coords:
            return {}
        nodes = self._store.get_nodes(coords)
        missing = [coord for coord in coords if len(nodes.get(coord, b"")) != HASH_BYTES]
        invariant(
            not missing,
            f"log tree nodes {missing[:4]} are missing from the store (were append's nodes "
            "stored?)",
        )
        return nodes
