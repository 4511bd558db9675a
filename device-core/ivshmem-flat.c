/*
 * ivshmem-flat register and doorbell core. Freestanding: no library calls,
 * no allocation (see ivshmem-flat.h).
 */
#include "ivshmem-flat.h"

#define KNOWN_FLAGS (IVSHMEM_FLAT_LATCHED | IVSHMEM_FLAT_IRQ_PER_VECTOR)

/* Trace records are built only when there is a hook, field by field: an
 * initializer may become a memset call, which a freestanding link lacks. */
static bool tracing(const struct ivshmem_flat *dev)
{
	return dev->priv_ops->trace != NULL;
}

static void trace_start(struct ivshmem_flat_trace *t,
			enum ivshmem_flat_trace_kind kind)
{
	t->kind = kind;
	t->offset = 0;
	t->size = 0;
	t->write = false;
	t->value = 0;
	t->peer = 0;
	t->vector = 0;
	t->line = 0;
	t->level = false;
	t->result = 0;
}

static void trace_end(struct ivshmem_flat *dev,
		      const struct ivshmem_flat_trace *t)
{
	dev->priv_ops->trace(dev->priv_opaque, t);
}

static void trace_access(struct ivshmem_flat *dev,
			 enum ivshmem_flat_trace_kind kind, uint64_t offset,
			 unsigned size, bool write, uint32_t value)
{
	struct ivshmem_flat_trace t;

	if (!tracing(dev))
		return;
	trace_start(&t, kind);
	t.offset = offset;
	t.size = size;
	t.write = write;
	t.value = value;
	trace_end(dev, &t);
}

static void trace_vector(struct ivshmem_flat *dev,
			 enum ivshmem_flat_trace_kind kind, uint16_t peer,
			 uint32_t vector, int result)
{
	struct ivshmem_flat_trace t;

	if (!tracing(dev))
		return;
	trace_start(&t, kind);
	t.peer = peer;
	t.vector = vector;
	t.result = result;
	trace_end(dev, &t);
}

static void irq(struct ivshmem_flat *dev, unsigned line, bool level)
{
	if (tracing(dev)) {
		struct ivshmem_flat_trace t;

		trace_start(&t, IVSHMEM_FLAT_TRACE_IRQ);
		t.line = line;
		t.level = level;
		trace_end(dev, &t);
	}
	dev->priv_ops->set_irq(dev->priv_opaque, line, level);
}

/* The level each line should have now, one bit per line. */
static uint32_t wanted_levels(const struct ivshmem_flat *dev)
{
	uint32_t pending = dev->priv_intrstatus & dev->priv_intrmask;

	if (dev->priv_flags & IVSHMEM_FLAT_IRQ_PER_VECTOR)
		return pending;
	return pending ? 1u : 0u;
}

/*
 * Drive the lines to the levels the registers ask for, one line per pass
 * and recomputed after each call: an emulator that takes the interrupt
 * synchronously may read INTRSTATUS from inside set_irq, and the lines
 * must follow what that changed rather than a level computed before it.
 */
static void update_irq(struct ivshmem_flat *dev)
{
	uint32_t diff;

	while ((diff = wanted_levels(dev) ^ dev->priv_levels) != 0) {
		unsigned line = 0;

		/* A plain loop: __builtin_ctz needs libgcc on some cores. */
		while (!(diff & 1u)) {
			diff >>= 1;
			line++;
		}
		dev->priv_levels ^= 1u << line;
		irq(dev, line, (dev->priv_levels >> line) & 1u);
	}
}

static void clear_stats(struct ivshmem_flat_stats *s)
{
	/* Field by field: a struct assignment may become a memset call,
	 * which a freestanding link does not have. */
	s->reads = 0;
	s->writes = 0;
	s->bad_accesses = 0;
	s->doorbells = 0;
	s->doorbells_dropped = 0;
	s->events = 0;
	s->events_dropped = 0;
}

int ivshmem_flat_init(struct ivshmem_flat *dev, uint32_t flags,
		      const struct ivshmem_flat_ops *ops, void *opaque)
{
	if (!dev || !ops || !ops->notify || !ops->set_irq ||
	    (flags & ~(uint32_t)KNOWN_FLAGS) ||
	    ((flags & IVSHMEM_FLAT_IRQ_PER_VECTOR) &&
	     !(flags & IVSHMEM_FLAT_LATCHED)))
		return IVSHMEM_FLAT_EINVAL;

	dev->priv_ops = ops;
	dev->priv_opaque = opaque;
	dev->priv_flags = flags;
	dev->priv_id = IVSHMEM_FLAT_NO_ID;
	dev->priv_connected = false;
	dev->priv_intrmask = 0;
	dev->priv_intrstatus = 0;
	dev->priv_levels = 0;
	clear_stats(&dev->priv_stats);
	return 0;
}

unsigned ivshmem_flat_irq_lines(const struct ivshmem_flat *dev)
{
	return (dev->priv_flags & IVSHMEM_FLAT_IRQ_PER_VECTOR) ?
		       IVSHMEM_FLAT_MAX_IRQ_LINES : 1u;
}

/* Whether an access hits a register: aligned, 32 bits, below 0x10. */
static bool is_register(uint64_t offset, unsigned size)
{
	return size == 4 && (offset & 3u) == 0 && offset <= IVSHMEM_FLAT_DOORBELL;
}

static void bad_access(struct ivshmem_flat *dev, uint64_t offset,
		       unsigned size, bool write, uint32_t value)
{
	dev->priv_stats.bad_accesses++;
	trace_access(dev, IVSHMEM_FLAT_TRACE_BAD_ACCESS, offset, size, write,
		     value);
}

uint32_t ivshmem_flat_mmio_read(struct ivshmem_flat *dev, uint64_t offset,
				unsigned size)
{
	bool latched = dev->priv_flags & IVSHMEM_FLAT_LATCHED;
	uint32_t value = 0;

	if (!is_register(offset, size)) {
		bad_access(dev, offset, size, false, 0);
		return 0;
	}
	dev->priv_stats.reads++;
	switch (offset) {
	case IVSHMEM_FLAT_INTRMASK:
		if (latched)
			value = dev->priv_intrmask;
		break;
	case IVSHMEM_FLAT_INTRSTATUS:
		if (latched) {
			value = dev->priv_intrstatus;
			dev->priv_intrstatus = 0;
		}
		break;
	case IVSHMEM_FLAT_IVPOSITION:
		value = dev->priv_id;
		break;
	default: /* DOORBELL is write-only */
		break;
	}
	trace_access(dev, IVSHMEM_FLAT_TRACE_READ, offset, size, false, value);
	if (latched && offset == IVSHMEM_FLAT_INTRSTATUS)
		update_irq(dev);
	return value;
}

static void doorbell(struct ivshmem_flat *dev, uint32_t value)
{
	uint16_t peer = (uint16_t)(value >> 16);
	uint16_t vector = (uint16_t)value;
	int r = IVSHMEM_FLAT_ENOTCONN;

	if (dev->priv_connected && dev->priv_id != IVSHMEM_FLAT_NO_ID)
		r = dev->priv_ops->notify(dev->priv_opaque, peer, vector);
	if (r < 0) {
		dev->priv_stats.doorbells_dropped++;
		trace_vector(dev, IVSHMEM_FLAT_TRACE_DOORBELL_DROPPED, peer,
			     vector, r);
	} else {
		dev->priv_stats.doorbells++;
		trace_vector(dev, IVSHMEM_FLAT_TRACE_DOORBELL, peer, vector,
			     0);
	}
}

void ivshmem_flat_mmio_write(struct ivshmem_flat *dev, uint64_t offset,
			     uint64_t value, unsigned size)
{
	bool latched = dev->priv_flags & IVSHMEM_FLAT_LATCHED;
	uint32_t v = (uint32_t)value;

	if (!is_register(offset, size)) {
		bad_access(dev, offset, size, true, v);
		return;
	}
	dev->priv_stats.writes++;
	trace_access(dev, IVSHMEM_FLAT_TRACE_WRITE, offset, size, true, v);
	switch (offset) {
	case IVSHMEM_FLAT_INTRMASK:
		if (latched) {
			dev->priv_intrmask = v;
			update_irq(dev);
		}
		break;
	case IVSHMEM_FLAT_INTRSTATUS:
		if (latched) {
			dev->priv_intrstatus = v;
			update_irq(dev);
		}
		break;
	case IVSHMEM_FLAT_DOORBELL:
		doorbell(dev, v);
		break;
	default: /* IVPOSITION is read-only */
		break;
	}
}

void ivshmem_flat_deliver(struct ivshmem_flat *dev, uint32_t vector)
{
	if (!(dev->priv_flags & IVSHMEM_FLAT_LATCHED)) {
		dev->priv_stats.events++;
		trace_vector(dev, IVSHMEM_FLAT_TRACE_EVENT, 0, vector, 0);
		/* QEMU's qemu_irq_pulse(): the line is low between events. */
		irq(dev, 0, true);
		irq(dev, 0, false);
		return;
	}
	if (vector >= IVSHMEM_FLAT_LATCHED_VECTORS) {
		dev->priv_stats.events_dropped++;
		trace_vector(dev, IVSHMEM_FLAT_TRACE_EVENT_DROPPED, 0, vector,
			     0);
		return;
	}
	dev->priv_stats.events++;
	trace_vector(dev, IVSHMEM_FLAT_TRACE_EVENT, 0, vector, 0);
	dev->priv_intrstatus |= 1u << vector;
	update_irq(dev);
}

int ivshmem_flat_set_id(struct ivshmem_flat *dev, uint32_t id)
{
	if (!dev || (id > 0xFFFFu && id != IVSHMEM_FLAT_NO_ID))
		return IVSHMEM_FLAT_EINVAL;
	dev->priv_id = id;
	return 0;
}

void ivshmem_flat_set_connected(struct ivshmem_flat *dev, bool connected)
{
	dev->priv_connected = connected;
}

void ivshmem_flat_reset(struct ivshmem_flat *dev)
{
	dev->priv_intrmask = 0;
	dev->priv_intrstatus = 0;
	update_irq(dev);
}

void ivshmem_flat_get_state(const struct ivshmem_flat *dev,
			    struct ivshmem_flat_state *state)
{
	state->version = IVSHMEM_FLAT_STATE_VERSION;
	state->size = (uint32_t)sizeof(*state);
	state->flags = dev->priv_flags;
	state->intrmask = dev->priv_intrmask;
	state->intrstatus = dev->priv_intrstatus;
}

int ivshmem_flat_set_state(struct ivshmem_flat *dev,
			   const struct ivshmem_flat_state *state)
{
	if (!dev || !state)
		return IVSHMEM_FLAT_EINVAL;
	if (state->version != IVSHMEM_FLAT_STATE_VERSION ||
	    state->size != sizeof(*state))
		return IVSHMEM_FLAT_EVERSION;
	if (state->flags != dev->priv_flags ||
	    (!(dev->priv_flags & IVSHMEM_FLAT_LATCHED) &&
	     (state->intrmask || state->intrstatus)))
		return IVSHMEM_FLAT_EMODE;
	dev->priv_intrmask = state->intrmask;
	dev->priv_intrstatus = state->intrstatus;
	update_irq(dev);
	return 0;
}

void ivshmem_flat_get_stats(const struct ivshmem_flat *dev,
			    struct ivshmem_flat_stats *stats)
{
	stats->reads = dev->priv_stats.reads;
	stats->writes = dev->priv_stats.writes;
	stats->bad_accesses = dev->priv_stats.bad_accesses;
	stats->doorbells = dev->priv_stats.doorbells;
	stats->doorbells_dropped = dev->priv_stats.doorbells_dropped;
	stats->events = dev->priv_stats.events;
	stats->events_dropped = dev->priv_stats.events_dropped;
}
