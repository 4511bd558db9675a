/* SPDX-License-Identifier: MIT */
/*
 * The peer side: connect to a server, check and take the greeting, keep
 * the peer table from join and leave notices, ring other peers, report
 * the own doorbells. Driven by the caller's loop through one epoll fd.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ivshmem.h"
#include "pci-private.h"
#include "peer-private.h"
#include "wire-private.h"

/* The peer table: IDs 0..65535 in 256 pages of 256, made on first use,
 * so a lookup on the ring path is two indexings. */
#define PAGE_SHIFT_ID 8
#define PAGE_IDS (1u << PAGE_SHIFT_ID)
#define NPAGES (IVSHMEM_MAX_PEERS / PAGE_IDS)

/* epoll tags of the socket and the timer; own vectors are tagged with
 * their number. */
#define TAG_SOCK (1ull << 32)
#define TAG_TIMER (1ull << 33)

/*
 * How long the stream must stay quiet, in the middle of the own vectors,
 * before the greeting counts as complete with fewer than expected (the
 * server has fewer vectors than configured), or, with no count known at
 * all, with what arrived. One empty read is not enough: the server's
 * greeting may arrive in several writes.
 */
#define QUIET_SHORT_MS 250
#define QUIET_UNKNOWN_MS 50

/* Messages taken per dispatch, so a server that never stops sending
 * cannot hold the caller (or the own doorbells) forever. */
#define MSG_BUDGET 4096

/* The greeting's first three messages: version, ID, shared memory. */
#define GREETING_HEAD 3

#define KNOWN_FLAGS IVSHMEM_PEER_NO_MAP

struct rpeer {
	int id;
	unsigned nvec;
	bool announced;         /* reported to ops->joined (or own: ready) */
	bool warned_extra;      /* extra vectors logged */
	uint64_t blocking;      /* vectors whose eventfd lacks O_NONBLOCK */
	int fd[];               /* p->cap eventfds, nvec of them valid */
};

struct ivshmem_peer {
	struct ivshmem_peer_ops ops;
	void *user;
	unsigned cfg_vectors;   /* 0: as the server */
	uint64_t cfg_shm_size;  /* 0: any */
	unsigned flags;
	unsigned cap;           /* vectors kept per peer */

	int epfd;
	int timer;              /* timerfd for the greeting's end */
	int sock;               /* -1 when not connected */
	unsigned gen;           /* bumped by every connect and disconnect */
	uint64_t claimed;       /* own vectors a channel reads, not epoll */
	enum ivshmem_peer_state state;
	int last_error;
	char error[224];        /* last_error with what only the peer knew */
	unsigned depth;         /* dispatch running (callbacks may not nest) */
	struct ivshmem_inbuf in;
	unsigned nmsgs;         /* messages taken, up to GREETING_HEAD */

	int id;                 /* own ID, -1 before it is known */
	int shm_fd;
	void *shm;              /* mapping, kept across disconnects */
	uint64_t shm_size;

	struct pci_dev *pci;     /* inside a guest: the PCI device, or NULL */

	struct rpeer **pages[NPAGES];
	unsigned nothers;       /* other peers in the table */
	int pending;            /* ID whose vector block is open, or -1 */
	unsigned others_vec;    /* vectors of a complete other block, or 0 */
};

IVSHMEM_PRINTF(3, 4)
static void peer_log(struct ivshmem_peer *p, int prio, const char *fmt, ...)
{
	va_list ap;

	if (!p->ops.log)
		return;
	va_start(ap, fmt);
	p->ops.log(p->user, prio, fmt, ap);
	va_end(ap);
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static void timer_arm(struct ivshmem_peer *p, int ms)
{
	struct itimerspec its = {
		.it_value.tv_sec = ms / 1000,
		.it_value.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	if (p->pci && ms == 0 && pci_dev_poll_us(p->pci))
		return;         /* the timer polls the device */

	timerfd_settime(p->timer, 0, &its, NULL);
}

/* ---- the peer table ---------------------------------------------------- */

static struct rpeer *lookup(const struct ivshmem_peer *p, int id)
{
	struct rpeer **page;

	if (id < 0 || id >= IVSHMEM_MAX_PEERS)
		return NULL;
	page = p->pages[id >> PAGE_SHIFT_ID];
	return page ? page[id & (PAGE_IDS - 1)] : NULL;
}

static struct rpeer *entry_add(struct ivshmem_peer *p, int id)
{
	struct rpeer ***page = &p->pages[id >> PAGE_SHIFT_ID];
	struct rpeer *e;

	if (!*page) {
		*page = calloc(PAGE_IDS, sizeof(**page));
		if (!*page)
			return NULL;
	}
	e = calloc(1, sizeof(*e) + p->cap * sizeof(e->fd[0]));
	if (!e)
		return NULL;
	e->id = id;
	(*page)[id & (PAGE_IDS - 1)] = e;
	if (id != p->id)
		p->nothers++;
	return e;
}

static void entry_remove(struct ivshmem_peer *p, struct rpeer *e)
{
	unsigned v;

	for (v = 0; v < e->nvec; v++) {
		/* Closing does not end a watch while the server (or a dup)
		 * still holds the eventfd: remove it explicitly. */
		if (e->id == p->id)
			epoll_ctl(p->epfd, EPOLL_CTL_DEL, e->fd[v], NULL);
		close(e->fd[v]);
	}
	p->pages[e->id >> PAGE_SHIFT_ID][e->id & (PAGE_IDS - 1)] = NULL;
	if (e->id != p->id)
		p->nothers--;
	free(e);
}

static void table_clear(struct ivshmem_peer *p)
{
	unsigned i, j;

	for (i = 0; i < NPAGES; i++) {
		if (!p->pages[i])
			continue;
		for (j = 0; j < PAGE_IDS; j++) {
			if (p->pages[i][j])
				entry_remove(p, p->pages[i][j]);
		}
	}
	assert(p->nothers == 0);
	p->pending = -1;
	p->others_vec = 0;
}

/* ---- checks on received fds -------------------------------------------- */

static bool is_eventfd(int fd)
{
	char path[32], target[64];
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n >= 0) {
		target[n] = '\0';
		return strcmp(target, "anon_inode:[eventfd]") == 0;
	}
	/* No /proc (a chroot): at least insist on an anonymous inode,
	 * which rules out files, pipes, sockets and devices. */
	return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == 0;
}

/* Why mapping the shared memory failed, in the peer's sentence. */
static void map_error(struct ivshmem_peer *p, int fd, uint64_t size, int err)
{
	const char *hint = "";
	int fl = fcntl(fd, F_GETFL), seals = fcntl(fd, F_GET_SEALS);

	if (err == EACCES && fl >= 0 && (fl & O_ACCMODE) == O_RDONLY)
		hint = " (the server sent it opened read-only)";
	else if (err == EPERM && seals >= 0 &&
		 (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		hint = " (the server sent a memfd sealed against writing)";
	snprintf(p->error, sizeof(p->error),
		 "Mapping the server's shared memory (%" PRIu64
		 " bytes) read-write failed: %s%s", size, strerror(err), hint);
}

/* Check the shm fd and map it (at the old address when the size is the
 * same, so pointers into it stay valid across a reconnect). */
static int shm_take(struct ivshmem_peer *p, int fd)
{
	struct stat st;
	void *addr = NULL;
	uint64_t size;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	size = (uint64_t)st.st_size;
	if (st.st_size <= 0 || (p->cfg_shm_size && size != p->cfg_shm_size) ||
	    size > SIZE_MAX) {
		/* The size is known only here: say it, so the caller can
		 * tell the user which of the two sizes to change. */
		if (p->cfg_shm_size && size != p->cfg_shm_size)
			snprintf(p->error, sizeof(p->error),
				 "The server's shared memory is %" PRIu64
				 " bytes; %" PRIu64 " bytes are required",
				 size, p->cfg_shm_size);
		else
			snprintf(p->error, sizeof(p->error),
				 "The server's shared memory is %" PRIu64
				 " bytes: empty, or too large to map", size);
		return -EFBIG;
	}

	if (!(p->flags & IVSHMEM_PEER_NO_MAP)) {
		addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			    0);
		if (addr == MAP_FAILED) {
			int err = errno == EOVERFLOW ? EFBIG : errno;

			map_error(p, fd, size, err);
			return -err;
		}
		/* Same size: move the new mapping over the old one in one
		 * step, so the old address never becomes a hole. */
		if (p->shm && p->shm_size == size) {
			void *moved = mremap(addr, size, size,
					     MREMAP_MAYMOVE | MREMAP_FIXED,
					     p->shm);

			if (moved == MAP_FAILED) {
				int err = errno;

				munmap(addr, size);
				map_error(p, fd, size, err);
				return -err;
			}
			addr = moved;
		} else if (p->shm) {
			munmap(p->shm, p->shm_size);
		}
	}
	p->shm = addr;
	p->shm_size = size;
	p->shm_fd = fd;
	return 0;
}

/* ---- connection end ---------------------------------------------------- */

/*
 * End the connection. When the stream broke the protocol (violation), also
 * close everything received on it: the peer table and the shm fd. When
 * the server just went away, keep them, as QEMU's device does.
 */
static void pci_close(struct ivshmem_peer *p);

static void conn_close(struct ivshmem_peer *p, bool violation)
{
	if (p->pci) {
		pci_close(p);
		return;
	}
	if (p->sock >= 0) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->sock, NULL);
		close_fd(&p->sock);
	}
	ivshmem_inbuf_clear(&p->in);
	timer_arm(p, 0);
	p->gen++;
	if (violation) {
		table_clear(p);
		close_fd(&p->shm_fd);
	}
}

/*
 * After a violation, what was received is closed once ops->disconnected
 * has returned, so that it can first tell other threads reading the own
 * eventfds to stop. Unless it reconnected, which starts afresh anyway.
 */
static int conn_fail(struct ivshmem_peer *p, int err, bool violation)
{
	unsigned gen;

	assert(err < 0);
	conn_close(p, false);
	gen = p->gen;
	p->state = IVSHMEM_PEER_DISCONNECTED;
	p->last_error = err;
	/* The caller hears of it through ops->disconnected and the return
	 * value: the log only notes it, or a program would say it twice. */
	peer_log(p, IVSHMEM_LOG_INFO, "disconnected: %s",
		 ivshmem_peer_get_error(p));
	if (p->ops.disconnected)
		p->ops.disconnected(p->user, p, err);
	if (violation && p->gen == gen) {
		table_clear(p);
		close_fd(&p->shm_fd);
	}
	return err;
}

/* ---- the greeting and the notices -------------------------------------- */

static void become_ready(struct ivshmem_peer *p)
{
	struct rpeer *own = lookup(p, p->id);

	assert(own);
	timer_arm(p, 0);
	own->announced = true;
	p->state = IVSHMEM_PEER_READY;
	peer_log(p, IVSHMEM_LOG_DEBUG, "ready: ID %d, %u vectors, %u peers",
		 p->id, own->nvec, p->nothers);
	if (p->ops.ready)
		p->ops.ready(p->user, p);
}

/* The open vector block is complete: announce its peer. */
static void block_finish(struct ivshmem_peer *p)
{
	struct rpeer *e = lookup(p, p->pending);

	p->pending = -1;
	if (!e)
		return;
	if (e->id == p->id) {
		if (p->state == IVSHMEM_PEER_CONNECTING)
			become_ready(p);
		return;
	}
	if (!p->others_vec)
		p->others_vec = e->nvec;
	e->announced = true;
	if (p->ops.joined)
		p->ops.joined(p->user, p, e->id, e->nvec);
}

/* Close the open vector block, if any. Its callback may end or replace
 * the connection: false then, and the message in hand is the old one's. */
static bool block_close(struct ivshmem_peer *p)
{
	unsigned gen = p->gen;

	if (p->pending >= 0)
		block_finish(p);
	return p->gen == gen;
}

/* Is the greeting's last block, the own vectors, being received? */
static bool own_block_open(const struct ivshmem_peer *p)
{
	return p->state == IVSHMEM_PEER_CONNECTING && p->pending >= 0 &&
	       p->pending == p->id;
}

/* After ready: is another peer's block open (it may have fewer vectors
 * than the own count, and nothing else may follow it for a while)? */
static bool other_block_open(const struct ivshmem_peer *p)
{
	return p->state == IVSHMEM_PEER_READY && p->pending >= 0 &&
	       p->pending != p->id;
}

/* How many vectors complete the block of the peer e, or 0 if unknown. */
static unsigned block_target(const struct ivshmem_peer *p,
			     const struct rpeer *e)
{
	const struct rpeer *own;

	if (p->state == IVSHMEM_PEER_READY) {
		own = lookup(p, p->id);
		return own ? own->nvec : 0;
	}
	/* During the greeting: a complete other block gives the server's
	 * count (as kept), else the configured count if any. */
	if (e->id == p->id && p->others_vec)
		return p->others_vec;
	return p->cfg_vectors;
}

/* Watch own vector v's eventfd, tagged with its number. */
static int own_watch(struct ivshmem_peer *p, int fd, unsigned v)
{
	struct epoll_event ev = {
		.events = EPOLLIN,
		.data.u64 = v,
	};

	return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int take_vector(struct ivshmem_peer *p, int id, int fd)
{
	struct rpeer *e;
	unsigned target;

	if (!is_eventfd(fd)) {
		close(fd);
		return -EBADFD;
	}
	if (p->pending != id && !block_close(p)) {
		close(fd);
		return 0;
	}

	e = lookup(p, id);
	if (!e) {
		e = entry_add(p, id);
		if (!e) {
			close(fd);
			return -ENOMEM;
		}
	}
	if (e->nvec >= p->cap) {
		if (!e->warned_extra)
			peer_log(p, IVSHMEM_LOG_INFO,
				 "peer %d has more than %u vectors; closing the extra ones",
				 id, p->cap);
		e->warned_extra = true;
		close(fd);
		return 0;
	}
	if (id == p->id) {
		/* Only this peer reads its own eventfds (or the channel that
		 * claimed one). */
		int err = set_nonblock(fd);

		if (!err && !(p->claimed & (1ull << e->nvec)))
			err = own_watch(p, fd, e->nvec);
		if (err) {
			close(fd);
			return err;
		}
	} else {
		int fl = fcntl(fd, F_GETFL);

		/* Another peer's: ring must not block on it (see ring). */
		if (fl < 0 || !(fl & O_NONBLOCK))
			e->blocking |= 1ull << e->nvec;
	}
	e->fd[e->nvec++] = fd;

	if (e->announced)
		return 0;       /* a known peer gained a vector */
	p->pending = id;
	target = block_target(p, e);
	if (target && e->nvec >= target)
		block_finish(p);
	return 0;
}

static int take_leave(struct ivshmem_peer *p, int id)
{
	struct rpeer *e;

	if (!block_close(p))
		return 0;
	if (id == p->id)
		return -EIDRM;
	e = lookup(p, id);
	if (!e)
		return -ESRCH;
	entry_remove(p, e);
	if (p->ops.left)
		p->ops.left(p->user, p, id);
	return 0;
}

/* Take one message; fd (or -1) is always consumed. 0 or -errno. */
static int take_msg(struct ivshmem_peer *p, int64_t value, int fd)
{
	unsigned n = p->nmsgs;
	int err;

	/* Counted only as far as the greeting's head: a long-lived
	 * connection must not wrap back into it. */
	if (p->nmsgs < GREETING_HEAD)
		p->nmsgs++;

	switch (n) {
	case 0:
	case 1:
		if (fd >= 0) {
			close(fd);
			return -EBADR;
		}
		if (n == 0)
			return value == IVSHMEM_PROTOCOL_VERSION ?
				0 : -EPROTONOSUPPORT;
		if (value < 0 || value >= IVSHMEM_MAX_PEERS)
			return -ERANGE;
		p->id = (int)value;
		return 0;
	case 2:
		if (value != -1 || fd < 0) {
			if (fd >= 0)
				close(fd);
			return -ENODATA;
		}
		err = shm_take(p, fd);
		if (err < 0)
			close(fd);
		return err;
	default:
		break;
	}

	if (value == -1 && fd >= 0) {
		close(fd);
		return -EEXIST;
	}
	if (value < 0 || value >= IVSHMEM_MAX_PEERS) {
		if (fd >= 0)
			close(fd);
		return -ERANGE;
	}
	if (fd >= 0)
		return take_vector(p, (int)value, fd);
	return take_leave(p, (int)value);
}

/*
 * The stream paused in the middle of the own vectors, the last block of
 * the greeting (a known count completes it at once in take_vector), or,
 * after ready, of another peer's. Wait for quiet before taking it as
 * complete; an end of the stream is final: the peer the server told of is
 * announced (its eventfds stay in the table, and ring reaches it) before
 * the connection is reported gone.
 */
static void stream_paused(struct ivshmem_peer *p, bool ended)
{
	if (other_block_open(p)) {
		if (ended)
			block_finish(p);
		else    /* announced once the stream stays quiet */
			timer_arm(p, QUIET_SHORT_MS);
		return;
	}
	if (!own_block_open(p))
		return;
	if (ended) {
		block_finish(p);
		return;
	}
	timer_arm(p, block_target(p, lookup(p, p->id)) ?
		  QUIET_SHORT_MS : QUIET_UNKNOWN_MS);
}

static void timer_fired(struct ivshmem_peer *p)
{
	uint64_t n;
	bool fired = read(p->timer, &n, sizeof(n)) == sizeof(n);

	if (p->pci) {
		const struct rpeer *own = lookup(p, p->id);

		/* A look is due whether or not the count was read. */
		if (own)
			pci_dev_poll(p->pci, own->fd, own->nvec);
		return;
	}
	if (fired && (own_block_open(p) || other_block_open(p)))
		block_finish(p);
}

/* Errors of the stream itself, as opposed to the socket's or to a lack
 * of local resources (memory, fds): the values ivshmem.h lists. */
static bool is_violation(int err)
{
	switch (-err) {
	case EPROTO: case EPROTONOSUPPORT: case ERANGE: case ENODATA:
	case ENODEV: case EFBIG: case EBADR: case EBADMSG: case EMSGSIZE:
	case EBADFD: case EEXIST: case EIDRM: case ESRCH:
		return true;
	default:
		return false;
	}
}

static int read_socket(struct ivshmem_peer *p)
{
	unsigned gen = p->gen;
	unsigned budget = MSG_BUDGET;

	/* Callbacks run inside; any of them may end or replace the
	 * connection (p->gen changes), and then this one is done. */
	while (p->sock >= 0 && p->gen == gen && budget--) {
		int64_t value;
		int fd = -1;
		int r = ivshmem_wire_recv(p->sock, &p->in, &value, &fd);

		if (r == -EAGAIN) {
			stream_paused(p, false);
			return 0;
		}
		if (r == 0) {
			stream_paused(p, true);
			if (p->gen != gen)
				return 0;
			return conn_fail(p, p->nmsgs ? -ECONNRESET :
					 -ECONNREFUSED, false);
		}
		if (r < 0)
			return conn_fail(p, r, is_violation(r));
		r = take_msg(p, value, fd);
		if (p->gen != gen)
			return 0;
		if (r < 0)
			return conn_fail(p, r, is_violation(r));
	}
	return 0;
}

/* ---- public: life cycle ------------------------------------------------ */

int ivshmem_peer_new(const struct ivshmem_peer_config *config,
		     const struct ivshmem_peer_ops *ops, void *user,
		     struct ivshmem_peer **out)
{
	struct ivshmem_peer *p;

	if (!config || !ops || !out || config->vectors > IVSHMEM_MAX_VECTORS ||
	    (config->flags & ~(unsigned)KNOWN_FLAGS))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->epfd < 0 || p->timer < 0 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->timer,
		      &(struct epoll_event){ .events = EPOLLIN,
					     .data.u64 = TAG_TIMER }) < 0) {
		int err = -errno;

		if (p->epfd >= 0)
			close(p->epfd);
		if (p->timer >= 0)
			close(p->timer);
		free(p);
		return err;
	}
	p->ops = *ops;
	p->user = user;
	p->cfg_vectors = config->vectors;
	p->cfg_shm_size = config->shm_size;
	p->flags = config->flags;
	p->cap = config->vectors ? config->vectors : IVSHMEM_MAX_VECTORS;
	p->sock = -1;
	p->id = -1;
	p->shm_fd = -1;
	p->pending = -1;
	p->state = IVSHMEM_PEER_IDLE;
	ivshmem_inbuf_init(&p->in);
	*out = p;
	return 0;
}

void ivshmem_peer_free(struct ivshmem_peer *p)
{
	unsigned i;

	if (!p)
		return;
	conn_close(p, true);
	for (i = 0; i < NPAGES; i++)
		free(p->pages[i]);
	if (p->shm)
		munmap(p->shm, p->shm_size);
	close(p->timer);
	close(p->epfd);
	free(p);
}

/* Start a connection on sock (connected). The peer owns sock once this
 * succeeds; on failure it is left open. */
static int conn_start(struct ivshmem_peer *p, int sock)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_SOCK };

	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, sock, &ev) < 0)
		return -errno;
	/* A fresh start: what the last connection left goes now, except
	 * the mapping, which the new shared memory replaces. */
	table_clear(p);
	close_fd(&p->shm_fd);
	ivshmem_inbuf_clear(&p->in);
	p->sock = sock;
	p->gen++;
	p->nmsgs = 0;
	p->id = -1;
	p->last_error = 0;
	p->error[0] = '\0';
	p->state = IVSHMEM_PEER_CONNECTING;
	return 0;
}

static bool connected(const struct ivshmem_peer *p)
{
	return p->pci || p->state == IVSHMEM_PEER_CONNECTING ||
	       p->state == IVSHMEM_PEER_READY;
}

int ivshmem_peer_connect(struct ivshmem_peer *p, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sock, r;

	if (!p || !path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (connected(p))
		return -EISCONN;
	memcpy(sa.sun_path, path, strlen(path));

	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sock < 0)
		return -errno;
	/* A local stream connect completes at once or fails at once; a
	 * full backlog is EAGAIN, not EINPROGRESS. */
	do {
		r = connect(sock, (struct sockaddr *)&sa, sizeof(sa));
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = errno == EWOULDBLOCK ? -EAGAIN : -errno;
		close(sock);
		return r;
	}
	r = conn_start(p, sock);
	if (r < 0)
		close(sock);
	return r;
}

int ivshmem_peer_connect_fd(struct ivshmem_peer *p, int fd)
{
	int fl, fdfl, r;

	if (!p || fd < 0)
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	fdfl = fl < 0 ? -1 : fcntl(fd, F_GETFD);
	if (fdfl < 0)
		return -errno;
	if (connected(p))
		return -EISCONN;
	if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
		r = -errno;
	else
		r = conn_start(p, fd);
	if (r < 0) {
		/* A failure leaves the fd as the caller gave it. */
		fcntl(fd, F_SETFL, fl);
		fcntl(fd, F_SETFD, fdfl);
	}
	return r;
}

int ivshmem_peer_disconnect(struct ivshmem_peer *p)
{
	if (!p)
		return -EINVAL;
	if (!connected(p))
		return -ENOTCONN;
	conn_close(p, false);
	p->state = IVSHMEM_PEER_DISCONNECTED;
	p->last_error = -ENOTCONN;
	p->error[0] = '\0';
	return 0;
}

/* ---- inside a guest: a PCI device as the connection ------------------ */

static void pci_close(struct ivshmem_peer *p)
{
	/* The device stops signalling the eventfds before they close, and
	 * its mapping goes with it. */
	pci_dev_close(p->pci);
	p->pci = NULL;
	p->shm = NULL;
	p->shm_size = 0;
	table_clear(p);
	timer_arm(p, 0);
	p->gen++;
}

int ivshmem_peer_open_pci(struct ivshmem_peer *p, const char *address,
			  unsigned flags, char *why, size_t why_len)
{
	const unsigned known = IVSHMEM_PCI_VFIO | IVSHMEM_PCI_SYSFS;
	int fds[IVSHMEM_MAX_VECTORS];
	struct pci_dev *d;
	struct rpeer *own;
	unsigned nvec = 0, v, poll_us;
	void *shm;
	uint64_t size;
	int r, id;

	if (why && why_len)
		why[0] = '\0';
	if (!p || (flags & ~known) || (flags & known) == known)
		return -EINVAL;
	if (connected(p))
		return -EISCONN;
	r = pci_dev_open(address, flags, p->cfg_vectors, &d, fds, &nvec, why,
			 why_len);
	if (r)
		return r;
	pci_dev_shm(d, &shm, &size);
	if (p->cfg_shm_size && size != p->cfg_shm_size) {
		if (why && why_len)
			snprintf(why, why_len, "the device's shared memory is %" PRIu64 " bytes, not the %" PRIu64 " configured",
				 size, p->cfg_shm_size);
		r = -EFBIG;
		goto fail;
	}
	/* A fresh start, as conn_start. The mapping of an earlier server
	 * connection gives way to the device's. */
	table_clear(p);
	close_fd(&p->shm_fd);
	if (p->shm)
		munmap(p->shm, p->shm_size);
	p->shm = NULL;
	p->shm_size = 0;
	id = pci_dev_id(d);
	if (nvec && id < 0) {
		if (why && why_len)
			snprintf(why, why_len, "the device has no peer ID (IVPOSITION): QEMU has not received one from the server");
		r = -ENODATA;
		goto fail;
	}
	p->id = id;
	if (nvec) {
		own = entry_add(p, id);
		if (!own) {
			r = -ENOMEM;
			goto fail;
		}
		/* The fds are the table's from here. */
		memcpy(own->fd, fds, nvec * sizeof(fds[0]));
		own->nvec = nvec;
		nvec = 0;
		for (v = 0; v < own->nvec; v++) {
			if (!(p->claimed & (1ull << v)) &&
			    (r = own_watch(p, own->fd[v], v)) < 0)
				goto fail_table;
		}
		own->announced = true;
	}
	p->id = id;
	p->pci = d;
	p->shm = shm;
	p->shm_size = size;
	p->gen++;
	p->last_error = 0;
	p->error[0] = '\0';
	p->state = IVSHMEM_PEER_READY;
	poll_us = pci_dev_poll_us(d);
	if (poll_us) {
		struct itimerspec its = {
			.it_value.tv_nsec = (long)poll_us * 1000,
			.it_interval.tv_nsec = (long)poll_us * 1000,
		};

		timerfd_settime(p->timer, 0, &its, NULL);
	}
	return 0;
fail_table:
	table_clear(p);
fail:
	p->id = -1;
	for (v = 0; v < nvec; v++)
		close(fds[v]);
	pci_dev_close(d);
	if (why && why_len && !why[0])
		snprintf(why, why_len, "cannot open the device: %s", strerror(-r));
	return r;
}

int ivshmem_peer_get_pci(const struct ivshmem_peer *p,
			 struct ivshmem_pci_info *info)
{
	if (!p || !info)
		return -EINVAL;
	if (!p->pci)
		return -ENODEV;
	pci_dev_info(p->pci, info);
	return 0;
}

/* ---- public: the loop -------------------------------------------------- */

int ivshmem_peer_get_fd(const struct ivshmem_peer *p)
{
	return p ? p->epfd : -EINVAL;
}

static void read_vector(struct ivshmem_peer *p, unsigned v)
{
	struct rpeer *own = lookup(p, p->id);
	uint64_t count;
	ssize_t n;

	/* A callback may have reconnected (or a channel claimed the
	 * vector) since epoll_wait. */
	if (!own || v >= own->nvec || (p->claimed & (1ull << v)))
		return;
	do {
		n = read(own->fd[v], &count, sizeof(count));
	} while (n < 0 && errno == EINTR);
	if (n != sizeof(count))
		return;         /* taken by a direct reader meanwhile */
	if (p->ops.doorbell)
		p->ops.doorbell(p->user, p, v, count);
}

int ivshmem_peer_dispatch(struct ivshmem_peer *p)
{
	/* The socket, the timer and the own vectors. */
	struct epoll_event ev[IVSHMEM_MAX_VECTORS + 2];
	int i, n, ret = 0;

	if (!p)
		return -EINVAL;
	if (p->depth)
		return -EBUSY;
	do {
		n = epoll_wait(p->epfd, ev, IVSHMEM_MAX_VECTORS + 2, 0);
	} while (n < 0 && errno == EINTR);
	p->depth++;
	for (i = 0; i < n; i++) {
		if (ev[i].data.u64 == TAG_SOCK) {
			int r = read_socket(p);

			if (r < 0)
				ret = r;
		} else if (ev[i].data.u64 == TAG_TIMER) {
			timer_fired(p);
		} else {
			read_vector(p, (unsigned)ev[i].data.u64);
		}
	}
	p->depth--;
	return ret;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ivshmem_peer_wait_ready(struct ivshmem_peer *p, int timeout_ms)
{
	int64_t deadline;

	if (!p)
		return -EINVAL;
	if (!connected(p))
		return -ENOTCONN;
	deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	for (;;) {
		struct pollfd pfd = { .fd = p->epfd, .events = POLLIN };
		int wait = -1, r;

		/* Dispatch first: the greeting may already be waiting. */
		r = ivshmem_peer_dispatch(p);
		if (p->state == IVSHMEM_PEER_READY)
			return 0;
		if (r < 0)
			return r;
		if (!connected(p))
			return p->last_error ? p->last_error : -ENOTCONN;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			wait = left > 1000000 ? 1000000 : (int)left;
		}
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* ---- public: what the peer knows --------------------------------------- */

int ivshmem_peer_get_state(const struct ivshmem_peer *p)
{
	return p ? (int)p->state : -EINVAL;
}

int ivshmem_peer_get_id(const struct ivshmem_peer *p)
{
	if (!p)
		return -EINVAL;
	return p->id >= 0 ? p->id : -ENODATA;
}

int ivshmem_peer_get_shm(const struct ivshmem_peer *p, void **addr,
			 uint64_t *size)
{
	if (!p)
		return -EINVAL;
	if (p->shm_fd < 0 && !p->shm)
		return -ENODATA;
	if (addr)
		*addr = p->shm;
	if (size)
		*size = p->shm_size;
	return 0;
}

int ivshmem_peer_get_shm_sealed(const struct ivshmem_peer *p)
{
	if (!p)
		return -EINVAL;
	if (p->pci)
		return p->shm ? 1 : -ENODATA;
	if (p->shm_fd < 0)
		return -ENODATA;
	return ivshmem_shm_sealed(p->shm_fd) == 1;
}

const char *ivshmem_peer_get_error(const struct ivshmem_peer *p)
{
	if (!p)
		return NULL;
	if (p->last_error && p->error[0])
		return p->error;
	return ivshmem_strerror(p->last_error);
}

int ivshmem_peer_get_shm_fd(const struct ivshmem_peer *p)
{
	if (!p)
		return -EINVAL;
	return p->shm_fd >= 0 ? p->shm_fd : -ENODATA;
}

int ivshmem_peer_get_vectors(const struct ivshmem_peer *p, int id)
{
	const struct rpeer *e;

	if (!p)
		return -EINVAL;
	e = lookup(p, id);
	return e ? (int)e->nvec : -ENOENT;
}

int ivshmem_peer_get_peers(const struct ivshmem_peer *p, int *ids,
			   unsigned max)
{
	unsigned i, j, n = 0;

	if (!p || (!ids && max))
		return -EINVAL;
	for (i = 0; i < NPAGES; i++) {
		if (!p->pages[i])
			continue;
		for (j = 0; j < PAGE_IDS; j++) {
			const struct rpeer *e = p->pages[i][j];

			if (!e || e->id == p->id || !e->announced)
				continue;
			if (n < max)
				ids[n] = e->id;
			n++;
		}
	}
	return (int)n;
}

int ivshmem_peer_ring(struct ivshmem_peer *p, int id, unsigned vector)
{
	const struct rpeer *e;
	uint64_t one = 1;
	ssize_t n;

	if (!p)
		return -EINVAL;
	if (p->pci)
		return pci_dev_ring(p->pci, id, vector);
	e = lookup(p, id);
	if (!e)
		return -ENOENT;
	if (vector >= e->nvec)
		return -ERANGE;
	if (e->blocking & (1ull << vector)) {
		/* A blocking eventfd (not from this project's or QEMU's
		 * server) would block a full counter's write. */
		struct pollfd pfd = { .fd = e->fd[vector], .events = POLLOUT };

		if (poll(&pfd, 1, 0) == 0)
			return -EAGAIN;
	}
	do {
		n = write(e->fd[vector], &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return 0;
}

int ivshmem_peer_get_vector_fd(const struct ivshmem_peer *p, unsigned vector)
{
	const struct rpeer *own;

	if (!p)
		return -EINVAL;
	own = lookup(p, p->id);
	if (!own || !own->nvec)
		return -ENODATA;
	if (vector >= own->nvec)
		return -ERANGE;
	return own->fd[vector];
}

/* ---- for channels (peer-private.h) ------------------------------------ */

int peer_claim_vector(struct ivshmem_peer *p, unsigned vector, bool claim)
{
	const struct rpeer *own = lookup(p, p->id);
	uint64_t bit = 1ull << vector;

	if (vector >= IVSHMEM_MAX_VECTORS)
		return -ERANGE;
	if (claim && (p->claimed & bit))
		return -EBUSY;
	if (claim)
		p->claimed |= bit;
	else
		p->claimed &= ~bit;
	if (own && vector < own->nvec) {
		int err;

		if (claim) {
			epoll_ctl(p->epfd, EPOLL_CTL_DEL, own->fd[vector], NULL);
			return 0;
		}
		err = own_watch(p, own->fd[vector], vector);
		if (err && err != -EEXIST)
			return err;
	}
	return 0;
}

unsigned peer_generation(const struct ivshmem_peer *p)
{
	return p->gen;
}

int peer_timer_fd(const struct ivshmem_peer *p)
{
	return p->timer;
}

const char *ivshmem_strerror(int error)
{
	const char *s;

	switch (error) {
	case -ECONNREFUSED:
		return "The server refused the connection or closed it before sending anything (no server, it is full, or it does not allow this user)";
	case -ECONNRESET:
		return "The server closed the connection";
	case -EPROTO:
		return "The server's stream ended in the middle of a message";
	case -EPROTONOSUPPORT:
		return "The server speaks another protocol version (not 0)";
	case -ERANGE:
		return "The server sent a value that is not a peer ID (outside 0..65535, or -1 without an fd)";
	case -ENODATA:
		return "The server's third message is not the shared memory (-1 with an fd)";
	case -ENODEV:
		return "The server's shared-memory fd is not a regular file or memfd";
	case -EFBIG:
		return "The shared memory is empty, not of the required size, or too large to map";
	case -EBADR:
		return "The server attached an fd to a message that must carry none";
	case -EBADMSG:
		return "The server sent a message with more than one fd or with unknown control data";
	case -EMSGSIZE:
		return "The server's control data was truncated (fds were lost)";
	case -EMFILE:
	case -ENFILE:
		return "This process ran out of file descriptors while receiving the server's (too many open files: raise ulimit -n)";
	case -EBADFD:
		return "The server sent a vector fd that is not an eventfd";
	case -EEXIST:
		return "The server sent the shared memory a second time";
	case -EIDRM:
		return "The server announced that this peer itself left";
	case -ESRCH:
		return "The server announced the leave of a peer that is not known";
	default:
		break;
	}
	if (error >= 0)
		return "Success";
	if (error == INT_MIN)
		return "Unknown error";
	s = strerrordesc_np(-error);
	return s ? s : "Unknown error";
}
