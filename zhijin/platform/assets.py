"""The web shell's static files: vendor packages from the npm registry and the shell's own.

Front-end packages are installed by `make assets` (`npm ci` over package-lock.json) into
`node_modules/` at the repository root; nothing built is committed.  Only the files named in
`VENDOR_FILES` are served, under `/static/vendor/<package>@<version>/<file>`: the version comes
from the installed package.json, so a new lock file gives new URLs and the year-long cache
(`immutable`) is never stale.  The shell's own files (zhijin/platform/web/static) are served
under `/static/shell/<content hash>/<file>` for the same reason.

A missing package is reported once at startup (an error in the log) and on every page or
asset that needs it (503, "run make assets"): the API keeps working without the browser
files, the pages do not pretend to.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from zhijin.chain.errors import ZhijinError

__all__ = [
    "ASSETS_ENV",
    "SHELL_FILES",
    "VENDOR_FILES",
    "AssetsMissing",
    "VendorFile",
    "check_assets",
    "media_type_of",
    "node_modules_dir",
    "shell_file",
    "shell_url",
    "vendor_file",
    "vendor_url",
]

log = logging.getLogger("zhijin.web")

ASSETS_ENV = "ZHIJIN_WEB_ASSETS"  # another node_modules directory (a packaged install)
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class VendorFile:
    """One file of an npm package that pages may load."""

    package: str
    path: str  # inside the package


# The allow-list: what pages load, by a short name templates use (`vendor_url("htmx")`).
VENDOR_FILES: dict[str, VendorFile] = {
    "htmx": VendorFile("htmx.org", "dist/htmx.min.js"),
    "echarts": VendorFile("echarts", "dist/echarts.min.js"),
    "swagger-ui.js": VendorFile("swagger-ui-dist", "swagger-ui-bundle.js"),
    "swagger-ui.css": VendorFile("swagger-ui-dist", "swagger-ui.css"),
    "swagger-favicon": VendorFile("swagger-ui-dist", "favicon-32x32.png"),
}
SHELL_FILES = ("shell.js", "shell.css", "chart.js", "docs.js", "hash.js", "proof.js")


class AssetsMissing(ZhijinError):
    code = "web_assets_missing"
    http_status = 503

    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            self.code,
            "the web app's front-end packages are not installed ("
            + ", ".join(missing)
            + "): run `make assets` (npm ci) in the repository",
        )


def node_modules_dir() -> Path:
    """Where the npm packages are: $ZHIJIN_WEB_ASSETS, else the repository's node_modules
    (the package is installed editable from the repository, as `make` does)."""
    configured = os.environ.get(ASSETS_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "node_modules"


@functools.cache
def _package_version(root: Path, package: str) -> str | None:
    manifest = root / package / "package.json"
    try:
        version = json.loads(manifest.read_text("utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None
    return str(version)


def _missing(root: Path) -> list[str]:
    missing = []
    for item in VENDOR_FILES.values():
        if (
            _package_version(root, item.package) is None
            or not (root / item.package / item.path).is_file()
        ):
            missing.append(f"{item.package}/{item.path}")
    return missing


def check_assets() -> list[str]:
    """The allow-listed files that are missing (logged as one error); empty when all are."""
    missing = _missing(node_modules_dir())
    if missing:
        log.error(
            "web assets missing under %s: %s; run `make assets`",
            node_modules_dir(),
            ", ".join(missing),
        )
    return missing


def vendor_url(name: str) -> str:
    """The versioned URL of an allow-listed vendor file; AssetsMissing when not installed."""
    item = VENDOR_FILES[name]
    version = _package_version(node_modules_dir(), item.package)
    if version is None:
        raise AssetsMissing([item.package])
    return f"/static/vendor/{item.package}@{version}/{item.path}"


def vendor_file(package_at_version: str, path: str) -> Path | None:
    """The file behind a vendor URL, or None unless it is allow-listed at that version."""
    package, _, version = package_at_version.rpartition("@")
    for item in VENDOR_FILES.values():
        if item.package == package and item.path == path:
            root = node_modules_dir()
            installed = _package_version(root, package)
            if installed is None:
                raise AssetsMissing([package])
            if installed != version:
                return None
            return root / package / path
    return None


@functools.cache
def _shell_bytes(name: str) -> bytes:
    # Shipped inside the package; they never change while the process runs.
    return resources.files("zhijin.platform").joinpath(f"web/static/{name}").read_bytes()


@functools.cache
def _shell_digest(name: str) -> str:
    return hashlib.sha256(_shell_bytes(name)).hexdigest()[:12]


def shell_url(name: str) -> str:
    if name not in SHELL_FILES:
        raise KeyError(name)
    return f"/static/shell/{_shell_digest(name)}/{name}"


def shell_file(digest: str, name: str) -> bytes | None:
    """The shell file behind a URL, or None (unknown name, or a digest of another build)."""
    if name not in SHELL_FILES or digest != _shell_digest(name):
        return None
    return _shell_bytes(name)


def media_type_of(path: str) -> str:
    return MEDIA_TYPES.get(Path(path).suffix, "application/octet-stream")
