/*
 * What the example firmwares (hello.c, echo.c) share: the board's
 * registers (../board.h), the device's, the shared memory, and printing
 * on the test console. start.c has the start-up code and the vector
 * table; each firmware defines firmware_main() (its return value is the
 * exit status) and, to take external interrupt 0, irq0_handler().
 * Freestanding: the compiler's headers only.
 */
#ifndef IVSHMEM_FLAT_UNICORN_FW_H
#define IVSHMEM_FLAT_UNICORN_FW_H

#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "ivshmem-flat.h"

int firmware_main(void);
void irq0_handler(void);

/* ---- the board ----------------------------------------------------------- */

static inline void console_write(uint32_t reg, uint32_t value)
{
	*(volatile uint32_t *)(BOARD_CONSOLE_BASE + reg) = value;
}

static inline uint32_t console_read(uint32_t reg)
{
	return *(volatile uint32_t *)(BOARD_CONSOLE_BASE + reg);
}

static inline uint32_t dev_read(uint32_t reg)
{
	return *(volatile uint32_t *)(IVSHMEM_FLAT_DEFAULT_MMIO_BASE + reg);
}

static inline void dev_write(uint32_t reg, uint32_t value)
{
	*(volatile uint32_t *)(IVSHMEM_FLAT_DEFAULT_MMIO_BASE + reg) = value;
}

static inline void nvic_write(uint32_t reg, uint32_t value)
{
	*(volatile uint32_t *)(BOARD_NVIC_BASE + reg) = value;
}

static inline volatile uint32_t *shm32(uint32_t offset)
{
	return (volatile uint32_t *)(IVSHMEM_FLAT_DEFAULT_SHM_BASE + offset);
}

static inline volatile char *shm_chars(uint32_t offset)
{
	return (volatile char *)(IVSHMEM_FLAT_DEFAULT_SHM_BASE + offset);
}

/* Order the shared-memory stores before a doorbell. */
static inline void barrier(void)
{
	__asm__ volatile("dmb" ::: "memory");
}

static inline void put_char(char c)
{
	console_write(BOARD_CONSOLE_PUTCHAR, (uint8_t)c);
}

static inline void put_str(const char *s)
{
	while (*s)
		put_char(*s++);
}

/* Decimal digits of v into buf (at least 11 bytes), NUL-terminated. */
static inline char *format_uint(char *buf, uint32_t v)
{
	char tmp[10];
	unsigned n = 0, i = 0;

	do {
		tmp[n++] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v);
	while (n)
		buf[i++] = tmp[--n];
	buf[i] = '\0';
	return buf;
}

static inline void put_uint(uint32_t v)
{
	char buf[11];

	put_str(format_uint(buf, v));
}

static inline void put_hex(uint32_t v)
{
	for (int shift = 28; shift >= 0; shift -= 4)
		put_char("0123456789abcdef"[v >> shift & 0xFu]);
}

static inline void __attribute__((noreturn)) board_exit(uint32_t status)
{
	console_write(BOARD_CONSOLE_EXIT, status);
	for (;;)
		;
}

static inline void __attribute__((noreturn)) fail(uint32_t status, const char *why)
{
	put_str("firmware: ");
	put_str(why);
	put_char('\n');
	board_exit(status);
}


/* Print "IVPOSITION <ID>" and set latched mode, checking both (exit 10:
 * no peer ID, 11: not latched); INTRSTATUS is read clear. The ID. */
static inline uint32_t fw_start_latched(void)
{
	uint32_t id = dev_read(IVSHMEM_FLAT_IVPOSITION);

	put_str("IVPOSITION ");
	put_uint(id);
	put_char('\n');
	if (id > 0xFFFFu)
		fail(10, "the device has no peer ID (IVPOSITION 0xFFFFFFFF)");
	dev_write(IVSHMEM_FLAT_INTRMASK, 1u << 0);
	if (dev_read(IVSHMEM_FLAT_INTRMASK) != 1u << 0)
		fail(11, "INTRMASK reads back 0: the device is not in latched mode (run the emulator with --latched)");
	/* Nothing may be pending yet; start from a clear INTRSTATUS. */
	(void)dev_read(IVSHMEM_FLAT_INTRSTATUS);
	return id;
}

#endif /* IVSHMEM_FLAT_UNICORN_FW_H */
