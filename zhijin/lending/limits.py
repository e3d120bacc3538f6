"""Every bound of the lending domain in one place (STYLE.md rule 7).

The request schemas (API and CLI), the contract and the query tables all read these: one limit,
one source.  The contract enforces them again because a transaction may arrive from any
member's SDK.
"""

from zhijin.chain import limits as chain_limits

# Client-chosen ids (products, loans, payments) sit in state keys and account ids unescaped;
# a loan's payments accounts are "lnp-<loan id>" and "lnc-<loan id>", inside payments' 64.
ID_CHARS_MAX = 48
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,47}$"
ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
OFFICER_CHARS_MAX = 64
OFFICER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
DID_CHARS_MAX = chain_limits.SENDER_CHARS_MAX
CURRENCY_PATTERN = r"^[A-Z]{3}$"
REASON_CHARS_MAX = 200

# Money and rates.  Rates are basis points a year; 36 % is the ceiling Chinese courts enforce.
AMOUNT_MINOR_MAX = 10**12  # 10 billion yuan in fen: far above any consumer or SME loan
RATE_BPS_MAX = 3_600
LPR_BPS_MAX = 2_000
SPREAD_BPS_MIN = -1_000  # below LPR for the best customers, within reason
SPREAD_BPS_MAX = 3_000
PENALTY_UPLIFT_BPS_DEFAULT = 5_000  # 罚息: the contract rate plus 50 %
PENALTY_UPLIFT_BPS_MAX = 10_000  # at most double the contract rate
TERM_MONTHS_MAX = 360
GRACE_DAYS_MAX = 30
DEFAULT_AFTER_DAYS_MIN = 1
DEFAULT_AFTER_DAYS_MAX = 720
BUCKETS_MAX = 8
BUCKET_NAME_PATTERN = r"^[A-Z][A-Z0-9+]{0,7}$"
COLLATERAL_RATIO_BPS_MAX = 50_000  # 500 % of the loan at most
DTI_BPS_MAX = 100_000  # a debt-to-income of 1000 %: anything above is absurd input
SCORE_MAX = 1_000  # credit's scorecard points range
KYC_LEVEL_MAX = 3
LATE_FEE_MINOR_MAX = 10**8

# Work per tx and per keeper pass: every loop has a bound.
COLLECTIONS_PER_PASS_MAX = 20_000
KEEPER_BATCH_MAX = 100
HISTORY_MAX = 200  # transitions kept on a loan record (a loan has a dozen in its life)
PAYMENTS_PER_LOAN_MAX = 2_000

# The keeper reminds a borrower this long before a due day (at most once per instalment).
REMINDER_MS = 3 * 24 * 3600 * 1000

PAGE_SIZE_MAX = chain_limits.PAGE_SIZE_MAX
PAGE_SIZE_DEFAULT = 50
TIME_MS_MAX = 2**63 - 1
BODY_BYTES_MAX = 16 * 1024

# Step-up of an early repayment (acting.py): below this 24 h total of what the customer moved
# (CNY fen, the policy's reference currency) no rule is asked.  The same floor as payments'
# `payments.limits.STEP_UP_FROM_MINOR` (a test holds them equal): a repayment is money out of
# the customer's account like any payment, so it gets no lower and no higher floor.
STEP_UP_FROM_MINOR = 100_000
