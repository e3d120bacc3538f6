"""Every bound of the credit domain in one place (STYLE.md rule 7).

The request schemas (API and CLI), the contract and the query tables all read these: one
limit, one source.  The contract enforces them again because a transaction may arrive from any
member's SDK.
"""

from zhijin.chain import limits as chain_limits

# Client-chosen ids (decisions, policies, repayments) sit in state keys unescaped.
ID_CHARS_MAX = 64
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
SHA256_CHARS = 64
# An officer is named on chain by the platform's opaque staff user id, never by name.
OFFICER_CHARS_MAX = ID_CHARS_MAX
MEMBER_CHARS_MAX = chain_limits.SENDER_CHARS_MAX
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,47}$"
MODEL_NAME_CHARS_MAX = 48
MODEL_VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$"
MODEL_VERSION_CHARS_MAX = 32

# Scores.  Scorecard points live in a fixed, generous range; a probability of default travels
# as an integer number of parts per million (the chain takes no floats).
POINTS_MIN = 0
POINTS_MAX = 1_000
PD_PPM_MAX = 1_000_000
BEHAVIOUR_SCORE_MIN = 0
BEHAVIOUR_SCORE_MAX = 1_000

# Policies: a few tiers, a version counter, limits in minor units.
POLICY_VERSION_MAX = 1_000_000
POLICY_TIERS_MAX = 12
PRICE_TIER_PATTERN = r"^[A-Z][A-Z0-9]{0,7}$"
PRICE_TIER_CHARS_MAX = 8
RATE_BPS_MAX = 3_600  # 36 % a year: the ceiling Chinese courts enforce on lending rates
LIMIT_MINOR_MAX = 10**12  # 10 billion yuan in fen: far above any consumer or SME line
INCOME_MULTIPLE_MAX = 60  # a limit of at most five years of monthly income
CURRENCY_PATTERN = r"^[A-Z]{3}$"

# Decisions: at most four reasons (ECOA/Reg B practice), each code short.
REASONS_MAX = 4
REASON_CODE_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
REASON_CODE_CHARS_MAX = 48
REASON_TEXT_CHARS_MAX = 200
OUTCOME_CHARS_MAX = 8

# Repayment facts a member records (lending's instalments, once it lands, call the contract).
REPAYMENT_GRACE_MS = 3 * 24 * 3600 * 1000  # paid within three days of the due time is on time
TIME_MS_MAX = 2**63 - 1

# Behaviour facts: how far back the platform looks, and how many rows a summary reads.
BEHAVIOUR_WINDOW_MS = 90 * 24 * 3600 * 1000
BEHAVIOUR_HISTORY_MAX = 500

# Model files are bounded by `artifact.MODEL_BYTES_MAX` (the file format's own limit).
# The applicant's raw fields in a decide request.
DECIDE_BODY_BYTES_MAX = 16 * 1024
POLICY_BODY_BYTES_MAX = 16 * 1024
PAGE_SIZE_MAX = chain_limits.PAGE_SIZE_MAX
PAGE_SIZE_DEFAULT = 50
# A page of decisions ends at its last row, "<decided_at_ms>:<decision_id>": the time alone
# would skip the rows of a millisecond that a page boundary splits.
DECISION_CURSOR_PATTERN = r"^[0-9]{1,15}:" + ID_PATTERN.removeprefix("^")
DECISION_CURSOR_CHARS_MAX = 15 + 1 + ID_CHARS_MAX
# A model file uploaded through the API (the CLI registers larger files from disk).
MODEL_UPLOAD_BYTES_MAX = 8 * 1024 * 1024
# The ledger's ids and owners as credit's flow consumer keeps them (payments' bounds: an
# account id is at most 64 characters, a transfer id 128, an owner 256).
FLOW_ID_CHARS_MAX = 128
FLOW_OWNER_CHARS_MAX = 256
# How long a score or decision waits for the ledger's consumer to apply the committed blocks.
FLOWS_WAIT_S = 2.0
