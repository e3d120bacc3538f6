"""Every bound of the guestbook in one place: the request schema, the contract and the query
table all read these (one limit, one source)."""

from zhijin.chain import limits as chain_limits

# Client-chosen entry ids sit in state keys unescaped: letters, digits and `._:-`.
ENTRY_ID_CHARS_MAX = 64
ENTRY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
MESSAGE_CHARS_MAX = 280  # free text stays on chain forever: short, and never personal data
AUTHOR_CHARS_MAX = chain_limits.SENDER_CHARS_MAX  # an entry's author is its tx's sender
PAGE_SIZE_MAX = chain_limits.PAGE_SIZE_MAX
PAGE_SIZE_DEFAULT = 50
# The one write route's body: an id and a message of at most 280 characters (4 UTF-8 bytes
# each, escaped at most 6) fit easily; anything larger is refused at the edge (413).
SIGN_BODY_BYTES_MAX = 4 * 1024
