"""The node's settings: the core fields and every module's section, one flat model.

`Settings` is composed once, at import, from `MODULES` (`modules.settings_sections`): each field
keeps its environment variable (`ZHIJIN_<FIELD>`) and its keyword, and is validated once, when
the settings are built.  A module reads its own section (`IdentitySettings.of(settings)`).
"""

from __future__ import annotations

from zhijin.node.modules import settings_sections
from zhijin.platform.settings import CoreSettings, compose_settings

__all__ = ["CoreSettings", "Settings"]

Settings = compose_settings(settings_sections())
