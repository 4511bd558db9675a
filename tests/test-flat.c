/* SPDX-License-Identifier: MIT */
/*
 * The ivshmem-flat device core against a recording fake emulator: register
 * semantics in all three modes (one table of steps), IVPOSITION and
 * set_id, DOORBELL, every width and offset of bad accesses, every doorbell
 * value through a bounded fake transport, every delivered vector,
 * snapshot and restore, reset, init's argument checks and the trace hook.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ivshmem-flat.h"

#define MASK IVSHMEM_FLAT_INTRMASK
#define STAT IVSHMEM_FLAT_INTRSTATUS
#define POS IVSHMEM_FLAT_IVPOSITION
#define BELL IVSHMEM_FLAT_DOORBELL
#define NOID IVSHMEM_FLAT_NO_ID
#define LATCHED IVSHMEM_FLAT_LATCHED
#define PER_VECTOR IVSHMEM_FLAT_IRQ_PER_VECTOR

/* The three modes every mode-dependent test runs in (loop tests index
 * this). */
static const uint32_t modes[] = { 0, LATCHED, LATCHED | PER_VECTOR };
static const char *const mode_names[] = { "default", "latched",
					  "per-vector" };
#define NMODES 3

/* ---- the recording fake emulator ----------------------------------------- */

#define MAX_TRACE 64

/*
 * Calls are recorded as text ("+3 -3" for set_irq(3, true) then
 * set_irq(3, false), "2:1" for notify(2, 1)) so that a table can state
 * them exactly and a failure prints what happened.
 */
struct fake {
	unsigned nlines;        /* lines the device may drive */
	uint32_t levels;        /* the level of each line as last set */
	char irq[512];
	char notify[256];
	char errors[256];       /* contract violations seen by the fake */
	unsigned nirq, nnotify;
	int notify_ret;         /* what notify returns */
	unsigned ntrace;        /* trace records seen (all of them) */
	/* When set, a raised line is acknowledged from inside set_irq by
	 * reading INTRSTATUS, as an emulator taking the interrupt
	 * synchronously does; the values read are recorded. */
	struct ivshmem_flat *ack_dev;
	char acked[64];
	struct ivshmem_flat_trace trace[MAX_TRACE]; /* the first MAX_TRACE */
};

__attribute__((format(printf, 3, 4)))
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	/* Calls separated by a space. */
	if (len && len + 1 < size) {
		buf[len++] = ' ';
		buf[len] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static int rec_notify(void *opaque, uint16_t peer, uint16_t vector)
{
	struct fake *f = opaque;

	f->nnotify++;
	append(f->notify, sizeof(f->notify), "%u:%u", peer, vector);
	return f->notify_ret;
}

static void rec_set_irq(void *opaque, unsigned line, bool level)
{
	struct fake *f = opaque;

	f->nirq++;
	append(f->irq, sizeof(f->irq), "%c%u", level ? '+' : '-', line);
	/* Every call must be a change, in every mode: default mode's pulse
	 * goes high then low, latched modes call only on a change. */
	if (line >= f->nlines)
		append(f->errors, sizeof(f->errors), "line %u of %u", line,
		       f->nlines);
	else if (((f->levels >> line) & 1u) == level)
		append(f->errors, sizeof(f->errors), "line %u already %u",
		       line, (unsigned)level);
	else
		f->levels ^= 1u << line;
	if (f->ack_dev && level)
		append(f->acked, sizeof(f->acked), "%#x",
		       ivshmem_flat_mmio_read(f->ack_dev, STAT, 4));
}

static void rec_trace(void *opaque, const struct ivshmem_flat_trace *t)
{
	struct fake *f = opaque;

	if (f->ntrace < MAX_TRACE)
		f->trace[f->ntrace] = *t;
	f->ntrace++;
}

static const struct ivshmem_flat_ops rec_ops = {
	.notify = rec_notify,
	.set_irq = rec_set_irq,
	.trace = rec_trace,
};

static const struct ivshmem_flat_ops rec_ops_notrace = {
	.notify = rec_notify,
	.set_irq = rec_set_irq,
};

/* Forget the calls of the last step; the line levels stay. */
static void fake_clear(struct fake *f)
{
	f->irq[0] = '\0';
	f->notify[0] = '\0';
	f->nirq = 0;
	f->nnotify = 0;
	f->ntrace = 0;
}

static void fake_init(struct ivshmem_flat *dev, struct fake *f,
		      uint32_t flags, bool trace)
{
	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(ivshmem_flat_init(dev, flags,
					   trace ? &rec_ops : &rec_ops_notrace,
					   f), 0);
	f->nlines = ivshmem_flat_irq_lines(dev);
	ck_assert_uint_eq(f->nlines, flags & PER_VECTOR ? 32 : 1);
}

/* The fake saw no contract violation and no calls at all. */
static void assert_quiet(const struct fake *f)
{
	ck_assert_str_eq(f->errors, "");
	ck_assert_str_eq(f->irq, "");
	ck_assert_str_eq(f->notify, "");
	ck_assert_uint_eq(f->nirq, 0);
	ck_assert_uint_eq(f->nnotify, 0);
}

static struct ivshmem_flat_state state_of(const struct ivshmem_flat *dev)
{
	struct ivshmem_flat_state s;

	memset(&s, 0xA5, sizeof(s));
	ivshmem_flat_get_state(dev, &s);
	return s;
}

static struct ivshmem_flat_stats stats_of(const struct ivshmem_flat *dev)
{
	struct ivshmem_flat_stats s;

	memset(&s, 0xA5, sizeof(s));
	ivshmem_flat_get_stats(dev, &s);
	return s;
}

static void assert_stats_eq(const struct ivshmem_flat_stats *a,
			    const struct ivshmem_flat_stats *b)
{
	ck_assert_uint_eq(a->reads, b->reads);
	ck_assert_uint_eq(a->writes, b->writes);
	ck_assert_uint_eq(a->bad_accesses, b->bad_accesses);
	ck_assert_uint_eq(a->doorbells, b->doorbells);
	ck_assert_uint_eq(a->doorbells_dropped, b->doorbells_dropped);
	ck_assert_uint_eq(a->events, b->events);
	ck_assert_uint_eq(a->events_dropped, b->events_dropped);
}

/* The levels the fake holds are the ones the registers call for. */
static void assert_levels(const struct ivshmem_flat *dev,
			  const struct fake *f)
{
	struct ivshmem_flat_state s = state_of(dev);
	uint32_t pending = s.intrstatus & s.intrmask;
	uint32_t want;

	if (!(s.flags & LATCHED))
		want = 0; /* between pulses */
	else if (s.flags & PER_VECTOR)
		want = pending;
	else
		want = pending ? 1u : 0u;
	ck_assert_uint_eq(f->levels, want);
}

/* ---- register semantics, one table for all modes ------------------------- */

enum op { RD, WR, DELIVER, SET_ID, CONNECT, RESET };

struct step {
	enum op op;
	uint64_t off;           /* RD, WR */
	unsigned size;          /* RD, WR */
	uint32_t val;           /* WR value, vector, ID, connected */
	/* RD: the value read in default mode and in the latched modes;
	 * SET_ID: the return value (both the same). */
	uint32_t rd[2];
	/* set_irq calls in default, latched and per-vector mode */
	const char *irq[NMODES];
	/* INTRMASK and INTRSTATUS after the step in the latched modes
	 * (default mode: always 0) */
	uint32_t mask, status;
	/* notify calls, any mode */
	const char *notify;
};

#define PULSE "+0 -0"
#define NONE { "", "", "" }
#define EINVAL_U32 ((uint32_t)IVSHMEM_FLAT_EINVAL)

static const struct step steps[] = {
	/* A fresh device: no ID, registers 0. */
	{ RD, POS, 4, 0, { NOID, NOID }, NONE, 0, 0, "" },
	{ RD, MASK, 4, 0, { 0, 0 }, NONE, 0, 0, "" },
	{ RD, STAT, 4, 0, { 0, 0 }, NONE, 0, 0, "" },
	{ RD, BELL, 4, 0, { 0, 0 }, NONE, 0, 0, "" },
	/* An event latches its bit; masked, it raises nothing. Default
	 * mode pulses for every event whatever the registers. */
	{ DELIVER, 0, 0, 0, { 0, 0 }, { PULSE, "", "" }, 0, 0x1, "" },
	/* A read returns the status and clears it. */
	{ RD, STAT, 4, 0, { 0, 0x1 }, NONE, 0, 0, "" },
	{ RD, STAT, 4, 0, { 0, 0 }, NONE, 0, 0, "" },
	{ DELIVER, 0, 0, 0, { 0, 0 }, { PULSE, "", "" }, 0, 0x1, "" },
	{ DELIVER, 0, 0, 5, { 0, 0 }, { PULSE, "", "" }, 0, 0x21, "" },
	/* Unmasking a pending vector raises its line. */
	{ WR, MASK, 4, 0x20, { 0, 0 }, { "", "+0", "+5" }, 0x20, 0x21, "" },
	{ RD, MASK, 4, 0, { 0, 0x20 }, NONE, 0x20, 0x21, "" },
	/* The same vector again: the level does not change, no call. */
	{ DELIVER, 0, 0, 5, { 0, 0 }, { PULSE, "", "" }, 0x20, 0x21, "" },
	/* Vector 31 (the last bit) latched while masked. */
	{ DELIVER, 0, 0, 31, { 0, 0 }, { PULSE, "", "" },
	  0x20, 0x80000021, "" },
	{ WR, MASK, 4, 0x80000020, { 0, 0 }, { "", "", "+31" },
	  0x80000020, 0x80000021, "" },
	/* Vectors beyond INTRSTATUS: dropped in the latched modes. */
	{ DELIVER, 0, 0, 32, { 0, 0 }, { PULSE, "", "" },
	  0x80000020, 0x80000021, "" },
	{ DELIVER, 0, 0, 0xFFFF, { 0, 0 }, { PULSE, "", "" },
	  0x80000020, 0x80000021, "" },
	/* A write replaces the status, lowering what it clears. */
	{ WR, STAT, 4, 0x80000000, { 0, 0 }, { "", "", "-5" },
	  0x80000020, 0x80000000, "" },
	{ WR, MASK, 4, 0x1, { 0, 0 }, { "", "-0", "-31" },
	  0x1, 0x80000000, "" },
	{ WR, STAT, 4, 0x3, { 0, 0 }, { "", "+0", "+0" }, 0x1, 0x3, "" },
	{ RD, MASK, 4, 0, { 0, 0x1 }, NONE, 0x1, 0x3, "" },
	/* Other widths, alignments and offsets touch nothing: a 16-bit
	 * read does not clear INTRSTATUS, a 64-bit write does not mask. */
	{ RD, STAT, 2, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ RD, STAT, 8, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ RD, STAT + 1, 4, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ RD, STAT + 0x100, 4, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ RD, 0x10, 4, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ WR, MASK, 2, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ WR, MASK, 8, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ WR, MASK + 2, 4, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ WR, STAT, 1, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ WR, 0x10, 4, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ WR, 0x100000000ull + MASK, 4, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	{ RD, 0x100000000ull + STAT, 4, 0, { 0, 0 }, NONE, 0x1, 0x3, "" },
	/* The real read clears the status and lowers the line. */
	{ RD, STAT, 4, 0, { 0, 0x3 }, { "", "-0", "-0" }, 0x1, 0, "" },
	/* Several lines at once, in line order. */
	{ WR, MASK, 4, 0xFFFFFFFF, { 0, 0 }, NONE, 0xFFFFFFFF, 0, "" },
	{ WR, STAT, 4, 0xF, { 0, 0 }, { "", "+0", "+0 +1 +2 +3" },
	  0xFFFFFFFF, 0xF, "" },
	{ WR, STAT, 4, 0x80000001, { 0, 0 }, { "", "", "-1 -2 -3 +31" },
	  0xFFFFFFFF, 0x80000001, "" },
	/* Reset lowers what is high and clears both registers. */
	{ RESET, 0, 0, 0, { 0, 0 }, { "", "-0", "-0 -31" }, 0, 0, "" },
	{ RESET, 0, 0, 0, { 0, 0 }, NONE, 0, 0, "" },
	{ RD, MASK, 4, 0, { 0, 0 }, NONE, 0, 0, "" },
	{ RD, STAT, 4, 0, { 0, 0 }, NONE, 0, 0, "" },
	/* The peer ID: 0..65535, NO_ID, nothing else; read-only. */
	{ SET_ID, 0, 0, 7, { 0, 0 }, NONE, 0, 0, "" },
	{ RD, POS, 4, 0, { 7, 7 }, NONE, 0, 0, "" },
	{ SET_ID, 0, 0, 65536, { EINVAL_U32, EINVAL_U32 }, NONE, 0, 0, "" },
	{ SET_ID, 0, 0, 0xFFFFFFFE, { EINVAL_U32, EINVAL_U32 }, NONE,
	  0, 0, "" },
	{ RD, POS, 4, 0, { 7, 7 }, NONE, 0, 0, "" },
	{ WR, POS, 4, 0x1234, { 0, 0 }, NONE, 0, 0, "" },
	{ RD, POS, 4, 0, { 7, 7 }, NONE, 0, 0, "" },
	/* Doorbells ring only while connected and with an ID. */
	{ WR, BELL, 4, 0x00020001, { 0, 0 }, NONE, 0, 0, "" },
	{ CONNECT, 0, 0, 1, { 0, 0 }, NONE, 0, 0, "" },
	{ WR, BELL, 4, 0x00020001, { 0, 0 }, NONE, 0, 0, "2:1" },
	{ RD, BELL, 4, 0, { 0, 0 }, NONE, 0, 0, "" },
	{ WR, BELL, 4, 0xFFFFFFFF, { 0, 0 }, NONE, 0, 0, "65535:65535" },
	{ WR, BELL, 4, 0, { 0, 0 }, NONE, 0, 0, "0:0" },
	{ WR, BELL, 2, 0x00020001, { 0, 0 }, NONE, 0, 0, "" },
	{ WR, BELL + 4, 4, 0x00020001, { 0, 0 }, NONE, 0, 0, "" },
	{ SET_ID, 0, 0, NOID, { 0, 0 }, NONE, 0, 0, "" },
	{ RD, POS, 4, 0, { NOID, NOID }, NONE, 0, 0, "" },
	{ WR, BELL, 4, 0x00020001, { 0, 0 }, NONE, 0, 0, "" },
	{ SET_ID, 0, 0, 0, { 0, 0 }, NONE, 0, 0, "" },
	{ RD, POS, 4, 0, { 0, 0 }, NONE, 0, 0, "" },
	{ WR, BELL, 4, 0x00030004, { 0, 0 }, NONE, 0, 0, "3:4" },
	{ CONNECT, 0, 0, 0, { 0, 0 }, NONE, 0, 0, "" },
	{ WR, BELL, 4, 0x00030004, { 0, 0 }, NONE, 0, 0, "" },
	/* Reset keeps the ID and the connection. */
	{ CONNECT, 0, 0, 1, { 0, 0 }, NONE, 0, 0, "" },
	{ SET_ID, 0, 0, 65535, { 0, 0 }, NONE, 0, 0, "" },
	{ DELIVER, 0, 0, 2, { 0, 0 }, { PULSE, "", "" }, 0, 0x4, "" },
	{ WR, MASK, 4, 0x6, { 0, 0 }, { "", "+0", "+2" }, 0x6, 0x4, "" },
	{ DELIVER, 0, 0, 1, { 0, 0 }, { PULSE, "", "+1" }, 0x6, 0x6, "" },
	{ RESET, 0, 0, 0, { 0, 0 }, { "", "-0", "-1 -2" }, 0, 0, "" },
	{ RD, POS, 4, 0, { 65535, 65535 }, NONE, 0, 0, "" },
	{ WR, BELL, 4, 0x00010000, { 0, 0 }, NONE, 0, 0, "1:0" },
};

static const char *const op_names[] = { "RD", "WR", "DELIVER", "SET_ID",
					"CONNECT", "RESET" };

/* Loop index: mode (0..2), plus NMODES for the same without a trace
 * hook (every step must behave the same). */
START_TEST(register_table)
{
	uint32_t flags = modes[_i % NMODES];
	bool latched = flags & LATCHED;
	struct ivshmem_flat dev;
	struct fake f;
	size_t i;

	fake_init(&dev, &f, flags, _i < NMODES);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct step *s = &steps[i];
		struct ivshmem_flat_state st;
		uint32_t got = 0;
		char where[128];

		snprintf(where, sizeof(where), "%s mode, step %zu (%s %#" PRIx64
			 " %u %#x)", mode_names[_i % NMODES], i,
			 op_names[s->op], s->off, s->size, s->val);
		fake_clear(&f);
		switch (s->op) {
		case RD:
			got = ivshmem_flat_mmio_read(&dev, s->off, s->size);
			break;
		case WR:
			ivshmem_flat_mmio_write(&dev, s->off, s->val,
						s->size);
			break;
		case DELIVER:
			ivshmem_flat_deliver(&dev, s->val);
			break;
		case SET_ID:
			got = (uint32_t)ivshmem_flat_set_id(&dev, s->val);
			break;
		case CONNECT:
			ivshmem_flat_set_connected(&dev, s->val);
			break;
		case RESET:
			ivshmem_flat_reset(&dev);
			break;
		}
		if (s->op == RD || s->op == SET_ID)
			ck_assert_msg(got == s->rd[latched],
				      "%s: got %#x, want %#x", where, got,
				      s->rd[latched]);
		ck_assert_msg(!strcmp(f.irq, s->irq[_i % NMODES]),
			      "%s: set_irq calls \"%s\", want \"%s\"", where,
			      f.irq, s->irq[_i % NMODES]);
		ck_assert_msg(!strcmp(f.notify, s->notify),
			      "%s: notify calls \"%s\", want \"%s\"", where,
			      f.notify, s->notify);
		ck_assert_msg(!f.errors[0], "%s: %s", where, f.errors);
		st = state_of(&dev);
		ck_assert_msg(st.intrmask == (latched ? s->mask : 0) &&
			      st.intrstatus == (latched ? s->status : 0),
			      "%s: mask %#x status %#x, want %#x %#x", where,
			      st.intrmask, st.intrstatus,
			      latched ? s->mask : 0, latched ? s->status : 0);
		assert_levels(&dev, &f);
		if (_i >= NMODES)
			ck_assert_uint_eq(f.ntrace, 0);
	}
}
END_TEST

/*
 * An acknowledge from inside set_irq (the core's update_irq recomputes the
 * levels after each call for this): the lines follow what the nested read
 * cleared instead of levels computed before it (an emulator that takes
 * the interrupt synchronously does this; ivshmem-flat.h allows it).
 */
START_TEST(ack_inside_set_irq)
{
	uint32_t flags = _i ? LATCHED | PER_VECTOR : LATCHED;
	struct ivshmem_flat dev;
	struct fake f;

	fake_init(&dev, &f, flags, true);
	ivshmem_flat_mmio_write(&dev, MASK, 0xFFFFFFFF, 4);
	f.ack_dev = &dev;
	/* Two vectors at once: the handler of the first line takes both. */
	ivshmem_flat_mmio_write(&dev, STAT, 0x6, 4);
	ck_assert_str_eq(f.acked, "0x6");
	ck_assert_str_eq(f.irq, _i ? "+1 -1" : "+0 -0");
	ck_assert_str_eq(f.errors, "");
	ck_assert_uint_eq(state_of(&dev).intrstatus, 0);
	assert_levels(&dev, &f);
	/* An event taken the same way. */
	fake_clear(&f);
	f.acked[0] = '\0';
	ivshmem_flat_deliver(&dev, 31);
	ck_assert_str_eq(f.acked, "0x80000000");
	ck_assert_str_eq(f.irq, _i ? "+31 -31" : "+0 -0");
	ck_assert_str_eq(f.errors, "");
	assert_levels(&dev, &f);
}
END_TEST

/* ---- IVPOSITION and set_id ----------------------------------------------- */

START_TEST(ivposition)
{
	struct ivshmem_flat dev;
	struct fake f;
	uint64_t id;
	uint32_t bad;

	/* IVPOSITION does not depend on the mode (the table reads it in
	 * all three): one device for the walks. */
	fake_init(&dev, &f, LATCHED, true);
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, POS, 4), NOID);
	/* Every valid ID reads back exactly. */
	for (id = 0; id <= 0xFFFF; id++) {
		ck_assert_int_eq(ivshmem_flat_set_id(&dev, (uint32_t)id), 0);
		if (ivshmem_flat_mmio_read(&dev, POS, 4) != id)
			ck_abort_msg("IVPOSITION %#x after set_id(%#" PRIx64
				     ")", ivshmem_flat_mmio_read(&dev, POS, 4),
				     id);
	}
	/* Every invalid one: set_id_invalid_walk. */
	ck_assert_int_eq(ivshmem_flat_set_id(&dev, 1234), 0);
	ck_assert_int_eq(ivshmem_flat_set_id(NULL, 1), IVSHMEM_FLAT_EINVAL);
	/* Writes to IVPOSITION, any value, change nothing. */
	for (bad = 0; bad < 32; bad++)
		ivshmem_flat_mmio_write(&dev, POS, 1u << bad, 4);
	ivshmem_flat_mmio_write(&dev, POS, NOID, 4);
	ivshmem_flat_mmio_write(&dev, POS, 0, 4);
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, POS, 4), 1234);
	ck_assert_int_eq(ivshmem_flat_set_id(&dev, NOID), 0);
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, POS, 4), NOID);
	/* DOORBELL is write-only. */
	ivshmem_flat_set_connected(&dev, true);
	ivshmem_flat_set_id(&dev, 5);
	ivshmem_flat_mmio_write(&dev, BELL, 0x00050001, 4);
	ck_assert_str_eq(f.notify, "5:1");
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, BELL, 4), 0);
	ck_assert_str_eq(f.irq, "");
	ck_assert_str_eq(f.errors, "");
}
END_TEST

/* Every invalid ID, 65536..0xFFFFFFFE, is refused and leaves the ID alone
 * (a few billion calls of a compare: seconds, with the other walks). */
START_TEST(set_id_invalid_walk)
{
	struct ivshmem_flat dev;
	struct fake f;
	uint64_t id;

	fake_init(&dev, &f, LATCHED, true);
	ck_assert_int_eq(ivshmem_flat_set_id(&dev, 1234), 0);
	for (id = 0x10000; id < NOID; id++)
		if (ivshmem_flat_set_id(&dev, (uint32_t)id) !=
		    IVSHMEM_FLAT_EINVAL)
			ck_abort_msg("set_id(%#" PRIx64 ") accepted", id);
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, POS, 4), 1234);
}
END_TEST

/* ---- DOORBELL ------------------------------------------------------------ */

/* The only trace record of the last call is @p kind; returns it. */
static const struct ivshmem_flat_trace *
only_trace(const struct fake *f, enum ivshmem_flat_trace_kind kind)
{
	ck_assert_uint_eq(f->ntrace, 1);
	ck_assert_int_eq(f->trace[0].kind, kind);
	return &f->trace[0];
}

/* A doorbell write (a register write: its WRITE record comes first). */
static const struct ivshmem_flat_trace *
ring(struct ivshmem_flat *dev, struct fake *f, uint64_t value)
{
	fake_clear(f);
	ivshmem_flat_mmio_write(dev, BELL, value, 4);
	ck_assert_uint_eq(f->ntrace, 2);
	ck_assert_int_eq(f->trace[0].kind, IVSHMEM_FLAT_TRACE_WRITE);
	ck_assert_uint_eq(f->trace[0].value, (uint32_t)value);
	return &f->trace[1];
}

static void assert_dropped(const struct ivshmem_flat_trace *t, uint16_t peer,
			   uint16_t vector, int result)
{
	ck_assert_int_eq(t->kind, IVSHMEM_FLAT_TRACE_DOORBELL_DROPPED);
	ck_assert_uint_eq(t->peer, peer);
	ck_assert_uint_eq(t->vector, vector);
	ck_assert_int_eq(t->result, result);
}

START_TEST(doorbell)
{
	static const int refusals[] = { -ENOENT, -ERANGE, -1, INT_MIN };
	struct ivshmem_flat dev;
	struct ivshmem_flat_stats st;
	const struct ivshmem_flat_trace *t;
	struct fake f;
	size_t i;

	fake_init(&dev, &f, modes[_i], true);
	/* No ID, not connected. */
	t = ring(&dev, &f, 0x00010002);
	assert_dropped(t, 1, 2, IVSHMEM_FLAT_ENOTCONN);
	/* An ID, not connected. */
	ck_assert_int_eq(ivshmem_flat_set_id(&dev, 3), 0);
	t = ring(&dev, &f, 0x00010002);
	assert_dropped(t, 1, 2, IVSHMEM_FLAT_ENOTCONN);
	/* Connected, no ID. */
	ck_assert_int_eq(ivshmem_flat_set_id(&dev, NOID), 0);
	ivshmem_flat_set_connected(&dev, true);
	t = ring(&dev, &f, 0xFFFFFFFF);
	assert_dropped(t, 0xFFFF, 0xFFFF, IVSHMEM_FLAT_ENOTCONN);
	ck_assert_uint_eq(f.nnotify, 0);
	st = stats_of(&dev);
	ck_assert_uint_eq(st.doorbells, 0);
	ck_assert_uint_eq(st.doorbells_dropped, 3);
	ck_assert_uint_eq(st.writes, 3);

	/* Connected with an ID: notify gets both halves, all 16 bits. */
	ck_assert_int_eq(ivshmem_flat_set_id(&dev, 3), 0);
	t = ring(&dev, &f, 0x12345678);
	ck_assert_str_eq(f.notify, "4660:22136");
	ck_assert_int_eq(t->kind, IVSHMEM_FLAT_TRACE_DOORBELL);
	ck_assert_uint_eq(t->peer, 0x1234);
	ck_assert_uint_eq(t->vector, 0x5678);
	ck_assert_int_eq(t->result, 0);
	/* Ringing oneself is the transport's business, not refused here. */
	ring(&dev, &f, 0x00030000);
	ck_assert_str_eq(f.notify, "3:0");
	/* Only the low 32 bits of the written value count. */
	ring(&dev, &f, 0xABCDEF0100020003ull);
	ck_assert_str_eq(f.notify, "2:3");
	st = stats_of(&dev);
	ck_assert_uint_eq(st.doorbells, 3);
	ck_assert_uint_eq(st.doorbells_dropped, 3);

	/* notify refusing: counted as dropped with its result. */
	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		f.notify_ret = refusals[i];
		t = ring(&dev, &f, 0x00090008);
		ck_assert_str_eq(f.notify, "9:8");
		assert_dropped(t, 9, 8, refusals[i]);
	}
	st = stats_of(&dev);
	ck_assert_uint_eq(st.doorbells, 3);
	ck_assert_uint_eq(st.doorbells_dropped, 3 + i);
	ck_assert_uint_eq(st.writes, 6 + i);
	ck_assert_uint_eq(st.bad_accesses, 0);
	ck_assert_str_eq(f.irq, "");
	ck_assert_str_eq(f.errors, "");
}
END_TEST

/* ---- bad accesses: every width, every offset ----------------------------- */

static bool is_register(uint64_t off, unsigned size)
{
	return size == 4 && (off == MASK || off == STAT || off == POS ||
			     off == BELL);
}

/* Offsets that a decoder truncating to 32, 16 or 8 bits, or masking to the
 * block, would take for registers. */
static const uint64_t far_offsets[] = {
	0x100, 0x104, 0x108, 0x10C, 0x110, 0x1000, 0x1004, 0x10008, 0x1000C,
	0xFFFFFFF0, 0xFFFFFFFC, 0x100000000ull, 0x100000004ull,
	0x100000008ull, 0x10000000Cull, 0xFFFFFFFF00000000ull,
	0xFFFFFFFF00000004ull, 0xFFFFFFFF00000008ull, 0xFFFFFFFF0000000Cull,
	0x8000000000000000ull, 0x8000000000000004ull, 0x8000000000000008ull,
	0x800000000000000Cull, UINT64_MAX - 0xF, UINT64_MAX - 0xB,
	UINT64_MAX - 7, UINT64_MAX - 3, UINT64_MAX,
};

/* Widths beyond 0..9 that a decoder truncating the size would take for
 * 4. */
static const unsigned far_sizes[] = { 16, 0x104, 0x10004, 0x80000004u,
				      UINT_MAX };

/* One access that must do nothing but count and trace a BAD_ACCESS. */
static void bad_one(struct ivshmem_flat *dev, struct fake *f, uint64_t off,
		    unsigned size, bool write, uint64_t value)
{
	struct ivshmem_flat_state s0 = state_of(dev), s1;
	struct ivshmem_flat_stats st0 = stats_of(dev), st1;
	const struct ivshmem_flat_trace *t;

	fake_clear(f);
	if (write) {
		ivshmem_flat_mmio_write(dev, off, value, size);
	} else {
		uint32_t v = ivshmem_flat_mmio_read(dev, off, size);

		if (v)
			ck_abort_msg("read %u at %#" PRIx64 ": %#x", size,
				     off, v);
	}
	if (f->nirq || f->nnotify || f->errors[0])
		ck_abort_msg("%s %u at %#" PRIx64 ": irq \"%s\" notify "
			     "\"%s\" %s", write ? "write" : "read", size, off,
			     f->irq, f->notify, f->errors);
	s1 = state_of(dev);
	ck_assert(!memcmp(&s0, &s1, sizeof(s0)));
	st1 = stats_of(dev);
	st0.bad_accesses++;
	assert_stats_eq(&st0, &st1);
	t = only_trace(f, IVSHMEM_FLAT_TRACE_BAD_ACCESS);
	ck_assert_uint_eq(t->offset, off);
	ck_assert_uint_eq(t->size, size);
	ck_assert(t->write == write);
	ck_assert_uint_eq(t->value, write ? (uint32_t)value : 0);
}

/* Every access at @p off: widths 0..9 and far ones, read and writes of
 * values that would change every register (and ring a known peer). */
static unsigned bad_all_sizes(struct ivshmem_flat *dev, struct fake *f,
			      uint64_t off)
{
	static const uint64_t values[] = { 0, 0x00020003, UINT64_MAX };
	unsigned skipped = 0, size, k;

	for (k = 0; k < 10 + sizeof(far_sizes) / sizeof(far_sizes[0]); k++) {
		size = k < 10 ? k : far_sizes[k - 10];
		if (is_register(off, size)) {
			skipped++;
			continue;
		}
		bad_one(dev, f, off, size, false, 0);
		for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++)
			bad_one(dev, f, off, size, true, values[v]);
	}
	return skipped;
}

START_TEST(bounds)
{
	struct ivshmem_flat dev;
	struct ivshmem_flat_stats st;
	struct fake f;
	unsigned skipped = 0;
	uint64_t off;
	size_t i;

	/* State in every register, lines high, a working doorbell: any
	 * access taken for a register would show. */
	fake_init(&dev, &f, modes[_i], true);
	ck_assert_int_eq(ivshmem_flat_set_id(&dev, 9), 0);
	ivshmem_flat_set_connected(&dev, true);
	ivshmem_flat_mmio_write(&dev, MASK, 0x5, 4);
	ivshmem_flat_mmio_write(&dev, STAT, 0x7, 4);
	assert_levels(&dev, &f);

	for (off = 0; off <= 0x103; off++)
		skipped += bad_all_sizes(&dev, &f, off);
	/* Only the four aligned 32-bit registers were not bad. */
	ck_assert_uint_eq(skipped, 4);
	for (i = 0; i < sizeof(far_offsets) / sizeof(far_offsets[0]); i++)
		ck_assert_uint_eq(bad_all_sizes(&dev, &f, far_offsets[i]), 0);

	/* Reserved registers read 0 (already above; said once more for the
	 * aligned 32-bit case, which a decoder is most likely to map). */
	for (off = 0x10; off < IVSHMEM_FLAT_MMIO_SIZE; off += 4)
		ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, off, 4), 0);

	/* Everything still as set up. */
	fake_clear(&f);
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, POS, 4), 9);
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, MASK, 4),
			  modes[_i] ? 0x5 : 0);
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, STAT, 4),
			  modes[_i] ? 0x7 : 0);
	ivshmem_flat_mmio_write(&dev, BELL, 0x00020003, 4);
	ck_assert_str_eq(f.notify, "2:3");
	st = stats_of(&dev);
	ck_assert_uint_eq(st.bad_accesses,
			  (260 + sizeof(far_offsets) / sizeof(far_offsets[0]))
			  * (10 + sizeof(far_sizes) / sizeof(far_sizes[0]))
			  * 4 - 4 * 4 + (IVSHMEM_FLAT_MMIO_SIZE - 0x10) / 4);
	ck_assert_uint_eq(st.reads, 3);
	ck_assert_uint_eq(st.writes, 3);
	ck_assert_uint_eq(st.doorbells, 1);
	ck_assert_uint_eq(st.doorbells_dropped, 0);
}
END_TEST

/* ---- every doorbell value through a bounded transport -------------------- */

/*
 * The fake transport knows a few peers, each with exactly `count` vectors
 * in an exactly-sized heap array, and a 65536-entry table by ID: an
 * out-of-range peer or vector handed to notify is an out-of-bounds access
 * that ASan reports. What the walk asserts is that the core passes every
 * guest value through unchanged and counts exactly what notify refused.
 */
struct xpeer {
	uint16_t id;
	uint32_t count;
	uint32_t *rung;
};

struct transport {
	struct xpeer **by_id;
	uint64_t enoent, erange;
};

static int walk_notify(void *opaque, uint16_t peer, uint16_t vector)
{
	struct transport *x = opaque;
	struct xpeer *p = x->by_id[peer];

	if (!p) {
		x->enoent++;
		return -ENOENT;
	}
	if (vector >= p->count) {
		x->erange++;
		return -ERANGE;
	}
	p->rung[vector]++;
	return 0;
}

static void walk_set_irq(void *opaque, unsigned line, bool level)
{
	ck_abort_msg("set_irq(%u, %d) from a doorbell", line, level);
}

static const struct ivshmem_flat_ops walk_ops = {
	.notify = walk_notify,
	.set_irq = walk_set_irq,
};

/* Neighbouring IDs known and unknown, the extremes of both fields. */
static struct xpeer xpeers[] = {
	{ 0, 1, NULL }, { 1, 2, NULL }, { 2, 32, NULL }, { 4, 65536, NULL },
	{ 1000, 3, NULL }, { 65534, 7, NULL }, { 65535, 65535, NULL },
};
#define NXPEERS (sizeof(xpeers) / sizeof(xpeers[0]))

START_TEST(doorbell_walk)
{
	struct ivshmem_flat dev;
	struct ivshmem_flat_stats st;
	struct transport x;
	uint64_t valid = 0, value, unknown_ids = 65536 - NXPEERS;
	uint64_t beyond = 0;
	double t0;
	size_t i;

	x.by_id = calloc(65536, sizeof(*x.by_id));
	ck_assert_ptr_nonnull(x.by_id);
	x.enoent = x.erange = 0;
	for (i = 0; i < NXPEERS; i++) {
		xpeers[i].rung = calloc(xpeers[i].count, sizeof(uint32_t));
		ck_assert_ptr_nonnull(xpeers[i].rung);
		x.by_id[xpeers[i].id] = &xpeers[i];
		valid += xpeers[i].count;
		beyond += 65536 - xpeers[i].count;
	}
	ck_assert_int_eq(ivshmem_flat_init(&dev, LATCHED, &walk_ops, &x), 0);
	ck_assert_int_eq(ivshmem_flat_set_id(&dev, 1), 0);
	ivshmem_flat_set_connected(&dev, true);

	/* All 2^32 values, no sampling: about 28 s plain and 105 s under
	 * ASan+UBSan on a 2-core machine (-O2), inside the walk's own
	 * timeout below with room for a loaded machine. */
	t0 = now_seconds();
	for (value = 0; value <= UINT32_MAX; value++)
		ivshmem_flat_mmio_write(&dev, BELL, value, 4);
	fprintf(stderr, "doorbell walk: 2^32 writes in %.1f s\n",
		now_seconds() - t0);

	st = stats_of(&dev);
	ck_assert_uint_eq(st.writes, 1ull << 32);
	ck_assert_uint_eq(st.doorbells, valid);
	ck_assert_uint_eq(st.doorbells_dropped, (1ull << 32) - valid);
	ck_assert_uint_eq(x.enoent, unknown_ids * 65536);
	ck_assert_uint_eq(x.erange, beyond);
	ck_assert_uint_eq(st.bad_accesses, 0);
	/* Each (peer, vector) rang exactly once. */
	for (i = 0; i < NXPEERS; i++) {
		for (uint32_t v = 0; v < xpeers[i].count; v++)
			if (xpeers[i].rung[v] != 1)
				ck_abort_msg("peer %u vector %u rung %u times",
					     xpeers[i].id, v,
					     xpeers[i].rung[v]);
		free(xpeers[i].rung);
	}
	free(x.by_id);
}
END_TEST

/* ---- every delivered vector ---------------------------------------------- */

START_TEST(deliver_walk)
{
	uint32_t flags = modes[_i];
	struct ivshmem_flat dev;
	struct ivshmem_flat_stats st;
	struct fake f;
	uint64_t v, latched = 0, dropped = 0;
	char want[32];

	fake_init(&dev, &f, flags, true);
	ivshmem_flat_mmio_write(&dev, MASK, 0xFFFFFFFF, 4);
	for (v = 0; v <= 0x10000; v++) {
		/* 0x10000 stands for the largest vector a caller can pass. */
		uint32_t vector = v == 0x10000 ? UINT32_MAX : (uint32_t)v;
		const struct ivshmem_flat_trace *t;
		uint32_t status;

		fake_clear(&f);
		ivshmem_flat_deliver(&dev, vector);
		t = &f.trace[0];
		ck_assert_uint_ge(f.ntrace, 1);
		ck_assert_uint_eq(t->vector, vector);
		if (!(flags & LATCHED)) {
			ck_assert_int_eq(t->kind, IVSHMEM_FLAT_TRACE_EVENT);
			if (strcmp(f.irq, PULSE))
				ck_abort_msg("vector %u: irq \"%s\"", vector,
					     f.irq);
			continue;
		}
		status = state_of(&dev).intrstatus;
		if (vector >= IVSHMEM_FLAT_LATCHED_VECTORS) {
			/* Dropped: no bit (no shift by >= 32 aliasing to a
			 * low bit), no interrupt. */
			ck_assert_int_eq(t->kind,
					 IVSHMEM_FLAT_TRACE_EVENT_DROPPED);
			ck_assert_uint_eq(f.ntrace, 1);
			if (status || f.nirq)
				ck_abort_msg("vector %u: status %#x irq "
					     "\"%s\"", vector, status, f.irq);
			dropped++;
			continue;
		}
		ck_assert_int_eq(t->kind, IVSHMEM_FLAT_TRACE_EVENT);
		ck_assert_uint_eq(status, 1u << vector);
		snprintf(want, sizeof(want), "+%u",
			 flags & PER_VECTOR ? vector : 0);
		ck_assert_str_eq(f.irq, want);
		ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, STAT, 4),
				  1u << vector);
		latched++;
	}
	ck_assert_str_eq(f.errors, "");
	st = stats_of(&dev);
	if (flags & LATCHED) {
		ck_assert_uint_eq(latched, 32);
		ck_assert_uint_eq(st.events, 32);
		ck_assert_uint_eq(st.events_dropped, 0x10001 - 32);
		ck_assert_uint_eq(dropped, 0x10001 - 32);
		ck_assert_uint_eq(f.levels, 0);
	} else {
		ck_assert_uint_eq(st.events, 0x10001);
		ck_assert_uint_eq(st.events_dropped, 0);
	}
}
END_TEST

/* ---- snapshot and restore ------------------------------------------------ */

/* A latched device with mask and status set and its lines high. */
static void setup_pending(struct ivshmem_flat *dev, struct fake *f,
			  uint32_t flags)
{
	fake_init(dev, f, flags, true);
	ivshmem_flat_mmio_write(dev, MASK, 0x80000013, 4);
	ivshmem_flat_deliver(dev, 1);
	ivshmem_flat_deliver(dev, 2);
	ivshmem_flat_deliver(dev, 31);
	fake_clear(f);
}

/* A set_state that must fail with @p err and change nothing. */
static void restore_fails(struct ivshmem_flat *dev, struct fake *f,
			  const struct ivshmem_flat_state *s, int err)
{
	struct ivshmem_flat_state before = state_of(dev), after;

	fake_clear(f);
	ck_assert_int_eq(ivshmem_flat_set_state(dev, s), err);
	assert_quiet(f);
	after = state_of(dev);
	ck_assert(!memcmp(&before, &after, sizeof(before)));
	assert_levels(dev, f);
}

START_TEST(snapshot)
{
	uint32_t flags = _i ? LATCHED | PER_VECTOR : LATCHED;
	struct ivshmem_flat src, dst, dflt;
	struct ivshmem_flat_state s, bad;
	struct fake fs, fd, fdflt;

	setup_pending(&src, &fs, flags);
	s = state_of(&src);
	ck_assert_uint_eq(s.version, IVSHMEM_FLAT_STATE_VERSION);
	ck_assert_uint_eq(s.size, sizeof(s));
	ck_assert_uint_eq(s.flags, flags);
	ck_assert_uint_eq(s.intrmask, 0x80000013);
	ck_assert_uint_eq(s.intrstatus, 0x80000006);

	/* Restored into a fresh device: the lines come up. */
	fake_init(&dst, &fd, flags, true);
	ck_assert_int_eq(ivshmem_flat_set_state(&dst, &s), 0);
	ck_assert_str_eq(fd.irq, flags & PER_VECTOR ? "+1 +31" : "+0");
	ck_assert_str_eq(fd.errors, "");
	assert_levels(&dst, &fd);
	/* The same state again changes no level: no calls. */
	fake_clear(&fd);
	ck_assert_int_eq(ivshmem_flat_set_state(&dst, &s), 0);
	assert_quiet(&fd);
	/* Same register reads on both (the status read clears both). */
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dst, MASK, 4),
			  ivshmem_flat_mmio_read(&src, MASK, 4));
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dst, STAT, 4), 0x80000006);
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&src, STAT, 4), 0x80000006);
	ck_assert_str_eq(fd.irq, fs.irq);
	ck_assert_uint_eq(fd.levels, 0);

	/* Errors change nothing on a device with state and lines high. */
	setup_pending(&dst, &fd, flags);
	s.intrmask = 0xFFFFFFFF;
	s.intrstatus = 0xFFFFFFFF;
	bad = s;
	bad.version = IVSHMEM_FLAT_STATE_VERSION + 1;
	restore_fails(&dst, &fd, &bad, IVSHMEM_FLAT_EVERSION);
	bad.version = 0;
	restore_fails(&dst, &fd, &bad, IVSHMEM_FLAT_EVERSION);
	bad = s;
	bad.size = sizeof(s) - 1;
	restore_fails(&dst, &fd, &bad, IVSHMEM_FLAT_EVERSION);
	bad.size = sizeof(s) + 4;
	restore_fails(&dst, &fd, &bad, IVSHMEM_FLAT_EVERSION);
	bad = s;
	bad.flags = flags ^ PER_VECTOR;
	restore_fails(&dst, &fd, &bad, IVSHMEM_FLAT_EMODE);
	bad.flags = 0;
	restore_fails(&dst, &fd, &bad, IVSHMEM_FLAT_EMODE);
	bad.flags = flags | 4;
	restore_fails(&dst, &fd, &bad, IVSHMEM_FLAT_EMODE);
	restore_fails(&dst, &fd, NULL, IVSHMEM_FLAT_EINVAL);
	ck_assert_int_eq(ivshmem_flat_set_state(NULL, &s),
			 IVSHMEM_FLAT_EINVAL);

	/* Default mode: a zero state restores, registers set do not. */
	fake_init(&dflt, &fdflt, 0, true);
	bad = state_of(&dflt);
	ck_assert_uint_eq(bad.flags, 0);
	ck_assert_uint_eq(bad.intrmask | bad.intrstatus, 0);
	ck_assert_int_eq(ivshmem_flat_set_state(&dflt, &bad), 0);
	assert_quiet(&fdflt);
	bad.intrmask = 1;
	restore_fails(&dflt, &fdflt, &bad, IVSHMEM_FLAT_EMODE);
	bad.intrmask = 0;
	bad.intrstatus = 1;
	restore_fails(&dflt, &fdflt, &bad, IVSHMEM_FLAT_EMODE);
	/* A latched state into a default device, and the other way. */
	restore_fails(&dflt, &fdflt, &s, IVSHMEM_FLAT_EMODE);
	bad.intrstatus = 0;
	restore_fails(&dst, &fd, &bad, IVSHMEM_FLAT_EMODE);
}
END_TEST

/* ---- reset --------------------------------------------------------------- */

START_TEST(reset)
{
	uint32_t flags = modes[_i];
	struct ivshmem_flat dev;
	struct ivshmem_flat_stats before, after;
	struct ivshmem_flat_state s;
	struct fake f;

	setup_pending(&dev, &f, flags);
	ck_assert_int_eq(ivshmem_flat_set_id(&dev, 42), 0);
	ivshmem_flat_set_connected(&dev, true);
	ivshmem_flat_mmio_write(&dev, BELL, 0x00010001, 4);
	ivshmem_flat_mmio_read(&dev, 0x20, 4);
	fake_clear(&f);
	before = stats_of(&dev);

	ivshmem_flat_reset(&dev);
	/* Each high line lowered once, in line order. */
	if (!(flags & LATCHED))
		ck_assert_str_eq(f.irq, "");
	else if (flags & PER_VECTOR)
		ck_assert_str_eq(f.irq, "-1 -31");
	else
		ck_assert_str_eq(f.irq, "-0");
	ck_assert_str_eq(f.errors, "");
	ck_assert_uint_eq(f.levels, 0);
	s = state_of(&dev);
	ck_assert_uint_eq(s.intrmask, 0);
	ck_assert_uint_eq(s.intrstatus, 0);
	after = stats_of(&dev);
	assert_stats_eq(&before, &after);
	ck_assert_uint_eq(after.doorbells, 1);
	ck_assert_uint_eq(after.bad_accesses, 1);

	fake_clear(&f);
	ivshmem_flat_reset(&dev);
	assert_quiet(&f);

	/* ID and connection kept: IVPOSITION and the doorbell work. */
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, POS, 4), 42);
	ivshmem_flat_mmio_write(&dev, BELL, 0x00070002, 4);
	ck_assert_str_eq(f.notify, "7:2");
	/* And the device works as a fresh one. */
	fake_clear(&f);
	ivshmem_flat_deliver(&dev, 0);
	ivshmem_flat_mmio_write(&dev, MASK, 1, 4);
	ck_assert_str_eq(f.irq, flags & LATCHED ? "+0" : PULSE);
}
END_TEST

/* ---- init ---------------------------------------------------------------- */

static void init_fails(uint32_t flags, const struct ivshmem_flat_ops *ops,
		       bool null_dev)
{
	struct ivshmem_flat dev, pattern;
	struct fake f;

	memset(&dev, 0x5A, sizeof(dev));
	memset(&pattern, 0x5A, sizeof(pattern));
	ck_assert_int_eq(ivshmem_flat_init(null_dev ? NULL : &dev, flags, ops,
					   &f), IVSHMEM_FLAT_EINVAL);
	ck_assert(!memcmp(&dev, &pattern, sizeof(dev)));
}

static int stub_notify(void *opaque, uint16_t peer, uint16_t vector)
{
	return 0;
}

static void stub_set_irq(void *opaque, unsigned line, bool level)
{
}

START_TEST(init_args)
{
	static const struct ivshmem_flat_ops no_notify = {
		.set_irq = stub_set_irq,
	};
	static const struct ivshmem_flat_ops no_set_irq = {
		.notify = stub_notify,
	};
	static const struct ivshmem_flat_ops no_trace = {
		.notify = stub_notify,
		.set_irq = stub_set_irq,
	};
	struct ivshmem_flat dev;
	struct ivshmem_flat_stats st;
	struct fake f;
	unsigned bit, m;

	init_fails(0, &no_trace, true);
	init_fails(0, NULL, false);
	init_fails(0, &no_notify, false);
	init_fails(0, &no_set_irq, false);
	init_fails(LATCHED, &no_notify, false);
	/* Every unknown flag, alone and with the known ones. */
	for (bit = 2; bit < 32; bit++) {
		init_fails(1u << bit, &no_trace, false);
		init_fails((1u << bit) | LATCHED | PER_VECTOR, &no_trace,
			   false);
	}
	init_fails(UINT32_MAX, &no_trace, false);
	init_fails(PER_VECTOR, &no_trace, false);
	init_fails(PER_VECTOR, &rec_ops, false);

	/* The valid modes over a dirty struct: clean state, no calls. */
	for (m = 0; m < NMODES; m++) {
		memset(&dev, 0x5A, sizeof(dev));
		fake_init(&dev, &f, modes[m], true);
		assert_quiet(&f);
		ck_assert_uint_eq(f.ntrace, 0);
		ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, POS, 4), NOID);
		ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, MASK, 4), 0);
		ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, STAT, 4), 0);
		ivshmem_flat_set_id(&dev, 1);
		ivshmem_flat_mmio_write(&dev, BELL, 0x00010001, 4);
		ck_assert_str_eq(f.notify, ""); /* not connected */
		st = stats_of(&dev);
		ck_assert_uint_eq(st.reads, 3);
		ck_assert_uint_eq(st.writes, 1);
		ck_assert_uint_eq(st.doorbells_dropped, 1);
		ck_assert_uint_eq(st.bad_accesses | st.doorbells | st.events |
				  st.events_dropped, 0);
		ck_assert_uint_eq(state_of(&dev).flags, modes[m]);
	}
}
END_TEST

/* ---- the trace hook ------------------------------------------------------ */

static void assert_trace(const struct ivshmem_flat_trace *t,
			 enum ivshmem_flat_trace_kind kind, uint64_t offset,
			 unsigned size, bool write, uint32_t value,
			 uint16_t peer, uint32_t vector, unsigned line,
			 bool level, int result)
{
	ck_assert_int_eq(t->kind, kind);
	ck_assert_uint_eq(t->offset, offset);
	ck_assert_uint_eq(t->size, size);
	ck_assert(t->write == write);
	ck_assert_uint_eq(t->value, value);
	ck_assert_uint_eq(t->peer, peer);
	ck_assert_uint_eq(t->vector, vector);
	ck_assert_uint_eq(t->line, line);
	ck_assert(t->level == level);
	ck_assert_int_eq(t->result, result);
}

/* Every record kind with every field: the named ones set, the rest 0. */
START_TEST(trace_records)
{
	struct ivshmem_flat dev;
	struct fake f;
	const struct ivshmem_flat_trace *t;

	fake_init(&dev, &f, LATCHED | PER_VECTOR, true);
	ivshmem_flat_set_id(&dev, 3);
	ivshmem_flat_set_connected(&dev, true);
	ck_assert_uint_eq(f.ntrace, 0);

	ivshmem_flat_mmio_write(&dev, MASK, 0x4, 4);
	t = only_trace(&f, IVSHMEM_FLAT_TRACE_WRITE);
	assert_trace(t, IVSHMEM_FLAT_TRACE_WRITE, MASK, 4, true, 4, 0, 0, 0,
		     false, 0);

	fake_clear(&f);
	ivshmem_flat_deliver(&dev, 2);
	ck_assert_uint_eq(f.ntrace, 2);
	assert_trace(&f.trace[0], IVSHMEM_FLAT_TRACE_EVENT, 0, 0, false, 0, 0,
		     2, 0, false, 0);
	assert_trace(&f.trace[1], IVSHMEM_FLAT_TRACE_IRQ, 0, 0, false, 0, 0,
		     0, 2, true, 0);

	fake_clear(&f);
	ivshmem_flat_deliver(&dev, 40);
	t = only_trace(&f, IVSHMEM_FLAT_TRACE_EVENT_DROPPED);
	assert_trace(t, IVSHMEM_FLAT_TRACE_EVENT_DROPPED, 0, 0, false, 0, 0,
		     40, 0, false, 0);

	/* The READ record carries the value read, then the line drops. */
	fake_clear(&f);
	ck_assert_uint_eq(ivshmem_flat_mmio_read(&dev, STAT, 4), 0x4);
	ck_assert_uint_eq(f.ntrace, 2);
	assert_trace(&f.trace[0], IVSHMEM_FLAT_TRACE_READ, STAT, 4, false, 4,
		     0, 0, 0, false, 0);
	assert_trace(&f.trace[1], IVSHMEM_FLAT_TRACE_IRQ, 0, 0, false, 0, 0,
		     0, 2, false, 0);

	fake_clear(&f);
	ivshmem_flat_mmio_write(&dev, BELL, 0x00050006, 4);
	ck_assert_uint_eq(f.ntrace, 2);
	assert_trace(&f.trace[1], IVSHMEM_FLAT_TRACE_DOORBELL, 0, 0, false, 0,
		     5, 6, 0, false, 0);
	f.notify_ret = -ERANGE;
	fake_clear(&f);
	ivshmem_flat_mmio_write(&dev, BELL, 0x00050007, 4);
	ck_assert_uint_eq(f.ntrace, 2);
	assert_trace(&f.trace[1], IVSHMEM_FLAT_TRACE_DOORBELL_DROPPED, 0, 0,
		     false, 0, 5, 7, 0, false, -ERANGE);

	fake_clear(&f);
	ivshmem_flat_mmio_write(&dev, 0x1000000000ull, 0x123456789ull, 2);
	t = only_trace(&f, IVSHMEM_FLAT_TRACE_BAD_ACCESS);
	assert_trace(t, IVSHMEM_FLAT_TRACE_BAD_ACCESS, 0x1000000000ull, 2,
		     true, 0x23456789, 0, 0, 0, false, 0);

	/* Default mode's pulse is two IRQ records around the event. */
	fake_init(&dev, &f, 0, true);
	ivshmem_flat_deliver(&dev, 9);
	ck_assert_uint_eq(f.ntrace, 3);
	assert_trace(&f.trace[0], IVSHMEM_FLAT_TRACE_EVENT, 0, 0, false, 0, 0,
		     9, 0, false, 0);
	assert_trace(&f.trace[1], IVSHMEM_FLAT_TRACE_IRQ, 0, 0, false, 0, 0,
		     0, 0, true, 0);
	assert_trace(&f.trace[2], IVSHMEM_FLAT_TRACE_IRQ, 0, 0, false, 0, 0,
		     0, 0, false, 0);
}
END_TEST

/* Without a trace hook every path runs (the table covers the register
 * paths; this one the rest) and the stats count as with one. */
START_TEST(no_trace_hook)
{
	struct ivshmem_flat a, b;
	struct ivshmem_flat_stats sa, sb;
	struct fake fa, fb;
	struct ivshmem_flat_state s;

	fake_init(&a, &fa, modes[_i], false);
	fake_init(&b, &fb, modes[_i], true);
	for (int k = 0; k < 2; k++) {
		struct ivshmem_flat *d = k ? &b : &a;

		ivshmem_flat_set_id(d, 1);
		ivshmem_flat_mmio_write(d, BELL, 0x00010001, 4);
		ivshmem_flat_set_connected(d, true);
		ivshmem_flat_mmio_write(d, BELL, 0x00010001, 4);
		(k ? &fb : &fa)->notify_ret = -ENOENT;
		ivshmem_flat_mmio_write(d, BELL, 0x00020001, 4);
		ivshmem_flat_mmio_write(d, MASK, 0xF, 4);
		ivshmem_flat_deliver(d, 3);
		ivshmem_flat_deliver(d, 300);
		ivshmem_flat_mmio_read(d, 3, 1);
		ivshmem_flat_mmio_write(d, UINT64_MAX, 1, 8);
		s = state_of(d);
		ck_assert_int_eq(ivshmem_flat_set_state(d, &s), 0);
		ivshmem_flat_reset(d);
	}
	ck_assert_uint_eq(fa.ntrace, 0);
	ck_assert_uint_gt(fb.ntrace, 0);
	ck_assert_str_eq(fa.irq, fb.irq);
	ck_assert_str_eq(fa.notify, fb.notify);
	ck_assert_str_eq(fa.notify, "1:1 2:1");
	ck_assert_str_eq(fa.errors, "");
	sa = stats_of(&a);
	sb = stats_of(&b);
	assert_stats_eq(&sa, &sb);
	ck_assert_uint_eq(sa.doorbells, 1);
	ck_assert_uint_eq(sa.doorbells_dropped, 2);
	ck_assert_uint_eq(sa.bad_accesses, 2);
	ck_assert_uint_eq(sa.events_dropped, modes[_i] ? 1 : 0);
}
END_TEST

/*
 * Under -fsanitize=undefined, stop at the first report: the checks are
 * built recoverable, so a shift by 32 in the core would otherwise print a
 * line and let the test pass. (Only used when the runtime is linked.)
 */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

int main(void)
{
	Suite *s = suite_create("flat");
	TCase *tc = tcase_with("core", 0, NULL);
	TCase *walk = tcase_with("walk", 0, NULL);

	/* Set here too so that a run by hand (Check's default is 4 s) has
	 * the time the IVPOSITION walk takes under ASan. */
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, register_table, 0, 2 * NMODES);
	tcase_add_loop_test(tc, ack_inside_set_irq, 0, 2);
	tcase_add_test(tc, ivposition);
	tcase_add_loop_test(tc, doorbell, 0, NMODES);
	tcase_add_loop_test(tc, bounds, 0, NMODES);
	tcase_add_loop_test(tc, deliver_walk, 0, NMODES);
	tcase_add_loop_test(tc, snapshot, 0, 2);
	tcase_add_loop_test(tc, reset, 0, NMODES);
	tcase_add_test(tc, init_args);
	tcase_add_test(tc, trace_records);
	tcase_add_loop_test(tc, no_trace_hook, 0, NMODES);
	suite_add_tcase(s, tc);

	/* The 2^32 walks (doorbells, invalid IDs): meson runs this case
	 * apart from the core's, and bounds the program (600 s); this bounds
	 * each walk, with room for ASan. */
	tcase_set_timeout(walk, 400);
	tcase_add_test(walk, doorbell_walk);
	tcase_add_test(walk, set_id_invalid_walk);
	suite_add_tcase(s, walk);
	return run_suite(s);
}
