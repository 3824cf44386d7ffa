/*
 * A Sui-style object registry: owned objects (create / transfer / mutate / destroy by the owner)
 * and one shared object anyone may mutate.
 *
 *   create(id: 32, data: 0..256)      -> u64be version (1); reverts "object exists"
 *   transfer(id: 32, new_owner: 20)   -> u64be version; owner only
 *   mutate(id: 32, data: 0..256)      -> u64be version; owner only
 *   destroy(id: 32)                   owner only (storage delete)
 *   get(id: 32) -> owner(20) + version(u64be) + data
 *   shared_add(delta: u64be) -> u64be new value of the shared counter (slot "S")
 *   shared_get() -> u64be
 * Object slot: "o" + id -> owner(20) + version(u64be) + data. Events: topic "ObjectChanged"
 * padded to 32 bytes, topic id; data = record.
 */
#include "abi.h"

DUBHE_LIBC

#define MAX_DATA 256
#define HDR 28

static const uint8_t CHANGED_TOPIC[32] = "ObjectChanged";

static void obj_slot(uint8_t slot[33], const uint8_t id[32])
{
    slot[0] = 'o';
    memcpy(slot + 1, id, 32);
}

static int64_t load(const uint8_t slot[33], uint8_t rec[HDR + MAX_DATA])
{
    int64_t n = dubhe_storage_read(slot, 33, rec, HDR + MAX_DATA);
    if (n < 0) dubhe_revert("no such object");
    if (n < HDR || n > HDR + MAX_DATA) dubhe_revert("corrupt object");
    return n;
}

static void require_owner(const uint8_t rec[HDR])
{
    uint8_t caller[20];
    dubhe_caller(caller);
    if (memcmp(caller, rec, 20) != 0) dubhe_revert("not the owner");
}

static void store(const uint8_t slot[33], uint8_t *rec, uint64_t n)
{
    dubhe_storage_write(slot, 33, rec, n);
    uint8_t topics[2][32];
    memcpy(topics[0], CHANGED_TOPIC, 32);
    memcpy(topics[1], slot + 1, 32);
    dubhe_emit(topics, 2, rec, n);
    dubhe_return_u64(dubhe_load_u64be(rec + 20));
}

DUBHE_METHOD(create)
{
    if (input_len < 32 || input_len > 32 + MAX_DATA) dubhe_revert("create: args must be id(32) + data(0..256)");
    uint8_t slot[33], rec[HDR + MAX_DATA];
    obj_slot(slot, input);
    if (dubhe_storage_read(slot, 33, rec, 0) >= 0) dubhe_revert("object exists");
    dubhe_caller(rec);
    dubhe_store_u64be(rec + 20, 1);
    memcpy(rec + HDR, input + 32, input_len - 32);
    store(slot, rec, HDR + input_len - 32);
}

DUBHE_METHOD(transfer)
{
    if (input_len != 52) dubhe_revert("transfer: args must be id(32) + new_owner(20)");
    uint8_t slot[33], rec[HDR + MAX_DATA];
    obj_slot(slot, input);
    int64_t n = load(slot, rec);
    require_owner(rec);
    memcpy(rec, input + 32, 20);
    dubhe_store_u64be(rec + 20, dubhe_load_u64be(rec + 20) + 1);
    store(slot, rec, (uint64_t)n);
}

DUBHE_METHOD(mutate)
{
    if (input_len < 32 || input_len > 32 + MAX_DATA) dubhe_revert("mutate: args must be id(32) + data(0..256)");
    uint8_t slot[33], rec[HDR + MAX_DATA];
    obj_slot(slot, input);
    load(slot, rec);
    require_owner(rec);
    dubhe_store_u64be(rec + 20, dubhe_load_u64be(rec + 20) + 1);
    memcpy(rec + HDR, input + 32, input_len - 32);
    store(slot, rec, HDR + input_len - 32);
}

DUBHE_METHOD(destroy)
{
    if (input_len != 32) dubhe_revert("destroy: args must be id(32)");
    uint8_t slot[33], rec[HDR + MAX_DATA];
    obj_slot(slot, input);
    load(slot, rec);
    require_owner(rec);
    dubhe_storage_delete(slot, 33);
    uint8_t topics[2][32];
    memcpy(topics[0], CHANGED_TOPIC, 32);
    memcpy(topics[1], input, 32);
    dubhe_emit(topics, 2, 0, 0);
}

DUBHE_METHOD(get)
{
    if (input_len != 32) dubhe_revert("get: args must be id(32)");
    uint8_t slot[33], rec[HDR + MAX_DATA];
    obj_slot(slot, input);
    int64_t n = load(slot, rec);
    dubhe_set_return(rec, (uint64_t)n);
}

DUBHE_METHOD(shared_add)
{
    if (input_len != 8) dubhe_revert("shared_add: args must be delta(u64)");
    static const uint8_t shared[1] = {'S'};
    uint64_t v = dubhe_read_u64(shared, 1) + dubhe_load_u64be(input);
    dubhe_write_u64(shared, 1, v);
    dubhe_return_u64(v);
}

DUBHE_METHOD(shared_get)
{
    (void)input;
    (void)input_len;
    static const uint8_t shared[1] = {'S'};
    dubhe_return_u64(dubhe_read_u64(shared, 1));
}
