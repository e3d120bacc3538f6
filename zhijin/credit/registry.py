"""The node's model files: one file per registered model, named by its SHA-256, under
`DATA/credit/models/`, and the scorers built from them.

The chain says which hashes are registered and approved; this directory holds the bytes.
Serving checks that the file still has its registered hash: a scorer is built only after
`artifact.load_model(path, expected_sha256=...)` re-hashed the file, and it is rebuilt (so
re-hashed) whenever the file's inode, size or modification time changes, which a stat per
decision notices.  A file changed in place is refused with `model_hash_mismatch`, naming the
model and both hashes; a missing file with `model_file_missing`.  A replay re-hashes always.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.credit.artifact import MODEL_BYTES_MAX, LoadedModel, load_model
from zhijin.credit.scoring import Scorer

__all__ = ["ModelFileMissing", "ModelFileTooLarge", "ModelStore", "file_sha256"]

MODELS_DIR = Path("credit") / "models"
SCORERS_CACHED_MAX = 16  # a member serves one or two models at a time


class ModelFileMissing(NotFound):
    code = "model_file_missing"


class ModelFileTooLarge(ZhijinError):
    code = "model_file_too_large"
    http_status = 413


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of the file's bytes, read in chunks, refused past the size bound."""
    if path.stat().st_size > MODEL_BYTES_MAX:
        raise ModelFileTooLarge(message=f"{path.name} is above {MODEL_BYTES_MAX} bytes")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Cached:
    stat: tuple[int, int, int]
    model: LoadedModel
    scorer: Scorer


def _stat(path: Path) -> tuple[int, int, int]:
    result = path.stat()
    return (result.st_ino, result.st_size, result.st_mtime_ns)


class ModelStore:
    """Model files of one data directory, and a small cache of their scorers."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / MODELS_DIR
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}

    def path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.json"

    def add(self, source: Path) -> str:
        """Copy a model file in under its hash (atomically); returns the hash."""
        sha256 = file_sha256(source)
        load_model(source, expected_sha256=sha256)  # it must be a model, not just bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(sha256)
        if target.exists() and file_sha256(target) == sha256:
            return sha256
        fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".part")
        os.close(fd)
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
        return sha256

    def add_bytes(self, content: bytes) -> str:
        """`add` for a file that arrived as a request body."""
        if len(content) > MODEL_BYTES_MAX:
            raise ModelFileTooLarge(message=f"a model file is at most {MODEL_BYTES_MAX} bytes")
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            return self.add(Path(temporary))
        finally:
            Path(temporary).unlink(missing_ok=True)

    def _load(self, sha256: str) -> _Cached:
        path = self.path(sha256)
        if not path.exists():
            raise ModelFileMissing(
                message=f"model {sha256} is registered but its file is not on this node",
                model_sha256=sha256,
            )
        stat = _stat(path)
        model = load_model(path, expected_sha256=sha256)  # ModelTampered names both hashes
        return _Cached(stat, model, Scorer.from_model(model))

    def scorer(self, sha256: str) -> Scorer:
        """The scorer of a registered model whose file still has its hash."""
        return self._entry(sha256).scorer

    def model(self, sha256: str) -> LoadedModel:
        return self._entry(sha256).model

    def _entry(self, sha256: str) -> _Cached:
        cached = self._cache.get(sha256)
        path = self.path(sha256)
        try:
            unchanged = cached is not None and _stat(path) == cached.stat
        except FileNotFoundError:
            unchanged = False
        if cached is not None and unchanged:
            return cached
        with self._lock:
            entry = self._load(sha256)
            if len(self._cache) >= SCORERS_CACHED_MAX:
                self._cache.pop(next(iter(self._cache)))
            self._cache[sha256] = entry
            return entry

    def verified_scorer(self, sha256: str) -> Scorer:
        """A scorer built from the file just re-hashed, whatever the cache holds (replays)."""
        with self._lock:
            entry = self._load(sha256)
            self._cache[sha256] = entry
            return entry.scorer
