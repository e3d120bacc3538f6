"""The monitor's rules as data: the PBOC large-value thresholds and the suspicion detectors'
parameters, read from a versioned JSON file (`rules/pboc-2016-3.json`) and validated once.

A change of rules is a new file with a new `version`; every alert records the version that
raised it, and `zhijin reindex` re-derives the alerts under the rules in force.  Amounts are
integer minor units per currency (CNY and USD, as Art. 5 states them); a currency without a
rule of its own raises no large-value report, and the amount-floored detectors skip it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from zhijin.aml import limits
from zhijin.chain.codec import canonical, sha256

__all__ = [
    "Channel",
    "LargeValueRule",
    "MemberRules",
    "Party",
    "RuleBook",
    "RuleSet",
    "Scope",
    "SuspicionPolicy",
    "default_rules",
    "load_rules",
    "parse_rules",
]

DEFAULT_RULES_FILE = "pboc-2016-3.json"


class Channel(StrEnum):
    CASH = "cash"  # money entering or leaving through a member's settlement account
    TRANSFER = "transfer"  # between two parties' accounts


class Party(StrEnum):
    INDIVIDUAL = "individual"  # a natural person's (customer) account
    ENTITY = "entity"  # a non-natural person's (merchant, escrow) account
    PLATFORM = "platform"  # the members' own books: settlement, fees, FX liquidity


class Scope(StrEnum):
    DOMESTIC = "domestic"
    CROSS_BORDER = "cross_border"  # an FX payment (payments' cross-border leg pair)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LargeValueRule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$", max_length=limits.RULE_CHARS_MAX)
    channel: Channel
    party: Literal["any", "individual", "entity"]
    scope: Literal["any", "domestic", "cross_border"]
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    threshold_minor: int = Field(gt=0, le=10**15)

    def matches(self, *, channel: str, party: str, scope: str, currency: str) -> bool:
        return (
            self.channel == channel
            and self.currency == currency
            and self.party in ("any", party)
            and self.scope in ("any", scope)
        )


class SuspicionPolicy(_Strict):
    structuring_band_bps: int = Field(ge=1, le=9_999)  # "just below": at least this share
    structuring_count_min: int = Field(ge=2, le=100)
    structuring_window_ms: int = Field(gt=0, le=limits.WINDOW_MS_MAX)
    fan_counterparties_min: int = Field(ge=2, le=1_000)
    fan_window_ms: int = Field(gt=0, le=limits.WINDOW_MS_MAX)
    cycle_hops_max: int = Field(ge=2, le=8)
    cycle_window_ms: int = Field(gt=0, le=limits.WINDOW_MS_MAX)
    cycle_amount_ratio_min_bps: int = Field(ge=1, le=10_000)
    pass_through_window_ms: int = Field(gt=0, le=limits.WINDOW_MS_MAX)
    pass_through_share_min_bps: int = Field(ge=1, le=10_000)
    scatter_intermediaries_min: int = Field(ge=2, le=1_000)
    scatter_window_ms: int = Field(gt=0, le=limits.WINDOW_MS_MAX)
    dormant_ms: int = Field(gt=0, le=10 * 365 * 24 * 3600 * 1000)
    floors_minor: dict[str, int]  # per currency: the smallest flow worth a pass-through alert


class RuleSet(_Strict):
    version: str = Field(min_length=1, max_length=limits.RULE_CHARS_MAX)
    source: str = Field(max_length=500)
    large_value: tuple[LargeValueRule, ...] = Field(min_length=1, max_length=200)
    report_due_working_days: int = Field(ge=1, le=30)
    suspicion: SuspicionPolicy
    # The rules matching each kind of movement, computed once per kind: the monitor asks for
    # every movement it evaluates.
    _matching: dict[tuple[str, str, str, str], tuple[LargeValueRule, ...]] = PrivateAttr(
        default_factory=dict
    )

    def large_value_rules(
        self, *, channel: str, party: str, scope: str, currency: str
    ) -> tuple[LargeValueRule, ...]:
        key = (channel, party, scope, currency)
        found = self._matching.get(key)
        if found is None:
            found = tuple(
                rule
                for rule in self.large_value
                if rule.matches(channel=channel, party=party, scope=scope, currency=currency)
            )
            self._matching[key] = found
        return found

    def of(self, _member: str) -> RuleSet:
        """A rule set is a book of one: every member's rules (the dry run, the evaluation)."""
        return self

    def sha256(self) -> str:
        return sha256(canonical(self.model_dump(mode="json"))).hex()

    def single_threshold(
        self, *, channel: str, party: str, scope: str, currency: str
    ) -> int | None:
        """The lowest threshold a movement of this kind meets: what structuring stays under."""
        rules = self.large_value_rules(channel=channel, party=party, scope=scope, currency=currency)
        return min((rule.threshold_minor for rule in rules), default=None)


class RuleBook(Protocol):
    def of(self, member: str) -> RuleSet:
        """The rules the member's customers are judged by."""
        ...


@dataclass(frozen=True, slots=True)
class MemberRules:
    """The rules in force per member (those a member's officers approved on chain, from the
    block after the approval), every other member on the default file."""

    default: RuleSet
    by_member: Mapping[str, RuleSet]

    def of(self, member: str) -> RuleSet:
        return self.by_member.get(member, self.default)


def parse_rules(body: Any) -> RuleSet:
    """A rule set from its JSON value, validated as a file is (strict: its canonical bytes
    are what is parsed, so a float or an unknown key fails the same way everywhere)."""
    return RuleSet.model_validate_json(canonical(body))


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file (pydantic strict: a float amount or an unknown key fails)."""
    return RuleSet.model_validate_json(path.read_bytes())


@cache
def default_rules() -> RuleSet:
    text = resources.files("zhijin.aml").joinpath("rules", DEFAULT_RULES_FILE).read_text("utf-8")
    return RuleSet.model_validate_json(text)
