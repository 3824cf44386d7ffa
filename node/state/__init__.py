"""State storage: a key-value store interface with two implementations (in-memory reference,
RocksDB via rocksdict) and the chain store built on it (state, blocks, receipts, mempool,
state-root commitment)."""
