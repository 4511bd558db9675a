/* SPDX-License-Identifier: MIT */
/*
 * Library peers through a real ivshmem-server process: the greeting, joins
 * and leaves, doorbells both ways, the shared memory, the server going away
 * and coming back, and a full server refusing a peer.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "trec.h"


/* ---- cleanup after a failed test ------------------------------------ */

/*
 * Servers are tserver_tracked() (see common.h). The restart test's own
 * socket dir is tracked here, in memory shared with the runner too.
 */
struct leftovers {
	char dir[64];
};
static struct leftovers *left;

static void remove_leftovers(void)
{
	tserver_reap_tracked();
	if (left->dir[0]) {
		char sock[128];

		snprintf(sock, sizeof(sock), "%s/sock", left->dir);
		unlink(sock);
		snprintf(sock, sizeof(sock), "%s/sock.ctl", left->dir);
		unlink(sock);
		rmdir(left->dir);
	}
	left->dir[0] = '\0';
}

static void rec_new(struct trec *r)
{
	const struct ivshmem_peer_config cfg = { 0 };

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &trec_ops, r, &r->peer), 0);
}

static void rec_free(struct trec *r)
{
	ivshmem_peer_free(r->peer);
	r->peer = NULL;
}

/* tserver_start() returned once the server listens: no retry needed. */
static int peer_connect(struct trec *r, const char *path)
{
	return ivshmem_peer_connect(r->peer, path);
}

/* Pump until peer has `vectors` vectors for `id` or the time is up. */
static int wait_vectors(struct trec *r, int id, int vectors, int ms)
{
	double deadline = now_seconds() + ms / 1000.0;
	int n;

	while ((n = ivshmem_peer_get_vectors(r->peer, id)) != vectors &&
	       now_seconds() < deadline)
		trec_pump(r, 10);
	return n;
}

/* Ring `to` (ID to_id) on vector v from `from`: exactly that vector
 * arrives there, once. */
static void ring_and_check(struct trec *from, struct trec *to, int to_id,
			   unsigned v)
{
	unsigned start = to->nevs, from_start = from->nevs;
	const struct ev *e;

	ck_assert_int_eq(ivshmem_peer_ring(from->peer, to_id, v), 0);
	e = trec_wait_event(to, EV_DOORBELL, start, TWAIT_MS);
	ck_assert_msg(e != NULL, "vector %u to peer %d never arrived", v,
		      to_id);
	ck_assert_uint_eq(e->n, v);
	ck_assert_uint_eq(e->count, 1);
	/* Nothing else arrives, there or back. */
	trec_pump(to, 20);
	trec_pump(from, 0);
	ck_assert_uint_eq(trec_count(to, EV_DOORBELL, start), 1);
	ck_assert_uint_eq(trec_count(from, EV_DOORBELL, from_start), 0);
}

/* ---- the tests --------------------------------------------------------- */

START_TEST(two_peers_and_a_restart)
{
	enum { V = 4, SIZE = 1 << 20 };
	struct trec *a = g_new0(struct trec, 1), *b = g_new0(struct trec, 1);
	char sock[128], shm_name[64];
	const char *args[] = { "-n", "4", "-l", "1M", "-S", sock, NULL };
	int id_a, id_b, ids[4];
	void *map_a = NULL, *map_b = NULL, *map_a2 = NULL;
	uint64_t size_a = 0, size_b = 0;
	struct tserver *s1, *s2;
	unsigned start;
	uint8_t *pa, *pb;

	snprintf(left->dir, sizeof(left->dir), "/tmp/ivshmem-peer-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(left->dir));
	snprintf(sock, sizeof(sock), "%s/sock", left->dir);
	s1 = tserver_start_ok(args);
	g_strlcpy(shm_name, s1->shm_name, sizeof(shm_name));

	/* Both become ready; each sees the other. */
	rec_new(a);
	rec_new(b);
	ck_assert_int_eq(peer_connect(a, sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(a->peer, TWAIT_MS), 0);
	id_a = ivshmem_peer_get_id(a->peer);
	ck_assert_int_ge(id_a, 0);
	/* Alone, a may be ready on a pause before all its vectors came. */
	ck_assert_int_eq(wait_vectors(a, id_a, V, TWAIT_MS), V);
	ck_assert_uint_eq(trec_count(a, EV_READY, 0), 1);
	ck_assert(shm_exists(shm_name));

	ck_assert_int_eq(peer_connect(b, sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(b->peer, TWAIT_MS), 0);
	id_b = ivshmem_peer_get_id(b->peer);
	ck_assert_int_ge(id_b, 0);
	ck_assert_int_ne(id_a, id_b);
	ck_assert_int_eq(ivshmem_peer_get_vectors(b->peer, id_b), V);
	ck_assert_int_eq(ivshmem_peer_get_vectors(b->peer, id_a), V);
	/* b: a joined, before ready. */
	ck_assert_uint_eq(b->nevs, 2);
	ck_assert_int_eq(b->evs[0].kind, EV_JOINED);
	ck_assert_int_eq(b->evs[0].id, id_a);
	ck_assert_uint_eq(b->evs[0].n, V);
	ck_assert_int_eq(b->evs[1].kind, EV_READY);
	/* a: b joined. */
	const struct ev *e = trec_wait_event(a, EV_JOINED, 0, TWAIT_MS);

	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->id, id_b);
	ck_assert_uint_eq(e->n, V);
	ck_assert_uint_eq(trec_count(a, EV_JOINED, 0), 1);
	ck_assert_int_eq(ivshmem_peer_get_vectors(a->peer, id_b), V);
	ck_assert_int_eq(ivshmem_peer_get_peers(a->peer, ids, 4), 1);
	ck_assert_int_eq(ids[0], id_b);
	ck_assert_int_eq(ivshmem_peer_get_peers(b->peer, ids, 4), 1);
	ck_assert_int_eq(ids[0], id_a);

	/* The same shared memory, through two mappings. */
	ck_assert_int_eq(ivshmem_peer_get_shm(a->peer, &map_a, &size_a), 0);
	ck_assert_int_eq(ivshmem_peer_get_shm(b->peer, &map_b, &size_b), 0);
	ck_assert_uint_eq(size_a, SIZE);
	ck_assert_uint_eq(size_b, SIZE);
	ck_assert_ptr_nonnull(map_a);
	ck_assert_ptr_nonnull(map_b);
	ck_assert_ptr_ne(map_a, map_b);
	pa = map_a;
	pb = map_b;
	for (size_t i = 0; i < SIZE; i++)
		pa[i] = (uint8_t)(i * 31 + 7);
	for (size_t i = 0; i < SIZE; i++)
		if (pb[i] != (uint8_t)(i * 31 + 7))
			ck_abort_msg("byte %zu differs in the other mapping",
				     i);
	memcpy(pb + 4096, "from b", 7);
	ck_assert_str_eq((char *)pa + 4096, "from b");

	/* Every vector, both ways. */
	for (unsigned v = 0; v < V; v++) {
		ring_and_check(a, b, id_b, v);
		ring_and_check(b, a, id_a, v);
	}
	ck_assert_uint_eq(trec_count(a, EV_DOORBELL, 0), V);
	ck_assert_uint_eq(trec_count(b, EV_DOORBELL, 0), V);
	ck_assert_int_eq(ivshmem_peer_ring(a->peer, id_b, V), -ERANGE);

	/* b leaves. */
	start = a->nevs;
	rec_free(b);
	e = trec_wait_event(a, EV_LEFT, start, TWAIT_MS);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->id, id_b);
	ck_assert_int_eq(ivshmem_peer_get_peers(a->peer, NULL, 0), 0);
	ck_assert_int_eq(ivshmem_peer_get_vectors(a->peer, id_b), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_ring(a->peer, id_b, 0), -ENOENT);

	/* The server stops: a is disconnected and keeps its mapping. The
	 * server removes its socket and shm object by itself. */
	a->warnings_ok = true;
	start = a->nevs;
	ck_assert_int_eq(kill(s1->pid, SIGTERM), 0);
	e = trec_wait_event(a, EV_DISCONNECTED, start, TWAIT_MS);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->error, -ECONNRESET);
	ck_assert_int_eq(a->last_error, -ECONNRESET);
	ck_assert_uint_eq(trec_count(a, EV_DISCONNECTED, 0), 1);
	ck_assert_int_eq(ivshmem_peer_get_state(a->peer),
			 IVSHMEM_PEER_DISCONNECTED);
	for (double t = now_seconds() + 5; tserver_alive(s1) &&
	     now_seconds() < t;)
		usleep(2000);
	ck_assert(!tserver_alive(s1));
	ck_assert(!shm_exists(shm_name));
	ck_assert_int_ne(access(sock, F_OK), 0);
	tserver_stop_ok(s1);
	for (size_t i = 0; i < SIZE; i += 4093)
		if (i < 4096 || i >= 4096 + 7)
			ck_assert_uint_eq(pa[i], (uint8_t)(i * 31 + 7));
	ck_assert_str_eq((char *)pa + 4096, "from b");
	ck_assert_int_eq(ivshmem_peer_get_id(a->peer), id_a);

	/* A new server on the same socket: a comes back, the mapping at the
	 * same address, now the new (zeroed) shared memory. */
	s2 = tserver_start_ok(args);
	a->warnings_ok = false;
	ck_assert_int_eq(peer_connect(a, sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(a->peer, TWAIT_MS), 0);
	ck_assert_uint_eq(trec_count(a, EV_READY, 0), 2);
	ck_assert_int_eq(ivshmem_peer_get_shm(a->peer, &map_a2, &size_a), 0);
	ck_assert_ptr_eq(map_a2, map_a);
	ck_assert_uint_eq(size_a, SIZE);
	ck_assert_uint_eq(pa[1], 0);
	ck_assert_uint_eq(pa[4096], 0);
	id_a = ivshmem_peer_get_id(a->peer);
	ck_assert_int_ge(id_a, 0);
	ck_assert_int_eq(wait_vectors(a, id_a, V, TWAIT_MS), V);
	ck_assert_int_eq(ivshmem_peer_get_peers(a->peer, NULL, 0), 0);
	start = a->nevs;
	ck_assert_int_eq(ivshmem_peer_ring(a->peer, id_a, 3), 0);
	e = trec_wait_event(a, EV_DOORBELL, start, TWAIT_MS);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->n, 3);

	rec_free(a);
	g_strlcpy(shm_name, s2->shm_name, sizeof(shm_name));
	tserver_stop_ok(s2);
	ck_assert(!shm_exists(shm_name));
	ck_assert_int_eq(rmdir(left->dir), 0);
	left->dir[0] = '\0';
	g_free(a);
	g_free(b);
}
END_TEST

/* A server with room for one peer: the second is refused. */
START_TEST(max_peers_refuses)
{
	const char *const args[] = { "--max-peers", "1", "-l", "64K", NULL };
	struct trec *a = g_new0(struct trec, 1), *b = g_new0(struct trec, 1);
	struct tserver *s;
	char shm_name[64];

	s = tserver_start_ok(args);
	g_strlcpy(shm_name, s->shm_name, sizeof(shm_name));
	rec_new(a);
	rec_new(b);
	ck_assert_int_eq(peer_connect(a, s->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(a->peer, TWAIT_MS), 0);
	ck_assert_int_eq(ivshmem_peer_get_id(a->peer), 0);

	b->warnings_ok = true;
	ck_assert_int_eq(peer_connect(b, s->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(b->peer, TWAIT_MS),
			 -ECONNREFUSED);
	ck_assert_int_eq(ivshmem_peer_get_state(b->peer),
			 IVSHMEM_PEER_DISCONNECTED);
	ck_assert_uint_eq(b->nevs, 1);
	ck_assert_int_eq(b->evs[0].kind, EV_DISCONNECTED);
	ck_assert_int_eq(b->evs[0].error, -ECONNREFUSED);
	ck_assert_int_eq(ivshmem_peer_get_id(b->peer), -ENODATA);

	/* a saw nothing of it and is still connected. */
	trec_pump(a, 50);
	ck_assert_uint_eq(a->nevs, 1);
	ck_assert_int_eq(ivshmem_peer_get_state(a->peer), IVSHMEM_PEER_READY);

	rec_free(a);
	rec_free(b);
	tserver_stop_ok(s);
	ck_assert(!shm_exists(shm_name));
	g_free(a);
	g_free(b);
}
END_TEST

/*
 * A peer that runs out of its own fds while the greeting's arrive: the
 * kernel truncates the control data, but the server did nothing wrong.
 * It is the local -EMFILE, said so, and what was received stays.
 */
START_TEST(own_fd_shortage)
{
	const char *const args[] = { "-n", "64", "-l", "64K", NULL };
	struct trec *a = g_new0(struct trec, 1);
	struct tserver *s = tserver_start_ok(args);
	struct rlimit old, low;

	rec_new(a);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_int_eq(peer_connect(a, s->sock), 0);
	/* The shm fits, the 64 own vectors do not. */
	low = old;
	low.rlim_cur = proc_fd_limit_leaving(getpid(), 16);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(a->peer, TWAIT_MS), -EMFILE);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_str_eq(ivshmem_strerror(-EMFILE),
			 "This process ran out of file descriptors while receiving the server's (too many open files: raise ulimit -n)");
	ck_assert_int_eq(ivshmem_peer_get_state(a->peer),
			 IVSHMEM_PEER_DISCONNECTED);
	ck_assert_uint_eq(a->nevs, 1);
	ck_assert_int_eq(a->evs[0].kind, EV_DISCONNECTED);
	ck_assert_int_eq(a->evs[0].error, -EMFILE);
	/* Not a violation: the shared memory and the own vectors received
	 * are kept. */
	ck_assert_int_ge(ivshmem_peer_get_shm_fd(a->peer), 0);
	ck_assert_int_ge(ivshmem_peer_get_vector_fd(a->peer, 0), 0);

	/* With fds to spare, the same peer joins in full. */
	ck_assert_int_eq(peer_connect(a, s->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(a->peer, TWAIT_MS), 0);
	ck_assert_int_eq(ivshmem_peer_get_vectors(a->peer,
						  ivshmem_peer_get_id(a->peer)), 64);
	rec_free(a);
	tserver_stop_ok(s);
	g_free(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("peer-server");
	TCase *tc = tcase_with("peer-server", 0, NULL);
	int ret;

	left = mmap(NULL, sizeof(*left), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (left == MAP_FAILED || tserver_tracking_init() < 0) {
		perror("mmap");
		return EXIT_FAILURE;
	}
	tcase_add_test(tc, two_peers_and_a_restart);
	tcase_add_test(tc, max_peers_refuses);
	tcase_add_test(tc, own_fd_shortage);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	ret = run_suite(s);
	remove_leftovers();
	munmap(left, sizeof(*left));
	return ret;
}
