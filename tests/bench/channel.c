/* SPDX-License-Identifier: MIT */
/*
 * Channel benchmark: two processes, A (this one) and B (a child), join a
 * real ivshmem-server and talk over a channel (ivshmem-channel(7)). Each
 * figure is a ratio to a floor measured in the same run between the same
 * two processes, pinned to two CPUs when there are two:
 *
 *   rtt-poll    a 64-byte round trip, both sides spinning on recv, against
 *               a shared-memory flag ping-pong (target: at most 1.5x);
 *   rtt-sleep   a 64-byte round trip, the receiver asleep on its doorbell
 *               (dispatch, then poll() on the channel's fd), against an
 *               eventfd ping-pong (at most 1.15x);
 *   stream      64-byte messages one way, batches of reserve/commit with
 *               IVSHMEM_CHANNEL_MORE, the consumer waiting with
 *               ivshmem_channel_wait() when it catches up, against a
 *               minimal fixed-slot SPSC ring in the same shared memory
 *               (at least 0.7x) and against an AF_UNIX SOCK_SEQPACKET
 *               socketpair (at least 10x); the doorbells rung per
 *               consumer sleep (at most 1); stream-spin the same with the
 *               consumer spinning on recv, as the floor's does;
 *   64k-copy    64 KiB messages through send/recv, against one core's
 *               memcpy of 64 KiB (at least 0.5x); 64k-zero-copy the same
 *               through reserve/commit and peek/release, written in place
 *               and every cache line of it read once.
 *
 * A missed target is reported, never an error: the exit status is 1 only
 * for a functional failure (a lost or wrong message, a library error).
 * Usage: bench-channel [--quick]
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define LAYOUT_OFFSET 0
#define RAW_OFFSET (8u << 20)   /* the floors' flags and ring */
#define SLOTS 4096u             /* the floor ring's 64-byte slots */
#define BATCH 32u
#define BIG (64u * 1024u)

struct raw {                    /* at RAW_OFFSET, lines apart */
	_Alignas(64) _Atomic uint32_t ping;
	_Alignas(64) _Atomic uint32_t pong;
	_Alignas(64) _Atomic uint32_t head;
	_Alignas(64) _Atomic uint32_t tail;
	_Alignas(64) uint8_t slot[SLOTS][64];
};

static int failures;
static double seconds_per_phase = 1.0;
/* The server and B, to stop on the way out whatever happens. */
static struct tserver srv;
static pid_t server_owner, b_pid = -1;

static void die(const char *what, int err)
{
	fprintf(stderr, "bench-channel: %s: %s\n", what, strerror(err));
	exit(1);
}

static void cleanup(void)
{
	if (getpid() != server_owner)
		return;
	if (b_pid > 0) {
		kill(b_pid, SIGKILL);
		waitpid(b_pid, NULL, 0);
	}
	if (srv.pid > 0)
		tserver_stop(&srv);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* The two processes step through the phases together. */
static int to_b[2], to_a[2];

static void sync_send(int fd, uint64_t v)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		die("pipe", errno);
}

static uint64_t sync_recv(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		die("pipe", errno ? errno : EPIPE);
	return v;
}

static struct ivshmem_peer *join(const char *sock, void **mem, uint64_t *size)
{
	const struct ivshmem_peer_config cfg = { .vectors = 2 };
	const struct ivshmem_peer_ops ops = { 0 };
	struct ivshmem_peer *p;
	int r;

	if ((r = ivshmem_peer_new(&cfg, &ops, NULL, &p)) < 0 ||
	    (r = ivshmem_peer_connect(p, sock)) < 0 ||
	    (r = ivshmem_peer_wait_ready(p, 10000)) < 0)
		die("joining the server", -r);
	ivshmem_peer_get_shm(p, mem, size);
	return p;
}

static struct ivshmem_channel *attach(struct ivshmem_peer *p, unsigned end)
{
	const struct ivshmem_channel_config cfg = {
		.offset = LAYOUT_OFFSET, .name = "bench", .end = end,
		.vector = 1,
	};
	struct ivshmem_channel *ch;
	int r = ivshmem_channel_attach(p, &cfg, &ch);

	if (r < 0)
		die("attaching", -r);
	return ch;
}

/* Spin until a message comes; its length. */
static size_t spin_recv(struct ivshmem_channel *ch, void *buf, size_t cap)
{
	ssize_t n;

	while ((n = ivshmem_channel_recv(ch, buf, cap)) == -EAGAIN)
		;
	if (n < 0)
		die("recv", (int)-n);
	return (size_t)n;
}

/* Sleep on the doorbell until a message comes (the caller's-loop path:
 * dispatch asks for the doorbell, poll() sleeps). */
static size_t sleep_recv(struct ivshmem_channel *ch, void *buf, size_t cap)
{
	struct pollfd pfd = { .fd = ivshmem_channel_get_fd(ch),
			      .events = POLLIN };
	ssize_t n;

	while ((n = ivshmem_channel_recv(ch, buf, cap)) == -EAGAIN) {
		int r = ivshmem_channel_dispatch(ch);

		if (r < 0)
			die("dispatch", -r);
		if (!(r & IVSHMEM_CHANNEL_READABLE) && poll(&pfd, 1, 5000) == 0)
			die("a doorbell", ETIMEDOUT);
	}
	if (n < 0)
		die("recv", (int)-n);
	return (size_t)n;
}

/* Receive, waiting with ivshmem_channel_wait() (a short spin, then the
 * doorbell) while the ring is empty; the length. */
static size_t wait_recv(struct ivshmem_channel *ch, void *buf, size_t cap)
{
	ssize_t n;

	while ((n = ivshmem_channel_recv(ch, buf, cap)) == -EAGAIN)
		ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_READABLE, 5000);
	if (n < 0)
		die("recv", (int)-n);
	return (size_t)n;
}

static void send_wait(struct ivshmem_channel *ch, const void *buf, size_t len)
{
	int r;

	while ((r = ivshmem_channel_send(ch, buf, len)) == -EAGAIN)
		ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_WRITABLE, 5000);
	if (r < 0)
		die("send", -r);
}

enum phase {
	PH_FLAG, PH_RTT_POLL, PH_EVENTFD, PH_RTT_SLEEP, PH_SPSC, PH_STREAM,
	PH_STREAM_SPIN,
	PH_SEQPACKET, PH_COPY, PH_ZERO, PH_END,
};

/* ---- B: the other side of each phase ----------------------------------- */

static void b_main(const char *sock, int efd_a, int efd_b, int sp)
{
	void *mem;
	uint64_t size, n;
	struct ivshmem_peer *p = join(sock, &mem, &size);
	struct ivshmem_channel *ch;
	struct raw *raw = (struct raw *)((uint8_t *)mem + RAW_OFFSET);
	static uint8_t buf[BIG];

	pin(1);
	sync_recv(to_b[0]);
	ch = attach(p, 1);
	sync_send(to_a[1], 0);
	for (;;) {
		enum phase ph = (enum phase)sync_recv(to_b[0]);

		n = sync_recv(to_b[0]);
		sync_send(to_a[1], 0);
		switch (ph) {
		case PH_FLAG:
			for (uint32_t i = 1; i <= n; i++) {
				while (atomic_load_explicit(&raw->ping,
					memory_order_acquire) != i)
					;
				atomic_store_explicit(&raw->pong, i,
						      memory_order_release);
			}
			break;
		case PH_RTT_POLL:
			for (uint64_t i = 0; i < n; i++) {
				size_t len = spin_recv(ch, buf, sizeof(buf));

				send_wait(ch, buf, len);
			}
			break;
		case PH_EVENTFD:
			for (uint64_t i = 0; i < n; i++) {
				uint64_t v;

				if (read(efd_b, &v, 8) != 8 ||
				    write(efd_a, &v, 8) != 8)
					die("eventfd", errno);
			}
			break;
		case PH_RTT_SLEEP:
			for (uint64_t i = 0; i < n; i++) {
				size_t len = sleep_recv(ch, buf, sizeof(buf));

				send_wait(ch, buf, len);
			}
			break;
		case PH_SPSC: {
			uint32_t tail = 0, head = 0;
			uint64_t sum = 0;
			uint8_t rec[64];

			while (tail != (uint32_t)n) {
				if (tail == head) {
					head = atomic_load_explicit(&raw->head,
						memory_order_acquire);
					continue;
				}
				/* Take the record out, as recv does. */
				memcpy(rec, raw->slot[tail % SLOTS], 64);
				sum += rec[0];
				tail++;
				atomic_store_explicit(&raw->tail, tail,
						      memory_order_release);
			}
			if (sum == 1)
				fputs("", stderr);
			break;
		}
		case PH_STREAM:
			for (uint64_t i = 0; i < n; i++) {
				size_t k = wait_recv(ch, buf, sizeof(buf));

				if (k != 64 || memcmp(buf, &i, 8))
					die("the stream", EBADMSG);
			}
			break;
		case PH_STREAM_SPIN:
			for (uint64_t i = 0; i < n; i++) {
				size_t k = spin_recv(ch, buf, sizeof(buf));

				if (k != 64 || memcmp(buf, &i, 8))
					die("the stream", EBADMSG);
			}
			break;
		case PH_SEQPACKET:
			for (uint64_t i = 0; i < n; i++) {
				if (recv(sp, buf, 64, 0) != 64)
					die("seqpacket", errno);
			}
			break;
		case PH_COPY:
			for (uint64_t i = 0; i < n; i++) {
				size_t k = wait_recv(ch, buf, sizeof(buf));

				if (k != BIG || buf[100] != (uint8_t)i)
					die("64 KiB copy", EBADMSG);
			}
			break;
		case PH_ZERO:
			for (uint64_t i = 0; i < n; i++) {
				const void *in;
				size_t len;
				int r;
				uint64_t x = 0;

				while ((r = ivshmem_channel_peek(ch, &in,
						&len)) == -EAGAIN)
					ivshmem_channel_wait(ch,
						IVSHMEM_CHANNEL_READABLE, 5000);
				if (r < 0 || len != BIG)
					die("64 KiB zero copy", r ? -r : EBADMSG);
				/* In place: every line of it read once. */
				for (size_t w = 0; w < BIG / 8; w += 8)
					x |= ((const uint64_t *)in)[w] ^
					     ((const uint64_t *)in)[0];
				if (x != 0)
					die("64 KiB zero copy data", EBADMSG);
				ivshmem_channel_release(ch);
			}
			break;
		case PH_END:
			{
				struct ivshmem_channel_stats st;

				ivshmem_channel_get_stats(ch, &st);
				sync_send(to_a[1], st.sleeps);
			}
			ivshmem_channel_detach(ch);
			ivshmem_peer_free(p);
			_exit(0);
		}
		sync_send(to_a[1], 0);
	}
}

/* ---- A: timing ---------------------------------------------------------- */

static void start(enum phase ph, uint64_t n)
{
	sync_send(to_b[1], ph);
	sync_send(to_b[1], n);
	sync_recv(to_a[0]);
}

static void done(void)
{
	sync_recv(to_a[0]);
}

static void row(const char *name, const char *unit, double ours, double floor,
		const char *floor_name, double ratio, const char *cmp,
		double target)
{
	bool ok = cmp[0] == '<' ? ratio <= target : ratio >= target;

	printf("%-14s %12.3f %-8s %-12s %12.3f %8.3fx  target %s %.2fx  %s\n",
	       name, ours, unit, floor_name, floor, ratio, cmp, target,
	       ok ? "PASS" : "MISS");
}

int main(int argc, char **argv)
{
	const char *const args[] = { "--memfd", "-l", "16M", "-n", "2", NULL };
	static uint8_t buf[BIG];
	struct ivshmem_channel_stats st;
	struct ivshmem_channel *ch;
	struct ivshmem_peer *p;
	struct raw *raw;
	uint64_t size, n, b_sleeps;
	int efd_a, efd_b, sp[2], status;
	uint64_t rung_stream = 0;
	double t, flag_rtt, poll_rtt, efd_rtt, sleep_rtt, spsc, stream, seq,
	       stream_spin = 0,
	       memcpy_bw, copy_bw, zero_bw;
	void *mem;
	pid_t pid;

	if (argc > 1 && strcmp(argv[1], "--quick") == 0)
		seconds_per_phase = 0.1;
	else if (argc > 1) {
		fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
		return 2;
	}
	server_owner = getpid();
	atexit(cleanup);
	if (tserver_start(&srv, args) < 0)
		die("starting ivshmem-server", EIO);
	efd_a = eventfd(0, EFD_CLOEXEC);
	efd_b = eventfd(0, EFD_CLOEXEC);
	if (efd_a < 0 || efd_b < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 ||
	    pipe(to_b) < 0 || pipe(to_a) < 0)
		die("setting up", errno);
	p = join(srv.sock, &mem, &size);
	{
		const struct ivshmem_channel_spec spec = {
			.name = "bench",
			.ring_size = { 1u << 20, 1u << 20 },
		};
		int r = ivshmem_layout_write(mem, size, LAYOUT_OFFSET, &spec, 1,
					     0);

		if (r < 0)
			die("writing the layout", -r);
	}
	raw = (struct raw *)((uint8_t *)mem + RAW_OFFSET);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0)
		b_main(srv.sock, efd_a, efd_b, sp[1]);
	b_pid = pid;
	pin(0);
	ch = attach(p, 0);
	sync_send(to_b[1], 0);
	sync_recv(to_a[0]);
	printf("channel benchmark: two processes on CPUs 0 and 1 (%ld online), "
	       "%.1f s a figure\n", sysconf(_SC_NPROCESSORS_ONLN),
	       seconds_per_phase);

	/* Round trips: a calibration run says how many fit the time. */
#define RTT(ph, body) ({ \
	uint64_t n_ = 1000; double t_; \
	for (;;) { \
		start(ph, n_); t_ = now(); \
		for (uint64_t i = 0; i < n_; i++) { body; } \
		t_ = now() - t_; done(); \
		if (t_ > seconds_per_phase / 4 || n_ > 100000000) break; \
		n_ *= 4; \
	} \
	t_ / n_ * 1e9; })

	flag_rtt = RTT(PH_FLAG, {
		atomic_store_explicit(&raw->ping, (uint32_t)(i + 1),
				      memory_order_release);
		while (atomic_load_explicit(&raw->pong, memory_order_acquire) !=
		       (uint32_t)(i + 1))
			;
	});
	atomic_store(&raw->ping, 0);
	atomic_store(&raw->pong, 0);
	memset(buf, 0, 64);
	poll_rtt = RTT(PH_RTT_POLL, {
		memcpy(buf, &i, 8);
		send_wait(ch, buf, 64);
		if (spin_recv(ch, buf, sizeof(buf)) != 64)
			die("rtt-poll", EBADMSG);
	});
	efd_rtt = RTT(PH_EVENTFD, {
		uint64_t v = 1;

		if (write(efd_b, &v, 8) != 8 || read(efd_a, &v, 8) != 8)
			die("eventfd", errno);
	});
	sleep_rtt = RTT(PH_RTT_SLEEP, {
		send_wait(ch, buf, 64);
		if (sleep_recv(ch, buf, sizeof(buf)) != 64)
			die("rtt-sleep", EBADMSG);
	});

	/* Streams: messages per second at the consumer's pace. */
	n = (uint64_t)(20e6 * seconds_per_phase);
	atomic_store(&raw->head, 0);
	atomic_store(&raw->tail, 0);
	start(PH_SPSC, n);
	t = now();
	{
		uint32_t head = 0, tail = 0;

		while (head != (uint32_t)n) {
			if (head - tail == SLOTS) {
				tail = atomic_load_explicit(&raw->tail,
					memory_order_acquire);
				continue;
			}
			memset(raw->slot[head % SLOTS], (int)head, 64);
			head++;
			atomic_store_explicit(&raw->head, head,
					      memory_order_release);
		}
	}
	done();
	spsc = n / (now() - t);

	ivshmem_channel_get_stats(ch, &st);
	uint64_t rung0 = st.doorbells_rung;
	for (int spin = 0; spin < 2; spin++) {
	start(spin ? PH_STREAM_SPIN : PH_STREAM, n);
	t = now();
	for (uint64_t i = 0; i < n; i++) {
		void *out;
		int r;

		while ((r = ivshmem_channel_reserve(ch, 64, &out)) == -EAGAIN) {
			ivshmem_channel_flush(ch);
			ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_WRITABLE, 5000);
		}
		if (r < 0)
			die("reserve", -r);
		memcpy(out, &i, 8);
		memset((uint8_t *)out + 8, 0, 56);
		ivshmem_channel_commit(ch, 64, (i + 1) % BATCH ?
				       IVSHMEM_CHANNEL_MORE : 0);
	}
	ivshmem_channel_flush(ch);
	done();
	if (spin) {
		stream_spin = n / (now() - t);
	} else {
		stream = n / (now() - t);
		ivshmem_channel_get_stats(ch, &st);
		rung_stream = st.doorbells_rung - rung0;
	}
	}

	uint64_t nseq = n / 20;
	start(PH_SEQPACKET, nseq);
	t = now();
	for (uint64_t i = 0; i < nseq; i++) {
		if (send(sp[0], buf, 64, 0) != 64)
			die("seqpacket", errno);
	}
	done();
	seq = nseq / (now() - t);

	/* 64 KiB: bytes per second. */
	{
		static uint8_t src[BIG], dst[BIG];
		uint64_t k = 0;

		t = now();
		do {
			for (int j = 0; j < 64; j++, k++) {
				src[j] = (uint8_t)k;
				memcpy(dst, src, BIG);
				/* dst escapes: the copy must be made. */
				__asm__ volatile("" : : "r"(dst) : "memory");
			}
		} while (now() - t < seconds_per_phase / 2);
		memcpy_bw = (double)k * BIG / (now() - t);
	}
	uint64_t nbig = (uint64_t)(memcpy_bw * seconds_per_phase / 4 / BIG) + 16;
	start(PH_COPY, nbig);
	t = now();
	for (uint64_t i = 0; i < nbig; i++) {
		buf[100] = (uint8_t)i;
		send_wait(ch, buf, BIG);
	}
	done();
	copy_bw = (double)nbig * BIG / (now() - t);
	start(PH_ZERO, nbig);
	t = now();
	for (uint64_t i = 0; i < nbig; i++) {
		void *out;
		int r;

		while ((r = ivshmem_channel_reserve(ch, BIG, &out)) == -EAGAIN)
			ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_WRITABLE, 5000);
		if (r < 0)
			die("reserve", -r);
		memset(out, (int)(i & 0xff), BIG);    /* every word the same */
		ivshmem_channel_commit(ch, BIG, 0);
	}
	done();
	zero_bw = (double)nbig * BIG / (now() - t);

	start(PH_END, 0);
	b_sleeps = sync_recv(to_a[0]);
	waitpid(pid, &status, 0);
	b_pid = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		failures++;

	printf("%-14s %12s %-8s %-12s %12s %9s\n", "figure", "ours", "unit",
	       "floor", "floor", "ratio");
	row("rtt-poll", "ns", poll_rtt, flag_rtt, "shm-flag", poll_rtt / flag_rtt,
	    "<=", 1.5);
	row("rtt-sleep", "ns", sleep_rtt, efd_rtt, "eventfd",
	    sleep_rtt / efd_rtt, "<=", 1.15);
	row("stream", "Mmsg/s", stream / 1e6, spsc / 1e6, "spsc-ring",
	    stream / spsc, ">=", 0.7);
	row("stream", "Mmsg/s", stream / 1e6, seq / 1e6, "seqpacket",
	    stream / seq, ">=", 10);
	row("stream-spin", "Mmsg/s", stream_spin / 1e6, spsc / 1e6, "spsc-ring",
	    stream_spin / spsc, ">=", 0.7);
	row("64k-copy", "GB/s", copy_bw / 1e9, memcpy_bw / 1e9, "memcpy",
	    copy_bw / memcpy_bw, ">=", 0.5);
	row("64k-zero-copy", "GB/s", zero_bw / 1e9, memcpy_bw / 1e9, "memcpy",
	    zero_bw / memcpy_bw, ">=", 0.5);
	printf("stream doorbells: %" PRIu64 " rung for %" PRIu64
	       " consumer sleeps (all phases): %s\n", rung_stream, b_sleeps,
	       rung_stream <= b_sleeps + 1 ? "at most one per sleep" :
	       "MORE THAN ONE PER SLEEP");
	if (rung_stream > b_sleeps + 1)
		failures++;
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(p);
	if (tserver_stop(&srv) != 0)
		failures++;
	srv.pid = -1;
	return failures ? 1 : 0;
}
