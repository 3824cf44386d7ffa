/*
 * Dubhe RISC-V contract ABI (RV64IM, lp64, no compressed instructions, no floating point).
 *
 * A contract is a freestanding static ELF. Every global function with default visibility is a
 * method callable by name (a transaction's `method`); helpers must be `static` or DUBHE_HIDDEN.
 * The host calls a method as
 *
 *     void method(const uint8_t *input, uint64_t input_len);
 *
 * with the transaction's args already copied to the read-only input region. Returning normally
 * is success; return data is whatever was last passed to dubhe_set_return().
 *
 * Memory map (fixed, 4 KiB pages, exact permissions):
 *   0x00001000  host entry stub                          r-x (metered like contract code)
 *   0x00002000  exit page: returning here ends the call   r-x
 *   0x00010000  ELF PT_LOAD segments (up to 0x100000)    from p_flags; W+X is rejected
 *   0x00100000  syscall page: syscall block at +0, entry  rw-
 *               parameters at +64, call context at +96 (dubhe_context_t)
 *   0x00101000  input region (64 KiB)                    r--
 *   0x00120000  return buffer (4 KiB), event log (8 KiB),  rw-
 *               storage write log (8 KiB at 0x123000)
 *   0x7FFF8000  stack (32 KiB, sp starts at the top)      rw-
 * Everything else is unmapped: touching it is a FAULT. Writable memory (data, bss, stack,
 * syscall page) is reset before every call, so nothing survives between transactions except
 * storage.
 *
 * Syscalls: the guest stores the arguments and then the number in the syscall block and
 * executes `ecall`; the host writes the result to `ret`. Pointers and lengths are checked
 * against the mapped regions: an out-of-range pointer is a FAULT, never a host overflow.
 * Output buffers must be writable memory (data, bss, stack or the syscall page).
 *
 * Gas: 1 per executed instruction (metered per basic block), plus per syscall:
 *   storage_read 200, storage_write 500, storage_delete 500, every other syscall 10, and 300
 *   per event (logged events are charged when the call ends). A transaction also pays 1000.
 * See docs/vm-abi.md for the full description.
 */
#ifndef DUBHE_ABI_H
#define DUBHE_ABI_H

typedef unsigned char uint8_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef long int64_t;
typedef unsigned long size_t;

/* Unaligned 8-byte access: the VM allows misaligned loads/stores (checked by its self-test) and
 * the Makefile tunes for fast misaligned access, so these compile to single ld/sd. */
typedef uint64_t __attribute__((may_alias, aligned(1))) dubhe_u64u;
typedef uint32_t __attribute__((may_alias, aligned(1))) dubhe_u32u;

/* Guest stores are the VM's expensive instructions (every store takes unicorn's dirty-page slow
 * path, ~37 ns; a misaligned 8-byte store ~190 ns; loads and ALU ops ~1 ns): the helpers below
 * store whole aligned words where they can. */
static inline uint64_t dubhe_bswap64(uint64_t x)
{
    x = ((x & 0x00FF00FF00FF00FFUL) << 8) | ((x >> 8) & 0x00FF00FF00FF00FFUL);
    x = ((x & 0x0000FFFF0000FFFFUL) << 16) | ((x >> 16) & 0x0000FFFF0000FFFFUL);
    return (x << 32) | (x >> 32);
}

#define DUBHE_HIDDEN __attribute__((visibility("hidden")))
#define DUBHE_METHOD(name) void name(const uint8_t *input, uint64_t input_len)

/* Defined by DUBHE_LIBC (the compiler may also emit calls to them). */
DUBHE_HIDDEN void *memcpy(void *d, const void *s, size_t n);
DUBHE_HIDDEN void *memset(void *d, int c, size_t n);
DUBHE_HIDDEN int memcmp(const void *a, const void *b, size_t n);

/* syscall numbers */
#define SYS_STORAGE_READ   1  /* (slot, slot_len 1..96, out, out_cap) -> value length, or -1 if absent; copies min(len, cap) */
#define SYS_STORAGE_WRITE  2  /* (slot, slot_len, value, value_len <= 4096) -> 0 */
#define SYS_STORAGE_DELETE 3  /* (slot, slot_len) -> 0 */
#define SYS_INPUT          4  /* (out, out_cap) -> input length; copies min(len, cap) */
#define SYS_SET_RETURN     5  /* (ptr, len <= 4096) -> 0; same effect as dubhe_set_return's memory write */
#define SYS_EMIT_EVENT     6  /* (topics, n_topics 0..4 (32 bytes each), data, data_len <= 4096) -> 0;
                                 flushes the event log first, so order is kept */
#define SYS_CALLER         7  /* (out20) -> 0: the transaction sender (or the dubhe_call caller) */
#define SYS_SELF           8  /* (out20) -> 0: this contract's address */
#define SYS_BLOCK_NUMBER   9  /* () -> block number */
#define SYS_TIMESTAMP      10 /* () -> block timestamp in milliseconds */
#define SYS_REVERT         11 /* (reason, len <= 256) -> does not return; status REVERT, writes discarded */
#define SYS_EXIT           12 /* (code) -> does not return; 0 = success, otherwise REVERT "exit code N" */

typedef struct {
    volatile uint64_t nr;
    volatile uint64_t a[4];
    volatile int64_t ret;
} dubhe_sysblock_t;

#define DUBHE_SYSBLOCK ((dubhe_sysblock_t *)0x100000UL)

static inline int64_t dubhe_syscall(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
    dubhe_sysblock_t *s = DUBHE_SYSBLOCK;
    s->a[0] = a0;
    s->a[1] = a1;
    s->a[2] = a2;
    s->a[3] = a3;
    s->nr = nr;
    __asm__ volatile("ecall" ::: "memory");
    return s->ret;
}

static inline int64_t dubhe_storage_read(const void *slot, uint64_t slot_len, void *out, uint64_t cap)
{ return dubhe_syscall(SYS_STORAGE_READ, (uint64_t)slot, slot_len, (uint64_t)out, cap); }
static inline int64_t dubhe_input(void *out, uint64_t cap)
{ return dubhe_syscall(SYS_INPUT, (uint64_t)out, cap, 0, 0); }
/* Output area: return data and events are written to memory, not passed by syscall (an ecall
 * costs the host a Python callback). The host reads them when the call ends. */
typedef struct {
    volatile uint64_t ret_len;     /* bytes of return data in DUBHE_RETBUF (the last set wins) */
    volatile uint64_t event_count; /* records in DUBHE_EVLOG */
    volatile uint64_t event_bytes; /* bytes of DUBHE_EVLOG used (records padded to 8) */
    volatile uint64_t write_count; /* records in DUBHE_WLOG */
    volatile uint64_t write_bytes; /* bytes of DUBHE_WLOG used (records padded to 8) */
} dubhe_out_t;

#define DUBHE_OUT ((dubhe_out_t *)0x1000C0UL)
#define DUBHE_RETBUF ((uint8_t *)0x120000UL)
#define DUBHE_RETBUF_SIZE 4096UL
#define DUBHE_EVLOG ((uint8_t *)0x121000UL)
#define DUBHE_EVLOG_SIZE 8192UL
#define DUBHE_MAX_EVENTS 64UL
#define DUBHE_WLOG ((uint8_t *)0x123000UL)
#define DUBHE_WLOG_SIZE 8192UL
#define DUBHE_MAX_LOGGED_WRITES 256UL

static inline void dubhe_set_return(const void *p, uint64_t len)
{
    if (len > DUBHE_RETBUF_SIZE) { /* let the host fault with the reason */
        dubhe_syscall(SYS_SET_RETURN, (uint64_t)p, len, 0, 0);
        return;
    }
    memcpy(DUBHE_RETBUF, p, len);
    DUBHE_OUT->ret_len = len;
}

/* Storage writes and deletes are appended to the write log (record: u8 slot_len, u8 op, 2 pad,
 * u32 value_len, slot padded to 8, value, padded to 8); the host applies the log in order
 * before the next storage syscall (so reads see them) and when the call ends, with exactly the
 * checks, gas and errors of SYS_STORAGE_WRITE / SYS_STORAGE_DELETE. What does not fit the log
 * (or is invalid) goes through the syscall, which applies the log first. */
static inline void dubhe_log_write(uint64_t op, const void *slot, uint64_t slot_len, const void *val, uint64_t len)
{
    uint64_t used = DUBHE_OUT->write_bytes;
    uint64_t slot_pad = (slot_len + 7) & ~7UL;
    uint64_t size = (8 + slot_pad + len + 7) & ~7UL;
    if (slot_len - 1 >= 96 || len > 4096 || DUBHE_OUT->write_count >= DUBHE_MAX_LOGGED_WRITES ||
        used + size > DUBHE_WLOG_SIZE) {
        if (op == 1)
            dubhe_syscall(SYS_STORAGE_WRITE, (uint64_t)slot, slot_len, (uint64_t)val, len);
        else
            dubhe_syscall(SYS_STORAGE_DELETE, (uint64_t)slot, slot_len, 0, 0);
        return;
    }
    uint8_t *r = DUBHE_WLOG + used;
    r[0] = (uint8_t)slot_len;
    r[1] = (uint8_t)op;
    *(uint32_t *)(r + 4) = (uint32_t)len;
    memcpy(r + 8, slot, slot_len);
    memcpy(r + 8 + slot_pad, val, len);
    DUBHE_OUT->write_count += 1;
    DUBHE_OUT->write_bytes = used + size;
}

static inline void dubhe_storage_write(const void *slot, uint64_t slot_len, const void *val, uint64_t len)
{ dubhe_log_write(1, slot, slot_len, val, len); }
static inline void dubhe_storage_delete(const void *slot, uint64_t slot_len)
{ dubhe_log_write(2, slot, slot_len, 0, 0); }

/* Append an event (n_topics 32-byte topics, then data) to the log; when it does not fit, the
 * SYS_EMIT_EVENT syscall makes the host flush the log and take this event directly. */
static inline void dubhe_emit(const void *topics, uint64_t n_topics, const void *data, uint64_t len)
{
    uint64_t used = DUBHE_OUT->event_bytes;
    uint64_t size = (8 + 32 * n_topics + len + 7) & ~7UL;
    if (n_topics > 4 || len > 4096 || DUBHE_OUT->event_count >= DUBHE_MAX_EVENTS || used + size > DUBHE_EVLOG_SIZE) {
        dubhe_syscall(SYS_EMIT_EVENT, (uint64_t)topics, n_topics, (uint64_t)data, len);
        return;
    }
    uint8_t *r = DUBHE_EVLOG + used;
    r[0] = (uint8_t)n_topics;
    *(uint32_t *)(r + 4) = (uint32_t)len;
    memcpy(r + 8, topics, 32 * n_topics);
    memcpy(r + 8 + 32 * n_topics, data, len);
    DUBHE_OUT->event_count += 1;
    DUBHE_OUT->event_bytes = used + size;
}
/* The call context, written by the host into the syscall page before every call. Reading it
 * costs no syscall; SYS_CALLER/SYS_SELF/SYS_BLOCK_NUMBER/SYS_TIMESTAMP return the same values. */
typedef struct {
    uint8_t caller[20];
    uint8_t self[20];
    uint64_t block_number;
    uint64_t timestamp_ms;
    uint64_t chain_id;
} __attribute__((packed)) dubhe_context_t;

#define DUBHE_CONTEXT ((const dubhe_context_t *)0x100060UL)

static inline void dubhe_copy20(uint8_t *d, const uint8_t *s)
{
    *(dubhe_u64u *)d = *(const dubhe_u64u *)s;
    *(dubhe_u64u *)(d + 8) = *(const dubhe_u64u *)(s + 8);
    *(uint32_t __attribute__((may_alias, aligned(1))) *)(d + 16) =
        *(const uint32_t __attribute__((may_alias, aligned(1))) *)(s + 16);
}
static inline void dubhe_caller(uint8_t out[20]) { dubhe_copy20(out, DUBHE_CONTEXT->caller); }
static inline void dubhe_self(uint8_t out[20]) { dubhe_copy20(out, DUBHE_CONTEXT->self); }
static inline uint64_t dubhe_block_number(void) { return DUBHE_CONTEXT->block_number; }
static inline uint64_t dubhe_timestamp_ms(void) { return DUBHE_CONTEXT->timestamp_ms; }
static inline uint64_t dubhe_chain_id(void) { return DUBHE_CONTEXT->chain_id; }

__attribute__((noreturn)) static inline void dubhe_revert_n(const char *reason, uint64_t len)
{
    dubhe_syscall(SYS_REVERT, (uint64_t)reason, len, 0, 0);
    __builtin_unreachable();
}
/* dubhe_revert("literal"): the length is computed at compile time. */
#define dubhe_revert(lit) dubhe_revert_n((lit), sizeof(lit) - 1)

__attribute__((noreturn)) static inline void dubhe_exit(uint64_t code)
{
    dubhe_syscall(SYS_EXIT, code, 0, 0, 0);
    __builtin_unreachable();
}

/* ---- small helpers (header-only; the compiler may also emit calls to memcpy/memset) ---- */


static inline uint64_t dubhe_load_u64be(const uint8_t *p) { return dubhe_bswap64(*(const dubhe_u64u *)p); }
static inline void dubhe_store_u64be(uint8_t *p, uint64_t v) { *(dubhe_u64u *)p = dubhe_bswap64(v); }

/* An Ethereum-style address topic: 12 zero bytes then the 20-byte address, in 5 aligned stores
 * (t must be 8-aligned). */
static inline void dubhe_address_topic(uint8_t t[32], const uint8_t a[20])
{
    *(uint64_t *)t = 0;
    *(uint32_t *)(t + 8) = 0;
    *(uint32_t *)(t + 12) = *(const dubhe_u32u *)a;
    *(uint64_t *)(t + 16) = *(const dubhe_u64u *)(a + 4);
    *(uint64_t *)(t + 24) = *(const dubhe_u64u *)(a + 12);
}

/* A storage slot "prefix byte + 20-byte address" built so the address lands 8-aligned: declare
 * `DUBHE_ALIGNED uint8_t buf[32]`, then the slot is buf + 7 (21 bytes). */
#define DUBHE_ALIGNED __attribute__((aligned(8)))
static inline uint8_t *dubhe_addr_slot(uint8_t buf[32], uint8_t prefix, const uint8_t a[20])
{
    buf[7] = prefix;
    *(uint64_t *)(buf + 8) = *(const dubhe_u64u *)a;
    *(uint64_t *)(buf + 16) = *(const dubhe_u64u *)(a + 8);
    *(uint32_t *)(buf + 24) = *(const dubhe_u32u *)(a + 16);
    return buf + 7;
}

/* Read a u64be storage value; absent reads as 0, a value that is not 8 bytes reverts. */
static inline uint64_t dubhe_read_u64(const void *slot, uint64_t slot_len)
{
    DUBHE_ALIGNED uint8_t buf[8];
    int64_t n = dubhe_storage_read(slot, slot_len, buf, 8);
    if (n < 0) return 0;
    if (n != 8) dubhe_revert("corrupt u64 value");
    return dubhe_load_u64be(buf);
}

static inline void dubhe_write_u64(const void *slot, uint64_t slot_len, uint64_t v)
{
    DUBHE_ALIGNED uint8_t buf[8];
    dubhe_store_u64be(buf, v);
    dubhe_storage_write(slot, slot_len, buf, 8);
}

static inline void dubhe_return_u64(uint64_t v)
{
    DUBHE_ALIGNED uint8_t buf[8];
    dubhe_store_u64be(buf, v);
    dubhe_set_return(buf, 8);
}

/* Define the memcpy/memset/memcmp bodies once per contract: put DUBHE_LIBC in one .c file. */
#define DUBHE_LIBC                                                                 \
    void *memcpy(void *d, const void *s, size_t n) {                               \
        uint8_t *dd = d; const uint8_t *ss = s;                                    \
        for (; n >= 8; n -= 8, dd += 8, ss += 8)                                   \
            *(dubhe_u64u *)dd = *(const dubhe_u64u *)ss;                           \
        if (n & 4) { *(dubhe_u32u *)dd = *(const dubhe_u32u *)ss; dd += 4; ss += 4; } \
        if (n & 2) { dd[0] = ss[0]; dd[1] = ss[1]; dd += 2; ss += 2; }             \
        if (n & 1) *dd = *ss;                                                      \
        return d;                                                                  \
    }                                                                              \
    void *memset(void *d, int c, size_t n) {                                       \
        uint8_t *dd = d;                                                           \
        uint64_t w = 0x0101010101010101UL * (uint8_t)c;                            \
        for (; n >= 8; n -= 8, dd += 8) *(dubhe_u64u *)dd = w;                     \
        if (n & 4) { *(dubhe_u32u *)dd = (uint32_t)w; dd += 4; }                   \
        while (n-- & 3) *dd++ = (uint8_t)c;                                        \
        return d;                                                                  \
    }                                                                              \
    int memcmp(const void *a, const void *b, size_t n) {                           \
        const uint8_t *x = a, *y = b;                                              \
        for (; n; n--, x++, y++) if (*x != *y) return *x < *y ? -1 : 1;            \
        return 0;                                                                  \
    }

#endif
