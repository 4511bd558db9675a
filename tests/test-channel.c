/* SPDX-License-Identifier: MIT */
/*
 * Channels between real processes through a real ivshmem-server: a
 * stream of numbered, checksummed messages one way, an echo of random
 * sizes both ways, restarts of either end mid-stream (what survives and
 * what is reported, as ivshmem-channel(7) says), the other end's peer
 * leaving, attach errors that change nothing, a layout written anew under
 * an attached end, and the doorbell of a claimed vector.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "tproc.h"

#define VECTOR 1                /* each end is rung on its own vector 1 */
#define OFFSET 4096             /* the layout's offset in the region */
#define RING 4096               /* small rings: wraps all the time */

static void teardown(void)
{
	tserver_reap_tracked();
}

static struct tserver *start_server(void)
{
	return START("--memfd", "-l", "4M", "-n", "2");
}

static struct ivshmem_peer *join(const struct tserver *s)
{
	const struct ivshmem_peer_config cfg = { .vectors = 2 };
	const struct ivshmem_peer_ops ops = { 0 };
	struct ivshmem_peer *p;

	ck_assert_int_eq(ivshmem_peer_new(&cfg, &ops, NULL, &p), 0);
	ck_assert_int_eq(ivshmem_peer_connect(p, s->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, TWAIT_MS), 0);
	return p;
}

static void write_layout(struct ivshmem_peer *p, uint32_t ring)
{
	const struct ivshmem_channel_spec spec = {
		.name = "data", .ring_size = { ring, ring },
	};
	uint64_t size;
	void *mem;

	ck_assert_int_eq(ivshmem_peer_get_shm(p, &mem, &size), 0);
	ck_assert_int_eq(ivshmem_layout_write(mem, size, OFFSET, &spec, 1, 0),
			 0);
}

static struct ivshmem_channel *attach(struct ivshmem_peer *p, unsigned end,
				      unsigned flags)
{
	const struct ivshmem_channel_config cfg = {
		.offset = OFFSET, .name = "data", .end = end,
		.vector = VECTOR, .flags = flags,
	};
	struct ivshmem_channel *ch = NULL;

	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &ch), 0);
	return ch;
}

static struct ivshmem_channel_stats stats(const struct ivshmem_channel *ch)
{
	struct ivshmem_channel_stats st;

	ck_assert_int_eq(ivshmem_channel_get_stats(ch, &st), 0);
	return st;
}

/* A message: its number, a checksum of the rest, a pattern of the
 * number. Lengths 12..max. */
struct msg_hdr {
	uint32_t seq;
	uint32_t sum;
	uint32_t len;
};

static uint32_t sum_bytes(const uint8_t *p, size_t n)
{
	uint32_t s = 2166136261u;

	for (size_t i = 0; i < n; i++)
		s = (s ^ p[i]) * 16777619u;
	return s;
}

static size_t make_msg(uint8_t *buf, uint32_t seq, size_t len)
{
	struct msg_hdr h = { .seq = seq, .len = (uint32_t)len };

	for (size_t i = sizeof(h); i < len; i++)
		buf[i] = (uint8_t)(seq * 31u + i);
	h.sum = sum_bytes(buf + sizeof(h), len - sizeof(h));
	memcpy(buf, &h, sizeof(h));
	return len;
}

/*
 * The message's number, after checking its length and checksum. Check's
 * assertions write to the runner's pipe each time they pass: in loops of
 * millions, test first and assert only on a failure.
 */
static uint32_t check_msg(const uint8_t *buf, size_t len)
{
	struct msg_hdr h;

	if (len < sizeof(h))
		ck_abort_msg("a message of %zu bytes: too short", len);
	memcpy(&h, buf, sizeof(h));
	if (h.len != len || h.sum != sum_bytes(buf + sizeof(h),
					       len - sizeof(h)))
		ck_abort_msg("message %u: %zu bytes (%u sent), checksum %08x "
			     "(%08x sent)", h.seq, len, h.len,
			     sum_bytes(buf + sizeof(h), len - sizeof(h)),
			     h.sum);
	return h.seq;
}

/* The message is number `seq`. */
static void expect_msg(const uint8_t *buf, size_t len, uint32_t seq)
{
	uint32_t got = check_msg(buf, len);

	if (got != seq)
		ck_abort_msg("message %u where %u was due", got, seq);
}

static size_t rand_len(unsigned *seed, size_t max)
{
	return sizeof(struct msg_hdr) +
	       (size_t)rand_r(seed) % (max - sizeof(struct msg_hdr) + 1);
}

/* Send, sleeping on the doorbell while the ring is full. */
static void send_ok(struct ivshmem_channel *ch, const void *buf, size_t len)
{
	int r;

	while ((r = ivshmem_channel_send(ch, buf, len)) == -EAGAIN) {
		r = ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_WRITABLE,
					 TWAIT_MS);
		if (r <= 0)
			ck_abort_msg("waiting for room: %s", strerror(-r));
	}
	if (r)
		ck_abort_msg("send: %s", strerror(-r));
}

/* Receive, sleeping on the doorbell while the ring is empty. */
static size_t recv_ok(struct ivshmem_channel *ch, void *buf, size_t cap)
{
	ssize_t n;
	int r;

	while ((n = ivshmem_channel_recv(ch, buf, cap)) == -EAGAIN) {
		r = ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_READABLE,
					 TWAIT_MS);
		if (r <= 0)
			ck_abort_msg("waiting for a message: %s",
				     strerror(-r));
	}
	if (n < 0)
		ck_abort_msg("recv: %s", strerror((int)-n));
	return (size_t)n;
}

/* In a child: join, attach end `end`, send messages [from, to) (and a
 * 0-length one to end when `stop`), then exit without detaching when
 * `crash`. Exit status 0 on success. */
static pid_t child_sender(const struct tserver *s, unsigned end,
			  uint32_t from, uint32_t to, bool stop, bool crash,
			  size_t max)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ivshmem_peer *p = join(s);
		struct ivshmem_channel *ch = attach(p, end, 0);
		uint8_t *buf = malloc(max);
		unsigned seed = from + 1;

		for (uint32_t i = from; i < to; i++)
			send_ok(ch, buf, make_msg(buf, i, rand_len(&seed, max)));
		if (stop)
			send_ok(ch, "", 0);
		free(buf);
		if (crash)
			_exit(0);       /* no detach: the end stays marked */
		/* What is in the ring stays there for the reader. */
		ivshmem_channel_detach(ch);
		ivshmem_peer_free(p);
		_exit(0);
	}
	return pid;
}

static void child_ok(pid_t pid)
{
	ck_assert_int_eq(proc_wait_exit(pid, 60000), 0);
}

/* ---- streams ------------------------------------------------------------ */

/* Messages of the long stream: CHANNEL_STREAM_MESSAGES, or 10^7. */
static uint32_t stream_messages(void)
{
	const char *e = getenv("CHANNEL_STREAM_MESSAGES");

	return e ? (uint32_t)strtoul(e, NULL, 10) : 10000000u;
}

START_TEST(stream_two_processes)
{
	struct tserver *s = start_server();
	struct ivshmem_peer *p = join(s);
	const uint32_t n = stream_messages();
	struct ivshmem_channel *ch;
	struct ivshmem_channel_stats st;
	uint8_t buf[256];
	pid_t pid;

	write_layout(p, 64 * 1024);
	ch = attach(p, 1, 0);
	pid = child_sender(s, 0, 0, n, true, false, sizeof(buf));
	for (uint32_t i = 0;; i++) {
		size_t len = recv_ok(ch, buf, sizeof(buf));

		if (!len) {
			ck_assert_uint_eq(i, n);
			break;
		}
		expect_msg(buf, len, i);
	}
	st = stats(ch);
	ck_assert_uint_eq(st.received, (uint64_t)n + 1);
	ck_assert_int_eq(st.error, 0);
	/* The sender rang at most once per doorbell we asked for, the one
	 * of the attach included (its counters are in the shared memory,
	 * modulo 2^32; n stays below that). */
	ck_assert_uint_le(st.other.rung, st.sleeps + 1);
	ck_assert_uint_le(st.other.rung, st.doorbells_received + 1);
	child_ok(pid);
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(p);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(echo_random_sizes)
{
	enum { N = 20000 };
	struct tserver *s = start_server();
	struct ivshmem_peer *p = join(s);
	struct ivshmem_channel *ch;
	struct ivshmem_channel_stats st;
	uint8_t buf[2048], got[2048];
	uint32_t sent = 0, received = 0;
	unsigned seed = 7;
	size_t max;
	pid_t pid;

	write_layout(p, RING);
	ch = attach(p, 0, 0);
	max = stats(ch).max_msg;
	ck_assert_uint_eq(max, RING / 2 - 8);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ivshmem_peer *q = join(s);
		struct ivshmem_channel *e = attach(q, 1, 0);
		size_t len;

		while ((len = recv_ok(e, got, sizeof(got))) > 0)
			send_ok(e, got, len);
		ivshmem_channel_detach(e);
		ivshmem_peer_free(q);
		_exit(0);
	}
	while (received < N) {
		ssize_t k;

		while (sent < N && sent - received < 4) {
			/* Every size up to the maximum, the maximum itself
			 * now and then. */
			size_t len = sent % 97 == 0 ? max : rand_len(&seed, max);
			int r = ivshmem_channel_send(ch, buf,
						     make_msg(buf, sent, len));

			if (r == -EAGAIN)
				break;
			if (r)
				ck_abort_msg("echo: send: %s", strerror(-r));
			sent++;
		}
		k = ivshmem_channel_recv(ch, got, sizeof(got));
		if (k == -EAGAIN) {
			int r = ivshmem_channel_wait(ch,
				IVSHMEM_CHANNEL_READABLE, TWAIT_MS);
			ck_assert_msg(r > 0, "echo: %s", strerror(-r));
			continue;
		}
		if (k <= 0)
			ck_abort_msg("echo: recv returned %zd", k);
		expect_msg(got, (size_t)k, received);
		received++;
	}
	send_ok(ch, "", 0);
	child_ok(pid);
	st = stats(ch);
	ck_assert_uint_eq(st.sent, N + 1);
	ck_assert_uint_eq(st.received, N);
	ck_assert_uint_eq(st.lost, 0);
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(p);
	tserver_stop_ok(s);
}
END_TEST

/* ---- restarts ----------------------------------------------------------- */

/*
 * The receiver takes `first` messages, then its process ends (crash:
 * without detaching) and a new process, with a new peer ID, attaches to
 * the same end (reset: discarding what waits). Returns what the second
 * receiver got, in *got2; the sender is this process.
 */
static void receiver_restart(bool crash, bool reset)
{
	enum { N = 200, FIRST = 60 };
	struct tserver *s = start_server();
	struct ivshmem_peer *p = join(s);
	struct ivshmem_channel *ch;
	struct ivshmem_channel_stats st;
	uint8_t buf[256];
	int fds[2], r;
	pid_t pid;

	write_layout(p, 16 * 1024);
	ch = attach(p, 0, 0);
	for (uint32_t i = 0; i < N; i++)
		send_ok(ch, buf, make_msg(buf, i, 64));
	ck_assert_int_eq(pipe(fds), 0);

	/* The first receiver: FIRST messages, in order. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ivshmem_peer *q = join(s);
		struct ivshmem_channel *e = attach(q, 1, 0);

		for (uint32_t i = 0; i < FIRST; i++)
			expect_msg(buf, recv_ok(e, buf, sizeof(buf)), i);
		if (crash)
			_exit(0);
		ivshmem_channel_detach(e);
		ivshmem_peer_free(q);
		_exit(0);
	}
	child_ok(pid);
	/* The second: what it gets, through the pipe. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ivshmem_peer *q = join(s);
		struct ivshmem_channel *e = attach(q, 1,
			reset ? IVSHMEM_CHANNEL_RESET : 0);
		uint32_t seq, discarded = (uint32_t)stats(e).discarded;
		size_t len;

		ck_assert_int_eq(write(fds[1], &discarded, 4), 4);
		while ((len = recv_ok(e, buf, sizeof(buf))) > 0) {
			seq = check_msg(buf, len);
			ck_assert_int_eq(write(fds[1], &seq, 4), 4);
		}
		ivshmem_channel_detach(e);
		ivshmem_peer_free(q);
		_exit(0);
	}
	close(fds[1]);
	{
		uint32_t discarded, seq, expect;

		ck_assert_int_eq(read(fds[0], &discarded, 4), 4);
		ck_assert_uint_eq(discarded, reset ? N - FIRST : 0);
		/* After a reset, what is sent from now on arrives. */
		expect = reset ? N : FIRST;
		if (reset) {
			for (uint32_t i = N; i < N + 10; i++)
				send_ok(ch, buf, make_msg(buf, i, 64));
		}
		send_ok(ch, "", 0);
		while (read(fds[0], &seq, 4) == 4) {
			ck_assert_uint_eq(seq, expect);
			expect++;
		}
		/* Nothing lost without reset, nothing duplicated ever. */
		ck_assert_uint_eq(expect, reset ? N + 10 : N);
	}
	close(fds[0]);
	child_ok(pid);
	/* The sender saw the receiver's new epochs (two attaches) and how
	 * many of its messages the reset dropped. */
	r = ivshmem_channel_dispatch(ch);
	ck_assert_int_ge(r, 0);
	st = stats(ch);
	ck_assert_uint_ge(st.peer_restarts, 1);
	ck_assert_uint_eq(st.lost, reset ? N - FIRST : 0);
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(p);
	tserver_stop_ok(s);
}

START_TEST(receiver_restarts)
{
	receiver_restart(false, false);
}
END_TEST

START_TEST(receiver_crashes)
{
	receiver_restart(true, false);
}
END_TEST

START_TEST(receiver_restarts_with_reset)
{
	receiver_restart(true, true);
}
END_TEST

/* The sender's process dies mid-stream without detaching; a new one (a
 * new peer ID) continues from where the application says. The receiver
 * gets every message once, in order, and sees the restart. */
START_TEST(sender_crashes)
{
	enum { N = 3000, CUT = 1234 };
	struct tserver *s = start_server();
	struct ivshmem_peer *p = join(s);
	struct ivshmem_channel *ch;
	struct ivshmem_channel_stats st;
	uint8_t buf[512];
	uint32_t expect = 0;
	pid_t pid;
	int r;

	write_layout(p, RING);
	ch = attach(p, 1, 0);
	pid = child_sender(s, 0, 0, CUT, false, true, sizeof(buf));
	while (expect < CUT) {
		expect_msg(buf, recv_ok(ch, buf, sizeof(buf)), expect);
		expect++;
	}
	child_ok(pid);
	/* The crashed end is still marked attached, by a peer that left. */
	do {
		r = ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_PEER, TWAIT_MS);
		ck_assert_int_gt(r, 0);
	} while (stats(ch).other.attached &&
		 ivshmem_peer_get_vectors(p, stats(ch).other.peer) >= 0);
	pid = child_sender(s, 0, CUT, N, true, false, sizeof(buf));
	for (;;) {
		size_t len = recv_ok(ch, buf, sizeof(buf));

		if (!len)
			break;
		expect_msg(buf, len, expect);
		expect++;
	}
	ck_assert_uint_eq(expect, N);
	child_ok(pid);
	st = stats(ch);
	ck_assert_uint_ge(st.peer_restarts, 1);
	ck_assert_uint_eq(st.received, N + 1);
	ck_assert_uint_eq(st.discarded, 0);
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(p);
	tserver_stop_ok(s);
}
END_TEST

/* The other end's peer leaves: a waiting end hears it (PEER) from the
 * server's leave notice, and its later sends ring nobody. */
START_TEST(peer_leaves)
{
	struct tserver *s = start_server();
	struct ivshmem_peer *p = join(s);
	struct ivshmem_channel *ch;
	struct ivshmem_channel_stats st;
	int r, other;
	pid_t pid;

	write_layout(p, RING);
	ch = attach(p, 0, 0);
	pid = child_sender(s, 1, 0, 0, false, true, 64);
	child_ok(pid);
	r = ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_PEER, TWAIT_MS);
	ck_assert_int_gt(r, 0);
	/* Until the leave notice is in, PEER may be the attach itself. */
	for (int i = 0; i < 100; i++) {
		st = stats(ch);
		if (ivshmem_peer_get_vectors(p, st.other.peer) < 0)
			break;
		ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_PEER, 100);
	}
	st = stats(ch);
	other = st.other.peer;
	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(st.other.attached, 1);
	ck_assert_int_eq(ivshmem_peer_get_vectors(p, other), -ENOENT);
	ck_assert_int_eq(ivshmem_channel_send(ch, "x", 1), 0);
	ck_assert_int_eq(ivshmem_channel_send(ch, "y", 1), 0);
	st = stats(ch);
	ck_assert_uint_eq(st.sent, 2);
	ck_assert_uint_eq(st.tx_fill, 2 * 16);
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(p);
	tserver_stop_ok(s);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

START_TEST(attach_errors_change_nothing)
{
	struct tserver *s = start_server();
	struct ivshmem_peer *p = join(s), *q = join(s);
	const struct ivshmem_peer_config nomap_cfg = {
		.vectors = 2, .flags = IVSHMEM_PEER_NO_MAP,
	};
	const struct ivshmem_peer_ops ops = { 0 };
	struct ivshmem_channel_config cfg = {
		.offset = OFFSET, .name = "data", .end = 0, .vector = VECTOR,
	};
	struct ivshmem_peer *nomap, *idle;
	struct ivshmem_channel *ch = NULL, *ch2 = NULL, *bad = NULL;
	uint64_t size;
	uint8_t *mem, *before;

	ck_assert_int_eq(ivshmem_peer_get_shm(p, (void **)&mem, &size), 0);
	/* No layout yet. */
	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &bad), -EBADMSG);
	write_layout(p, RING);
	before = g_memdup2(mem, size);

	cfg.name = "nosuch";
	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &bad), -ENOENT);
	cfg.name = "bad name";
	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &bad), -EINVAL);
	cfg.name = "data";
	cfg.offset = OFFSET + 8;
	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &bad), -EINVAL);
	cfg.offset = OFFSET + 64;
	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &bad), -EBADMSG);
	cfg.offset = OFFSET;
	cfg.vector = 2;
	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &bad), -ERANGE);
	cfg.vector = VECTOR;
	cfg.end = 2;
	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &bad), -EINVAL);
	cfg.end = 0;
	cfg.flags = 8;
	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &bad), -EINVAL);
	cfg.flags = 0;
	ck_assert_int_eq(ivshmem_peer_new(&nomap_cfg, &ops, NULL, &nomap), 0);
	ck_assert_int_eq(ivshmem_channel_attach(nomap, &cfg, &bad), -ENOTCONN);
	ck_assert_int_eq(ivshmem_peer_connect(nomap, s->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(nomap, TWAIT_MS), 0);
	ck_assert_int_eq(ivshmem_channel_attach(nomap, &cfg, &bad), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_new(&nomap_cfg, &ops, NULL, &idle), 0);
	ck_assert_int_eq(ivshmem_channel_attach(idle, &cfg, &bad), -ENOTCONN);
	ck_assert_ptr_null(bad);
	/* Nothing was written by the refusals. */
	ck_assert_int_eq(memcmp(before, mem, size), 0);

	/* End 0 is taken by p: q may not have it, p's vector is busy. */
	ch = attach(p, 0, 0);
	ck_assert_int_eq(ivshmem_channel_attach(q, &cfg, &bad), -EADDRINUSE);
	cfg.end = 1;
	ck_assert_int_eq(ivshmem_channel_attach(p, &cfg, &bad), -EBUSY);
	ck_assert_int_eq(ivshmem_channel_attach(q, &cfg, &ch2), 0);
	ck_assert_ptr_null(bad);

	ivshmem_channel_detach(ch2);
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(nomap);
	ivshmem_peer_free(idle);
	ivshmem_peer_free(q);
	ivshmem_peer_free(p);
	g_free(before);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(layout_written_anew)
{
	struct tserver *s = start_server();
	struct ivshmem_peer *p = join(s);
	struct ivshmem_channel *ch;

	write_layout(p, RING);
	ch = attach(p, 0, 0);
	ck_assert_int_ge(ivshmem_channel_dispatch(ch), 0);
	write_layout(p, RING);
	ck_assert_int_eq(ivshmem_channel_dispatch(ch), -ESTALE);
	ck_assert_int_eq(ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_READABLE, 0),
			 -ESTALE);
	ck_assert_int_eq(stats(ch).error, -ESTALE);
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(p);
	tserver_stop_ok(s);
}
END_TEST

/* While a channel holds vector 1, its doorbells wake the channel's fd and
 * not ops->doorbell; after the detach they are the peer's again. */
static unsigned doorbells_seen;

static void on_doorbell(void *user, struct ivshmem_peer *peer,
			unsigned vector, uint64_t count)
{
	(void)user;
	(void)peer;
	if (vector == VECTOR)
		doorbells_seen += (unsigned)count;
}

START_TEST(claimed_vector_and_timeout)
{
	const struct ivshmem_peer_config pcfg = { .vectors = 2 };
	const struct ivshmem_peer_ops ops = { .doorbell = on_doorbell };
	struct tserver *s = start_server();
	struct ivshmem_peer *p;
	struct ivshmem_channel *ch;
	int id;

	ck_assert_int_eq(ivshmem_peer_new(&pcfg, &ops, NULL, &p), 0);
	ck_assert_int_eq(ivshmem_peer_connect(p, s->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, TWAIT_MS), 0);
	id = ivshmem_peer_get_id(p);
	write_layout(p, RING);
	ch = attach(p, 0, 0);
	ck_assert_int_eq(ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_READABLE,
					      100), -ETIMEDOUT);
	ck_assert_int_eq(ivshmem_peer_ring(p, id, VECTOR), 0);
	ck_assert_int_eq(ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_READABLE,
					      100), -ETIMEDOUT);
	ivshmem_peer_dispatch(p);
	ck_assert_uint_eq(doorbells_seen, 0);
	ck_assert_uint_eq(stats(ch).doorbells_received, 1);
	ivshmem_channel_detach(ch);
	ck_assert_int_eq(ivshmem_peer_ring(p, id, VECTOR), 0);
	for (int i = 0; i < 100 && !doorbells_seen; i++) {
		usleep(10000);
		ivshmem_peer_dispatch(p);
	}
	ck_assert_uint_eq(doorbells_seen, 1);
	ivshmem_peer_free(p);
	tserver_stop_ok(s);
}
END_TEST

/* ---- ivshmem-ctl channel ----------------------------------------------- */

/* `ivshmem-ctl channel SUB -S SOCK ARGS...` started, stdin open. */
#define CTL(p, s, sub, ...) do { \
	const char *const a_[] = { "channel", sub, "-S", (s)->sock, \
				   ##__VA_ARGS__, NULL }; \
	proc_start(p, proc_ctl_path(), a_); \
} while (0)

/* It exits with status, its stderr is exactly err ("" for none). */
static void ctl_done(struct proc *p, int status, const char *err)
{
	proc_close_in(p);
	EXPECT_EXIT(p, status);
	ck_assert_str_eq(proc_stderr(p), err);
	proc_free(p);
}

START_TEST(ctl_channel_talks)
{
	struct tserver *s = start_server();
	struct proc p;

	CTL(&p, s, "init", "echo:4K", "data:64K:16K:1000");
	EXPECT(&p, "layout offset=0 size=91584 channels=2");
	ctl_done(&p, 0, "");
	CTL(&p, s, "list");
	EXPECT(&p, "channel name=\"echo\" ring0=4096 ring1=4096 max=2040 end0-state=detached end0-peer=none end1-state=detached end1-peer=none");
	EXPECT(&p, "channel name=\"data\" ring0=65536 ring1=16384 max=1000 end0-state=detached end0-peer=none end1-state=detached end1-peer=none");
	ctl_done(&p, 0, "");

	/* Three lines, an empty one among them, wait in the ring... */
	CTL(&p, s, "send", "echo");
	proc_send(&p, "hello");
	proc_send(&p, "%s", "");
	proc_send(&p, "last line");
	ctl_done(&p, 0, "");
	CTL(&p, s, "stat", "echo");
	EXPECT_PREFIX(&p, "channel name=\"echo\" ring0=4096 ring1=4096 max=2040 fill0=48 fill1=0 end0-state=detached");
	ctl_done(&p, 0, "");
	/* ...and come out in order; --json says the same. */
	CTL(&p, s, "recv", "--count", "2", "echo");
	EXPECT(&p, "hello");
	EXPECT(&p, "%s", "");
	ctl_done(&p, 0, "");
	CTL(&p, s, "recv", "--json", "--count", "1", "echo");
	EXPECT(&p, "{\"event\":\"message\",\"length\":9,\"data\":\"last line\"}");
	ctl_done(&p, 0, "");
	/* Bytes that are not text, a NUL among them, come out as hex,
	 * every one of them. */
	{
		const struct ivshmem_channel_config cfg = {
			.offset = 0, .name = "echo", .end = 0, .vector = 0,
		};
		struct ivshmem_peer *peer = join(s);
		struct ivshmem_channel *ch;

		ck_assert_int_eq(ivshmem_channel_attach(peer, &cfg, &ch), 0);
		ck_assert_int_eq(ivshmem_channel_send(ch, "a\0b\xff", 4), 0);
		ivshmem_channel_detach(ch);
		ivshmem_peer_free(peer);
	}
	CTL(&p, s, "recv", "--json", "--count", "1", "echo");
	EXPECT(&p, "{\"event\":\"message\",\"length\":4,\"hex\":\"610062ff\"}");
	ctl_done(&p, 0, "");
	tserver_stop_ok(s);
}
END_TEST

/* Another peer truncates the shared memory under a waiting recv: it
 * says so and exits 1, it does not die of SIGBUS. */
START_TEST(ctl_channel_shrunk)
{
	struct tserver *s = START("-l", "4M", "-n", "2");
	struct ivshmem_peer *peer;
	struct proc p;
	int ids[2];

	CTL(&p, s, "init", "echo:4K");
	EXPECT(&p, "layout offset=0 size=8960 channels=1");
	ctl_done(&p, 0, "");
	peer = join(s);
	CTL(&p, s, "recv", "echo");
	proc_wait_mapped(p.pid, "/ivshmem-ctl", s->shm_name);
	while (ivshmem_peer_get_peers(peer, ids, 2) < 1)
		ck_assert_int_ge(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(ftruncate(ivshmem_peer_get_shm_fd(peer), 0), 0);
	/* Waiting or not yet, it touches the channel: wake it. */
	ck_assert_int_eq(ivshmem_peer_ring(peer, ids[0], 0), 0);
	ck_assert_int_eq(ivshmem_peer_ring(peer, ids[0], 1), 0);
	ctl_done(&p, 1, "ivshmem-ctl: the shared memory shrank while in use: another peer truncated it (ivshmem-server --memfd seals it against that)\n");
	ivshmem_peer_free(peer);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(ctl_channel_errors)
{
	struct tserver *s = start_server();
	char big[3001];
	struct proc p;

	CTL(&p, s, "list");
	ctl_done(&p, 1, "ivshmem-ctl: no channel layout at offset 0 of the shared memory: write one with 'ivshmem-ctl channel init'\n");
	CTL(&p, s, "init", "echo:4K");
	EXPECT(&p, "layout offset=0 size=8960 channels=1");
	ctl_done(&p, 0, "");
	/* A refused init leaves the layout as it was. */
	CTL(&p, s, "init", "x:1000");
	proc_close_in(&p);
	EXPECT_EXIT(&p, 2);
	ck_assert_ptr_nonnull(strstr(proc_stderr(&p), "invalid channels"));
	proc_free(&p);
	CTL(&p, s, "init", "big:1G");
	proc_close_in(&p);
	EXPECT_EXIT(&p, 1);
	ck_assert_ptr_nonnull(strstr(proc_stderr(&p), "it does not fit"));
	proc_free(&p);
	CTL(&p, s, "list");
	EXPECT(&p, "channel name=\"echo\" ring0=4096 ring1=4096 max=2040 end0-state=detached end0-peer=none end1-state=detached end1-peer=none");
	ctl_done(&p, 0, "");

	CTL(&p, s, "recv", "nosuch");
	ctl_done(&p, 1, "ivshmem-ctl: no channel named 'nosuch' in the layout at offset 0 ('ivshmem-ctl channel list' shows them)\n");
	CTL(&p, s, "recv", "--timeout", "0.2", "echo");
	ctl_done(&p, 1, "ivshmem-ctl: timed out after 0.2 s: the other end of channel 'echo' sent nothing\n");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CTL(&p, s, "send", "echo");
	proc_send(&p, "ok");
	proc_send(&p, "%s", big);
	proc_send(&p, "never sent");
	ctl_done(&p, 1, "ivshmem-ctl: line 2 is 3000 bytes, over the channel's maximum of 2040: nothing more was sent\n");
	CTL(&p, s, "recv", "--count", "1", "echo");
	EXPECT(&p, "ok");
	ctl_done(&p, 0, "");
	CTL(&p, s, "recv", "--timeout", "0.2", "echo");
	ctl_done(&p, 1, "ivshmem-ctl: timed out after 0.2 s: the other end of channel 'echo' sent nothing\n");
	CTL(&p, s, "bogus");
	proc_close_in(&p);
	EXPECT_EXIT(&p, 2);
	proc_free(&p);
	CTL(&p, s, "list", "--offset", "100");
	proc_close_in(&p);
	EXPECT_EXIT(&p, 2);
	proc_free(&p);
	tserver_stop_ok(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("channel");
	TCase *tc = tcase_with("channel", 120, teardown);
	TCase *stream = tcase_with("stream", 600, teardown);

	tcase_add_test(tc, echo_random_sizes);
	tcase_add_test(tc, receiver_restarts);
	tcase_add_test(tc, receiver_crashes);
	tcase_add_test(tc, receiver_restarts_with_reset);
	tcase_add_test(tc, sender_crashes);
	tcase_add_test(tc, peer_leaves);
	tcase_add_test(tc, attach_errors_change_nothing);
	tcase_add_test(tc, layout_written_anew);
	tcase_add_test(tc, claimed_vector_and_timeout);
	tcase_add_test(tc, ctl_channel_talks);
	tcase_add_test(tc, ctl_channel_errors);
	tcase_add_test(tc, ctl_channel_shrunk);
	suite_add_tcase(s, tc);
	tcase_add_test(stream, stream_two_processes);
	suite_add_tcase(s, stream);
	return run_tracked_suite(s);
}
