"""Mock L1 chains (Ethereum, Sui) for the lab.

* :mod:`lab.l1.chain_model` - the chain model, free of I/O (blocks, balances, code, events, reorgs);
* :mod:`lab.l1.eth_rpc`, :mod:`lab.l1.sui_rpc` - JSON-RPC surfaces formatting the model;
* :mod:`lab.l1.faults`, :mod:`lab.l1.admin` - scripted faults and the admin command language;
* :mod:`lab.l1.server` - the aiohttp shell (:class:`~lab.l1.server.MockL1`);
* :mod:`lab.l1.harness` - helpers for tests (in-process mocks, an admin client, the CLI);
* ``python -m lab.l1 eth|sui --port N --seed S --block-time-ms T`` runs one.
"""
