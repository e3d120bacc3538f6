"""Risk's settings section (docs/risk.md, "Running it")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from zhijin.platform.settings import SettingsSection

__all__ = ["RiskSettings"]


class RiskSettings(SettingsSection):
    risk_screen: Literal["on", "off"] = Field(
        default="on",
        description="score every customer payment before it goes to the chain (the fraud "
        "screen); off = payments submit unscreened, as before the risk domain",
    )
