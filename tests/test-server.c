/* SPDX-License-Identifier: MIT */
/*
 * Integration tests: a real ivshmem-server process, real sockets, and test
 * peers that check every message they receive against the protocol.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define TCASE_TIMEOUT 300

#define GiB (1ull << 30)

/* ---- cleanup after a failed test ------------------------------------ */

/*
 * Servers are tserver_tracked() (see common.h); a daemon has its own
 * session, so Check does not kill it with the test: it is tracked here, in
 * memory shared with the runner too.
 */
struct leftovers {
	pid_t daemon;
	char pidfile[128];
};
static struct leftovers *left;

static void remove_leftovers(void)
{
	if (left->daemon > 0)
		kill(left->daemon, SIGKILL);
	left->daemon = -1;
	if (left->pidfile[0])
		unlink(left->pidfile);
	left->pidfile[0] = '\0';
	tserver_reap_tracked();
}

static struct tserver *srv_new(void)
{
	struct tserver *s = tserver_tracked();

	ck_assert_ptr_nonnull(s);
	return s;
}

/* Wait for the server's start-up line, for servers started on a path
 * where a stale socket already exists (tserver_start cannot tell). */
static void wait_listening(const struct tserver *s)
{
	ck_assert_msg(tserver_log_wait(s, "listening on", TWAIT_MS),
		      "the server never said it was listening");
}

/* ---- peer helpers ---------------------------------------------------- */

/* Read until the peer has received `total` messages. */
static void read_until(struct tpeer *p, unsigned total)
{
	struct tmsg m;

	while (p->nmsgs < total)
		tpeer_recv_ok(p, &m, TWAIT_MS);
}

/* The next V messages are the join of `id`. */
static void expect_join(struct tpeer *p, int id)
{
	struct tmsg m;

	for (unsigned v = 0; v < p->vectors; v++) {
		tpeer_recv_ok(p, &m, TWAIT_MS);
		ck_assert_msg(m.kind == TMSG_VECTOR && m.id == id &&
			      m.vector == (int)v,
			      "peer %d: want vector %u of %d, got %d/%d/%d",
			      p->id, v, id, m.kind, m.id, m.vector);
	}
}

/* EOF without a single message. */
static void expect_refused(struct tpeer *p)
{
	struct tmsg m;
	int r = tpeer_recv(p, TWAIT_MS, &m, NULL);

	ck_assert_msg(r == 0, "want EOF without a message, got %d", r);
	ck_assert_uint_eq(p->nmsgs, 0);
}

/*
 * Read a whole greeting and check its order: version 0, the ID (want_id
 * unless -1), the shm fd of `size` bytes, then V vectors of each peer in
 * `others` (in any order, but each peer's vectors together and in order),
 * and the peer's own vectors last.
 */
static void read_greeting(struct tpeer *p, int want_id, const int *others,
			  unsigned nothers, uint64_t size)
{
	bool seen[IVSHMEM_MAX_PEERS] = { false };
	struct tmsg m;

	ck_assert_uint_eq(p->nmsgs, 0);
	tpeer_recv_ok(p, &m, TWAIT_MS);
	ck_assert_int_eq(m.kind, TMSG_VERSION);
	ck_assert_int_eq(m.value, 0);
	tpeer_recv_ok(p, &m, TWAIT_MS);
	ck_assert_int_eq(m.kind, TMSG_ID);
	if (want_id >= 0)
		ck_assert_int_eq(p->id, want_id);
	tpeer_recv_ok(p, &m, TWAIT_MS);
	ck_assert_int_eq(m.kind, TMSG_SHM);
	ck_assert_uint_eq(p->shm_size, size);

	for (unsigned k = 0; k < nothers; k++) {
		int id = -1;

		for (unsigned v = 0; v < p->vectors; v++) {
			tpeer_recv_ok(p, &m, TWAIT_MS);
			ck_assert_int_eq(m.kind, TMSG_VECTOR);
			ck_assert_int_eq(m.vector, (int)v);
			if (v == 0)
				id = m.id;
			ck_assert_int_eq(m.id, id);
		}
		ck_assert_msg(id != p->id, "own vectors before the others'");
		bool known = false;

		for (unsigned j = 0; j < nothers; j++)
			known |= others[j] == id;
		ck_assert_msg(known, "greeting names peer %d, not connected",
			      id);
		ck_assert_msg(!seen[id], "greeting names peer %d twice", id);
		seen[id] = true;
	}
	for (unsigned v = 0; v < p->vectors; v++) {
		tpeer_recv_ok(p, &m, TWAIT_MS);
		ck_assert_int_eq(m.kind, TMSG_VECTOR);
		ck_assert_int_eq(m.id, p->id);
		ck_assert_int_eq(m.vector, (int)v);
	}
	ck_assert(p->ready);
	ck_assert_uint_eq(p->npeers, nothers);
}

static void connect_ok(struct tpeer *p, const char *sock, unsigned vectors,
		       bool keep_fds)
{
	int r = tpeer_connect(p, sock, vectors, keep_fds);

	ck_assert_msg(r == 0, "connect: %s", g_strerror(-r));
}

static void *map_shm(const struct tpeer *p)
{
	void *m = mmap(NULL, p->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       p->shm_fd, 0);

	ck_assert_msg(m != MAP_FAILED, "mmap: %s", g_strerror(errno));
	return m;
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)((i * 131) ^ (i >> 9) ^ 0x5a);
}

static void fill_pattern(uint8_t *mem, size_t len)
{
	for (size_t i = 0; i < len; i++)
		mem[i] = pattern(i);
}

static void check_pattern(const uint8_t *mem, size_t len)
{
	for (size_t i = 0; i < len; i++)
		ck_assert_msg(mem[i] == pattern(i), "byte %zu lost", i);
}

/* ---- protocol ------------------------------------------------------- */

/* ivshmem-protocol(7) rules 5, 6 and 17: the greeting, joins, leaves. */
START_TEST(test_greeting_and_fanout)
{
	struct tserver *s = START("-n", "3", "-l", "1M", NULL);
	struct tpeer a, b, c;
	const int ab[] = { 0, 1 };
	const int a_only[] = { 0 };

	connect_ok(&a, s->sock, 3, true);
	read_greeting(&a, 0, NULL, 0, 1u << 20);

	connect_ok(&b, s->sock, 3, true);
	read_greeting(&b, 1, a_only, 1, 1u << 20);
	expect_join(&a, 1);

	connect_ok(&c, s->sock, 3, true);
	read_greeting(&c, 2, ab, 2, 1u << 20);
	expect_join(&a, 2);
	expect_join(&b, 2);
	tpeer_expect_quiet(&a, 50);
	tpeer_expect_quiet(&b, 50);

	/* Every peer maps the same memory. */
	uint8_t *ma = map_shm(&a), *mc = map_shm(&c);

	ma[4096] = 0xa5;
	ck_assert_int_eq(mc[4096], 0xa5);
	munmap(ma, a.shm_size);
	munmap(mc, c.shm_size);

	/* Doorbells through the received eventfds, vector by vector. */
	ck_assert_int_eq(tpeer_ring(&a, 2, 2), 0);
	ck_assert_int_eq(tpeer_wait_doorbell(&c, 2, TWAIT_MS), 1);
	ck_assert_int_eq(tpeer_ring(&c, 0, 0), 0);
	ck_assert_int_eq(tpeer_ring(&b, 0, 0), 0);
	ck_assert_int_eq(tpeer_wait_doorbell(&a, 0, TWAIT_MS), 2);
	ck_assert_int_eq(tpeer_ring(&b, 1, 1), 0);
	ck_assert_int_eq(tpeer_wait_doorbell(&b, 1, TWAIT_MS), 1);
	/* A ring lands on one vector only. */
	ck_assert_int_eq(tpeer_wait_doorbell(&b, 0, 50), -ETIMEDOUT);
	ck_assert_int_eq(tpeer_wait_doorbell(&c, 1, 50), -ETIMEDOUT);

	/* A leave reaches every remaining peer, and nothing else does. */
	tpeer_close(&b);
	tpeer_expect_leave(&a, 1);
	tpeer_expect_leave(&c, 1);
	ck_assert_int_eq(tpeer_fd(&a, 1, 0), -1);
	tpeer_expect_quiet(&a, 50);
	tpeer_expect_quiet(&c, 50);

	tpeer_close(&a);
	tpeer_expect_leave(&c, 0);
	ck_assert_uint_eq(c.npeers, 0);
	tpeer_close(&c);
	tserver_stop_ok(s);
}
END_TEST

/* ivshmem-protocol(7) rule 18: IDs next-fit. */
START_TEST(test_next_fit_ids)
{
	struct tserver *s = START("--max-peers", "3", NULL);
	struct tpeer a, b, c, d, e;

	tpeer_join_ok(&a, s->sock, 1, false);
	tpeer_join_ok(&b, s->sock, 1, false);
	ck_assert_int_eq(a.id, 0);
	ck_assert_int_eq(b.id, 1);

	/* 0 is free again but the counter is at 2: it is not reused yet. */
	tpeer_close(&a);
	tpeer_expect_leave(&b, 0);
	tpeer_join_ok(&c, s->sock, 1, false);
	ck_assert_int_eq(c.id, 2);
	tpeer_wait_peers_ok(&b, 1);

	/* The counter wraps: 0 is next. */
	tpeer_join_ok(&d, s->sock, 1, false);
	ck_assert_int_eq(d.id, 0);
	ck_assert_uint_eq(d.npeers, 2);
	tpeer_wait_peers_ok(&b, 2);
	tpeer_wait_peers_ok(&c, 2);

	/* 1 frees while the counter is at 1: it is next. */
	tpeer_close(&b);
	tpeer_expect_leave(&c, 1);
	tpeer_expect_leave(&d, 1);
	tpeer_join_ok(&e, s->sock, 1, false);
	ck_assert_int_eq(e.id, 1);
	tpeer_wait_peers_ok(&c, 2);
	tpeer_wait_peers_ok(&d, 2);

	tpeer_close(&c);
	tpeer_close(&d);
	tpeer_close(&e);
	tserver_stop_ok(s);
}
END_TEST

/* ---- clients that go away during their greeting --------------------- */

/* ivshmem-protocol(7), DIFFERENCES FROM QEMU'S EXAMPLE SERVER: a
 * client gone before its greeting ends only its own connection. */
START_TEST(test_early_close)
{
	struct tserver *s = START("-n", "2", NULL);
	struct tpeer obs, p, last;
	struct tmsg m;
	const unsigned rounds = 200;

	tpeer_join_ok(&obs, s->sock, 2, false);
	for (unsigned i = 0; i < rounds; i++) {
		connect_ok(&p, s->sock, 2, false);
		switch (i % 4) {
		case 0: /* close before anything arrives */
			break;
		case 1: /* after the version */
			tpeer_recv_ok(&p, &m, TWAIT_MS);
			break;
		case 2: /* after the shm fd */
			for (int k = 0; k < 3; k++)
				tpeer_recv_ok(&p, &m, TWAIT_MS);
			break;
		case 3: /* half-way through the vectors */
			for (int k = 0; k < 5; k++)
				tpeer_recv_ok(&p, &m, TWAIT_MS);
			break;
		}
		tpeer_close(&p);
	}
	ck_assert(tserver_alive(s));

	tpeer_join_ok(&last, s->sock, 2, false);
	ck_assert(tserver_alive(s));
	/*
	 * Every connection was accepted, even one already closed, so the
	 * observer saw each come (2 vectors) and go, in a valid stream, and
	 * then the last one come: it ends knowing exactly that one.
	 */
	read_until(&obs, 3 + 2 + rounds * 3 + 2);
	ck_assert_uint_eq(obs.npeers, 1);
	tpeer_expect_quiet(&obs, 20);
	/* The last one's greeting may name some that are not gone yet. */
	tpeer_wait_peers_ok(&last, 1);
	tpeer_expect_quiet(&last, 20);

	tpeer_close(&last);
	tpeer_close(&obs);
	tserver_stop_ok(s);
}
END_TEST

/* ---- a peer that does not read -------------------------------------- */

/* ivshmem-protocol(7) rules 4 and 22: nothing dropped. */
START_TEST(test_slow_reader_keeps_everything)
{
	struct tserver *s = START(NULL);
	const unsigned churn = 300, every = 10;
	const unsigned nkept = churn / every;
	struct tpeer idle, p, *kept = g_new0(struct tpeer, nkept);
	unsigned *kept_at = g_new0(unsigned, nkept);
	unsigned *greeted_with = g_new0(unsigned, nkept);
	double worst = 0;
	unsigned k = 0;

	/* It takes its greeting and then reads nothing at all. */
	tpeer_join_ok(&idle, s->sock, 1, false);

	for (unsigned i = 0; i < churn; i++) {
		bool keep = i % every == 0;
		struct tpeer *c = keep ? &kept[k] : &p;
		double t0 = now_seconds();

		connect_ok(c, s->sock, 1, false);
		int r = tpeer_greet(c, 2000);
		double dt = now_seconds() - t0;

		ck_assert_msg(r == 0, "churn %u: greeting %s after %.2f s", i,
			      g_strerror(-r), dt);
		if (dt > worst)
			worst = dt;
		if (keep) {
			greeted_with[k] = c->npeers;
			kept_at[k++] = i;
		}
		else
			tpeer_close(c);
	}
	ck_assert_msg(worst < 2.0, "a greeting took %.2f s", worst);

	/* Its greeting, then every join and every leave, in order. */
	unsigned want = 3 + 1 + churn + (churn - nkept);

	read_until(&idle, want);
	ck_assert_uint_eq(idle.npeers, nkept);
	tpeer_expect_quiet(&idle, 100);

	/* The kept ones also had unread messages queued: each ends knowing
	 * the idle peer and the other kept ones. */
	for (k = 0; k < nkept; k++) {
		unsigned i = kept_at[k];
		/* Its greeting named the idle peer, the earlier kept ones and
		 * any earlier churner whose close the server had not seen
		 * yet (whose leave follows); then come the joins of every
		 * later churner and the leaves of the later closed ones. */
		unsigned early = greeted_with[k] - 1 - k;
		unsigned later = churn - 1 - i;
		unsigned later_kept = nkept - 1 - k;

		want = 3 + greeted_with[k] + 1 + early + later +
		       (later - later_kept);
		read_until(&kept[k], want);
		ck_assert_uint_eq(kept[k].npeers, nkept);
	}
	/* Closing them only now: each close is news to the others. */
	for (k = 0; k < nkept; k++)
		tpeer_expect_quiet(&kept[k], 20);
	for (k = 0; k < nkept; k++)
		tpeer_close(&kept[k]);
	tpeer_close(&idle);
	g_free(kept);
	g_free(kept_at);
	g_free(greeted_with);
	tserver_stop_ok(s);
}
END_TEST

/* ivshmem-protocol(7) rule 22: over the bound, disconnected and
 * announced. */
START_TEST(test_slow_reader_queue_limit)
{
	struct tserver *s = START("--queue-limit", "50", NULL);
	struct tpeer idle, r, c;
	struct tmsg m;
	bool idle_left = false;
	unsigned churns = 0;

	tpeer_join_ok(&idle, s->sock, 1, false);
	tpeer_join_ok(&r, s->sock, 1, false);
	expect_join(&idle, r.id); /* still reads here, not from now on */

	while (!idle_left && churns < 3000) {
		tpeer_join_ok(&c, s->sock, 1, false);
		int id = c.id;

		tpeer_close(&c);
		churns++;
		/* r sees the churner come and go, and maybe the idle leave */
		do {
			tpeer_recv_ok(&r, &m, TWAIT_MS);
			if (m.kind == TMSG_LEAVE && m.id == idle.id)
				idle_left = true;
		} while (!(m.kind == TMSG_LEAVE && m.id == id));
	}
	/* The idle leave may follow the last churner's leave. */
	while (!idle_left && tpeer_recv(&r, 500, &m, NULL) == 1)
		idle_left = m.kind == TMSG_LEAVE && m.id == idle.id;
	ck_assert_msg(idle_left, "the idle peer was never disconnected");
	ck_assert_uint_eq(r.npeers, 0);

	/* It gets what was already in its socket, all valid, then EOF. */
	int ret;
	char *why = NULL;

	do {
		ret = tpeer_recv(&idle, TWAIT_MS, &m, &why);
	} while (ret == 1);
	ck_assert_msg(ret == 0, "idle peer: %d (%s) after %u messages", ret,
		      why ? why : "", idle.nmsgs);
	ck_assert_uint_gt(idle.nmsgs, 5);
	ck_assert_uint_lt(idle.nmsgs, 5 + 2 * churns);
	ck_assert(tserver_log_wait(s, "queue is full", TWAIT_MS));

	/* The server goes on. */
	tpeer_join_ok(&c, s->sock, 1, false);
	ck_assert_uint_eq(c.npeers, 1);
	tpeer_close(&c);
	tpeer_close(&idle);
	tpeer_close(&r);
	tserver_stop_ok(s);
}
END_TEST

/* ---- a peer that writes --------------------------------------------- */

/* ivshmem-protocol(7) rule 21: a peer sends nothing. */
START_TEST(test_writer_disconnected)
{
	struct tserver *s = START(NULL);
	struct tpeer a, b, c, d;
	struct tmsg m;
	char junk[64] = "x";
	int r;

	tpeer_join_ok(&a, s->sock, 1, false);
	tpeer_join_ok(&b, s->sock, 1, false);
	tpeer_wait_peers_ok(&a, 1);

	/* One byte: the server reads it and closes with nothing unread, so
	 * this is a clean EOF. */
	ck_assert_int_eq(send(b.sock, junk, 1, MSG_NOSIGNAL), 1);
	r = tpeer_recv(&b, TWAIT_MS, &m, NULL);
	ck_assert_int_eq(r, 0);
	tpeer_expect_leave(&a, b.id);

	/* More bytes than it reads: the close may show as a reset. */
	tpeer_join_ok(&c, s->sock, 1, false);
	expect_join(&a, c.id);
	ck_assert_int_eq(send(c.sock, junk, sizeof(junk), MSG_NOSIGNAL),
			 (ssize_t)sizeof(junk));
	r = tpeer_recv(&c, TWAIT_MS, &m, NULL);
	ck_assert_msg(r == 0 || r == -ECONNRESET, "got %d", r);
	tpeer_expect_leave(&a, c.id);
	ck_assert(tserver_log_wait(s, "sent data", TWAIT_MS));

	tpeer_join_ok(&d, s->sock, 1, false);
	ck_assert_uint_eq(d.npeers, 1);
	tpeer_close(&a);
	tpeer_close(&b);
	tpeer_close(&c);
	tpeer_close(&d);
	tserver_stop_ok(s);
}
END_TEST

/* ---- out of fds ----------------------------------------------------- */

/* ivshmem-protocol(7) rule 23: out of fds, accepting pauses. */
START_TEST(test_emfile)
{
	struct tserver *s = START(NULL);
	struct tpeer p[4], w1, w2;
	struct rlimit rl;
	struct tmsg m;
	double cpu0, cpu1;

	/* One peer first: the loop is then running and every fd the server
	 * keeps is open. */
	tpeer_join_ok(&p[0], s->sock, 1, false);

	/*
	 * Room for three more peers (a socket and an eventfd each) and one
	 * fd to spare: the next connection could be accepted but not given
	 * its eventfd. It must wait, not be dropped.
	 */
	rl.rlim_cur = rl.rlim_max = proc_fd_limit_leaving(s->pid, 2 * 3 + 1);
	ck_assert_int_eq(prlimit(s->pid, RLIMIT_NOFILE, &rl, NULL), 0);

	for (int i = 1; i < 4; i++)
		tpeer_join_ok(&p[i], s->sock, 1, false);

	connect_ok(&w1, s->sock, 1, false);
	connect_ok(&w2, s->sock, 1, false);
	cpu0 = proc_cpu_seconds(s->pid);
	ck_assert_int_eq(tpeer_recv(&w1, 1000, &m, NULL), -ETIMEDOUT);
	cpu1 = proc_cpu_seconds(s->pid);
	ck_assert(tserver_alive(s));
	ck_assert_msg(cpu1 - cpu0 < 0.3, "server busy while paused: %.2f s",
		      cpu1 - cpu0);
	ck_assert(tserver_log_wait(s, "cannot accept new peers (Too many open files)", TWAIT_MS));

	/* One leave frees two fds: one waiting connection gets in. */
	tpeer_close(&p[1]);
	int r = tpeer_greet(&w1, TWAIT_MS);

	ck_assert_msg(r == 0, "first waiter: %s", g_strerror(-r));
	ck_assert_uint_eq(w1.npeers, 3);
	ck_assert_int_eq(tpeer_recv(&w2, 600, &m, NULL), -ETIMEDOUT);

	tpeer_close(&p[2]);
	r = tpeer_greet(&w2, TWAIT_MS);
	ck_assert_msg(r == 0, "second waiter: %s", g_strerror(-r));
	ck_assert_uint_eq(w2.npeers, 3);

	/* The others' streams stayed whole: greeting, joins and leaves. */
	read_until(&p[0], 4 + 3 + 4);
	read_until(&p[3], 7 + 4);
	for (int i = 0; i < 4; i += 3) {
		ck_assert_uint_eq(p[i].npeers, 3);
		tpeer_expect_quiet(&p[i], 20);
	}
	tpeer_close(&p[0]);
	tpeer_close(&p[3]);
	tpeer_close(&w1);
	tpeer_close(&w2);
	tserver_stop_ok(s);
}
END_TEST

/* ---- every ID in use ------------------------------------------------ */

/* ivshmem-protocol(7) rule 18: every ID in use. */
START_TEST(test_max_peers)
{
	struct tserver *s = START("--max-peers", "4", NULL);
	struct tpeer p[4], extra, late;

	for (int i = 0; i < 4; i++) {
		tpeer_join_ok(&p[i], s->sock, 1, false);
		ck_assert_int_eq(p[i].id, i);
	}
	for (int i = 0; i < 4; i++)
		tpeer_wait_peers_ok(&p[i], 3);

	connect_ok(&extra, s->sock, 1, false);
	expect_refused(&extra);
	tpeer_close(&extra);
	ck_assert(tserver_alive(s));
	ck_assert(tserver_log_wait(s, "every peer ID is in use", TWAIT_MS));
	for (int i = 0; i < 4; i++)
		tpeer_expect_quiet(&p[i], i == 0 ? 200 : 10);

	tpeer_close(&p[2]);
	for (int i = 0; i < 4; i++)
		if (i != 2)
			tpeer_expect_leave(&p[i], 2);
	tpeer_join_ok(&late, s->sock, 1, false);
	ck_assert_int_eq(late.id, 2);
	ck_assert_uint_eq(late.npeers, 3);
	for (int i = 0; i < 4; i++)
		if (i != 2) {
			expect_join(&p[i], 2);
			tpeer_close(&p[i]);
		}
	tpeer_close(&late);
	tserver_stop_ok(s);
}
END_TEST

/* ---- no FD_SETSIZE limit -------------------------------------------- */

/*
 * Connect n peers one after the other; after each join, every earlier
 * peer reads the newcomer's vectors, so that nobody's socket fills up.
 */
static void full_mesh(unsigned n, unsigned vectors)
{
	char nv[16];

	snprintf(nv, sizeof(nv), "%u", vectors);

	struct tserver *s = START("-n", nv, NULL);
	struct tpeer *p = g_new0(struct tpeer, n);

	for (unsigned i = 0; i < n; i++) {
		tpeer_join_ok(&p[i], s->sock, vectors, false);
		ck_assert_int_eq(p[i].id, (int)i);
		ck_assert_uint_eq(p[i].npeers, i);
		for (unsigned j = 0; j < i; j++)
			expect_join(&p[j], (int)i);
	}
	for (unsigned i = 0; i < n; i++) {
		ck_assert_uint_eq(p[i].npeers, n - 1);
		ck_assert_uint_eq(p[i].nmsgs, 3 + n * vectors);
	}
	ck_assert(tserver_alive(s));
	for (unsigned i = 0; i < n; i++)
		tpeer_close(&p[i]);
	g_free(p);
	tserver_stop_ok(s);
}

START_TEST(test_mesh_64_vectors)
{
	full_mesh(64, 64);
}
END_TEST

START_TEST(test_mesh_1000_peers)
{
	full_mesh(1000, 1);
}
END_TEST

/* ---- large sizes ---------------------------------------------------- */

static void check_size(const char *size, bool exact, bool memfd,
		       uint64_t want)
{
	struct tserver *s = START("-l", size,
				  exact ? "--exact-size" : "-F",
				  memfd ? "--memfd" : "-F", NULL);
	struct tpeer p;
	struct stat st;
	char path[128];

	tpeer_join_ok(&p, s->sock, 1, false);
	ck_assert_msg(p.shm_size == want, "-l %s: %llu bytes, want %llu", size,
		      (unsigned long long)p.shm_size,
		      (unsigned long long)want);
	snprintf(path, sizeof(path), "/dev/shm/%s", s->shm_name);
	if (memfd) {
		ck_assert(!shm_exists(s->shm_name));
	} else {
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_uint_eq((uint64_t)st.st_size, want);
	}
	tpeer_close(&p);
	tserver_stop_ok(s);
}

/* ivshmem-protocol(7) rule 20: sizes. */
START_TEST(test_sizes)
{
	check_size("2G", false, false, 2 * GiB);
	check_size("2G", false, true, 2 * GiB);
	check_size("5G", false, false, 8 * GiB);
	check_size("5G", false, true, 8 * GiB);
	check_size("5G", true, false, 5 * GiB);
	check_size("5G", true, true, 5 * GiB);
}
END_TEST

/* ---- bad arguments -------------------------------------------------- */

/* Run with the given extra arguments: it must exit 1 with one sentence
 * naming `needle` on stderr, and create nothing. */
static void refused(const char *opt, const char *value, const char *sock,
		    const char *needle)
{
	struct tserver *s = srv_new();

	tserver_prepare(s);
	if (!sock)
		sock = s->sock;

	const char *args[] = { "-F", "-S", sock, "-M", s->shm_name, opt,
			       value, NULL };

	ck_assert_int_eq(tserver_run(s, args, TWAIT_MS), 1);
	tserver_expect_one_message(s, needle);
	ck_assert(!path_exists(sock));
	ck_assert(!path_exists(s->sock));
	ck_assert(!shm_exists(s->shm_name));
	tserver_cleanup(s);
	ck_assert(!path_exists(s->dir));
}

START_TEST(test_bad_arguments)
{
	char *longpath;

	refused("-l", "0", NULL, "invalid size '0'");
	refused("-l", "12Q", NULL, "invalid size '12Q'");
	refused("-n", "0", NULL, "invalid vector count '0'");
	refused("-n", "100000", NULL, "invalid vector count '100000'");
	refused("--keep-shm=x", NULL, NULL,
		"option '--keep-shm' takes no argument");
	refused("--bogus", NULL, NULL, "unknown option '--bogus'");
	refused("-vQ", NULL, NULL, "unknown option '-Q'");
	/* sun_path holds 107 bytes and a NUL */
	longpath = g_strdup_printf("/tmp/%0120d", 0);
	refused("-v", NULL, longpath, "too long");
	g_free(longpath);
}
END_TEST

/* ---- a second instance ---------------------------------------------- */

/* ivshmem-protocol(7), DIFFERENCES FROM QEMU'S EXAMPLE SERVER:
 * a second server touches nothing. */
START_TEST(test_second_instance)
{
	struct tserver *s = START(NULL), *s2 = srv_new();
	struct tpeer p, q;
	uint8_t *mem;

	tpeer_join_ok(&p, s->sock, 1, false);
	mem = map_shm(&p);
	fill_pattern(mem, p.shm_size);
	munmap(mem, p.shm_size);

	tserver_prepare(s2);

	const char *args[] = { "-F", "-S", s->sock, "-M", s->shm_name, NULL };

	ck_assert_int_eq(tserver_run(s2, args, TWAIT_MS), 1);
	ck_assert(tserver_log_wait(s2, "already listening", 0));
	tserver_cleanup(s2);
	/* Finding the live server did not connect to it: its peers saw
	 * nobody join or leave. */
	tpeer_expect_quiet(&p, 200);

	/* The first one's socket and shm are untouched and it serves. */
	ck_assert(tserver_alive(s));
	ck_assert(path_exists(s->sock));
	ck_assert(shm_exists(s->shm_name));
	tpeer_join_ok(&q, s->sock, 1, false);
	mem = map_shm(&q);
	check_pattern(mem, q.shm_size);
	munmap(mem, q.shm_size);
	ck_assert_uint_eq(q.npeers, 1);
	/* No ID was used up by a probe: next-fit gives 1. */
	ck_assert_int_eq(q.id, 1);

	tpeer_close(&p);
	tpeer_close(&q);
	tserver_stop_ok(s);
}
END_TEST

/* ---- restart after SIGKILL ------------------------------------------ */

/* ivshmem-protocol(7), DIFFERENCES FROM QEMU'S EXAMPLE SERVER:
 * a stale socket is replaced. */
START_TEST(test_stale_socket)
{
	struct tserver *old = START(NULL), *s;
	struct tpeer p;
	struct stat st;

	tpeer_join_ok(&p, old->sock, 1, false);
	tpeer_close(&p);
	tserver_kill(old);
	ck_assert_int_eq(lstat(old->sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));

	s = START("-S", old->sock, "-M", old->shm_name, NULL);
	wait_listening(s);
	tpeer_join_ok(&p, old->sock, 1, false);
	ck_assert_int_eq(p.id, 0);
	tpeer_close(&p);

	tserver_stop_ok(s);
	ck_assert(!path_exists(old->sock));
	ck_assert(!shm_exists(old->shm_name));
	tserver_cleanup(old);
}
END_TEST

START_TEST(test_shm_survives_restart)
{
	struct tserver *old = START("-l", "1M", NULL), *s;
	struct tpeer p;
	uint8_t *mem;

	tpeer_join_ok(&p, old->sock, 1, false);
	mem = map_shm(&p);
	fill_pattern(mem, p.shm_size);
	munmap(mem, p.shm_size);
	tpeer_close(&p);
	tserver_kill(old);
	ck_assert(shm_exists(old->shm_name));

	s = START("-M", old->shm_name, "-l", "1M", NULL);
	tpeer_join_ok(&p, s->sock, 1, false);
	ck_assert_uint_eq(p.shm_size, 1u << 20);
	mem = map_shm(&p);
	check_pattern(mem, p.shm_size);
	munmap(mem, p.shm_size);
	tpeer_close(&p);

	tserver_stop_ok(s);
	ck_assert(!shm_exists(old->shm_name));
	tserver_cleanup(old);
}
END_TEST

/* ---- daemon mode ---------------------------------------------------- */

/* ivshmem-protocol(7), DIFFERENCES FROM QEMU'S EXAMPLE SERVER:
 * the launching command's exit status, the pid file removed. */
START_TEST(test_daemon)
{
	struct tserver *s = srv_new();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char pidfile[128], *text = NULL;
	struct tpeer p;
	long pid;
	int fd;

	/* The daemon is the launcher's child: adopt it to reap it. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	tserver_prepare(s);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", s->dir);
	g_strlcpy(left->pidfile, pidfile, sizeof(left->pidfile));

	const char *args[] = { "-S", s->sock, "-M", s->shm_name, "-p",
			       pidfile, NULL };

	ck_assert_int_eq(tserver_run(s, args, TWAIT_MS), 0);

	/* Serving as soon as the launcher returns: one try, no retry. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	strcpy(sa.sun_path, s->sock);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		      "connect right after the launcher: %s",
		      g_strerror(errno));
	close(fd);
	ck_assert(g_file_get_contents(pidfile, &text, NULL, NULL));
	pid = strtol(text, NULL, 10);
	g_free(text);
	ck_assert_int_gt(pid, 1);
	left->daemon = (pid_t)pid;
	ck_assert_int_eq(kill((pid_t)pid, 0), 0);
	ck_assert(shm_exists(s->shm_name));

	tpeer_join_ok(&p, s->sock, 1, false);
	tpeer_close(&p);

	ck_assert_int_eq(kill((pid_t)pid, SIGTERM), 0);
	ck_assert_int_eq(proc_wait_exit((pid_t)pid, TWAIT_MS), 0);
	left->daemon = -1;
	ck_assert(!path_exists(s->sock));
	ck_assert(!path_exists(pidfile));
	ck_assert(!shm_exists(s->shm_name));
	tserver_cleanup(s);
	ck_assert(!path_exists(s->dir));
}
END_TEST

START_TEST(test_daemon_bad_pidfile)
{
	struct tserver *s = srv_new();
	char pidfile[128];

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	tserver_prepare(s);
	snprintf(pidfile, sizeof(pidfile), "%s/no-such-dir/pid", s->dir);

	const char *args[] = { "-S", s->sock, "-M", s->shm_name, "-p",
			       pidfile, NULL };

	ck_assert_int_ne(tserver_run(s, args, TWAIT_MS), 0);
	/* The launcher returns once the daemon has given up: reap it. */
	while (waitpid(-1, NULL, 0) > 0)
		;
	ck_assert(!path_exists(s->sock));
	ck_assert(!shm_exists(s->shm_name));
	ck_assert(tserver_log_wait(s, "pid file", 0));
	tserver_cleanup(s);
	ck_assert(!path_exists(s->dir));
}
END_TEST

/* ---- signals -------------------------------------------------------- */

static void stop_by_signal(int sig, bool keep_shm)
{
	struct tserver *s = keep_shm ? START("--keep-shm", NULL) : START(NULL);
	struct tpeer p;
	struct tmsg m;

	/* A greeted peer: the loop and its signal watchers are running. */
	tpeer_join_ok(&p, s->sock, 1, false);
	ck_assert(shm_exists(s->shm_name));
	ck_assert_int_eq(kill(s->pid, sig), 0);
	ck_assert_int_eq(proc_wait_exit(s->pid, TWAIT_MS), 0);
	s->pid = -1;
	ck_assert(!path_exists(s->sock));
	ck_assert(shm_exists(s->shm_name) == keep_shm);
	/* The peer sees its connection close. */
	ck_assert_int_eq(tpeer_recv(&p, TWAIT_MS, &m, NULL), 0);
	tpeer_close(&p);
	tserver_cleanup(s);
	ck_assert(!shm_exists(s->shm_name));
}

START_TEST(test_signals)
{
	stop_by_signal(SIGTERM, false);
	stop_by_signal(SIGINT, false);
	stop_by_signal(SIGTERM, true);
	stop_by_signal(SIGINT, true);
}
END_TEST

/* ---- verbose log ---------------------------------------------------- */

START_TEST(test_verbose_log)
{
	struct tserver *s = START("-v", NULL);
	struct tpeer a, b;
	char *line;

	tpeer_join_ok(&a, s->sock, 1, false);
	tpeer_join_ok(&b, s->sock, 1, false);
	line = g_strdup_printf("peer 1 connected (pid %ld, uid %ld)",
			       (long)getpid(), (long)getuid());
	ck_assert_msg(tserver_log_wait(s, line, TWAIT_MS), "no '%s'", line);
	g_free(line);
	tpeer_close(&b);
	line = g_strdup_printf("peer 1 disconnected (pid %ld, uid %ld)",
			       (long)getpid(), (long)getuid());
	ck_assert_msg(tserver_log_wait(s, line, TWAIT_MS), "no '%s'", line);
	g_free(line);
	tpeer_close(&a);
	tserver_stop_ok(s);
}
END_TEST

/* ---- runner --------------------------------------------------------- */

static Suite *server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *tc;

	tc = tcase_with("protocol", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_greeting_and_fanout);
	tcase_add_test(tc, test_next_fit_ids);
	suite_add_tcase(s, tc);

	tc = tcase_with("robustness", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_early_close);
	tcase_add_test(tc, test_slow_reader_keeps_everything);
	tcase_add_test(tc, test_slow_reader_queue_limit);
	tcase_add_test(tc, test_writer_disconnected);
	tcase_add_test(tc, test_emfile);
	tcase_add_test(tc, test_max_peers);
	suite_add_tcase(s, tc);

	tc = tcase_with("scale", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_mesh_64_vectors);
	tcase_add_test(tc, test_mesh_1000_peers);
	tcase_add_test(tc, test_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_with("lifecycle", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_second_instance);
	tcase_add_test(tc, test_stale_socket);
	tcase_add_test(tc, test_shm_survives_restart);
	tcase_add_test(tc, test_daemon);
	tcase_add_test(tc, test_daemon_bad_pidfile);
	tcase_add_test(tc, test_signals);
	tcase_add_test(tc, test_verbose_log);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int ret;

	left = mmap(NULL, sizeof(*left), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (left == MAP_FAILED || tserver_tracking_init() < 0) {
		perror("mmap");
		return EXIT_FAILURE;
	}
	left->daemon = -1;
	ret = run_suite(server_suite());
	remove_leftovers();
	munmap(left, sizeof(*left));
	return ret;
}
