/*
 * The native token: the system contract at keys.NATIVE_TOKEN (0x00..01).
 *
 * Mirrors node/vm/reference.py exactly (statuses, return data, events, revert reasons):
 *   transfer(to: 20 bytes, amount: u64be)
 *   mint(to: 20 bytes, amount: u64be)      only the mint authority may call it
 *   balance_of(owner: 20 bytes) -> u64be
 * Balances are u64be under slot "b" + owner.
 */
#include "abi.h"

DUBHE_LIBC

/* Patched at genesis (node.vm.genesis.genesis_contracts) with the chain's mint authority.
 * volatile: the compiler must read it at run time, never fold the all-zero placeholder. */
const volatile uint8_t dubhe_mint_authority[20] = {0};

static const uint8_t TRANSFER_TOPIC[32] = {
    0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
    0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef};

static void credit_and_emit(const uint8_t from[20], const uint8_t to[20], uint64_t amount)
{
    DUBHE_ALIGNED uint8_t buf[32];
    uint8_t *slot = dubhe_addr_slot(buf, 'b', to);
    uint64_t tbal = dubhe_read_u64(slot, 21);
    if (tbal + amount < tbal) dubhe_revert("balance overflow");
    dubhe_write_u64(slot, 21, tbal + amount);

    DUBHE_ALIGNED uint8_t topics[3][32];
    memcpy(topics[0], TRANSFER_TOPIC, 32);
    dubhe_address_topic(topics[1], from);
    dubhe_address_topic(topics[2], to);
    DUBHE_ALIGNED uint8_t data[8];
    dubhe_store_u64be(data, amount);
    dubhe_emit(topics, 3, data, 8);
}

DUBHE_METHOD(transfer)
{
    if (input_len != 28) dubhe_revert("transfer: args must be to(20) + amount(u64)");
    uint64_t amount = dubhe_load_u64be(input + 20);
    DUBHE_ALIGNED uint8_t buf[32];
    uint8_t *from = dubhe_addr_slot(buf, 'b', DUBHE_CONTEXT->caller);
    uint64_t fbal = dubhe_read_u64(from, 21);
    if (fbal < amount) dubhe_revert("insufficient balance");
    dubhe_write_u64(from, 21, fbal - amount);
    credit_and_emit(from + 1, input, amount);
}

DUBHE_METHOD(mint)
{
    if (input_len != 28) dubhe_revert("mint: args must be to(20) + amount(u64)");
    const uint8_t *caller = DUBHE_CONTEXT->caller;
    for (int i = 0; i < 20; i++)
        if (caller[i] != dubhe_mint_authority[i]) dubhe_revert("mint: caller is not the mint authority");
    DUBHE_ALIGNED uint8_t zero[24] = {0};
    credit_and_emit(zero, input, dubhe_load_u64be(input + 20));
}

DUBHE_METHOD(balance_of)
{
    if (input_len != 20) dubhe_revert("balance_of: args must be owner(20)");
    DUBHE_ALIGNED uint8_t buf[32];
    dubhe_return_u64(dubhe_read_u64(dubhe_addr_slot(buf, 'b', input), 21));
}
