/*
 * Firmware for the Unicorn example board (../board.h): an echo over a
 * channel (ivshmem-channel(7)) in the shared memory of the ivshmem-flat
 * device, in latched mode. Cortex-M3, Thumb-2, freestanding: it compiles
 * the channel core (libivshmem/ivchan.c) as it is.
 *
 * The host writes a layout at offset 0 of the shared memory with a
 * channel named "echo" and attaches to its end 0. This firmware:
 *
 *   1. prints "IVPOSITION <ID>" (its own peer ID) and sets latched mode;
 *   2. waits until the layout and the channel are there, attaches to end
 *      1 (its ID, vector 0) and prints "attached";
 *   3. sends every message it receives back unchanged, in place from one
 *      ring to the other, ringing the host (the peer ID and vector its end
 *      records) only when the channel says the host asked for it;
 *   4. its full barriers also read the board's FENCE register, a host
 *      barrier (board.h): the emulated DMB need not be one;
 *   5. with nothing to receive (or no room to send), asks for a doorbell
 *      and polls INTRSTATUS until vector 0 is rung; it looks at the ring
 *      between reads too, so that an emulator that does not order the
 *      CPU's stores and loads against the host's cannot make it sleep
 *      through a message;
 *   6. on an empty message, prints "echo: <n> messages, rung <r>, sleeps
 *      <s>" and exits 0.
 *
 * Exit statuses (the test console's EXIT register): 0 success; 10 the
 * device has no peer ID; 11 the device is not in latched mode; 20 the
 * attach failed; 21 the channel broke (the host wrote a value that breaks
 * the format: the reason is printed); 99 a CPU fault.
 */
#include "fw.h"
#include "ivchan.h"

/* Where the host puts the layout, and the channel's name. */
#define LAYOUT_OFFSET 0u
#define CHANNEL "echo"

static struct ivchan ch;

/* The channel core's full barrier (built with IVCHAN_FULL_BARRIER_HOOK):
 * the CPU's DMB, and the board's FENCE read for the host (board.h). */
void ivchan_full_barrier(void)
{
	__asm__ volatile("dmb" ::: "memory");
	(void)console_read(BOARD_CONSOLE_FENCE);
	__asm__ volatile("dmb" ::: "memory");
}

static void __attribute__((noreturn)) broken(void)
{
	put_str("firmware: the channel broke: ");
	fail(21, ivchan_broken_str(ivchan_broken(&ch)));
}

/* Ring the host where its end says, if that is a peer and a vector. */
static void ring_host(void)
{
	struct ivchan_end e;

	ivchan_get_end(&ch, 1, &e);
	if (e.state == IVCHAN_ATTACHED && e.peer <= 0xFFFFu &&
	    e.vector <= 0xFFFFu) {
		barrier();
		dev_write(IVSHMEM_FLAT_DOORBELL, e.peer << 16 | e.vector);
	}
}

/* Until vector 0 rings, or the channel can go on without it. */
static void wait_doorbell(int tx, uint32_t len)
{
	while (!(dev_read(IVSHMEM_FLAT_INTRSTATUS) & 1u << 0)) {
		int r = tx ? ivchan_poll_tx(&ch, len) : ivchan_poll_rx(&ch);

		if (r < 0)
			broken();
		if (r)
			break;
	}
}

static void copy_words(volatile uint32_t *dst, const volatile uint32_t *src,
		       uint32_t len)
{
	/* Both 8-byte aligned in their rings; the tail of the last word
	 * is padding. */
	for (uint32_t i = 0; i < (len + 3u) / 4u; i++)
		dst[i] = src[i];
}

/* Send back the message at buf, waiting for room as long as needed. */
static void echo(const void *buf, uint32_t len)
{
	void *out;
	int r;

	while ((r = ivchan_reserve(&ch, len, &out)) == IVCHAN_EAGAIN) {
		r = ivchan_sleep_tx(&ch, len);
		if (r < 0)
			broken();
		if (r == 0)
			wait_doorbell(1, len);
	}
	if (r < 0)
		broken();
	copy_words(out, buf, len);
	if (ivchan_commit(&ch, len, 0) == 1)
		ring_host();
}

int firmware_main(void)
{
	volatile uint8_t *base =
		(volatile uint8_t *)IVSHMEM_FLAT_DEFAULT_SHM_BASE + LAYOUT_OFFSET;
	struct ivchan_layout lay;
	struct ivchan_info info;
	const struct ivchan_counters *n;
	uint32_t id, len;
	const void *buf;
	int r;

	id = fw_start_latched();

	/* The host writes the layout, magic last. */
	while (ivchan_layout_read((const void *)base,
				  IVSHMEM_FLAT_DEFAULT_SHM_SIZE - LAYOUT_OFFSET,
				  &lay) ||
	       ivchan_layout_find((const void *)base, &lay, CHANNEL, &info))
		;
	r = ivchan_attach(&ch, (void *)base, &lay, &info, 1, id, 0, 0, 0);
	if (r) {
		put_str("firmware: cannot attach: error ");
		put_uint((uint32_t)-r);
		fail(20, "");
	}
	put_str("attached\n");
	ring_host();

	for (;;) {
		r = ivchan_peek(&ch, &buf, &len);
		if (r == IVCHAN_EAGAIN) {
			/* Tell the host of the room taken so far. */
			if (ivchan_flush_rx(&ch) == 1)
				ring_host();
			r = ivchan_sleep_rx(&ch);
			if (r < 0)
				broken();
			if (r == 0)
				wait_doorbell(0, 0);
			continue;
		}
		if (r < 0)
			broken();
		if (len == 0)
			break;
		echo(buf, len);
		if (ivchan_release(&ch) == 1)
			ring_host();
	}
	if (ivchan_release(&ch) == 1 || ivchan_flush_rx(&ch) == 1)
		ring_host();
	n = ivchan_counters(&ch);
	put_str("echo: ");
	put_uint((uint32_t)n->received - 1u);
	put_str(" messages, rung ");
	put_uint((uint32_t)n->rung);
	put_str(", sleeps ");
	put_uint((uint32_t)n->sleeps);
	put_char('\n');
	ivchan_detach(&ch);
	return 0;
}
