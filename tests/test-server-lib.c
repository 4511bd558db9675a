/* SPDX-License-Identifier: MIT */
/*
 * The library's server side on its own, driven by a plain poll() loop (no
 * libev): argument checks, the listening socket, shared memory, and a
 * mesh of real peers over real sockets.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "common.h"

/* ---- a poll() loop around the library --------------------------------- */

#define MAXFD 4096

struct loop {
	short events[MAXFD];    /* 0: not watched */
	bool known[MAXFD];
	int timer_ms;           /* -1: none */
	unsigned joined, left, refused;
	struct ivshmem_server_event last_refused;
	unsigned left_peers[16];        /* ev->peers of the leaves, in order */
	/* ops.authorize: what it answers each time, and what it was told */
	const int *verdicts;
	unsigned nverdicts, asked;
	pid_t auth_pid;
	uid_t auth_uid;
	gid_t auth_gid;
};

static void loop_watch(void *user, int fd, int events)
{
	struct loop *l = user;

	ck_assert_int_lt(fd, MAXFD);
	if (events < 0) {
		ck_assert(l->known[fd]);
		l->known[fd] = false;
		l->events[fd] = 0;
		return;
	}
	l->known[fd] = true;
	l->events[fd] = (short)events;
}

static void loop_timer(void *user, int ms)
{
	((struct loop *)user)->timer_ms = ms;
}

static void loop_event(void *user, const struct ivshmem_server_event *ev)
{
	struct loop *l = user;

	if (ev->type == IVSHMEM_EVENT_PEER_JOINED)
		l->joined++;
	else if (ev->type == IVSHMEM_EVENT_PEER_LEFT) {
		if (l->left < 16)
			l->left_peers[l->left] = ev->peers;
		l->left++;
	}
	else if (ev->type == IVSHMEM_EVENT_REFUSED) {
		l->refused++;
		l->last_refused = *ev;
	}
}

static const struct ivshmem_server_ops loop_ops = {
	.watch = loop_watch,
	.timer = loop_timer,
	.event = loop_event,
};

/* Run the server until SIGTERM; exits 0 if every fd the library watched
 * was released by ivshmem_server_free. */
static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	stop = 1;
}

static void run_loop(const char *path, unsigned vectors, unsigned max_peers)
{
	struct ivshmem_server_config cfg = { .vectors = vectors,
					     .max_peers = max_peers };
	struct ivshmem_server *srv;
	struct loop *l = calloc(1, sizeof(*l));
	struct pollfd *pfd = calloc(MAXFD, sizeof(*pfd));

	l->timer_ms = -1;
	signal(SIGTERM, on_term);
	if (ivshmem_socket_listen(path, &cfg.listen_fd) < 0 ||
	    ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, 1 << 16, &cfg.shm_fd,
			     NULL) < 0 ||
	    ivshmem_server_new(&cfg, &loop_ops, l, &srv) < 0)
		_exit(3);
	while (!stop) {
		nfds_t n = 0;

		for (int fd = 0; fd < MAXFD; fd++)
			if (l->known[fd] && l->events[fd]) {
				pfd[n].fd = fd;
				pfd[n].events = l->events[fd];
				pfd[n].revents = 0;
				n++;
			}
		int r = poll(pfd, n, l->timer_ms >= 0 ? l->timer_ms : 100);

		if (r == 0 && l->timer_ms >= 0) {
			l->timer_ms = -1;
			ivshmem_server_timeout(srv);
		}
		for (nfds_t i = 0; r > 0 && i < n; i++)
			if (pfd[i].revents)
				ivshmem_server_dispatch(srv, pfd[i].fd,
							pfd[i].revents);
	}
	ivshmem_server_free(srv);
	unlink(path);
	for (int fd = 0; fd < MAXFD; fd++)
		if (l->known[fd])
			_exit(4);
	free(pfd);
	free(l);
	_exit(0);
}

static char dir[64], path[128];
static pid_t loop_pid;

static void start_loop(unsigned vectors, unsigned max_peers)
{
	snprintf(dir, sizeof(dir), "/tmp/ivshmem-lib-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	loop_pid = fork();
	ck_assert_int_ge(loop_pid, 0);
	if (loop_pid == 0)
		run_loop(path, vectors, max_peers);
}

static void stop_loop(void)
{
	int status;

	kill(loop_pid, SIGTERM);
	ck_assert_int_eq(waitpid(loop_pid, &status, 0), loop_pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_ne(access(path, F_OK), 0);
	rmdir(dir);
}

START_TEST(mesh_over_poll)
{
	enum { N = 6, V = 3 };
	struct tpeer p[N];

	start_loop(V, 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(tpeer_connect(&p[i], path, V, true), 0);
		ck_assert_int_eq(tpeer_greet(&p[i], 5000), 0);
		ck_assert_int_eq(p[i].id, i);
		ck_assert_uint_eq(p[i].shm_size, 1 << 16);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(tpeer_wait_peers(&p[i], N - 1, 5000), 0);

	/* Every vector of every peer rings through the fds the server
	 * handed out. */
	for (int i = 0; i < N; i++)
		for (unsigned v = 0; v < V; v++) {
			ck_assert_int_eq(tpeer_ring(&p[(i + 1) % N], p[i].id, v), 0);
			ck_assert_int_eq(tpeer_wait_doorbell(&p[i], v, 2000), 1);
		}

	/* A leave reaches everyone else. */
	tpeer_close(&p[2]);
	for (int i = 0; i < N; i++) {
		if (i == 2)
			continue;
		ck_assert_int_eq(tpeer_wait_peers(&p[i], N - 2, 5000), 0);
		ck_assert_int_eq(tpeer_fd(&p[i], 2, 0), -1);
	}
	for (int i = 0; i < N; i++)
		if (i != 2)
			tpeer_close(&p[i]);
	stop_loop();
}
END_TEST

START_TEST(max_peers_refuses_cleanly)
{
	struct tpeer p[3], extra;
	struct tmsg m;

	start_loop(1, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(tpeer_connect(&p[i], path, 1, false), 0);
		ck_assert_int_eq(tpeer_greet(&p[i], 5000), 0);
	}
	/* The third gets EOF without a single message. */
	ck_assert_int_eq(tpeer_connect(&extra, path, 1, false), 0);
	ck_assert_int_eq(tpeer_recv(&extra, 5000, &m, NULL), 0);
	ck_assert_uint_eq(extra.nmsgs, 0);
	tpeer_close(&extra);
	/* After a leave, a new peer fits, with the next ID (next-fit). */
	tpeer_close(&p[0]);
	ck_assert_int_eq(tpeer_wait_peers(&p[1], 0, 5000), 0);
	ck_assert_int_eq(tpeer_connect(&p[2], path, 1, false), 0);
	ck_assert_int_eq(tpeer_greet(&p[2], 5000), 0);
	ck_assert_int_eq(p[2].id, 0);
	ck_assert_int_eq(tpeer_wait_peers(&p[2], 1, 5000), 0);
	tpeer_close(&p[1]);
	tpeer_close(&p[2]);
	stop_loop();
}
END_TEST

/* ---- queries and ringing, in-process ------------------------------------- */

/* Dispatch every watched fd that is ready, until none is. */
static void pump(struct ivshmem_server *srv, struct loop *l)
{
	struct pollfd pfd[64];

	for (int round = 0; round < 100; round++) {
		nfds_t n = 0;

		for (int fd = 0; fd < MAXFD && n < 64; fd++)
			if (l->known[fd] && l->events[fd])
				pfd[n++] = (struct pollfd){ .fd = fd,
							    .events = l->events[fd] };
		if (poll(pfd, n, round == 0 ? 200 : 0) <= 0)
			return;
		for (nfds_t i = 0; i < n; i++)
			if (pfd[i].revents)
				ivshmem_server_dispatch(srv, pfd[i].fd,
							pfd[i].revents);
	}
}

START_TEST(peer_queries_and_ring)
{
	enum { N = 3, V = 3 };
	struct ivshmem_server_config cfg = { .vectors = V };
	struct ivshmem_server_peer_info info;
	struct ivshmem_server *srv;
	struct loop *l = calloc(1, sizeof(*l));
	struct tpeer p[N];
	struct timespec before, after;
	int ids[8];

	l->timer_ms = -1;
	snprintf(dir, sizeof(dir), "/tmp/ivshmem-lib-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	ck_assert_int_eq(ivshmem_socket_listen(path, &cfg.listen_fd), 0);
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, 1 << 16,
					  &cfg.shm_fd, NULL), 0);
	ck_assert_int_eq(ivshmem_server_new(&cfg, &loop_ops, l, &srv), 0);
	ck_assert_int_eq(ivshmem_server_get_vectors(srv), V);
	ck_assert_int_eq(ivshmem_server_get_shm_fd(srv), cfg.shm_fd);
	ck_assert_int_eq(ivshmem_server_get_peers(srv, NULL, 0), 0);
	ck_assert_int_eq(ivshmem_server_get_peers(srv, NULL, 1), -EINVAL);
	ck_assert_int_eq(ivshmem_server_get_peer(srv, 0, NULL), -EINVAL);

	clock_gettime(CLOCK_REALTIME, &before);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(tpeer_connect(&p[i], path, V, false), 0);
		pump(srv, l);
		ck_assert_int_eq(tpeer_greet(&p[i], 2000), 0);
	}
	pump(srv, l);
	clock_gettime(CLOCK_REALTIME, &after);

	ck_assert_int_eq(ivshmem_server_get_peers(srv, ids, 8), N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(ids[i], p[i].id);
	/* Fewer slots: the lowest IDs, and the full count. */
	ids[1] = -7;
	ck_assert_int_eq(ivshmem_server_get_peers(srv, ids, 1), N);
	ck_assert_int_eq(ids[0], 0);
	ck_assert_int_eq(ids[1], -7);

	memset(&info, 0xa5, sizeof(info));
	ck_assert_int_eq(ivshmem_server_get_peer(srv, 1, &info), 0);
	ck_assert_int_eq(info.id, 1);
	ck_assert_uint_eq(info.vectors, V);
	ck_assert_int_eq(info.pid, getpid());
	ck_assert_uint_eq(info.uid, getuid());
	ck_assert_uint_eq(info.gid, getgid());
	ck_assert_uint_eq(info.queued, 0);
	ck_assert(info.connected_ns >= (int64_t)before.tv_sec * 1000000000 +
				       before.tv_nsec);
	ck_assert(info.connected_ns <= (int64_t)after.tv_sec * 1000000000 +
				       after.tv_nsec);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_uint_eq(info.reserved[i], 0);

	/* The ring reaches exactly the vector asked for. */
	ck_assert_int_eq(ivshmem_server_ring(srv, 1, 2), 0);
	ck_assert_int_eq(ivshmem_server_ring(srv, 1, 2), 0);
	ck_assert_int_eq(tpeer_wait_doorbell(&p[1], 2, 1000), 2);
	ck_assert_int_eq(tpeer_wait_doorbell(&p[1], 0, 0), -ETIMEDOUT);
	ck_assert_int_eq(tpeer_wait_doorbell(&p[1], 1, 0), -ETIMEDOUT);
	ck_assert_int_eq(tpeer_wait_doorbell(&p[0], 2, 0), -ETIMEDOUT);
	ck_assert_int_eq(tpeer_wait_doorbell(&p[2], 2, 0), -ETIMEDOUT);

	ck_assert_int_eq(ivshmem_server_ring(srv, 1, V), -ERANGE);
	ck_assert_int_eq(ivshmem_server_ring(srv, N, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_server_ring(srv, -1, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_server_ring(srv, 70000, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_server_get_peer(srv, N, &info), -ENOENT);
	ck_assert_int_eq(ivshmem_server_get_peer(srv, -1, &info), -ENOENT);
	ck_assert_int_eq(ivshmem_server_get_peer(srv, 70000, &info), -ENOENT);

	/* A kicked peer is gone from every query at once. */
	ck_assert_int_eq(ivshmem_server_kick(srv, 0), 0);
	ck_assert_int_eq(ivshmem_server_get_peer(srv, 0, &info), -ENOENT);
	ck_assert_int_eq(ivshmem_server_ring(srv, 0, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_server_get_peers(srv, ids, 8), N - 1);
	ck_assert_int_eq(ids[0], 1);
	ck_assert_int_eq(ids[1], 2);

	ivshmem_server_free(srv);
	for (int i = 0; i < N; i++)
		tpeer_close(&p[i]);
	unlink(path);
	rmdir(dir);
	free(l);
}
END_TEST

/*
 * Two peers close at once: the leave of the first, sent to the second,
 * finds its socket closed, so the second fails while the first's leave is
 * being announced. The count each leave reports is the one its stream of
 * events gives: the second is still there after the first's leave (its
 * own leave follows), as a control client's watch shows it.
 */
START_TEST(leave_counts_follow_the_stream)
{
	enum { N = 3 };
	struct ivshmem_server_config cfg = { .vectors = 1 };
	struct ivshmem_server *srv;
	struct loop *l = calloc(1, sizeof(*l));
	struct tpeer p[N];

	l->timer_ms = -1;
	snprintf(dir, sizeof(dir), "/tmp/ivshmem-lib-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	ck_assert_int_eq(ivshmem_socket_listen(path, &cfg.listen_fd), 0);
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, 1 << 16,
					  &cfg.shm_fd, NULL), 0);
	ck_assert_int_eq(ivshmem_server_new(&cfg, &loop_ops, l, &srv), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(tpeer_connect(&p[i], path, 1, false), 0);
		pump(srv, l);
		ck_assert_int_eq(tpeer_greet(&p[i], 2000), 0);
	}
	pump(srv, l);
	tpeer_drain(&p[0], 50);
	tpeer_drain(&p[1], 50);
	ck_assert_uint_eq(l->joined, N);

	tpeer_close(&p[0]);
	tpeer_close(&p[1]);
	pump(srv, l);
	ck_assert_uint_eq(l->left, 2);
	ck_assert_uint_eq(l->left_peers[0], 2);
	ck_assert_uint_eq(l->left_peers[1], 1);
	ck_assert_int_eq(ivshmem_server_get_peer_count(srv), 1);
	tpeer_expect_leave(&p[2], 0);
	tpeer_expect_leave(&p[2], 1);

	ivshmem_server_free(srv);
	tpeer_close(&p[2]);
	unlink(path);
	rmdir(dir);
	free(l);
}
END_TEST

/* ---- access control: ops.authorize --------------------------------------- */

static int loop_authorize(void *user, pid_t pid, uid_t uid, gid_t gid)
{
	struct loop *l = user;

	ck_assert_uint_lt(l->asked, l->nverdicts);
	l->auth_pid = pid;
	l->auth_uid = uid;
	l->auth_gid = gid;
	return l->verdicts[l->asked++];
}

/* Connect; the server refuses at once: EOF before a single byte. */
static void expect_refused(struct ivshmem_server *srv, struct loop *l,
			   int error)
{
	unsigned refused = l->refused, joined = l->joined;
	struct tpeer x;
	struct tmsg m;

	ck_assert_int_eq(tpeer_connect(&x, path, 1, false), 0);
	pump(srv, l);
	ck_assert_int_eq(tpeer_recv(&x, 2000, &m, NULL), 0);
	ck_assert_uint_eq(x.nmsgs, 0);
	ck_assert_uint_eq(x.in.len, 0);
	ck_assert_int_lt(x.in.fd, 0);
	tpeer_close(&x);
	ck_assert_uint_eq(l->refused, refused + 1);
	ck_assert_uint_eq(l->joined, joined);
	ck_assert_int_eq(l->last_refused.type, IVSHMEM_EVENT_REFUSED);
	ck_assert_int_eq(l->last_refused.id, -1);
	ck_assert_int_eq(l->last_refused.error, error);
	ck_assert_int_eq(l->last_refused.pid, getpid());
	ck_assert_uint_eq(l->last_refused.uid, getuid());
	ck_assert_uint_eq(l->last_refused.gid, getgid());
}

START_TEST(authorize_refuses)
{
	/* Accept, refuse, accept (any value >= 0 does), refuse with
	 * another errno, refuse with a value that is no errno, accept. */
	static const int verdicts[] = { 0, -EPERM, 1, -EACCES, INT_MIN, 0 };
	struct ivshmem_server_ops ops = loop_ops;
	struct ivshmem_server_config cfg = { .vectors = 2 };
	struct ivshmem_server *srv;
	struct loop *l = calloc(1, sizeof(*l));
	struct tpeer a, b, c;
	int ids[4];

	l->timer_ms = -1;
	l->verdicts = verdicts;
	l->nverdicts = G_N_ELEMENTS(verdicts);
	ops.authorize = loop_authorize;
	snprintf(dir, sizeof(dir), "/tmp/ivshmem-lib-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	ck_assert_int_eq(ivshmem_socket_listen(path, &cfg.listen_fd), 0);
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, 1 << 16,
					  &cfg.shm_fd, NULL), 0);
	ck_assert_int_eq(ivshmem_server_new(&cfg, &ops, l, &srv), 0);

	ck_assert_int_eq(tpeer_connect(&a, path, 2, false), 0);
	pump(srv, l);
	ck_assert_int_eq(tpeer_greet(&a, 2000), 0);
	ck_assert_int_eq(a.id, 0);
	/* It is told the credentials of the connection. */
	ck_assert_uint_eq(l->asked, 1);
	ck_assert_int_eq(l->auth_pid, getpid());
	ck_assert_uint_eq(l->auth_uid, getuid());
	ck_assert_uint_eq(l->auth_gid, getgid());

	expect_refused(srv, l, EPERM);
	ck_assert_int_eq(ivshmem_server_get_peer_count(srv), 1);
	ck_assert_uint_eq(l->last_refused.peers, 1);

	/* The refused connection used up no ID: next-fit gives 1. */
	ck_assert_int_eq(tpeer_connect(&b, path, 2, false), 0);
	pump(srv, l);
	ck_assert_int_eq(tpeer_greet(&b, 2000), 0);
	ck_assert_int_eq(b.id, 1);

	expect_refused(srv, l, EACCES);
	expect_refused(srv, l, EPERM);

	ck_assert_int_eq(tpeer_connect(&c, path, 2, false), 0);
	pump(srv, l);
	ck_assert_int_eq(tpeer_greet(&c, 2000), 0);
	ck_assert_int_eq(c.id, 2);
	ck_assert_uint_eq(l->asked, G_N_ELEMENTS(verdicts));

	/* The peers heard of each other and of nothing else: no join and
	 * no leave of a refused connection. */
	ck_assert_int_eq(tpeer_wait_peers(&a, 2, 2000), 0);
	ck_assert_int_eq(tpeer_wait_peers(&b, 2, 2000), 0);
	ck_assert_int_eq(tpeer_wait_peers(&c, 2, 2000), 0);
	pump(srv, l);
	tpeer_expect_quiet(&a, 100);
	tpeer_expect_quiet(&b, 100);
	tpeer_expect_quiet(&c, 100);
	ck_assert_uint_eq(l->joined, 3);
	ck_assert_uint_eq(l->left, 0);
	ck_assert_uint_eq(l->refused, 3);
	ck_assert_int_eq(ivshmem_server_get_peers(srv, ids, 4), 3);
	ck_assert_int_eq(ids[0], 0);
	ck_assert_int_eq(ids[1], 1);
	ck_assert_int_eq(ids[2], 2);

	/* They still ring each other. */
	ck_assert_int_eq(ivshmem_server_ring(srv, 2, 1), 0);
	ck_assert_int_eq(tpeer_wait_doorbell(&c, 1, 1000), 1);

	ivshmem_server_free(srv);
	tpeer_close(&a);
	tpeer_close(&b);
	tpeer_close(&c);
	unlink(path);
	rmdir(dir);
	free(l);
}
END_TEST

/* ---- argument checks ----------------------------------------------------- */

static void nop_watch(void *u, int fd, int ev)
{
}

START_TEST(server_new_rejects_bad_config)
{
	const struct ivshmem_server_ops ops = { .watch = nop_watch };
	const struct ivshmem_server_ops no_watch = { 0 };
	struct ivshmem_server_config c = { .listen_fd = 0, .shm_fd = 0,
					   .vectors = 1 };
	struct ivshmem_server *srv = NULL;

	ck_assert_int_eq(ivshmem_server_new(NULL, &ops, NULL, &srv), -EINVAL);
	ck_assert_int_eq(ivshmem_server_new(&c, NULL, NULL, &srv), -EINVAL);
	ck_assert_int_eq(ivshmem_server_new(&c, &no_watch, NULL, &srv), -EINVAL);
	ck_assert_int_eq(ivshmem_server_new(&c, &ops, NULL, NULL), -EINVAL);
	c.vectors = 0;
	ck_assert_int_eq(ivshmem_server_new(&c, &ops, NULL, &srv), -EINVAL);
	c.vectors = IVSHMEM_MAX_VECTORS + 1;
	ck_assert_int_eq(ivshmem_server_new(&c, &ops, NULL, &srv), -EINVAL);
	c.vectors = 1;
	c.max_peers = IVSHMEM_MAX_PEERS + 1;
	ck_assert_int_eq(ivshmem_server_new(&c, &ops, NULL, &srv), -EINVAL);
	c.max_peers = 0;
	c.listen_fd = -1;
	ck_assert_int_eq(ivshmem_server_new(&c, &ops, NULL, &srv), -EINVAL);
	ck_assert_ptr_null(srv);
	/* The fds still belong to the caller. */
	ck_assert_int_ge(fcntl(0, F_GETFD), 0);

	ck_assert_int_eq(ivshmem_server_dispatch(NULL, 0, POLLIN), -EINVAL);
	ck_assert_int_eq(ivshmem_server_timeout(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_server_kick(NULL, 0), -EINVAL);
	ck_assert_int_eq(ivshmem_server_get_peer_count(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_server_get_peers(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(ivshmem_server_get_peer(NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_server_ring(NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(ivshmem_server_get_shm_fd(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_server_get_vectors(NULL), -EINVAL);
	ivshmem_server_free(NULL);
	ck_assert_str_eq(ivshmem_version(), IVSHMEM_VERSION);
}
END_TEST

START_TEST(listen_errors)
{
	char d[] = "/tmp/ivshmem-lib-XXXXXX", p[160], longp[200];
	int fd, fd2;

	ck_assert_ptr_nonnull(mkdtemp(d));
	snprintf(p, sizeof(p), "%s/sock", d);
	ck_assert_int_eq(ivshmem_socket_listen(NULL, &fd), -EINVAL);
	ck_assert_int_eq(ivshmem_socket_listen("", &fd), -EINVAL);
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(ivshmem_socket_listen(longp, &fd), -ENAMETOOLONG);

	/* A regular file is never replaced. */
	ck_assert_int_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	ck_assert_int_eq(ivshmem_socket_listen(p, &fd), -EEXIST);
	unlink(p);

	/* A live listener is left alone; a stale socket file is replaced. */
	ck_assert_int_eq(ivshmem_socket_listen(p, &fd), 0);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ck_assert_int_eq(ivshmem_socket_listen(p, &fd2), -EADDRINUSE);
	ck_assert_int_eq(access(p, F_OK), 0);
	close(fd);
	ck_assert_int_eq(access(p, F_OK), 0); /* stale now */
	ck_assert_int_eq(ivshmem_socket_listen(p, &fd2), 0);
	close(fd2);
	unlink(p);
	rmdir(d);
}
END_TEST

START_TEST(shm_kinds)
{
	char d[] = "/tmp/ivshmem-lib-XXXXXX", name[64];
	struct stat st;
	int fd, created;

	ck_assert_ptr_nonnull(mkdtemp(d));
	snprintf(name, sizeof(name), "ivshmem-lib-%ld", (long)getpid());

	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, 0, &fd, NULL),
			 -EINVAL);
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_POSIX, NULL, 4096, &fd,
					  NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_POSIX, "a/b", 4096, &fd,
					  NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL,
					  (uint64_t)INT64_MAX + 1, &fd, NULL),
			 -EFBIG);
	ck_assert_int_eq(ivshmem_shm_open(7, NULL, 4096, &fd, NULL), -EINVAL);

	/* memfd: sealed against resizing. */
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, 8192, &fd,
					  NULL), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 8192);
	ck_assert_int_ne(ftruncate(fd, 4096), 0);
	ck_assert_int_ne(ftruncate(fd, 16384), 0);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);

	/* A directory: nothing stays in it. */
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_DIR, d, 3 << 20, &fd,
					  NULL), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 3 << 20);
	close(fd);
	ck_assert_int_eq(rmdir(d), 0);

	/* POSIX: created, then reopened with its content. */
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_POSIX, name, 4096, &fd,
					  &created), 0);
	ck_assert_int_eq(created, 1);
	ck_assert_int_eq(pwrite(fd, "hello", 5, 100), 5);
	close(fd);
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_POSIX, name, 4096, &fd,
					  &created), 0);
	ck_assert_int_eq(created, 0);
	char buf[6] = "";

	ck_assert_int_eq(pread(fd, buf, 5, 100), 5);
	ck_assert_str_eq(buf, "hello");
	close(fd);
	/* Another size: refused, and the object is not resized. */
	fd = -1;
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_POSIX, name, 2048, &fd,
					  &created), -EEXIST);
	ck_assert_int_eq(fd, -1);
	snprintf(buf, sizeof(buf), "%s", "");
	char dev[96];

	snprintf(dev, sizeof(dev), "/dev/shm/%s", name);
	ck_assert_int_eq(stat(dev, &st), 0);
	ck_assert_int_eq(st.st_size, 4096);
	char full[80];

	snprintf(full, sizeof(full), "/%s", name);
	ck_assert_int_eq(shm_unlink(full), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("server-lib");
	TCase *api = tcase_with("api", 0, NULL);
	TCase *loop = tcase_with("poll-loop", 0, NULL);

	tcase_add_test(api, server_new_rejects_bad_config);
	tcase_add_test(api, listen_errors);
	tcase_add_test(api, shm_kinds);
	tcase_add_test(loop, mesh_over_poll);
	tcase_add_test(loop, max_peers_refuses_cleanly);
	tcase_add_test(loop, peer_queries_and_ring);
	tcase_add_test(loop, leave_counts_follow_the_stream);
	tcase_add_test(loop, authorize_refuses);
	tcase_set_timeout(loop, 60);
	suite_add_tcase(s, api);
	suite_add_tcase(s, loop);
	return run_suite(s);
}
