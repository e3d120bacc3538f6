"""Evidence notarisation: anchor a document's SHA-256 on chain and prove it offline.

Other domains use the notary through `NotaryService` (the composition root builds it and
injects it where a domain declared the port, as identity's `expected.NotaryAnchors`).
"""

from zhijin.notary.service import NotaryService

__all__ = ["NotaryService"]
