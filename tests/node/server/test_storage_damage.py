"""A real ``dubhe-node`` on a damaged data directory: it refuses to start with one line naming
the damage and the options, and ``--accept-tail-loss`` starts it with an exact log of what was
dropped (every announced height above the recovered head, every acknowledged transaction it no
longer has). Acknowledgements are fsync'd with group commit by default: 64 concurrent
submitters share fsyncs (``/metrics``)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import websockets
from server_harness import RunningNode  # type: ignore[import-not-found]
from timing import scaled  # type: ignore[import-not-found]

from node.core import keys
from node.core.codec import pack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx

pytestmark = pytest.mark.timeout(180)
CHAIN = 0x44554248
SUBMITTERS = 64


def _transfers(rounds: int) -> list[list[str]]:
    """Per submitter, its signed transfers in nonce order."""
    out = []
    for i in range(SUBMITTERS):
        s = Signer.from_seed(b"damage-%d" % i)
        out.append([data(sign_tx(s, chain_id=CHAIN, nonce=n, to=keys.NATIVE_TOKEN,
                                 method="transfer", args=bytes(20) + pack_u64(1),
                                 write_set=(keys.balance_key(s.address),
                                            keys.balance_key(bytes(20)))).raw)
                    for n in range(rounds)])
    return out


async def _submit_all(url: str, per_submitter: list[list[str]]) -> list[str]:
    """64 concurrent submitters, one transaction per request, each waiting for its reply."""
    acked: list[str] = []
    conn = aiohttp.TCPConnector(limit=SUBMITTERS)
    async with aiohttp.ClientSession(connector=conn) as s:

        async def one(txs: list[str]) -> None:
            for raw in txs:
                body = orjson.dumps({"jsonrpc": "2.0", "id": 1,
                                     "method": "dubhe_sendTransaction", "params": [raw]})
                async with s.post(url, data=body,
                                  headers={"Content-Type": "application/json"}) as r:
                    msg = orjson.loads(await r.read())
                assert "result" in msg, msg
                acked.append(msg["result"])

        await asyncio.gather(*(one(t) for t in per_submitter))
    return acked


async def _rpc(s: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    async with s.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                 "params": list(params)}) as r:
        msg = await r.json()
    assert "error" not in msg, msg
    return msg["result"]


def _metric(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(name + " "))
    return float(line.split()[-1])


def _cut_wal(data_dir: Path) -> Path:
    """Cut the write-ahead log at half its size; returns it."""
    wal = max(data_dir.glob("*.log"), key=lambda p: p.stat().st_size)
    os.truncate(wal, wal.stat().st_size // 2)
    return wal


def _start(config: Path, *args: str, timeout_s: float = 30.0) -> tuple[subprocess.Popen[str],
                                                                     list[str], str]:
    """``python -m node --config CONFIG ARGS``: the process, its output so far and its RPC URL
    (empty when it exited)."""
    p = subprocess.Popen([sys.executable, "-m", "node", "--config", str(config), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.stdout is not None
    lines: list[str] = []
    for line in p.stdout:
        lines.append(line.rstrip("\n"))
        m = re.search(r"dubhe-node ready rpc=(\S+)", line)
        if m:
            return p, lines, m.group(1)
    p.wait(timeout_s)
    return p, lines, ""


async def test_a_cut_wal_is_refused_then_accepted_with_an_exact_account(
    fresh_node: Any, tmp_path: Path
) -> None:
    n: RunningNode = fresh_node(node={
        "block_time_ms": 100,
        "genesis_balances": {data(Signer.from_seed(b"damage-%d" % i).address): 10**6
                             for i in range(SUBMITTERS)},
    })
    announced: dict[int, str] = {}
    ws = await websockets.connect(n.ws)
    await ws.send('{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}')
    await ws.recv()

    async def heads() -> None:
        async for msg in ws:
            h = orjson.loads(msg)["params"]["result"]
            announced[parse_qty(h["number"])] = h["hash"]

    watcher = asyncio.create_task(heads())
    acked = await _submit_all(n.rpc, await asyncio.to_thread(_transfers, 8))
    async with aiohttp.ClientSession() as s:
        metrics = await (await s.get(n.rpc.rstrip("/") + "/metrics")).text()
    # every acknowledgement was fsync'd, and 64 concurrent submitters shared fsyncs. How many
    # share one depends on scheduling (1.9 writes per fsync on a loaded CI run, 3+ when quiet),
    # so only "some did" is asserted here; the exact grouping rule is tested on a controlled
    # fsync in tests/node/state/test_writer.py.
    syncs = _metric(metrics, "dubhe_storage_syncs_total")
    writes = _metric(metrics, "dubhe_storage_synced_writes_total")
    assert writes >= len(acked) and 0 < syncs < writes, (syncs, writes)
    await asyncio.sleep(scaled(0.3))  # a few more announced blocks
    n.kill()  # kill -9: everything since start is in the WAL only
    watcher.cancel()
    await ws.close()
    assert len(acked) == SUBMITTERS * 8 and announced

    wal = _cut_wal(Path(n.config["state"]["path"]))

    p, out, url = await asyncio.to_thread(_start, n.config_path)
    assert not url and p.returncode == 1
    refusal = [line for line in out if line.startswith("dubhe-node:")]
    assert len(refusal) == 1, out
    assert refusal[0].startswith("dubhe-node: refusing to start: storage damage in ")
    assert wal.name in refusal[0] and "--accept-tail-loss" in refusal[0]

    p, out, url = await asyncio.to_thread(_start, n.config_path, "--accept-tail-loss")
    try:
        assert url, out
        log = "\n".join(out)
        m = re.search(r"the database now ends at block (\d+)", log)
        assert m, log
        kept = int(m.group(1))
        dropped = {int(a): b for a, b in
                   re.findall(r"dropped block (\d+) (0x[0-9a-f]{64}) \(announced", log)}
        lost = set(re.findall(r"dropped acknowledged transaction (0x[0-9a-f]{64})", log))
        # every announced height above the recovered head is in the account, with its hash;
        # the account may name later blocks the subscriber had not yet been told about
        above = {k: v for k, v in announced.items() if k > kept}
        assert above and all(dropped.get(k) == v for k, v in above.items())
        assert all(k > max(announced) for k in set(dropped) - set(above))
        assert min(dropped) == kept + 1
        # every acknowledged transaction the node no longer has is named, and only those
        async with aiohttp.ClientSession() as s:
            missing = {h for h in acked
                       if await _rpc(s, url, "dubhe_getTransaction", h) is None}
        assert missing and lost == missing
    finally:
        p.send_signal(signal.SIGTERM)
        await asyncio.to_thread(p.communicate, timeout=scaled(10))
