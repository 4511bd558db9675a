/* SPDX-License-Identifier: MIT */
/*
 * One end of a channel (libivshmem/ivchan.c, the core the host API of
 * channel.c and firmware share) while the fuzzer is the other end: it
 * writes that end's indices, record lengths, payload, wait and identity
 * words, and the layout's header, between the operations of the end
 * under test.
 *
 * Input: byte 0 picks the ring sizes and whether the layout's bytes are
 * fuzzed before it is read (then byte 1 and on are written over the
 * header and table); then operations of 8 bytes. The region is a heap
 * block of exactly the layout's size, so AddressSanitizer sees any access
 * outside it. Every message received must lie within the receive ring
 * and be at most the channel's maximum; fills stay within the rings; a
 * broken end stays broken with a reason. A failure aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivchan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
		abort(); } while (0)

static uint32_t u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void check_invariants(const struct ivchan *ch, const void *region,
			     uint32_t size)
{
	int e = ivchan_error(ch);

	if (e != 0 && e != IVCHAN_EBROKEN && e != IVCHAN_ENOTCONN)
		FAIL("error %d", e);
	if ((e == IVCHAN_EBROKEN) != (ivchan_broken(ch) != IVCHAN_OK))
		FAIL("broken %d with error %d", ivchan_broken(ch), e);
	if (!ivchan_broken_str(ivchan_broken(ch)))
		FAIL("no phrase");
	if (e == 0 && (ivchan_rx_fill(ch) > ch->rx_size ||
		       ivchan_tx_fill(ch) > ch->tx_size))
		FAIL("fill %u/%u of %u/%u", ivchan_rx_fill(ch),
		     ivchan_tx_fill(ch), ch->rx_size, ch->tx_size);
	(void)region;
	(void)size;
}

static void check_msg(const struct ivchan *ch, const void *buf, uint32_t len)
{
	const volatile uint8_t *b = buf;

	if (len > ch->max_msg)
		FAIL("received %u bytes, maximum %u", len, ch->max_msg);
	if (b < ch->rx_data || b + len > ch->rx_data + ch->rx_size)
		FAIL("message outside the receive ring");
	if (((uintptr_t)buf & 7) != 0)
		FAIL("message not 8-byte aligned");
	/* Touch it all: ASan checks the bytes are in the region. */
	for (uint32_t i = 0; i < len; i++)
		(void)b[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t rings[] = { 64, 128, 256, 4096 };
	struct ivchan_spec spec = { .name = "fuzz" };
	struct ivchan_layout lay;
	struct ivchan_info info;
	struct ivchan ch;
	uint32_t total, lost;
	uint8_t *region;
	size_t i = 1;
	bool peeked = false, reserved = false;

	if (size < 1)
		return 0;
	spec.ring_size[0] = rings[data[0] & 3];
	spec.ring_size[1] = rings[(data[0] >> 2) & 3];
	spec.max_msg = (data[0] & 0x10) ? 24 : 0;
	if (ivchan_layout_size(&spec, 1, IVCHAN_DEFAULT_LINE, &total) != 0)
		abort();
	region = aligned_alloc(64, total);
	if (!region)
		abort();
	if (ivchan_layout_init(region, total, &spec, 1, IVCHAN_DEFAULT_LINE,
			       0x1234) != 0)
		abort();
	if (data[0] & 0x20) {
		/* A hostile layout: the header and table rewritten. */
		size_t n = size - 1 < 128 ? size - 1 : 128;

		for (size_t k = 0; k + 1 < n; k += 2)
			region[data[1 + k] % 128] = data[2 + k];
		i += n;
	}
	if (ivchan_layout_read(region, total, &lay) != 0 ||
	    ivchan_layout_find(region, &lay, "fuzz", &info) != 0)
		goto out;
	/* What was read must lie in the region. */
	if (lay.size > total || info.offset > lay.size)
		FAIL("layout beyond its region");
	if (ivchan_attach(&ch, region, &lay, &info, 0, 1, 0,
			  (data[0] & 0x40) ? IVCHAN_ATTACH_RESET : 0,
			  &lost) != 0)
		goto out;

	for (; i + 8 <= size; i += 8) {
		const uint8_t *op = data + i;
		uint32_t v = u32(op + 4), len;
		const void *buf;
		void *wbuf;
		uint8_t tmp[4096];
		int r;

		switch (op[0] % 20) {
		/* ---- the other end, through the shared memory ---- */
		case 0: /* its head: near the tail mostly */
			ch.rx_prod[IVCHAN_PROD_HEAD] = (op[1] & 1) ? v :
				ch.rx_tail + (uint32_t)(int8_t)op[2] * 8u;
			break;
		case 1: /* its tail */
			ch.tx_cons[IVCHAN_CONS_TAIL] = (op[1] & 1) ? v :
				ch.tx_head - (uint32_t)op[2] * 8u;
			break;
		case 2: /* a record header at the receive tail, or anywhere */
		case 3: {
			uint32_t at = (op[1] & 1) ? ch.rx_tail :
				      (uint32_t)op[2] * 8u;
			volatile uint32_t *w = (volatile uint32_t *)
				(ch.rx_data + (at & (ch.rx_size - 1)));

			w[0] = (op[1] & 2) ? IVCHAN_PAD :
			       (op[1] & 4) ? v : (uint32_t)op[3];
			w[1] = op[1];
			break;
		}
		case 4: /* payload bytes */
			ch.rx_data[(uint32_t)op[1] * 8u % ch.rx_size] = op[2];
			break;
		case 5: /* its wait line */
			ch.other_wait[op[1] & 1] = v;
			break;
		case 6: /* its identity line */
			ch.other[op[1] % 5] = v;
			break;
		case 7: /* the header: magic, nonce or size */
			if (op[1] & 1)
				((volatile uint32_t *)region)[op[2] % 8] = v;
			if (ivchan_check_layout(&ch) != 0 &&
			    ivchan_check_layout(&ch) != IVCHAN_ESTALE)
				FAIL("check_layout");
			break;
		/* ---- the end under test ---- */
		case 8:
		case 9: {
			uint32_t n = op[1] % 64 * (op[2] & 1 ? 8 : 1);

			memset(tmp, op[3], n);
			r = ivchan_send(&ch, tmp, n);
			if (r > 1)
				FAIL("send %d", r);
			break;
		}
		case 10:
			if (!reserved) {
				len = op[1] * (uint32_t)(op[2] & 7);
				r = ivchan_reserve(&ch, len, &wbuf);
				if (r == 0) {
					volatile uint8_t *w = wbuf;

					if (w < ch.tx_data ||
					    w + len > ch.tx_data + ch.tx_size)
						FAIL("reservation outside the ring");
					for (uint32_t k = 0; k < len; k++)
						w[k] = op[3];
					reserved = true;
				}
			} else {
				r = ivchan_commit(&ch, op[1],
						  op[2] & 1 ? IVCHAN_COMMIT_MORE : 0);
				reserved = false;
			}
			break;
		case 11:
			r = ivchan_flush(&ch);
			if (r != 0 && r != 1)
				FAIL("flush %d", r);
			break;
		case 12:
		case 13:
			if (peeked)
				break;
			r = ivchan_peek(&ch, &buf, &len);
			if (r == 0) {
				check_msg(&ch, buf, len);
				peeked = true;
			}
			break;
		case 14:
			if (peeked) {
				if (op[1] & 1) {
					ivchan_unpeek(&ch);
				} else {
					r = ivchan_release(&ch);
					if (r != 0 && r != 1)
						FAIL("release %d", r);
				}
				peeked = false;
			}
			break;
		case 15: {
			uint32_t cap = (uint32_t)op[1] * 16u + 1u;

			if (peeked)
				break;
			len = 0xdeadbeef;
			r = ivchan_recv(&ch, tmp, cap, &len);
			if ((r == 0 || r == 1) && len > cap)
				FAIL("recv %u bytes into %u", len, cap);
			if ((r == 0 || r == 1) && len > ch.max_msg)
				FAIL("recv %u, maximum %u", len, ch.max_msg);
			break;
		}
		case 16:
			r = ivchan_flush_rx(&ch);
			if (r < 0 && r != IVCHAN_EBROKEN && r != IVCHAN_ENOTCONN)
				FAIL("flush_rx %d", r);
			break;
		case 17:
			r = (op[1] & 1) ? ivchan_sleep_rx(&ch) :
			    ivchan_sleep_tx(&ch, op[2]);
			break;
		case 18:
			r = (op[1] & 1) ? ivchan_poll_rx(&ch) :
			    ivchan_poll_tx(&ch, op[2]);
			break;
		default: {
			struct ivchan_end e;

			ivchan_get_end(&ch, op[1] & 1, &e);
			ivchan_read_end(region, &lay, &info, op[2] & 1, &e);
			break;
		}
		}
		check_invariants(&ch, region, total);
		/* A broken end stays broken. */
		if (ivchan_error(&ch) == IVCHAN_EBROKEN &&
		    (ivchan_poll_rx(&ch) != IVCHAN_EBROKEN ||
		     ivchan_poll_tx(&ch, 0) != IVCHAN_EBROKEN))
			FAIL("a broken end still works");
	}
	ivchan_detach(&ch);
out:
	free(region);
	return 0;
}
