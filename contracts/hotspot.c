/*
 * The hot spot: one constant-product AMM pool (every swap touches the same key) and a single
 * shared counter.
 *
 *   add_liquidity(a: u64be, b: u64be) -> reserves (16 bytes)
 *   swap(a_to_b: u8, amount_in: u64be, min_out: u64be) -> u64be amount_out (0.3% fee)
 *       reverts "empty pool", "slippage", "zero output"
 *   reserves() -> reserve_a(u64be) + reserve_b(u64be)
 *   bump() -> u64be: increments the shared counter (slot "c")
 * Pool slot "r" -> reserve_a(u64be) + reserve_b(u64be). Swaps emit topic "Swap" with
 * data amount_in + amount_out.
 */
#include "abi.h"

DUBHE_LIBC

static const uint8_t POOL[1] = {'r'};
static const uint8_t SWAP_TOPIC[32] = "Swap";

/* (hi:lo) / d for a 128-bit dividend, by shift-subtract (no libgcc). Requires hi < d. */
static uint64_t div128(uint64_t hi, uint64_t lo, uint64_t d)
{
    uint64_t q = 0;
    for (int i = 0; i < 64; i++) {
        uint64_t carry = hi >> 63;
        hi = (hi << 1) | (lo >> 63);
        lo <<= 1;
        q <<= 1;
        if (carry || hi >= d) {
            hi -= d;
            q |= 1;
        }
    }
    return q;
}

static void load_pool(uint64_t r[2])
{
    uint8_t buf[16];
    int64_t n = dubhe_storage_read(POOL, 1, buf, 16);
    if (n < 0) {
        r[0] = r[1] = 0;
        return;
    }
    if (n != 16) dubhe_revert("corrupt pool");
    r[0] = dubhe_load_u64be(buf);
    r[1] = dubhe_load_u64be(buf + 8);
}

static void store_pool(const uint64_t r[2])
{
    uint8_t buf[16];
    dubhe_store_u64be(buf, r[0]);
    dubhe_store_u64be(buf + 8, r[1]);
    dubhe_storage_write(POOL, 1, buf, 16);
    dubhe_set_return(buf, 16);
}

DUBHE_METHOD(add_liquidity)
{
    if (input_len != 16) dubhe_revert("add_liquidity: args must be a(u64) + b(u64)");
    uint64_t r[2];
    load_pool(r);
    uint64_t a = dubhe_load_u64be(input), b = dubhe_load_u64be(input + 8);
    if (r[0] + a < r[0] || r[1] + b < r[1]) dubhe_revert("reserve overflow");
    r[0] += a;
    r[1] += b;
    store_pool(r);
}

DUBHE_METHOD(swap)
{
    if (input_len != 17) dubhe_revert("swap: args must be a_to_b(u8) + amount_in(u64) + min_out(u64)");
    uint64_t r[2];
    load_pool(r);
    if (r[0] == 0 || r[1] == 0) dubhe_revert("empty pool");
    int i = input[0] ? 0 : 1, o = 1 - i;
    uint64_t in = dubhe_load_u64be(input + 1), min_out = dubhe_load_u64be(input + 9);
    /* out = in*997*r_out / (r_in*1000 + in*997), in 128-bit arithmetic */
    unsigned __int128 in_fee = (unsigned __int128)in * 997;
    unsigned __int128 num = in_fee * r[o];
    unsigned __int128 den = (unsigned __int128)r[i] * 1000 + in_fee;
    uint64_t out;
    if ((uint64_t)(den >> 64) != 0) {
        /* shift both down until the divisor fits 64 bits: exact enough for a demo pool */
        while ((uint64_t)(den >> 64) != 0) {
            den >>= 1;
            num >>= 1;
        }
    }
    uint64_t d = (uint64_t)den;
    if ((uint64_t)(num >> 64) >= d) dubhe_revert("overflow");
    out = div128((uint64_t)(num >> 64), (uint64_t)num, d);
    if (out == 0) dubhe_revert("zero output");
    if (out < min_out) dubhe_revert("slippage");
    if (r[i] + in < r[i]) dubhe_revert("reserve overflow");
    r[i] += in;
    r[o] -= out;
    store_pool(r);
    uint8_t topics[1][32];
    memcpy(topics[0], SWAP_TOPIC, 32);
    uint8_t data[16];
    dubhe_store_u64be(data, in);
    dubhe_store_u64be(data + 8, out);
    dubhe_emit(topics, 1, data, 16);
    dubhe_return_u64(out);
}

DUBHE_METHOD(reserves)
{
    (void)input;
    (void)input_len;
    uint64_t r[2];
    load_pool(r);
    uint8_t buf[16];
    dubhe_store_u64be(buf, r[0]);
    dubhe_store_u64be(buf + 8, r[1]);
    dubhe_set_return(buf, 16);
}

DUBHE_METHOD(bump)
{
    (void)input;
    (void)input_len;
    static const uint8_t counter[1] = {'c'};
    uint64_t v = dubhe_read_u64(counter, 1) + 1;
    dubhe_write_u64(counter, 1, v);
    dubhe_return_u64(v);
}
