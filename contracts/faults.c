/*
 * Misbehaving contract for the VM's fault tests (not deployed at genesis). Each method breaks
 * one rule; `ok` and `echo` behave, so tests can check that other calls are unaffected.
 */
#include "abi.h"

/* These methods misbehave on purpose. */
#pragma GCC diagnostic ignored "-Winfinite-recursion"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Warray-bounds"

DUBHE_LIBC

static uint64_t counter_in_bss;
static uint64_t counter_in_data = 7;

DUBHE_METHOD(ok)
{
    (void)input;
    (void)input_len;
    dubhe_set_return("ok", 2);
}

/* Returns its input, fetched through SYS_INPUT (not the a0/a1 pointer). */
DUBHE_METHOD(echo)
{
    (void)input;
    uint8_t buf[256];
    int64_t n = dubhe_input(buf, sizeof buf);
    dubhe_set_return(buf, (uint64_t)n < input_len ? (uint64_t)n : input_len);
}

/* Returns 8 bytes of each writable area as seen on entry: must always be the pristine values. */
DUBHE_METHOD(residue)
{
    (void)input;
    (void)input_len;
    volatile uint8_t stack_probe[64];
    uint8_t out[32];
    dubhe_store_u64be(out, counter_in_bss);
    dubhe_store_u64be(out + 8, counter_in_data);
    uint64_t s = 0;
    for (int i = 0; i < 64; i++) s = (s << 1) ^ stack_probe[i];
    dubhe_store_u64be(out + 16, s);
    dubhe_store_u64be(out + 24, ((volatile uint64_t *)0x100000UL)[100]);
    counter_in_bss += 1;
    counter_in_data += 1;
    for (int i = 0; i < 64; i++) stack_probe[i] = 0xAA;
    ((volatile uint64_t *)0x100000UL)[100] = 0x55;
    dubhe_set_return(out, 32);
}

/* Context through syscalls and through the context block: caller, self, number, timestamp. */
DUBHE_METHOD(context)
{
    (void)input;
    (void)input_len;
    uint8_t out[96];
    dubhe_syscall(SYS_CALLER, (uint64_t)out, 0, 0, 0);
    dubhe_syscall(SYS_SELF, (uint64_t)(out + 20), 0, 0, 0);
    dubhe_store_u64be(out + 40, (uint64_t)dubhe_syscall(SYS_BLOCK_NUMBER, 0, 0, 0, 0));
    dubhe_store_u64be(out + 48, (uint64_t)dubhe_syscall(SYS_TIMESTAMP, 0, 0, 0, 0));
    dubhe_caller(out + 56);
    dubhe_store_u64be(out + 76, dubhe_block_number());
    dubhe_store_u64be(out + 84, dubhe_timestamp_ms());
    dubhe_set_return(out, 92);
}

DUBHE_METHOD(write_then_revert)
{
    dubhe_storage_write("k", 1, input, input_len);
    dubhe_revert("changed my mind");
}

DUBHE_METHOD(write_then_exit)
{
    dubhe_storage_write("k", 1, input, input_len);
    dubhe_exit(input_len ? input[0] : 0);
}

DUBHE_METHOD(put)
{
    if (input_len < 2) dubhe_revert("put: args must be slot_len(u8) + slot + value");
    dubhe_storage_write(input + 1, input[0], input + 1 + input[0], input_len - 1 - input[0]);
}

DUBHE_METHOD(del)
{
    dubhe_storage_delete(input, input_len);
}

DUBHE_METHOD(bad_pointer)
{
    (void)input;
    (void)input_len;
    /* the raw syscall: the host's bounds check, not the guest's memcpy, must catch it */
    dubhe_syscall(SYS_STORAGE_WRITE, 0xdeadbeef000UL, 4, (uint64_t)"v", 1);
}

DUBHE_METHOD(huge_length)
{
    (void)input_len;
    dubhe_set_return(input, 1UL << 40);
}

DUBHE_METHOD(pointer_wrap)
{
    (void)input;
    (void)input_len;
    dubhe_syscall(SYS_SET_RETURN, (uint64_t)-8, 16, 0, 0);
}

DUBHE_METHOD(read_into_input)
{
    (void)input_len;
    dubhe_storage_read("k", 1, (void *)input, 8);
}

DUBHE_METHOD(read_into_code)
{
    (void)input;
    (void)input_len;
    dubhe_caller((uint8_t *)0); /* compiler-visible store to NULL: guest fault */
}

DUBHE_METHOD(bad_store)
{
    (void)input;
    (void)input_len;
    *(volatile uint64_t *)0x8UL = 1;
}

DUBHE_METHOD(write_code)
{
    (void)input;
    (void)input_len;
    *(volatile uint32_t *)(uint64_t)&ok = 0x13;
}

DUBHE_METHOD(illegal)
{
    (void)input;
    (void)input_len;
    __asm__ volatile(".word 0xc0001073"); /* csrrw zero, cycle, zero: illegal (read-only CSR) */
}

DUBHE_METHOD(infinite_loop)
{
    (void)input;
    (void)input_len;
    for (volatile uint64_t i = 0;; i++) {
    }
}

static uint64_t recurse(volatile uint64_t depth)
{
    volatile uint8_t pad[512];
    pad[0] = (uint8_t)depth;
    return recurse(depth + 1) + pad[0];
}

DUBHE_METHOD(stack_overflow)
{
    (void)input;
    (void)input_len;
    dubhe_return_u64(recurse(0));
}

DUBHE_METHOD(unknown_syscall)
{
    (void)input;
    (void)input_len;
    dubhe_syscall(99, 0, 0, 0, 0);
}

DUBHE_METHOD(bad_slot)
{
    (void)input;
    (void)input_len;
    uint8_t slot[128] = {0};
    dubhe_storage_write(slot, 97, "v", 1);
}

DUBHE_METHOD(many_events)
{
    (void)input;
    (void)input_len;
    for (int i = 0; i < 100; i++) dubhe_emit(0, 0, 0, 0);
}

DUBHE_METHOD(ebreak)
{
    (void)input;
    (void)input_len;
    __asm__ volatile("ebreak");
}

DUBHE_METHOD(jump_to_stub)
{
    (void)input;
    (void)input_len;
    ((volatile uint64_t *)0x100000UL)[8] = 0x1000; /* entry := the stub itself: must run out of gas */
    ((void (*)(void))0x1000UL)();
}

DUBHE_METHOD(corrupt_log)
{
    (void)input;
    (void)input_len;
    DUBHE_EVLOG[0] = 9; /* 9 topics */
    DUBHE_OUT->event_count = 1;
    DUBHE_OUT->event_bytes = 8;
}

DUBHE_METHOD(bad_return_len)
{
    (void)input;
    (void)input_len;
    DUBHE_OUT->ret_len = 5000;
}

/* Events that overflow the 8 KiB log go through SYS_EMIT_EVENT; order must be kept. */
DUBHE_METHOD(big_events)
{
    (void)input_len;
    static uint8_t data[4096];
    for (int i = 0; i < 3; i++) {
        data[0] = (uint8_t)i;
        dubhe_emit(input, 1, data, 4000);
    }
    dubhe_emit(input, 0, "tail", 4);
}

/* Writes that overflow the 8 KiB write log go through SYS_STORAGE_WRITE; order must be kept. */
DUBHE_METHOD(big_writes)
{
    (void)input;
    (void)input_len;
    static uint8_t value[4000];
    for (int i = 0; i < 3; i++) {
        value[0] = (uint8_t)i;
        dubhe_storage_write("k", 1, value, sizeof value);
    }
    uint8_t out[8];
    int64_t n = dubhe_storage_read("k", 1, out, 8);
    dubhe_store_u64be(out + 1, (uint64_t)n);
    dubhe_set_return(out, 1);
}

DUBHE_METHOD(corrupt_wlog)
{
    (void)input;
    (void)input_len;
    DUBHE_WLOG[0] = 0; /* slot length 0 */
    DUBHE_WLOG[1] = 1;
    DUBHE_OUT->write_count = 1;
    DUBHE_OUT->write_bytes = 8;
}
