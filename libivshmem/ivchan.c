/* SPDX-License-Identifier: MIT */
/*
 * The channel core (ivchan.h): layouts, ends and the two rings of each
 * channel, in the format of ivshmem-channel(7). Freestanding: no C
 * library, no allocation, no 64-bit multiplication or any division (a
 * Cortex-M0 would need libgcc for them), nothing but aligned 32-bit loads
 * and stores and barriers on the shared memory.
 *
 * Every word written by the other side is loaded once into a local,
 * checked, and only the local is used. The own indices live in the
 * struct; the shared copies are only ever stored.
 */
#include "ivchan.h"

#if !defined(__GNUC__)
#error "ivchan.c needs GCC or Clang (__atomic_thread_fence)"
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LE32(x) __builtin_bswap32(x)
#else
#define LE32(x) (x)
#endif

/* The three barriers of ivshmem-channel(7). A platform whose full
 * barrier needs more than the CPU's (an emulator that does not turn the
 * emulated one into the host's, for one) builds with
 * IVCHAN_FULL_BARRIER_HOOK defined and provides ivchan_full_barrier(). */
#define barrier_acquire() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define barrier_release() __atomic_thread_fence(__ATOMIC_RELEASE)
#ifdef IVCHAN_FULL_BARRIER_HOOK
#define barrier_full() ivchan_full_barrier()
#else
#define barrier_full() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

static inline uint32_t ld(const volatile uint32_t *p)
{
	return LE32(*p);
}

static inline void st(volatile uint32_t *p, uint32_t v)
{
	*p = LE32(v);
}

static inline volatile uint32_t *word_at(const volatile void *base,
					 uint32_t offset)
{
	return (volatile uint32_t *)((volatile uint8_t *)base + offset);
}

static inline int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1u));
}

static inline uint32_t round_up(uint32_t v, uint32_t pow2)
{
	return (v + pow2 - 1u) & ~(pow2 - 1u);
}

/* Record bytes of a payload of len bytes (len <= IVCHAN_MAX_RING / 2). */
static inline uint32_t record_size(uint32_t len)
{
	return IVCHAN_RECORD_HEADER + ((len + 7u) & ~7u);
}

static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* 0, or why name is not a channel name. */
static int name_check(const char *name, uint32_t *len_out)
{
	uint32_t n = 0;

	if (!name)
		return IVCHAN_EINVAL;
	while (name[n]) {
		if (n == IVCHAN_NAME_MAX)
			return IVCHAN_ENAMETOOLONG;
		if (!name_char_ok(name[n]))
			return IVCHAN_EINVAL;
		n++;
	}
	if (!n)
		return IVCHAN_EINVAL;
	*len_out = n;
	return 0;
}

static int names_equal(const char *a, const char *b)
{
	uint32_t i;

	for (i = 0; i <= IVCHAN_NAME_MAX; i++) {
		if (a[i] != b[i])
			return 0;
		if (!a[i])
			return 1;
	}
	return 0;
}

static int line_ok(uint32_t line)
{
	return is_pow2(line) && line >= IVCHAN_MIN_LINE &&
	       line <= IVCHAN_MAX_LINE;
}

static int ring_ok(uint32_t size, uint32_t line)
{
	return is_pow2(size) && size >= IVCHAN_MIN_RING && size >= line &&
	       size <= IVCHAN_MAX_RING;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* The table's offset, and the first byte after it. */
static uint32_t table_offset(uint32_t line)
{
	return line > IVCHAN_HEADER_SIZE ? line : IVCHAN_HEADER_SIZE;
}

static uint32_t table_end(uint32_t line, uint32_t count)
{
	return table_offset(line) + count * IVCHAN_ENTRY_SIZE;
}

/* ---- layouts ------------------------------------------------------------- */

/* Checks the specs; *size_out is the layout's size. The total is summed in
 * 64 bits (additions only) and must fit in 32. */
int ivchan_layout_size(const struct ivchan_spec *specs, unsigned count,
		       uint32_t line, uint32_t *size_out)
{
	uint64_t total;
	unsigned i, j;

	if (!specs || !size_out || !line_ok(line) || !count ||
	    count > IVCHAN_MAX_CHANNELS)
		return IVCHAN_EINVAL;
	total = round_up(table_end(line, count), line);
	for (i = 0; i < count; i++) {
		const struct ivchan_spec *s = &specs[i];
		uint32_t len;
		int r = name_check(s->name, &len);

		if (r)
			return r;
		for (j = 0; j < i; j++) {
			if (names_equal(specs[j].name, s->name))
				return IVCHAN_EEXIST;
		}
		if (!ring_ok(s->ring_size[0], line) ||
		    !ring_ok(s->ring_size[1], line))
			return IVCHAN_EINVAL;
		if (s->max_msg > IVCHAN_MAX_MSG(min_u32(s->ring_size[0],
							 s->ring_size[1])))
			return IVCHAN_EINVAL;
		total += (uint64_t)(IVCHAN_CONTROL_LINES * line);
		total += s->ring_size[0];
		total += s->ring_size[1];
		if (total > 0xFFFFFFFFu)
			return IVCHAN_ENOSPC;
	}
	*size_out = (uint32_t)total;
	return 0;
}

static void zero_words(volatile uint32_t *p, uint32_t bytes)
{
	uint32_t i;

	for (i = 0; i < bytes / 4u; i++)
		p[i] = 0;
}

/* Byte stores through a volatile pointer: a plain loop or a compound
 * literal may become a memset call, which freestanding builds lack. */
static void zero_struct(void *p, size_t n)
{
	volatile uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = 0;
}

/* The name's bytes as little-endian words: only 32-bit stores. */
static void name_store(volatile uint32_t *w, const char *name, uint32_t len)
{
	uint32_t i, word = 0;

	for (i = 0; i < 32u; i++) {
		uint32_t c = i < len ? (uint8_t)name[i] : 0u;

		word |= c << (8u * (i & 3u));
		if ((i & 3u) == 3u) {
			st(&w[i >> 2], word);
			word = 0;
		}
	}
}

int ivchan_layout_init(void *base, uint32_t size,
		       const struct ivchan_spec *specs, unsigned count,
		       uint32_t line, uint32_t nonce)
{
	volatile uint32_t *hdr = base;
	uint32_t need, off, i;
	int r;

	if (!base || ((uintptr_t)base & 7u))
		return IVCHAN_EINVAL;
	r = ivchan_layout_size(specs, count, line, &need);
	if (r)
		return r;
	if (size < need)
		return IVCHAN_ENOSPC;

	/* Nobody attaches to a half-written layout: the magic goes first
	 * and comes back last. */
	st(&hdr[IVCHAN_HDR_MAGIC], 0);
	barrier_full();
	zero_words(hdr, round_up(table_end(line, count), line));
	off = round_up(table_end(line, count), line);
	for (i = 0; i < count; i++) {
		const struct ivchan_spec *s = &specs[i];
		volatile uint32_t *ent = word_at(base, table_offset(line) +
						 i * IVCHAN_ENTRY_SIZE);
		uint32_t len = 0, e;

		name_check(s->name, &len);
		name_store(ent, s->name, len);
		st(&ent[IVCHAN_ENT_OFFSET], off);
		st(&ent[IVCHAN_ENT_RING0], s->ring_size[0]);
		st(&ent[IVCHAN_ENT_RING1], s->ring_size[1]);
		st(&ent[IVCHAN_ENT_MAX_MSG], s->max_msg ? s->max_msg :
		   IVCHAN_MAX_MSG(min_u32(s->ring_size[0], s->ring_size[1])));
		zero_words(word_at(base, off), IVCHAN_CONTROL_LINES * line);
		for (e = 0; e < 2u; e++)
			st(&word_at(base, off + e * IVCHAN_LINES_PER_END *
				    line)[IVCHAN_ID_PEER], IVCHAN_NO_PEER);
		off += IVCHAN_CONTROL_LINES * line + s->ring_size[0] +
		       s->ring_size[1];
	}
	st(&hdr[IVCHAN_HDR_VERSION], IVCHAN_VERSION);
	st(&hdr[IVCHAN_HDR_FEATURES], IVCHAN_FEATURES);
	st(&hdr[IVCHAN_HDR_SIZE], need);
	st(&hdr[IVCHAN_HDR_LINE], line);
	st(&hdr[IVCHAN_HDR_COUNT], count);
	st(&hdr[IVCHAN_HDR_NONCE], nonce);
	barrier_release();
	st(&hdr[IVCHAN_HDR_MAGIC], IVCHAN_MAGIC);
	barrier_full();
	return 0;
}

int ivchan_layout_read(const void *base, uint32_t avail,
		       struct ivchan_layout *out)
{
	const volatile uint32_t *hdr = base;
	uint32_t magic, version, features, size, line, count;

	if (!base || !out || ((uintptr_t)base & 7u))
		return IVCHAN_EINVAL;
	if (avail < IVCHAN_HEADER_SIZE)
		return IVCHAN_EBADMSG;
	magic = ld(&hdr[IVCHAN_HDR_MAGIC]);
	if (magic != IVCHAN_MAGIC)
		return IVCHAN_EBADMSG;
	barrier_acquire();
	version = ld(&hdr[IVCHAN_HDR_VERSION]);
	features = ld(&hdr[IVCHAN_HDR_FEATURES]);
	size = ld(&hdr[IVCHAN_HDR_SIZE]);
	line = ld(&hdr[IVCHAN_HDR_LINE]);
	count = ld(&hdr[IVCHAN_HDR_COUNT]);
	if (version != IVCHAN_VERSION || (features & ~IVCHAN_FEATURES))
		return IVCHAN_EPROTONOSUPPORT;
	if (!line_ok(line) || !count || count > IVCHAN_MAX_CHANNELS ||
	    size > avail || size < table_end(line, count))
		return IVCHAN_EBADMSG;
	out->size = size;
	out->line = line;
	out->count = count;
	out->nonce = ld(&hdr[IVCHAN_HDR_NONCE]);
	out->features = features;
	return 0;
}

int ivchan_layout_entry(const void *base, const struct ivchan_layout *lay,
			unsigned index, struct ivchan_info *out)
{
	const volatile uint32_t *ent;
	uint32_t w[IVCHAN_ENTRY_SIZE / 4u], i, len = 0, smaller;
	uint64_t end;
	int r;

	if (!base || !lay || !out || index >= lay->count)
		return IVCHAN_EINVAL;
	ent = word_at(base, table_offset(lay->line) +
		      index * IVCHAN_ENTRY_SIZE);
	for (i = 0; i < IVCHAN_ENTRY_SIZE / 4u; i++)
		w[i] = ld(&ent[i]);
	for (i = 0; i < 32u; i++)
		out->name[i] = (char)(w[i >> 2] >> (8u * (i & 3u)));
	if (out->name[IVCHAN_NAME_MAX] != '\0') {
		out->name[0] = '\0';
		return IVCHAN_EBADMSG;
	}
	r = name_check(out->name, &len);
	for (i = len; i < 32u; i++)
		out->name[i] = '\0';
	if (r)
		return IVCHAN_EBADMSG;
	out->index = index;
	out->offset = w[IVCHAN_ENT_OFFSET];
	out->ring_size[0] = w[IVCHAN_ENT_RING0];
	out->ring_size[1] = w[IVCHAN_ENT_RING1];
	out->max_msg = w[IVCHAN_ENT_MAX_MSG];
	if (!ring_ok(out->ring_size[0], lay->line) ||
	    !ring_ok(out->ring_size[1], lay->line))
		return IVCHAN_EBADMSG;
	smaller = min_u32(out->ring_size[0], out->ring_size[1]);
	if (out->max_msg > IVCHAN_MAX_MSG(smaller))
		return IVCHAN_EBADMSG;
	if ((out->offset & (lay->line - 1u)) ||
	    out->offset < table_end(lay->line, lay->count))
		return IVCHAN_EBADMSG;
	end = (uint64_t)out->offset + IVCHAN_CONTROL_LINES * lay->line +
	      out->ring_size[0] + out->ring_size[1];
	if (end > lay->size)
		return IVCHAN_EBADMSG;
	return 0;
}

int ivchan_layout_find(const void *base, const struct ivchan_layout *lay,
		       const char *name, struct ivchan_info *out)
{
	uint32_t i, len;

	if (!base || !lay || !out || name_check(name, &len))
		return IVCHAN_EINVAL;
	for (i = 0; i < lay->count; i++) {
		if (ivchan_layout_entry(base, lay, i, out) == 0 &&
		    names_equal(out->name, name))
			return 0;
	}
	return IVCHAN_ENOENT;
}

/* ---- ends ---------------------------------------------------------------- */

static int broken(struct ivchan *ch, enum ivchan_broken_reason why)
{
	ch->error = IVCHAN_EBROKEN;
	ch->broken = why;
	return IVCHAN_EBROKEN;
}

/* Are head and tail at most a ring apart, both multiples of 8? */
static int indices_ok(uint32_t head, uint32_t tail, uint32_t size)
{
	return (uint32_t)(head - tail) <= size && !((head | tail) & 7u);
}

/*
 * Check the record at @p tail of a ring of @p size bytes whose head is
 * @p head: *len is its length word (IVCHAN_PAD for a padding record, when
 * @p pad_ok), *rec its bytes. IVCHAN_OK, or the check it breaks: a pad
 * runs to the ring's end, is never at its start and never last; a message
 * is at most max_msg and lies within the ring and before the head.
 */
static enum ivchan_broken_reason record_at(const volatile uint8_t *data,
					   uint32_t size, uint32_t max_msg,
					   uint32_t tail, uint32_t head,
					   int pad_ok, uint32_t *len,
					   uint32_t *rec)
{
	uint32_t avail = head - tail, pos = tail & (size - 1u);
	uint32_t n = ld(word_at(data, pos));

	*len = n;
	if (n == IVCHAN_PAD && pad_ok) {
		*rec = size - pos;
		return !pos || *rec >= avail ? IVCHAN_BROKEN_PAD : IVCHAN_OK;
	}
	if (n > max_msg)
		return IVCHAN_BROKEN_LENGTH;
	*rec = record_size(n);
	if (*rec > size - pos || *rec > avail)
		return IVCHAN_BROKEN_LENGTH;
	return IVCHAN_OK;
}

/*
 * Walk the records in [tail, head) of a ring of @p size bytes, checking
 * each, and count the messages. -1 if one breaks the format.
 */
static int32_t count_records(const volatile uint8_t *data, uint32_t size,
			     uint32_t max_msg, uint32_t tail, uint32_t head)
{
	int32_t n = 0;

	while (tail != head) {
		uint32_t len, rec;

		if (record_at(data, size, max_msg, tail, head, 1, &len, &rec))
			return -1;
		if (len != IVCHAN_PAD)
			n++;
		tail += rec;
	}
	return n;
}

int ivchan_attach(struct ivchan *ch, void *base,
		  const struct ivchan_layout *lay,
		  const struct ivchan_info *info, unsigned end,
		  uint32_t peer, uint32_t vector, unsigned flags,
		  uint32_t *lost)
{
	volatile uint8_t *blk;
	volatile uint32_t *id[2], *prod[2], *cons[2], *wait[2], *count[2];
	volatile uint8_t *data[2];
	uint32_t line, e, head, tail, rhead, rtail, epoch, discarded = 0;

	if (!ch || !base || !lay || !info || end > 1u ||
	    (flags & ~(unsigned)IVCHAN_ATTACH_RESET))
		return IVCHAN_EINVAL;
	line = lay->line;
	blk = (volatile uint8_t *)base + info->offset;
	for (e = 0; e < 2u; e++) {
		volatile uint8_t *l = blk + e * IVCHAN_LINES_PER_END * line;

		id[e] = word_at(l, IVCHAN_LINE_ID * line);
		prod[e] = word_at(l, IVCHAN_LINE_PROD * line);
		cons[e] = word_at(l, IVCHAN_LINE_CONS * line);
		wait[e] = word_at(l, IVCHAN_LINE_WAIT * line);
		count[e] = word_at(l, IVCHAN_LINE_COUNT * line);
	}
	data[0] = blk + IVCHAN_CONTROL_LINES * line;
	data[1] = data[0] + info->ring_size[0];

	/* Ring `end` carries this end's messages: its head is ours, its
	 * tail the other end's; the other ring the other way round. */
	head = ld(&prod[end][IVCHAN_PROD_HEAD]);
	tail = ld(&cons[!end][IVCHAN_CONS_TAIL]);
	rhead = ld(&prod[!end][IVCHAN_PROD_HEAD]);
	rtail = ld(&cons[end][IVCHAN_CONS_TAIL]);
	if (!indices_ok(head, tail, info->ring_size[end]) ||
	    !indices_ok(rhead, rtail, info->ring_size[!end]))
		return IVCHAN_EUCLEAN;
	barrier_acquire();
	if (flags & IVCHAN_ATTACH_RESET) {
		int32_t n = count_records(data[!end], info->ring_size[!end],
					  info->max_msg, rtail, rhead);

		if (n < 0)
			return IVCHAN_EUCLEAN;
		discarded = (uint32_t)n;
		rtail = rhead;
	}

	zero_struct(ch, sizeof(*ch));
	ch->header = base;
	ch->me = id[end];
	ch->other = id[!end];
	ch->me_wait = wait[end];
	ch->other_wait = wait[!end];
	ch->me_count = count[end];
	ch->other_count = count[!end];
	ch->tx_prod = prod[end];
	ch->tx_cons = cons[!end];
	ch->rx_prod = prod[!end];
	ch->rx_cons = cons[end];
	ch->tx_data = data[end];
	ch->rx_data = data[!end];
	ch->tx_size = info->ring_size[end];
	ch->rx_size = info->ring_size[!end];
	ch->max_msg = info->max_msg;
	ch->tx_head = head;
	ch->tx_tail = tail;
	ch->tx_checked = head;
	ch->rx_tail = rtail;
	ch->rx_head = rhead;
	ch->rx_released = rtail;
	ch->nonce = lay->nonce;
	ch->end = end;

	epoch = ld(&ch->me[IVCHAN_ID_EPOCH]) + 1u;
	if (!epoch)
		epoch = 1;
	ch->epoch = epoch;
	st(&ch->me[IVCHAN_ID_STATE], IVCHAN_DETACHED);
	barrier_release();
	st(&ch->me[IVCHAN_ID_EPOCH], epoch);
	st(&ch->me[IVCHAN_ID_PEER], peer);
	st(&ch->me[IVCHAN_ID_VECTOR], vector);
	st(&ch->me[IVCHAN_ID_DISCARDED],
	   ld(&ch->me[IVCHAN_ID_DISCARDED]) + discarded);
	for (e = 0; e <= IVCHAN_COUNT_SLEEPS; e++)
		st(&ch->me_count[e], 0);
	st(&ch->rx_cons[IVCHAN_CONS_TAIL], rtail);
	/* Ring me at the next message; no doorbell for room. */
	st(&ch->me_wait[IVCHAN_WAIT_EVENT], rtail);
	st(&ch->me_wait[IVCHAN_WAIT_SPACE], tail - 1u);
	barrier_release();
	st(&ch->me[IVCHAN_ID_STATE], IVCHAN_ATTACHED);
	barrier_full();
	if (lost)
		*lost = discarded;
	return 0;
}

void ivchan_detach(struct ivchan *ch)
{
	if (!ch || !ch->me)
		return;
	barrier_full();
	st(&ch->me[IVCHAN_ID_STATE], IVCHAN_DETACHED);
	barrier_full();
	if (!ch->error)
		ch->error = IVCHAN_ENOTCONN;
}

/* Free bytes in the transmit ring for a record of rec bytes at the head,
 * with the padding before it in *pad; 0 when it does not fit. */
static int tx_fits(const struct ivchan *ch, uint32_t rec, uint32_t *pad)
{
	uint32_t pos = ch->tx_head & (ch->tx_size - 1u);
	uint32_t free_bytes = ch->tx_size - (ch->tx_head - ch->tx_tail);

	*pad = rec > ch->tx_size - pos ? ch->tx_size - pos : 0;
	return free_bytes >= *pad + rec;
}

/* Read the other end's tail: within a ring of our head, not behind the
 * tail read last. */
static int tx_reload(struct ivchan *ch)
{
	uint32_t t = ld(&ch->tx_cons[IVCHAN_CONS_TAIL]);

	if (!indices_ok(ch->tx_head, t, ch->tx_size) ||
	    (uint32_t)(t - ch->tx_tail) > (uint32_t)(ch->tx_head - ch->tx_tail))
		return broken(ch, IVCHAN_BROKEN_TAIL);
	/* The consumer is done with the bytes before t: only now may they
	 * be written over. */
	barrier_acquire();
	ch->tx_tail = t;
	return 0;
}

int ivchan_reserve(struct ivchan *ch, uint32_t len, void **buf)
{
	uint32_t rec, pad, pos;
	int r;

	if (!ch || !buf)
		return IVCHAN_EINVAL;
	if (ch->error)
		return ch->error;
	if (ch->tx_open)
		return IVCHAN_EBUSY;
	if (len > ch->max_msg)
		return IVCHAN_EMSGSIZE;
	rec = record_size(len);
	if (!tx_fits(ch, rec, &pad)) {
		r = tx_reload(ch);
		if (r)
			return r;
		if (!tx_fits(ch, rec, &pad))
			return IVCHAN_EAGAIN;
	}
	pos = ch->tx_head & (ch->tx_size - 1u);
	if (pad) {
		st(word_at(ch->tx_data, pos), IVCHAN_PAD);
		st(word_at(ch->tx_data, pos + 4u), 0);
		pos = 0;
	}
	ch->tx_pad = pad;
	ch->tx_open = len + 1u;
	*buf = (void *)(ch->tx_data + pos + IVCHAN_RECORD_HEADER);
	return 0;
}

int ivchan_flush(struct ivchan *ch)
{
	uint32_t event;
	int ring;

	if (!ch)
		return IVCHAN_EINVAL;
	if (ch->tx_head == ch->tx_checked)
		return 0;
	/* The head is stored; the event index is read after it
	 * (ivshmem-channel(7), notifications). */
	barrier_full();
	event = ld(&ch->other_wait[IVCHAN_WAIT_EVENT]);
	ring = ivchan_need_event(event, ch->tx_head, ch->tx_checked);
	ch->tx_checked = ch->tx_head;
	if (ring) {
		ch->n.rung++;
		st(&ch->me_count[IVCHAN_COUNT_RUNG], (uint32_t)ch->n.rung);
	} else {
		ch->n.suppressed++;
		st(&ch->me_count[IVCHAN_COUNT_SUPPRESSED],
		   (uint32_t)ch->n.suppressed);
	}
	return ring;
}

int ivchan_commit(struct ivchan *ch, uint32_t len, unsigned flags)
{
	uint32_t pos;

	if (!ch || !ch->tx_open || len > ch->tx_open - 1u ||
	    (flags & ~(unsigned)IVCHAN_COMMIT_MORE))
		return IVCHAN_EINVAL;
	pos = (ch->tx_head + ch->tx_pad) & (ch->tx_size - 1u);
	st(word_at(ch->tx_data, pos), len);
	st(word_at(ch->tx_data, pos + 4u), 0);
	/* The record is written before the head that publishes it. */
	barrier_release();
	ch->tx_head += ch->tx_pad + record_size(len);
	st(&ch->tx_prod[IVCHAN_PROD_HEAD], ch->tx_head);
	ch->tx_open = 0;
	ch->tx_pad = 0;
	ch->n.sent++;
	ch->n.bytes_sent += len;
	st(&ch->me_count[IVCHAN_COUNT_SENT], (uint32_t)ch->n.sent);
	if (flags & IVCHAN_COMMIT_MORE)
		return 0;
	return ivchan_flush(ch);
}

/* Copy through a volatile pointer: the compiler may not turn the loop into
 * a memcpy call, which a freestanding build does not have. */
static void copy_bytes(volatile uint8_t *dst, const volatile uint8_t *src,
		       uint32_t n)
{
	uint32_t i = 0;

	if (!(((uintptr_t)dst | (uintptr_t)src) & 3u)) {
		for (; i + 4u <= n; i += 4u)
			*(volatile uint32_t *)(dst + i) =
				*(const volatile uint32_t *)(src + i);
	}
	for (; i < n; i++)
		dst[i] = src[i];
}

int ivchan_send(struct ivchan *ch, const void *buf, uint32_t len)
{
	void *dst;
	int r;

	if (!ch || (!buf && len))
		return IVCHAN_EINVAL;
	r = ivchan_reserve(ch, len, &dst);
	if (r)
		return r;
	copy_bytes(dst, buf, len);
	return ivchan_commit(ch, len, 0);
}

/* Read the other end's head: within a ring of our tail, not behind the
 * head read last. */
static int rx_reload(struct ivchan *ch)
{
	uint32_t h = ld(&ch->rx_prod[IVCHAN_PROD_HEAD]);

	if (!indices_ok(h, ch->rx_tail, ch->rx_size) ||
	    (uint32_t)(h - ch->rx_tail) < (uint32_t)(ch->rx_head - ch->rx_tail))
		return broken(ch, IVCHAN_BROKEN_HEAD);
	/* The records before h are written: read them only after h. */
	barrier_acquire();
	ch->rx_head = h;
	return 0;
}

int ivchan_peek(struct ivchan *ch, const void **buf, uint32_t *len)
{
	enum ivchan_broken_reason why;
	uint32_t n, rec;
	int r;

	if (!ch || !buf || !len)
		return IVCHAN_EINVAL;
	if (ch->error)
		return ch->error;
	if (ch->rx_open)
		return IVCHAN_EBUSY;
	if (ch->rx_tail == ch->rx_head) {
		r = rx_reload(ch);
		if (r)
			return r;
		if (ch->rx_tail == ch->rx_head)
			return IVCHAN_EAGAIN;
	}
	why = record_at(ch->rx_data, ch->rx_size, ch->max_msg, ch->rx_tail,
			ch->rx_head, 1, &n, &rec);
	if (!why && n == IVCHAN_PAD) {
		/* Skipped here; given back with the message after it. */
		ch->rx_tail += rec;
		why = record_at(ch->rx_data, ch->rx_size, ch->max_msg,
				ch->rx_tail, ch->rx_head, 0, &n, &rec);
	}
	if (why)
		return broken(ch, why);
	ch->rx_open = rec;
	ch->rx_len = n;
	*buf = (const void *)(ch->rx_data +
			      (ch->rx_tail & (ch->rx_size - 1u)) +
			      IVCHAN_RECORD_HEADER);
	*len = n;
	return 0;
}

/* Tell a producer that waits for room about the releases since the last
 * look: 1 to ring it. */
static int rx_check(struct ivchan *ch)
{
	uint32_t event;
	int ring;

	if (ch->rx_tail == ch->rx_released)
		return 0;
	/* The tail is stored; the space event is read after it. */
	barrier_full();
	event = ld(&ch->other_wait[IVCHAN_WAIT_SPACE]);
	ring = ivchan_need_event(event, ch->rx_tail, ch->rx_released);
	ch->rx_released = ch->rx_tail;
	st(&ch->me_count[IVCHAN_COUNT_RECEIVED], (uint32_t)ch->n.received);
	if (ring) {
		ch->n.rung++;
		st(&ch->me_count[IVCHAN_COUNT_RUNG], (uint32_t)ch->n.rung);
	}
	return ring;
}

int ivchan_flush_rx(struct ivchan *ch)
{
	return ch ? rx_check(ch) : IVCHAN_EINVAL;
}

int ivchan_release(struct ivchan *ch)
{
	if (!ch || !ch->rx_open)
		return IVCHAN_EINVAL;
	/* The record is read before the tail that gives it back. */
	barrier_release();
	ch->rx_tail += ch->rx_open;
	st(&ch->rx_cons[IVCHAN_CONS_TAIL], ch->rx_tail);
	ch->rx_open = 0;
	ch->n.received++;
	ch->n.bytes_received += ch->rx_len;
	/* A producer waiting for room hears of it once a quarter of the
	 * ring is free again, or at ivchan_flush_rx(). */
	if ((uint32_t)(ch->rx_tail - ch->rx_released) < ch->rx_size / 4u)
		return 0;
	return rx_check(ch);
}

int ivchan_recv(struct ivchan *ch, void *buf, uint32_t cap, uint32_t *len)
{
	const void *src;
	int r;

	if (!ch || !len || (!buf && cap))
		return IVCHAN_EINVAL;
	r = ivchan_peek(ch, &src, len);
	if (r)
		return r;
	if (*len > cap) {
		ivchan_unpeek(ch);      /* it stays for a bigger buffer */
		return IVCHAN_EMSGSIZE;
	}
	copy_bytes(buf, src, *len);
	return ivchan_release(ch);
}

/* An error, 1 when a message is known to wait, 0 to look. */
static int rx_known(const struct ivchan *ch)
{
	if (!ch)
		return IVCHAN_EINVAL;
	if (ch->error)
		return ch->error;
	return ch->rx_tail != ch->rx_head;
}

int ivchan_sleep_rx(struct ivchan *ch)
{
	int r = rx_known(ch);

	if (r)
		return r;
	/* Event index, full barrier, look again (ivshmem-channel(7)). A
	 * sleep is counted when the doorbell is asked for, whatever the
	 * second look finds: each one allows the other end one ring. */
	st(&ch->me_wait[IVCHAN_WAIT_EVENT], ch->rx_tail);
	ch->n.sleeps++;
	st(&ch->me_count[IVCHAN_COUNT_SLEEPS], (uint32_t)ch->n.sleeps);
	barrier_full();
	r = rx_reload(ch);
	if (r)
		return r;
	return ch->rx_tail != ch->rx_head;
}

int ivchan_poll_rx(struct ivchan *ch)
{
	int r = rx_known(ch);

	if (r)
		return r;
	r = rx_reload(ch);
	return r ? r : ch->rx_tail != ch->rx_head;
}

int ivchan_poll_tx(struct ivchan *ch, uint32_t len)
{
	uint32_t pad;
	int r;

	if (!ch)
		return IVCHAN_EINVAL;
	if (ch->error)
		return ch->error;
	if (len > ch->max_msg)
		return IVCHAN_EMSGSIZE;
	if (tx_fits(ch, record_size(len), &pad))
		return 1;
	r = tx_reload(ch);
	return r ? r : tx_fits(ch, record_size(len), &pad);
}

int ivchan_sleep_tx(struct ivchan *ch, uint32_t len)
{
	uint32_t pad;
	int r = ivchan_poll_tx(ch, len);

	if (r)
		return r;
	/*
	 * Space event, full barrier, look again. The event must be the tail
	 * as last read: the consumer rings only for a release that starts
	 * at or before it, so after a reload that moved the tail, publish
	 * the new one and look again. Each turn the tail moved forward, so
	 * this ends within a ring's worth of records.
	 */
	ch->n.sleeps++;
	st(&ch->me_count[IVCHAN_COUNT_SLEEPS], (uint32_t)ch->n.sleeps);
	for (;;) {
		uint32_t event = ch->tx_tail;

		st(&ch->me_wait[IVCHAN_WAIT_SPACE], event);
		barrier_full();
		r = tx_reload(ch);
		if (r)
			return r;
		if (tx_fits(ch, record_size(len), &pad))
			return 1;
		if (ch->tx_tail == event)
			return 0;
	}
}

static void end_load(const volatile uint32_t *id,
		     const volatile uint32_t *prod,
		     const volatile uint32_t *cons,
		     const volatile uint32_t *wait,
		     const volatile uint32_t *count,
		     const volatile uint32_t *other_prod,
		     struct ivchan_end *out)
{
	out->state = ld(&id[IVCHAN_ID_STATE]);
	out->epoch = ld(&id[IVCHAN_ID_EPOCH]);
	out->peer = ld(&id[IVCHAN_ID_PEER]);
	out->vector = ld(&id[IVCHAN_ID_VECTOR]);
	out->discarded = ld(&id[IVCHAN_ID_DISCARDED]);
	out->sent = ld(&count[IVCHAN_COUNT_SENT]);
	out->received = ld(&count[IVCHAN_COUNT_RECEIVED]);
	out->rung = ld(&count[IVCHAN_COUNT_RUNG]);
	out->suppressed = ld(&count[IVCHAN_COUNT_SUPPRESSED]);
	out->sleeps = ld(&count[IVCHAN_COUNT_SLEEPS]);
	out->head = ld(&prod[IVCHAN_PROD_HEAD]);
	out->tail = ld(&cons[IVCHAN_CONS_TAIL]);
	out->event = ld(&wait[IVCHAN_WAIT_EVENT]);
	out->space_event = ld(&wait[IVCHAN_WAIT_SPACE]);
	out->peer_head = ld(&other_prod[IVCHAN_PROD_HEAD]);
}

void ivchan_get_end(const struct ivchan *ch, unsigned which,
		    struct ivchan_end *out)
{
	if (!ch || !out || !ch->me)
		return;
	if (which)
		end_load(ch->other, ch->rx_prod, ch->tx_cons, ch->other_wait,
			 ch->other_count, ch->tx_prod, out);
	else
		end_load(ch->me, ch->tx_prod, ch->rx_cons, ch->me_wait,
			 ch->me_count, ch->rx_prod, out);
}

void ivchan_read_end(const void *base, const struct ivchan_layout *lay,
		     const struct ivchan_info *info, unsigned end,
		     struct ivchan_end *out)
{
	const volatile uint8_t *l[2];
	uint32_t e, line;

	if (!base || !lay || !info || !out || end > 1u)
		return;
	line = lay->line;
	for (e = 0; e < 2u; e++)
		l[e] = (const volatile uint8_t *)base + info->offset +
		       e * IVCHAN_LINES_PER_END * line;
	end_load(word_at(l[end], IVCHAN_LINE_ID * line),
		 word_at(l[end], IVCHAN_LINE_PROD * line),
		 word_at(l[end], IVCHAN_LINE_CONS * line),
		 word_at(l[end], IVCHAN_LINE_WAIT * line),
		 word_at(l[end], IVCHAN_LINE_COUNT * line),
		 word_at(l[!end], IVCHAN_LINE_PROD * line), out);
}

void ivchan_unpeek(struct ivchan *ch)
{
	if (ch)
		ch->rx_open = 0;
}

uint32_t ivchan_rx_fill(const struct ivchan *ch)
{
	return ch ? ch->rx_head - ch->rx_tail : 0;
}

uint32_t ivchan_tx_fill(const struct ivchan *ch)
{
	return ch ? ch->tx_head - ch->tx_tail : 0;
}

int ivchan_error(const struct ivchan *ch)
{
	return ch ? ch->error : IVCHAN_EINVAL;
}

enum ivchan_broken_reason ivchan_broken(const struct ivchan *ch)
{
	return ch ? ch->broken : IVCHAN_OK;
}

const char *ivchan_broken_str(enum ivchan_broken_reason reason)
{
	switch (reason) {
	case IVCHAN_OK:
		return "not broken";
	case IVCHAN_BROKEN_HEAD:
		return "the other end's head left the ring";
	case IVCHAN_BROKEN_TAIL:
		return "the other end's tail left the ring";
	case IVCHAN_BROKEN_LENGTH:
		return "a message length is over the maximum or crosses the ring";
	case IVCHAN_BROKEN_PAD:
		return "a padding record is out of place";
	}
	return "unknown";
}

int ivchan_check_layout(const struct ivchan *ch)
{
	if (!ch || !ch->header)
		return IVCHAN_EINVAL;
	if (ld(&ch->header[IVCHAN_HDR_MAGIC]) != IVCHAN_MAGIC ||
	    ld(&ch->header[IVCHAN_HDR_NONCE]) != ch->nonce)
		return IVCHAN_ESTALE;
	return 0;
}

const struct ivchan_counters *ivchan_counters(const struct ivchan *ch)
{
	return ch ? &ch->n : 0;
}
