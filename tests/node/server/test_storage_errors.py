"""Reads that hit damaged storage answer -32020 (a storage error, never -32603) and are counted
in /metrics; the node's storage series are there."""

from __future__ import annotations

import shutil
from pathlib import Path

from inproc import (  # type: ignore[import-not-found]
    AUTHORITY,
    CHAIN_ID,
    InProcess,
    MemoryChain,
    RpcFault,
)

from node.chain.mempool import Mempool
from node.chain.producer import BlockProducer
from node.core.errors import INTERNAL_ERROR, STORAGE_ERROR
from node.core.tx import Signer
from node.scheduler.serial import Serial
from node.server.methods.chain_reads import ChainReadMethods
from node.server.storage_metrics import StorageCollector
from node.state.integrity import OpenOptions, open_checked
from node.vm.reference import ReferenceExecutor


def rocks_chain(path: Path, opts: OpenOptions) -> MemoryChain:
    store = open_checked(path, opts)
    producer = BlockProducer(store, Serial(ReferenceExecutor(AUTHORITY.address)), chain_id=CHAIN_ID)
    producer.genesis({}, 1_000)
    return MemoryChain(store, Mempool(store, chain_id=CHAIN_ID, max_txs=10_000), producer, {})


def _flip(p: Path, at: int, n: int = 64) -> None:
    with open(p, "r+b") as f:
        f.seek(at)
        b = f.read(n)
        f.seek(at)
        f.write(bytes(x ^ 0xFF for x in b))


async def test_reads_of_a_damaged_table_file_answer_32020_and_are_counted(tmp_path: Path) -> None:
    live = tmp_path / "live"
    chain = rocks_chain(live, OpenOptions())
    for b in range(40):
        chain.block(*(chain.mint(Signer.from_seed(b"d%d-%d" % (b, i)).address, 1 + i)
                      for i in range(20)), now_ms=2_000 + b)
    heads = chain.store.head
    assert heads is not None
    chain.store.close()  # flushed into one table file
    damaged = tmp_path / "damaged"
    shutil.copytree(live, damaged)
    (sst,) = damaged.glob("*.sst")
    _flip(sst, sst.stat().st_size * 2 // 5)  # 64 bytes among the blocks' receipts
    # the operator chose to start anyway (verify_on_open = false)
    chain = rocks_chain(damaged, OpenOptions(verify_on_open=False))
    rpc = InProcess(ChainReadMethods(chain.store, chain.mempool, chain_id=CHAIN_ID))
    rpc.metrics.registry.register(StorageCollector(chain.store.stats))
    codes: dict[int, int] = {}
    try:
        for n in range(heads.number + 1):
            for method, args in (("eth_getBlockByNumber", (hex(n), True)),
                                 ("eth_getBlockReceipts", (hex(n),))):
                try:
                    await rpc.call(method, *args)
                    codes[0] = codes.get(0, 0) + 1
                except RpcFault as e:
                    codes[e.code] = codes.get(e.code, 0) + 1
                    assert e.code == STORAGE_ERROR, e
                    assert "storage corruption" in e.message and sst.name in e.message
                    assert str(tmp_path) not in e.message  # the file's name, not where it is
    finally:
        chain.store.close()
    assert codes.get(STORAGE_ERROR) and codes.get(0) and INTERNAL_ERROR not in codes
    text = rpc.metrics.render().decode()
    corrupt = next(line for line in text.splitlines()
                   if line.startswith('dubhe_storage_errors_total{kind="corruption"}'))
    assert float(corrupt.split()[-1]) >= codes[STORAGE_ERROR]
    assert f'dubhe_rpc_errors_total{{code="{STORAGE_ERROR}"}} {codes[STORAGE_ERROR]}.0' in text
