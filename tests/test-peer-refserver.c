/* SPDX-License-Identifier: MIT */
/*
 * The peer side against a server that behaves like QEMU's reference
 * contrib/ivshmem-server, which Debian does not ship: a separate process
 * that sends each message with its own sendmsg on a non-blocking socket,
 * errors ignored, makes eventfds
 * with EFD_NONBLOCK | EFD_CLOEXEC, hands out IDs next-fit from a counter,
 * tells the others of a newcomer before greeting it with the others, and
 * treats any byte or EOF from a peer as its leave. What a peer sees of it
 * is the stream ivshmem-protocol(7) describes; this checks the library takes
 * that stream as it comes, with vector counts above, equal to and below the
 * peer's own configuration.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define SHM_SIZE (1u << 20)
#define REF_MAX 16

/* ---- the reference-style server (child process) ------------------------ */

struct ref_peer {
	int sock;       /* -1: free slot */
	long id;
	int efd[IVSHMEM_MAX_VECTORS];
};

static struct ref_peer ref[REF_MAX];
static unsigned ref_vectors;
static long ref_cur_id;
static int ref_shm;

/* One message, one sendmsg; like the reference server, errors ignored. */
static void ref_send(int sock, long value, int fd)
{
	(void)ivshmem_wire_send(sock, value, fd);
}

static bool ref_id_used(long id)
{
	for (unsigned i = 0; i < REF_MAX; i++)
		if (ref[i].sock >= 0 && ref[i].id == id)
			return true;
	return false;
}

static void ref_accept(int lfd)
{
	struct ref_peer *p = NULL;
	unsigned i, v;
	int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (s < 0)
		return;
	for (i = 0; i < REF_MAX && !p; i++)
		if (ref[i].sock < 0)
			p = &ref[i];
	if (!p) {
		close(s);
		return;
	}
	while (ref_id_used(ref_cur_id))
		ref_cur_id++;
	p->id = ref_cur_id++;
	for (v = 0; v < ref_vectors; v++)
		p->efd[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	ref_send(s, IVSHMEM_PROTOCOL_VERSION, -1);
	ref_send(s, p->id, -1);
	ref_send(s, -1, ref_shm);
	/* The newcomer to the others first, then the others to it. */
	for (i = 0; i < REF_MAX; i++)
		for (v = 0; ref[i].sock >= 0 && v < ref_vectors; v++)
			ref_send(ref[i].sock, p->id, p->efd[v]);
	for (i = 0; i < REF_MAX; i++)
		for (v = 0; ref[i].sock >= 0 && v < ref_vectors; v++)
			ref_send(s, ref[i].id, ref[i].efd[v]);
	for (v = 0; v < ref_vectors; v++)
		ref_send(s, p->id, p->efd[v]);
	p->sock = s;
}

static void ref_drop(struct ref_peer *p)
{
	unsigned i, v;

	close(p->sock);
	p->sock = -1;
	for (i = 0; i < REF_MAX; i++)
		if (ref[i].sock >= 0)
			ref_send(ref[i].sock, p->id, -1);
	for (v = 0; v < ref_vectors; v++)
		close(p->efd[v]);
}

static void ref_serve(int lfd)
{
	for (;;) {
		struct pollfd pfd[REF_MAX + 1];
		unsigned i;

		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (i = 0; i < REF_MAX; i++)
			pfd[i + 1] = (struct pollfd){ .fd = ref[i].sock,
						      .events = POLLIN };
		if (poll(pfd, REF_MAX + 1, -1) < 0)
			_exit(1);
		if (pfd[0].revents)
			ref_accept(lfd);
		for (i = 0; i < REF_MAX; i++)
			if (ref[i].sock >= 0 && pfd[i + 1].revents)
				ref_drop(&ref[i]);
	}
}

struct refserver {
	pid_t pid;
	char dir[64];
	char sock[108];
};

static void refserver_start(struct refserver *r, unsigned vectors)
{
	int lfd, memfd;

	snprintf(r->dir, sizeof(r->dir), "/tmp/ivshmem-ref-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(r->dir));
	snprintf(r->sock, sizeof(r->sock), "%s/sock", r->dir);
	ck_assert_int_eq(ivshmem_listen_unix(r->sock, &lfd), 0);
	/* Blocking, like the reference server's socket. */
	ck_assert_int_eq(fcntl(lfd, F_SETFL, 0), 0);
	ck_assert_int_eq(ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, SHM_SIZE,
					  &memfd, NULL), 0);
	r->pid = fork();
	ck_assert_int_ge(r->pid, 0);
	if (r->pid == 0) {
		for (unsigned i = 0; i < REF_MAX; i++)
			ref[i].sock = -1;
		ref_vectors = vectors;
		ref_shm = memfd;
		ref_serve(lfd);
	}
	close(lfd);
	close(memfd);
}

static void refserver_stop(struct refserver *r)
{
	int st;

	kill(r->pid, SIGKILL);
	ck_assert_int_eq(waitpid(r->pid, &st, 0), r->pid);
	unlink(r->sock);
	rmdir(r->dir);
}

/* ---- library peers ----------------------------------------------------- */

struct seen {
	bool ready;
	int joins[8], njoins;
	unsigned join_vectors;
	int lefts[8], nlefts;
	unsigned bells[IVSHMEM_MAX_VECTORS];
	int disconnected;
};

static void on_ready(void *u, struct ivshmem_peer *p)
{
	((struct seen *)u)->ready = true;
}

static void on_joined(void *u, struct ivshmem_peer *p, int id, unsigned n)
{
	struct seen *s = u;

	ck_assert_int_lt(s->njoins, 8);
	s->joins[s->njoins++] = id;
	s->join_vectors = n;
}

static void on_left(void *u, struct ivshmem_peer *p, int id)
{
	struct seen *s = u;

	ck_assert_int_lt(s->nlefts, 8);
	s->lefts[s->nlefts++] = id;
}

static void on_doorbell(void *u, struct ivshmem_peer *p, unsigned v,
			uint64_t count)
{
	((struct seen *)u)->bells[v] += (unsigned)count;
}

static void on_disconnected(void *u, struct ivshmem_peer *p, int err)
{
	((struct seen *)u)->disconnected = err;
}

static const struct ivshmem_peer_ops seen_ops = {
	.ready = on_ready,
	.joined = on_joined,
	.left = on_left,
	.doorbell = on_doorbell,
	.disconnected = on_disconnected,
};

static struct ivshmem_peer *join(const struct refserver *r, unsigned vectors,
				 struct seen *s)
{
	struct ivshmem_peer_config cfg = { .vectors = vectors };
	struct ivshmem_peer *p;

	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &seen_ops, s, &p), 0);
	ck_assert_int_eq(ivshmem_peer_connect(p, r->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, 5000), 0);
	ck_assert(s->ready);
	return p;
}

/* Dispatch; a failure must be the one just reported as the disconnect. */
static void pump_one(struct ivshmem_peer *p)
{
	int r = ivshmem_peer_dispatch(p);

	if (r < 0)
		ck_assert_int_eq(ivshmem_peer_get_state(p),
				 IVSHMEM_PEER_DISCONNECTED);
}

/* Dispatch both peers until cond holds (5 s at most). */
#define PUMP_UNTIL(a, b, cond)                                              \
	do {                                                                \
		double end_ = now_seconds() + 5;                            \
		while (!(cond) && now_seconds() < end_) {                   \
			struct pollfd pf_[2] = {                            \
				{ ivshmem_peer_get_fd(a), POLLIN, 0 },      \
				{ ivshmem_peer_get_fd(b), POLLIN, 0 },      \
			};                                                  \
			poll(pf_, 2, 50);                                   \
			pump_one(a);                                        \
			pump_one(b);                                        \
		}                                                           \
		ck_assert_msg(cond, "timed out waiting for " #cond);        \
	} while (0)

/*
 * Two peers through the reference-style server with `server_vectors`
 * vectors, each configured for `peer_vectors` (0: as the server): join,
 * every usable vector rung both ways, the shared memory, a leave, and
 * next-fit IDs for the next peer.
 */
static void mesh(unsigned server_vectors, unsigned peer_vectors)
{
	unsigned usable = peer_vectors && peer_vectors < server_vectors ?
		peer_vectors : server_vectors;
	struct refserver r;
	struct seen sa, sb, sc;
	struct ivshmem_peer *a, *b, *c;
	int fds_before = count_open_fds();
	int ida, idb, v;
	uint8_t *ma, *mb;
	uint64_t size;

	refserver_start(&r, server_vectors);
	a = join(&r, peer_vectors, &sa);
	ida = ivshmem_peer_get_id(a);
	ck_assert_int_eq(ida, 0);
	ck_assert_int_eq(ivshmem_peer_get_vectors(a, ida), (int)usable);
	b = join(&r, peer_vectors, &sb);
	idb = ivshmem_peer_get_id(b);
	ck_assert_int_eq(idb, 1);
	/* b learnt of a in its greeting, a learns of b from the notice. */
	ck_assert_int_eq(sb.njoins, 1);
	ck_assert_int_eq(sb.joins[0], ida);
	ck_assert_uint_eq(sb.join_vectors, usable);
	PUMP_UNTIL(a, b, sa.njoins == 1);
	ck_assert_int_eq(sa.joins[0], idb);
	ck_assert_uint_eq(sa.join_vectors, usable);

	for (v = 0; v < (int)usable; v++) {
		ck_assert_int_eq(ivshmem_peer_ring(a, idb, v), 0);
		PUMP_UNTIL(a, b, sb.bells[v] == 1);
		ck_assert_int_eq(ivshmem_peer_ring(b, ida, v), 0);
		PUMP_UNTIL(a, b, sa.bells[v] == 1);
	}
	for (v = 0; v < IVSHMEM_MAX_VECTORS; v++) {
		ck_assert_uint_eq(sa.bells[v], v < (int)usable);
		ck_assert_uint_eq(sb.bells[v], v < (int)usable);
	}
	ck_assert_int_eq(ivshmem_peer_ring(a, idb, usable), -ERANGE);

	ck_assert_int_eq(ivshmem_peer_get_shm(a, (void **)&ma, &size), 0);
	ck_assert_uint_eq(size, SHM_SIZE);
	ck_assert_int_eq(ivshmem_peer_get_shm(b, (void **)&mb, NULL), 0);
	memcpy(ma + 4096, "ref-server", 11);
	ck_assert_str_eq((char *)mb + 4096, "ref-server");

	/* b leaves; a is told; the next peer gets ID 2 (next-fit). */
	ivshmem_peer_free(b);
	PUMP_UNTIL(a, a, sa.nlefts == 1);
	ck_assert_int_eq(sa.lefts[0], idb);
	ck_assert_int_eq(ivshmem_peer_get_peers(a, NULL, 0), 0);
	c = join(&r, peer_vectors, &sc);
	ck_assert_int_eq(ivshmem_peer_get_id(c), 2);
	PUMP_UNTIL(a, c, sa.njoins == 2);

	/* The server dies: both keep the mesh and can still ring. */
	refserver_stop(&r);
	PUMP_UNTIL(a, c, sa.disconnected && sc.disconnected);
	ck_assert_int_eq(sa.disconnected, -ECONNRESET);
	ck_assert_int_eq(ivshmem_peer_ring(a, 2, 0), 0);
	PUMP_UNTIL(a, c, sc.bells[0] == 1);

	ivshmem_peer_free(a);
	ivshmem_peer_free(c);
	ck_assert_int_eq(count_open_fds(), fds_before);
}

START_TEST(vectors_as_server)
{
	mesh(3, 0);
}
END_TEST

START_TEST(vectors_equal)
{
	mesh(3, 3);
}
END_TEST

START_TEST(vectors_fewer_than_server)
{
	mesh(4, 2);
}
END_TEST

START_TEST(vectors_more_than_server)
{
	mesh(2, 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("peer-refserver");
	TCase *tc = tcase_create("reference-style server");

	tcase_add_test(tc, vectors_as_server);
	tcase_add_test(tc, vectors_equal);
	tcase_add_test(tc, vectors_fewer_than_server);
	tcase_add_test(tc, vectors_more_than_server);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
