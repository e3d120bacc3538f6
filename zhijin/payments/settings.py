"""Payments' settings section (docs/payments.md, "Opening policy")."""

from __future__ import annotations

from pydantic import Field

from zhijin.platform.settings import SettingsSection

__all__ = ["PaymentsSettings"]


class PaymentsSettings(SettingsSection):
    # The accounts opened at once, without an officer, when a customer's KYC is approved.
    # Parsed and checked by payments at start (payments/opening.py).
    account_auto_open: str = Field(
        default="individual:CNY",
        max_length=200,
        description="comma-separated <user kind>:<currency>[:<account kind>]; empty = none",
    )
