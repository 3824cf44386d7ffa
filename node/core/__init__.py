"""Core types shared by every layer of the node (and by the lab): stdlib + cryptography only."""
