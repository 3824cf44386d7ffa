/*
 * Compute-heavy contract: hash loops of configurable length (no storage).
 *
 *   hash_loop(iterations: u64be [, seed: 32 bytes]) -> 32-byte digest
 *       ALU-bound mixing of a 4 x u64 state, ~14 instructions per iteration
 *   hash_memory(iterations: u64be) -> 32-byte digest
 *       FNV-1a over a 1 KiB scratch buffer (loads and stores) per iteration
 */
#include "abi.h"

DUBHE_LIBC

static uint8_t scratch[1024];

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void put_state(const uint64_t s[4])
{
    uint8_t out[32];
    for (int i = 0; i < 4; i++) dubhe_store_u64be(out + 8 * i, s[i]);
    dubhe_set_return(out, 32);
}

DUBHE_METHOD(hash_loop)
{
    if (input_len != 8 && input_len != 40) dubhe_revert("hash_loop: args must be iterations(u64) [+ seed(32)]");
    uint64_t n = dubhe_load_u64be(input);
    uint64_t s[4] = {0x6a09e667f3bcc908UL, 0xbb67ae8584caa73bUL, 0x3c6ef372fe94f82bUL, 0xa54ff53a5f1d36f1UL};
    if (input_len == 40)
        for (int i = 0; i < 4; i++) s[i] ^= dubhe_load_u64be(input + 8 + 8 * i);
    for (uint64_t i = 0; i < n; i++) {
        s[0] += s[1];
        s[3] ^= s[0];
        s[3] = rotl(s[3], 32);
        s[2] += s[3] * 0x9e3779b97f4a7c15UL;
        s[1] ^= s[2];
        s[1] = rotl(s[1], 24) ^ i;
    }
    put_state(s);
}

DUBHE_METHOD(hash_memory)
{
    if (input_len != 8) dubhe_revert("hash_memory: args must be iterations(u64)");
    uint64_t n = dubhe_load_u64be(input);
    uint64_t h = 0xcbf29ce484222325UL;
    for (int i = 0; i < 1024; i++) scratch[i] = (uint8_t)i;
    for (uint64_t it = 0; it < n; it++) {
        for (int i = 0; i < 1024; i += 8) {
            h ^= *(volatile uint64_t *)(scratch + i);
            h *= 0x100000001b3UL;
            *(volatile uint64_t *)(scratch + i) = h;
        }
    }
    uint64_t s[4] = {h, rotl(h, 16), rotl(h, 32), rotl(h, 48)};
    put_state(s);
}
