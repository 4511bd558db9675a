/* SPDX-License-Identifier: MIT */
/*
 * The server side: accept, give each peer an ID and V eventfds, greet it,
 * tell the others it joined or left. Driven entirely by the caller's loop.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ivshmem.h"
#include "table-private.h"
#include "wire-private.h"

/* Connections accepted per dispatch of the listening socket, so that a
 * flood of connects cannot starve the peers already connected. */
#define ACCEPT_BATCH 64
/* While fds are exhausted, retry accepting this often. */
#define ACCEPT_RETRY_MS 250

struct peer {
	int id;
	int sock;
	int want;               /* events currently asked of ops->watch */
	bool dead;              /* marked for removal */
	int reason, error;      /* why it is dead */
	unsigned idx;           /* index in srv->peers */
	size_t limit;           /* queue bound */
	struct ucred cred;
	int64_t connected_ns;       /* CLOCK_REALTIME at accept */
	struct ivshmem_outq q;
	struct ivshmem_fdref *vec[]; /* srv->vectors eventfds */
};

struct ivshmem_server {
	struct ivshmem_server_ops ops;
	void *user;
	unsigned vectors;
	unsigned queue_limit;
	int listen_fd;
	bool accept_paused;
	/* Out of fds since the last ACCEPT_PAUSED event: pausing again is
	 * not news, and ACCEPT_RESUMED waits until accepting works. */
	bool accept_short;
	struct ivshmem_fdref *shm;
	struct ivshmem_table table;

	struct peer **peers;    /* live and dead-but-not-yet-removed */
	unsigned npeers, peers_cap;
	unsigned nlive;

	struct peer **byfd;     /* socket fd -> peer */
	unsigned byfd_cap;

	struct peer **doomed;   /* marked dead, leave not yet announced */
	unsigned ndoomed, doomed_cap;
};

IVSHMEM_PRINTF(3, 4)
static void srv_log(struct ivshmem_server *srv, int prio, const char *fmt, ...)
{
	va_list ap;

	if (!srv->ops.log)
		return;
	va_start(ap, fmt);
	srv->ops.log(srv->user, prio, fmt, ap);
	va_end(ap);
}

static void srv_event(struct ivshmem_server *srv, int type, const struct peer *p,
		      int reason, int error)
{
	struct ivshmem_server_event ev = {
		.type = type,
		.id = p ? p->id : -1,
		.pid = p ? p->cred.pid : -1,
		.uid = p ? p->cred.uid : (uid_t)-1,
		.gid = p ? p->cred.gid : (gid_t)-1,
		.reason = reason,
		.error = error,
		/* As the events tell it: a peer marked dead whose leave
		 * is still to be announced is counted until its leave. */
		.peers = srv->nlive + srv->ndoomed,
	};

	if (srv->ops.event)
		srv->ops.event(srv->user, &ev);
}

static int grow(void *arrp, unsigned *cap, unsigned need, size_t elem)
{
	void **arr = arrp;
	unsigned ncap = *cap ? *cap : 16;
	void *n;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	n = realloc(*arr, (size_t)ncap * elem);
	if (!n)
		return -ENOMEM;
	memset((char *)n + (size_t)*cap * elem, 0,
	       (size_t)(ncap - *cap) * elem);
	*arr = n;
	*cap = ncap;
	return 0;
}

static void set_want(struct ivshmem_server *srv, struct peer *p, int want)
{
	if (p->want == want)
		return;
	p->want = want;
	srv->ops.watch(srv->user, p->sock, want);
}

/* Mark p for removal. Its leave is announced by process_doomed(). */
static void peer_fail(struct ivshmem_server *srv, struct peer *p, int reason,
		      int error)
{
	if (p->dead)
		return;
	if (grow(&srv->doomed, &srv->doomed_cap, srv->ndoomed + 1,
		 sizeof(*srv->doomed)) < 0) {
		/* Cannot happen in practice: doomed_cap grows with peers_cap
		 * in add_peer(). */
		abort();
	}
	p->dead = true;
	p->reason = reason;
	p->error = error;
	srv->nlive--;
	srv->doomed[srv->ndoomed++] = p;
}

static void peer_push(struct ivshmem_server *srv, struct peer *p,
		      int64_t value, struct ivshmem_fdref *fd)
{
	if (p->dead)
		return;
	if (p->q.count >= p->limit) {
		peer_fail(srv, p, IVSHMEM_LEAVE_QUEUE_FULL, 0);
		return;
	}
	if (ivshmem_outq_push(&p->q, value, fd) < 0)
		peer_fail(srv, p, IVSHMEM_LEAVE_ERROR, ENOMEM);
}

static void peer_flush(struct ivshmem_server *srv, struct peer *p)
{
	int r;

	if (p->dead)
		return;
	r = ivshmem_outq_flush(&p->q, p->sock);
	if (r == 0) {
		ivshmem_outq_trim(&p->q);
		set_want(srv, p, POLLIN);
	} else if (r == -EAGAIN) {
		set_want(srv, p, POLLIN | POLLOUT);
	} else if (r == -EPIPE || r == -ECONNRESET) {
		peer_fail(srv, p, IVSHMEM_LEAVE_CLOSED, 0);
	} else {
		peer_fail(srv, p, IVSHMEM_LEAVE_ERROR, -r);
	}
}

static void accept_pause(struct ivshmem_server *srv, int err)
{
	if (srv->accept_paused)
		return;
	srv->accept_paused = true;
	srv->ops.watch(srv->user, srv->listen_fd, 0);
	if (srv->ops.timer)
		srv->ops.timer(srv->user, ACCEPT_RETRY_MS);
	if (!srv->accept_short) {
		srv->accept_short = true;
		srv_event(srv, IVSHMEM_EVENT_ACCEPT_PAUSED, NULL, 0, err);
	}
}

/* fds were freed: try accepting again, from the loop (at once, on the
 * timer). The shortage is over only once an accept works. */
static void accept_resume(struct ivshmem_server *srv)
{
	if (!srv->accept_paused)
		return;
	if (srv->ops.timer) {
		srv->ops.timer(srv->user, 0);
		return;
	}
	srv->accept_paused = false;
	srv->ops.watch(srv->user, srv->listen_fd, POLLIN);
}

/* Every waiting connection was accepted without running out (the
 * backlog is empty): a shortage is over. Not before: while the
 * connections that waited come in, fds may run short again, and that is
 * the same shortage. */
static void accept_ok(struct ivshmem_server *srv)
{
	if (!srv->accept_short)
		return;
	srv->accept_short = false;
	srv_event(srv, IVSHMEM_EVENT_ACCEPT_RESUMED, NULL, 0, 0);
}

static void vectors_unref(struct ivshmem_server *srv,
			  struct ivshmem_fdref **vec)
{
	for (unsigned v = 0; v < srv->vectors; v++)
		ivshmem_fdref_unref(vec[v]);
}

static void peer_destroy(struct ivshmem_server *srv, struct peer *p)
{
	if (p->sock >= 0) {
		srv->ops.watch(srv->user, p->sock, -1);
		srv->byfd[p->sock] = NULL;
		close(p->sock);
	}
	ivshmem_outq_clear(&p->q);
	vectors_unref(srv, p->vec);
	free(p);
}

/* Remove p from the peer array and the ID table, free it. */
static void peer_remove(struct ivshmem_server *srv, struct peer *p)
{
	struct peer *last = srv->peers[--srv->npeers];

	srv->peers[p->idx] = last;
	last->idx = p->idx;
	ivshmem_table_release(&srv->table, p->id);
	peer_destroy(srv, p);
}

/* Announce and remove every peer marked dead, including those that die
 * while the leaves are being sent. */
static void process_doomed(struct ivshmem_server *srv)
{
	while (srv->ndoomed > 0) {
		struct peer *p = srv->doomed[--srv->ndoomed];
		unsigned i;

		/* The leave goes to every live peer: each of them learnt of
		 * p in its greeting or through p's join. */
		for (i = 0; i < srv->npeers; i++)
			peer_push(srv, srv->peers[i], p->id, NULL);
		for (i = 0; i < srv->npeers; i++)
			peer_flush(srv, srv->peers[i]);

		struct peer gone = *p; /* for the event, after the free */
		int reason = p->reason, error = p->error;

		peer_remove(srv, p);
		srv_event(srv, IVSHMEM_EVENT_PEER_LEFT, &gone, reason, error);
		/* fds were freed: if accepting paused for lack of them,
		 * try again. */
		accept_resume(srv);
	}
}

static void refuse(struct ivshmem_server *srv, int sock, const struct ucred *c,
		   int err)
{
	struct peer tmp = { .id = -1, .cred = *c };

	close(sock);
	srv_event(srv, IVSHMEM_EVENT_REFUSED, &tmp, 0, err);
}

/* Make the eventfds of the next peer. 0 or a negative errno. */
static int vectors_new(struct ivshmem_server *srv, struct ivshmem_fdref **vec)
{
	for (unsigned v = 0; v < srv->vectors; v++) {
		int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		int r = efd < 0 ? -errno : 0;

		if (efd >= 0 && !(vec[v] = ivshmem_fdref_new(efd))) {
			close(efd);
			r = -ENOMEM;
		}
		if (r < 0) {
			while (v > 0)
				ivshmem_fdref_unref(vec[--v]);
			return r;
		}
	}
	return 0;
}

/* Make sock a peer with the eventfds vec (taken over), or refuse it. */
static void add_peer(struct ivshmem_server *srv, int sock,
		     struct ivshmem_fdref **vec)
{
	struct ucred cred = { .pid = -1, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	struct timespec now;
	struct peer *p = NULL;
	unsigned v, i;
	int id = -1, err = ENOMEM;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		cred = (struct ucred){ .pid = -1, .uid = (uid_t)-1,
				       .gid = (gid_t)-1 };

	/* Before anything is queued or an ID taken: a refused connection
	 * reads EOF and nothing else, and uses up no ID. */
	if (srv->ops.authorize) {
		int r = srv->ops.authorize(srv->user, cred.pid, cred.uid,
					   cred.gid);

		if (r < 0) {
			err = r >= -4095 ? -r : EPERM;
			goto fail;
		}
	}

	if ((unsigned)sock >= srv->byfd_cap &&
	    grow(&srv->byfd, &srv->byfd_cap, (unsigned)sock + 1,
		 sizeof(*srv->byfd)) < 0)
		goto fail;
	if (grow(&srv->peers, &srv->peers_cap, srv->npeers + 1,
		 sizeof(*srv->peers)) < 0 ||
	    grow(&srv->doomed, &srv->doomed_cap, srv->peers_cap,
		 sizeof(*srv->doomed)) < 0)
		goto fail;
	p = calloc(1, sizeof(*p) + srv->vectors * sizeof(p->vec[0]));
	if (!p)
		goto fail;
	p->sock = -1;
	p->cred = cred;
	clock_gettime(CLOCK_REALTIME, &now);
	p->connected_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	ivshmem_outq_init(&p->q);
	/* From here on the eventfds are p's. */
	for (v = 0; v < srv->vectors; v++)
		p->vec[v] = vec[v];

	id = ivshmem_table_alloc(&srv->table, p);
	if (id < 0) {
		err = -id;
		goto fail;
	}
	p->id = id;

	/* The greeting (ivshmem-protocol(7) rule 17). */
	ivshmem_outq_push(&p->q, IVSHMEM_PROTOCOL_VERSION, NULL);
	ivshmem_outq_push(&p->q, id, NULL);
	ivshmem_outq_push(&p->q, -1, srv->shm);
	for (i = 0; i < srv->npeers; i++) {
		struct peer *o = srv->peers[i];

		if (o->dead)
			continue;
		for (v = 0; v < srv->vectors; v++)
			ivshmem_outq_push(&p->q, o->id, o->vec[v]);
	}
	for (v = 0; v < srv->vectors; v++)
		ivshmem_outq_push(&p->q, id, p->vec[v]);
	/* Fewer messages queued: a push ran out of memory. */
	if (p->q.count != 3 + (size_t)(srv->nlive + 1) * srv->vectors)
		goto fail;
	p->limit = p->q.count + srv->queue_limit;

	p->sock = sock;
	srv->byfd[sock] = p;
	p->idx = srv->npeers;
	srv->peers[srv->npeers++] = p;
	srv->nlive++;

	p->want = POLLIN | POLLOUT;
	srv->ops.watch(srv->user, sock, p->want);
	peer_flush(srv, p);

	/* Tell everyone else. */
	for (i = 0; i < srv->npeers; i++) {
		struct peer *o = srv->peers[i];

		if (o == p)
			continue;
		for (v = 0; v < srv->vectors; v++)
			peer_push(srv, o, id, p->vec[v]);
		peer_flush(srv, o);
	}
	/* Last: the callback may kick p, whose join is out by now. */
	srv_event(srv, IVSHMEM_EVENT_PEER_JOINED, p, 0, 0);
	return;

fail:
	if (id >= 0)
		ivshmem_table_release(&srv->table, id);
	if (p)
		peer_destroy(srv, p);
	else
		vectors_unref(srv, vec);
	refuse(srv, sock, &cred, err);
}

static void do_accept(struct ivshmem_server *srv)
{
	struct ivshmem_fdref *vec[IVSHMEM_MAX_VECTORS];

	for (int i = 0; i < ACCEPT_BATCH && !srv->accept_paused; i++) {
		/*
		 * The eventfds before the connection: when fds run out, it
		 * then waits in the backlog until some are freed, rather
		 * than being accepted only to be refused.
		 */
		int r = vectors_new(srv, vec);

		if (r < 0) {
			accept_pause(srv, -r);
			return;
		}

		int fd = accept4(srv->listen_fd, NULL, NULL,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			int err = errno;

			vectors_unref(srv, vec);
			switch (err) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EAGAIN:
				accept_ok(srv);
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				accept_pause(srv, err);
				return;
			default:
				/* Not transient as far as we know: retry on
				 * the timer rather than spin on a listening
				 * socket that stays readable. */
				srv_log(srv, IVSHMEM_LOG_WARNING,
					"accept failed: %s", strerror(err));
				accept_pause(srv, err);
				return;
			}
		}
		add_peer(srv, fd, vec);
		process_doomed(srv);
	}
}

static void peer_readable(struct ivshmem_server *srv, struct peer *p)
{
	char c;
	ssize_t n;

	do {
		n = recv(p->sock, &c, 1, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		peer_fail(srv, p, IVSHMEM_LEAVE_PROTOCOL, 0);
	else if (n == 0)
		peer_fail(srv, p, IVSHMEM_LEAVE_CLOSED, 0);
	else if (errno != EAGAIN)
		peer_fail(srv, p, errno == ECONNRESET ? IVSHMEM_LEAVE_CLOSED :
				  IVSHMEM_LEAVE_ERROR, errno);
}

IVSHMEM_EXPORT
int ivshmem_server_dispatch(struct ivshmem_server *srv, int fd, int revents)
{
	struct peer *p;

	if (!srv || fd < 0)
		return -EINVAL;
	if (fd == srv->listen_fd) {
		if (!srv->accept_paused)
			do_accept(srv);
		return 0;
	}
	if ((unsigned)fd >= srv->byfd_cap || !(p = srv->byfd[fd]))
		return 0;
	if (revents & POLLOUT)
		peer_flush(srv, p);
	if (revents & (POLLIN | POLLHUP | POLLERR))
		peer_readable(srv, p);
	process_doomed(srv);
	return 0;
}

IVSHMEM_EXPORT
int ivshmem_server_timeout(struct ivshmem_server *srv)
{
	if (!srv)
		return -EINVAL;
	if (srv->accept_paused) {
		/* Try again; accept_pause() re-arms if still out of fds. */
		srv->accept_paused = false;
		srv->ops.watch(srv->user, srv->listen_fd, POLLIN);
		do_accept(srv);
	}
	return 0;
}

IVSHMEM_EXPORT
int ivshmem_server_kick(struct ivshmem_server *srv, int id)
{
	struct peer *p;

	if (!srv)
		return -EINVAL;
	p = ivshmem_table_get(&srv->table, id);
	if (!p || p->dead)
		return -ENOENT;
	peer_fail(srv, p, IVSHMEM_LEAVE_KICKED, 0);
	process_doomed(srv);
	return 0;
}

IVSHMEM_EXPORT
int ivshmem_server_get_peer_count(const struct ivshmem_server *srv)
{
	if (!srv)
		return -EINVAL;
	return (int)srv->nlive;
}

/* The live peer with this ID, or NULL. */
static struct peer *live_peer(const struct ivshmem_server *srv, int id)
{
	struct peer *p = ivshmem_table_get(&srv->table, id);

	return p && !p->dead ? p : NULL;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

IVSHMEM_EXPORT
int ivshmem_server_get_peers(const struct ivshmem_server *srv, int *ids,
			     unsigned max)
{
	unsigned n = 0;

	if (!srv || (!ids && max > 0))
		return -EINVAL;
	if (max >= srv->nlive) {
		for (unsigned i = 0; i < srv->npeers; i++)
			if (!srv->peers[i]->dead)
				ids[n++] = srv->peers[i]->id;
		if (n > 1)
			qsort(ids, n, sizeof(*ids), cmp_int);
		return (int)n;
	}
	/* Fewer slots than peers: the lowest IDs, from the table. */
	for (unsigned id = 0; id < srv->table.size && n < max; id++)
		if (live_peer(srv, (int)id))
			ids[n++] = (int)id;
	return (int)srv->nlive;
}

IVSHMEM_EXPORT
int ivshmem_server_get_peer(const struct ivshmem_server *srv, int id,
			    struct ivshmem_server_peer_info *info)
{
	const struct peer *p;

	if (!srv || !info)
		return -EINVAL;
	p = live_peer(srv, id);
	if (!p)
		return -ENOENT;
	*info = (struct ivshmem_server_peer_info){
		.id = p->id,
		.vectors = srv->vectors,
		.pid = p->cred.pid,
		.uid = p->cred.uid,
		.gid = p->cred.gid,
		.queued = p->q.count > UINT_MAX ? UINT_MAX : (unsigned)p->q.count,
		.connected_ns = p->connected_ns,
	};
	return 0;
}

IVSHMEM_EXPORT
int ivshmem_server_ring(struct ivshmem_server *srv, int id, unsigned vector)
{
	const struct peer *p;
	uint64_t one = 1;
	ssize_t n;

	if (!srv)
		return -EINVAL;
	p = live_peer(srv, id);
	if (!p)
		return -ENOENT;
	if (vector >= srv->vectors)
		return -ERANGE;
	do {
		n = write(p->vec[vector]->fd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == sizeof(one) ? 0 : -EIO;
}

IVSHMEM_EXPORT
int ivshmem_server_get_shm_fd(const struct ivshmem_server *srv)
{
	if (!srv)
		return -EINVAL;
	return srv->shm->fd;
}

IVSHMEM_EXPORT
int ivshmem_server_get_vectors(const struct ivshmem_server *srv)
{
	if (!srv)
		return -EINVAL;
	return (int)srv->vectors;
}

IVSHMEM_EXPORT
int ivshmem_server_new(const struct ivshmem_server_config *config,
		       const struct ivshmem_server_ops *ops, void *user,
		       struct ivshmem_server **out)
{
	struct ivshmem_server *srv;
	unsigned max_peers;
	int r;

	if (!config || !ops || !ops->watch || !out || config->listen_fd < 0 ||
	    config->shm_fd < 0 || config->vectors < 1 ||
	    config->vectors > IVSHMEM_MAX_VECTORS ||
	    config->max_peers > IVSHMEM_MAX_PEERS)
		return -EINVAL;
	if (fcntl(config->listen_fd, F_GETFD) < 0 ||
	    fcntl(config->shm_fd, F_GETFD) < 0)
		return -EBADF;
	max_peers = config->max_peers ? config->max_peers : IVSHMEM_MAX_PEERS;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->ops = *ops;
	srv->user = user;
	srv->vectors = config->vectors;
	srv->queue_limit = config->queue_limit ? config->queue_limit :
						 IVSHMEM_DEFAULT_QUEUE_LIMIT;
	r = ivshmem_table_init(&srv->table, max_peers);
	if (r < 0) {
		free(srv);
		return r;
	}
	srv->shm = ivshmem_fdref_new(config->shm_fd);
	if (!srv->shm) {
		ivshmem_table_fini(&srv->table);
		free(srv);
		return -ENOMEM;
	}
	srv->listen_fd = config->listen_fd;
	srv->ops.watch(srv->user, srv->listen_fd, POLLIN);
	*out = srv;
	return 0;
}

IVSHMEM_EXPORT
void ivshmem_server_free(struct ivshmem_server *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; i < srv->npeers; i++)
		peer_destroy(srv, srv->peers[i]);
	if (srv->ops.timer && srv->accept_paused)
		srv->ops.timer(srv->user, -1);
	srv->ops.watch(srv->user, srv->listen_fd, -1);
	close(srv->listen_fd);
	ivshmem_fdref_unref(srv->shm);
	ivshmem_table_fini(&srv->table);
	free(srv->peers);
	free(srv->byfd);
	free(srv->doomed);
	free(srv);
}

IVSHMEM_EXPORT
const char *ivshmem_version(void)
{
	return IVSHMEM_VERSION;
}
