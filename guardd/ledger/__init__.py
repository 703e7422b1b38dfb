"""Reading usage ledgers: discovery, the tailer, block reading and the parser (the ingest hot path)."""
