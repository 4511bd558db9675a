/* SPDX-License-Identifier: MIT */
/*
 * The channel core (libivshmem/ivchan.c) on plain memory, in one process:
 * the ring rules (one table of steps), reserve/peek misuse, layout errors,
 * the notification rule and its wrap at 2^32, attach with reset and on
 * inconsistent indices, every interleaving of the sleep/wake race on both
 * sides, two threads streaming numbered, checksummed messages with real
 * sleeping on eventfds, and a hostile other end writing random values into
 * its words while the victim end sends and receives.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common.h"
#include "ivchan.h"

/* ---- a channel in memory, both ends attached ---------------------------- */

struct pair {
	uint8_t *alloc;         /* what was malloc'd */
	uint8_t *mem;           /* the layout */
	uint32_t size;
	size_t guard;           /* bytes of guard on each side */
	struct ivchan_layout lay;
	struct ivchan_info info;
	struct ivchan a, b;     /* end 0, end 1 */
};

#define GUARD_BYTE 0xA5

/* A word of end e's line (IVCHAN_LINE_*) of the channel. */
static volatile uint32_t *line_word(struct pair *p, unsigned e, unsigned line,
				    unsigned word)
{
	return (volatile uint32_t *)(p->mem + p->info.offset +
				     (e * IVCHAN_LINES_PER_END + line) *
				     p->lay.line) + word;
}

/* Ring r's data (written by end r). */
static uint8_t *ring_data(struct pair *p, unsigned r)
{
	return p->mem + p->info.offset + IVCHAN_CONTROL_LINES * p->lay.line +
	       (r ? p->info.ring_size[0] : 0);
}

/* Write a fresh layout of one channel "c" (no attach); guard bytes of
 * GUARD_BYTE on each side (0: the buffer is exactly the layout). */
static void pair_layout(struct pair *p, uint32_t ring0, uint32_t ring1,
			uint32_t max_msg, size_t guard)
{
	struct ivchan_spec spec = { "c", { ring0, ring1 }, max_msg };

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(ivchan_layout_size(&spec, 1, IVCHAN_DEFAULT_LINE,
					    &p->size), 0);
	p->guard = guard;
	p->alloc = malloc(p->size + 2 * guard);
	ck_assert_ptr_nonnull(p->alloc);
	memset(p->alloc, GUARD_BYTE, p->size + 2 * guard);
	p->mem = p->alloc + guard;
	memset(p->mem, 0, p->size);
	ck_assert_int_eq(ivchan_layout_init(p->mem, p->size, &spec, 1,
					    IVCHAN_DEFAULT_LINE, 7), 0);
	ck_assert_int_eq(ivchan_layout_read(p->mem, p->size, &p->lay), 0);
	ck_assert_int_eq(ivchan_layout_find(p->mem, &p->lay, "c", &p->info),
			 0);
}

static void pair_attach(struct pair *p)
{
	ck_assert_int_eq(ivchan_attach(&p->a, p->mem, &p->lay, &p->info, 0,
				       10, 1, 0, NULL), 0);
	ck_assert_int_eq(ivchan_attach(&p->b, p->mem, &p->lay, &p->info, 1,
				       11, 2, 0, NULL), 0);
}

/* Start both rings at index `start` (written before attach, which reads
 * the indices from the shared memory). */
static void pair_start_at(struct pair *p, uint32_t start)
{
	unsigned e;

	for (e = 0; e < 2; e++) {
		*line_word(p, e, IVCHAN_LINE_PROD, IVCHAN_PROD_HEAD) = start;
		*line_word(p, e, IVCHAN_LINE_CONS, IVCHAN_CONS_TAIL) = start;
	}
}

static void pair_open(struct pair *p, uint32_t ring, uint32_t max_msg,
		      uint32_t start)
{
	pair_layout(p, ring, ring, max_msg, 0);
	pair_start_at(p, start);
	pair_attach(p);
}

static void pair_free(struct pair *p)
{
	size_t i;

	for (i = 0; i < p->guard; i++) {
		ck_assert_uint_eq(p->alloc[i], GUARD_BYTE);
		ck_assert_uint_eq(p->mem[p->size + i], GUARD_BYTE);
	}
	free(p->alloc);
	p->alloc = p->mem = NULL;
}

static uint32_t head_of(struct ivchan *ch)
{
	struct ivchan_end e;

	ivchan_get_end(ch, 0, &e);
	return e.head;
}

static uint32_t tail_of(struct ivchan *ch)
{
	struct ivchan_end e;

	ivchan_get_end(ch, 0, &e);
	return e.tail;
}

/* A payload of len bytes, a function of (tag, len). */
static void fill(uint8_t *buf, uint32_t len, uint32_t tag)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(tag * 31u + i * 7u);
}

/* ---- the ring rules, one table of steps ---------------------------------- */

enum op {
	END = 0,
	SEND,           /* a sends arg bytes; want: the return (ANY: 0 or 1) */
	RESERVE,        /* a reserves arg bytes and leaves it open */
	COMMIT,         /* a commits arg bytes */
	RECV,           /* b receives with a buffer of arg bytes; want as SEND;
			   len: the length it must get */
	HEAD,           /* a's published head is start + arg */
	TAIL,           /* b's published tail is start + arg */
	PADAT,          /* ring 0 holds a padding record at offset arg */
};

#define ANY 99

struct step {
	enum op op;
	uint32_t arg;
	int want;
	uint32_t len;
};

struct ring_case {
	const char *name;
	uint32_t ring, max_msg, start;
	struct step steps[24];
};

/* Ring 256: max_msg 120, a record of n bytes takes 8 + round8(n). */
static const struct ring_case ring_cases[] = {
	{ "empty", 256, 0, 0, {
		{ RECV, 128, IVCHAN_EAGAIN, 0 },
		{ SEND, 1, 1, 0 },      /* attach asks for the first one */
		{ RECV, 128, 0, 1 },
		{ RECV, 128, IVCHAN_EAGAIN, 0 },
		{ END, 0, 0, 0 } } },
	{ "full, exact accounting", 256, 0, 0, {
		{ SEND, 120, ANY, 0 }, { SEND, 112, ANY, 0 },
		{ HEAD, 248, 0, 0 },
		{ SEND, 1, IVCHAN_EAGAIN, 0 },  /* needs 16, 8 free */
		{ SEND, 0, 0, 0 },              /* exactly 8: fits */
		{ HEAD, 256, 0, 0 },
		{ SEND, 0, IVCHAN_EAGAIN, 0 },
		{ RECV, 120, 0, 120 },          /* 128 free again */
		{ SEND, 121, IVCHAN_EMSGSIZE, 0 },
		{ SEND, 120, 0, 0 },            /* exactly 128 */
		{ SEND, 0, IVCHAN_EAGAIN, 0 },
		{ RECV, 128, 0, 112 }, { RECV, 128, 0, 0 },
		{ RECV, 128, 0, 120 }, { RECV, 128, IVCHAN_EAGAIN, 0 },
		{ TAIL, 384, 0, 0 },
		{ END, 0, 0, 0 } } },
	{ "wrap with a padding record", 256, 0, 0, {
		{ SEND, 56, ANY, 0 }, { SEND, 56, 0, 0 }, { SEND, 56, 0, 0 },
		{ RECV, 64, 0, 56 },
		/* head 192, tail 64: 128 free but 64 at the end; 100 takes
		 * 112, so 64 of pad + 112 > 128 */
		{ SEND, 100, IVCHAN_EAGAIN, 0 },
		{ SEND, 48, 0, 0 },             /* 56 fits at the end */
		{ HEAD, 248, 0, 0 },
		{ RECV, 64, 0, 56 }, { RECV, 64, 0, 56 },
		{ RECV, 64, 0, 48 },
		/* head = tail = 248: 8 at the end, a 1-byte message (16)
		 * goes to the start after an 8-byte pad */
		{ SEND, 1, 0, 0 },
		{ PADAT, 248, 0, 0 },
		{ HEAD, 272, 0, 0 },
		{ RECV, 64, 0, 1 },             /* the pad is skipped */
		{ TAIL, 272, 0, 0 },
		{ END, 0, 0, 0 } } },
	{ "wrap, a big message after the pad", 256, 0, 0, {
		{ SEND, 56, ANY, 0 }, { SEND, 56, 0, 0 }, { SEND, 56, 0, 0 },
		{ RECV, 64, 0, 56 }, { RECV, 64, 0, 56 }, { RECV, 64, 0, 56 },
		{ SEND, 100, 0, 0 },            /* 64 pad + 112 */
		{ PADAT, 192, 0, 0 },
		{ HEAD, 368, 0, 0 },
		{ SEND, 64, 0, 0 },             /* 72 <= 80 free */
		{ SEND, 0, 0, 0 },              /* 8 == 8 free */
		{ SEND, 0, IVCHAN_EAGAIN, 0 },
		{ RECV, 128, 0, 100 }, { TAIL, 368, 0, 0 },
		{ RECV, 128, 0, 64 }, { RECV, 128, 0, 0 },
		{ RECV, 128, IVCHAN_EAGAIN, 0 },
		{ END, 0, 0, 0 } } },
	{ "maximum size", 256, 0, 0, {
		{ SEND, 121, IVCHAN_EMSGSIZE, 0 },
		{ RESERVE, 121, IVCHAN_EMSGSIZE, 0 },
		{ SEND, 120, ANY, 0 },
		{ RECV, 120, 0, 120 },
		{ END, 0, 0, 0 } } },
	{ "a smaller maximum", 256, 16, 0, {
		{ SEND, 17, IVCHAN_EMSGSIZE, 0 },
		{ SEND, 16, ANY, 0 },
		{ RECV, 16, 0, 16 },
		{ END, 0, 0, 0 } } },
	{ "zero-length messages", 64, 0, 0, {
		{ SEND, 0, ANY, 0 }, { SEND, 0, 0, 0 }, { SEND, 0, 0, 0 },
		{ SEND, 0, 0, 0 }, { SEND, 0, 0, 0 }, { SEND, 0, 0, 0 },
		{ SEND, 0, 0, 0 }, { SEND, 0, 0, 0 }, { HEAD, 64, 0, 0 },
		{ SEND, 0, IVCHAN_EAGAIN, 0 },  /* 8 records of 8 */
		{ SEND, 25, IVCHAN_EMSGSIZE, 0 },       /* max_msg 24 */
		{ RECV, 0, 0, 0 }, { RECV, 0, 0, 0 }, { RECV, 0, 0, 0 },
		{ RECV, 0, 0, 0 }, { RECV, 0, 0, 0 }, { RECV, 0, 0, 0 },
		{ RECV, 0, 0, 0 }, { RECV, 0, 0, 0 },
		{ RECV, 0, IVCHAN_EAGAIN, 0 },
		{ END, 0, 0, 0 } } },
	{ "recv with a buffer too small", 256, 0, 0, {
		{ SEND, 10, ANY, 0 },
		{ RECV, 9, IVCHAN_EMSGSIZE, 10 },
		{ RECV, 0, IVCHAN_EMSGSIZE, 10 },
		{ TAIL, 0, 0, 0 },              /* it stayed */
		{ RECV, 10, 0, 10 },
		{ END, 0, 0, 0 } } },
	{ "reserve more, commit less", 256, 0, 0, {
		{ RESERVE, 100, 0, 0 },
		{ COMMIT, 101, IVCHAN_EINVAL, 0 },
		{ COMMIT, 3, ANY, 0 },
		{ HEAD, 16, 0, 0 },
		{ COMMIT, 0, IVCHAN_EINVAL, 0 },        /* nothing open */
		{ RECV, 128, 0, 3 },
		{ END, 0, 0, 0 } } },
	{ "across 2^32", 256, 0, 0xFFFFFF80u, {   /* at offset 128 */
		{ SEND, 56, ANY, 0 }, { SEND, 56, 0, 0 },
		{ HEAD, 128, 0, 0 },            /* exactly 0 */
		{ RECV, 64, 0, 56 }, { SEND, 100, 0, 0 },
		{ HEAD, 240, 0, 0 },
		{ RECV, 64, 0, 56 }, { RECV, 128, 0, 100 },
		{ SEND, 48, 0, 0 },
		{ SEND, 100, 0, 0 },    /* 88 of pad + 112: exactly 200 free */
		{ PADAT, 168, 0, 0 }, { HEAD, 496, 0, 0 },
		{ SEND, 0, IVCHAN_EAGAIN, 0 },
		{ RECV, 128, 0, 48 }, { RECV, 128, 0, 100 },
		{ TAIL, 496, 0, 0 },
		{ END, 0, 0, 0 } } },
};

START_TEST(ring_rules)
{
	const struct ring_case *c = &ring_cases[_i];
	uint8_t buf[512], want[512];
	void *slot = NULL;
	struct pair p;
	unsigned i, tag = 0, rtag = 0;

	pair_open(&p, c->ring, c->max_msg, c->start);
	for (i = 0; c->steps[i].op != END; i++) {
		const struct step *s = &c->steps[i];
		uint32_t len = 12345;
		int r = 0;

		switch (s->op) {
		case SEND:
			fill(buf, s->arg, tag);
			r = ivchan_send(&p.a, buf, s->arg);
			if (r >= 0)
				tag++;
			break;
		case RESERVE:
			r = ivchan_reserve(&p.a, s->arg, &slot);
			if (r == 0)
				fill(slot, s->arg, tag);
			break;
		case COMMIT:
			r = ivchan_commit(&p.a, s->arg, 0);
			if (r >= 0)
				tag++;
			break;
		case RECV:
			memset(buf, 0xEE, sizeof(buf));
			r = ivchan_recv(&p.b, buf, s->arg, &len);
			if (r >= 0 || r == IVCHAN_EMSGSIZE)
				ck_assert_msg(len == s->len,
					      "%s step %u: length %u, want %u",
					      c->name, i, len, s->len);
			if (r >= 0) {
				fill(want, len, rtag++);
				ck_assert_msg(!memcmp(buf, want, len),
					      "%s step %u: payload", c->name,
					      i);
				ck_assert_uint_eq(buf[len], 0xEE);
			}
			break;
		case HEAD:
			ck_assert_msg(head_of(&p.a) == c->start + s->arg,
				      "%s step %u: head %#x", c->name, i,
				      head_of(&p.a));
			continue;
		case TAIL:
			ck_assert_msg(tail_of(&p.b) == c->start + s->arg,
				      "%s step %u: tail %#x", c->name, i,
				      tail_of(&p.b));
			continue;
		case PADAT: {
			const uint32_t *w = (const uint32_t *)
				(ring_data(&p, 0) + s->arg);

			ck_assert_uint_eq(w[0], IVCHAN_PAD);
			ck_assert_uint_eq(w[1], 0);
			continue;
		}
		case END:
			break;
		}
		if (s->want == ANY)
			ck_assert_msg(r == 0 || r == 1, "%s step %u: %d",
				      c->name, i, r);
		else
			ck_assert_msg(r == s->want, "%s step %u: %d, want %d",
				      c->name, i, r, s->want);
	}
	ck_assert_int_eq(ivchan_error(&p.a), 0);
	ck_assert_int_eq(ivchan_error(&p.b), 0);
	pair_free(&p);
}
END_TEST

START_TEST(busy_and_misuse)
{
	struct pair p;
	void *s1, *s2;
	const void *r1, *r2;
	uint32_t len;
	uint8_t buf[8];

	pair_open(&p, 256, 0, 0);
	ck_assert_int_eq(ivchan_reserve(&p.a, 8, &s1), 0);
	ck_assert_int_eq(ivchan_reserve(&p.a, 8, &s2), IVCHAN_EBUSY);
	ck_assert_int_eq(ivchan_send(&p.a, "x", 1), IVCHAN_EBUSY);
	ck_assert_int_eq(ivchan_commit(&p.a, 9, 0), IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_commit(&p.a, 8, 2), IVCHAN_EINVAL);
	memcpy(s1, "12345678", 8);
	ck_assert_int_ge(ivchan_commit(&p.a, 8, 0), 0);
	ck_assert_int_eq(ivchan_commit(&p.a, 0, 0), IVCHAN_EINVAL);

	ck_assert_int_eq(ivchan_peek(&p.b, &r1, &len), 0);
	ck_assert_uint_eq(len, 8);
	ck_assert_int_eq(ivchan_peek(&p.b, &r2, &len), IVCHAN_EBUSY);
	ck_assert_int_eq(ivchan_recv(&p.b, buf, 8, &len), IVCHAN_EBUSY);
	ck_assert(!memcmp(r1, "12345678", 8));
	ivchan_unpeek(&p.b);            /* it stays */
	ck_assert_int_eq(ivchan_peek(&p.b, &r2, &len), 0);
	ck_assert_ptr_eq(r1, r2);
	ck_assert_int_eq(ivchan_release(&p.b), 0);
	ck_assert_int_eq(ivchan_release(&p.b), IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_peek(&p.b, &r1, &len), IVCHAN_EAGAIN);

	/* Arguments. */
	ck_assert_int_eq(ivchan_send(&p.a, NULL, 1), IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_reserve(&p.a, 1, NULL), IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_recv(&p.b, NULL, 1, &len), IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_sleep_tx(&p.a, 121), IVCHAN_EMSGSIZE);
	ck_assert_int_eq(ivchan_poll_tx(&p.a, 121), IVCHAN_EMSGSIZE);
	ck_assert_int_eq(ivchan_attach(&p.a, p.mem, &p.lay, &p.info, 2, 0, 0,
				       0, NULL), IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_attach(&p.a, p.mem, &p.lay, &p.info, 0, 0, 0,
				       2, NULL), IVCHAN_EINVAL);

	/* Detached: ENOTCONN. */
	ivchan_detach(&p.a);
	ck_assert_int_eq(ivchan_send(&p.a, "x", 1), IVCHAN_ENOTCONN);
	ck_assert_int_eq(ivchan_sleep_rx(&p.a), IVCHAN_ENOTCONN);
	ck_assert_int_eq(ivchan_error(&p.a), IVCHAN_ENOTCONN);
	pair_free(&p);
}
END_TEST

/* ---- layouts -------------------------------------------------------------- */

static int size_of1(const char *name, uint32_t r0, uint32_t r1,
		    uint32_t max_msg, uint32_t line)
{
	struct ivchan_spec s = { name, { r0, r1 }, max_msg };
	uint32_t size = 0;

	return ivchan_layout_size(&s, 1, line, &size);
}

START_TEST(layout_errors)
{
	struct ivchan_spec two[2] = { { "x", { 64, 64 }, 0 },
				      { "x", { 64, 64 }, 0 } };
	struct ivchan_spec big[3] = { { "a", { IVCHAN_MAX_RING,
					       IVCHAN_MAX_RING }, 0 },
				      { "b", { IVCHAN_MAX_RING,
					       IVCHAN_MAX_RING }, 0 },
				      { "c", { 64, 64 }, 0 } };
	struct ivchan_spec many[IVCHAN_MAX_CHANNELS + 1];
	char names[IVCHAN_MAX_CHANNELS + 1][8];
	struct ivchan_layout lay;
	struct ivchan_info info;
	uint32_t size, *w, i;
	uint8_t *mem;
	struct pair p;

	/* Names. */
	ck_assert_int_eq(size_of1("ok.name_-9", 64, 64, 0, 64), 0);
	ck_assert_int_eq(size_of1("", 64, 64, 0, 64), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1(NULL, 64, 64, 0, 64), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a b", 64, 64, 0, 64), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a/b", 64, 64, 0, 64), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("0123456789012345678901234567890", 64, 64,
				  0, 64), 0);
	ck_assert_int_eq(size_of1("01234567890123456789012345678901", 64, 64,
				  0, 64), IVCHAN_ENAMETOOLONG);
	ck_assert_int_eq(ivchan_layout_size(two, 2, 64, &size),
			 IVCHAN_EEXIST);
	two[1].name = "y";
	ck_assert_int_eq(ivchan_layout_size(two, 2, 64, &size), 0);
	ck_assert_uint_eq(size, 64 + 128 + 2 * (10 * 64 + 128));
	/* Ring sizes, maximum, line, count. */
	ck_assert_int_eq(size_of1("a", 96, 64, 0, 64), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a", 64, 32, 0, 32), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a", 64, 64, 0, 128), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a", 128, 128, 0, 128), 0);
	ck_assert_int_eq(size_of1("a", IVCHAN_MAX_RING * 2u, 64, 0, 64),
			 IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a", 0, 64, 0, 64), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a", 256, 64, IVCHAN_MAX_MSG(64), 64), 0);
	ck_assert_int_eq(size_of1("a", 256, 64, IVCHAN_MAX_MSG(64) + 1, 64),
			 IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a", 64, 64, 0, 16), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a", 64, 64, 0, 48), IVCHAN_EINVAL);
	ck_assert_int_eq(size_of1("a", 8192, 8192, 0, 8192), IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_layout_size(two, 0, 64, &size), IVCHAN_EINVAL);
	for (i = 0; i <= IVCHAN_MAX_CHANNELS; i++) {
		snprintf(names[i], sizeof(names[i]), "c%u", (unsigned)i);
		many[i] = (struct ivchan_spec){ names[i], { 64, 64 }, 0 };
	}
	ck_assert_int_eq(ivchan_layout_size(many, IVCHAN_MAX_CHANNELS, 64,
					    &size), 0);
	ck_assert_int_eq(ivchan_layout_size(many, IVCHAN_MAX_CHANNELS + 1, 64,
					    &size), IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_layout_size(big, 3, 64, &size), IVCHAN_ENOSPC);

	/* A buffer too small. */
	ck_assert_int_eq(ivchan_layout_size(two, 2, 64, &size), 0);
	mem = malloc(size);
	ck_assert_int_eq(ivchan_layout_init(mem, size - 1, two, 2, 64, 1),
			 IVCHAN_ENOSPC);
	ck_assert_int_eq(ivchan_layout_init(mem + 4, size - 4, two, 2, 64, 1),
			 IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_layout_init(mem, size, two, 2, 64, 1), 0);
	ck_assert_int_eq(ivchan_layout_read(mem, size, &lay), 0);
	ck_assert_uint_eq(lay.size, size);
	ck_assert_uint_eq(lay.count, 2);
	ck_assert_uint_eq(lay.nonce, 1);
	ck_assert_int_eq(ivchan_layout_read(mem, size - 1, &lay),
			 IVCHAN_EBADMSG);
	ck_assert_int_eq(ivchan_layout_read(mem, 63, &lay), IVCHAN_EBADMSG);
	ck_assert_int_eq(ivchan_layout_find(mem, &lay, "y", &info), 0);
	ck_assert_uint_eq(info.index, 1);
	ck_assert_int_eq(ivchan_layout_find(mem, &lay, "z", &info),
			 IVCHAN_ENOENT);
	ck_assert_int_eq(ivchan_layout_find(mem, &lay, "x y", &info),
			 IVCHAN_EINVAL);
	ck_assert_int_eq(ivchan_layout_entry(mem, &lay, 2, &info),
			 IVCHAN_EINVAL);

	/* The header's words. */
	w = (uint32_t *)mem;
	w[IVCHAN_HDR_MAGIC] ^= 1;
	ck_assert_int_eq(ivchan_layout_read(mem, size, &lay), IVCHAN_EBADMSG);
	w[IVCHAN_HDR_MAGIC] ^= 1;
	w[IVCHAN_HDR_VERSION] = 2;
	ck_assert_int_eq(ivchan_layout_read(mem, size, &lay),
			 IVCHAN_EPROTONOSUPPORT);
	w[IVCHAN_HDR_VERSION] = IVCHAN_VERSION;
	w[IVCHAN_HDR_FEATURES] = 1;
	ck_assert_int_eq(ivchan_layout_read(mem, size, &lay),
			 IVCHAN_EPROTONOSUPPORT);
	w[IVCHAN_HDR_FEATURES] = 0;
	w[IVCHAN_HDR_LINE] = 48;
	ck_assert_int_eq(ivchan_layout_read(mem, size, &lay), IVCHAN_EBADMSG);
	w[IVCHAN_HDR_LINE] = 64;
	w[IVCHAN_HDR_COUNT] = 0;
	ck_assert_int_eq(ivchan_layout_read(mem, size, &lay), IVCHAN_EBADMSG);
	w[IVCHAN_HDR_COUNT] = 2;
	ck_assert_int_eq(ivchan_layout_read(mem, size, &lay), 0);

	/* A table entry's words: the entry is refused, the other found. */
	w = (uint32_t *)(mem + 64);
	w[0] = 0x00622061;      /* "a b" */
	ck_assert_int_eq(ivchan_layout_entry(mem, &lay, 0, &info),
			 IVCHAN_EBADMSG);
	ck_assert_int_eq(ivchan_layout_find(mem, &lay, "x", &info),
			 IVCHAN_ENOENT);
	ck_assert_int_eq(ivchan_layout_find(mem, &lay, "y", &info), 0);
	w[0] = 'x';
	w[IVCHAN_ENT_RING0] = 96;
	ck_assert_int_eq(ivchan_layout_entry(mem, &lay, 0, &info),
			 IVCHAN_EBADMSG);
	w[IVCHAN_ENT_RING0] = 64;
	w[IVCHAN_ENT_MAX_MSG] = 25;
	ck_assert_int_eq(ivchan_layout_entry(mem, &lay, 0, &info),
			 IVCHAN_EBADMSG);
	w[IVCHAN_ENT_MAX_MSG] = 24;
	w[IVCHAN_ENT_OFFSET] += 8;
	ck_assert_int_eq(ivchan_layout_entry(mem, &lay, 0, &info),
			 IVCHAN_EBADMSG);
	w[IVCHAN_ENT_OFFSET] = size;
	ck_assert_int_eq(ivchan_layout_entry(mem, &lay, 0, &info),
			 IVCHAN_EBADMSG);
	w[IVCHAN_ENT_OFFSET] = 64;
	ck_assert_int_eq(ivchan_layout_entry(mem, &lay, 0, &info),
			 IVCHAN_EBADMSG);
	w[IVCHAN_ENT_OFFSET] = 192;
	ck_assert_int_eq(ivchan_layout_entry(mem, &lay, 0, &info), 0);
	ck_assert_str_eq(info.name, "x");
	free(mem);

	/* A layout written anew: ESTALE. */
	pair_open(&p, 64, 0, 0);
	ck_assert_int_eq(ivchan_check_layout(&p.a), 0);
	((uint32_t *)p.mem)[IVCHAN_HDR_NONCE]++;
	ck_assert_int_eq(ivchan_check_layout(&p.a), IVCHAN_ESTALE);
	pair_free(&p);
}
END_TEST

/* ---- the notification rule ----------------------------------------------- */

START_TEST(need_event_rule)
{
	static const struct { uint32_t event, new_idx, old_idx; int want; }
	t[] = {
		{ 0, 8, 0, 1 }, { 0, 8, 8, 0 }, { 8, 8, 0, 0 },
		{ 7, 8, 0, 1 }, { 100, 16, 8, 0 },
		{ 0xFFFFFFF8u, 0, 0xFFFFFFF8u, 1 },
		{ 0xFFFFFFF8u, 8, 0xFFFFFFF0u, 1 },
		{ 0, 8, 0xFFFFFFF8u, 1 }, { 8, 8, 0xFFFFFFF8u, 0 },
		{ 0xFFFFFFF0u, 8, 0xFFFFFFF8u, 0 },
		{ 0xFFFFFFF7u, 0, 0xFFFFFFF8u, 0 },
		{ 0xFFFFFFFFu, 0, 0xFFFFFFF8u, 1 },
	};
	unsigned i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_msg(ivchan_need_event(t[i].event, t[i].new_idx,
						t[i].old_idx) == t[i].want,
			      "case %u", i);
}
END_TEST

static const uint32_t starts[] = { 0, 0xFFFFFF00u, 0xFFFFFFC0u,
				   0xFFFFFFF8u };
#define NSTARTS 4
/* Starts at a multiple of 64 in the ring (where 4 x 64 fill a ring of
 * 256 without a pad), and at its offset 0. */
static const uint32_t starts64[] = { 0, 0xFFFFFF00u, 0xFFFFFFC0u,
				     0x7FFFFF40u };
static const uint32_t starts0[] = { 0, 0xFFFFFF00u, 0xFFFFFE00u,
				    0x7FFFFF00u };

/* A doorbell for exactly the first commit after sleep_rx returned 0, and
 * for the first release after sleep_tx returned 0; across 2^32. */
START_TEST(notify_rule)
{
	struct pair p;
	uint8_t buf[64];
	uint32_t len;
	unsigned round, k;

	pair_open(&p, 256, 0, starts[_i]);
	/* Attach asks for the first message. */
	ck_assert_int_eq(ivchan_send(&p.a, buf, 8), 1);
	ck_assert_int_eq(ivchan_send(&p.a, buf, 8), 0);
	ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);
	ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);
	for (round = 0; round < 40; round++) {
		/* Not asleep: no doorbell. */
		ck_assert_int_eq(ivchan_send(&p.a, buf, round % 24), 0);
		ck_assert_int_eq(ivchan_sleep_rx(&p.b), 1);
		ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);
		ck_assert_int_eq(ivchan_sleep_rx(&p.b), 0);
		ck_assert_int_eq(ivchan_sleep_rx(&p.b), 0);     /* again */
		for (k = 0; k < 3; k++)
			ck_assert_int_eq(ivchan_send(&p.a, buf, 8 + k),
					 k == 0);
		for (k = 0; k < 3; k++)
			ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);
		ck_assert_int_eq(ivchan_send(&p.a, buf, 1), 0);
		ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);
		/* With COMMIT_MORE: the flush rings, once. */
		ck_assert_int_eq(ivchan_sleep_rx(&p.b), 0);
		for (k = 0; k < 2; k++) {
			void *s;

			ck_assert_int_eq(ivchan_reserve(&p.a, 4, &s), 0);
			ck_assert_int_eq(ivchan_commit(&p.a, 4,
						       IVCHAN_COMMIT_MORE), 0);
		}
		ck_assert_int_eq(ivchan_flush(&p.a), 1);
		ck_assert_int_eq(ivchan_flush(&p.a), 0);
		for (k = 0; k < 2; k++)
			ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);

		/* Space: fill (32 x 8, never a pad), sleep_tx. Releases
		 * look for a waiting producer once a quarter of the ring
		 * (8 records) is free since the last look, or at
		 * ivchan_flush_rx(): even rounds flush after the first
		 * release, odd ones let the eighth ring. Once, either way. */
		ck_assert_int_eq(ivchan_flush_rx(&p.b), 0);
		for (k = 0; k < 32; k++)
			ck_assert_int_eq(ivchan_send(&p.a, buf, 0), 0);
		ck_assert_int_eq(ivchan_send(&p.a, buf, 0), IVCHAN_EAGAIN);
		ck_assert_int_eq(ivchan_sleep_tx(&p.a, 0), 0);
		if (round % 2 == 0) {
			ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);
			ck_assert_int_eq(ivchan_flush_rx(&p.b), 1);
			ck_assert_int_eq(ivchan_flush_rx(&p.b), 0);
			k = 1;
		} else {
			for (k = 0; k < 7; k++)
				ck_assert_int_eq(ivchan_recv(&p.b, buf, 64,
							     &len), 0);
			ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 1);
			k = 8;
		}
		for (; k < 32; k++)
			ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);
		ck_assert_int_eq(ivchan_flush_rx(&p.b), 0);
		/* Not waiting for room: no doorbell. */
		ck_assert_int_eq(ivchan_sleep_tx(&p.a, 0), 1);
		ck_assert_int_eq(ivchan_send(&p.a, buf, 8), 0);
		ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);
		ck_assert_int_eq(ivchan_sleep_rx(&p.b), 0);
		ck_assert_int_eq(ivchan_send(&p.a, buf, 8), 1);
		ck_assert_int_eq(ivchan_recv(&p.b, buf, 64, &len), 0);
	}
	/* The indices did cross 2^32 from the start near it. */
	ck_assert_uint_lt(head_of(&p.a), 0x10000u);
	ck_assert_uint_eq(ivchan_counters(&p.a)->sent,
			  2 + 40 * (1 + 3 + 1 + 2 + 32 + 1 + 1));
	pair_free(&p);
}
END_TEST

/* ---- the sleep/wake race, every interleaving ------------------------------ */

/*
 * Consumer: C1 store the event index, (full barrier), C3 reload the head.
 * Producer: P1 store the head, (full barrier), P3 load the event index.
 * ivchan_sleep_rx() is C1..C3 in one call, ivchan_commit(MORE) is P1 and
 * ivchan_flush() P3. The consumer's steps are also taken apart: C1 as
 * sleep_rx's store of its tail into its event word, C3 as ivchan_poll_rx().
 * Each of the 6 orders of {C1, C3} and {P1, P3}: the consumer sees the
 * message or the producer rings.
 */
static const char *const orders[6] = {
	"CCPP", "CPCP", "CPPC", "PCCP", "PCPC", "PPCC",
};

/* Before the race: none, messages sent and received, or a commit with
 * COMMIT_MORE received and not yet flushed. */
static void race_prelude(struct pair *p, unsigned kind)
{
	uint8_t buf[64];
	uint32_t len;
	void *s;

	if (kind >= 1) {
		ck_assert_int_ge(ivchan_send(&p->a, buf, 20), 0);
		ck_assert_int_ge(ivchan_recv(&p->b, buf, 64, &len), 0);
	}
	if (kind >= 2) {
		ck_assert_int_eq(ivchan_reserve(&p->a, 4, &s), 0);
		ck_assert_int_eq(ivchan_commit(&p->a, 4, IVCHAN_COMMIT_MORE),
				 0);
		ck_assert_int_ge(ivchan_recv(&p->b, buf, 64, &len), 0);
	}
}

START_TEST(race_rx)
{
	unsigned start = _i % NSTARTS, kind = _i / NSTARTS, o, split;

	for (split = 0; split < 2; split++) {
		for (o = 0; o < 6; o++) {
			struct pair p;
			const char *ord = orders[o];
			unsigned ci = 0, pi = 0, k;
			int seen = -1, rung = -1;
			void *s;

			if (!split && (!strcmp(ord, "CPCP") ||
				       !strcmp(ord, "CPPC") ||
				       !strcmp(ord, "PCPC")))
				continue;       /* sleep_rx is one step */
			pair_open(&p, 256, 0, starts[start]);
			race_prelude(&p, kind);
			ck_assert_int_eq(ivchan_poll_rx(&p.b), 0);
			for (k = 0; k < 4; k++) {
				if (ord[k] == 'C' && split && ci == 0) {
					*line_word(&p, 1, IVCHAN_LINE_WAIT,
						   IVCHAN_WAIT_EVENT) =
						tail_of(&p.b);
					__atomic_thread_fence(__ATOMIC_SEQ_CST);
				} else if (ord[k] == 'C' && split) {
					seen = ivchan_poll_rx(&p.b);
				} else if (ord[k] == 'C' && ci == 0) {
					seen = ivchan_sleep_rx(&p.b);
					k++;    /* CC */
					ci++;
				} else if (ord[k] == 'P' && pi == 0) {
					ck_assert_int_eq(ivchan_reserve(&p.a,
						8, &s), 0);
					ck_assert_int_eq(ivchan_commit(&p.a, 8,
						IVCHAN_COMMIT_MORE), 0);
				} else {
					rung = ivchan_flush(&p.a);
				}
				if (ord[k] == 'C')
					ci++;
				else
					pi++;
			}
			ck_assert_msg(seen == 0 || seen == 1, "seen %d", seen);
			ck_assert_msg(rung == 0 || rung == 1, "rung %d", rung);
			ck_assert_msg(seen || rung,
				      "lost wakeup: order %s, %s, start %#x, "
				      "prelude %u", ord,
				      split ? "split" : "sleep_rx",
				      starts[start], kind);
			pair_free(&p);
		}
	}
}
END_TEST

/*
 * Space. Producer: S1 store the space event (its tail as last read), S3
 * reload the tail (ivchan_sleep_tx(), or split as a store into the space
 * word and ivchan_poll_tx()); consumer: ivchan_recv() (store the tail,
 * full barrier, load the space event). Orders S1 R S3, R S1 S3, S1 S3 R:
 * the producer sees room or the release rings. And the case where the
 * consumer releases between the producer's read of the tail (a reserve
 * that failed) and its sleep_tx, for a message that needs two releases.
 */
START_TEST(race_tx)
{
	static const char *const tx_orders[3] = { "SRS", "RSS", "SSR" };
	unsigned start = _i, o, split;
	uint8_t buf[128];
	uint32_t len;

	for (split = 0; split < 2; split++) {
		for (o = 0; o < 3; o++) {
			struct pair p;
			const char *ord = tx_orders[o];
			unsigned k, si = 0;
			int seen = -1, rung = -1;

			if (!split && o == 0)
				continue;
			pair_open(&p, 256, 0, starts64[start]);
			for (k = 0; k < 4; k++)
				ck_assert_int_ge(ivchan_send(&p.a, buf, 56), 0);
			ck_assert_int_eq(ivchan_send(&p.a, buf, 56),
					 IVCHAN_EAGAIN);
			for (k = 0; k < 3; k++) {
				if (ord[k] == 'R') {
					rung = ivchan_recv(&p.b, buf, 128,
							   &len);
				} else if (!split) {
					seen = ivchan_sleep_tx(&p.a, 56);
					k++;
				} else if (si++ == 0) {
					*line_word(&p, 0, IVCHAN_LINE_WAIT,
						   IVCHAN_WAIT_SPACE) =
						p.a.tx_tail;
					__atomic_thread_fence(__ATOMIC_SEQ_CST);
				} else {
					seen = ivchan_poll_tx(&p.a, 56);
				}
			}
			ck_assert_msg(seen == 0 || seen == 1, "seen %d", seen);
			ck_assert_msg(rung == 0 || rung == 1, "rung %d", rung);
			ck_assert_msg(seen || rung, "lost wakeup: %s %s %#x",
				      ord, split ? "split" : "sleep_tx",
				      starts64[start]);
			pair_free(&p);
		}
	}

	/* Full ring (4 x 64); the producer wants 120 (128: two releases).
	 * Its reserve reads tail T0 and fails; the consumer releases one
	 * (T1, no doorbell: nobody sleeps); the producer's sleep_tx must
	 * ask for a doorbell at T1, not at the stale T0, or the consumer's
	 * next release (from T1) would not ring. */
	{
		struct pair p;
		unsigned k;
		int r;

		pair_open(&p, 256, 0, starts64[start]);
		for (k = 0; k < 4; k++)
			ck_assert_int_ge(ivchan_send(&p.a, buf, 56), 0);
		ck_assert_int_eq(ivchan_send(&p.a, buf, 120), IVCHAN_EAGAIN);
		ck_assert_int_eq(ivchan_recv(&p.b, buf, 128, &len), 0);
		ck_assert_int_eq(ivchan_sleep_tx(&p.a, 120), 0);
		r = ivchan_recv(&p.b, buf, 128, &len);
		ck_assert_msg(r == 1, "the release that makes room for the "
			      "sleeping producer did not ring (%d)", r);
		/* (A pad may need the other two as well.) */
		while (ivchan_recv(&p.b, buf, 128, &len) >= 0)
			;
		ck_assert_int_ge(ivchan_send(&p.a, buf, 120), 0);
		pair_free(&p);
	}
}
END_TEST

/* ---- attach: reset, inconsistent indices ----------------------------------- */

START_TEST(attach_reset)
{
	struct pair p;
	uint8_t buf[128];
	uint32_t len, lost = 99;
	struct ivchan_end e;
	static const uint32_t sizes[3] = { 100, 16, 0 };
	unsigned k;

	pair_open(&p, 256, 0, starts0[_i]);
	/* Records and a pad: 3 x 64, receive them, then 100 (112 after 64
	 * of pad at 192), 16 and 0. */
	for (k = 0; k < 3; k++)
		ck_assert_int_ge(ivchan_send(&p.a, buf, 56), 0);
	for (k = 0; k < 3; k++)
		ck_assert_int_ge(ivchan_recv(&p.b, buf, 128, &len), 0);
	for (k = 0; k < 3; k++)
		ck_assert_int_ge(ivchan_send(&p.a, buf, sizes[k]), 0);
	ivchan_detach(&p.b);
	ivchan_read_end(p.mem, &p.lay, &p.info, 1, &e);
	ck_assert_uint_eq(e.state, IVCHAN_DETACHED);
	ck_assert_int_eq(ivchan_attach(&p.b, p.mem, &p.lay, &p.info, 1, 11, 2,
				       IVCHAN_ATTACH_RESET, &lost), 0);
	ck_assert_uint_eq(lost, 3);
	ck_assert_int_eq(ivchan_recv(&p.b, buf, 128, &len), IVCHAN_EAGAIN);
	ivchan_get_end(&p.a, 1, &e);
	ck_assert_uint_eq(e.discarded, 3);
	ck_assert_uint_eq(e.state, IVCHAN_ATTACHED);
	ck_assert_uint_eq(e.epoch, 2);
	ck_assert_uint_eq(e.tail, head_of(&p.a));
	/* Without reset they stay; the producer goes on. */
	ck_assert_int_ge(ivchan_send(&p.a, buf, 5), 0);
	ivchan_detach(&p.b);
	ck_assert_int_eq(ivchan_attach(&p.b, p.mem, &p.lay, &p.info, 1, 11, 2,
				       0, &lost), 0);
	ck_assert_uint_eq(lost, 0);
	ck_assert_int_eq(ivchan_recv(&p.b, buf, 128, &len), 0);
	ck_assert_uint_eq(len, 5);
	/* Reset counts again: discarded is cumulative. */
	ck_assert_int_ge(ivchan_send(&p.a, buf, 5), 0);
	ck_assert_int_eq(ivchan_attach(&p.b, p.mem, &p.lay, &p.info, 1, 11, 2,
				       IVCHAN_ATTACH_RESET, &lost), 0);
	ck_assert_uint_eq(lost, 1);
	ivchan_get_end(&p.a, 1, &e);
	ck_assert_uint_eq(e.discarded, 4);
	pair_free(&p);
}
END_TEST

/* Inconsistent indices or records: EUCLEAN, and nothing written. */
START_TEST(attach_unclean)
{
	static const struct { uint32_t head, tail; unsigned reset; }
	bad[] = {
		{ 256 + 8, 0, 0 },      /* more than a ring */
		{ 0, 8, 0 },            /* head behind tail */
		{ 4, 0, 0 },            /* not a multiple of 8 */
		{ 8, 4, 0 },
		{ 0x80000000u, 0, 0 },
	};
	struct pair p;
	uint8_t *copy;
	struct ivchan ch;
	uint32_t lost = 77;
	unsigned i, e;

	for (e = 0; e < 2; e++) {
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			pair_layout(&p, 256, 256, 0, 0);
			*line_word(&p, e, IVCHAN_LINE_PROD, 0) = bad[i].head;
			*line_word(&p, !e, IVCHAN_LINE_CONS, 0) = bad[i].tail;
			copy = malloc(p.size);
			memcpy(copy, p.mem, p.size);
			ck_assert_int_eq(ivchan_attach(&ch, p.mem, &p.lay,
						       &p.info, 0, 1, 1, 0,
						       &lost), IVCHAN_EUCLEAN);
			ck_assert_int_eq(ivchan_attach(&ch, p.mem, &p.lay,
						       &p.info, 1, 1, 1, 0,
						       &lost), IVCHAN_EUCLEAN);
			ck_assert(!memcmp(copy, p.mem, p.size));
			ck_assert_uint_eq(lost, 77);
			free(copy);
			pair_free(&p);
		}
	}

	/* Reset walks the records: a bad one is EUCLEAN (without reset,
	 * attach succeeds and the receive breaks). */
	for (i = 0; i < 4; i++) {
		uint32_t *rec;

		pair_layout(&p, 256, 256, 0, 0);
		*line_word(&p, 0, IVCHAN_LINE_PROD, 0) = 64;
		rec = (uint32_t *)ring_data(&p, 0);
		rec[0] = i == 0 ? 121 : i == 1 ? 100 : i == 2 ? IVCHAN_PAD : 40;
		rec[12] = 0;            /* i == 3: 0 at 48 and at 56 */
		copy = malloc(p.size);
		memcpy(copy, p.mem, p.size);
		ck_assert_int_eq(ivchan_attach(&ch, p.mem, &p.lay, &p.info, 1,
					       1, 1, IVCHAN_ATTACH_RESET,
					       &lost), i == 3 ? 0 : IVCHAN_EUCLEAN);
		if (i == 3) {
			ck_assert_uint_eq(lost, 3);
		} else {
			ck_assert(!memcmp(copy, p.mem, p.size));
			ck_assert_int_eq(ivchan_attach(&ch, p.mem, &p.lay,
						       &p.info, 1, 1, 1, 0,
						       &lost), 0);
			ck_assert_int_eq(ivchan_poll_rx(&ch), 1);
			ck_assert_int_eq(ivchan_peek(&ch, (const void **)&rec,
						     &lost), IVCHAN_EBROKEN);
			ck_assert_int_eq(ivchan_broken(&ch),
					 i == 2 ? IVCHAN_BROKEN_PAD :
					 IVCHAN_BROKEN_LENGTH);
		}
		free(copy);
		pair_free(&p);
	}
}
END_TEST

/* ---- two threads streaming, real sleeping ---------------------------------- */

#define STREAM_TIMEOUT_MS 20000

struct stream {
	struct pair p;
	uint64_t n;
	int data_fd;            /* the consumer sleeps on it */
	int space_fd;           /* the producer sleeps on it */
	char error[256];
	uint64_t sleeps_tx, sleeps_rx;
};

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void bell(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		abort();
}

/* Sleep on fd: 0, or -1 after STREAM_TIMEOUT_MS (a lost wakeup). */
/*
 * Look a while without asking for a doorbell, as a real user would
 * before sleeping (ivshmem_channel_wait() does): 1 when the ring became
 * ready. Without it both threads sleep at nearly every message and the
 * 10^7 stream takes minutes of system calls; the sleeps that remain
 * still exercise the doorbells.
 */
static int spin(struct ivchan *ch, uint32_t len, bool tx)
{
	for (int i = 0; i < 2000; i++) {
		if ((tx ? ivchan_poll_tx(ch, len) : ivchan_poll_rx(ch)) != 0)
			return 1;
	}
	return 0;
}

static int doze(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	uint64_t v;

	if (poll(&pfd, 1, STREAM_TIMEOUT_MS) != 1)
		return -1;
	return read(fd, &v, sizeof(v)) == sizeof(v) ? 0 : -1;
}

/* A message: seq (8), checksum (4), then bytes that are a function of
 * seq; 12..max_msg bytes. */
static uint32_t stream_len(uint64_t seq, uint32_t max_msg)
{
	uint64_t s = seq * 0x9E3779B97F4A7C15ull + 1;
	uint32_t r = (uint32_t)(xorshift(&s) >> 20);

	return 12 + (r & 7 ? r % 48 : r % (max_msg - 11));
}

static uint32_t stream_sum(const uint8_t *b, uint32_t len)
{
	uint32_t i, sum = 0x12345678;

	for (i = 12; i < len; i++)
		sum = (sum << 5 | sum >> 27) ^ b[i];
	return sum;
}

static void *stream_producer(void *arg)
{
	struct stream *st = arg;
	uint64_t seq;
	uint32_t i;

	for (seq = 0; seq < st->n; seq++) {
		uint32_t len = stream_len(seq, st->p.info.max_msg), sum;
		uint8_t *b;
		void *slot;
		int r;

		while ((r = ivchan_reserve(&st->p.a, len, &slot)) ==
		       IVCHAN_EAGAIN) {
			if (spin(&st->p.a, len, true))
				continue;
			r = ivchan_sleep_tx(&st->p.a, len);
			if (r == 0) {
				st->sleeps_tx++;
				if (doze(st->space_fd)) {
					snprintf(st->error, sizeof(st->error),
						 "producer: no doorbell for "
						 "room at %" PRIu64, seq);
					return NULL;
				}
			} else if (r != 1) {
				break;
			}
		}
		if (r) {
			snprintf(st->error, sizeof(st->error),
				 "producer: reserve %d at %" PRIu64, r, seq);
			return NULL;
		}
		b = slot;
		memcpy(b, &seq, 8);
		for (i = 12; i < len; i++)
			b[i] = (uint8_t)(seq + i);
		sum = stream_sum(b, len);
		memcpy(b + 8, &sum, 4);
		r = ivchan_commit(&st->p.a, len, 0);
		if (r == 1)
			bell(st->data_fd);
		else if (r) {
			snprintf(st->error, sizeof(st->error),
				 "producer: commit %d", r);
			return NULL;
		}
	}
	return NULL;
}

static uint64_t stream_messages(void)
{
	const char *e = getenv("CHANNEL_STREAM_MESSAGES");

	return e && *e ? strtoull(e, NULL, 10) : 200000;
}

START_TEST(stream)
{
	struct stream *st = calloc(1, sizeof(*st));
	pthread_t th;
	uint64_t seq;
	double t0 = now_seconds();

	ck_assert_ptr_nonnull(st);
	st->n = stream_messages();
	/* A small ring: 512 bytes, records up to 248, so it is full and
	 * empty often and wraps every few messages. */
	pair_open(&st->p, 512, 0, 0xFFFF0000u);
	st->data_fd = eventfd(0, EFD_CLOEXEC);
	st->space_fd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(st->data_fd, 0);
	ck_assert_int_ge(st->space_fd, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, stream_producer, st), 0);
	for (seq = 0; seq < st->n; seq++) {
		const void *src;
		const uint8_t *b;
		uint32_t len, sum;
		uint64_t got;
		int r;

		while ((r = ivchan_peek(&st->p.b, &src, &len)) ==
		       IVCHAN_EAGAIN) {
			/* Empty: tell a producer waiting for room first. */
			if (ivchan_flush_rx(&st->p.b) == 1)
				bell(st->space_fd);
			if (spin(&st->p.b, 0, false))
				continue;
			r = ivchan_sleep_rx(&st->p.b);
			if (r == 0) {
				st->sleeps_rx++;
				if (doze(st->data_fd)) {
					ck_assert_msg(st->error[0] == 0, "%s",
						      st->error);
					ck_abort_msg("consumer: no doorbell "
						     "for message %" PRIu64,
						     seq);
				}
			} else if (r != 1) {
				break;
			}
		}
		/* Check's assertions write to its pipe even when they
		 * pass: in this loop, test first, assert on a failure. */
		if (r != 0)
			ck_abort_msg("peek %d at %" PRIu64, r, seq);
		b = src;
		memcpy(&got, b, 8);
		memcpy(&sum, b + 8, 4);
		if (got != seq)
			ck_abort_msg("message %" PRIu64 " where %" PRIu64
				     " was due", got, seq);
		if (len != stream_len(seq, st->p.info.max_msg))
			ck_abort_msg("message %" PRIu64 ": length %u", seq,
				     len);
		if (sum != stream_sum(b, len))
			ck_abort_msg("message %" PRIu64 ": checksum", seq);
		r = ivchan_release(&st->p.b);
		if (r < 0)
			ck_abort_msg("release %d at %" PRIu64, r, seq);
		if (r == 1)
			bell(st->space_fd);
	}
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(st->error[0] == 0, "%s", st->error);
	{
		const void *src;
		uint32_t len;

		ck_assert_int_eq(ivchan_peek(&st->p.b, &src, &len),
				 IVCHAN_EAGAIN);
	}
	fprintf(stderr, "stream: %" PRIu64 " messages in %.2f s, %" PRIu64
		" + %" PRIu64 " sleeps (rx + tx), %" PRIu64 " doorbells\n",
		ivchan_counters(&st->p.b)->received, now_seconds() - t0,
		st->sleeps_rx, st->sleeps_tx,
		ivchan_counters(&st->p.a)->rung +
		ivchan_counters(&st->p.b)->rung);
	close(st->data_fd);
	close(st->space_fd);
	pair_free(&st->p);
	free(st);
}
END_TEST

/* ---- a hostile other end ---------------------------------------------------- */

/*
 * The victim is end 0; end 1 is driven properly by the test, and between
 * calls a seeded PRNG writes random (or nearly plausible) values into end
 * 1's words (identity, head, tail, event indices, counters, record
 * lengths and pad words of its ring), the header and the table. Around
 * each of the victim's calls everything but its own lines and its own
 * ring is compared: the victim writes nothing else. Once broken, every
 * call returns IVCHAN_EBROKEN. The buffer is exactly the layout (ASan),
 * or has guard bytes around it (checked at the end).
 */
#define HOSTILE_STEPS 4000
#define HOSTILE_SEEDS 24

struct hostile {
	struct pair p;
	uint64_t rng;
	uint8_t *snap;
	uint8_t *mine;          /* 1 for each byte the victim may write */
	uint32_t reasons[5];
};

static uint32_t rnd(struct hostile *h, uint32_t n)
{
	return (uint32_t)(xorshift(&h->rng) >> 16) % n;
}

static void hostile_setup(struct hostile *h, size_t guard)
{
	unsigned l;
	uint32_t off;

	pair_layout(&h->p, 256, 256, 0, guard);
	pair_start_at(&h->p, rnd(h, 2) ? 0 : 0xFFFFFF00u);
	pair_attach(&h->p);
	free(h->snap);
	free(h->mine);
	h->snap = malloc(h->p.size);
	h->mine = calloc(1, h->p.size);
	for (l = 0; l < IVCHAN_LINES_PER_END; l++)
		memset(h->mine + h->p.info.offset + l * h->p.lay.line, 1,
		       h->p.lay.line);
	off = h->p.info.offset + IVCHAN_CONTROL_LINES * h->p.lay.line;
	memset(h->mine + off, 1, h->p.info.ring_size[0]);
}

/* A value for a word: random, or near a plausible one. */
static uint32_t evil_value(struct hostile *h, uint32_t near)
{
	switch (rnd(h, 6)) {
	case 0:
		return (uint32_t)xorshift(&h->rng);
	case 1:
		return IVCHAN_PAD;
	case 2:
		return near + 8 * (rnd(h, 9) - 4);
	case 3:
		return near + rnd(h, 16) - 8;
	case 4:
		return rnd(h, 260);
	default:
		return near + 256 * (rnd(h, 3) - 1) + 8 * rnd(h, 4);
	}
}

static void evil_write(struct hostile *h)
{
	struct pair *p = &h->p;
	volatile uint32_t *w;
	uint32_t near = head_of(&p->b);

	switch (rnd(h, 8)) {
	case 0:
		w = line_word(p, 1, IVCHAN_LINE_PROD, IVCHAN_PROD_HEAD);
		break;
	case 1:
		w = line_word(p, 1, IVCHAN_LINE_CONS, IVCHAN_CONS_TAIL);
		near = tail_of(&p->b);
		break;
	case 2:
		w = line_word(p, 1, IVCHAN_LINE_WAIT, rnd(h, 2));
		break;
	case 3:
		w = line_word(p, 1, rnd(h, 2) ? IVCHAN_LINE_ID :
			      IVCHAN_LINE_COUNT, rnd(h, 6));
		break;
	case 4:
	case 5:
		/* A record's length or reserved word, or a pad word. */
		w = (volatile uint32_t *)(ring_data(p, 1) + 8 * rnd(h, 32) +
					  4 * (rnd(h, 4) == 0));
		near = rnd(h, 130);
		break;
	case 6:
		w = (volatile uint32_t *)p->mem + rnd(h, 16);
		break;
	default:
		w = (volatile uint32_t *)(p->mem + 64) + rnd(h, 16);
		break;
	}
	*w = evil_value(h, near);
}

static void assert_untouched(struct hostile *h, const char *call)
{
	uint32_t i;

	for (i = 0; i < h->p.size; i++)
		if (!h->mine[i] && h->snap[i] != h->p.mem[i])
			ck_abort_msg("%s wrote byte %u of the layout, not "
				     "its own", call, i);
}

static void assert_all_broken(struct ivchan *v)
{
	uint8_t buf[256];
	const void *src;
	void *slot;
	uint32_t len;

	ck_assert_int_eq(ivchan_error(v), IVCHAN_EBROKEN);
	ck_assert_int_ne(ivchan_broken(v), IVCHAN_OK);
	ck_assert_int_eq(ivchan_reserve(v, 8, &slot), IVCHAN_EBROKEN);
	ck_assert_int_eq(ivchan_send(v, buf, 8), IVCHAN_EBROKEN);
	ck_assert_int_eq(ivchan_peek(v, &src, &len), IVCHAN_EBROKEN);
	ck_assert_int_eq(ivchan_recv(v, buf, sizeof(buf), &len),
			 IVCHAN_EBROKEN);
	ck_assert_int_eq(ivchan_sleep_rx(v), IVCHAN_EBROKEN);
	ck_assert_int_eq(ivchan_sleep_tx(v, 8), IVCHAN_EBROKEN);
	ck_assert_int_eq(ivchan_poll_rx(v), IVCHAN_EBROKEN);
	ck_assert_int_eq(ivchan_poll_tx(v, 8), IVCHAN_EBROKEN);
}

/* One call of the victim; its result checked. */
static void victim_call(struct hostile *h)
{
	struct ivchan *v = &h->p.a;
	uint8_t buf[256];
	const void *src;
	void *slot;
	uint32_t len = 0, n = rnd(h, 121);
	const char *what;
	int r;

	memcpy(h->snap, h->p.mem, h->p.size);
	switch (rnd(h, 8)) {
	case 0:
		what = "send";
		r = ivchan_send(v, buf, n);
		ck_assert_msg(r == 0 || r == 1 || r == IVCHAN_EAGAIN ||
			      r == IVCHAN_EBROKEN, "send %d", r);
		break;
	case 1:
		what = "reserve/commit";
		r = ivchan_reserve(v, n, &slot);
		ck_assert_msg(r == 0 || r == IVCHAN_EAGAIN ||
			      r == IVCHAN_EBROKEN, "reserve %d", r);
		if (r == 0) {
			memset(slot, 0x5A, n);
			r = ivchan_commit(v, rnd(h, n + 1),
					  rnd(h, 2) ? IVCHAN_COMMIT_MORE : 0);
			ck_assert_msg(r == 0 || r == 1, "commit %d", r);
		}
		break;
	case 2:
	case 3:
		what = "recv";
		r = ivchan_recv(v, buf, rnd(h, 2) ? sizeof(buf) : n, &len);
		ck_assert_msg(r == 0 || r == 1 || r == IVCHAN_EAGAIN ||
			      r == IVCHAN_EMSGSIZE || r == IVCHAN_EBROKEN,
			      "recv %d", r);
		if (r >= 0 || r == IVCHAN_EMSGSIZE)
			ck_assert_uint_le(len, h->p.info.max_msg);
		break;
	case 4:
		what = "peek/release";
		r = ivchan_peek(v, &src, &len);
		ck_assert_msg(r == 0 || r == IVCHAN_EAGAIN ||
			      r == IVCHAN_EBROKEN, "peek %d", r);
		if (r == 0) {
			const uint8_t *b = src;

			ck_assert_uint_le(len, h->p.info.max_msg);
			ck_assert(b >= ring_data(&h->p, 1) &&
				  b + len <= ring_data(&h->p, 1) + 256);
			memcpy(buf, b, len);
			if (rnd(h, 4) == 0) {
				ivchan_unpeek(v);
			} else {
				r = ivchan_release(v);
				ck_assert_msg(r == 0 || r == 1, "release %d",
					      r);
			}
		}
		break;
	case 5:
		what = "sleep_rx";
		r = ivchan_sleep_rx(v);
		ck_assert_msg(r == 0 || r == 1 || r == IVCHAN_EBROKEN,
			      "sleep_rx %d", r);
		break;
	case 6:
		what = "sleep_tx";
		r = ivchan_sleep_tx(v, n);
		ck_assert_msg(r == 0 || r == 1 || r == IVCHAN_EBROKEN,
			      "sleep_tx %d", r);
		break;
	default:
		what = "poll/flush/check";
		r = rnd(h, 2) ? ivchan_poll_rx(v) : ivchan_poll_tx(v, n);
		ck_assert_msg(r == 0 || r == 1 || r == IVCHAN_EBROKEN,
			      "poll %d", r);
		r = ivchan_flush(v);
		ck_assert_msg(r == 0 || r == 1, "flush %d", r);
		r = ivchan_check_layout(v);
		ck_assert_msg(r == 0 || r == IVCHAN_ESTALE, "check %d", r);
		break;
	}
	assert_untouched(h, what);
}

/* End 1, driven properly (it may break too: a forged tail of the
 * victim's ring lets the victim write over what end 1 had not read). */
static void other_call(struct hostile *h)
{
	struct ivchan *o = &h->p.b;
	uint8_t buf[256];
	uint32_t len;

	if (rnd(h, 2))
		(void)ivchan_send(o, buf, rnd(h, 121));
	else
		(void)ivchan_recv(o, buf, sizeof(buf), &len);
}

START_TEST(hostile)
{
	struct hostile h;
	unsigned step, rounds = 0, breaks = 0;
	size_t guard = _i % 2 ? 256 : 0;

	memset(&h, 0, sizeof(h));
	h.rng = 0x9E3779B97F4A7C15ull * (uint64_t)(_i + 1);
	hostile_setup(&h, guard);
	for (step = 0; step < HOSTILE_STEPS; step++) {
		unsigned k = rnd(&h, 4);

		if (k == 0)
			evil_write(&h);
		else if (k == 1)
			other_call(&h);
		victim_call(&h);
		if (ivchan_error(&h.p.a) == IVCHAN_EBROKEN) {
			memcpy(h.snap, h.p.mem, h.p.size);
			assert_all_broken(&h.p.a);
			assert_untouched(&h, "a broken end");
			h.reasons[ivchan_broken(&h.p.a)]++;
			ck_assert_str_ne(ivchan_broken_str(
				ivchan_broken(&h.p.a)), "unknown");
			breaks++;
		}
		if (ivchan_error(&h.p.a) || ivchan_error(&h.p.b) ||
		    rnd(&h, 500) == 0) {
			pair_free(&h.p);
			hostile_setup(&h, guard);
			rounds++;
		}
	}
	pair_free(&h.p);
	free(h.snap);
	free(h.mine);
	/* The writes did reach the checks. */
	ck_assert_uint_gt(breaks, 0);
	ck_assert_uint_gt(rounds, 0);
	if (getenv("IVCHAN_HOSTILE_VERBOSE"))
		fprintf(stderr, "seed %d: %u breaks (head %u tail %u length "
			"%u pad %u)\n", _i, breaks, h.reasons[1], h.reasons[2],
			h.reasons[3], h.reasons[4]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ivchan");
	TCase *tc = tcase_with("core", 120, NULL);
	TCase *st = tcase_with("stream", 600, NULL);

	tcase_add_loop_test(tc, ring_rules, 0,
			    sizeof(ring_cases) / sizeof(ring_cases[0]));
	tcase_add_test(tc, busy_and_misuse);
	tcase_add_test(tc, layout_errors);
	tcase_add_test(tc, need_event_rule);
	tcase_add_loop_test(tc, notify_rule, 0, NSTARTS);
	tcase_add_loop_test(tc, race_rx, 0, NSTARTS * 3);
	tcase_add_loop_test(tc, race_tx, 0, NSTARTS);
	tcase_add_loop_test(tc, attach_reset, 0, NSTARTS);
	tcase_add_test(tc, attach_unclean);
	tcase_add_loop_test(tc, hostile, 0, HOSTILE_SEEDS);
	suite_add_tcase(s, tc);
	/* CHANNEL_STREAM_MESSAGES sets the count (meson's channel-core-
	 * stream: 10^7). */
	tcase_add_test(st, stream);
	suite_add_tcase(s, st);
	return run_suite(s);
}
