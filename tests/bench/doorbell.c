/* SPDX-License-Identifier: MIT */
/*
 * Doorbell round-trip benchmark: two peer processes, A and B, join a real
 * ivshmem-server through libivshmem. A rings B on vector 0, B's handling of
 * that doorbell rings A back, A waits for it: one round trip. A times every
 * round trip; B only echoes.
 *
 * Paths through the library:
 *  - direct: each side waits on its own vector fd
 *    (ivshmem_peer_get_vector_fd()) with poll(), reads it, and rings with
 *    ivshmem_peer_ring();
 *  - merged: each side waits with poll() on ivshmem_peer_get_fd() and calls
 *    ivshmem_peer_dispatch(); the doorbell callback rings back with
 *    ivshmem_peer_ring() (B) or counts the answer (A).
 *
 * Floors, measured in the same run, with two eventfds made with eventfd(2)
 * before fork() and no library or server at all:
 *  - raw: poll() on the own eventfd, read() it, write() the other one; the
 *    same system calls as the direct path. Both targets are relative to it.
 *  - raw-epoll: the merged path's pattern without the library: poll() on an
 *    epoll fd that holds the own eventfd, epoll_wait() with timeout 0,
 *    read(), write(). It tells how much of merged/raw is the extra epoll
 *    level rather than the library (informational).
 *
 * The four pairs of processes live for the whole run (this process is
 * every pair's A, each B a child) against one server. The timed round trips
 * are split into R rounds (default 10); each round runs every path back to
 * back, starting with another path each time, so that drift (other load on
 * the machine, where the scheduler puts A and B) hits them alike. The
 * round-trip time of a path is the median over the rounds; the ratios are
 * the medians of the per-round ratios; latencies are pooled.
 *
 * A doorbell that does not arrive within STALL_MS, a count other than 1,
 * a doorbell on another vector or a library error is a functional failure
 * and the benchmark exits 1. Missed timing targets are only reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"

/* A doorbell later than this is lost. */
#define STALL_MS 5000
/* Setup (connect, greeting, the other peer's join) must be this quick. */
#define SETUP_MS 10000
/* Targets from the issue: round-trip time over the raw floor's. */
#define TARGET_DIRECT 1.10
#define TARGET_MERGED 1.30

#define DEFAULT_ITERATIONS 100000u
#define DEFAULT_ROUNDS 20u
#define MAX_ITERATIONS 100000000u
#define MAX_ROUNDS 1000u

enum path { P_RAW, P_RAW_EPOLL, P_DIRECT, P_MERGED, NPATHS };

static const char *const path_name[NPATHS] = {
	[P_RAW] = "raw",
	[P_RAW_EPOLL] = "raw-epoll",
	[P_DIRECT] = "direct",
	[P_MERGED] = "merged",
};

static bool path_uses_library(enum path p)
{
	return p == P_DIRECT || p == P_MERGED;
}

/* ---- options ------------------------------------------------------------- */

struct opts {
	unsigned iterations;    /* timed round trips per path, in all */
	unsigned rounds;
	unsigned slice;         /* timed round trips per path and round */
	unsigned warmup;        /* untimed ones before each slice */
	unsigned vectors;
	bool quiet;
};

#define PROG "bench-doorbell"

/* arg as a WHAT in min..max, or exit 2 with the grammar's sentence. */
static unsigned number_arg(const char *what, const char *arg, unsigned min,
			   unsigned max)
{
	return (unsigned)cli_u64_or_exit(PROG, what, arg, min, max);
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
"Usage: %s [--iterations N] [--rounds R] [--warmup W] [--vectors V]\n"
"\n"
"Doorbell round trips between two peer processes through libivshmem and\n"
"a real ivshmem-server (paths 'direct' and 'merged'), against a raw\n"
"eventfd ping-pong between two processes measured in the same run.\n"
"\n"
"  -i, --iterations N  timed round trips per path, in all (default %u)\n"
"  -r, --rounds R      split into R rounds; each round runs every path\n"
"                      for N/R round trips, back to back (default %u)\n"
"  -w, --warmup W      untimed round trips before each of those\n"
"                      (default N/R/10, at least 100)\n"
"  -n, --vectors V     the server's vector count, 1..%u (default 1);\n"
"                      vector 0 is rung\n"
"  -q, --quiet         no per-round lines\n"
"  -h, --help          this text\n"
"\n"
"Exits non-zero only on a functional failure (a lost or duplicated\n"
"doorbell, a library or process error); missed targets (direct <= %.2fx,\n"
"merged <= %.2fx the raw round-trip time) are reported, not failed.\n",
		prog, DEFAULT_ITERATIONS, DEFAULT_ROUNDS, IVSHMEM_MAX_VECTORS,
		TARGET_DIRECT, TARGET_MERGED);
}

/* ---- small helpers ------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* poll() one fd for input; 0 when readable, -ETIMEDOUT, or -errno. */
static int wait_in(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n;

	do {
		n = poll(&pfd, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

/* Read an eventfd: the count (> 0), 0 when there was nothing (EAGAIN), or
 * -errno. */
static int64_t efd_read(int fd)
{
	uint64_t count;
	ssize_t n;

	do {
		n = read(fd, &count, sizeof(count));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (n != sizeof(count))
		return -EIO;
	return (int64_t)count;
}

static int efd_ring(int fd)
{
	uint64_t one = 1;
	ssize_t n;

	do {
		n = write(fd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == sizeof(one) ? 0 : -EIO;
}

static int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;
	size_t off = 0;

	while (off < len) {
		int r = wait_in(fd, timeout_ms);
		ssize_t n;

		if (r < 0)
			return r;
		n = read(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		off += (size_t)n;
	}
	return 0;
}

/* ---- one side of a pair -------------------------------------------------- */

/*
 * What one side (A or B) of a pair holds. The library paths have a peer;
 * the floors have their eventfds. Everything is created after fork(),
 * except the floors' eventfds, which must be shared.
 */
struct side {
	enum path path;
	bool is_a;
	const struct opts *o;
	/* library paths */
	struct ivshmem_peer *peer;
	int own;                /* own peer ID (-1 for the floors) */
	int other;              /* the other peer's ID, from the handshake */
	bool other_left;
	int wait_fd;            /* what poll() waits on */
	int own_fd;             /* direct: the own vector 0 eventfd */
	/* floors */
	int efd_own, efd_other;
	int ep;                 /* raw-epoll */
	/* doorbells */
	uint64_t got;           /* merged: answers counted by the callback */
	uint64_t echoes;        /* B, merged: doorbells rung back */
	int err;                /* first error inside a callback */
	char what[160];         /* its description */
};

IVSHMEM_PRINTF(3, 4)
static int side_fail(struct side *s, int err, const char *fmt, ...)
{
	va_list ap;

	if (!s->err) {
		s->err = err < 0 ? err : -EPROTO;
		va_start(ap, fmt);
		vsnprintf(s->what, sizeof(s->what), fmt, ap);
		va_end(ap);
	}
	return s->err;
}

/* Nobody leaves before the end: a leave of the other peer while waiting
 * is a failure (side_take() tells, unless a doorbell came with it). */
static void cb_left(void *user, struct ivshmem_peer *peer, int id)
{
	struct side *s = user;

	if (id == s->other)
		s->other_left = true;
}

static void cb_doorbell(void *user, struct ivshmem_peer *peer,
			unsigned vector, uint64_t count)
{
	struct side *s = user;
	int r;

	if (vector != 0 || count != 1) {
		side_fail(s, -EPROTO, "doorbell on vector %u, count %" PRIu64
			  " (want vector 0, count 1)", vector, count);
		return;
	}
	s->got++;
	if (s->is_a)
		return;
	r = ivshmem_peer_ring(peer, s->other, 0);
	if (r < 0)
		side_fail(s, r, "ivshmem_peer_ring(%d, 0): %s", s->other,
			  ivshmem_strerror(r));
	else
		s->echoes++;
}

static void cb_disconnected(void *user, struct ivshmem_peer *peer, int error)
{
	side_fail(user, error, "disconnected: %s", ivshmem_strerror(error));
}

/* Warnings and errors only: nothing is expected at all. */
static void cb_log(void *user, int priority, const char *fmt, va_list ap)
{
	struct side *s = user;

	if (priority > IVSHMEM_LOG_WARNING)
		return;
	fprintf(stderr, "%s %s: libivshmem: ", path_name[s->path],
		s->is_a ? "A" : "B");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static const struct ivshmem_peer_ops peer_ops = {
	.left = cb_left,
	.doorbell = cb_doorbell,
	.disconnected = cb_disconnected,
	.log = cb_log,
};

/* Is the other peer announced (joined, or in the greeting)? */
static bool side_knows_other(struct side *s)
{
	int ids[16], n = ivshmem_peer_get_peers(s->peer, ids, 16);

	for (int i = 0; i < n && i < 16; i++)
		if (ids[i] == s->other)
			return true;
	/* More than 16 peers: not here, but be exact all the same. */
	return n > 16 && ivshmem_peer_get_vectors(s->peer, s->other) > 0;
}

/* Dispatch until the other peer (s->other) is announced. */
static int side_wait_other(struct side *s, uint64_t deadline)
{
	while (!side_knows_other(s)) {
		int ms = (int)((int64_t)(deadline - now_ns()) / 1000000);
		int r;

		if (s->err)
			return s->err;
		if (ms <= 0)
			return side_fail(s, -ETIMEDOUT,
					 "peer %d did not join", s->other);
		r = wait_in(ivshmem_peer_get_fd(s->peer), ms);
		if (r == -ETIMEDOUT)
			continue;
		if (r < 0)
			return side_fail(s, r, "poll: %s", strerror(-r));
		r = ivshmem_peer_dispatch(s->peer);
		if (r < 0)
			return side_fail(s, r, "ivshmem_peer_dispatch: %s",
					 ivshmem_strerror(r));
	}
	return 0;
}

/* Connect and take the greeting. */
static int side_connect(struct side *s, const char *sock, uint64_t deadline)
{
	struct ivshmem_peer_config cfg = { .vectors = s->o->vectors };
	int r;

	r = ivshmem_peer_new(&cfg, &peer_ops, s, &s->peer);
	if (r < 0)
		return side_fail(s, r, "ivshmem_peer_new: %s",
				 ivshmem_strerror(r));
	r = ivshmem_peer_connect(s->peer, sock);
	if (r < 0)
		return side_fail(s, r, "ivshmem_peer_connect: %s",
				 ivshmem_strerror(r));
	r = ivshmem_peer_wait_ready(s->peer, SETUP_MS);
	if (r < 0)
		return side_fail(s, r, "ivshmem_peer_wait_ready: %s",
				 ivshmem_strerror(r));
	s->own = ivshmem_peer_get_id(s->peer);
	if (s->own < 0)
		return side_fail(s, s->own, "ivshmem_peer_get_id: %s",
				 ivshmem_strerror(s->own));
	s->wait_fd = ivshmem_peer_get_fd(s->peer);
	if (s->path == P_DIRECT) {
		s->own_fd = ivshmem_peer_get_vector_fd(s->peer, 0);
		if (s->own_fd < 0)
			return side_fail(s, s->own_fd,
					 "ivshmem_peer_get_vector_fd: %s",
					 ivshmem_strerror(s->own_fd));
		s->wait_fd = s->efd_own = s->own_fd;
	}
	return 0;
}

/*
 * Set one side up, and meet the other over two pipes: A sends its peer ID
 * (-1 for the floors), B waits until it knows A and sends its own, then A
 * waits until it knows B. The IDs come through the pipes, not from join
 * notices, because the server may still be telling of the last round's
 * peers leaving.
 */
static int side_init(struct side *s, enum path path, bool is_a,
		     const struct opts *o, const char *sock, const int efd[2],
		     int in_fd, int out_fd)
{
	uint64_t deadline = now_ns() + SETUP_MS * 1000000ull;
	int r;

	memset(s, 0, sizeof(*s));
	s->path = path;
	s->is_a = is_a;
	s->o = o;
	s->own = s->other = -1;
	s->own_fd = s->ep = -1;
	s->efd_own = efd[is_a ? 0 : 1];
	s->efd_other = efd[is_a ? 1 : 0];
	s->wait_fd = s->efd_own;

	if (path_uses_library(path)) {
		r = side_connect(s, sock, deadline);
		if (r < 0)
			return r;
	} else if (path == P_RAW_EPOLL) {
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.fd = s->efd_own };

		s->ep = epoll_create1(EPOLL_CLOEXEC);
		if (s->ep < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->efd_own,
					   &ev) < 0)
			return side_fail(s, -errno, "epoll: %s",
					 strerror(errno));
		s->wait_fd = s->ep;
	}

	if (is_a && write(out_fd, &s->own, sizeof(s->own)) != sizeof(s->own))
		return side_fail(s, -EPIPE, "handshake: write: %s",
				 strerror(errno));
	r = read_full(in_fd, &s->other, sizeof(s->other), SETUP_MS);
	if (r < 0)
		return side_fail(s, r, "handshake: read: %s", strerror(-r));
	if (s->peer) {
		if (s->other < 0 || s->other == s->own)
			return side_fail(s, -EPROTO, "handshake: peer ID %d",
					 s->other);
		r = side_wait_other(s, deadline);
		if (r < 0)
			return r;
		if (ivshmem_peer_get_vectors(s->peer, s->other) !=
		    (int)o->vectors)
			return side_fail(s, -EPROTO,
					 "peer %d has %d vectors, want %u",
					 s->other,
					 ivshmem_peer_get_vectors(s->peer,
								  s->other),
					 o->vectors);
	}
	if (!is_a && write(out_fd, &s->own, sizeof(s->own)) != sizeof(s->own))
		return side_fail(s, -EPIPE, "handshake: write: %s",
				 strerror(errno));
	return 0;
}

static void side_fini(struct side *s)
{
	ivshmem_peer_free(s->peer);
	s->peer = NULL;
	if (s->ep >= 0)
		close(s->ep);
	s->ep = -1;
}

/* Ring the other side's vector 0. */
static inline int side_ring(struct side *s)
{
	int r;

	if (s->peer) {
		r = ivshmem_peer_ring(s->peer, s->other, 0);
		if (r < 0)
			return side_fail(s, r, "ivshmem_peer_ring(%d, 0): %s",
					 s->other, ivshmem_strerror(r));
		return 0;
	}
	r = efd_ring(s->efd_other);
	if (r < 0)
		return side_fail(s, r, "eventfd write: %s", strerror(-r));
	return 0;
}

/*
 * Wait for one doorbell on the own vector 0 and take it. For B in the
 * merged path, the callback has rung back already.
 */
static inline int side_take(struct side *s)
{
	for (;;) {
		int64_t n;
		int r = wait_in(s->wait_fd, STALL_MS);

		if (r == -ETIMEDOUT)
			return side_fail(s, r, "no doorbell within %d ms: lost",
					 STALL_MS);
		if (r < 0)
			return side_fail(s, r, "poll: %s", strerror(-r));

		switch (s->path) {
		case P_MERGED:
			r = ivshmem_peer_dispatch(s->peer);
			if (r < 0)
				return side_fail(s, r,
						 "ivshmem_peer_dispatch: %s",
						 ivshmem_strerror(r));
			if (s->err)
				return s->err;
			if (s->got) {
				s->got = 0;
				return 0;
			}
			if (s->other_left)
				return side_fail(s, -ECONNRESET,
						 "the other peer %d left",
						 s->other);
			continue;
		case P_RAW_EPOLL: {
			struct epoll_event ev[4];

			r = epoll_wait(s->ep, ev, 4, 0);
			if (r < 0 && errno != EINTR)
				return side_fail(s, -errno, "epoll_wait: %s",
						 strerror(errno));
			if (r <= 0)
				continue;
			break;
		}
		default:
			break;
		}
		n = efd_read(s->efd_own);
		if (n == 0)
			continue;       /* spurious wakeup */
		if (n < 0)
			return side_fail(s, (int)n, "eventfd read: %s",
					 strerror((int)-n));
		if (n != 1)
			return side_fail(s, -EPROTO,
					 "doorbell count %" PRId64 ", want 1",
					 n);
		return 0;
	}
}

/* ---- B: the echo process ------------------------------------------------- */

struct b_report {
	int status;             /* 0, or the negative errno of a failure */
	double cpu;             /* CPU seconds over the timed round trips */
	char what[160];
};

/*
 * Echo every doorbell: o->rounds slices of o->warmup untimed and o->slice
 * timed round trips. Then report, and keep the peer until A closes the quit
 * pipe: a leave notice must not reach a merged peer while it is timed.
 */
static void b_main(enum path path, const struct opts *o, const char *sock,
		   const int efd[2], int in_fd, int out_fd, int report_fd,
		   int quit_fd)
{
	uint64_t per = (uint64_t)o->warmup + o->slice;
	uint64_t total = per * o->rounds;
	struct b_report rep = { 0 };
	struct side s;
	double cpu0 = 0;
	int r;
	char c;

	r = side_init(&s, path, false, o, sock, efd, in_fd, out_fd);
	close(in_fd);
	close(out_fd);

	for (uint64_t i = 0; r == 0 && i < total; i++) {
		if (i % per == o->warmup)
			cpu0 = cpu_seconds();
		r = side_take(&s);
		if (r == 0 && path != P_MERGED)
			r = side_ring(&s);
		if (i % per == per - 1)
			rep.cpu += cpu_seconds() - cpu0;
	}
	if (r == 0 && path == P_MERGED && s.echoes != total)
		r = side_fail(&s, -EPROTO, "%" PRIu64 " echoes, want %" PRIu64,
			      s.echoes, total);
	rep.status = r;
	snprintf(rep.what, sizeof(rep.what), "%s", s.what);
	if (write(report_fd, &rep, sizeof(rep)) != sizeof(rep))
		r = -EPIPE;
	close(report_fd);
	if (r == 0)
		while (read(quit_fd, &c, 1) < 0 && errno == EINTR)
			;
	close(quit_fd);
	side_fini(&s);
	_exit(r == 0 ? 0 : 1);
}

/* ---- A: the pairs -------------------------------------------------------- */

/*
 * One pair per path, all alive for the whole run: this process is every
 * pair's A, each B is a child. The pipes carry the handshake (a2b, b2a),
 * B's report, and the end (quit: B leaves at EOF).
 */
struct pair {
	enum path path;
	struct side a;
	bool a_up;
	pid_t pid;
	int efd[2], a2b[2], b2a[2], report[2], quit[2];
	/* results */
	double *wall;           /* [rounds] seconds of each timed slice */
	double cpu_a, cpu_b;    /* CPU seconds over all timed slices */
	uint64_t *lat;          /* [rounds * slice] round trips, ns */
};

static void close_fds(int *fd, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fd[i] >= 0) {
			close(fd[i]);
			fd[i] = -1;
		}
}

/* The ends B keeps (b) or A keeps (!b); the eventfds both keep. */
static void close_end(struct pair *pr, bool b)
{
	int i = b ? 0 : 1;

	close_fds(&pr->a2b[i], 1);
	close_fds(&pr->b2a[1 - i], 1);
	close_fds(&pr->report[1 - i], 1);
	close_fds(&pr->quit[i], 1);
}

static void pair_close_all(struct pair *pr)
{
	close_fds(pr->efd, 2);
	close_fds(pr->a2b, 2);
	close_fds(pr->b2a, 2);
	close_fds(pr->report, 2);
	close_fds(pr->quit, 2);
}

static int pair_prepare(struct pair *pr, enum path path,
			const struct opts *o)
{
	memset(pr, 0, sizeof(*pr));
	pr->path = path;
	pr->pid = -1;
	pr->efd[0] = pr->efd[1] = -1;
	pr->a2b[0] = pr->a2b[1] = pr->b2a[0] = pr->b2a[1] = -1;
	pr->report[0] = pr->report[1] = pr->quit[0] = pr->quit[1] = -1;
	pr->wall = g_new0(double, o->rounds);
	pr->lat = g_new(uint64_t, (size_t)o->rounds * o->slice);
	if (!path_uses_library(path)) {
		/* Made as the server makes them. */
		pr->efd[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		pr->efd[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (pr->efd[0] < 0 || pr->efd[1] < 0) {
			perror("eventfd");
			return -1;
		}
	}
	if (pipe2(pr->a2b, O_CLOEXEC) < 0 || pipe2(pr->b2a, O_CLOEXEC) < 0 ||
	    pipe2(pr->report, O_CLOEXEC) < 0 ||
	    pipe2(pr->quit, O_CLOEXEC) < 0) {
		perror("pipe2");
		return -1;
	}
	return 0;
}

/* Fork every B; each keeps only its own pair's fds. */
static int pairs_fork(struct pair *pairs, const struct opts *o,
		      const char *sock)
{
	pid_t parent = getpid();

	fflush(NULL);
	for (int p = 0; p < NPATHS; p++) {
		struct pair *pr = &pairs[p];

		pr->pid = fork();
		if (pr->pid < 0) {
			perror("fork");
			return -1;
		}
		if (pr->pid)
			continue;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		for (int q = 0; q < NPATHS; q++)
			if (q != p)
				pair_close_all(&pairs[q]);
		close_end(pr, false);
		b_main(pr->path, o, sock, pr->efd, pr->a2b[0], pr->b2a[1],
		       pr->report[1], pr->quit[0]);
	}
	for (int p = 0; p < NPATHS; p++)
		close_end(&pairs[p], true);
	return 0;
}

/* One slice: o->warmup untimed round trips, then o->slice timed ones. */
static int run_slice(struct pair *pr, const struct opts *o, unsigned k)
{
	struct side *s = &pr->a;
	uint64_t *lat = pr->lat + (size_t)k * o->slice;
	uint64_t t0, t1;
	double cpu0;
	int r = 0;

	for (unsigned i = 0; r == 0 && i < o->warmup; i++) {
		r = side_ring(s);
		if (r == 0)
			r = side_take(s);
	}
	cpu0 = cpu_seconds();
	t0 = now_ns();
	for (unsigned i = 0; r == 0 && i < o->slice; i++) {
		uint64_t a = now_ns();

		r = side_ring(s);
		if (r == 0)
			r = side_take(s);
		lat[i] = now_ns() - a;
	}
	t1 = now_ns();
	pr->cpu_a += cpu_seconds() - cpu0;
	pr->wall[k] = (double)(t1 - t0) / 1e9;
	if (r < 0)
		fprintf(stderr, "%s: A: round %u: %s\n", path_name[pr->path],
			k + 1, s->what);
	return r;
}

/*
 * Collect B's report, let it go and reap it. With failed set, B is killed
 * instead of waited for. Returns 0 if B did all its work.
 */
static int pair_finish(struct pair *pr, bool failed)
{
	struct b_report rep;
	int status = 0, ret = 0;

	if (pr->pid <= 0) {
		pair_close_all(pr);
		return -1;
	}
	memset(&rep, 0, sizeof(rep));
	if (read_full(pr->report[0], &rep, sizeof(rep),
		      failed ? 100 : SETUP_MS) < 0) {
		rep.status = -EPIPE;
		snprintf(rep.what, sizeof(rep.what), "no report");
	}
	pr->cpu_b = rep.cpu;
	if (rep.status < 0) {
		/* Only news when A did not fail first. */
		if (!failed)
			fprintf(stderr, "%s: B: %s\n", path_name[pr->path],
				rep.what);
		ret = -1;
	}
	if (failed || ret)
		kill(pr->pid, SIGKILL);
	close_fds(pr->quit, 2);
	if (waitpid(pr->pid, &status, 0) != pr->pid)
		status = -1;
	pr->pid = -1;
	if (!ret && !failed && (!WIFEXITED(status) || WEXITSTATUS(status))) {
		fprintf(stderr, "%s: B ended with status 0x%x\n",
			path_name[pr->path], status);
		ret = -1;
	}
	if (pr->a_up)
		side_fini(&pr->a);
	pr->a_up = false;
	pair_close_all(pr);
	return ret;
}

/* ---- reporting ----------------------------------------------------------- */

struct summary {
	double rt_us;           /* median over rounds of the mean round trip */
	double best_us, worst_us;       /* fastest and slowest round */
	double p50_us, p99_us;  /* pooled over the rounds */
	double cpu_us;          /* A + B CPU per round trip */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median of v[n]; sorts v. */
static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Nearest-rank percentile of sorted v[n]. */
static uint64_t percentile(const uint64_t *v, size_t n, double q)
{
	size_t k = (size_t)(q * (double)n + 0.999999);

	return v[k ? k - 1 : 0];
}

static struct summary summarize(struct pair *pr, const struct opts *o)
{
	size_t n = (size_t)o->rounds * o->slice;
	double *a = g_new(double, o->rounds);
	struct summary s;

	for (unsigned k = 0; k < o->rounds; k++)
		a[k] = pr->wall[k] * 1e6 / o->slice;
	s.rt_us = median(a, o->rounds);
	s.best_us = a[0];
	s.worst_us = a[o->rounds - 1];
	s.cpu_us = (pr->cpu_a + pr->cpu_b) * 1e6 / (double)n;
	qsort(pr->lat, n, sizeof(*pr->lat), cmp_u64);
	s.p50_us = (double)percentile(pr->lat, n, 0.50) / 1e3;
	s.p99_us = (double)percentile(pr->lat, n, 0.99) / 1e3;
	g_free(a);
	return s;
}

/*
 * Median over the rounds of x's round-trip time over y's in the same
 * round: the slices of one round run back to back, so they share the
 * machine's mood, and the quotient cancels most of it.
 */
static double paired_ratio(const struct pair *x, const struct pair *y,
			   const struct opts *o)
{
	double *a = g_new(double, o->rounds), m;

	for (unsigned k = 0; k < o->rounds; k++)
		a[k] = x->wall[k] / y->wall[k];
	m = median(a, o->rounds);
	g_free(a);
	return m;
}

static const char *verdict(double r, double target)
{
	return r <= target ? "met" : "MISSED";
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "iterations", required_argument, NULL, 'i' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "vectors", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .iterations = DEFAULT_ITERATIONS,
			  .rounds = DEFAULT_ROUNDS, .vectors = 1 };
	bool warmup_set = false;
	struct pair pairs[NPATHS];
	struct summary sum[NPATHS];
	struct tserver srv;
	char vec[16];
	const char *args[] = { "-n", vec, "--memfd", NULL };
	int c, ret = 0, sr;

	while ((c = getopt_long(argc, argv, "i:w:r:n:qh", lopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o.iterations = number_arg("iteration count", optarg,
						  1, MAX_ITERATIONS);
			break;
		case 'w':
			o.warmup = number_arg("warm-up count", optarg,
					      0, MAX_ITERATIONS);
			warmup_set = true;
			break;
		case 'r':
			o.rounds = number_arg("round count", optarg,
					      1, MAX_ROUNDS);
			break;
		case 'n':
			o.vectors = number_arg("vector count", optarg,
					       1, IVSHMEM_MAX_VECTORS);
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr, argv[0]);
		return 2;
	}
	if (o.rounds > o.iterations)
		o.rounds = o.iterations;
	o.slice = o.iterations / o.rounds;
	if (!warmup_set)
		o.warmup = o.slice / 10 < 100 ? 100 : o.slice / 10;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	snprintf(vec, sizeof(vec), "%u", o.vectors);
	if (tserver_start(&srv, args) < 0) {
		char *log = tserver_log(&srv);

		fprintf(stderr, "ivshmem-server did not start:\n%s\n", log);
		g_free(log);
		tserver_kill(&srv);
		tserver_cleanup(&srv);
		return 1;
	}

	for (int p = 0; p < NPATHS; p++)
		if (pair_prepare(&pairs[p], (enum path)p, &o) < 0)
			ret = 1;
	if (!ret && pairs_fork(pairs, &o, srv.sock) < 0)
		ret = 1;
	for (int p = 0; p < NPATHS && !ret; p++) {
		struct pair *pr = &pairs[p];

		pr->a_up = true;
		if (side_init(&pr->a, pr->path, true, &o, srv.sock, pr->efd,
			      pr->b2a[0], pr->a2b[1]) < 0) {
			fprintf(stderr, "%s: A: %s\n", path_name[p],
				pr->a.what);
			ret = 1;
		}
		close_fds(&pr->a2b[1], 1);
		close_fds(&pr->b2a[0], 1);
	}

	/* Round k runs every path once, starting at path k: no path always
	 * goes first. */
	for (unsigned k = 0; k < o.rounds && !ret; k++) {
		for (int j = 0; j < NPATHS; j++) {
			struct pair *pr = &pairs[(j + k) % NPATHS];

			if (run_slice(pr, &o, k) < 0) {
				ret = 1;
				break;
			}
			if (!o.quiet)
				printf("  round %u %-9s %8.2f us/rt\n", k + 1,
				       path_name[pr->path],
				       pr->wall[k] * 1e6 / o.slice);
		}
	}

	for (int p = 0; p < NPATHS; p++)
		if (pair_finish(&pairs[p], ret) < 0)
			ret = 1;
	sr = tserver_stop(&srv);
	if (sr != 0) {
		fprintf(stderr, "ivshmem-server exit status %d\n", sr);
		ret = 1;
	}
	if (ret) {
		printf("RESULT doorbell V=%u FAILED\n", o.vectors);
		goto out;
	}

	for (int p = 0; p < NPATHS; p++)
		sum[p] = summarize(&pairs[p], &o);

	double dr = paired_ratio(&pairs[P_DIRECT], &pairs[P_RAW], &o);
	double mr = paired_ratio(&pairs[P_MERGED], &pairs[P_RAW], &o);
	double me = paired_ratio(&pairs[P_MERGED], &pairs[P_RAW_EPOLL], &o);
	const struct summary *raw = &sum[P_RAW];

	printf("doorbell V=%u: %u rounds of %u timed round trips per path (after %u untimed each), interleaved\n",
	       o.vectors, o.rounds, o.slice, o.warmup);
	printf("  %-9s %9s %10s %9s %9s %9s %9s %11s\n", "", "rt us",
	       "rt/s", "best us", "worst us", "p50 us", "p99 us",
	       "CPU us/rt");
	for (int p = 0; p < NPATHS; p++)
		printf("  %-9s %9.2f %10.0f %9.2f %9.2f %9.2f %9.2f %11.2f\n",
		       path_name[p], sum[p].rt_us, 1e6 / sum[p].rt_us,
		       sum[p].best_us, sum[p].worst_us, sum[p].p50_us,
		       sum[p].p99_us, sum[p].cpu_us);
	printf("  (rt: median over rounds of the mean round trip; p50/p99 pooled; CPU of A and B together)\n");
	printf("  direct/raw: round trip %.2fx (target <= %.2fx: %s), p50 %.2fx, p99 %.2fx, CPU %.2fx\n",
	       dr, TARGET_DIRECT, verdict(dr, TARGET_DIRECT),
	       sum[P_DIRECT].p50_us / raw->p50_us,
	       sum[P_DIRECT].p99_us / raw->p99_us,
	       sum[P_DIRECT].cpu_us / raw->cpu_us);
	printf("  merged/raw: round trip %.2fx (target <= %.2fx: %s), p50 %.2fx, p99 %.2fx, CPU %.2fx\n",
	       mr, TARGET_MERGED, verdict(mr, TARGET_MERGED),
	       sum[P_MERGED].p50_us / raw->p50_us,
	       sum[P_MERGED].p99_us / raw->p99_us,
	       sum[P_MERGED].cpu_us / raw->cpu_us);
	printf("  merged/raw-epoll: round trip %.2fx, p50 %.2fx, CPU %.2fx (what the library adds to an epoll loop)\n",
	       me, sum[P_MERGED].p50_us / sum[P_RAW_EPOLL].p50_us,
	       sum[P_MERGED].cpu_us / sum[P_RAW_EPOLL].cpu_us);
	printf("  (round-trip ratios: median over rounds of the ratio within each round)\n");
	for (int p = 0; p < NPATHS; p++)
		printf("RESULT doorbell V=%u path=%s rt_us=%.3f rt_per_s=%.0f p50_us=%.3f p99_us=%.3f cpu_us=%.3f\n",
		       o.vectors, path_name[p], sum[p].rt_us,
		       1e6 / sum[p].rt_us, sum[p].p50_us, sum[p].p99_us,
		       sum[p].cpu_us);
	printf("RESULT doorbell V=%u direct_ratio=%.3f merged_ratio=%.3f direct_p50_ratio=%.3f merged_p50_ratio=%.3f merged_epoll_ratio=%.3f targets=%s\n",
	       o.vectors, dr, mr, sum[P_DIRECT].p50_us / raw->p50_us,
	       sum[P_MERGED].p50_us / raw->p50_us, me,
	       dr <= TARGET_DIRECT && mr <= TARGET_MERGED ? "met" : "missed");

out:
	for (int p = 0; p < NPATHS; p++) {
		g_free(pairs[p].wall);
		g_free(pairs[p].lat);
	}
	return ret;
}
