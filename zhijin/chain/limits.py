"""Every bound of the chain layer in one place (STYLE.md rule 7); request validation mirrors it."""

TX_BYTES_MAX = 64 * 1024  # canonical body size
BATCH_TXS_MAX = 5_000  # bodies in one member batch envelope
VALIDITY_MS_MAX = 24 * 3600 * 1000  # how far in the future valid_until may lie
NONCE_MAX = 2**63 - 1
STRING_ID_CHARS_MAX = 128  # chain id, contract and method names
SENDER_CHARS_MAX = 256

MEMPOOL_TXS_MAX = 200_000
BLOCK_TXS_MAX = 5_000
BLOCK_INTERVAL_MS = 20  # cut a block this long after its first tx arrived, if not full first

STATE_KEY_CHARS_MAX = 256
WRITES_PER_TX_MAX = 1_000
EVENTS_PER_TX_MAX = 256
SCAN_ROWS_MAX = 1_000
CALL_DEPTH_MAX = 8

PAGE_SIZE_MAX = 500
