"""What a Sui JSON-RPC SDK reads before its first call: the OpenRPC document (``rpc.discover``),
the protocol config and the system state, for the mock's one-validator network.

The OpenRPC document lists exactly the methods :class:`~lab.l1.sui_rpc.SuiWire` serves, each with
its parameters named and ordered as in Sui's own spec (``crates/sui-open-rpc``): SDKs that check a
call against the document (pysui 0.99 matches a builder's attributes to the parameter names) see
the surface as served. Schemas are plain JSON-schema types, not Sui's full component tree.
"""

from __future__ import annotations

from typing import Any

#: The Sui release whose JSON-RPC surface the mock follows (SDKs compare it with what they know).
SUI_VERSION = "1.60.0"
PROTOCOL_VERSION = 98
REFERENCE_GAS_PRICE = 1000

_STR: dict[str, Any] = {"type": "string"}
_OBJ: dict[str, Any] = {"type": "object"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_UINT: dict[str, Any] = {"type": "integer", "format": "uint", "minimum": 0.0}
_IDS: dict[str, Any] = {"type": "array", "items": _STR}

#: method -> (parameters (name, schema, required), result schema, summary)
METHODS: dict[str, tuple[list[tuple[str, dict[str, Any], bool]], dict[str, Any], str]] = {
    "sui_getChainIdentifier": ([], _STR, "the chain identifier (first 4 bytes of genesis)"),
    "sui_getLatestCheckpointSequenceNumber": ([], _STR, "the newest checkpoint's number"),
    "sui_getCheckpoint": ([("id", _STR, True)], _OBJ, "a checkpoint by number or digest"),
    "sui_getCheckpoints": (
        [("cursor", _STR, False), ("limit", _UINT, False), ("descending_order", _BOOL, True)],
        _OBJ, "a page of checkpoints",
    ),
    "sui_getTotalTransactionBlocks": ([], _STR, "transactions on the chain so far"),
    "sui_getTransactionBlock": (
        [("digest", _STR, True), ("options", _OBJ, False)], _OBJ, "one transaction block",
    ),
    "sui_multiGetTransactionBlocks": (
        [("digests", _IDS, True), ("options", _OBJ, False)],
        {"type": "array", "items": _OBJ}, "several transaction blocks",
    ),
    "sui_getEvents": ([("transaction_digest", _STR, True)], {"type": "array", "items": _OBJ},
                      "the events of one transaction"),
    "sui_getObject": ([("object_id", _STR, True), ("options", _OBJ, False)], _OBJ,
                      "one object"),
    "sui_multiGetObjects": ([("object_ids", _IDS, True), ("options", _OBJ, False)],
                            {"type": "array", "items": _OBJ}, "several objects"),
    "sui_getNormalizedMoveModulesByPackage": ([("package", _STR, True)], _OBJ,
                                              "a package's modules (empty Move shells)"),
    "sui_getNormalizedMoveModule": ([("package", _STR, True), ("module_name", _STR, True)],
                                    _OBJ, "one module (an empty Move shell)"),
    "sui_getProtocolConfig": ([("version", _STR, False)], _OBJ, "the protocol config"),
    "suix_getReferenceGasPrice": ([], _STR, "the reference gas price"),
    "suix_getLatestSuiSystemState": ([], _OBJ, "the system state summary"),
    "suix_getCommitteeInfo": ([("epoch", _STR, False)], _OBJ, "the committee of an epoch"),
    "suix_getBalance": ([("owner", _STR, True), ("coin_type", _STR, False)], _OBJ,
                        "an owner's balance of one coin type"),
    "suix_getAllBalances": ([("owner", _STR, True)], {"type": "array", "items": _OBJ},
                            "an owner's balances"),
    "suix_getCoins": (
        [("owner", _STR, True), ("coin_type", _STR, False), ("cursor", _STR, False),
         ("limit", _UINT, False)], _OBJ, "a page of an owner's coins of one type",
    ),
    "suix_getAllCoins": (
        [("owner", _STR, True), ("cursor", _STR, False), ("limit", _UINT, False)], _OBJ,
        "a page of an owner's coins",
    ),
    "suix_getOwnedObjects": (
        [("address", _STR, True), ("query", _OBJ, False), ("cursor", _STR, False),
         ("limit", _UINT, False)], _OBJ, "a page of an owner's objects",
    ),
    "suix_queryEvents": (
        [("query", _OBJ, True), ("cursor", _OBJ, False), ("limit", _UINT, False),
         ("descending_order", _BOOL, False)], _OBJ, "a page of events matching a filter",
    ),
}


def openrpc_document() -> dict[str, Any]:
    """The ``rpc.discover`` answer: an OpenRPC 1.2.6 document of the served methods."""
    return {
        "openrpc": "1.2.6",
        "info": {
            "title": "Sui JSON-RPC (Dubhe lab mock)",
            "description": "The subset of Sui's JSON-RPC API served by lab.l1's mock chain",
            "license": {"name": "Apache-2.0"},
            "version": SUI_VERSION,
        },
        "methods": [
            {
                "name": name,
                "tags": [{"name": "Read API"}],
                "description": summary,
                "params": [
                    {"name": n, "required": req, "schema": schema} for n, schema, req in params
                ],
                "result": {"name": "Result", "required": True, "schema": result},
            }
            for name, (params, result, summary) in METHODS.items()
        ],
        "components": {"schemas": {}},
    }


def protocol_config() -> dict[str, Any]:
    """``sui_getProtocolConfig``: the limits SDKs check transactions against (Sui mainnet's
    values of the same protocol version)."""
    v = str(PROTOCOL_VERSION)
    return {
        "minSupportedProtocolVersion": "1",
        "maxSupportedProtocolVersion": v,
        "protocolVersion": v,
        "featureFlags": {"advance_epoch_start_time_in_safe_mode": True,
                         "enable_effects_v2": True, "package_upgrades": True},
        "attributes": {
            "max_arguments": {"u32": "512"},
            "max_input_objects": {"u64": "2048"},
            "max_num_transferred_move_object_ids": {"u64": "2048"},
            "max_programmable_tx_commands": {"u32": "1024"},
            "max_pure_argument_size": {"u32": "16384"},
            "max_tx_size_bytes": {"u64": "131072"},
            "max_type_argument_depth": {"u32": "16"},
            "max_type_arguments": {"u32": "16"},
            "max_tx_gas": {"u64": "50000000000"},
            "max_gas_payment_objects": {"u32": "256"},
        },
    }


def validator(address: str, pubkey_b64: str, stake: int) -> dict[str, Any]:
    """A ``SuiValidatorSummary`` for the mock's single validator."""
    zero = "0x" + "00" * 32
    return {
        "suiAddress": address, "protocolPubkeyBytes": pubkey_b64,
        "networkPubkeyBytes": pubkey_b64, "workerPubkeyBytes": pubkey_b64,
        "proofOfPossessionBytes": pubkey_b64, "name": "dubhe-mock-validator",
        "description": "the mock chain's only validator", "imageUrl": "", "projectUrl": "",
        "netAddress": "/ip4/127.0.0.1/tcp/8080/http",
        "p2pAddress": "/ip4/127.0.0.1/udp/8084", "primaryAddress": "/ip4/127.0.0.1/udp/8081",
        "workerAddress": "/ip4/127.0.0.1/udp/8082",
        "nextEpochProtocolPubkeyBytes": None, "nextEpochProofOfPossession": None,
        "nextEpochNetworkPubkeyBytes": None, "nextEpochWorkerPubkeyBytes": None,
        "nextEpochNetAddress": None, "nextEpochP2pAddress": None,
        "nextEpochPrimaryAddress": None, "nextEpochWorkerAddress": None,
        "votingPower": "10000", "operationCapId": zero, "gasPrice": str(REFERENCE_GAS_PRICE),
        "commissionRate": "200", "nextEpochStake": str(stake),
        "nextEpochGasPrice": str(REFERENCE_GAS_PRICE), "nextEpochCommissionRate": "200",
        "stakingPoolId": zero, "stakingPoolActivationEpoch": "0",
        "stakingPoolDeactivationEpoch": None, "stakingPoolSuiBalance": str(stake),
        "rewardsPool": "0", "poolTokenBalance": str(stake), "pendingStake": "0",
        "pendingTotalSuiWithdraw": "0", "pendingPoolTokenWithdraw": "0",
        "exchangeRatesId": zero, "exchangeRatesSize": "1",
    }


def system_state(*, epoch_start_ms: int, validators: list[dict[str, Any]],
                 total_stake: int) -> dict[str, Any]:
    """``suix_getLatestSuiSystemState``: epoch 0 for ever (the mock never changes epoch)."""
    zero = "0x" + "00" * 32
    return {
        "epoch": "0", "protocolVersion": str(PROTOCOL_VERSION), "systemStateVersion": "2",
        "storageFundTotalObjectStorageRebates": "0", "storageFundNonRefundableBalance": "0",
        "referenceGasPrice": str(REFERENCE_GAS_PRICE), "safeMode": False,
        "safeModeStorageRewards": "0", "safeModeComputationRewards": "0",
        "safeModeStorageRebates": "0", "safeModeNonRefundableStorageFee": "0",
        "epochStartTimestampMs": str(epoch_start_ms), "epochDurationMs": "86400000",
        "stakeSubsidyStartEpoch": "0", "maxValidatorCount": "150",
        "minValidatorJoiningStake": "30000000000000000", "validatorLowStakeThreshold":
        "20000000000000000", "validatorVeryLowStakeThreshold": "15000000000000000",
        "validatorLowStakeGracePeriod": "7", "stakeSubsidyBalance": "0",
        "stakeSubsidyDistributionCounter": "0", "stakeSubsidyCurrentDistributionAmount": "0",
        "stakeSubsidyPeriodLength": "10", "stakeSubsidyDecreaseRate": 1000,
        "totalStake": str(total_stake), "activeValidators": validators,
        "pendingActiveValidatorsId": zero, "pendingActiveValidatorsSize": "0",
        "pendingRemovals": [], "stakingPoolMappingsId": zero,
        "stakingPoolMappingsSize": str(len(validators)), "inactivePoolsId": zero,
        "inactivePoolsSize": "0", "validatorCandidatesId": zero,
        "validatorCandidatesSize": "0", "atRiskValidators": [], "validatorReportRecords": [],
    }
