"""Every bound of the payments domain in one place (STYLE.md rule 7).

Request schemas (the API and CLI) mirror these; the contract enforces them again because
a transaction may arrive from any member's SDK.
"""

from datetime import date

from zhijin.chain import limits as chain_limits

# Amounts and balance counters are signed 64-bit integers on the wire (canonical JSON), so the
# largest amount, and the largest value any of an account's counters may reach, is 2**63 - 1.
AMOUNT_MAX = 2**63 - 1

# Client-supplied ids (accounts, transfers, quotes): letters, digits and `._:-`, so that they
# sit in state keys without escaping.  `~` is kept out of the alphabet: the contract derives the
# ids of the transfers it books itself (fees, FX legs) as `<client id>~<leg>`, which therefore
# never collide with a client's id.
ID_CHARS_MAX = 64
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
# The id of any transfer: a client's, or a leg the contract books as `<client id>~<leg>`
# (`~fee`, `~spread`, `~target`).  The contract's `get_transfer` helper accepts ids up to this
# length (changing that would change what a calling contract's tx records), so the API's path
# and the projection's column take the same bound.
TRANSFER_ID_CHARS_MAX = 2 * ID_CHARS_MAX
TRANSFER_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._:~-]{{0,{TRANSFER_ID_CHARS_MAX - 1}}}$"
OWNER_CHARS_MAX = 256  # a DID, `role:<member role>` or `contract:<contract name>`
PRODUCT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
REFERENCE_CHARS_MAX = 35  # ISO 20022 Max35Text (EndToEndId); never personal data
CURRENCY_PATTERN = r"^[A-Z]{3}$"  # ISO 4217 alphabetic; CLDR then says whether it is tender
# Off-chain account naming and ISO 20022 exports.
IBAN_CHARS_MAX = 34  # ISO 13616, compact
IBAN_INPUT_CHARS_MAX = 42  # the same with a space after every 4 characters, as people type it
IBAN_INPUT_CHARS_MIN = 15  # the shortest IBAN (Norway)
BIC_PATTERN = r"^[A-Z0-9]{8}([A-Z0-9]{3})?$"  # ISO 9362
PARTY_NAME_CHARS_MAX = 140  # ISO 20022 Max140Text (Nm)

# One tx holds at most this many items.  Each transfer item writes at most 7 keys (the transfer,
# its fee transfer, the pending record, the expiry index entry and three accounts) and emits at
# most 2 events, which keeps a full batch inside the chain's per-tx write and event limits.
TRANSFERS_PER_BATCH_MAX = 100
ACCOUNTS_PER_BATCH_MAX = 100
WRITES_PER_TRANSFER_MAX = 7
# The HTTP body of a batch: a transfer item is under 1 KiB of JSON, so 100 fit in 256 KiB with
# room for whitespace and escapes (the edge's default body limit is 64 KiB).
TRANSFER_BATCH_BODY_BYTES_MAX = 256 * 1024
EVENTS_PER_TRANSFER_MAX = 2

# Pending transfers (holds): the longest timeout a hold may ask for, and how many expired holds
# one block's end-of-block hook releases (the rest wait for the next block, oldest first).  Each
# expiry writes 4 keys and emits 1 event.
PENDING_TIMEOUT_MS_MAX = 366 * 24 * 3600 * 1000
EXPIRIES_PER_BLOCK_MAX = 200
WRITES_PER_EXPIRY_MAX = 4

# Fees and FX.
BPS_PER_UNIT = 10_000  # basis points in 1
FEE_RATE_BPS_MAX = 1_000  # 10 %
SPREAD_BPS_MAX = 1_000  # 10 %
QUOTE_TTL_MS_MAX = 24 * 3600 * 1000
RATE_INTEGER_DIGITS_MAX = 12
RATE_FRACTION_DIGITS_MAX = 12
# A rate as a decimal string: no sign, no exponent, no leading zeros (the contract's own check).
RATE_PATTERN = rf"^(0|[1-9][0-9]{{0,{RATE_INTEGER_DIGITS_MAX - 1}}})(\.[0-9]{{1,{RATE_FRACTION_DIGITS_MAX}}})?$"

# Currencies: a code is accepted when CLDR (through babel) lists it as legal tender in some
# territory on this date.  A fixed date keeps the answer deterministic across members and days;
# moving it is a contract version bump.
CURRENCY_TENDER_DATE = date(2025, 1, 1)

# ISO 20022 files.
PAIN001_BYTES_MAX = 8 * 1024 * 1024
PAIN001_TRANSACTIONS_MAX = 10_000
# A file's accepted transfers go on chain in parts of at most TRANSFERS_PER_BATCH_MAX, one tx
# each; the first part claims the file's message id (see contract.import_transfers).
FILE_PARTS_MAX = -(-PAIN001_TRANSACTIONS_MAX // TRANSFERS_PER_BATCH_MAX)
XML_ERRORS_REPORTED_MAX = 20

# Queries (the API's pages mirror the chain's page bound).
PAGE_SIZE_MAX = chain_limits.PAGE_SIZE_MAX
PAGE_SIZE_DEFAULT = 50

if TRANSFERS_PER_BATCH_MAX * WRITES_PER_TRANSFER_MAX > chain_limits.WRITES_PER_TX_MAX:
    raise AssertionError("a full transfer batch would exceed the chain's writes per tx")
if TRANSFERS_PER_BATCH_MAX * EVENTS_PER_TRANSFER_MAX > chain_limits.EVENTS_PER_TX_MAX:
    raise AssertionError("a full transfer batch would exceed the chain's events per tx")
if EXPIRIES_PER_BLOCK_MAX * WRITES_PER_EXPIRY_MAX > chain_limits.WRITES_PER_TX_MAX:
    raise AssertionError("a full expiry sweep would exceed the chain's writes per hook")
if EXPIRIES_PER_BLOCK_MAX > chain_limits.EVENTS_PER_TX_MAX:
    raise AssertionError("a full expiry sweep would exceed the chain's events per hook")

# A customer's payments are put to the identity domain's step-up policy (which holds the actual
# thresholds) once what they moved in its 24 h window, this request included, reaches this many
# minor units of the policy's reference currency (1,000.00 CNY by default; converted at the
# policy's rates): a total, so that splitting a payment does not keep it under.  Below it no
# policy rule applies.  A payment in a currency the policy has no rate for is always put to it.
STEP_UP_FROM_MINOR = 100_000

# Account requests (opening.py): a customer's ask for an account, decided off chain.
ACCOUNT_REQUESTS_PER_USER_MAX = 20  # every request a user ever made, decided or not
ACCOUNT_REQUEST_REASON_CHARS_MAX = 500  # an officer's reason for a rejection, shown to the customer
ACCOUNT_REQUEST_CURSOR_CHARS_MAX = 160  # "<created_ms>:<user_id>:<request id>"
ACCOUNT_AUTO_OPEN_RULES_MAX = 10  # entries of the opening policy
ACCOUNT_REQUEST_PURPOSES = ("daily", "savings", "salary", "business", "other")

# -- people and merchants (confirmation of payee, payment requests, statements, refunds) ---------

# Confirmation of payee: a per-user token bucket against enumeration (who owns which account,
# IBAN or phone number).  20 lookups at once, then one every 3 minutes (20 an hour).
PAYEE_LOOKUPS_BURST = 20
PAYEE_LOOKUP_REFILL_MS = 3 * 60 * 1000
PAYEE_NAME_CHARS_MAX = 200  # the name a payer expects (a company's name is up to 200)
MOBILE_INPUT_CHARS_MAX = 20  # +86 138 0013 8000, as people type it
# Payment requests (collection QR codes and links).
PAYMENT_REQUEST_TOKEN_BYTES = 24  # secrets.token_urlsafe: 192 bits, 32 characters
PAYMENT_REQUEST_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{32}$"
PAYMENT_REQUEST_ID_PATTERN = r"^pr_[0-9a-f]{16}$"
PAYMENT_REQUEST_MEMO_CHARS_MAX = 140  # off chain only: the transfer's reference is the id
PAYMENT_REQUEST_MEMO_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # no control characters
PAYMENT_REQUEST_TTL_MS_MIN = 60 * 1000
PAYMENT_REQUEST_TTL_MS_MAX = 366 * 24 * 3600 * 1000
PAYMENT_REQUEST_TTL_MS_DEFAULT = 15 * 60 * 1000  # a checkout's QR: a quarter of an hour
# Statements for people: a date range in the user's time zone, search, CSV.
STATEMENT_DAYS_MAX = 366
STATEMENT_QUERY_CHARS_MAX = 64
STATEMENT_COUNTERPARTIES_MAX = 2_000  # distinct counterparties a name search looks through
TIME_ZONE_CHARS_MAX = 64
DEFAULT_TIME_ZONE = "Asia/Shanghai"
AMOUNT_TEXT_CHARS_MAX = 24  # "92233720368547758.07"
