"""Settings, validated once at start.  Environment variables are prefixed `ZHIJIN_`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zhijin.chain import limits
from zhijin.platform.projections import PROJECTION_WAIT_S

__all__ = ["Settings"]

DEFAULT_DATA_DIR = Path("./var")
DEFAULT_PORT = 8000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHIJIN_", extra="ignore")

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
    # Identity (docs/identity.md): the vault's keys, cookies, password hashing, audit anchoring.
    vault_key: SecretStr | None = Field(
        default=None, description="vault keys: a key file's JSON, or 64 hex chars (master key)"
    )
    vault_key_file: Path | None = Field(
        default=None, description="vault key file (mode 0600); default DATA/vault.key"
    )
    cookie_secure: bool = Field(
        default=True,
        description="session cookie is Secure and __Host- (off only for plain-http dev)",
    )
    password_hashing: Literal["production", "test"] = Field(
        default="production", description="Argon2id parameters; `test` is cheap, never production"
    )
    geoip_db: Path | None = Field(
        default=None,
        description="a MaxMind-format City database, for the step-up location rules",
    )
    audit_anchor_interval_s: float = Field(
        default=60.0, ge=0, le=86_400, description="anchor the audit head this often; 0 = never"
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

    @property
    def vault_key_path(self) -> Path:
        return self.vault_key_file or self.data / "vault.key"

    def chain_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data / 'chain.db').resolve()}"

    def platform_database_url_resolved(self) -> str:
        if self.platform_database_url:
            return self.platform_database_url
        return f"sqlite:///{(self.data / 'platform.db').resolve()}"
