/* SPDX-License-Identifier: MIT */
/*
 * Churn soak: one real ivshmem-server, N peer connections of every kind a
 * hostile or careless world makes (library peers that stay a while, child
 * processes killed with SIGKILL at any moment of their greeting, early
 * closes, peers that read a byte at a time, peers that never read, control
 * clients watching events and reading slowly), a bounded number at once.
 * A few long-lived observer peers check the join/leave stream they see;
 * at the end the server must hold exactly the fds it had after warm-up,
 * its RSS must not have grown past a bound, it must still answer, exit 0
 * on SIGTERM and leave nothing behind.
 *
 *   churn --server PATH [--connections N] [--concurrency C] [--seed S]
 *         [--no-rss-bound]
 *
 * Exit status 0 when every check passed; 1, with one sentence saying
 * what failed, otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "ivshmem.h"
#include "procfd.h"

#define VECTORS 2
#define NOBSERVERS 3
#define MAX_NEVER 6        /* never-reading peers at once */
#define MAX_WATCH 4        /* control watchers at once */
#define SETTLE_MS 20000    /* how long the server may take to settle */
#define READY_MS 20000     /* how long a library peer may take to be ready */

enum kind {
	K_NORMAL,      /* a library peer that stays a while, then closes */
	K_KILL,        /* a child process peer killed with SIGKILL */
	K_EARLY,       /* connect, maybe read a little, close */
	K_SLOW,        /* read one byte at a time with delays */
	K_NEVER,       /* connect and never read, for a long while */
	K_WATCH,       /* control socket watcher reading slowly */
	K_COUNT
};

static const char *const kind_names[K_COUNT] = {
	"normal", "kill-9", "early-close", "slow", "never-reading",
	"control-watch",
};

struct slot {
	bool busy;
	enum kind kind;
	int64_t deadline;      /* ns, CLOCK_MONOTONIC: next thing to do */
	int fd;                /* raw socket (EARLY, SLOW, NEVER, WATCH) */
	struct ivshmem_peer *peer; /* NORMAL */
	bool ready;
	int id;                /* NORMAL, once ready */
	int64_t started;
	pid_t pid;             /* KILL */
	unsigned left;         /* bytes still to read (EARLY, SLOW) */
	unsigned step_ms;      /* delay between reads (SLOW, WATCH) */
	GString *buf;          /* WATCH: what is not a whole line yet */
	unsigned char *live;   /* WATCH: [65536] connected as it was told */
	unsigned nlive;        /* WATCH */
	unsigned lines;        /* WATCH: lines checked */
	unsigned chunk;        /* WATCH: bytes read at a time */
};

struct observer {
	struct ivshmem_peer *peer;
	int id;
	bool ready;
	bool gone;
	int error;
	unsigned char live[IVSHMEM_MAX_PEERS];
	unsigned nlive;
	uint64_t joins, leaves;
};

static struct {
	const char *server;
	unsigned long connections;
	unsigned concurrency;
	uint64_t seed;
	bool verbose;
	bool no_rss_bound;
	bool progress;                 /* --progress: a line every tenth */
	unsigned long next_progress;

	char dir[64];
	char sock[128];
	char ctl[128];
	char log[128];
	char shm_name[64];
	pid_t srv;

	GRand *rand;
	struct slot *slots;
	struct observer obs[NOBSERVERS];
	unsigned nnever, nwatch;
	unsigned long started, done;
	unsigned long by_kind[K_COUNT];
	unsigned long normal_ready;    /* NORMAL peers that became ready */
	unsigned char normal_live[IVSHMEM_MAX_PEERS]; /* their IDs, live */
	unsigned long retries;         /* connect() said try again */
	uint64_t events_checked;
	uint64_t watch_lines;          /* control watch lines checked */
	long rss_peak_kib;
} g;

/* ---- failing ---------------------------------------------------------- */

static void cleanup(void);

static void G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN fail(const char *fmt, ...)
{
	va_list ap;

	fputs("churn: FAILED: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (g.log[0]) {
		char *cmd = g_strdup_printf("tail -n 20 '%s' >&2", g.log);

		fprintf(stderr, "churn: the server's last log lines:\n");
		if (system(cmd) < 0)
			fprintf(stderr, "churn: (could not show them)\n");
		g_free(cmd);
	}
	cleanup();
	exit(1);
}

/* ---- time and /proc --------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void show_fds(pid_t pid)
{
	char *list = procfd_list(pid, "churn:   fd ");

	fputs(list, stderr);
	g_free(list);
}

/* A "Key:   N kB" line of /proc/PID/status, in KiB; -1 if not there. */
static long proc_status_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	FILE *f;
	long v = -1;
	size_t klen = strlen(key);

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void sample_rss(void)
{
	long rss = proc_status_kib(g.srv, "VmRSS");

	if (rss > g.rss_peak_kib)
		g.rss_peak_kib = rss;
}

static bool server_alive(void)
{
	int st;

	return waitpid(g.srv, &st, WNOHANG) == 0;
}

/* ---- the server ------------------------------------------------------- */

static int connect_unix(const char *path, bool nonblock)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			(nonblock ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* One control request and its reply (a JSON object), or NULL. */
static JsonObject *control(const char *request, char **raw_out)
{
	char buf[1 << 20];
	size_t len = 0;
	int fd = connect_unix(g.ctl, false);
	struct timeval tv = { .tv_sec = 10 };
	JsonParser *parser;
	JsonObject *obj = NULL;

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request) ||
	    write(fd, "\n", 1) != 1) {
		close(fd);
		return NULL;
	}
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			break;
		len += n;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	buf[len] = '\0';
	if (!memchr(buf, '\n', len))
		return NULL;
	*strchr(buf, '\n') = '\0';
	if (raw_out)
		*raw_out = g_strdup(buf);
	parser = json_parser_new();
	if (json_parser_load_from_data(parser, buf, -1, NULL) &&
	    JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
		obj = json_object_ref(json_node_get_object(
			json_parser_get_root(parser)));
	g_object_unref(parser);
	if (obj && !json_object_get_boolean_member_with_default(obj, "ok",
								 FALSE)) {
		json_object_unref(obj);
		obj = NULL;
	}
	return obj;
}

static void start_server(void)
{
	char size[] = "64K", vec[8];
	int64_t until;

	snprintf(g.dir, sizeof(g.dir), "/tmp/ivshmem-soak-XXXXXX");
	if (!mkdtemp(g.dir))
		fail("cannot create a temporary directory: %s",
		     strerror(errno));
	snprintf(g.sock, sizeof(g.sock), "%s/sock", g.dir);
	snprintf(g.ctl, sizeof(g.ctl), "%s/ctl", g.dir);
	snprintf(g.log, sizeof(g.log), "%s/log", g.dir);
	snprintf(g.shm_name, sizeof(g.shm_name), "ivshmem-soak-%d",
		 (int)getpid());
	snprintf(vec, sizeof(vec), "%d", VECTORS);

	g.srv = fork();
	if (g.srv < 0)
		fail("fork: %s", strerror(errno));
	if (g.srv == 0) {
		int lfd = open(g.log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (lfd < 0 || dup2(lfd, 2) < 0)
			_exit(127);
		close(lfd);
		lfd = open("/dev/null", O_RDWR);
		dup2(lfd, 0);
		dup2(lfd, 1);
		if (lfd > 2)
			close(lfd);
		/* A fixed mmap threshold (glibc otherwise raises it as big
		 * blocks are freed, and the queues of the peers that never
		 * read then stay in the heap as holes): freed memory goes
		 * back, so that RSS tracks what the server holds. */
		setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536:"
		       "glibc.malloc.trim_threshold=131072", 1);
		execl(g.server, g.server, "-F", "-S", g.sock,
		      "--control", g.ctl, "-M", g.shm_name, "-l", size,
		      "-n", vec, (char *)NULL);
		_exit(127);
	}
	/* ready when the control socket answers: the loop is running */
	until = now_ns() + 10 * (int64_t)1000000000;
	for (;;) {
		JsonObject *o = control("{\"command\":\"info\"}", NULL);

		if (o) {
			json_object_unref(o);
			break;
		}
		if (!server_alive())
			fail("the server exited at start-up");
		if (now_ns() > until)
			fail("the server did not answer on its control socket "
			     "within 10 s of starting");
		g_usleep(20000);
	}
}

/* Wait until the server holds `want` fds; the count it settled at. */
static int settle_fds(int want)
{
	int64_t until = now_ns() + (int64_t)SETTLE_MS * 1000000;
	int n;

	for (;;) {
		n = procfd_count(g.srv);
		if (n == want || now_ns() > until)
			return n;
		g_usleep(10000);
	}
}

/* The server's fd count once it has not changed for 300 ms (the control
 * connection that found it ready is closed on its side a moment after
 * ours). */
static int stable_fds(void)
{
	int n = procfd_count(g.srv), same = 0;

	while (same < 6) {
		int m;

		g_usleep(50000);
		m = procfd_count(g.srv);
		same = m == n ? same + 1 : 0;
		n = m;
	}
	return n;
}

/* The server's peer IDs (control "peers"), sorted, into ids; count. */
static int server_peers(int *ids, int max)
{
	JsonObject *o = control("{\"command\":\"peers\"}", NULL);
	JsonArray *a;
	int n;

	if (!o || !json_object_has_member(o, "peers"))
		fail("the server did not answer \"peers\" on its control "
		     "socket");
	a = json_object_get_array_member(o, "peers");
	n = (int)json_array_get_length(a);
	for (int i = 0; i < n && i < max; i++)
		ids[i] = (int)json_object_get_int_member(
			json_array_get_object_element(a, i), "id");
	json_object_unref(o);
	return n;
}

/* ---- observers -------------------------------------------------------- */

static struct observer *obs_of(void *user)
{
	return user;
}

static void obs_joined(void *user, struct ivshmem_peer *peer, int id,
		       unsigned vectors)
{
	struct observer *o = obs_of(user);
	int idx = (int)(o - g.obs);

	g.events_checked++;
	if (id < 0 || id >= IVSHMEM_MAX_PEERS)
		fail("observer %d was told of a join of ID %d, out of range",
		     idx, id);
	if (o->ready && id == o->id)
		fail("observer %d (ID %d) was told its own ID joined", idx,
		     id);
	if (o->live[id])
		fail("observer %d was told ID %d joined while it was still "
		     "connected (a duplicate ID)", idx, id);
	if (vectors != VECTORS)
		fail("observer %d was told ID %d joined with %u vectors, not "
		     "%d", idx, id, vectors, VECTORS);
	o->live[id] = 1;
	o->nlive++;
	o->joins++;
}

static void obs_left(void *user, struct ivshmem_peer *peer, int id)
{
	struct observer *o = obs_of(user);
	int idx = (int)(o - g.obs);

	g.events_checked++;
	if (id < 0 || id >= IVSHMEM_MAX_PEERS || !o->live[id])
		fail("observer %d was told ID %d left, which it never saw "
		     "join (or saw leave already)", idx, id);
	o->live[id] = 0;
	o->nlive--;
	o->leaves++;
}

static void obs_ready(void *user, struct ivshmem_peer *peer)
{
	struct observer *o = obs_of(user);

	o->id = ivshmem_peer_get_id(peer);
	o->ready = true;
	if (o->id >= 0 && o->live[o->id])
		fail("observer %d got ID %d, which it was told is another "
		     "peer's", (int)(o - g.obs), o->id);
}

static void obs_disconnected(void *user, struct ivshmem_peer *peer, int err)
{
	struct observer *o = obs_of(user);

	o->gone = true;
	o->error = err;
}

static void quiet_log(void *user, int priority, const char *fmt, va_list ap)
{
	if (priority <= IVSHMEM_LOG_WARNING && g.verbose) {
		fputs("churn: library: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
}

static const struct ivshmem_peer_ops obs_ops = {
	.ready = obs_ready,
	.joined = obs_joined,
	.left = obs_left,
	.disconnected = obs_disconnected,
	.log = quiet_log,
};

static const struct ivshmem_peer_ops plain_ops = {
	.log = quiet_log,
};

static const struct ivshmem_peer_config peer_config = { 0 };

static void observers_start(void)
{
	for (int i = 0; i < NOBSERVERS; i++) {
		struct observer *o = &g.obs[i];
		int r;

		o->id = -1;
		if (ivshmem_peer_new(&peer_config, &obs_ops, o, &o->peer) < 0)
			fail("ivshmem_peer_new failed for an observer");
		r = ivshmem_peer_connect(o->peer, g.sock);
		if (r == 0)
			r = ivshmem_peer_wait_ready(o->peer, READY_MS);
		if (r < 0)
			fail("observer %d could not join: %s", i,
			     ivshmem_peer_get_error(o->peer));
	}
}

static void observers_check_alive(void)
{
	for (int i = 0; i < NOBSERVERS; i++) {
		struct observer *o = &g.obs[i];

		if (o->gone)
			fail("observer %d (ID %d) was disconnected: %s", i,
			     o->id, ivshmem_peer_get_error(o->peer));
		if (ivshmem_peer_get_id(o->peer) != o->id)
			fail("observer %d's own ID changed from %d to %d", i,
			     o->id, ivshmem_peer_get_id(o->peer));
	}
}

/* ---- churn connections ------------------------------------------------ */

static int64_t ms_ns(unsigned ms)
{
	return (int64_t)ms * 1000000;
}

static unsigned rnd(unsigned lo, unsigned hi)
{
	return (unsigned)g_rand_int_range(g.rand, (gint32)lo, (gint32)hi + 1);
}

/* Read and close whatever fds a message carries. Returns bytes read,
 * 0 on EOF, -errno. */
static ssize_t recv_closing(int fd, void *buf, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int fds[8];

		memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
		for (int i = 0; i < nfd; i++)
			close(fds[i]);
	}
	return n;
}

/* The child of a K_KILL slot: a library peer in its own process, killed
 * by the parent at a random moment. */
static G_GNUC_NORETURN void kill_child(void)
{
	struct ivshmem_peer *p;

	/* hold none of the parent's connections */
	close_range(3, ~0U, 0);
	if (ivshmem_peer_new(&peer_config, &plain_ops, NULL, &p) < 0)
		_exit(2);
	if (ivshmem_peer_connect(p, g.sock) < 0)
		_exit(3);
	for (;;) {
		struct pollfd pfd = { .fd = ivshmem_peer_get_fd(p),
				      .events = POLLIN };

		poll(&pfd, 1, -1);
		if (ivshmem_peer_dispatch(p) < 0)
			pause();
	}
}

static void slot_end(struct slot *s)
{
	switch (s->kind) {
	case K_NORMAL:
		if (s->ready)
			g.normal_live[s->id] = 0;
		ivshmem_peer_free(s->peer);
		s->peer = NULL;
		break;
	case K_KILL:
		if (kill(s->pid, SIGKILL) < 0)
			fail("kill -9 of peer process %d: %s", (int)s->pid,
			     strerror(errno));
		if (waitpid(s->pid, NULL, 0) < 0)
			fail("waitpid of peer process %d: %s", (int)s->pid,
			     strerror(errno));
		break;
	case K_NEVER:
		g.nnever--;
		close(s->fd);
		break;
	case K_WATCH:
		g.nwatch--;
		g.watch_lines += s->lines;
		g_string_free(s->buf, TRUE);
		g_free(s->live);
		close(s->fd);
		break;
	default:
		close(s->fd);
		break;
	}
	s->fd = -1;
	s->busy = false;
	g.done++;
}

static enum kind pick_kind(void)
{
	for (;;) {
		enum kind k = (enum kind)rnd(0, K_COUNT - 1);

		if (k == K_NEVER && g.nnever >= MAX_NEVER)
			continue;
		if (k == K_WATCH && g.nwatch >= MAX_WATCH)
			continue;
		return k;
	}
}

/* Start a connection in s; false when the server's backlog is full (try
 * again later). */
static bool slot_start(struct slot *s)
{
	enum kind k = pick_kind();
	int64_t now = now_ns();
	int r;

	memset(s, 0, sizeof(*s));
	s->kind = k;
	s->fd = -1;
	s->started = now;
	switch (k) {
	case K_NORMAL:
		if (ivshmem_peer_new(&peer_config, &plain_ops, NULL,
				     &s->peer) < 0)
			fail("ivshmem_peer_new failed");
		r = ivshmem_peer_connect(s->peer, g.sock);
		if (r == -EAGAIN) {
			ivshmem_peer_free(s->peer);
			return false;
		}
		if (r < 0)
			fail("a peer could not connect: %s", strerror(-r));
		s->deadline = now + ms_ns(READY_MS);
		break;
	case K_KILL:
		fflush(NULL);
		s->pid = fork();
		if (s->pid < 0)
			fail("fork: %s", strerror(errno));
		if (s->pid == 0)
			kill_child();
		/* anywhere from before its connect to well after its
		 * greeting */
		s->deadline = now + (int64_t)rnd(0, 8000) * 1000;
		break;
	case K_WATCH:
		s->fd = connect_unix(g.ctl, true);
		if (s->fd == -EAGAIN)
			return false;
		if (s->fd < 0)
			fail("a control watcher could not connect: %s",
			     strerror(-s->fd));
		if (write(s->fd, "{\"command\":\"watch\"}\n", 20) != 20)
			fail("a control watcher could not send its request");
		g.nwatch++;
		s->buf = g_string_new(NULL);
		s->live = g_malloc0(IVSHMEM_MAX_PEERS);
		s->step_ms = rnd(1, 20);
		s->chunk = rnd(1, 4) == 1 ? rnd(1, 32) : rnd(256, 1024);
		s->deadline = now + ms_ns(s->step_ms);
		s->left = rnd(50, 1500); /* ms it stays */
		break;
	default:
		s->fd = connect_unix(g.sock, true);
		if (s->fd == -EAGAIN)
			return false;
		if (s->fd < 0)
			fail("a peer could not connect: %s", strerror(-s->fd));
		if (k == K_EARLY) {
			/* close at once, or after some bytes of the
			 * greeting (a peer's is 3 + 2 per peer messages of
			 * 8 bytes) */
			s->left = rnd(0, 3) == 0 ? 0 : rnd(1, 600);
			s->deadline = s->left ? now + ms_ns(rnd(0, 3)) : now;
		} else if (k == K_SLOW) {
			/* most read a few messages, some much more */
			s->left = rnd(0, 9) ? rnd(1, 64) : rnd(65, 1500);
			s->step_ms = rnd(0, 2);
			s->deadline = now + ms_ns(s->step_ms);
		} else {
			g.nnever++;
			s->deadline = now + ms_ns(rnd(200, 3000));
		}
		break;
	}
	s->busy = true;
	g.started++;
	g.by_kind[k]++;
	return true;
}

static int json_peer_id(JsonObject *peer)
{
	JsonNode *n = peer ? json_object_get_member(peer, "id") : NULL;
	gint64 id;

	if (!n || json_node_get_value_type(n) != G_TYPE_INT64)
		return -1;
	id = json_node_get_int(n);
	return id >= 0 && id < IVSHMEM_MAX_PEERS ? (int)id : -1;
}

/* One line of a control watcher's stream: the reply with the peers, then
 * join and leave events that must fit what it was told before. */
static void watch_line(struct slot *s, const char *line)
{
	JsonParser *parser = json_parser_new();
	JsonObject *o;
	const char *ev;
	int id;

	if (!json_parser_load_from_data(parser, line, -1, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
		fail("a control watcher read a line that is not a JSON "
		     "object: %.200s", line);
	o = json_node_get_object(json_parser_get_root(parser));
	if (s->lines++ == 0) {
		JsonArray *a;

		if (!json_object_get_boolean_member_with_default(o, "ok",
								  FALSE) ||
		    !json_object_has_member(o, "peers"))
			fail("the reply to \"watch\" is not ok with the peers: "
			     "%.200s", line);
		a = json_object_get_array_member(o, "peers");
		for (guint i = 0; a && i < json_array_get_length(a); i++) {
			id = json_peer_id(json_array_get_object_element(a, i));
			if (id < 0 || s->live[id])
				fail("the reply to \"watch\" lists a bad or "
				     "repeated ID: %.200s", line);
			s->live[id] = 1;
			s->nlive++;
		}
		g_object_unref(parser);
		return;
	}
	ev = json_object_get_string_member_with_default(o, "event", "");
	if (!strcmp(ev, "join") || !strcmp(ev, "leave")) {
		bool join = ev[0] == 'j';
		const char *reason =
			json_object_get_string_member_with_default(o, "reason",
								   "");

		id = json_object_has_member(o, "peer") ? json_peer_id(
			json_object_get_object_member(o, "peer")) : -1;
		if (id < 0)
			fail("a control watcher's %s event names no valid "
			     "peer: %.200s", ev, line);
		if (join == (s->live[id] != 0))
			fail("a control watcher was told ID %d %s while it "
			     "was %s: %.200s", id, join ? "joined" : "left",
			     join ? "connected" : "not connected", line);
		s->live[id] = join;
		s->nlive += join ? 1 : -1;
		if (!join && strcmp(reason, "closed") &&
		    strcmp(reason, "queue-full"))
			fail("the server says peer %d left for \"%s\", yet "
			     "every peer here only closes or stops reading: "
			     "%.200s", id, reason, line);
		if (json_object_get_int_member_with_default(o, "peers", -1) !=
		    (gint64)s->nlive)
			fail("a control watcher counts %u peers after this "
			     "event, the server says otherwise: %.200s",
			     s->nlive, line);
	} else if (strcmp(ev, "refused")) {
		fail("a control watcher read a line that is neither a reply "
		     "nor a join, leave or refused event: %.200s", line);
	}
	g_object_unref(parser);
}

/* Work for slot s: its fd is readable (ready) or its deadline passed. */
static void slot_work(struct slot *s, bool readable, int64_t now)
{
	char buf[1024];
	ssize_t n;

	switch (s->kind) {
	case K_NORMAL:
		if (readable) {
			int r = ivshmem_peer_dispatch(s->peer);

			if (r < 0)
				fail("a library peer was disconnected %s its "
				     "greeting: %s",
				     s->ready ? "after" : "during",
				     ivshmem_peer_get_error(s->peer));
			if (!s->ready && ivshmem_peer_get_state(s->peer) ==
					 IVSHMEM_PEER_READY) {
				s->ready = true;
				g.normal_ready++;
				s->id = ivshmem_peer_get_id(s->peer);
				if (s->id < 0 || g.normal_live[s->id])
					fail("a library peer was given ID %d, "
					     "which another one still holds",
					     s->id);
				for (int i = 0; i < NOBSERVERS; i++)
					if (g.obs[i].id == s->id)
						fail("a library peer was given "
						     "observer %d's ID %d", i,
						     s->id);
				g.normal_live[s->id] = 1;
				s->deadline = now + ms_ns(rnd(0, 40));
			}
		}
		if (now >= s->deadline) {
			if (!s->ready)
				fail("a library peer was not ready %d s after "
				     "connecting", READY_MS / 1000);
			slot_end(s);
		}
		break;
	case K_KILL:
		if (now >= s->deadline)
			slot_end(s);
		break;
	case K_EARLY:
		while (s->left > 0 && readable) {
			n = recv_closing(s->fd, buf,
					 MIN(s->left, sizeof(buf)));
			if (n == -EAGAIN)
				break;
			if (n <= 0)
				fail("the server closed an early-closing peer "
				     "mid-greeting (%s)", n ? strerror(-n) :
				     "end of file");
			s->left -= (unsigned)n;
		}
		if (s->left == 0 || now >= s->deadline)
			slot_end(s);
		break;
	case K_SLOW:
		if (now < s->deadline)
			break;
		n = recv_closing(s->fd, buf, 1);
		if (n == 1 && --s->left == 0) {
			slot_end(s);
			break;
		}
		if (n == 0 || (n < 0 && n != -EAGAIN))
			fail("the server closed a slow peer (%s)",
			     n ? strerror(-n) : "end of file");
		/* once the churn ends, no more messages come: a slow peer
		 * that asked for more than there is gives up after 3 s */
		if (now - s->started > ms_ns(3000))
			slot_end(s);
		else
			s->deadline = now + ms_ns(s->step_ms);
		break;
	case K_NEVER:
		if (now >= s->deadline)
			slot_end(s);
		break;
	case K_WATCH:
		if (now < s->deadline)
			break;
		n = read(s->fd, buf, s->chunk);
		if (n > 0) {
			char *nl;

			g_string_append_len(s->buf, buf, n);
			while ((nl = memchr(s->buf->str, '\n',
					    s->buf->len))) {
				*nl = '\0';
				watch_line(s, s->buf->str);
				g_string_erase(s->buf, 0,
					       nl - s->buf->str + 1);
			}
		} else if (n == 0 || errno != EAGAIN) {
			fail("the server closed a control watcher (%s)",
			     n ? strerror(errno) : "end of file");
		}
		if (now - s->started >= ms_ns(s->left))
			slot_end(s);
		else
			s->deadline = now + ms_ns(s->step_ms);
		break;
	default:
		break;
	}
}

/* Is s in the poll set (else only its deadline wakes it)? Fixed for its
 * life: the slots polled are dispatched with their deadlines. */
static bool slot_polled(const struct slot *s)
{
	return s->kind == K_NORMAL || s->kind == K_EARLY;
}

/*
 * The loop: keep up to `concurrency` connections going until `total` have
 * been started and all have ended, dispatching the observers throughout.
 */
static void churn(unsigned long total)
{
	unsigned c = g.concurrency;
	struct pollfd *pfd = g_new0(struct pollfd, c + NOBSERVERS);
	int *map = g_new0(int, c + NOBSERVERS);
	unsigned long target = g.started + total;
	int64_t next_rss = 0;

	for (;;) {
		int64_t now = now_ns(), next = now + ms_ns(100);
		unsigned np = 0, active = 0;
		int r;

		for (unsigned i = 0; i < c; i++) {
			struct slot *s = &g.slots[i];

			if (!s->busy && g.started < target &&
			    !slot_start(s))
				g.retries++;
			if (!s->busy)
				continue;
			active++;
			if (s->deadline < next)
				next = s->deadline;
			if (slot_polled(s)) {
				pfd[np].fd = s->kind == K_NORMAL ?
					ivshmem_peer_get_fd(s->peer) : s->fd;
				pfd[np].events = POLLIN;
				map[np++] = (int)i;
			}
		}
		for (int i = 0; i < NOBSERVERS; i++) {
			pfd[np].fd = ivshmem_peer_get_fd(g.obs[i].peer);
			pfd[np].events = POLLIN;
			map[np++] = -1 - i;
		}
		if (!active && g.started >= target)
			break;
		now = now_ns();
		r = poll(pfd, np, next > now ? (int)((next - now) / 1000000) +
			 1 : 0);
		if (r < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		now = now_ns();
		for (unsigned j = 0; j < np; j++) {
			if (map[j] < 0) {
				if (pfd[j].revents)
					ivshmem_peer_dispatch(
						g.obs[-1 - map[j]].peer);
				continue;
			}
			slot_work(&g.slots[map[j]], pfd[j].revents != 0, now);
		}
		/* deadlines of the slots that are not polled */
		for (unsigned i = 0; i < c; i++) {
			struct slot *s = &g.slots[i];

			if (s->busy && s->deadline <= now &&
			    !slot_polled(s))
				slot_work(s, false, now);
		}
		observers_check_alive();
		if (g.progress && g.done >= g.next_progress) {
			fprintf(stderr, "churn: %lu of %lu connections done\n",
				g.done, g.connections);
			g.next_progress += g.connections / 10;
		}
		if (now >= next_rss) {
			sample_rss();
			if (!server_alive())
				fail("the server died during the churn");
			next_rss = now + ms_ns(200);
		}
	}
	g_free(pfd);
	g_free(map);
}

/* Dispatch the observers until each knows exactly `others` other peers,
 * or SETTLE_MS passes. */
static void observers_settle(unsigned others)
{
	int64_t until = now_ns() + ms_ns(SETTLE_MS);

	for (;;) {
		struct pollfd pfd[NOBSERVERS];
		bool done = true;

		for (int i = 0; i < NOBSERVERS; i++) {
			pfd[i].fd = ivshmem_peer_get_fd(g.obs[i].peer);
			pfd[i].events = POLLIN;
			if (g.obs[i].nlive != others)
				done = false;
		}
		if (done || now_ns() > until)
			return;
		if (poll(pfd, NOBSERVERS, 50) > 0)
			for (int i = 0; i < NOBSERVERS; i++)
				if (pfd[i].revents)
					ivshmem_peer_dispatch(g.obs[i].peer);
		observers_check_alive();
	}
}

/* ---- the checks at the end -------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void check_peer_lists(void)
{
	int srv_ids[64];
	int n = server_peers(srv_ids, 64);
	int own[NOBSERVERS];

	if (n != NOBSERVERS) {
		GString *s = g_string_new(NULL);

		for (int i = 0; i < n && i < 64; i++)
			g_string_append_printf(s, " %d", srv_ids[i]);
		fail("after the churn the server lists %d peers (%s ), not "
		     "the %d observers", n, s->str, NOBSERVERS);
	}
	for (int i = 0; i < NOBSERVERS; i++)
		own[i] = g.obs[i].id;
	qsort(own, NOBSERVERS, sizeof(int), cmp_int);
	for (int i = 0; i < NOBSERVERS; i++)
		if (own[i] != srv_ids[i])
			fail("the server's peer list (%d %d %d) is not the "
			     "observers' IDs (%d %d %d)", srv_ids[0],
			     srv_ids[1], srv_ids[2], own[0], own[1], own[2]);
	for (int i = 0; i < NOBSERVERS; i++) {
		struct observer *o = &g.obs[i];
		int ids[64];
		int m = ivshmem_peer_get_peers(o->peer, ids, 64);
		int k = 0;

		if (m != NOBSERVERS - 1 || o->nlive != NOBSERVERS - 1)
			fail("observer %d knows %d other peers (its own count "
			     "%u) after the churn, not %d", i, m, o->nlive,
			     NOBSERVERS - 1);
		for (int j = 0; j < NOBSERVERS; j++) {
			if (own[j] == o->id)
				continue;
			if (ids[k] != own[j] || !o->live[own[j]])
				fail("observer %d's peer list differs from the "
				     "server's", i);
			k++;
		}
		if (o->joins < g.normal_ready)
			fail("observer %d saw %" PRIu64 " joins, fewer than the "
			     "%lu library peers that completed their greeting",
			     i, o->joins, g.normal_ready);
		if (o->joins - o->leaves != NOBSERVERS - 1)
			fail("observer %d saw %" PRIu64 " joins and %" PRIu64
			     " leaves", i, o->joins, o->leaves);
	}
}

static bool shm_exists(void)
{
	char path[128];

	snprintf(path, sizeof(path), "/dev/shm/%s", g.shm_name);
	return access(path, F_OK) == 0;
}

static void cleanup(void)
{
	if (g.slots)
		for (unsigned i = 0; i < g.concurrency; i++)
			if (g.slots[i].busy && g.slots[i].kind == K_KILL) {
				kill(g.slots[i].pid, SIGKILL);
				waitpid(g.slots[i].pid, NULL, 0);
			}
	if (g.srv > 0 && server_alive()) {
		kill(g.srv, SIGKILL);
		waitpid(g.srv, NULL, 0);
	}
	g.srv = 0;
	if (g.dir[0]) {
		char path[128];

		unlink(g.sock);
		unlink(g.ctl);
		unlink(g.log);
		snprintf(path, sizeof(path), "/dev/shm/%s", g.shm_name);
		unlink(path);
		rmdir(g.dir);
		g.dir[0] = '\0';
		g.log[0] = '\0';
	}
}

static int dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Connections of the warm-up: half, at most 2000 (the allocator grows
 * to its working size within the first thousand or so). */
static unsigned long warmup_count(void)
{
	return MIN(g.connections / 2, 2000UL);
}

/* ---- main ------------------------------------------------------------- */

static G_GNUC_NORETURN void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"Usage: churn --server PATH [--connections N] "
		"[--concurrency C] [--seed S] [--verbose] [--no-rss-bound]\n"
		"       [--progress]\n"
		"--progress: a line on stderr at every tenth of the "
		"connections\n"
		"--no-rss-bound: report the server's RSS but do not bound it "
		"(for a sanitizer build, whose\nallocator keeps what is "
		"freed in quarantine; its leak check runs at the server's "
		"exit)\n");
	exit(status);
}

static unsigned long parse_num(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		fail("%s must be a decimal number, not \"%s\"", what, s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 'S' },
		{ "connections", required_argument, NULL, 'c' },
		{ "concurrency", required_argument, NULL, 'j' },
		{ "seed", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "no-rss-bound", no_argument, NULL, 'R' },
		{ "progress", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct rlimit rl;
	int fd_self0, fd_srv0, fd_srv1, fd_end, fd_final, st;
	long rss_warm, rss_end, bound;
	int64_t t0, t1;
	double secs;
	int opt, n;

	g.connections = 100000;
	g.concurrency = 64;
	g.seed = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'S': g.server = optarg; break;
		case 'c': g.connections = parse_num(optarg, "--connections");
			  break;
		case 'j': g.concurrency = (unsigned)parse_num(optarg,
							       "--concurrency");
			  break;
		case 's': g.seed = parse_num(optarg, "--seed"); break;
		case 'v': g.verbose = true; break;
		case 'R': g.no_rss_bound = true; break;
		case 'P': g.progress = true; break;
		case 'h': usage(0);
		default: usage(2);
		}
	}
	if (!g.server || optind < argc)
		usage(2);
	if (g.concurrency < 1 || g.concurrency > 1024)
		fail("--concurrency must be 1..1024");

	/* every library peer holds every other peer's eventfds */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	g.rand = g_rand_new_with_seed((guint32)g.seed);
	g.next_progress = MAX(g.connections / 10, 1UL);
	g.slots = g_new0(struct slot, g.concurrency);
	fd_self0 = procfd_count(getpid());

	start_server();
	fd_srv0 = stable_fds();
	observers_start();

	/* warm-up: a first round of every kind, then let it settle */
	churn(warmup_count());
	observers_settle(NOBSERVERS - 1);
	fd_srv1 = settle_fds(fd_srv0 + NOBSERVERS * (1 + VECTORS));
	if (fd_srv1 != fd_srv0 + NOBSERVERS * (1 + VECTORS))
		fail("after the warm-up the server holds %d fds, not the %d "
		     "of its start plus %d for %d observers", fd_srv1,
		     fd_srv0, NOBSERVERS * (1 + VECTORS), NOBSERVERS);
	rss_warm = proc_status_kib(g.srv, "VmRSS");
	g.rss_peak_kib = rss_warm;
	printf("churn: server pid %d, %d vectors, seed %" PRIu64 ", %lu "
	       "connections, %u at once; after warm-up (%lu connections): "
	       "%d fds, RSS %ld KiB\n", (int)g.srv, VECTORS, g.seed,
	       g.connections, g.concurrency, g.started, fd_srv1, rss_warm);
	fflush(stdout);

	t0 = now_ns();
	if (g.connections > g.started)
		churn(g.connections - g.started);
	t1 = now_ns();
	secs = (double)(t1 - t0) / 1e9;

	observers_settle(NOBSERVERS - 1);
	fd_end = settle_fds(fd_srv1);
	if (fd_end != fd_srv1) {
		fprintf(stderr, "churn: the server's fds:\n");
		show_fds(g.srv);
		fail("after the churn the server holds %d fds, not the %d it "
		     "held after warm-up", fd_end, fd_srv1);
	}
	sample_rss();
	rss_end = proc_status_kib(g.srv, "VmRSS");
	check_peer_lists();
	{
		char *raw = NULL;
		JsonObject *o = control("{\"command\":\"info\",\"tag\":7}",
					&raw);

		if (!o || !strstr(raw, "\"tag\":7}"))
			fail("the server did not answer \"info\" after the "
			     "churn (%s)", raw ? raw : "no reply");
		json_object_unref(o);
		g_free(raw);
	}

	/* the observers leave: the server is back to its start */
	for (int i = 0; i < NOBSERVERS; i++) {
		ivshmem_peer_free(g.obs[i].peer);
		g.obs[i].peer = NULL;
	}
	fd_final = settle_fds(fd_srv0);
	if (fd_final != fd_srv0) {
		fprintf(stderr, "churn: the server's fds:\n");
		show_fds(g.srv);
		fail("with every peer gone the server holds %d fds, not the "
		     "%d it started with", fd_final, fd_srv0);
	}
	n = server_peers((int[1]){ 0 }, 1);
	if (n != 0)
		fail("with every peer gone the server still lists %d", n);

	bound = MAX(2048L, rss_warm / 10);
	if (rss_end - rss_warm > bound && !g.no_rss_bound)
		fail("the server's RSS grew from %ld KiB after warm-up to %ld "
		     "KiB, more than %ld KiB", rss_warm, rss_end, bound);

	if (kill(g.srv, SIGTERM) < 0)
		fail("SIGTERM: %s", strerror(errno));
	{
		int64_t until = now_ns() + ms_ns(10000);

		while (waitpid(g.srv, &st, WNOHANG) == 0) {
			if (now_ns() > until)
				fail("the server did not exit within 10 s of "
				     "SIGTERM");
			g_usleep(10000);
		}
	}
	g.srv = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("the server %s on SIGTERM", WIFEXITED(st) ?
		     "exited non-zero" : "was killed by a signal");
	if (shm_exists())
		fail("the server left its shared memory /dev/shm/%s",
		     g.shm_name);
	unlink(g.log);
	g.log[0] = '\0';
	n = dir_entries(g.dir);
	if (n != 0)
		fail("the server left %d files in %s", n, g.dir);
	rmdir(g.dir);
	g.dir[0] = '\0';
	if (procfd_count(getpid()) != fd_self0)
		fail("churn itself holds %d fds at the end, not its %d",
		     procfd_count(getpid()), fd_self0);

	printf("churn: %lu connections in %.1f s after warm-up (%.0f "
	       "connections/s), %lu retried on a full backlog\n",
	       g.started, secs,
	       (double)(g.started - warmup_count()) / secs,
	       g.retries);
	printf("churn: by kind:");
	for (int k = 0; k < K_COUNT; k++)
		printf(" %s %lu%s", kind_names[k], g.by_kind[k],
		       k + 1 < K_COUNT ? "," : "\n");
	printf("churn: library peers that completed their greeting: %lu\n",
	       g.normal_ready);
	printf("churn: server fds: %d at start, %d with %d observers after "
	       "warm-up, %d after the churn, %d with every peer gone\n",
	       fd_srv0, fd_srv1, NOBSERVERS, fd_end, fd_final);
	printf("churn: server RSS: %ld KiB after warm-up, %ld KiB peak "
	       "(sampled every 200 ms), %ld KiB at the end (growth %+ld KiB, "
	       "bound %ld KiB%s)\n", rss_warm, g.rss_peak_kib, rss_end,
	       rss_end - rss_warm, bound,
	       g.no_rss_bound ? ", not applied" : "");
	printf("churn: control watch lines checked: %" PRIu64 "\n",
	       g.watch_lines);
	printf("churn: observer events checked: %" PRIu64 " (joins",
	       g.events_checked);
	for (int i = 0; i < NOBSERVERS; i++)
		printf(" %" PRIu64, g.obs[i].joins);
	printf(", leaves");
	for (int i = 0; i < NOBSERVERS; i++)
		printf(" %" PRIu64, g.obs[i].leaves);
	printf(")\n");
	printf("churn: OK: the server kept its fds, its RSS %s, the "
	       "observers and watchers saw a consistent stream, SIGTERM "
	       "exited 0 and nothing was left behind\n",
	       g.no_rss_bound ? "was reported (not bounded)" :
	       "stayed within the bound");
	g_free(g.slots);
	g.slots = NULL;
	g_rand_free(g.rand);
	return 0;
}
