/*
 * The counter demo: the system contract at keys.COUNTER_DEMO (0x00..02).
 *
 * Mirrors node/vm/reference.py exactly:
 *   increment(slot: 1..32 bytes, delta: u64be) -> u64be   adds (mod 2^64) and returns the new value
 *   get(slot: 1..32 bytes) -> u64be
 * The counter lives under the caller-chosen slot itself.
 */
#include "abi.h"

DUBHE_LIBC

DUBHE_METHOD(increment)
{
    if (input_len < 9 || input_len > 40) dubhe_revert("increment: args must be slot(1..32) + delta(u64)");
    uint64_t slot_len = input_len - 8;
    uint64_t v = dubhe_read_u64(input, slot_len) + dubhe_load_u64be(input + slot_len);
    dubhe_write_u64(input, slot_len, v);
    dubhe_return_u64(v);
}

DUBHE_METHOD(get)
{
    if (input_len < 1 || input_len > 32) dubhe_revert("get: args must be slot(1..32)");
    dubhe_return_u64(dubhe_read_u64(input, input_len));
}
