"""Every bound of the identity domain in one place (STYLE.md rule 7).

Request schemas (api.py) mirror these; the service checks them again so that a caller that
skips the schema (the CLI, a test, another domain) still cannot exceed them.
"""

from __future__ import annotations

# -- logins and passwords -------------------------------------------------------------------
LOGIN_CHARS_MIN = 3
LOGIN_CHARS_MAX = 128
# NIST SP 800-63B asks for at least 8; a finance platform asks for more.  The maximum bounds
# the work one request can make Argon2 do (it hashes the whole input once more per call).
PASSWORD_CHARS_MIN = 12
PASSWORD_CHARS_MAX = 256

# Lockout: after this many consecutive failures for one login name (known or not, so the
# behaviour never reveals which names exist) further attempts are refused for a while, and the
# wait doubles with each further lockout up to the maximum.
LOGIN_FAILURES_MAX = 5
LOCKOUT_MS = 15 * 60 * 1000
LOCKOUT_MS_MAX = 24 * 3600 * 1000

# Concurrent Argon2 computations per process: each takes `memory_kib` of RAM, so this bounds
# the memory a burst of logins can take (8 x 64 MiB = 512 MiB with production parameters).
PASSWORD_HASHES_CONCURRENT_MAX = 8

# -- rate limits (token buckets: capacity, then one token back every refill interval) ---------
RATE_LOGIN_PER_IP_CAPACITY = 30
RATE_LOGIN_PER_IP_REFILL_MS = 2_000
RATE_LOGIN_PER_ACCOUNT_CAPACITY = 10
RATE_LOGIN_PER_ACCOUNT_REFILL_MS = 60_000
RATE_REGISTER_PER_IP_CAPACITY = 5
RATE_REGISTER_PER_IP_REFILL_MS = 10 * 60_000
RATE_MFA_PER_USER_CAPACITY = 10
RATE_MFA_PER_USER_REFILL_MS = 60_000
RATE_BUCKET_KEY_CHARS_MAX = 200

# -- sessions and tokens --------------------------------------------------------------------
SESSION_TOKEN_BYTES = 32  # 256 bits from the OS CSPRNG
CSRF_TOKEN_BYTES = 32
SESSION_IDLE_MS = 30 * 60 * 1000
SESSION_ABSOLUTE_MS = 12 * 3600 * 1000
API_TOKEN_IDLE_MS = 30 * 24 * 3600 * 1000
API_TOKEN_ABSOLUTE_MS = 90 * 24 * 3600 * 1000
# Touching last_seen on every request would write on every read; a coarser step is enough for
# an idle timeout measured in minutes.
SESSION_TOUCH_INTERVAL_MS = 60 * 1000
SESSIONS_PER_USER_MAX = 20  # the oldest is revoked when a new one would pass this
API_TOKEN_NAME_CHARS_MAX = 64
# Re-authentication: sensitive account changes need a password or TOTP check this recent.
REAUTH_MAX_AGE_MS = 5 * 60 * 1000
KEY_EXPORT_FRESH_MFA_MS = 2 * 60 * 1000  # an authenticator code this recent exports keys

# -- TOTP (RFC 6238) ------------------------------------------------------------------------
TOTP_SECRET_BYTES = 20  # 160 bits, the RFC 4226 recommendation for HMAC-SHA1
TOTP_DIGITS = 6
TOTP_STEP_S = 30
TOTP_WINDOW_STEPS = 1  # accept the previous and next step too, for clock drift
TOTP_ISSUER = "zhijin"
RECOVERY_CODES_COUNT = 10
RECOVERY_CODE_BYTES = 10  # 80 bits, so an unsalted SHA-256 of it cannot be searched

# -- step-up --------------------------------------------------------------------------------
STEP_UP_RULES_MAX = 64
STEP_UP_REASON_CHARS_MAX = 280  # a rule's reason, in each language
STEP_UP_CONDITION_DEPTH_MAX = 4
STEP_UP_FRESH_MS_MAX = 15 * 60 * 1000
STEP_UP_RATES_MAX = 256  # reference rates in one policy
STEP_UP_RATE_DIGITS_MAX = 12  # digits either side of a rate's decimal point
STEP_UP_EXPONENT_MAX = 4  # the largest ISO 4217 minor-unit exponent (CLF, UYW)
# Payment counters (counters.py): what a user moved is summed over this sliding window for the
# policy's cumulative facts (`payee_24h_ref_minor`, `total_24h_ref_minor`), and rows are kept
# this long for longer velocity windows (risk control's), then pruned.
STEP_UP_WINDOW_MS = 24 * 3600 * 1000
PAYMENT_COUNTER_RETENTION_MS = 31 * 24 * 3600 * 1000
PAYMENT_COUNTER_KEY_CHARS_MAX = 80  # "<kind>:<client id>"
PAYMENT_COUNTER_PAYEE_CHARS_MAX = 64  # an account id
PAYMENT_COUNTER_MOVEMENTS_MAX = 100  # one request's movements (a full transfer batch)
PAYMENT_COUNTER_PAYEES_MAX = 100  # payees read at once

# -- RBAC -----------------------------------------------------------------------------------
JUSTIFICATION_CHARS_MIN = 15  # long enough that "x" or "test" is refused
JUSTIFICATION_CHARS_MAX = 500
KYC_REVIEW_REASON_CHARS_MAX = 500  # the reviewer's reason, kept in the audit entry

# -- DIDs, credentials, KYC, consent ---------------------------------------------------------
DID_CHARS_MAX = 128
DID_KEYS_MAX = 64  # key history length of one registered DID
CREDENTIAL_BYTES_MAX = 64 * 1024
CREDENTIAL_TYPES_MAX = 8
# Bitstring Status List asks for at least 131,072 entries so a list does not single out a
# holder ("herd privacy"); we store one state key per set bit, so size costs nothing.
STATUS_LIST_SIZE_MIN = 131_072
STATUS_LIST_SIZE_MAX = 16 * 131_072
STATUS_LIST_ID_CHARS_MAX = 64
CONSENT_NAME_CHARS_MAX = 64
CONSENT_DURATION_MS_MAX = 5 * 365 * 24 * 3600 * 1000
PERSON_NAME_CHARS_MAX = 64
KYC_DOCUMENTS_MAX = 10

# The HTTP API.
PAGE_ROWS_MAX = 100  # every list endpoint pages; `limit` is capped here
PAGE_ROWS_DEFAULT = 50
CURSOR_CHARS_MAX = 80  # a "<submitted_ms>:<user_id>" page cursor
AUDIT_EXPORT_ROWS_MAX = 100_000  # one audit log export; a longer period is several exports
AUDIT_EXPORT_PAGE_ROWS = 1_000  # an export reads the log this many entries at a time
RATE_AUTH_PER_IP_CAPACITY = 60  # every authentication endpoint, per client address
RATE_AUTH_PER_IP_REFILL_MS = 1_000
KYC_REQUEST_BYTES_MAX = 24 * 1024 * 1024  # base64 documents of one KYC submission
COMPANY_NAME_CHARS_MAX = 200
CONSENT_DEFAULT_MS = 365 * 24 * 3600 * 1000  # a consent without an end date lasts a year
