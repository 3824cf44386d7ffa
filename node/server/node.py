"""The node's composition root: builds every part from the config, wires them, runs them.

Start-up order: state store -> VM stack and genesis (first start only) -> mempool restore ->
scheduler and block production -> L1 following -> HTTP and WebSocket listeners. Shutdown
(:meth:`Node.stop`) reverses it: stop accepting, finish the block in progress, close WebSockets
with 1001, stop following, flush and close state.

Nothing here runs requests or blocks: the parts do (``methods/`` answer JSON-RPC over narrow
interfaces, ``production`` builds blocks, ``status`` reports, ``http``/``ws`` are the shells).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from node.chain.mempool import Mempool
from node.chain.producer import BlockProducer
from node.config import Config, split_bind
from node.core.execution import BlockExecutor
from node.scheduler import registry
from node.server.conn_guard import (
    ConnTable,
    GuardedRunner,
    Listener,
    PeerLogLimiter,
    Policy,
    networks,
)
from node.server.descriptors import DescriptorBudget
from node.server.dispatch import Dispatcher
from node.server.http import HttpShell
from node.server.l1 import L1Service
from node.server.methods.admission import AdmissionMethods
from node.server.methods.chain_reads import ChainReadMethods
from node.server.methods.contracts import ContractMethods
from node.server.methods.control import ControlMethods
from node.server.methods.eth_compat import EthCompatMethods
from node.server.methods.l1 import L1Methods
from node.server.methods.node_info import NodeInfoMethods
from node.server.methods.subscriptions import SubscriptionMethods
from node.server.methods.table import MethodTable
from node.server.metrics import Metrics
from node.server.production import BlockProduction, BlockPublisher
from node.server.pubsub import PubSub
from node.server.security import AuditLog, IpBuckets
from node.server.status import NodeStatus
from node.server.storage_metrics import StorageCollector
from node.server.vm_stack import VmStack, build_vm_stack
from node.server.ws import WsShell
from node.state.chain_store import ChainStore, open_memory_store
from node.state.integrity import OpenOptions, open_checked

log = logging.getLogger("node")


class Node:
    """``descriptors``: the budget ``dubhe-node`` planned (node.server.descriptors), reported in
    ``dubhe_status`` and ``/metrics``; None when the caller did not plan one (in-process use)."""

    def __init__(self, cfg: Config, *, descriptors: DescriptorBudget | None = None) -> None:
        self.cfg = cfg
        chain_id = cfg.node.chain_id
        self.metrics = Metrics()
        self.audit = AuditLog(
            cfg.security.audit_log
            if cfg.state.backend == "rocksdb" or cfg.security.audit_log
            else None
        )
        st = cfg.state
        self.store: ChainStore = (
            open_memory_store()
            if st.backend == "memory"
            else open_checked(st.path, OpenOptions(st.sync_writes, st.accept_tail_loss,
                                                   st.verify_on_open))
        )
        self.metrics.registry.register(StorageCollector(self.store.stats))
        try:
            self.vm_stack: VmStack = build_vm_stack(cfg, self.store)
        except BaseException:
            self.store.close()
            raise
        self.block_executor: BlockExecutor = registry.create(
            cfg.scheduler.strategy, self.vm_stack.executor, cfg.scheduler.worker_threads,
            executor_factory=self.vm_stack.worker_factory, substrate=cfg.scheduler.substrate,
            adaptive=cfg.scheduler.adaptive, contention_fallback=cfg.scheduler.contention_fallback,
        )
        self.producer = BlockProducer(self.store, self.block_executor, chain_id=chain_id)
        self.mempool = Mempool(self.store, chain_id=chain_id, max_txs=cfg.node.max_mempool_txs)
        self.pubsub = PubSub(self.metrics, max_per_conn=cfg.api.max_subscriptions_per_connection)
        self.production = BlockProduction(
            self.producer, self.mempool, block_time_s=cfg.node.block_time_ms / 1000,
            max_block_txs=cfg.node.max_block_txs, max_block_bytes=cfg.node.max_block_bytes,
            on_block=BlockPublisher(self.metrics, self.pubsub, self.mempool),
        )
        self.l1 = L1Service(cfg, self.store, self.metrics, self.production.queue_system_writes,
                            resolver=self.vm_stack.resolver)
        if self.l1.enabled:
            self.production.before_block = self.l1.before_block
        self.ws: WsShell  # built below: its connection count is part of the status
        self.status = NodeStatus(
            cfg,
            self.store,
            self.block_executor,
            self.vm_stack.vm,
            self.vm_stack.loader,
            self.mempool,
            self.production,
            self.l1,
            self.metrics,
            open_connections=lambda: len(self.ws.conns),
            subscriptions=lambda: len(self.pubsub.subs),
            connections=lambda: {k: len(ls.conns) for k, ls in self.listeners.items()},
            descriptors=descriptors.as_dict() if descriptors else None,
        )
        if descriptors is not None:
            d = self.metrics.descriptors
            d.labels("limit").set(descriptors.limit)
            d.labels("connections").set(descriptors.http + descriptors.ws)
            d.labels("reserved").set(descriptors.reserved)
        self.methods = self.method_table()
        self.dispatcher = Dispatcher(
            self.methods, metrics=self.metrics, audit=self.audit,
            timeout_s=cfg.api.request_timeout_ms / 1000, max_batch=cfg.api.max_batch,
            max_depth=cfg.api.max_json_depth, max_response_bytes=cfg.api.max_response_bytes,
        )
        token = cfg.security.admin_token
        api = cfg.api
        conn_table = ConnTable(api.max_connections_per_ip, networks(api.per_ip_exempt))
        ip_buckets = IpBuckets(api.ip_rate_limit_per_s, api.ip_rate_limit_burst,
                               api.ip_tx_rate_limit_per_s, api.ip_tx_rate_limit_burst,
                               is_exempt=conn_table.is_exempt)
        limiter = PeerLogLimiter()
        self.listeners = {
            label: Listener(Policy(label, cap, api.header_timeout_s, api.idle_timeout_s),
                            conn_table, self.metrics, limiter)
            for label, cap in (("http", api.max_http_connections), ("ws", api.max_connections))
        }
        self.http = HttpShell(
            cfg.api,
            admin_token=token,
            dispatcher=self.dispatcher,
            metrics=self.metrics,
            health=self.status.health,
            refresh_gauges=self.status.refresh_gauges,
            ip_buckets=ip_buckets,
        )
        self.ws = WsShell(
            cfg.api,
            admin_token=token,
            dispatcher=self.dispatcher,
            metrics=self.metrics,
            audit=self.audit,
            on_close=self.pubsub.drop,
            ip_buckets=ip_buckets,
        )
        self._runners: list[web.AppRunner] = []
        self.rpc_port = 0
        self.ws_port = 0

    def method_table(self) -> MethodTable:
        """Every JSON-RPC method of this node, by group."""
        chain_id = self.cfg.node.chain_id
        vm = self.vm_stack
        return (
            MethodTable()
            .add_group(ChainReadMethods(self.store, self.mempool, chain_id=chain_id))
            .add_group(
                AdmissionMethods(
                    self.mempool, self.metrics, max_submit_txs=self.cfg.api.max_submit_txs
                )
            )
            .add_group(ControlMethods(self.production))
            .add_group(NodeInfoMethods(self.status))
            .add_group(
                ContractMethods(
                    vm.loader, vm.vm_executor, self.production, self.store, chain_id=chain_id
                )
            )
            .add_group(EthCompatMethods(vm.loader, vm.vm_executor, self.store, chain_id=chain_id))
            .add_group(L1Methods(self.l1))
            .add_group(SubscriptionMethods(self.pubsub))
        )

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        if self.store.head is None:
            self.store.set_param("vm", self.vm_stack.vm.encode())
        head = self.producer.genesis(self.vm_stack.genesis, int(time.time() * 1000))
        restored = self.mempool.restore()
        self.metrics.head.set(head.number)
        self.metrics.mempool.set(restored)
        log.info("chain at block %d, %d pending transactions restored", head.number, restored)
        await self.l1.start()
        self.rpc_port = await self._serve(self.http.app(), self.cfg.api.rpc_bind,
                                          self.listeners["http"])
        self.ws_port = await self._serve(self.ws.app(), self.cfg.api.ws_bind,
                                         self.listeners["ws"])
        self.production.start()

    async def _serve(self, app: web.Application, bind: str, listener: Listener) -> int:
        """Listen on ``bind`` under ``listener``'s protections (:mod:`node.server.conn_guard`);
        returns the bound port (the OS's choice when ``bind`` says 0)."""
        host, port = split_bind(bind)
        runner = GuardedRunner(app, listener, access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Graceful stop: no new connections, finish the current block, 1001 to WebSockets."""
        self.ws.accepting = False
        await self.production.stop()
        await self.ws.close_all()
        for r in self._runners:
            await r.cleanup()
        await self.l1.stop()
        self.block_executor.close()
        self.store.close()
        self.audit.close()
