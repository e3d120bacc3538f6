"""Every bound of the AML domain in one place (STYLE.md rule 7): the schemas, the monitor's
tables and the service read these."""

from zhijin.chain import limits as chain_limits

ID_CHARS_MAX = 64
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
ALERT_ID_CHARS = 32  # hex of a SHA-256 prefix: deterministic, so a reindex finds the same ids
SHA256_CHARS = 64
PARTY_CHARS_MAX = chain_limits.SENDER_CHARS_MAX  # a DID, "role:..." or "contract:..."
ACCOUNT_CHARS_MAX = 64
TRANSFER_CHARS_MAX = 80  # a client's id plus the contract's "~fee"-style suffixes
CURRENCY_CHARS = 3
DAY_CHARS = 10  # ISO date, Beijing time
RULE_CHARS_MAX = 48
# A member's rule-set version (the contract, the API, the pages): at most RULE_CHARS_MAX.
RULES_VERSION_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,47}$"
TYPOLOGY_CHARS_MAX = 24
STATUS_CHARS_MAX = 16
ROLE_CHARS_MAX = 32
ACTOR_CHARS_MAX = 80

# A case step's reason: required, long enough for a sentence, short enough for a log line.
REASON_CHARS_MIN = 4
REASON_CHARS_MAX = 500

PAGE_SIZE_MAX = chain_limits.PAGE_SIZE_MAX
PAGE_SIZE_DEFAULT = 50
# Rows one export may hold: a compliance officer's day; a larger range is split by the caller.
EXPORT_ROWS_MAX = 10_000
# Alerts one case gathers, transfers one alert names (the rest are counted, not listed).
CASE_ALERTS_MAX = 500
ALERT_TRANSFERS_MAX = 200
# A report's date range, in days.
REPORT_DAYS_MAX = 31

# The monitor's window: how far back a detector looks (the longest pattern window), and the
# bounds on what one evaluation may read, so a hot account never makes a block slow to apply.
WINDOW_MS_MAX = 7 * 24 * 3600 * 1000
WINDOW_ROWS_MAX = 2_000
CYCLE_EDGES_VISITED_MAX = 5_000

# The regulator's live feed: rows per poll, poll interval.
FEED_ROWS_PER_POLL_MAX = 500
FEED_POLL_S = 1.0
FEED_HEARTBEAT_S = 15.0
