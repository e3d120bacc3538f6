"""The chain: blocks, consensus, contracts.  It imports nothing else of zhijin's (see `make lint`)."""
