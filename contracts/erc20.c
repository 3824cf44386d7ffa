/*
 * An ERC-20-like token with allowances and Transfer/Approval events (Ethereum topic hashes).
 *
 *   init(supply: u64be)                       one-time: mints `supply` to the caller
 *   transfer(to: 20, amount: u64be)
 *   approve(spender: 20, amount: u64be)       sets the allowance (overwrites)
 *   transfer_from(from: 20, to: 20, amount: u64be)  spends the caller's allowance from `from`
 *   balance_of(owner: 20) -> u64be
 *   allowance(owner: 20, spender: 20) -> u64be
 *   total_supply() -> u64be
 * Slots: "b"+owner (balance), "a"+owner+spender (allowance), "T" (total supply).
 */
#include "abi.h"

DUBHE_LIBC

static const uint8_t TRANSFER_TOPIC[32] = {
    0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
    0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef};
static const uint8_t APPROVAL_TOPIC[32] = {
    0x8c, 0x5b, 0xe1, 0xe5, 0xeb, 0xec, 0x7d, 0x5b, 0xd1, 0x4f, 0x71, 0x42, 0x7d, 0x1e, 0x84, 0xf3,
    0xdd, 0x03, 0x14, 0xc0, 0xf7, 0xb2, 0x29, 0x1e, 0x5b, 0x20, 0x0a, 0xc8, 0xc7, 0xc3, 0xb9, 0x25};

static void emit3(const uint8_t topic[32], const uint8_t a[20], const uint8_t b[20], uint64_t amount)
{
    uint8_t topics[3][32];
    memcpy(topics[0], topic, 32);
    memset(topics[1], 0, 12);
    memcpy(topics[1] + 12, a, 20);
    memset(topics[2], 0, 12);
    memcpy(topics[2] + 12, b, 20);
    uint8_t data[8];
    dubhe_store_u64be(data, amount);
    dubhe_emit(topics, 3, data, 8);
}

static void bal_slot(uint8_t slot[21], const uint8_t owner[20])
{
    slot[0] = 'b';
    memcpy(slot + 1, owner, 20);
}

static void move(const uint8_t from[20], const uint8_t to[20], uint64_t amount)
{
    uint8_t fs[21], ts[21];
    bal_slot(fs, from);
    uint64_t fbal = dubhe_read_u64(fs, 21);
    if (fbal < amount) dubhe_revert("insufficient balance");
    dubhe_write_u64(fs, 21, fbal - amount);
    bal_slot(ts, to);
    uint64_t tbal = dubhe_read_u64(ts, 21);
    if (tbal + amount < tbal) dubhe_revert("balance overflow");
    dubhe_write_u64(ts, 21, tbal + amount);
    emit3(TRANSFER_TOPIC, from, to, amount);
}

DUBHE_METHOD(init)
{
    if (input_len != 8) dubhe_revert("init: args must be supply(u64)");
    static const uint8_t total[1] = {'T'};
    uint8_t buf[8];
    if (dubhe_storage_read(total, 1, buf, 8) >= 0) dubhe_revert("init: already initialized");
    uint64_t supply = dubhe_load_u64be(input);
    uint8_t caller[20], zero[20], slot[21];
    dubhe_caller(caller);
    memset(zero, 0, 20);
    dubhe_write_u64(total, 1, supply);
    bal_slot(slot, caller);
    dubhe_write_u64(slot, 21, supply);
    emit3(TRANSFER_TOPIC, zero, caller, supply);
}

DUBHE_METHOD(transfer)
{
    if (input_len != 28) dubhe_revert("transfer: args must be to(20) + amount(u64)");
    uint8_t caller[20];
    dubhe_caller(caller);
    move(caller, input, dubhe_load_u64be(input + 20));
}

DUBHE_METHOD(approve)
{
    if (input_len != 28) dubhe_revert("approve: args must be spender(20) + amount(u64)");
    uint8_t slot[41];
    slot[0] = 'a';
    dubhe_caller(slot + 1);
    memcpy(slot + 21, input, 20);
    uint64_t amount = dubhe_load_u64be(input + 20);
    dubhe_write_u64(slot, 41, amount);
    emit3(APPROVAL_TOPIC, slot + 1, input, amount);
}

DUBHE_METHOD(transfer_from)
{
    if (input_len != 48) dubhe_revert("transfer_from: args must be from(20) + to(20) + amount(u64)");
    uint64_t amount = dubhe_load_u64be(input + 40);
    uint8_t slot[41];
    slot[0] = 'a';
    memcpy(slot + 1, input, 20);
    dubhe_caller(slot + 21);
    uint64_t allowed = dubhe_read_u64(slot, 41);
    if (allowed < amount) dubhe_revert("insufficient allowance");
    dubhe_write_u64(slot, 41, allowed - amount);
    move(input, input + 20, amount);
}

DUBHE_METHOD(balance_of)
{
    if (input_len != 20) dubhe_revert("balance_of: args must be owner(20)");
    uint8_t slot[21];
    bal_slot(slot, input);
    dubhe_return_u64(dubhe_read_u64(slot, 21));
}

DUBHE_METHOD(allowance)
{
    if (input_len != 40) dubhe_revert("allowance: args must be owner(20) + spender(20)");
    uint8_t slot[41];
    slot[0] = 'a';
    memcpy(slot + 1, input, 40);
    dubhe_return_u64(dubhe_read_u64(slot, 41));
}

DUBHE_METHOD(total_supply)
{
    (void)input;
    (void)input_len;
    static const uint8_t total[1] = {'T'};
    dubhe_return_u64(dubhe_read_u64(total, 1));
}
