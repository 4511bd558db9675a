/* SPDX-License-Identifier: MIT */
/*
 * Channels on a peer (ivshmem_channel_* in ivshmem.h): the channel core
 * (ivchan.c) on the peer's mapping, its doorbells on the peer's eventfds.
 * The own vector a channel uses is taken from the peer's epoll, so the
 * channel's fd alone sees its doorbells.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ivchan.h"
#include "ivshmem.h"
#include "peer-private.h"

/* The core's errors are Linux's errno values. */
static_assert(IVCHAN_ENOENT == -ENOENT, "errno");
static_assert(IVCHAN_EAGAIN == -EAGAIN, "errno");
static_assert(IVCHAN_EBUSY == -EBUSY, "errno");
static_assert(IVCHAN_EEXIST == -EEXIST, "errno");
static_assert(IVCHAN_EINVAL == -EINVAL, "errno");
static_assert(IVCHAN_ENOSPC == -ENOSPC, "errno");
static_assert(IVCHAN_ENAMETOOLONG == -ENAMETOOLONG, "errno");
static_assert(IVCHAN_EBROKEN == -ENOTRECOVERABLE, "errno");
static_assert(IVCHAN_EBADMSG == -EBADMSG, "errno");
static_assert(IVCHAN_EMSGSIZE == -EMSGSIZE, "errno");
static_assert(IVCHAN_EPROTONOSUPPORT == -EPROTONOSUPPORT, "errno");
static_assert(IVCHAN_ENOTCONN == -ENOTCONN, "errno");
static_assert(IVCHAN_ESTALE == -ESTALE, "errno");
static_assert(IVCHAN_EUCLEAN == -EUCLEAN, "errno");
static_assert(IVSHMEM_CHANNEL_NAME_MAX == IVCHAN_NAME_MAX, "name");

#define KNOWN_FLAGS IVSHMEM_CHANNEL_RESET
#define KNOWN_EVENTS (IVSHMEM_CHANNEL_READABLE | IVSHMEM_CHANNEL_WRITABLE | \
		      IVSHMEM_CHANNEL_PEER)
/* Layouts start at a multiple of this in the region. */
#define LAYOUT_ALIGN 64u

struct ivshmem_channel {
	struct ivshmem_peer *peer;
	struct ivchan core;
	unsigned vector;
	int fd;                 /* a dup of the own vector's eventfd */
	int epfd;               /* the caller's fd: fd and the peer's fd */
	unsigned gen;           /* the peer's connection at attach */
	int error;              /* -ESTALE, -ENOTCONN once found */
	uint32_t want_tx;       /* length + 1 of a refused send, or 0 */
	bool ring_pending;      /* a doorbell the other end asked for that
				   could not be rung yet */

	/* The other end as last seen. */
	uint32_t other_epoch;
	uint32_t other_discarded;
	uint32_t other_state;
	bool other_present;

	uint64_t failed;
	uint64_t doorbells;
	uint64_t discarded;
	uint64_t lost;
	uint64_t restarts;
};

/* The bytes of the region a layout at offset may use (the core counts
 * in 32 bits). */
static int layout_window(uint64_t region_size, uint64_t offset,
			 uint32_t *avail)
{
	uint64_t n;

	if (offset % LAYOUT_ALIGN || offset >= region_size)
		return -EINVAL;
	n = region_size - offset;
	*avail = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return 0;
}

static int to_core_specs(const struct ivshmem_channel_spec *specs,
			 unsigned count, unsigned *line,
			 struct ivchan_spec *out)
{
	unsigned i;

	if (!specs || !count || count > IVCHAN_MAX_CHANNELS)
		return -EINVAL;
	if (!*line)
		*line = IVCHAN_DEFAULT_LINE;
	for (i = 0; i < count; i++) {
		out[i].name = specs[i].name;
		for (unsigned r = 0; r < 2; r++)
			out[i].ring_size[r] = specs[i].ring_size[r] ?
				specs[i].ring_size[r] :
				IVSHMEM_CHANNEL_DEFAULT_RING;
		out[i].max_msg = specs[i].max_msg;
	}
	return 0;
}

int ivshmem_layout_size(const struct ivshmem_channel_spec *specs,
			unsigned count, unsigned line, uint64_t *size_out)
{
	struct ivchan_spec core[IVCHAN_MAX_CHANNELS];
	uint32_t size;
	int r;

	if (!size_out)
		return -EINVAL;
	r = to_core_specs(specs, count, &line, core);
	if (!r)
		r = ivchan_layout_size(core, count, line, &size);
	if (!r)
		*size_out = size;
	return r;
}

/* A nonce unlike the previous layout's. */
static uint32_t new_nonce(const void *base, uint32_t avail)
{
	struct ivchan_layout old;
	struct timespec ts;
	uint32_t nonce;

	clock_gettime(CLOCK_REALTIME, &ts);
	nonce = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^
		(uint32_t)getpid() << 16;
	if (ivchan_layout_read(base, avail, &old) == 0 && old.nonce == nonce)
		nonce++;
	return nonce;
}

int ivshmem_layout_write(void *region, uint64_t region_size, uint64_t offset,
			 const struct ivshmem_channel_spec *specs,
			 unsigned count, unsigned line)
{
	struct ivchan_spec core[IVCHAN_MAX_CHANNELS];
	uint32_t avail;
	uint8_t *base;
	int r;

	if (!region)
		return -EINVAL;
	r = layout_window(region_size, offset, &avail);
	if (!r)
		r = to_core_specs(specs, count, &line, core);
	if (r)
		return r;
	base = (uint8_t *)region + offset;
	return ivchan_layout_init(base, avail, core, count, line,
				  new_nonce(base, avail));
}

static void end_info(const struct ivchan_end *e,
		     struct ivshmem_channel_end_info *out)
{
	out->attached = e->state == IVCHAN_ATTACHED;
	out->peer = e->peer < IVSHMEM_MAX_PEERS ? (int)e->peer : -1;
	out->vector = e->vector;
	out->epoch = e->epoch;
	out->head = e->head;
	out->tail = e->tail;
	/* Asleep: it asked for a doorbell at its tail and nothing came. */
	out->sleeping = out->attached && e->event == e->tail &&
			e->peer_head == e->tail;
	out->sent = e->sent;
	out->received = e->received;
	out->rung = e->rung;
	out->suppressed = e->suppressed;
	out->sleeps = e->sleeps;
	out->discarded = e->discarded;
}

int ivshmem_layout_get_channel(const void *region, uint64_t region_size,
			       uint64_t offset, unsigned index,
			       struct ivshmem_channel_info *info)
{
	struct ivchan_layout lay;
	struct ivchan_info ci;
	struct ivchan_end e[2];
	const uint8_t *base;
	uint32_t avail;
	int r;

	if (!region || !info)
		return -EINVAL;
	r = layout_window(region_size, offset, &avail);
	if (r)
		return r;
	base = (const uint8_t *)region + offset;
	r = ivchan_layout_read(base, avail, &lay);
	if (r)
		return r;
	if (index >= lay.count)
		return -ENOENT;
	r = ivchan_layout_entry(base, &lay, index, &ci);
	if (r)
		return r;
	memset(info, 0, sizeof(*info));
	memcpy(info->name, ci.name, sizeof(info->name));
	info->index = index;
	info->offset = offset + ci.offset;
	info->ring_size[0] = ci.ring_size[0];
	info->ring_size[1] = ci.ring_size[1];
	info->max_msg = ci.max_msg;
	for (unsigned i = 0; i < 2; i++)
		ivchan_read_end(base, &lay, &ci, i, &e[i]);
	for (unsigned i = 0; i < 2; i++) {
		end_info(&e[i], &info->end[i]);
		/* Ring i: written by end i, read by the other. */
		info->fill[i] = e[i].head - e[!i].tail;
	}
	return (int)lay.count;
}

/* ---- attached ends --------------------------------------------------- */

/* Is the peer ID an end records a connected peer? */
static bool peer_present(struct ivshmem_peer *peer, const struct ivchan_end *e)
{
	return e->state == IVCHAN_ATTACHED && e->peer < IVSHMEM_MAX_PEERS &&
	       ivshmem_peer_get_vectors(peer, (int)e->peer) >= 0;
}

/*
 * Ring the other end where it says it listens. When that fails (its peer
 * is not in the table yet, because the server's join notice is still
 * unread, or has left) the doorbell stays pending and dispatch tries it
 * again: a wakeup the other end asked for is never dropped while it may
 * still be delivered.
 */
static void ring_other(struct ivshmem_channel *ch)
{
	struct ivchan_end e;

	ivchan_get_end(&ch->core, 1, &e);
	if (e.state != IVCHAN_ATTACHED || e.peer >= IVSHMEM_MAX_PEERS ||
	    e.vector >= IVSHMEM_MAX_VECTORS ||
	    ivshmem_peer_ring(ch->peer, (int)e.peer, e.vector) < 0) {
		if (!ch->ring_pending)
			ch->failed++;
		ch->ring_pending = true;
		return;
	}
	ch->ring_pending = false;
}

static void note_other(struct ivshmem_channel *ch, const struct ivchan_end *e)
{
	ch->other_epoch = e->epoch;
	ch->other_discarded = e->discarded;
	ch->other_state = e->state;
	ch->other_present = peer_present(ch->peer, e);
}

int ivshmem_channel_attach(struct ivshmem_peer *peer,
			   const struct ivshmem_channel_config *config,
			   struct ivshmem_channel **out)
{
	struct ivshmem_channel *ch;
	struct ivchan_layout lay;
	struct ivchan_info info;
	struct ivchan_end e;
	uint64_t size;
	uint32_t avail, lost = 0;
	uint8_t *base;
	void *shm;
	int r, id, vfd;

	if (!peer || !config || !config->name || !out || config->end > 1 ||
	    (config->flags & ~(unsigned)KNOWN_FLAGS))
		return -EINVAL;
	if (ivshmem_peer_get_state(peer) != IVSHMEM_PEER_READY)
		return -ENOTCONN;
	r = ivshmem_peer_get_shm(peer, &shm, &size);
	if (r)
		return r;
	if (!shm)
		return -ENODATA;
	id = ivshmem_peer_get_id(peer);
	vfd = ivshmem_peer_get_vector_fd(peer, config->vector);
	if (vfd < 0)
		return vfd;
	r = layout_window(size, config->offset, &avail);
	if (r)
		return r;
	base = (uint8_t *)shm + config->offset;
	r = ivchan_layout_read(base, avail, &lay);
	if (r)
		return r;
	r = ivchan_layout_find(base, &lay, config->name, &info);
	if (r)
		return r;
	ivchan_read_end(base, &lay, &info, config->end, &e);
	if (peer_present(peer, &e) && (int)e.peer != id)
		return -EADDRINUSE;

	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->peer = peer;
	ch->vector = config->vector;
	ch->gen = peer_generation(peer);
	ch->epfd = -1;
	ch->fd = fcntl(vfd, F_DUPFD_CLOEXEC, 0);
	if (ch->fd < 0)
		goto fail_errno;
	ch->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ch->epfd < 0 ||
	    epoll_ctl(ch->epfd, EPOLL_CTL_ADD, ch->fd,
		      &(struct epoll_event){ .events = EPOLLIN }) < 0 ||
	    epoll_ctl(ch->epfd, EPOLL_CTL_ADD, ivshmem_peer_get_fd(peer),
		      &(struct epoll_event){ .events = EPOLLIN }) < 0)
		goto fail_errno;
	r = peer_claim_vector(peer, config->vector, true);
	if (r)
		goto fail;
	r = ivchan_attach(&ch->core, base, &lay, &info, config->end,
			  (uint32_t)id, config->vector,
			  config->flags & IVSHMEM_CHANNEL_RESET ?
			  IVCHAN_ATTACH_RESET : 0, &lost);
	if (r) {
		peer_claim_vector(peer, config->vector, false);
		goto fail;
	}
	ch->discarded = lost;
	ivchan_get_end(&ch->core, 1, &e);
	note_other(ch, &e);
	/* Tell an attached other end that this one is new. */
	if (ch->other_present)
		ring_other(ch);
	*out = ch;
	return 0;

fail_errno:
	r = -errno;
fail:
	if (ch->epfd >= 0)
		close(ch->epfd);
	if (ch->fd >= 0)
		close(ch->fd);
	free(ch);
	return r;
}

/* 1 from the core: the other end asked for a doorbell. */
static int rang(struct ivshmem_channel *ch, int r)
{
	if (r > 0) {
		ring_other(ch);
		return 0;
	}
	return r;
}

void ivshmem_channel_detach(struct ivshmem_channel *ch)
{
	if (!ch)
		return;
	rang(ch, ivchan_flush_rx(&ch->core));
	ivchan_detach(&ch->core);
	peer_claim_vector(ch->peer, ch->vector, false);
	close(ch->epfd);
	close(ch->fd);
	free(ch);
}

int ivshmem_channel_reserve(struct ivshmem_channel *ch, size_t len, void **buf)
{
	int r;

	if (!ch || !buf)
		return -EINVAL;
	if (len > ch->core.max_msg)
		return -EMSGSIZE;
	r = ivchan_reserve(&ch->core, (uint32_t)len, buf);
	if (r == -EAGAIN)
		ch->want_tx = (uint32_t)len + 1;
	return r;
}

int ivshmem_channel_commit(struct ivshmem_channel *ch, size_t len,
			   unsigned flags)
{
	if (!ch || (flags & ~(unsigned)IVSHMEM_CHANNEL_MORE) ||
	    len > UINT32_MAX)
		return -EINVAL;
	return rang(ch, ivchan_commit(&ch->core, (uint32_t)len,
				      flags & IVSHMEM_CHANNEL_MORE ?
				      IVCHAN_COMMIT_MORE : 0));
}

int ivshmem_channel_flush(struct ivshmem_channel *ch)
{
	if (!ch)
		return -EINVAL;
	rang(ch, ivchan_flush_rx(&ch->core));
	return rang(ch, ivchan_flush(&ch->core));
}

int ivshmem_channel_send(struct ivshmem_channel *ch, const void *buf,
			 size_t len)
{
	void *dst;
	int r;

	if (!ch || (!buf && len))
		return -EINVAL;
	r = ivshmem_channel_reserve(ch, len, &dst);
	if (r)
		return r;
	if (len)
		memcpy(dst, buf, len);
	return rang(ch, ivchan_commit(&ch->core, (uint32_t)len, 0));
}

int ivshmem_channel_peek(struct ivshmem_channel *ch, const void **buf,
			 size_t *len)
{
	uint32_t n;
	int r;

	if (!ch || !buf || !len)
		return -EINVAL;
	r = ivchan_peek(&ch->core, buf, &n);
	if (!r)
		*len = n;
	else if (r == -EAGAIN)
		rang(ch, ivchan_flush_rx(&ch->core));
	return r;
}

int ivshmem_channel_release(struct ivshmem_channel *ch)
{
	if (!ch)
		return -EINVAL;
	return rang(ch, ivchan_release(&ch->core));
}

ssize_t ivshmem_channel_recv(struct ivshmem_channel *ch, void *buf,
			     size_t cap)
{
	const void *src;
	size_t n;
	int r;

	if (!ch || (!buf && cap))
		return -EINVAL;
	r = ivshmem_channel_peek(ch, &src, &n);
	if (r)
		return r;
	if (n > cap) {
		ivchan_unpeek(&ch->core);
		return -EMSGSIZE;
	}
	if (n)
		memcpy(buf, src, n);
	r = rang(ch, ivchan_release(&ch->core));
	return r < 0 ? r : (ssize_t)n;
}

int ivshmem_channel_get_fd(const struct ivshmem_channel *ch)
{
	return ch ? ch->epfd : -EINVAL;
}

/* The other end since last looked: PEER when it changed. */
static int look_at_other(struct ivshmem_channel *ch)
{
	struct ivchan_end e;
	int ev = 0;

	ivchan_get_end(&ch->core, 1, &e);
	if (e.epoch != ch->other_epoch) {
		ev = IVSHMEM_CHANNEL_PEER;
		/* Each attach adds one to the epoch: the attaches since,
		 * but the other end's first. */
		ch->restarts += (uint32_t)(e.epoch - ch->other_epoch) -
				(ch->other_epoch == 0);
		/* What it discarded of ours when it attached anew. */
		ch->lost += (uint32_t)(e.discarded - ch->other_discarded);
	}
	if (e.state != ch->other_state ||
	    peer_present(ch->peer, &e) != ch->other_present)
		ev = IVSHMEM_CHANNEL_PEER;
	note_other(ch, &e);
	return ev;
}

int ivshmem_channel_dispatch(struct ivshmem_channel *ch)
{
	bool woken_by_server = false;
	uint64_t count;
	int ev, r;

	if (!ch)
		return -EINVAL;
	if (!ch->error && peer_generation(ch->peer) != ch->gen)
		ch->error = -ENOTCONN;
	if (!ch->error && ivchan_check_layout(&ch->core))
		ch->error = -ESTALE;
	if (ch->error)
		return ch->error;
	if (read(ch->fd, &count, sizeof(count)) == sizeof(count))
		ch->doorbells += count;
	else
		woken_by_server = true;
	/* Woken by the server's socket (no doorbell), or with a doorbell
	 * for a peer not in the table yet: take the server's notices (the
	 * peer's callbacks run here). */
	if (woken_by_server || ch->ring_pending)
		ivshmem_peer_dispatch(ch->peer);
	if (peer_generation(ch->peer) != ch->gen)
		return ch->error = -ENOTCONN;
	ev = look_at_other(ch);
	if (ch->ring_pending)
		ring_other(ch);

	rang(ch, ivchan_flush_rx(&ch->core));
	r = ivchan_sleep_rx(&ch->core);
	if (r < 0)
		return r;
	if (r)
		ev |= IVSHMEM_CHANNEL_READABLE;
	if (ch->want_tx) {
		r = ivchan_sleep_tx(&ch->core, ch->want_tx - 1);
		if (r < 0)
			return r;
		if (r) {
			ev |= IVSHMEM_CHANNEL_WRITABLE;
			ch->want_tx = 0;
		}
	} else {
		ev |= IVSHMEM_CHANNEL_WRITABLE;
	}
	return ev;
}

/*
 * Before sleeping, look at the rings for a little while without asking
 * for a doorbell: when the other end is about as fast as this one, the
 * next message is usually a few hundred nanoseconds away, and a sleep
 * costs a doorbell and two system calls. SPIN_NS bounds the look.
 */
#define SPIN_NS 20000

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* The events (READABLE, WRITABLE) that came within SPIN_NS, 0 if none,
 * or the error that broke the channel. */
static int spin(struct ivshmem_channel *ch, unsigned events)
{
	int64_t end = now_ns() + SPIN_NS;
	int r;

	do {
		for (int i = 0; i < 64; i++) {
			if (events & IVSHMEM_CHANNEL_READABLE) {
				r = ivchan_poll_rx(&ch->core);
				if (r)
					return r < 0 ? r : IVSHMEM_CHANNEL_READABLE;
			}
			if ((events & IVSHMEM_CHANNEL_WRITABLE) && ch->want_tx) {
				r = ivchan_poll_tx(&ch->core, ch->want_tx - 1);
				if (r < 0)
					return r;
				if (r) {
					ch->want_tx = 0;
					return IVSHMEM_CHANNEL_WRITABLE;
				}
			}
			cpu_relax();
		}
	} while (now_ns() < end);
	return 0;
}

static int64_t now_ms(void)
{
	return now_ns() / 1000000;
}

int ivshmem_channel_wait(struct ivshmem_channel *ch, unsigned events,
			 int timeout_ms)
{
	bool spun = false;
	int64_t deadline;
	int r;

	if (!ch || !events || (events & ~(unsigned)KNOWN_EVENTS))
		return -EINVAL;
	deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	for (;;) {
		/* The channel's doorbell and the peer's socket. */
		struct pollfd pfd = { .fd = ch->epfd, .events = POLLIN };
		int left = -1;

		/* A short look first, asking nothing of the other end. */
		if (!spun && timeout_ms != 0 && !ch->error &&
		    (events & ~(unsigned)IVSHMEM_CHANNEL_PEER) &&
		    (!(events & IVSHMEM_CHANNEL_WRITABLE) || ch->want_tx)) {
			r = spin(ch, events);
			if (r)
				return r;
		}
		spun = true;
		r = ivshmem_channel_dispatch(ch);
		if (r < 0 || (r & (int)events))
			return r;
		if (deadline >= 0) {
			int64_t d = deadline - now_ms();

			if (d <= 0)
				return -ETIMEDOUT;
			left = d > INT32_MAX ? INT32_MAX : (int)d;
		}
		r = poll(&pfd, 1, left);
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int ivshmem_channel_get_stats(const struct ivshmem_channel *ch,
			      struct ivshmem_channel_stats *st)
{
	const struct ivchan_counters *n;
	struct ivchan_end e;

	if (!ch || !st)
		return -EINVAL;
	n = ivchan_counters(&ch->core);
	memset(st, 0, sizeof(*st));
	st->sent = n->sent;
	st->received = n->received;
	st->bytes_sent = n->bytes_sent;
	st->bytes_received = n->bytes_received;
	st->doorbells_rung = n->rung;
	st->doorbells_suppressed = n->suppressed;
	st->doorbells_failed = ch->failed;
	st->doorbells_received = ch->doorbells;
	st->sleeps = n->sleeps;
	st->discarded = ch->discarded;
	st->lost = ch->lost;
	st->peer_restarts = ch->restarts;
	st->rx_fill = ivchan_rx_fill(&ch->core);
	st->tx_fill = ivchan_tx_fill(&ch->core);
	st->max_msg = ch->core.max_msg;
	st->error = ch->error ? ch->error : ivchan_error(&ch->core);
	st->broken = ivchan_broken(&ch->core) ?
		ivchan_broken_str(ivchan_broken(&ch->core)) : "";
	ivchan_get_end(&ch->core, 0, &e);
	end_info(&e, &st->self);
	ivchan_get_end(&ch->core, 1, &e);
	end_info(&e, &st->other);
	return 0;
}
