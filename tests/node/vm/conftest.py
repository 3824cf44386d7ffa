"""VM test fixtures (defined in vm_helpers, a uniquely named module test files import from)."""

from vm_helpers import acct, run, state, vm

__all__ = ["acct", "run", "state", "vm"]
