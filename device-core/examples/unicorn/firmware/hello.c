/*
 * Firmware for the Unicorn example board (../board.h): one request and
 * reply with another peer through the ivshmem-flat device in latched
 * mode. Cortex-M3, Thumb-2, freestanding (no C library).
 *
 * Built twice (meson.build):
 *
 *   hello-firmware.bin      polls INTRSTATUS: Unicorn has no NVIC and
 *                           runs no exception handler, so this is the
 *                           path that needs nothing from the emulator;
 *   hello-firmware-irq.bin  (HELLO_IRQ) takes external interrupt 0 from
 *                           the emulator's minimal NVIC (--irq) and reads
 *                           INTRSTATUS in its handler, sleeping in WFI
 *                           meanwhile.
 *
 * Shared memory at IVSHMEM_FLAT_DEFAULT_SHM_BASE (offsets, little-endian):
 *
 *   0x000 u32     request magic 'RQST' (bytes 52 51 53 54), written by
 *                 the host last; the firmware sets it to 0 when it takes
 *                 the request
 *   0x004 u32     the peer ID to ring (0..65535)
 *   0x100 char[]  the firmware's message, "hello from firmware <ID>",
 *                 NUL-terminated
 *   0x200 char[]  the host's reply, NUL-terminated, 1..255 characters
 *
 * What it does:
 *
 *   1. print "IVPOSITION <ID>" (its own peer ID);
 *   2. set INTRMASK bit 0 and check it reads back (latched mode);
 *   3. wait for the request magic, take the destination, clear the magic;
 *   4. write its message at 0x100 and ring vector 1 of the destination;
 *   5. wait for vector 0 (the host's answer): poll INTRSTATUS until bit 0
 *      is set, or (HELLO_IRQ) sleep until the interrupt handler has seen
 *      it; print "INTRSTATUS 0x00000001 (polled)" or "(IRQ 0 handler)";
 *   6. print "reply: <text>" and exit 0.
 *
 * Exit statuses (the test console's EXIT register): 0 success; 10 the
 * device has no peer ID; 11 the device is not in latched mode; 12 the
 * destination is not a peer ID; 13 the reply is empty or not terminated;
 * 14 the IRQ line stays high after INTRSTATUS was read; 99 a CPU fault
 * or an unexpected interrupt (on a CPU that takes them; Unicorn stops).
 */
#include "fw.h"

#define REQUEST_MAGIC 0x54535152u       /* "RQST" in memory order */
#define SHM_REQUEST 0x000u
#define SHM_DEST 0x004u
#define SHM_MESSAGE 0x100u
#define SHM_REPLY 0x200u
#define REPLY_MAX 256u

/* ---- waiting for vector 0 ------------------------------------------------ */

#ifdef HELLO_IRQ
/* What the handler read from INTRSTATUS (the read cleared it there). */
static volatile uint32_t irq_status;

void irq0_handler(void)
{
	irq_status |= dev_read(IVSHMEM_FLAT_INTRSTATUS);
}

static void irq_enable(void)
{
	nvic_write(BOARD_NVIC_ISER0, 1u << 0);
}

/* Sleep until the handler has seen vector 0. Interrupts stay masked
 * between the test and WFI, which wakes on a pending interrupt all the
 * same, so one that comes in between is not slept through. */
static uint32_t wait_vector0(void)
{
	__asm__ volatile("cpsid i" ::: "memory");
	while (!(irq_status & 1u << 0)) {
		__asm__ volatile("wfi" ::: "memory");
		__asm__ volatile("cpsie i\n\tisb\n\tcpsid i" ::: "memory");
	}
	__asm__ volatile("cpsie i" ::: "memory");
	return irq_status;
}
#define WAITED_BY " (IRQ 0 handler)\n"
#else
static void irq_enable(void)
{
}

/* Poll: reading INTRSTATUS clears it, so keep what each read returned. */
static uint32_t wait_vector0(void)
{
	uint32_t status = 0;

	while (!(status & 1u << 0))
		status |= dev_read(IVSHMEM_FLAT_INTRSTATUS);
	return status;
}
#define WAITED_BY " (polled)\n"
#endif

/* ---- the exchange -------------------------------------------------------- */

int firmware_main(void)
{
	volatile char *msg = shm_chars(SHM_MESSAGE);
	volatile char *reply = shm_chars(SHM_REPLY);
	char text[48] = "hello from firmware ";
	uint32_t id, dest, status;
	unsigned n, i;

	id = fw_start_latched();
	irq_enable();

	put_str("waiting for a request at shared-memory offset 0\n");
	while (*shm32(SHM_REQUEST) != REQUEST_MAGIC)
		;
	dest = *shm32(SHM_DEST);
	*shm32(SHM_REQUEST) = 0;
	if (dest > 0xFFFFu)
		fail(12, "the request's destination is not a peer ID");

	n = 20;         /* strlen("hello from firmware ") */
	format_uint(text + n, id);
	while (text[n])
		n++;
	for (i = 0; i <= n; i++)
		msg[i] = text[i];
	barrier();

	put_str("ringing peer ");
	put_uint(dest);
	put_str(" vector 1\n");
	dev_write(IVSHMEM_FLAT_DOORBELL, dest << 16 | 1u);

	/* The host answers on vector 0. */
	status = wait_vector0();
	put_str("INTRSTATUS 0x");
	put_hex(status);
	put_str(WAITED_BY);
	barrier();
	/* The read cleared the bit, so the level IRQ has gone low. */
	if (console_read(BOARD_CONSOLE_IRQ))
		fail(14, "the IRQ line is still high after INTRSTATUS was read");

	for (i = 0; i < REPLY_MAX && reply[i]; i++)
		;
	if (i == 0 || i == REPLY_MAX)
		fail(13, "the reply at shared-memory offset 0x200 is empty or not NUL-terminated within 256 bytes");
	put_str("reply: ");
	for (i = 0; reply[i]; i++)
		put_char(reply[i]);
	put_char('\n');
	return 0;
}

