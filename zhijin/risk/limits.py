"""Every bound of the risk domain, in one place (the schemas, the store and the engine use
these names)."""

from __future__ import annotations

ID_CHARS_MAX = 64
RULE_ID_PATTERN = r"^[a-z][a-z0-9_]{1,47}$"
EXPRESSION_CHARS_MAX = 1_000
EXPRESSION_NODES_MAX = 200  # syntax-tree nodes of one rule expression
REASON_CHARS_MIN = 4
REASON_CHARS_MAX = 500
RULE_TESTS_MIN = 1  # every rule proves itself on at least one case (a match)
RULE_TESTS_MAX = 50
RULES_ACTIVE_MAX = 200
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200

# The in-memory features: bounded per account and in accounts held.
HISTORY_PER_ACCOUNT_MAX = 200  # payments remembered per paying account (amount statistics)
ACCOUNTS_TRACKED_MAX = 200_000  # least recently used accounts are forgotten past this
PAYEE_SENDERS_MAX = 500  # inbound payments remembered per payee (mule score)
SEEN_TRANSFERS_MAX = 500_000  # transfer ids already learned from (repeated events)
REBUILD_WINDOW_MS = 30 * 24 * 3600 * 1000  # history read back at start
REBUILD_PAYMENTS_MAX = 200_000
CREDENTIAL_EVENTS_PAGE = 500  # audit-log rows read per catch-up

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
HISTORY_FOR_STATISTICS_MIN = 5  # fewer past payments: the amount z-score is missing

# The supervised model.
TRAIN_LABELS_MIN = 20  # labelled cases (both verdicts present) before a model is trained
TRAIN_ROWS_MAX = 100_000
