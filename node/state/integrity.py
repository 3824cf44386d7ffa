"""Opening a RocksDB data directory so that damage is never silent.

:func:`open_checked` is the only way the node opens its RocksDB store:

1. Open with ``paranoid_checks`` and the WAL in ``kAbsoluteConsistency`` mode
   (:mod:`node.state.rocks`). A WAL RocksDB cannot replay entirely fails the open here instead
   of being cut silently at the first bad record (RocksDB's default, ``kPointInTimeRecovery``).
2. On such a failure, open the directory **read-only** in point-in-time mode (no file changes)
   and compare what that recovery keeps with the acknowledgement journal
   (:mod:`node.state.journal`): the :class:`Account` lists each announced block and each
   acknowledged transaction it would drop, and the transactions of dropped blocks that would be
   pending again.
3. Refuse to start (:class:`~node.core.errors.StorageDamage`, one line naming the damage, what
   it would drop and the options) unless the operator accepts the loss (``accept_tail_loss``,
   ``dubhe-node --accept-tail-loss``): then recover point-in-time, log the account line by line
   and write it to ``dubhe-recovery-<time>.json`` in the data directory. The one exception: with
   ``sync_writes`` on (the journal is fsync'd before every acknowledgement) and an intact
   journal proving that the unreadable tail held nothing acknowledged or announced (what a power
   loss in the middle of a write leaves), the node recovers with a WARNING saying so.
4. With ``verify_on_open`` (the default) read every stored block, checking its checksum: a
   damaged table file (SST) refuses the start, naming the file and offset. It cannot be
   "accepted" like a WAL tail (it is not the end of history); the operator restores a backup,
   or sets ``verify_on_open = false`` to serve what is readable (reads of damaged blocks then
   answer -32020).
5. Even after a clean open, the database must hold everything the journal says was announced
   (a WAL cut exactly between two records, or a lost WAL file, replays "cleanly"): if it does
   not, the same refusal or account applies.
6. Flush RocksDB's memtables and restart the journal from the database's watermarks.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.core.block import BlockHeader
from node.core.codec import U64, sha3
from node.core.errors import StorageCorruption, StorageDamage
from node.state import journal as jr
from node.state.chain_store import (
    META_HEAD,
    META_SEQ,
    NS_HEADER,
    NS_POOL,
    ChainStore,
)
from node.state.journal import Checkpoint, Journal, JournalContents
from node.state.kv import KV
from node.state.rocks import RocksKV, WalDrop, wal_drops
from node.state.writer import StorageStats

log = logging.getLogger("node.storage")

ACCEPT_HINT = "--accept-tail-loss (or [state] accept_tail_loss = true)"


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _range(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}..{hi}"


@dataclass
class Account:
    """What the database lacks compared with what the node announced (the journal)."""

    db_head: int | None
    db_next_seq: int
    has_journal: bool
    journal_damage: str | None = None
    dropped_blocks: list[jr.JournalBlock] = field(default_factory=list)
    differing_blocks: list[int] = field(default_factory=list)
    lost_txs: list[tuple[int | None, bytes]] = field(default_factory=list)
    repending: list[bytes] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    @property
    def loses_anything(self) -> bool:
        return bool(self.dropped_blocks or self.differing_blocks or self.lost_txs
                     or self.unlisted)

    @property
    def provable(self) -> bool:
        """The journal can vouch for the account (it exists and read cleanly)."""
        return self.has_journal and self.journal_damage is None

    def summary(self, done: bool = False) -> str:
        """One phrase: what is (``done``) or would be lost (``nothing the node acknowledged or
        announced`` if so)."""
        parts = []
        if self.dropped_blocks:
            nums = [b.number for b in self.dropped_blocks]
            parts.append(f"{len(nums)} announced block{'s' * (len(nums) != 1)} "
                         f"(height {_range(min(nums), max(nums))})")
        if self.differing_blocks:
            d = self.differing_blocks
            parts.append(f"{len(d)} block(s) that differ from the announced ones "
                         f"(height {_range(min(d), max(d))})")
        if self.lost_txs:
            parts.append(f"{len(self.lost_txs)} acknowledged transaction"
                         f"{'s' * (len(self.lost_txs) != 1)}")
        parts.extend(self.unlisted)
        if not parts:
            out = "nothing the node acknowledged or announced"
        else:
            out = ", ".join(parts)
        if self.repending:
            out += (f" ({len(self.repending)} transaction{'s' * (len(self.repending) != 1)} of "
                    f"dropped blocks {'are' if done else 'would be'} pending again)")
        if not self.has_journal:
            out += " as far as can be told: there is no acknowledgement journal to compare with"
        elif self.journal_damage:
            out += f" as far as the journal can tell ({self.journal_damage})"
        return out

    def lines(self) -> list[str]:
        """The exact account, one fact per line (for the log)."""
        ends = "holds no block" if self.db_head is None else f"ends at block {self.db_head}"
        out = [f"the database now {ends}, next sequence number {self.db_next_seq}"]
        for b in self.dropped_blocks:
            out.append(f"dropped block {b.number} {_hex(b.hash)} (announced; "
                       f"{len(b.txs)} transactions)")
        for n in self.differing_blocks:
            out.append(f"block {n} in the database differs from the announced one")
        for seq, h in self.lost_txs:
            where = f"sequence {seq}" if seq is not None else "acknowledged before the journal"
            out.append(f"dropped acknowledged transaction {_hex(h)} ({where})")
        for h in self.repending:
            out.append(f"transaction {_hex(h)} of a dropped block is pending again "
                       "(it will be in a different block)")
        out.extend(f"dropped, not listed: {u}" for u in self.unlisted)
        if self.journal_damage:
            out.append(f"the journal is damaged ({self.journal_damage}): the account may miss "
                       "what it recorded after that")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "databaseHead": self.db_head,
            "databaseNextSeq": self.db_next_seq,
            "journal": self.has_journal,
            "journalDamage": self.journal_damage,
            "droppedBlocks": [{"number": b.number, "hash": _hex(b.hash),
                               "transactions": [_hex(h) for h in b.txs]}
                              for b in self.dropped_blocks],
            "differingBlocks": self.differing_blocks,
            "droppedTransactions": [{"hash": _hex(h), "seq": s} for s, h in self.lost_txs],
            "pendingAgain": [_hex(h) for h in self.repending],
            "notListed": self.unlisted,
        }


def _head(kv: KV) -> int | None:
    raw = kv.get(META_HEAD)
    return int(U64.unpack(raw)[0]) if raw is not None else None


def _next_seq(kv: KV) -> int:
    raw = kv.get(META_SEQ)
    if raw is not None:
        return int(U64.unpack(raw)[0])
    last = -1  # a store from before Mseq: after the highest pending entry
    for k, _ in kv.iter_prefix(NS_POOL):
        last = max(last, int(U64.unpack(k[1:])[0]))
    return last + 1


def _header_hash(kv: KV, number: int) -> bytes | None:
    raw = kv.get(NS_HEADER + U64.pack(number))
    return BlockHeader.decode(raw).hash if raw is not None else None


def account(kv: KV, jc: JournalContents | None) -> Account:
    """Compare the database in ``kv`` with the journal ``jc``."""
    head, nxt = _head(kv), _next_seq(kv)
    acc = Account(head, nxt, jc is not None, jc.damage if jc else None)
    if jc is None or jc.checkpoint is None:
        return acc
    ck = jc.checkpoint
    behind = -1 if head is None else head
    if ck.head is not None and behind < ck.head:
        acc.unlisted.append(f"blocks {_range(behind + 1, ck.head)} (committed before the "
                            "journal's checkpoint: their hashes are not recorded)")
    if nxt < ck.next_seq:
        acc.unlisted.append(f"acknowledgements with sequence numbers "
                            f"{_range(nxt, ck.next_seq - 1)} (before the journal's checkpoint: "
                            "their hashes are not recorded)")
    for b in jc.blocks:
        if b.number > behind:
            acc.dropped_blocks.append(b)
        elif _header_hash(kv, b.number) != b.hash:
            acc.differing_blocks.append(b.number)
    acc.lost_txs = [(s, h) for s, h in jc.acks if s >= nxt]
    lost = {h for _, h in acc.lost_txs}
    again = [h for b in acc.dropped_blocks for h in b.txs if h not in lost]
    if again:
        pending = {sha3(raw) for _, raw in kv.iter_prefix(NS_POOL)}
        for h in again:
            if h in pending:
                acc.repending.append(h)
            else:  # acknowledged before the journal began, and its block is gone
                acc.lost_txs.append((None, h))
    return acc


def _wal_damage(drops: list[WalDrop]) -> str:
    """The first unreadable WAL record RocksDB reported: the file (its size) and why."""
    d = drops[0]
    try:
        size = f"{Path(d.file).stat().st_size:,} bytes, "
    except OSError:
        size = ""
    return (f"RocksDB cannot replay its write-ahead log {d.file} ({size}{d.reason}; "
            f"{d.bytes:,} bytes unreadable where the replay stops)")


def _table_damage(e: StorageCorruption, path: Path, verifying: bool) -> StorageDamage:
    detail = e.message.split(": ", 1)[-1]
    where = "verifying every stored block at start-up" if verifying else "opening the database"
    options = f"restore {path} from a backup"
    if verifying:
        options += (", or set [state] verify_on_open = false to start anyway and answer -32020 "
                    "for reads of the damaged data")
    return StorageDamage(
        f"storage damage in {path}: {detail}, found while {where}. The database cannot be "
        "trusted; --accept-tail-loss does not apply (this is not the end of the write-ahead "
        f"log). Options: {options}"
    )


def _refusal(path: Path, damage: str, acc: Account, why: str = "",
             doing: str = "recovering to the last consistent write") -> StorageDamage:
    return StorageDamage(
        f"storage damage in {path}: {damage}; {doing} would drop {acc.summary()}{why}. "
        f"Options: restore {path} from a backup, or start once with {ACCEPT_HINT} to accept "
        "the loss (every dropped height and transaction is then logged)"
    )


def _report(path: Path, damage: str, acc: Account, recovery: str) -> Path:
    """The account as JSON in ``dubhe-recovery-<UTC time>.json`` (``recovery``: ``accepted``,
    the operator's flag, or ``harmless``, nothing acknowledged lost)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = path / f"dubhe-recovery-{stamp}.json"
    out.write_text(json.dumps({"damage": damage, "recovery": recovery, **acc.as_dict()},
                              indent=1) + "\n")
    return out


@dataclass(frozen=True)
class OpenOptions:
    sync_writes: bool = True
    accept_tail_loss: bool = False
    verify_on_open: bool = True
    journal_max_bytes: int = jr.DEFAULT_MAX_BYTES


def open_checked(
    path: str | Path, opts: OpenOptions = OpenOptions(), *, stats: StorageStats | None = None
) -> ChainStore:
    """Open the RocksDB store at ``path`` after the checks in the module docstring. Raises
    StorageDamage (refusal, one line) or StorageError (the directory cannot be opened)."""
    path = Path(path)
    stats = stats or StorageStats()
    jpath = path / jr.JOURNAL_NAME
    jc = jr.read(jpath)
    damage: str | None = None
    try:
        kv = RocksKV(path, on_error=stats.error)
    except StorageCorruption as e:
        drops = wal_drops(path)
        if not drops:
            raise _table_damage(e, path, verifying=False) from None
        damage = _wal_damage(drops)
        try:
            ro = RocksKV(path, recovery="point_in_time", read_only=True)
        except StorageCorruption as e2:
            raise _table_damage(e2, path, verifying=False) from None
        try:
            acc = account(ro, jc)
        except StorageCorruption as e2:
            raise _table_damage(e2, path, verifying=False) from None
        finally:
            ro.close()
        harmless = opts.sync_writes and acc.provable and not acc.loses_anything
        if not (opts.accept_tail_loss or harmless):
            why = ""
            if not acc.loses_anything and not opts.sync_writes:
                why = (", but with sync_writes = false the journal is not fsync'd and cannot "
                       "prove it")
            raise _refusal(path, damage, acc, why) from None
        kv = RocksKV(path, recovery="point_in_time", on_error=stats.error)
    try:
        _check(kv, path, jc, damage, opts)
        kv.flush()
        journal = Journal(jpath, max_bytes=opts.journal_max_bytes)
        head = _head(kv)
        journal.start(Checkpoint(head, (_header_hash(kv, head) if head is not None else None)
                                 or bytes(32), _next_seq(kv)))
    except BaseException:
        kv.close()
        raise
    return ChainStore(kv, sync_writes=opts.sync_writes, journal=journal, stats=stats)


def _check(kv: RocksKV, path: Path, jc: JournalContents | None, damage: str | None,
           opts: OpenOptions) -> None:
    """Steps 4 and 5 (and the account of step 3) on the opened store."""
    try:
        if opts.verify_on_open:
            n, secs = kv.verify()
            log.info("storage: verified the checksums of %s keys' blocks in %.2f s", f"{n:,}", secs)
    except StorageCorruption as e:
        raise _table_damage(e, path, verifying=True) from None
    try:
        acc = account(kv, jc)
    except StorageCorruption as e:
        raise _table_damage(e, path, verifying=False) from None
    if damage is None and acc.loses_anything:
        ends = ("holds no block" if acc.db_head is None
                else f"ends at block {acc.db_head}") + f" and sequence number {acc.db_next_seq}"
        damage = (f"the database {ends}, behind what the acknowledgement journal records as "
                  "acknowledged and announced (a write-ahead log lost or cut between records)")
        if not opts.accept_tail_loss:
            raise _refusal(path, damage, acc, doing="starting on it")
    if damage is not None and (acc.loses_anything or opts.accept_tail_loss):
        level = logging.ERROR if acc.loses_anything else logging.WARNING
        log.log(level, "storage: %s; tail loss accepted, dropped %s", damage,
                acc.summary(done=True))
        for line in acc.lines():
            log.log(level, "storage: %s", line)
        report = _report(path, damage, acc, "accepted")
        log.log(level, "storage: the account is also in %s", report)
    elif damage is not None:
        log.warning("storage: %s, as a power loss in the middle of a write leaves; the journal "
                    "shows that nothing acknowledged or announced was in it: recovered to the "
                    "last complete write", damage)
        _report(path, damage, acc, "harmless")
    elif jc is None and acc.db_head is not None:
        log.info("storage: no acknowledgement journal yet (a data directory from before it "
                 "existed): starting one")
    elif jc is not None and (jc.damage or jc.checkpoint is None):
        log.warning("storage: the acknowledgement journal is damaged (%s); the database passed "
                    "its own checks and holds everything the journal's readable part records: "
                    "starting a new journal", jc.damage or "no checkpoint")
