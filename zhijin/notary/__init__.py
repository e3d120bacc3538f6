"""Evidence notarisation: anchor a document's SHA-256 on chain and prove it offline."""
