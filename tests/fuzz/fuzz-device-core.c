/* SPDX-License-Identifier: MIT */
/*
 * The ivshmem-flat core (device-core/ivshmem-flat.h) against a reference
 * model of its registers, IRQ lines and counters.
 *
 * Input: byte 0 picks the mode (bits 0-1: default, latched, latched with
 * a line per vector), whether set_irq acknowledges at once by reading
 * INTRSTATUS from inside the callback (bit 4; as an emulator running the
 * guest's handler synchronously does) and whether a trace hook is
 * registered (bit 5); then operations of 8 bytes: kind, then operands
 * (MMIO read or write of any offset and width, deliver, set_id,
 * set_connected, reset, set_state with any fields, get_state). After
 * every operation the returned values, the IRQ lines as set_irq drove
 * them, the state and the stats must be the model's, and each trace
 * record must report what happened, its other fields 0, one per counted
 * access, doorbell and event and one before each set_irq; any divergence
 * aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivshmem-flat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct model {
	uint32_t flags;
	uint32_t id;
	bool connected;
	uint32_t mask, status;
	struct ivshmem_flat_stats stats;
	/* What notify answers for the next doorbell. */
	int notify_result;
};

struct rig {
	struct ivshmem_flat dev;
	struct model m;
	bool ack_in_irq;
	bool in_irq;
	uint32_t lines;          /* as set_irq drove them */
	unsigned pulses;         /* default mode: high-then-low pairs */
	bool pulse_high;
	uint32_t last_peer, last_vector;
	unsigned notifies;
	unsigned irq_calls;
	/* With a trace hook: records per kind, the first access record of
	 * the current operation, the last doorbell or event record, and
	 * whether an IRQ record waits for its set_irq call. */
	bool tracing;
	uint64_t traced[IVSHMEM_FLAT_TRACE_IRQ + 1];
	bool have_access;
	struct ivshmem_flat_trace access, vector_rec;
	bool irq_traced;
	unsigned irq_line;
	bool irq_level;
};

static struct rig *rig_of(void *opaque)
{
	return opaque;
}

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
		abort(); } while (0)

static bool latched(const struct model *m)
{
	return m->flags & IVSHMEM_FLAT_LATCHED;
}

static uint32_t model_levels(const struct model *m)
{
	uint32_t p = m->status & m->mask;

	if (!latched(m))
		return 0;
	if (m->flags & IVSHMEM_FLAT_IRQ_PER_VECTOR)
		return p;
	return p ? 1u : 0u;
}

static int notify(void *opaque, uint16_t peer, uint16_t vector)
{
	struct rig *r = rig_of(opaque);

	if (!r->m.connected || r->m.id == IVSHMEM_FLAT_NO_ID)
		FAIL("notify while not connected or without an ID");
	r->last_peer = peer;
	r->last_vector = vector;
	r->notifies++;
	return r->m.notify_result;
}

static void set_irq(void *opaque, unsigned line, bool level)
{
	struct rig *r = rig_of(opaque);

	if (line >= ivshmem_flat_irq_lines(&r->dev))
		FAIL("set_irq line %u of %u", line,
		     ivshmem_flat_irq_lines(&r->dev));
	r->irq_calls++;
	if (r->tracing) {
		if (!r->irq_traced || r->irq_line != line ||
		    r->irq_level != level)
			FAIL("set_irq(%u, %d) without its trace record", line,
			     level);
		r->irq_traced = false;
	}
	if (!latched(&r->m)) {
		/* A pulse: high, then low. */
		if (level == r->pulse_high)
			FAIL("pulse out of order");
		r->pulse_high = level;
		if (!level)
			r->pulses++;
		return;
	}
	if (((r->lines >> line) & 1u) == (uint32_t)level)
		FAIL("set_irq(%u, %d) without a change", line, level);
	r->lines ^= 1u << line;
	if (level && r->ack_in_irq && !r->in_irq) {
		uint32_t v;

		r->in_irq = true;
		v = ivshmem_flat_mmio_read(&r->dev, IVSHMEM_FLAT_INTRSTATUS, 4);
		r->in_irq = false;
		if (v != r->m.status)
			FAIL("INTRSTATUS read in set_irq: %#x, model %#x", v,
			     r->m.status);
		r->m.status = 0;
		r->m.stats.reads++;
	}
}

/* Every record: a known kind, the fields of that kind, the others 0
 * (ivshmem-flat.h). */
static void trace(void *opaque, const struct ivshmem_flat_trace *t)
{
	struct rig *r = rig_of(opaque);
	bool access = t->kind == IVSHMEM_FLAT_TRACE_READ ||
		      t->kind == IVSHMEM_FLAT_TRACE_WRITE ||
		      t->kind == IVSHMEM_FLAT_TRACE_BAD_ACCESS;

	if (!r->tracing)
		FAIL("a trace record without a trace hook");
	if ((unsigned)t->kind > IVSHMEM_FLAT_TRACE_IRQ)
		FAIL("trace record of kind %d", (int)t->kind);
	if (r->irq_traced)
		FAIL("a trace record between an IRQ record and its set_irq");
	if (access) {
		if (t->peer || t->vector || t->line || t->level || t->result)
			FAIL("access record with fields of another kind");
		if (t->kind != IVSHMEM_FLAT_TRACE_BAD_ACCESS &&
		    t->write != (t->kind == IVSHMEM_FLAT_TRACE_WRITE))
			FAIL("access record with write %d", t->write);
		if (!r->have_access) {
			r->access = *t;
			r->have_access = true;
		}
	} else if (t->kind == IVSHMEM_FLAT_TRACE_IRQ) {
		if (t->offset || t->size || t->write || t->value || t->peer ||
		    t->vector || t->result)
			FAIL("IRQ record with fields of another kind");
		r->irq_traced = true;
		r->irq_line = t->line;
		r->irq_level = t->level;
	} else {
		if (t->offset || t->size || t->write || t->value || t->line ||
		    t->level)
			FAIL("doorbell or event record with fields of another kind");
		if (t->kind != IVSHMEM_FLAT_TRACE_DOORBELL_DROPPED && t->result)
			FAIL("record of kind %d with result %d", (int)t->kind,
			     t->result);
		if ((t->kind == IVSHMEM_FLAT_TRACE_EVENT ||
		     t->kind == IVSHMEM_FLAT_TRACE_EVENT_DROPPED) && t->peer)
			FAIL("event record with peer %u", t->peer);
		r->vector_rec = *t;
	}
	r->traced[t->kind]++;
}

static const struct ivshmem_flat_ops ops = {
	.notify = notify,
	.set_irq = set_irq,
};

static const struct ivshmem_flat_ops ops_traced = {
	.notify = notify,
	.set_irq = set_irq,
	.trace = trace,
};

/* The trace of an operation's access: its kind and what it reported. */
static void expect_access(struct rig *r, enum ivshmem_flat_trace_kind kind,
			  uint64_t offset, unsigned width, bool write,
			  uint32_t value)
{
	const struct ivshmem_flat_trace *t = &r->access;

	if (!r->tracing)
		return;
	if (!r->have_access || t->kind != kind || t->offset != offset ||
	    t->size != width || t->write != write || t->value != value)
		FAIL("access trace: kind %d/%d offset %#llx/%#llx size %u/%u "
		     "write %d/%d value %#x/%#x", r->have_access ?
		     (int)t->kind : -1, (int)kind,
		     (unsigned long long)t->offset, (unsigned long long)offset,
		     t->size, width, t->write, write, t->value, value);
}

/* The trace of an operation's doorbell or event. */
static void expect_vector(struct rig *r, enum ivshmem_flat_trace_kind kind,
			  uint32_t peer, uint32_t vector, int result)
{
	const struct ivshmem_flat_trace *t = &r->vector_rec;

	if (!r->tracing)
		return;
	if (t->kind != kind || t->peer != peer || t->vector != vector ||
	    t->result != result)
		FAIL("trace: kind %d/%d peer %u/%u vector %u/%u result %d/%d",
		     (int)t->kind, (int)kind, t->peer, peer, t->vector, vector,
		     t->result, result);
}

static void compare(struct rig *r)
{
	struct ivshmem_flat_stats s;
	struct ivshmem_flat_state st;

	ivshmem_flat_get_stats(&r->dev, &s);
	if (memcmp(&s, &r->m.stats, sizeof(s)))
		FAIL("stats: reads %llu/%llu writes %llu/%llu bad %llu/%llu "
		     "doorbells %llu/%llu dropped %llu/%llu events %llu/%llu "
		     "events dropped %llu/%llu",
		     (unsigned long long)s.reads,
		     (unsigned long long)r->m.stats.reads,
		     (unsigned long long)s.writes,
		     (unsigned long long)r->m.stats.writes,
		     (unsigned long long)s.bad_accesses,
		     (unsigned long long)r->m.stats.bad_accesses,
		     (unsigned long long)s.doorbells,
		     (unsigned long long)r->m.stats.doorbells,
		     (unsigned long long)s.doorbells_dropped,
		     (unsigned long long)r->m.stats.doorbells_dropped,
		     (unsigned long long)s.events,
		     (unsigned long long)r->m.stats.events,
		     (unsigned long long)s.events_dropped,
		     (unsigned long long)r->m.stats.events_dropped);
	ivshmem_flat_get_state(&r->dev, &st);
	if (st.version != IVSHMEM_FLAT_STATE_VERSION ||
	    st.size != sizeof(st) || st.flags != r->m.flags ||
	    st.intrmask != r->m.mask || st.intrstatus != r->m.status)
		FAIL("state: mask %#x/%#x status %#x/%#x", st.intrmask,
		     r->m.mask, st.intrstatus, r->m.status);
	if (r->lines != model_levels(&r->m))
		FAIL("lines %#x, model %#x", r->lines, model_levels(&r->m));
	if (r->pulse_high)
		FAIL("a pulse left the line high");
	if (r->tracing &&
	    (r->traced[IVSHMEM_FLAT_TRACE_READ] != s.reads ||
	     r->traced[IVSHMEM_FLAT_TRACE_WRITE] != s.writes ||
	     r->traced[IVSHMEM_FLAT_TRACE_BAD_ACCESS] != s.bad_accesses ||
	     r->traced[IVSHMEM_FLAT_TRACE_DOORBELL] != s.doorbells ||
	     r->traced[IVSHMEM_FLAT_TRACE_DOORBELL_DROPPED] !=
	     s.doorbells_dropped ||
	     r->traced[IVSHMEM_FLAT_TRACE_EVENT] != s.events ||
	     r->traced[IVSHMEM_FLAT_TRACE_EVENT_DROPPED] != s.events_dropped ||
	     r->traced[IVSHMEM_FLAT_TRACE_IRQ] != r->irq_calls))
		FAIL("trace records do not add up to the stats");
	if (r->irq_traced)
		FAIL("an IRQ record without its set_irq call");
}

static uint32_t u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void op(struct rig *r, const uint8_t *p)
{
	struct model *m = &r->m;
	uint32_t v = u32(p + 4);
	/* Offsets: mostly in the block, some far outside it. */
	uint64_t offset = (p[1] & 0x80) ? ((uint64_t)p[2] << 56 | p[3]) :
					  (uint64_t)(p[2] & 0x3f) | (p[1] & 0x40 ? 0x100 : 0);
	static const unsigned widths[] = { 4, 4, 4, 4, 1, 2, 8, 0, 3, 16 };
	unsigned width = widths[p[1] % 10];
	bool reg = width == 4 && (offset & 3) == 0 && offset <= 0x0C;

	r->have_access = false;
	r->vector_rec.kind = IVSHMEM_FLAT_TRACE_IRQ; /* none yet */
	switch (p[0] % 9) {
	case 0: { /* read */
		uint32_t want = 0, got;
		unsigned pulses = r->pulses;

		if (!reg) {
			m->stats.bad_accesses++;
		} else {
			m->stats.reads++;
			if (offset == IVSHMEM_FLAT_INTRMASK && latched(m))
				want = m->mask;
			else if (offset == IVSHMEM_FLAT_INTRSTATUS && latched(m)) {
				want = m->status;
				m->status = 0;
			} else if (offset == IVSHMEM_FLAT_IVPOSITION)
				want = m->id;
		}
		got = ivshmem_flat_mmio_read(&r->dev, offset, width);
		if (got != want)
			FAIL("read %#llx/%u: %#x, model %#x",
			     (unsigned long long)offset, width, got, want);
		if (r->pulses != pulses)
			FAIL("a read pulsed");
		expect_access(r, reg ? IVSHMEM_FLAT_TRACE_READ :
			      IVSHMEM_FLAT_TRACE_BAD_ACCESS, offset, width,
			      false, got);
		break;
	}
	case 1: { /* write */
		uint64_t value = (uint64_t)p[3] << 32 | v;
		unsigned notifies = r->notifies;
		bool rings = false;

		if (!reg) {
			m->stats.bad_accesses++;
		} else {
			m->stats.writes++;
			if (offset == IVSHMEM_FLAT_INTRMASK && latched(m))
				m->mask = v;
			else if (offset == IVSHMEM_FLAT_INTRSTATUS && latched(m))
				m->status = v;
			else if (offset == IVSHMEM_FLAT_DOORBELL) {
				rings = m->connected &&
					m->id != IVSHMEM_FLAT_NO_ID;
				m->notify_result = (p[3] & 1) ? -2 : 0;
				if (rings && m->notify_result == 0)
					m->stats.doorbells++;
				else
					m->stats.doorbells_dropped++;
			}
		}
		ivshmem_flat_mmio_write(&r->dev, offset, value, width);
		if (r->notifies != notifies + (rings ? 1u : 0u))
			FAIL("doorbell: %u notify calls, model %u",
			     r->notifies - notifies, rings ? 1u : 0u);
		if (rings && (r->last_peer != v >> 16 ||
			      r->last_vector != (v & 0xffff)))
			FAIL("doorbell rang %u/%u for %#x", r->last_peer,
			     r->last_vector, v);
		expect_access(r, reg ? IVSHMEM_FLAT_TRACE_WRITE :
			      IVSHMEM_FLAT_TRACE_BAD_ACCESS, offset, width,
			      true, v);
		if (reg && offset == IVSHMEM_FLAT_DOORBELL)
			expect_vector(r, rings && m->notify_result == 0 ?
				      IVSHMEM_FLAT_TRACE_DOORBELL :
				      IVSHMEM_FLAT_TRACE_DOORBELL_DROPPED,
				      v >> 16, v & 0xffff,
				      !rings ? IVSHMEM_FLAT_ENOTCONN :
				      m->notify_result);
		break;
	}
	case 2:
	case 3: { /* deliver, mostly low vectors */
		uint32_t vector = p[0] % 9 == 2 ? p[1] % 40u : v;
		unsigned pulses = r->pulses;

		if (!latched(m)) {
			m->stats.events++;
		} else if (vector >= IVSHMEM_FLAT_LATCHED_VECTORS) {
			m->stats.events_dropped++;
		} else {
			m->stats.events++;
			m->status |= 1u << vector;
		}
		ivshmem_flat_deliver(&r->dev, vector);
		if (r->pulses != pulses + (latched(m) ? 0u : 1u))
			FAIL("deliver: %u pulses", r->pulses - pulses);
		expect_vector(r, latched(m) &&
			      vector >= IVSHMEM_FLAT_LATCHED_VECTORS ?
			      IVSHMEM_FLAT_TRACE_EVENT_DROPPED :
			      IVSHMEM_FLAT_TRACE_EVENT, 0, vector, 0);
		break;
	}
	case 4: { /* set_id */
		uint32_t id = (p[1] & 1) ? v : (p[1] & 2) ? IVSHMEM_FLAT_NO_ID :
			      (v & 0xffff);
		bool ok = id <= 0xffff || id == IVSHMEM_FLAT_NO_ID;
		int got = ivshmem_flat_set_id(&r->dev, id);

		if (got != (ok ? 0 : IVSHMEM_FLAT_EINVAL))
			FAIL("set_id(%#x): %d", id, got);
		if (ok)
			m->id = id;
		break;
	}
	case 5:
		m->connected = p[1] & 1;
		ivshmem_flat_set_connected(&r->dev, m->connected);
		break;
	case 6:
		m->mask = m->status = 0;
		ivshmem_flat_reset(&r->dev);
		break;
	case 7: { /* set_state, with mostly sane headers */
		struct ivshmem_flat_state st = {
			.version = (p[1] & 1) ? p[2] : IVSHMEM_FLAT_STATE_VERSION,
			.size = (p[1] & 2) ? p[3] : sizeof(st),
			.flags = (p[1] & 4) ? (uint32_t)(p[1] >> 3) & 3u :
					      m->flags,
			.intrmask = (p[1] & 0x20) ? v : 0,
			.intrstatus = (p[1] & 0x40) ? v * 0x9e3779b9u : 0,
		};
		int want = 0, got;

		if (st.version != IVSHMEM_FLAT_STATE_VERSION ||
		    st.size != sizeof(st))
			want = IVSHMEM_FLAT_EVERSION;
		else if (st.flags != m->flags ||
			 (!latched(m) && (st.intrmask || st.intrstatus)))
			want = IVSHMEM_FLAT_EMODE;
		if (!want) {
			m->mask = st.intrmask;
			m->status = st.intrstatus;
		}
		got = ivshmem_flat_set_state(&r->dev, &st);
		if (got != want)
			FAIL("set_state: %d, model %d", got, want);
		break;
	}
	default: { /* a round trip through get_state and set_state */
		struct ivshmem_flat_state st;

		ivshmem_flat_get_state(&r->dev, &st);
		if (ivshmem_flat_set_state(&r->dev, &st) != 0)
			FAIL("set_state of get_state refused");
		break;
	}
	}
	compare(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t modes[] = {
		0, IVSHMEM_FLAT_LATCHED,
		IVSHMEM_FLAT_LATCHED | IVSHMEM_FLAT_IRQ_PER_VECTOR,
	};
	const struct ivshmem_flat_ops *o;
	struct rig r;

	if (size < 1)
		return 0;
	memset(&r, 0, sizeof(r));
	r.m.flags = modes[(data[0] & 3) % 3];
	r.m.id = IVSHMEM_FLAT_NO_ID;
	r.ack_in_irq = data[0] & 0x10;
	r.tracing = data[0] & 0x20;
	o = r.tracing ? &ops_traced : &ops;
	/* Flags the core must refuse, and a refused init leaves the device
	 * untouched. */
	if (ivshmem_flat_init(&r.dev, IVSHMEM_FLAT_IRQ_PER_VECTOR, o, &r) !=
	    IVSHMEM_FLAT_EINVAL || ivshmem_flat_init(&r.dev, 4, o, &r) !=
	    IVSHMEM_FLAT_EINVAL)
		abort();
	if (ivshmem_flat_init(&r.dev, r.m.flags, o, &r) != 0)
		abort();
	compare(&r);
	for (size_t i = 1; i + 8 <= size; i += 8)
		op(&r, data + i);
	return 0;
}
