"""Contract execution: the Python reference executor and the RISC-V runtime on unicorn."""
