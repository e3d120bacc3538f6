"""Lending's settings section (docs/lending.md, "The collections keeper")."""

from __future__ import annotations

from pydantic import Field

from zhijin.platform.settings import SettingsSection

__all__ = ["LendingSettings"]


class LendingSettings(SettingsSection):
    lending_keeper_interval_s: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="seconds between collection passes of the keeper; 0 = no keeper on this node",
    )
