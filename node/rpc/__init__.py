"""Sans-I/O JSON-RPC 2.0 codec (bytes in, requests out; responses to bytes) and Ethereum-format
encoders. Used by the node's servers and by the lab's clients and mock chains."""
