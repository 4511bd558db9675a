/*
 * The board of the Unicorn example: what ivshmem-flat-unicorn maps and
 * what the firmware uses. Freestanding (stdint.h only), for both sides;
 * firmware/link.ld repeats the flash and RAM lines.
 *
 *   0x00000000  flash, BOARD_FLASH_SIZE: the firmware binary (vector
 *               table first: initial SP, then the reset vector)
 *   0x20000000  RAM, BOARD_RAM_SIZE
 *   0x40000000  the test console, BOARD_CONSOLE_SIZE (registers below)
 *   0x400FF000  the ivshmem-flat registers (ivshmem-flat.h)
 *   0x40100000  the ivshmem-flat shared memory (4 MiB by default)
 *   0xE000E000  with --irq only: a minimal NVIC (registers below)
 *
 * Interrupts: Unicorn has no NVIC and runs no exception handler, so by
 * default nothing interrupts the CPU and firmware polls INTRSTATUS
 * (latched mode). With --irq the emulator delivers the device's IRQ
 * line as external interrupt 0 (exception 16, the vector table's entry
 * 16) itself, through the minimal NVIC below.
 */
#ifndef IVSHMEM_FLAT_UNICORN_BOARD_H
#define IVSHMEM_FLAT_UNICORN_BOARD_H

#include <stdint.h>

#define BOARD_FLASH_BASE 0x00000000u
#define BOARD_FLASH_SIZE (256u * 1024u)
#define BOARD_RAM_BASE 0x20000000u
#define BOARD_RAM_SIZE (64u * 1024u)

/*
 * The test console: 32-bit registers, any width accepted.
 *
 *   0x00 PUTCHAR  write: the low byte goes to the emulator's stdout
 *   0x04 EXIT     write: stop the CPU; the emulator exits with the low
 *                 byte of the value as its status
 *   0x08 IRQ      read: the level (0 or 1) of the device's IRQ line 0,
 *                 the line an interrupt controller would see
 *   0x0C FENCE    read: 0, after a full memory barrier on the host. The
 *                 emulated CPU's DMB orders its accesses for itself but
 *                 not against the host's other threads and processes
 *                 (Unicorn does not promise a host barrier for it): firmware that
 *                 shares memory with them reads FENCE where a store must
 *                 be seen before a later load (the channel core's full
 *                 barrier, ivchan.h IVCHAN_FULL_BARRIER_HOOK)
 *
 * Other offsets read 0 and ignore writes.
 */
#define BOARD_CONSOLE_BASE 0x40000000u
#define BOARD_CONSOLE_SIZE 0x1000u
#define BOARD_CONSOLE_PUTCHAR 0x00u
#define BOARD_CONSOLE_EXIT 0x04u
#define BOARD_CONSOLE_IRQ 0x08u
#define BOARD_CONSOLE_FENCE 0x0Cu

/*
 * The minimal NVIC of --irq: external interrupt 0 only, the device's IRQ
 * line. Bit 0 of each register; the other bits and registers of the
 * system control space read 0 and ignore writes. No priorities and no
 * nesting: the interrupt is taken in thread mode, on the main stack,
 * while PRIMASK and FAULTMASK are 0. It becomes pending when the line
 * goes high, and again when its handler returns with the line still high.
 *
 *   0xE000E100 ISER0  write 1: enable; read: enabled
 *   0xE000E180 ICER0  write 1: disable; read: enabled
 *   0xE000E200 ISPR0  write 1: set pending; read: pending
 *   0xE000E280 ICPR0  write 1: clear pending; read: pending
 *   0xE000E300 IABR0  read: active (its handler is running)
 */
#define BOARD_NVIC_BASE 0xE000E000u
#define BOARD_NVIC_SIZE 0x1000u
#define BOARD_NVIC_ISER0 0x100u
#define BOARD_NVIC_ICER0 0x180u
#define BOARD_NVIC_ISPR0 0x200u
#define BOARD_NVIC_ICPR0 0x280u
#define BOARD_NVIC_IABR0 0x300u
/* The vector table entry of external interrupt 0. */
#define BOARD_IRQ0_VECTOR 16u

#endif /* IVSHMEM_FLAT_UNICORN_BOARD_H */
