"""Settings, validated once at start.  Environment variables are prefixed `ZHIJIN_`.

The node's settings are composed from sections: `CoreSettings` holds what the whole node reads
(the data directory, the databases, the ordering and projection knobs), and each domain's
manifest names its own `SettingsSection` (a pydantic model of the fields it reads).  The
composition root joins them into one flat model (`compose_settings`), so every field keeps its
one environment variable (`ZHIJIN_VAULT_KEY`) and keyword (`Settings(vault_key=...)`), and a
domain reads only its section: `IdentitySettings.of(settings).vault_key`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zhijin.chain import limits
from zhijin.platform.projections import PROJECTION_WAIT_S

__all__ = ["CoreSettings", "SettingsSection", "compose_settings"]

DEFAULT_DATA_DIR = Path("./var")
DEFAULT_PORT = 8000


class SettingsSection(BaseSettings):
    """One module's settings: each field from its own `ZHIJIN_<FIELD>` environment variable.

    A section is validated as part of the composed model at start; `of` hands a module its
    section of that model (the very object, typed as the section, when it is composed of it).
    """

    model_config = SettingsConfigDict(env_prefix="ZHIJIN_", extra="ignore")

    @classmethod
    def of(cls, settings: BaseModel) -> Self:
        if isinstance(settings, cls):
            return settings
        # Settings composed without this section (a tool's own): its fields at their defaults
        # unless the given model has them; the environment is not read again.
        values = {
            name: getattr(settings, name) for name in cls.model_fields if hasattr(settings, name)
        }
        return cls.model_validate(values)


class CoreSettings(SettingsSection):
    """The fields every part of a node reads."""

    data: Path = Field(default=DEFAULT_DATA_DIR, description="data directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite at DATA/chain.db"
    )
    platform_database_url: str | None = Field(
        default=None, description="off-chain data and query tables; default SQLite DATA/platform.db"
    )
    environment: Literal["local", "production"] = "local"
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    node_key: Path | None = Field(default=None, description="this node's member key file")
    block_txs_max: int = Field(default=limits.BLOCK_TXS_MAX, ge=1, le=limits.BLOCK_TXS_MAX)
    block_interval_ms: int = Field(default=limits.BLOCK_INTERVAL_MS, ge=0, le=60_000)
    wait_timeout_s: float = Field(default=30.0, gt=0, le=300)
    projection_wait_s: float = Field(
        default=PROJECTION_WAIT_S,
        gt=0,
        le=300,
        description="how long a write waits for the query table its answer reads before it"
        " answers 202 committed_not_yet_visible",
    )
    projector: Literal["process", "thread"] = Field(
        default="process",
        description="apply query tables in a separate process (a core of their own) or on a"
        " thread of the node's process",
    )
    gc: Literal["tuned", "default"] = Field(
        default="tuned",
        description="the node process's garbage collector: tuned (start-up objects frozen,"
        " fewer collections; zhijin/platform/gc_tuning.py) or CPython's default",
    )
    chain_pipeline: bool = Field(
        default=False,
        description="solo ordering: commit each block on a committer thread while the next one"
        ' executes (docs/chain.md "Performance"); cluster peers always commit synchronously',
    )

    @field_validator("database_url", "platform_database_url")
    @classmethod
    def _known_engine(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @property
    def genesis_path(self) -> Path:
        return self.data / "genesis.json"

    @property
    def keys_dir(self) -> Path:
        return self.data / "keys"

    def chain_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data / 'chain.db').resolve()}"

    def platform_database_url_resolved(self) -> str:
        if self.platform_database_url:
            return self.platform_database_url
        return f"sqlite:///{(self.data / 'platform.db').resolve()}"


def compose_settings(
    sections: Iterable[type[SettingsSection]], *, name: str = "Settings"
) -> type[CoreSettings]:
    """One flat model of the core fields and every section's (their validators included), in
    the given order; a field that two sections (or a section and the core) both name stops the
    composition, so each environment variable has exactly one owner."""
    sections = tuple(sections)
    owners: dict[str, str] = dict.fromkeys(CoreSettings.model_fields, "core")
    for section in sections:
        for field_name in section.model_fields:
            if field_name in owners:
                raise ValueError(
                    f"settings field {field_name!r} of {section.__name__} is already "
                    f"{owners[field_name]}'s"
                )
            owners[field_name] = section.__name__
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": "The node's settings: the core fields and each module's section.",
    }
    composed: type[CoreSettings] = type(name, (CoreSettings, *sections), namespace)
    return composed
