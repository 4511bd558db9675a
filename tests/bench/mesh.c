/* SPDX-License-Identifier: MIT */
/*
 * Mesh-build benchmark: N peers connect one after another to a real
 * ivshmem-server until every peer knows every other one with all V vectors.
 *
 * The same connecting and reading code then runs against a "floor" sender:
 * a minimal process that sends exactly the same messages, in the same
 * per-socket order, with one blocking sendmsg per message. The floor is
 * what the kernel alone costs, so the ratios server/floor say how much the
 * server adds on top of it.
 *
 * This process is the reader: it owns every peer socket, waits on all of
 * them with epoll, reads eagerly one message (8 bytes + at most one fd) at
 * a time, checks the stream and closes each fd at once. It is single-
 * threaded, so growing its fd table never waits for an RCU grace period
 * (the kernel only does that when the table is shared between threads);
 * the table is pre-sized all the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "common.h"

/* The server's default shared-memory size; the floor uses the same. */
#define SHM_SIZE (4u << 20)
/* Give up when no message arrives for this long. */
#define STALL_SECONDS 10
/* Every quotient of server over floor should stay at or below this. */
#define TARGET_RATIO 1.2
/* Beyond this the per-peer counters (N * N bytes) get unreasonable. */
#define MAX_BENCH_PEERS 8192
/* Where the fd table is pre-sized to, at most. */
#define FD_PRESIZE 19000

/* ---- options ------------------------------------------------------------- */

struct opts {
	unsigned peers;
	unsigned vectors;
	unsigned repeat;
};

#define PROG "bench-mesh"

/* arg as a WHAT in min..max, or exit 2 with the grammar's sentence. */
static unsigned number_arg(const char *what, const char *arg, unsigned min,
			   unsigned max)
{
	return (unsigned)cli_u64_or_exit(PROG, what, arg, min, max);
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
"Usage: %s [--peers N] [--vectors V] [--repeat R]\n"
"\n"
"Connect N peers one after another to ivshmem-server -n V, until every\n"
"peer holds the full mesh, and compare with a floor sender that sends the\n"
"same messages with plain blocking sendmsg.\n"
"\n"
"  -p, --peers N     number of peers (default 64, at most %u)\n"
"  -n, --vectors V   vectors per peer (default 1, 1..%u)\n"
"  -r, --repeat R    runs of each side; medians are reported (default 5,\n"
"                    or 3 with more than 300000 messages a run)\n"
"  -h, --help        this text\n"
"\n"
"Exits non-zero only when a mesh is wrong or incomplete or a process\n"
"fails; missed performance targets are reported, not failed.\n",
		prog, MAX_BENCH_PEERS, IVSHMEM_MAX_VECTORS);
}

/* ---- the floor sender (a separate process, exec'd) ----------------------- */

/* One message, one blocking sendmsg: the least any sender can do. */
static int floor_send(int sock, int64_t value, int fd)
{
	uint8_t buf[IVSHMEM_MSG_SIZE];
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	ivshmem_msg_encode(value, buf);
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n == IVSHMEM_MSG_SIZE ? 0 : -1;
}

static void floor_die(const char *what)
{
	fprintf(stderr, "floor sender: %s: %s\n", what, strerror(errno));
	_exit(1);
}

/*
 * Accept n peers one after another and hand each what the server would:
 * the greeting, then the newcomer's vectors to everyone already there.
 * V eventfds per peer are created on accept, as the server does.
 */
static int floor_main(int lfd, int ready_fd, unsigned n, unsigned v)
{
	int shm, created, *socks, *efd;

	if (ivshmem_shm_open(IVSHMEM_SHM_MEMFD, NULL, SHM_SIZE, &shm,
			     &created) < 0)
		floor_die("shared memory");
	socks = calloc(n, sizeof(*socks));
	efd = calloc((size_t)n * v, sizeof(*efd));
	if (!socks || !efd)
		floor_die("calloc");
	if (write(ready_fd, "", 1) != 1)
		floor_die("ready pipe");
	close(ready_fd);

	for (unsigned i = 0; i < n; i++) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		int s;

		/* The listener is non-blocking, as the server's is. */
		for (;;) {
			s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (s >= 0)
				break;
			if (errno != EAGAIN && errno != EINTR)
				floor_die("accept");
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				floor_die("poll");
		}
		socks[i] = s;
		for (unsigned k = 0; k < v; k++) {
			efd[(size_t)i * v + k] = eventfd(0, EFD_CLOEXEC |
							    EFD_NONBLOCK);
			if (efd[(size_t)i * v + k] < 0)
				floor_die("eventfd");
		}

		if (floor_send(s, IVSHMEM_PROTOCOL_VERSION, -1) < 0 ||
		    floor_send(s, i, -1) < 0 || floor_send(s, -1, shm) < 0)
			floor_die("send");
		for (unsigned j = 0; j <= i; j++)
			for (unsigned k = 0; k < v; k++)
				if (floor_send(s, j, efd[(size_t)j * v + k]) < 0)
					floor_die("send");
		for (unsigned j = 0; j < i; j++)
			for (unsigned k = 0; k < v; k++)
				if (floor_send(socks[j], i,
					       efd[(size_t)i * v + k]) < 0)
					floor_die("send");
	}
	/* Hold everything until the reader has measured us. */
	for (;;)
		pause();
	return 0;
}

/* ---- senders as seen from the reader ------------------------------------- */

enum side { SERVER, FLOOR };

struct sender {
	enum side side;
	struct tserver srv;     /* SERVER */
	pid_t pid;
	char dir[64];           /* FLOOR: private temp dir */
	char sock[108];
};

static bool pid_alive(pid_t pid)
{
	struct tserver t = { .pid = pid };

	return tserver_alive(&t);
}

/* Wait until the server prints its banner: it then has its event loop set
 * up, so the first join does not pay for start-up. */
static int wait_banner(struct tserver *s)
{
	double deadline = now_seconds() + 5;

	while (now_seconds() < deadline) {
		char *log = tserver_log(s);
		bool up = strstr(log, "listening on") != NULL;

		g_free(log);
		if (up)
			return 0;
		if (!tserver_alive(s))
			return -1;
		usleep(1000);
	}
	return -1;
}

static int sender_start(struct sender *s, enum side side, unsigned n,
			unsigned v, const char *self)
{
	memset(s, 0, sizeof(*s));
	s->side = side;
	s->pid = -1;
	if (side == SERVER) {
		char vec[16];
		const char *args[] = { "-n", vec, "--memfd", NULL };

		snprintf(vec, sizeof(vec), "%u", v);
		if (tserver_start(&s->srv, args) < 0 ||
		    wait_banner(&s->srv) < 0) {
			char *log = tserver_log(&s->srv);

			fprintf(stderr, "ivshmem-server did not start:\n%s\n",
				log);
			g_free(log);
			tserver_kill(&s->srv);
			tserver_cleanup(&s->srv);
			return -1;
		}
		s->pid = s->srv.pid;
		snprintf(s->sock, sizeof(s->sock), "%s", s->srv.sock);
		return 0;
	}

	int lfd, pipefd[2], r;
	char c;

	snprintf(s->dir, sizeof(s->dir), "/tmp/ivshmem-bench-XXXXXX");
	if (!mkdtemp(s->dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(s->sock, sizeof(s->sock), "%s/sock", s->dir);
	r = ivshmem_socket_listen(s->sock, &lfd);
	if (r < 0) {
		fprintf(stderr, "floor: listen: %s\n", strerror(-r));
		rmdir(s->dir);
		return -1;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		perror("pipe2");
		goto fail;
	}
	s->pid = fork();
	if (s->pid < 0) {
		perror("fork");
		close(pipefd[0]);
		close(pipefd[1]);
		goto fail;
	}
	if (s->pid == 0) {
		char a[16], b[16], cn[16], cv[16];

		/* A fresh image, as the server gets: the reader's memory
		 * must not count as the floor's. */
		fcntl(lfd, F_SETFD, 0);
		fcntl(pipefd[1], F_SETFD, 0);
		snprintf(a, sizeof(a), "%d", lfd);
		snprintf(b, sizeof(b), "%d", pipefd[1]);
		snprintf(cn, sizeof(cn), "%u", n);
		snprintf(cv, sizeof(cv), "%u", v);
		execl(self, self, "--floor-sender", a, b, cn, cv, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	close(lfd);
	r = (int)read(pipefd[0], &c, 1);
	close(pipefd[0]);
	if (r != 1) {
		fprintf(stderr, "floor sender did not start\n");
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		unlink(s->sock);
		rmdir(s->dir);
		return -1;
	}
	return 0;

fail:
	close(lfd);
	unlink(s->sock);
	rmdir(s->dir);
	return -1;
}

/* Stop the sender; 0 if it had run without trouble. */
static int sender_stop(struct sender *s)
{
	int status, r;

	if (s->side == SERVER) {
		r = tserver_stop(&s->srv);
		if (r != 0)
			fprintf(stderr, "ivshmem-server exit status %d\n", r);
		return r == 0 ? 0 : -1;
	}
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &status, 0);
	unlink(s->sock);
	rmdir(s->dir);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
		return 0;
	fprintf(stderr, "floor sender ended with status 0x%x\n", status);
	return -1;
}

/* ---- the reader ---------------------------------------------------------- */

struct rpeer {
	int sock;
	int id;                 /* -1 until its ID message */
	unsigned nmsgs;
	unsigned own;           /* own vectors received */
	unsigned full;          /* other peers known with all V vectors */
	bool ready;             /* greeting complete */
	double t_connect, t_ready;
	uint8_t *cnt;           /* [n] vectors received, by ID slot */
	struct ivshmem_inbuf in;
};

struct reader {
	unsigned n, v;
	struct rpeer *p;
	unsigned connected;
	unsigned ndone;         /* peers holding the full mesh */
	int ep;
	int slot[IVSHMEM_MAX_PEERS];    /* ID -> dense slot, -1 */
	int owner[IVSHMEM_MAX_PEERS];   /* ID -> peer index, -1 */
	unsigned nslots;
	uint64_t msgs;
	pid_t sender;
	char *err;
};

IVSHMEM_PRINTF(2, 3)
static int fail(struct reader *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->err) {
		va_start(ap, fmt);
		r->err = g_strdup_vprintf(fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int id_slot(struct reader *r, int64_t id)
{
	if (r->slot[id] < 0) {
		if (r->nslots == r->n)
			return -1;
		r->slot[id] = (int)r->nslots++;
	}
	return r->slot[id];
}

static void peer_done_check(struct reader *r, struct rpeer *p)
{
	if (p->ready && p->full == r->n - 1)
		r->ndone++;
}

/*
 * Check one message against what peer i must receive: version, own ID,
 * shm, then only vectors (nobody leaves here). During the greeting the
 * vectors are for peers connected earlier, then its own; afterwards only
 * for peers connected later. Every fd is closed at once.
 */
static int check_msg(struct reader *r, unsigned i, int64_t val, int fd)
{
	struct rpeer *p = &r->p[i];
	unsigned m = p->nmsgs++;
	struct stat st;
	int s;

	r->msgs++;
	if (fd >= 0 && m != 2)
		close(fd);
	switch (m) {
	case 0:
		if (val != IVSHMEM_PROTOCOL_VERSION || fd >= 0)
			return fail(r, "peer %u: first message %lld%s", i,
				    (long long)val, fd >= 0 ? " with fd" : "");
		return 0;
	case 1:
		if (val < 0 || val >= IVSHMEM_MAX_PEERS || fd >= 0)
			return fail(r, "peer %u: ID message %lld%s", i,
				    (long long)val, fd >= 0 ? " with fd" : "");
		if (r->owner[val] >= 0)
			return fail(r, "peers %d and %u both got ID %lld",
				    r->owner[val], i, (long long)val);
		r->owner[val] = (int)i;
		p->id = (int)val;
		if (id_slot(r, val) < 0)
			return fail(r, "more than %u IDs", r->n);
		return 0;
	case 2:
		if (fd < 0 || val != -1) {
			if (fd >= 0)
				close(fd);
			return fail(r, "peer %u: third message %lld%s", i,
				    (long long)val, fd >= 0 ? "" : " without fd");
		}
		s = fstat(fd, &st);
		close(fd);
		if (s < 0 || !S_ISREG(st.st_mode) || st.st_size != SHM_SIZE)
			return fail(r, "peer %u: bad shm fd", i);
		return 0;
	}

	if (fd < 0)
		return fail(r, "peer %u: message %u (%lld) without fd", i, m,
			    (long long)val);
	if (val < 0 || val >= IVSHMEM_MAX_PEERS)
		return fail(r, "peer %u: ID %lld out of range", i,
			    (long long)val);
	if (val == p->id) {
		if (p->ready)
			return fail(r, "peer %u: own ID again after greeting",
				    i);
		if (++p->own < r->v)
			return 0;
		/* The own block ends the greeting: everyone connected
		 * before must be in it by now. */
		p->ready = true;
		p->t_ready = now_seconds();
		if (p->full != i)
			return fail(r, "peer %u: greeting lists %u of %u peers",
				    i, p->full, i);
		peer_done_check(r, p);
		return 0;
	}

	int o = r->owner[val];

	if (!p->ready ? o < 0 || (unsigned)o >= i :
			o >= 0 && (unsigned)o <= i)
		return fail(r, "peer %u: ID %lld %s", i, (long long)val,
			    p->ready ? "joined again" :
				       "in the greeting, not connected before");
	s = id_slot(r, val);
	if (s < 0)
		return fail(r, "more than %u IDs", r->n);
	if (++p->cnt[s] > r->v)
		return fail(r, "peer %u: more than %u vectors for ID %lld", i,
			    r->v, (long long)val);
	if (p->cnt[s] == r->v) {
		p->full++;
		peer_done_check(r, p);
	}
	return 0;
}

/* Read peer i until its socket is empty. */
static int drain(struct reader *r, unsigned i)
{
	struct rpeer *p = &r->p[i];

	for (;;) {
		int64_t val;
		int fd, ret;

		ret = ivshmem_wire_recv(p->sock, &p->in, &val, &fd);
		if (ret == -EAGAIN)
			return 0;
		if (ret == 0)
			return fail(r, "peer %u: connection closed after %u messages",
				    i, p->nmsgs);
		if (ret < 0)
			return fail(r, "peer %u: receive: %s", i,
				    strerror(-ret));
		if (check_msg(r, i, val, fd) < 0)
			return -1;
	}
}

/* Wait for and read whatever is there. With quiet_ms >= 0, wait at most
 * that long and return 1 if nothing came. */
static int pump(struct reader *r, int quiet_ms)
{
	struct epoll_event ev[256];
	double idle_since = now_seconds();
	int n;

	for (;;) {
		n = epoll_wait(r->ep, ev, 256, quiet_ms >= 0 ? quiet_ms : 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(r, "epoll_wait: %s", strerror(errno));
		if (n > 0)
			break;
		if (quiet_ms >= 0)
			return 1;
		if (!pid_alive(r->sender))
			return fail(r, "the sender died");
		if (now_seconds() - idle_since > STALL_SECONDS)
			return fail(r, "stalled: nothing received for %d s",
				    STALL_SECONDS);
	}
	for (int k = 0; k < n; k++)
		if (drain(r, ev[k].data.u32) < 0)
			return -1;
	return 0;
}

static int peer_connect(struct reader *r, unsigned i, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct rpeer *p = &r->p[i];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(r, "socket: %s", strerror(errno));
	p->t_connect = now_seconds();
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* EAGAIN: the backlog is full, which one-at-a-time
		 * connecting should never cause; be patient anyway. */
		if (errno != EAGAIN && errno != EINTR) {
			close(fd);
			return fail(r, "peer %u: connect: %s", i,
				    strerror(errno));
		}
		usleep(100);
	}
	p->sock = fd;
	r->connected++;
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return fail(r, "epoll_ctl: %s", strerror(errno));
	return 0;
}

static int reader_init(struct reader *r, unsigned n, unsigned v, pid_t sender)
{
	memset(r, 0, sizeof(*r));
	r->n = n;
	r->v = v;
	r->sender = sender;
	for (unsigned k = 0; k < IVSHMEM_MAX_PEERS; k++)
		r->slot[k] = r->owner[k] = -1;
	r->p = g_new0(struct rpeer, n);
	for (unsigned i = 0; i < n; i++) {
		r->p[i].sock = -1;
		r->p[i].id = -1;
		r->p[i].cnt = g_new0(uint8_t, n);
		ivshmem_inbuf_init(&r->p[i].in);
	}
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	return r->ep < 0 ? -1 : 0;
}

static void reader_fini(struct reader *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		if (r->p[i].sock >= 0)
			close(r->p[i].sock);
		ivshmem_inbuf_clear(&r->p[i].in);
		g_free(r->p[i].cnt);
	}
	g_free(r->p);
	if (r->ep >= 0)
		close(r->ep);
	g_free(r->err);
}

/* ---- one run ------------------------------------------------------------- */

struct run {
	double wall;            /* first connect to full mesh */
	double cpu;             /* the sender's CPU seconds over that time */
	double reader_cpu;
	long rss_kib;           /* the sender's peak RSS */
	double p50, p99;        /* join latency, seconds */
	double *lat;            /* [peers] join latencies, seconds */
	uint64_t msgs;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[n]. */
static double percentile(const double *v, unsigned n, double q)
{
	unsigned k = (unsigned)(q * n + 0.999999);

	return v[k ? k - 1 : 0];
}

static int run_once(enum side side, const struct opts *o, const char *self,
		    struct run *out)
{
	struct sender snd;
	struct reader *r = g_new(struct reader, 1);
	double cpu0, self0, t0, t1;
	int ret = -1;

	if (sender_start(&snd, side, o->peers, o->vectors, self) < 0) {
		g_free(r);
		return -1;
	}
	if (reader_init(r, o->peers, o->vectors, snd.pid) < 0) {
		fprintf(stderr, "epoll_create1: %s\n", strerror(errno));
		goto out;
	}

	cpu0 = proc_cpu_seconds(snd.pid);
	self0 = proc_cpu_seconds(getpid());
	t0 = now_seconds();
	for (unsigned i = 0; i < o->peers; i++) {
		if (peer_connect(r, i, snd.sock) < 0)
			goto bad;
		while (!r->p[i].ready)
			if (pump(r, -1) < 0)
				goto bad;
	}
	while (r->ndone < o->peers)
		if (pump(r, -1) < 0)
			goto bad;
	t1 = now_seconds();
	out->cpu = proc_cpu_seconds(snd.pid) - cpu0;
	out->reader_cpu = proc_cpu_seconds(getpid()) - self0;
	out->rss_kib = proc_peak_rss_kib(snd.pid);
	out->wall = t1 - t0;

	/* Anything after the full mesh is one message too many. */
	int q = pump(r, 50);

	if (q < 0)
		goto bad;
	if (q == 0) {
		fail(r, "messages after the mesh was complete");
		goto bad;
	}
	for (unsigned i = 0; i < o->peers; i++)
		if (r->p[i].nmsgs != 3 + o->peers * o->vectors) {
			fail(r, "peer %u: %u messages, want %u", i,
			     r->p[i].nmsgs, 3 + o->peers * o->vectors);
			goto bad;
		}
	out->msgs = r->msgs;

	out->lat = g_new(double, o->peers);
	for (unsigned i = 0; i < o->peers; i++)
		out->lat[i] = r->p[i].t_ready - r->p[i].t_connect;
	ret = 0;
	goto out;

bad:
	fprintf(stderr, "%s, N=%u V=%u: %s (%u peers connected, %llu messages)\n",
		side == SERVER ? "server" : "floor", o->peers, o->vectors,
		r->err ? r->err : "failed", r->connected,
		(unsigned long long)r->msgs);
out:
	if (sender_stop(&snd) < 0)
		ret = -1;
	reader_fini(r);
	g_free(r);
	return ret;
}

/* ---- reporting ----------------------------------------------------------- */

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Medians over the runs of one side: one slow run (another process
 * stealing a CPU) should not decide the result. The join latencies of all
 * runs are pooled instead: with 64 peers a single run's p99 would be its
 * maximum, a single sample.
 */
static struct run summarize(const struct run *runs, unsigned n,
			    unsigned peers)
{
	double *a = g_new(double, n);
	double *lat = g_new(double, (size_t)n * peers);
	struct run s = { .msgs = runs[0].msgs };

#define MED(field) do { \
	for (unsigned i = 0; i < n; i++) \
		a[i] = (double)runs[i].field; \
	s.field = median(a, n); \
} while (0)
	MED(wall);
	MED(cpu);
	MED(reader_cpu);
	for (unsigned i = 0; i < n; i++)
		memcpy(lat + (size_t)i * peers, runs[i].lat,
		       peers * sizeof(*lat));
	qsort(lat, (size_t)n * peers, sizeof(*lat), cmp_double);
	s.p50 = percentile(lat, n * peers, 0.50);
	s.p99 = percentile(lat, n * peers, 0.99);
	g_free(lat);
	for (unsigned i = 0; i < n; i++)
		s.rss_kib = runs[i].rss_kib > s.rss_kib ? runs[i].rss_kib :
							  s.rss_kib;
#undef MED
	g_free(a);
	return s;
}

static void print_row(const char *name, const struct run *s)
{
	printf("  %-7s %9.3f %11.0f %9.3f %10ld %9.3f %9.3f %9.3f\n", name,
	       s->wall, (double)s->msgs / s->wall, s->cpu, s->rss_kib,
	       s->p50 * 1e3, s->p99 * 1e3, s->reader_cpu);
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : (a > 0 ? INFINITY : 1.0);
}

static const char *verdict(double r)
{
	return r <= TARGET_RATIO ? "met" : "MISSED";
}

/* ---- main ---------------------------------------------------------------- */

/* Room for N peer sockets plus what the sender side needs, and a table
 * that never has to grow while timing. */
static void prepare_fds(void)
{
	struct rlimit rl;
	int hi;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	hi = rl.rlim_cur > FD_PRESIZE + 1 ? FD_PRESIZE : (int)rl.rlim_cur - 1;
	if (hi > 2 && dup2(STDERR_FILENO, hi) == hi)
		close(hi);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "peers", required_argument, NULL, 'p' },
		{ "vectors", required_argument, NULL, 'n' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .peers = 64, .vectors = 1, .repeat = 0 };
	struct run *runs[2], sum[2];
	char self[PATH_MAX];
	struct rlimit rl;
	ssize_t len;
	int c;

	/* The floor sender: this binary again, exec'd by sender_start(). */
	if (argc == 6 && !strcmp(argv[1], "--floor-sender"))
		return floor_main(atoi(argv[2]), atoi(argv[3]),
				  (unsigned)atoi(argv[4]),
				  (unsigned)atoi(argv[5]));

	while ((c = getopt_long(argc, argv, "p:n:r:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o.peers = number_arg("peer count", optarg,
					     1, MAX_BENCH_PEERS);
			break;
		case 'n':
			o.vectors = number_arg("vector count", optarg,
					       1, IVSHMEM_MAX_VECTORS);
			break;
		case 'r':
			o.repeat = number_arg("repeat count", optarg, 1, 100);
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

	/* Small meshes are quick, and their p99 rests on few samples. */
	if (!o.repeat)
		o.repeat = (uint64_t)o.peers * (3 + o.peers * o.vectors) >
			   300000 ? 3 : 5;

	signal(SIGPIPE, SIG_IGN);
	prepare_fds();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)o.peers + 64) {
		fprintf(stderr, "%u peers need %u fds, the limit is %llu\n",
			o.peers, o.peers + 64, (unsigned long long)rl.rlim_cur);
		return 2;
	}
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0) {
		perror("/proc/self/exe");
		return 1;
	}
	self[len] = '\0';

	runs[SERVER] = g_new0(struct run, o.repeat);
	runs[FLOOR] = g_new0(struct run, o.repeat);
	/* Alternate the sides so that drift (thermal, other load) hits
	 * both alike. */
	for (unsigned k = 0; k < o.repeat; k++) {
		if (run_once(FLOOR, &o, self, &runs[FLOOR][k]) < 0 ||
		    run_once(SERVER, &o, self, &runs[SERVER][k]) < 0) {
			printf("RESULT mesh N=%u V=%u FAILED\n", o.peers,
			       o.vectors);
			return 1;
		}
	}
	sum[SERVER] = summarize(runs[SERVER], o.repeat, o.peers);
	sum[FLOOR] = summarize(runs[FLOOR], o.repeat, o.peers);

	double wr = ratio(sum[SERVER].wall, sum[FLOOR].wall);
	double cr = ratio(sum[SERVER].cpu, sum[FLOOR].cpu);
	double pr = ratio(sum[SERVER].p99, sum[FLOOR].p99);

	printf("mesh N=%u V=%u: %llu messages (%llu fds) per run, medians of %u runs each, latencies pooled\n",
	       o.peers, o.vectors, (unsigned long long)sum[SERVER].msgs,
	       (unsigned long long)o.peers * o.peers * o.vectors, o.repeat);
	printf("  %-7s %9s %11s %9s %10s %9s %9s %9s\n", "", "wall s",
	       "msgs/s", "CPU s", "RSS KiB", "p50 ms", "p99 ms",
	       "reader s");
	print_row("server", &sum[SERVER]);
	print_row("floor", &sum[FLOOR]);
	printf("  (CPU and peak RSS are the sender's; join latency is connect to own greeting complete)\n");
	printf("  server/floor: wall %.2fx (target <= %.1fx: %s), CPU %.2fx (%s), join p99 %.2fx (%s)\n",
	       wr, TARGET_RATIO, verdict(wr), cr, verdict(cr), pr,
	       verdict(pr));
	printf("RESULT mesh N=%u V=%u wall_ratio=%.3f cpu_ratio=%.3f p99_ratio=%.3f targets=%s\n",
	       o.peers, o.vectors, wr, cr, pr,
	       wr <= TARGET_RATIO && cr <= TARGET_RATIO &&
	       pr <= TARGET_RATIO ? "met" : "missed");
	for (unsigned k = 0; k < o.repeat; k++) {
		g_free(runs[SERVER][k].lat);
		g_free(runs[FLOOR][k].lat);
	}
	g_free(runs[SERVER]);
	g_free(runs[FLOOR]);
	return 0;
}
