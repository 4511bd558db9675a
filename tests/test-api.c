/* SPDX-License-Identifier: MIT */
/*
 * Every exported function with each kind of bad argument, against the
 * rules of libivshmem(3) "Conventions": the documented error, and nothing
 * else changed (no fd opened, closed or leaked; an fd handed in and
 * refused is still open with the flags it had; the objects' state, the
 * out-pointers and the callbacks untouched). And ops and config are
 * copied by the calls that take them.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define VECTORS 2
#define MAXFD 1024

/* ---- a server and two peers: one ready, one never connected ----------- */

struct fixture {
	char dir[64];
	char path[128];
	short events[MAXFD];    /* what the server asked to watch */
	struct ivshmem_server *srv;
	struct ivshmem_peer *ready;     /* connected to srv, READY */
	struct ivshmem_peer *idle;      /* never connected */
	int ready_id;
	unsigned server_events, peer_calls;
	/* The fd a row hands to the library, and its flags before. */
	int fd, fl, fdfl;
};

static struct fixture fx;

static void fx_watch(void *user, int fd, int events)
{
	struct fixture *f = user;

	ck_assert_int_lt(fd, MAXFD);
	f->events[fd] = events < 0 ? 0 : (short)events;
}

static void fx_event(void *user, const struct ivshmem_server_event *ev)
{
	(void)ev;
	((struct fixture *)user)->server_events++;
}

static void fx_joined(void *user, struct ivshmem_peer *p, int id,
		      unsigned vectors)
{
	(void)p;
	(void)id;
	(void)vectors;
	((struct fixture *)user)->peer_calls++;
}

static void fx_ready(void *user, struct ivshmem_peer *p)
{
	(void)p;
	((struct fixture *)user)->peer_calls++;
}

static void fx_left(void *user, struct ivshmem_peer *p, int id)
{
	(void)p;
	(void)id;
	((struct fixture *)user)->peer_calls++;
}

static void fx_doorbell(void *user, struct ivshmem_peer *p, unsigned v,
			uint64_t count)
{
	(void)p;
	(void)v;
	(void)count;
	((struct fixture *)user)->peer_calls++;
}

static void fx_disconnected(void *user, struct ivshmem_peer *p, int error)
{
	(void)p;
	(void)error;
	((struct fixture *)user)->peer_calls++;
}

static const struct ivshmem_server_ops srv_ops = {
	.watch = fx_watch,
	.event = fx_event,
};
static const struct ivshmem_peer_ops peer_ops = {
	.ready = fx_ready,
	.joined = fx_joined,
	.left = fx_left,
	.doorbell = fx_doorbell,
	.disconnected = fx_disconnected,
};
static const struct ivshmem_peer_config peer_cfg = { .vectors = VECTORS };

/* One round of the server's and the ready peer's loops. */
static void pump(struct fixture *f, int timeout_ms)
{
	struct pollfd pfd[MAXFD + 1];
	int n = 0, i;

	for (i = 0; i < MAXFD; i++)
		if (f->events[i])
			pfd[n++] = (struct pollfd){ .fd = i,
						    .events = f->events[i] };
	pfd[n++] = (struct pollfd){ .fd = ivshmem_peer_get_fd(f->ready),
				    .events = POLLIN };
	ck_assert_int_ge(poll(pfd, (nfds_t)n, timeout_ms), 0);
	for (i = 0; i < n - 1; i++)
		if (pfd[i].revents)
			ck_assert_int_eq(ivshmem_server_dispatch(f->srv,
					 pfd[i].fd, pfd[i].revents), 0);
	if (pfd[n - 1].revents)
		ck_assert_int_eq(ivshmem_peer_dispatch(f->ready), 0);
}

/* The temp dir, the socket and the shm for cfg. */
static void fx_prepare(struct ivshmem_server_config *cfg)
{
	memset(&fx, 0, sizeof(fx));
	fx.fd = -1;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/ivshmem-api-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.dir));
	snprintf(fx.path, sizeof(fx.path), "%s/sock", fx.dir);
	cfg->vectors = VECTORS;
	ck_assert_int_eq(ivshmem_socket_listen(fx.path, &cfg->listen_fd), 0);
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, 4096,
					  &cfg->shm_fd, NULL), 0);
}

/* Connect fx.ready to fx.srv and run both until the peer is ready. */
static void fx_join(void)
{
	int i;

	ck_assert_int_eq(ivshmem_peer_connect(fx.ready, fx.path), 0);
	for (i = 0; i < 500 && ivshmem_peer_get_state(fx.ready) !=
				IVSHMEM_PEER_READY; i++)
		pump(&fx, 10);
	ck_assert_int_eq(ivshmem_peer_get_state(fx.ready), IVSHMEM_PEER_READY);
	fx.ready_id = ivshmem_peer_get_id(fx.ready);
	ck_assert_int_ge(fx.ready_id, 0);
	/* Let the server finish sending; nothing more is due. */
	for (i = 0; i < 5; i++)
		pump(&fx, 0);
}

static void fx_setup(void)
{
	struct ivshmem_server_config cfg = { 0 };

	fx_prepare(&cfg);
	ck_assert_int_eq(ivshmem_server_new(&cfg, &srv_ops, &fx, &fx.srv), 0);
	ck_assert_int_eq(ivshmem_peer_new(&peer_cfg, &peer_ops, &fx,
					  &fx.ready), 0);
	ck_assert_int_eq(ivshmem_peer_new(&peer_cfg, &peer_ops, &fx,
					  &fx.idle), 0);
	fx_join();
}

static void fx_teardown(void)
{
	if (fx.fd >= 0)
		close(fx.fd);
	ivshmem_peer_free(fx.ready);
	ivshmem_peer_free(fx.idle);
	ivshmem_server_free(fx.srv);
	unlink(fx.path);
	rmdir(fx.dir);
}

/* ---- what a row hands in ----------------------------------------------- */

/* A fresh socket for the row (the other end is closed: only the fd
 * itself matters), remembered with its flags. */
static int given_socket(struct fixture *f)
{
	int sp[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	close(sp[0]);
	f->fd = sp[1];
	f->fl = fcntl(f->fd, F_GETFL);
	f->fdfl = fcntl(f->fd, F_GETFD);
	return f->fd;
}

/* A regular file: epoll refuses it (EPERM). */
static int given_file(struct fixture *f)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/file", f->dir);
	f->fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(f->fd, 0);
	unlink(p);
	f->fl = fcntl(f->fd, F_GETFL);
	f->fdfl = fcntl(f->fd, F_GETFD);
	return f->fd;
}

/* An fd number that is not open. */
static int closed_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	close(fd);
	return fd;
}

static char *long_path(void)
{
	static char p[300];

	memset(p, 'x', sizeof(p) - 1);
	p[0] = '/';
	p[sizeof(p) - 1] = '\0';
	return p;
}

/* server_new with the given fds and one change to a good config. */
enum cfg_change { CFG_NONE, CFG_VECTORS_0, CFG_VECTORS_65, CFG_MAX_PEERS,
		  CFG_LISTEN_NEG, CFG_SHM_NEG, CFG_LISTEN_CLOSED,
		  CFG_SHM_CLOSED };

static int server_new_with(struct fixture *f, enum cfg_change change,
			   const struct ivshmem_server_ops *ops, bool no_out)
{
	struct ivshmem_server_config cfg = { .vectors = 1 };
	struct ivshmem_server *srv = (struct ivshmem_server *)&cfg;
	int r;

	cfg.listen_fd = given_socket(f);
	cfg.shm_fd = f->fd;
	switch (change) {
	case CFG_NONE: break;
	case CFG_VECTORS_0: cfg.vectors = 0; break;
	case CFG_VECTORS_65: cfg.vectors = IVSHMEM_MAX_VECTORS + 1; break;
	case CFG_MAX_PEERS: cfg.max_peers = IVSHMEM_MAX_PEERS + 1; break;
	case CFG_LISTEN_NEG: cfg.listen_fd = -1; break;
	case CFG_SHM_NEG: cfg.shm_fd = -1; break;
	case CFG_LISTEN_CLOSED: cfg.listen_fd = closed_fd(); break;
	case CFG_SHM_CLOSED: cfg.shm_fd = closed_fd(); break;
	}
	r = ivshmem_server_new(&cfg, ops, f, no_out ? NULL : &srv);
	/* *out is written only on success. */
	ck_assert_ptr_eq(srv, (struct ivshmem_server *)&cfg);
	return r;
}

/* ---- the table --------------------------------------------------------- */

static const struct ivshmem_server_ops no_watch_ops = { .event = fx_event };
static const struct ivshmem_peer_config too_many_vectors = {
	.vectors = IVSHMEM_MAX_VECTORS + 1,
};
static const struct ivshmem_peer_config unknown_flags = { .flags = 1u << 7 };

struct row {
	const char *call;       /* NULL: no such row */
	int expect;
	bool gives_fd;          /* it hands in f->fd, which must stay */
};

/* Row n: `call` must return `err`. */
#define ROW(n, err, gives, call_)					\
	case n:								\
		row->call = #call_;					\
		row->expect = err;					\
		row->gives_fd = gives;					\
		r = (call_);						\
		break

/* Run row i; row->call is NULL when there is no row i. */
static int call_row(unsigned i, struct fixture *f, struct row *row)
{
	struct ivshmem_server_peer_info info;
	struct ivshmem_server *s = f->srv;
	struct ivshmem_peer *rp = f->ready, *ip = f->idle;
	struct ivshmem_peer *pp = (struct ivshmem_peer *)f;
	const int id = f->ready_id;
	void *addr = f;
	uint64_t size = 7, size64 = 7;
	int ids[2], fd = -2, r = 1;
	/* For the channel rows: a region with no layout, specs. */
	static uint64_t region[64];
	static const struct ivshmem_channel_spec spec = { .name = "c" };
	static const struct ivshmem_channel_spec bad_ring = {
		.name = "c", .ring_size = { 1000, 1000 },
	};
	static const struct ivshmem_channel_spec bad_name = { .name = "a b" };
	static const struct ivshmem_channel_spec long_name = {
		.name = "a_name_of_thirty_two_characters_",
	};
	static const struct ivshmem_channel_spec twice[2] = {
		{ .name = "c" }, { .name = "c" },
	};
	static const struct ivshmem_channel_config chan_cfg = {
		.offset = 0, .name = "c", .vector = 0,
	};
	struct ivshmem_channel *ch = (struct ivshmem_channel *)f;
	struct ivshmem_channel_info info_ch;
	struct ivshmem_channel_stats cstats;
	const void *caddr = f;
	size_t len = 7;
	struct ivshmem_pci_info pinfo;
	char why[256];

	*row = (struct row){ NULL, 0, false };
	switch (i) {
	/* Shared memory. */
	ROW(0, -EINVAL, false, ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, 4096,
						NULL, NULL));
	ROW(1, -EINVAL, false, ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, 0,
						&fd, NULL));
	ROW(2, -EINVAL, false, ivshmem_shm_open((enum ivshmem_shm_kind)99, "x",
						4096, &fd, NULL));
	ROW(3, -EINVAL, false, ivshmem_shm_open(IVSHMEM_SHM_POSIX, NULL, 4096,
						&fd, NULL));
	ROW(4, -EINVAL, false, ivshmem_shm_open(IVSHMEM_SHM_POSIX, "a/b", 4096,
						&fd, NULL));
	ROW(5, -EINVAL, false, ivshmem_shm_open(IVSHMEM_SHM_DIR, NULL, 4096,
						&fd, NULL));
	ROW(6, -EINVAL, false, ivshmem_shm_open(IVSHMEM_SHM_DIR, "", 4096,
						&fd, NULL));
	ROW(7, -ENAMETOOLONG, false, ivshmem_shm_open(IVSHMEM_SHM_POSIX,
						      long_path(), 4096, &fd,
						      NULL));
	/* The listening socket. */
	ROW(8, -EINVAL, false, ivshmem_socket_listen(NULL, &fd));
	ROW(9, -EINVAL, false, ivshmem_socket_listen("", &fd));
	ROW(10, -EINVAL, false, ivshmem_socket_listen(f->path, NULL));
	ROW(11, -ENAMETOOLONG, false, ivshmem_socket_listen(long_path(), &fd));
	/* Server: new. The fds handed in stay the caller's. */
	ROW(12, -EINVAL, false, ivshmem_server_new(NULL, &srv_ops, f, &s));
	ROW(13, -EINVAL, true, server_new_with(f, CFG_NONE, NULL, false));
	ROW(14, -EINVAL, true, server_new_with(f, CFG_NONE, &no_watch_ops,
					       false));
	ROW(15, -EINVAL, true, server_new_with(f, CFG_NONE, &srv_ops, true));
	ROW(16, -EINVAL, true, server_new_with(f, CFG_VECTORS_0, &srv_ops,
					       false));
	ROW(17, -EINVAL, true, server_new_with(f, CFG_VECTORS_65, &srv_ops,
					       false));
	ROW(18, -EINVAL, true, server_new_with(f, CFG_MAX_PEERS, &srv_ops,
					       false));
	ROW(19, -EINVAL, true, server_new_with(f, CFG_LISTEN_NEG, &srv_ops,
					       false));
	ROW(20, -EINVAL, true, server_new_with(f, CFG_SHM_NEG, &srv_ops,
					       false));
	ROW(21, -EBADF, true, server_new_with(f, CFG_LISTEN_CLOSED, &srv_ops,
					      false));
	ROW(22, -EBADF, true, server_new_with(f, CFG_SHM_CLOSED, &srv_ops,
					      false));
	/* Server: the loop. */
	ROW(23, -EINVAL, false, ivshmem_server_dispatch(NULL, 0, POLLIN));
	ROW(24, -EINVAL, false, ivshmem_server_dispatch(s, -1, POLLIN));
	ROW(25, -EINVAL, false, ivshmem_server_timeout(NULL));
	/* Server: peers by ID; any int is taken, most name no peer. */
	ROW(26, -EINVAL, false, ivshmem_server_kick(NULL, id));
	ROW(27, -ENOENT, false, ivshmem_server_kick(s, -1));
	ROW(28, -ENOENT, false, ivshmem_server_kick(s, IVSHMEM_MAX_PEERS));
	ROW(29, -ENOENT, false, ivshmem_server_kick(s, INT_MAX));
	ROW(30, -ENOENT, false, ivshmem_server_kick(s, id + 1));
	ROW(31, -EINVAL, false, ivshmem_server_get_peer_count(NULL));
	ROW(32, -EINVAL, false, ivshmem_server_get_peers(NULL, ids, 2));
	ROW(33, -EINVAL, false, ivshmem_server_get_peers(s, NULL, 1));
	ROW(34, -EINVAL, false, ivshmem_server_get_peer(NULL, id, &info));
	ROW(35, -EINVAL, false, ivshmem_server_get_peer(s, id, NULL));
	ROW(36, -ENOENT, false, ivshmem_server_get_peer(s, -1, &info));
	ROW(37, -ENOENT, false, ivshmem_server_get_peer(s, IVSHMEM_MAX_PEERS,
							&info));
	ROW(38, -ENOENT, false, ivshmem_server_get_peer(s, id + 1, &info));
	ROW(39, -EINVAL, false, ivshmem_server_ring(NULL, id, 0));
	ROW(40, -ENOENT, false, ivshmem_server_ring(s, -1, 0));
	ROW(41, -ENOENT, false, ivshmem_server_ring(s, IVSHMEM_MAX_PEERS, 0));
	ROW(42, -ENOENT, false, ivshmem_server_ring(s, id + 1, 0));
	ROW(43, -ERANGE, false, ivshmem_server_ring(s, id, VECTORS));
	ROW(44, -ERANGE, false, ivshmem_server_ring(s, id, UINT_MAX));
	ROW(45, -EINVAL, false, ivshmem_server_get_shm_fd(NULL));
	ROW(46, -EINVAL, false, ivshmem_server_get_vectors(NULL));
	/* Peer: new. */
	ROW(47, -EINVAL, false, ivshmem_peer_new(NULL, &peer_ops, f, &pp));
	ROW(48, -EINVAL, false, ivshmem_peer_new(&peer_cfg, NULL, f, &pp));
	ROW(49, -EINVAL, false, ivshmem_peer_new(&peer_cfg, &peer_ops, f,
						 NULL));
	ROW(50, -EINVAL, false, ivshmem_peer_new(&too_many_vectors, &peer_ops,
						 f, &pp));
	ROW(51, -EINVAL, false, ivshmem_peer_new(&unknown_flags, &peer_ops, f,
						 &pp));
	/* Peer: connecting. The fds handed in stay the caller's. */
	ROW(52, -EINVAL, false, ivshmem_peer_connect(NULL, f->path));
	ROW(53, -EINVAL, false, ivshmem_peer_connect(ip, NULL));
	ROW(54, -EINVAL, false, ivshmem_peer_connect(ip, ""));
	ROW(55, -ENAMETOOLONG, false, ivshmem_peer_connect(ip, long_path()));
	ROW(56, -EISCONN, false, ivshmem_peer_connect(rp, f->path));
	ROW(57, -EINVAL, true, ivshmem_peer_connect_fd(NULL, given_socket(f)));
	ROW(58, -EINVAL, false, ivshmem_peer_connect_fd(ip, -1));
	ROW(59, -EBADF, false, ivshmem_peer_connect_fd(ip, closed_fd()));
	ROW(60, -EISCONN, true, ivshmem_peer_connect_fd(rp, given_socket(f)));
	/* Past the checks: epoll_ctl refuses a regular file. */
	ROW(61, -EPERM, true, ivshmem_peer_connect_fd(ip, given_file(f)));
	ROW(62, -EINVAL, false, ivshmem_peer_disconnect(NULL));
	ROW(63, -ENOTCONN, false, ivshmem_peer_disconnect(ip));
	/* Peer: the loop. */
	ROW(64, -EINVAL, false, ivshmem_peer_get_fd(NULL));
	ROW(65, -EINVAL, false, ivshmem_peer_dispatch(NULL));
	ROW(66, -EINVAL, false, ivshmem_peer_wait_ready(NULL, 0));
	ROW(67, -ENOTCONN, false, ivshmem_peer_wait_ready(ip, 0));
	/* Peer: what it knows. */
	ROW(68, -EINVAL, false, ivshmem_peer_get_state(NULL));
	ROW(69, -EINVAL, false, ivshmem_peer_get_id(NULL));
	ROW(70, -ENODATA, false, ivshmem_peer_get_id(ip));
	ROW(71, -EINVAL, false, ivshmem_peer_get_shm(NULL, &addr, &size));
	ROW(72, -ENODATA, false, ivshmem_peer_get_shm(ip, &addr, &size));
	ROW(73, -EINVAL, false, ivshmem_peer_get_shm_fd(NULL));
	ROW(74, -ENODATA, false, ivshmem_peer_get_shm_fd(ip));
	ROW(75, -EINVAL, false, ivshmem_peer_get_vectors(NULL, id));
	ROW(76, -ENOENT, false, ivshmem_peer_get_vectors(rp, -1));
	ROW(77, -ENOENT, false, ivshmem_peer_get_vectors(rp,
							 IVSHMEM_MAX_PEERS));
	ROW(78, -ENOENT, false, ivshmem_peer_get_vectors(rp, INT_MIN));
	ROW(79, -ENOENT, false, ivshmem_peer_get_vectors(rp, id + 1));
	ROW(80, -EINVAL, false, ivshmem_peer_get_peers(NULL, ids, 2));
	ROW(81, -EINVAL, false, ivshmem_peer_get_peers(rp, NULL, 1));
	ROW(82, -EINVAL, false, ivshmem_peer_ring(NULL, id, 0));
	ROW(83, -ENOENT, false, ivshmem_peer_ring(rp, -1, 0));
	ROW(84, -ENOENT, false, ivshmem_peer_ring(rp, IVSHMEM_MAX_PEERS, 0));
	ROW(85, -ENOENT, false, ivshmem_peer_ring(rp, id + 1, 0));
	ROW(86, -ERANGE, false, ivshmem_peer_ring(rp, id, VECTORS));
	ROW(87, -ERANGE, false, ivshmem_peer_ring(rp, id, UINT_MAX));
	ROW(88, -EINVAL, false, ivshmem_peer_get_vector_fd(NULL, 0));
	ROW(89, -ENODATA, false, ivshmem_peer_get_vector_fd(ip, 0));
	ROW(90, -ERANGE, false, ivshmem_peer_get_vector_fd(rp, VECTORS));
	ROW(91, -ERANGE, false, ivshmem_peer_get_vector_fd(rp, UINT_MAX));
	/* Layouts: checked before anything is written. */
	ROW(92, -EINVAL, false, ivshmem_layout_size(NULL, 1, 0, &size64));
	ROW(93, -EINVAL, false, ivshmem_layout_size(&spec, 1, 0, NULL));
	ROW(94, -EINVAL, false, ivshmem_layout_size(&spec, 0, 0, &size64));
	ROW(95, -EINVAL, false, ivshmem_layout_size(&spec, 65, 0, &size64));
	ROW(96, -EINVAL, false, ivshmem_layout_size(&spec, 1, 48, &size64));
	ROW(97, -EINVAL, false, ivshmem_layout_size(&bad_ring, 1, 0, &size64));
	ROW(98, -EINVAL, false, ivshmem_layout_size(&bad_name, 1, 0, &size64));
	ROW(99, -ENAMETOOLONG, false, ivshmem_layout_size(&long_name, 1, 0,
							  &size64));
	ROW(100, -EEXIST, false, ivshmem_layout_size(twice, 2, 0, &size64));
	ROW(101, -EINVAL, false, ivshmem_layout_write(NULL, 4096, 0, &spec, 1,
						      0));
	ROW(102, -EINVAL, false, ivshmem_layout_write(region, sizeof(region),
						      8, &spec, 1, 0));
	ROW(103, -ENOSPC, false, ivshmem_layout_write(region, sizeof(region),
						      0, &spec, 1, 0));
	ROW(104, -EINVAL, false, ivshmem_layout_get_channel(NULL, 4096, 0, 0,
							    &info_ch));
	ROW(105, -EINVAL, false, ivshmem_layout_get_channel(region,
					sizeof(region), 0, 0, NULL));
	ROW(106, -EBADMSG, false, ivshmem_layout_get_channel(region,
					sizeof(region), 0, 0, &info_ch));
	/* Channels: the attach and a NULL channel everywhere. */
	ROW(107, -EINVAL, false, ivshmem_channel_attach(NULL, &chan_cfg, &ch));
	ROW(108, -EINVAL, false, ivshmem_channel_attach(rp, NULL, &ch));
	ROW(109, -EINVAL, false, ivshmem_channel_attach(rp, &chan_cfg, NULL));
	ROW(110, -ENOTCONN, false, ivshmem_channel_attach(ip, &chan_cfg, &ch));
	ROW(111, -EBADMSG, false, ivshmem_channel_attach(rp, &chan_cfg, &ch));
	ROW(112, -EINVAL, false, ivshmem_channel_send(NULL, "", 0));
	ROW(113, -EINVAL, false, ivshmem_channel_reserve(NULL, 0, &addr));
	ROW(114, -EINVAL, false, ivshmem_channel_commit(NULL, 0, 0));
	ROW(115, -EINVAL, false, ivshmem_channel_flush(NULL));
	ROW(116, -EINVAL, false, (int)ivshmem_channel_recv(NULL, NULL, 0));
	ROW(117, -EINVAL, false, ivshmem_channel_peek(NULL, &caddr, &len));
	ROW(118, -EINVAL, false, ivshmem_channel_release(NULL));
	ROW(119, -EINVAL, false, ivshmem_channel_get_fd(NULL));
	ROW(120, -EINVAL, false, ivshmem_channel_dispatch(NULL));
	ROW(121, -EINVAL, false, ivshmem_channel_wait(NULL,
					IVSHMEM_CHANNEL_READABLE, 0));
	ROW(122, -EINVAL, false, ivshmem_channel_get_stats(NULL, &cstats));
	/* Inside a guest. */
	ROW(123, -EINVAL, false, ivshmem_pci_list(NULL, 1));
	ROW(124, -EINVAL, false, ivshmem_pci_bind(NULL, NULL, 0));
	ROW(125, -EINVAL, false, ivshmem_pci_bind("00:3", why, sizeof(why)));
	ROW(126, -EINVAL, false, ivshmem_peer_open_pci(NULL, NULL, 0, NULL, 0));
	ROW(127, -EINVAL, false, ivshmem_peer_open_pci(ip, NULL, 1u << 5, why,
						       sizeof(why)));
	ROW(128, -EINVAL, false, ivshmem_peer_open_pci(ip, NULL,
			IVSHMEM_PCI_VFIO | IVSHMEM_PCI_SYSFS, why, sizeof(why)));
	ROW(129, -EISCONN, false, ivshmem_peer_open_pci(rp, NULL, 0, why,
							sizeof(why)));
	ROW(130, -EINVAL, false, ivshmem_peer_open_pci(ip, "0000:00:zz.0", 0,
						       why, sizeof(why)));
	ROW(131, -ENODEV, false, ivshmem_peer_open_pci(ip, "0000:7f:1f.7", 0,
						       why, sizeof(why)));
	ROW(132, -EINVAL, false, ivshmem_peer_get_pci(NULL, &pinfo));
	ROW(133, -EINVAL, false, ivshmem_peer_get_pci(rp, NULL));
	ROW(134, -ENODEV, false, ivshmem_peer_get_pci(rp, &pinfo));
	default:
		return 0;
	}
	/* Out-pointers are written only on success. */
	ck_assert_int_eq(fd, -2);
	ck_assert_ptr_eq(s, f->srv);
	ck_assert_ptr_eq(pp, (struct ivshmem_peer *)f);
	ck_assert_ptr_eq(addr, f);
	ck_assert_uint_eq(size, 7);
	ck_assert_uint_eq(size64, 7);
	ck_assert_ptr_eq(ch, (struct ivshmem_channel *)f);
	ck_assert_ptr_eq(caddr, f);
	ck_assert_uint_eq(len, 7);
	ck_assert(region[0] == 0 && region[63] == 0);
	return r;
}
#define NROWS 135

START_TEST(bad_argument)
{
	struct row row;
	int fds = count_open_fds();
	unsigned server_events = fx.server_events, peer_calls = fx.peer_calls;
	int r;

	r = call_row((unsigned)_i, &fx, &row);
	ck_assert_msg(row.call, "no row %d", _i);
	ck_assert_msg(r == row.expect, "%s: returned %d (%s), not %d (%s)",
		      row.call, r, strerror(-r), row.expect,
		      strerror(-row.expect));

	/* An fd handed in and refused: still the caller's, as it was. */
	if (row.gives_fd) {
		ck_assert_msg(fcntl(fx.fd, F_GETFL) == fx.fl &&
			      fcntl(fx.fd, F_GETFD) == fx.fdfl,
			      "%s: the fd handed in was closed or changed",
			      row.call);
		close(fx.fd);
		fx.fd = -1;
	}
	ck_assert_msg(count_open_fds() == fds, "%s: %d fds before, %d after",
		      row.call, fds, count_open_fds());

	/* Nothing else moved: the objects and their callbacks. */
	pump(&fx, 0);
	ck_assert_msg(fx.server_events == server_events &&
		      fx.peer_calls == peer_calls,
		      "%s: a callback ran", row.call);
	ck_assert_int_eq(ivshmem_server_get_peer_count(fx.srv), 1);
	ck_assert_int_eq(ivshmem_peer_get_state(fx.ready), IVSHMEM_PEER_READY);
	ck_assert_int_eq(ivshmem_peer_get_id(fx.ready), fx.ready_id);
	ck_assert_int_eq(ivshmem_peer_get_vectors(fx.ready, fx.ready_id),
			 VECTORS);
	ck_assert_int_eq(ivshmem_peer_get_state(fx.idle), IVSHMEM_PEER_IDLE);
}
END_TEST

/* NROWS counts every row: there is none after it. */
START_TEST(table_is_complete)
{
	struct row row;

	call_row(NROWS, &fx, &row);
	ck_assert_ptr_null(row.call);
}
END_TEST

/*
 * ops and config are copied: scribbled over and freed right after new, the
 * server and the peer still work with what they were given (the
 * sanitizers catch a read of the freed memory).
 */
START_TEST(ops_and_config_are_copied)
{
	struct ivshmem_server_config *sc = calloc(1, sizeof(*sc));
	struct ivshmem_server_ops *so = malloc(sizeof(*so));
	struct ivshmem_peer_config *pc = malloc(sizeof(*pc));
	struct ivshmem_peer_ops *po = malloc(sizeof(*po));
	int fds = count_open_fds();

	ck_assert(sc && so && pc && po);
	fx_prepare(sc);
	*so = srv_ops;
	*pc = peer_cfg;
	*po = peer_ops;
	ck_assert_int_eq(ivshmem_server_new(sc, so, &fx, &fx.srv), 0);
	ck_assert_int_eq(ivshmem_peer_new(pc, po, &fx, &fx.ready), 0);
	memset(sc, 0xa5, sizeof(*sc));
	memset(so, 0xa5, sizeof(*so));
	memset(pc, 0xa5, sizeof(*pc));
	memset(po, 0xa5, sizeof(*po));
	free(sc);
	free(so);
	free(pc);
	free(po);

	fx_join();
	ck_assert_uint_ge(fx.server_events, 1);    /* joined */
	ck_assert_uint_ge(fx.peer_calls, 1);       /* ready */
	ck_assert_int_eq(ivshmem_server_get_vectors(fx.srv), VECTORS);
	ck_assert_int_eq(ivshmem_peer_get_vectors(fx.ready, fx.ready_id),
			 VECTORS);
	fx_teardown();
	ck_assert_int_eq(count_open_fds(), fds);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_with("bad-arguments", 0, NULL);

	tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
	tcase_add_loop_test(tc, bad_argument, 0, (int)NROWS);
	tcase_add_test(tc, table_is_complete);
	suite_add_tcase(s, tc);
	tc = tcase_with("copies", 0, NULL);
	tcase_add_test(tc, ops_and_config_are_copied);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
