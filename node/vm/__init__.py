"""Contract execution: the Python reference executor and the RISC-V (RV64IM) VM on unicorn.

Modules (one concern each; only :mod:`node.vm.unicorn_backend` imports unicorn):

* :mod:`node.vm.reference` - the readable Python executor for the system contracts (the oracle);
* :mod:`node.vm.abi` - memory map, syscall numbers, limits, gas schedule (see docs/vm-abi.md);
* :mod:`node.vm.elf` - ELF verification and preparation -> :class:`node.vm.program.Program`;
* :mod:`node.vm.syscalls` - what each syscall does to a call's environment;
* :mod:`node.vm.gasmeter` - the block gas meter (native C built on first use, Python fallback);
* :mod:`node.vm.unicorn_backend` - instances, per-call reset, the syscall hook, the self-test;
* :mod:`node.vm.pool` - warm instances per (worker thread, code hash);
* :mod:`node.vm.runtime` - :class:`~node.vm.runtime.VmExecutor` (the ``TxExecutor``), ``call``
  for ``dubhe_call``, :func:`~node.vm.runtime.startup_self_test`;
* :mod:`node.vm.genesis` - the committed contract ELFs and ``genesis_contracts()``.

Importing this package imports nothing heavy; import the module you need.
"""
