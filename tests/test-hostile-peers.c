/* SPDX-License-Identifier: MIT */
/*
 * Hostile peers and control clients against a real ivshmem-server:
 * random bytes and fds on the peer socket, thousands of connections under
 * a low fd limit, peers that shrink the shared memory, fuzzed, overlong,
 * invalid and pipelined control lines, clients that never read. After
 * each, the server is still up, greets a fresh peer and answers a control
 * info request correctly, holds the fds it held before, and exits 0 on
 * SIGTERM leaving nothing behind.
 *
 * The random cases are seeded: HOSTILE_SEED=N repeats a run (the seed is
 * printed), HOSTILE_FUZZ_SECONDS sets how long the control lines are
 * fuzzed (5 s).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "common.h"
#include "procfd.h"

#define TCASE_TIMEOUT 300

/* ---- a seeded random generator -------------------------------------- */

static uint64_t rng;

/* Seed from HOSTILE_SEED, or the given default; printed for a rerun. */
static void rng_seed(const char *what, uint64_t dflt)
{
	const char *env = getenv("HOSTILE_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : dflt;

	fprintf(stderr, "%s: HOSTILE_SEED=%llu\n", what,
		(unsigned long long)seed);
	rng = seed * 0x9e3779b97f4a7c15ull + 1;
}

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static unsigned rnd_below(unsigned n)
{
	return n ? (unsigned)(rnd() % n) : 0;
}

static void rnd_bytes(char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)rnd();
}

/* ---- the server's fds ------------------------------------------------ */

static int server_fds(const struct tserver *s)
{
	int n = procfd_count(s->pid);

	ck_assert_msg(n >= 0, "cannot list /proc/%ld/fd: %s", (long)s->pid,
		      g_strerror(errno));
	return n;
}

/* The server holds `want` fds, now or once it has seen every close
 * (within TWAIT_MS); else fail, listing them. */
static void expect_server_fds(const struct tserver *s, int want)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;
	int n;

	while ((n = server_fds(s)) != want && now_seconds() < deadline)
		usleep(5000);
	if (n != want) {
		char *list = procfd_list(s->pid, "  ");

		ck_abort_msg("the server holds %d fds, want %d:\n%s", n, want,
			     list);
		g_free(list);
	}
}

/* How often `needle` is in the server's log. */
static unsigned log_count(const struct tserver *s, const char *needle)
{
	char *log = tserver_log(s), *p = log;
	unsigned n = 0;

	while ((p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	g_free(log);
	return n;
}

/* `needle` is in the log `n` times; else fail, showing the lines that
 * are not about a peer coming or going. */
static void expect_log_count(const struct tserver *s, const char *needle,
			     int n)
{
	char *log, **lines;
	GString *g;

	if (log_count(s, needle) == (unsigned)n)
		return;
	log = tserver_log(s);
	lines = g_strsplit(log, "\n", -1);
	g = g_string_new(NULL);
	for (unsigned i = 0; lines[i]; i++)
		if (!strstr(lines[i], "connected (pid"))
			g_string_append_printf(g, "%s\n", lines[i]);
	ck_abort_msg("'%s' is %u times in the log, want %d:\n%s", needle,
		     log_count(s, needle), n, g->str);
	g_string_free(g, TRUE);
	g_strfreev(lines);
	g_free(log);
}

/* ---- raw sockets ------------------------------------------------------ */

/* A connection to path; nonblocking: -1 (with errno) when the backlog is
 * full. */
static int raw_connect(const char *path, bool nonblock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			(nonblock ? SOCK_NONBLOCK : 0), 0);

	ck_assert_int_ge(fd, 0);
	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Send len bytes with nfds fds attached, without blocking: what the
 * socket took, or -1. */
static ssize_t send_with_fds(int sock, const void *buf, size_t len,
			     const int *fds, unsigned nfds)
{
	return tsend_fds(sock, buf, len, fds, nfds, MSG_DONTWAIT);
}

/* Read and drop what is there (closing any fd that came), up to max
 * bytes, waiting up to ms for the first. Bytes read, 0 at EOF, -1 when
 * nothing came or on an error. */
static ssize_t drain_some(int sock, size_t max, int ms)
{
	char buf[4096];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 16)];
	} u;
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	ssize_t total = 0;

	if (poll(&pfd, 1, ms) <= 0)
		return -1;
	while ((size_t)total < max) {
		struct iovec iov = { buf, max - (size_t)total < sizeof(buf) ?
					  max - (size_t)total : sizeof(buf) };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = u.b, .msg_controllen = sizeof(u.b),
		};
		ssize_t n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0)
			return total ? total : -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c;
		     c = CMSG_NXTHDR(&msg, c)) {
			int nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			for (int i = 0; i < nfd; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
				       sizeof(fd));
				close(fd);
			}
		}
		if (n == 0)
			return total;
		total += n;
	}
	return total;
}

/* ---- strict JSON ------------------------------------------------------ */

/*
 * A checker of its own (not the server's): RFC 8259 JSON, one value with
 * whitespace around it. UTF-8 is checked apart, with g_utf8_validate().
 */
struct jscan {
	const char *s;
	size_t len, i;
	unsigned depth;
	/* the text of a top-level member's value, when asked for */
	const char *want;
	size_t off, n;
	bool found;
};

static bool js_value(struct jscan *j);

static void js_ws(struct jscan *j)
{
	while (j->i < j->len && (j->s[j->i] == ' ' || j->s[j->i] == '\t' ||
				 j->s[j->i] == '\n' || j->s[j->i] == '\r'))
		j->i++;
}

static int js_hex4(struct jscan *j)
{
	int v = 0;

	if (j->i + 4 > j->len)
		return -1;
	for (int k = 0; k < 4; k++) {
		char c = j->s[j->i++];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* A string; its plain text (no escapes) in *plain when it has none. */
static bool js_string(struct jscan *j, bool *escaped)
{
	if (escaped)
		*escaped = false;
	if (j->i >= j->len || j->s[j->i] != '"')
		return false;
	j->i++;
	while (j->i < j->len) {
		unsigned char c = (unsigned char)j->s[j->i++];

		if (c == '"')
			return true;
		if (c < 0x20)
			return false;
		if (c != '\\')
			continue;
		if (escaped)
			*escaped = true;
		if (j->i >= j->len)
			return false;
		c = (unsigned char)j->s[j->i++];
		if (c == 'u') {
			/* RFC 8259's grammar takes any four hex digits, an
			 * unpaired surrogate too (a tag comes back as it was
			 * sent, and may have one). */
			if (js_hex4(j) < 0)
				return false;
		} else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
			return false;
		}
	}
	return false;
}

static bool js_digits(struct jscan *j)
{
	size_t start = j->i;

	while (j->i < j->len && g_ascii_isdigit(j->s[j->i]))
		j->i++;
	return j->i > start;
}

static bool js_number(struct jscan *j)
{
	if (j->i < j->len && j->s[j->i] == '-')
		j->i++;
	if (j->i < j->len && j->s[j->i] == '0')
		j->i++;
	else if (!js_digits(j))
		return false;
	if (j->i < j->len && j->s[j->i] == '.') {
		j->i++;
		if (!js_digits(j))
			return false;
	}
	if (j->i < j->len && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
		j->i++;
		if (j->i < j->len && (j->s[j->i] == '+' || j->s[j->i] == '-'))
			j->i++;
		if (!js_digits(j))
			return false;
	}
	return true;
}

static bool js_word(struct jscan *j, const char *w)
{
	size_t n = strlen(w);

	if (j->i + n > j->len || memcmp(j->s + j->i, w, n) != 0)
		return false;
	j->i += n;
	return true;
}

static bool js_container(struct jscan *j, bool object)
{
	char close = object ? '}' : ']';
	bool top = j->depth == 1 && object;

	j->i++;
	js_ws(j);
	if (j->i < j->len && j->s[j->i] == close) {
		j->i++;
		return true;
	}
	for (;;) {
		bool is_want = false;

		if (object) {
			size_t k = j->i;
			bool escaped;

			if (!js_string(j, &escaped))
				return false;
			is_want = top && j->want && !escaped &&
				  j->i - k - 2 == strlen(j->want) &&
				  memcmp(j->s + k + 1, j->want,
					 strlen(j->want)) == 0;
			js_ws(j);
			if (j->i >= j->len || j->s[j->i] != ':')
				return false;
			j->i++;
			js_ws(j);
		}
		size_t v = j->i;

		if (!js_value(j))
			return false;
		if (is_want) {
			j->found = true;
			j->off = v;
			j->n = j->i - v;
		}
		js_ws(j);
		if (j->i < j->len && j->s[j->i] == ',') {
			j->i++;
			js_ws(j);
			continue;
		}
		if (j->i < j->len && j->s[j->i] == close) {
			j->i++;
			return true;
		}
		return false;
	}
}

static bool js_value(struct jscan *j)
{
	bool ok;

	if (j->i >= j->len)
		return false;
	switch (j->s[j->i]) {
	case '{':
	case '[':
		if (++j->depth > 256)
			return false;
		ok = js_container(j, j->s[j->i] == '{');
		j->depth--;
		return ok;
	case '"':
		return js_string(j, NULL);
	case 't':
		return js_word(j, "true");
	case 'f':
		return js_word(j, "false");
	case 'n':
		return js_word(j, "null");
	default:
		return js_number(j);
	}
}

/* Is s exactly one JSON value? With member: also the text of that
 * top-level member's value (the last when repeated), if it has one. */
static bool json_strict(const char *s, size_t len, const char *member,
			size_t *off, size_t *n, bool *found)
{
	struct jscan j = { .s = s, .len = len, .want = member };

	js_ws(&j);
	if (!js_value(&j))
		return false;
	js_ws(&j);
	if (found)
		*found = j.found;
	if (off)
		*off = j.off;
	if (n)
		*n = j.n;
	return j.i == len;
}

/* ---- a control client ------------------------------------------------ */

struct cc {
	int fd;
	GString *in;
	bool eof;
	unsigned lines;         /* lines taken */
	unsigned fds;           /* fds received (and closed) */
};

static char *ctl_path(const struct tserver *s)
{
	return g_strdup_printf("%s.ctl", s->sock);
}

static void cc_open(struct cc *c, const struct tserver *s)
{
	char *path = ctl_path(s);

	memset(c, 0, sizeof(*c));
	c->fd = tconnect_retry(path);
	c->in = g_string_new(NULL);
	g_free(path);
}

static void cc_close(struct cc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->in)
		g_string_free(c->in, TRUE);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* One read into c->in, waiting up to ms: bytes, 0 at EOF, -1 on
 * timeout; fds that come are counted and closed. */
static int cc_fill(struct cc *c, int ms)
{
	static char buf[65536];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.b, .msg_controllen = sizeof(u.b),
	};
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	int r;

	do {
		r = poll(&pfd, 1, ms);
	} while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	ck_assert_msg(n >= 0 || errno == ECONNRESET, "recvmsg: %s",
		      g_strerror(errno));
	ck_assert_msg(!(msg.msg_flags & MSG_CTRUNC), "control data truncated");
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm;
	     cm = CMSG_NXTHDR(&msg, cm)) {
		int nfd = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (int i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			close(fd);
			c->fds++;
		}
	}
	if (n <= 0) {
		c->eof = true;
		return 0;
	}
	g_string_append_len(c->in, buf, n);
	return (int)n;
}

/* The next line, without its newline (g_free it), or NULL at EOF or
 * after ms without one. *len: its length. */
static char *cc_line(struct cc *c, int ms, size_t *len)
{
	double deadline = now_seconds() + ms / 1000.0;

	for (;;) {
		char *nl = memchr(c->in->str, '\n', c->in->len);

		if (nl) {
			size_t n = (size_t)(nl - c->in->str);
			char *line = g_malloc(n + 1);

			memcpy(line, c->in->str, n);
			line[n] = '\0';
			g_string_erase(c->in, 0, (gssize)n + 1);
			c->lines++;
			if (len)
				*len = n;
			return line;
		}
		if (c->eof)
			return NULL;
		int left = (int)((deadline - now_seconds()) * 1000);

		if (cc_fill(c, left > 0 ? left : 0) < 0 && left <= 0)
			return NULL;
	}
}

/* A line the server sent must be one JSON object in valid UTF-8 (no NUL
 * byte, no raw control character). Its parse (unref it). */
static JsonObject *check_line(const char *line, size_t len)
{
	JsonParser *p;
	JsonNode *root;
	JsonObject *o;
	GError *err = NULL;

	ck_assert_msg(g_utf8_validate(line, (gssize)len, NULL),
		      "a reply that is not UTF-8 (%zu bytes): %.*s", len,
		      (int)len, line);
	ck_assert_msg(json_strict(line, len, NULL, NULL, NULL, NULL),
		      "a reply that is not JSON: %s", line);
	p = json_parser_new();
	ck_assert_msg(json_parser_load_from_data(p, line, (gssize)len, &err),
		      "json-glib cannot read a reply (%s): %s",
		      err ? err->message : "?", line);
	root = json_parser_get_root(p);
	ck_assert_msg(root && JSON_NODE_HOLDS_OBJECT(root),
		      "a reply that is not an object: %s", line);
	o = json_object_ref(json_node_get_object(root));
	g_object_unref(p);
	return o;
}

static bool is_event(JsonObject *o)
{
	return json_object_has_member(o, "event");
}

/*
 * The next reply (events skipped, each checked): a JSON object with a
 * boolean "ok", and with "error" and "message" strings when it is false.
 * *line (g_free it) keeps its text when line is not NULL.
 */
static JsonObject *cc_reply(struct cc *c, int ms, char **text)
{
	for (;;) {
		size_t len;
		char *line = cc_line(c, ms, &len);
		JsonObject *o;
		JsonNode *ok;

		ck_assert_msg(line, "no reply within %d ms (%s, %u lines so far)",
			      ms, c->eof ? "the server closed the connection" :
			      "timeout", c->lines);
		o = check_line(line, len);
		if (is_event(o)) {
			json_object_unref(o);
			g_free(line);
			continue;
		}
		ok = json_object_get_member(o, "ok");
		ck_assert_msg(ok && JSON_NODE_HOLDS_VALUE(ok) &&
			      json_node_get_value_type(ok) == G_TYPE_BOOLEAN,
			      "a reply without a boolean \"ok\": %s", line);
		if (!json_node_get_boolean(ok)) {
			ck_assert_msg(json_object_has_member(o, "error") &&
				      json_object_has_member(o, "message"),
				      "an error reply without error and message: %s",
				      line);
			ck_assert_msg(*json_object_get_string_member(o, "message"),
				      "an empty message: %s", line);
		}
		if (text)
			*text = line;
		else
			g_free(line);
		return o;
	}
}

static const char *ostr(JsonObject *o, const char *name)
{
	JsonNode *n = json_object_get_member(o, name);

	return n && JSON_NODE_HOLDS_VALUE(n) &&
	       json_node_get_value_type(n) == G_TYPE_STRING ?
	       json_node_get_string(n) : NULL;
}

static bool reply_ok(JsonObject *o)
{
	return json_object_get_boolean_member(o, "ok");
}

/* An info reply, right for a server s with `peers` peers. */
static void expect_info(struct cc *c, const struct tserver *s, int peers)
{
	JsonObject *o, *shm;

	twrite_all(c->fd, "{\"command\":\"info\",\"tag\":\"health\"}\n", 34);
	o = cc_reply(c, TWAIT_MS, NULL);
	ck_assert_msg(reply_ok(o), "info failed: %s", ostr(o, "message"));
	ck_assert_str_eq(ostr(o, "command"), "info");
	ck_assert_str_eq(ostr(o, "tag"), "health");
	ck_assert_str_eq(ostr(o, "server"), "ivshmem-server");
	ck_assert_int_eq(json_object_get_int_member(o, "pid"), s->pid);
	ck_assert_str_eq(ostr(o, "socket"), s->sock);
	ck_assert_int_eq(json_object_get_int_member(o, "peers"), peers);
	shm = json_object_get_object_member(o, "shm");
	ck_assert_ptr_nonnull(shm);
	ck_assert_int_gt(json_object_get_int_member(shm, "size"), 0);
	json_object_unref(o);
}

/* Wait until info says `peers` (the server has seen every close). */
static void wait_peer_count(struct cc *c, const struct tserver *s,
			    int peers)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;

	for (;;) {
		JsonObject *o;
		gint64 n;

		twrite_all(c->fd, "{\"command\":\"info\"}\n", 19);
		o = cc_reply(c, TWAIT_MS, NULL);
		ck_assert(reply_ok(o));
		n = json_object_get_int_member(o, "peers");
		json_object_unref(o);
		if (n == peers)
			return;
		ck_assert_msg(now_seconds() < deadline,
			      "the server has %lld peers, want %d",
			      (long long)n, peers);
		usleep(10000);
	}
}

/*
 * The server is healthy: it is up, a fresh peer is greeted and sees the
 * `peers` peers still connected, a fresh control client's info is right,
 * and once both are gone the server holds `fds` fds again.
 */
static void expect_healthy(const struct tserver *s, int peers, int fds)
{
	struct tpeer p;
	struct cc c;

	ck_assert_msg(tserver_alive(s), "the server died");
	tpeer_join_ok(&p, s->sock, 1, false);
	tpeer_wait_peers_ok(&p, (unsigned)peers);
	cc_open(&c, s);
	expect_info(&c, s, peers + 1);
	tpeer_close(&p);
	wait_peer_count(&c, s, peers);
	cc_close(&c);
	expect_server_fds(s, fds);
}

/* ---- peers sending random bytes and fds ------------------------------ */

#define RANDOM_CONNECTIONS 400
#define RANDOM_WINDOW 24

/* Read what the watcher has (each message checked), without waiting. */
static void pump(struct tpeer *w)
{
	struct tmsg m;
	char *why = NULL;
	int r;

	while ((r = tpeer_recv(w, 0, &m, &why)) == 1)
		;
	ck_assert_msg(r == -ETIMEDOUT, "watcher: %d (%s)", r,
		      why ? why : r ? g_strerror(-r) : "EOF");
}

/* An fd of some kind to send along: pipe ends, eventfds, a memfd, a
 * socket, the directory. */
static int some_fd(void)
{
	int p[2], fd;

	switch (rnd_below(5)) {
	case 0:
		ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
		fd = (int)rnd_below(2);
		close(p[fd]);
		return p[1 - fd];
	case 1:
		return eventfd(0, EFD_CLOEXEC);
	case 2:
		fd = memfd_create("hostile", MFD_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, 4096), 0);
		return fd;
	case 3:
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, p), 0);
		close(p[1]);
		return p[0];
	default:
		return open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
}

/* One hostile connection does its thing; returns its fd if it stays
 * open for now, else -1 (closed). */
static int hostile_peer(const char *sock, unsigned *stats)
{
	char junk[2048];
	int fd = raw_connect(sock, false), fds[8];
	unsigned kind = rnd_below(7), nfds;
	size_t len;

	ck_assert_msg(fd >= 0, "connect: %s", g_strerror(errno));
	stats[kind]++;
	switch (kind) {
	case 0: /* gone at once */
		close(fd);
		return -1;
	case 1: /* reads part of its greeting, then goes */
		drain_some(fd, rnd_below(64), rnd_below(2) ? 100 : 0);
		close(fd);
		return -1;
	case 2: /* random bytes, no fds */
		len = 1 + rnd_below(sizeof(junk));
		rnd_bytes(junk, len);
		send_with_fds(fd, junk, len, NULL, 0);
		break;
	case 3: /* random bytes with fds attached */
		nfds = 1 + rnd_below(4);
		for (unsigned i = 0; i < nfds; i++) {
			fds[i] = some_fd();
			ck_assert_int_ge(fds[i], 0);
		}
		len = 1 + rnd_below(64);
		rnd_bytes(junk, len);
		send_with_fds(fd, junk, len, fds, nfds);
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		break;
	case 4: { /* half-closes: the server takes it as gone */
		double deadline = now_seconds() + TWAIT_MS / 1000.0;
		ssize_t n;

		ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
		while ((n = drain_some(fd, SIZE_MAX, 100)) != 0)
			ck_assert_msg(now_seconds() < deadline,
				      "a half-closed peer was never closed");
		close(fd);
		return -1;
	}
	case 5: /* its whole greeting, then bytes with an fd */
		drain_some(fd, SIZE_MAX, 100);
		fds[0] = some_fd();
		send_with_fds(fd, "x", 1, fds, 1);
		close(fds[0]);
		break;
	default: /* sends nothing, stays for a while */
		break;
	}
	if (rnd_below(3) == 0) {
		close(fd);
		return -1;
	}
	return fd;
}

START_TEST(test_random_peers)
{
	struct tserver *s = START(NULL);
	int fds0 = server_fds(s), open_fds[RANDOM_WINDOW];
	unsigned stats[7] = { 0 }, joins = 0;
	struct tpeer w;
	struct cc c;

	rng_seed("random-peers", 1);
	for (unsigned i = 0; i < RANDOM_WINDOW; i++)
		open_fds[i] = -1;
	/* A well-behaved peer sees it all: its stream must stay whole. */
	tpeer_join_ok(&w, s->sock, 1, false);
	for (unsigned i = 0; i < RANDOM_CONNECTIONS; i++) {
		unsigned slot = rnd_below(RANDOM_WINDOW);
		unsigned before = w.nmsgs;

		if (open_fds[slot] >= 0)
			close(open_fds[slot]);
		open_fds[slot] = hostile_peer(s->sock, stats);
		pump(&w);
		joins += w.nmsgs - before;
	}
	for (unsigned i = 0; i < RANDOM_WINDOW; i++)
		if (open_fds[i] >= 0)
			close(open_fds[i]);
	cc_open(&c, s);
	wait_peer_count(&c, s, 1);
	cc_close(&c);
	tpeer_drain(&w, TQUIET_MS);
	ck_assert_uint_eq(w.npeers, 0);
	fprintf(stderr, "random-peers: %u connections (closed at once %u, read part %u, bytes %u, bytes+fds %u, half-closed %u, greeting+fd %u, silent %u); watcher got %u messages; server fds %d at rest\n",
		RANDOM_CONNECTIONS, stats[0], stats[1], stats[2], stats[3],
		stats[4], stats[5], stats[6], w.nmsgs, fds0);
	ck_assert_uint_gt(w.nmsgs, 4);

	expect_healthy(s, 1, fds0 + 2);
	tpeer_close(&w);
	expect_server_fds(s, fds0);
	tserver_stop_ok(s);
}
END_TEST

/* ---- thousands of connections under a low fd limit -------------------- */

#define FLOOD_CONNECTIONS 3000
#define FLOOD_ROOM 8

/* Open n connections at once (nonblocking: those past the backlog are
 * refused with EAGAIN and counted). */
static unsigned flood(const char *sock, int *fds, unsigned n,
		      unsigned *refused)
{
	unsigned ok = 0;

	*refused = 0;
	for (unsigned i = 0; i < n; i++) {
		fds[i] = raw_connect(sock, true);
		if (fds[i] >= 0)
			ok++;
		else {
			ck_assert_msg(errno == EAGAIN, "connect: %s",
				      g_strerror(errno));
			(*refused)++;
		}
	}
	return ok;
}

/* How many of the connections got at least their first message. */
static unsigned greeted(const int *fds, unsigned n)
{
	unsigned g = 0;

	for (unsigned i = 0; i < n; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };

		if (fds[i] >= 0 && poll(&pfd, 1, 0) == 1 &&
		    (pfd.revents & POLLIN))
			g++;
	}
	return g;
}

static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

START_TEST(test_fd_flood)
{
	/* Not verbose: both lines are for everyone to see. */
	struct tserver *s = START(NULL);
	int fds0 = server_fds(s), *conns = g_new(int, FLOOD_CONNECTIONS);
	unsigned ok, refused, got;
	struct rlimit rl;
	struct tpeer w;
	struct cc c;

	tpeer_join_ok(&w, s->sock, 1, false);
	cc_open(&c, s);
	expect_info(&c, s, 1);
	/* Room for FLOOD_ROOM more peers (a socket and an eventfd each). */
	rl.rlim_cur = rl.rlim_max = proc_fd_limit_leaving(s->pid,
							  2 * FLOOD_ROOM);
	ck_assert_int_eq(prlimit(s->pid, RLIMIT_NOFILE, &rl, NULL), 0);

	for (int round = 1; round <= 2; round++) {
		ok = flood(s->sock, conns, FLOOD_CONNECTIONS, &refused);
		ck_assert_uint_gt(ok, 1000);
		tserver_expect_log(s, "cannot accept new peers (Too many open files)");
		/* Those it took are greeted; the others wait. */
		wait_peer_count(&c, s, 1 + FLOOD_ROOM);
		tpeer_wait_peers_ok(&w, FLOOD_ROOM);
		expect_info(&c, s, 1 + FLOOD_ROOM);
		got = greeted(conns, FLOOD_CONNECTIONS);
		ck_assert_uint_ge(got, FLOOD_ROOM);
		fprintf(stderr, "fd-flood round %d: %u connections queued at once, %u refused by the backlog, %u greeted under a limit of %lu fds (server held %d)\n",
			round, ok, refused, got, (unsigned long)rl.rlim_cur,
			server_fds(s));

		/* They all go at once: the server goes through the backlog
		 * of closed connections and comes back to its fds. */
		close_all(conns, FLOOD_CONNECTIONS);
		wait_peer_count(&c, s, 1);
		tpeer_drain(&w, TQUIET_MS);
		ck_assert_uint_eq(w.npeers, 0);
		/* The watcher holds a socket and an eventfd, the control
		 * client a socket. */
		expect_server_fds(s, fds0 + 3);
		expect_healthy(s, 1, fds0 + 3);

		/* One warning when the shortage began, one notice when
		 * it ended: not one per connection. */
		expect_log_count(s, "cannot accept new peers", round);
		tserver_expect_log(s, "accepting new peers again");
		expect_log_count(s, "accepting new peers again", round);
	}
	g_free(conns);
	cc_close(&c);
	tpeer_close(&w);
	expect_server_fds(s, fds0);
	tserver_stop_ok(s);
}
END_TEST

/* ---- peers that shrink the shared memory ------------------------------ */

static void shrink_case(const char *kind)
{
	char dir[] = "/tmp/ivshmem-shrink-XXXXXX";
	bool memfd = strcmp(kind, "memfd") == 0;
	bool indir = strcmp(kind, "dir") == 0;
	struct tserver *s;
	struct tpeer a, b, d;
	struct cc c;
	int fds0;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	if (memfd)
		s = START("-l", "1M", "--memfd");
	else if (indir)
		s = START("-l", "1M", "-m", dir);
	else
		s = START("-l", "1M");
	fds0 = server_fds(s);

	tpeer_join_ok(&a, s->sock, 1, false);
	ck_assert_uint_eq(a.shm_size, 1u << 20);
	if (memfd) {
		/* Its seal refuses. */
		ck_assert_int_eq(ftruncate(a.shm_fd, 0), -1);
		ck_assert_int_eq(errno, EPERM);
	} else {
		ck_assert_int_eq(ftruncate(a.shm_fd, 4096), 0);
	}
	tpeer_join_ok(&b, s->sock, 1, false);
	ck_assert_uint_eq(b.shm_size, memfd ? 1u << 20 : 4096);
	if (!memfd)
		ck_assert_int_eq(ftruncate(b.shm_fd, 0), 0);
	tpeer_join_ok(&d, s->sock, 1, false);
	ck_assert_uint_eq(d.shm_size, memfd ? 1u << 20 : 0);
	ck_assert_uint_eq(d.npeers, 2);

	/* The control socket still answers, shm too (its fd with it). */
	cc_open(&c, s);
	expect_info(&c, s, 3);
	twrite_all(c.fd, "{\"command\":\"shm\"}\n", 18);
	{
		JsonObject *o = cc_reply(&c, TWAIT_MS, NULL);

		ck_assert(reply_ok(o));
		ck_assert_int_eq(json_object_get_boolean_member(o, "sealed"),
				 memfd);
		json_object_unref(o);
	}
	ck_assert_uint_eq(c.fds, 1);
	cc_close(&c);
	tpeer_close(&a);
	tpeer_close(&b);
	expect_healthy(s, 1, fds0 + 2);
	tpeer_close(&d);
	expect_server_fds(s, fds0);
	tserver_stop_ok(s);
	ck_assert_msg(rmdir(dir) == 0, "%s: %s", dir, g_strerror(errno));
}

START_TEST(test_shrink_posix)
{
	shrink_case("posix");
}
END_TEST

START_TEST(test_shrink_dir)
{
	shrink_case("dir");
}
END_TEST

START_TEST(test_shrink_memfd)
{
	shrink_case("memfd");
}
END_TEST

/* ---- fuzzed control lines --------------------------------------------- */

static const char *const templates[] = {
	"{\"command\":\"info\",\"tag\":1}",
	"{\"command\":\"peers\",\"tag\":\"x\"}",
	"{\"command\":\"ring\",\"peer\":0,\"vector\":0,\"tag\":[1,2]}",
	"{\"command\":\"ring\",\"peer\":65535,\"tag\":{\"a\":null}}",
	"{\"command\":\"watch\",\"tag\":true}",
	"{\"command\":\"shm\",\"tag\":-0.5e-3}",
	"{\"command\":\"nope\",\"tag\":\"\\ud83d\\ude00\"}",
	"{\"tag\":1e400,\"command\":\"info\"}",
	"{\"command\":\"info\",\"tag\":9223372036854775808}",
	"{\"command\":\"info\",\"tag\":\"a\\u0000b\"}",
	"{\"command\":\"info\",\"t\\u0061g\":1}",
	"[\"command\",\"info\"]",
	"{\"command\":\"info\"} {\"command\":\"info\"}",
	"{'command':'info'}",
	"{\"command\":\"kick\",\"peer\":\"0\",\"tag\":\"\xc3\xa9\"}",
};

/* Pieces to splice in: JSON tokens, broken UTF-8, NUL bytes. */
static const char *const pieces[] = {
	"{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "\\udc00",
	"1e999", "-", "0", "00", "9999999999999999999999", "null", "true",
	"\"tag\":", "\"command\":", "\xc0\x80", "\xed\xa0\x80", "\xf5\x80",
	"\xff", "\xe2\x82", "\x80", "/*", "*/", " ", "\t", "\r", "\x01",
	"\x7f", "\xf0\x9f\x98\x80", "\"info\"", "\"shm\"", "\"watch\"",
};

/* A line to send: a mutated template, random bytes, or pieces; no
 * newline in it, not blank, shorter than the server's limit. */
static GString *fuzz_line(void)
{
	GString *g = g_string_new(NULL);
	unsigned how = rnd_below(4);

	if (how == 0) {
		size_t n = 1 + rnd_below(200);

		for (size_t i = 0; i < n; i++)
			g_string_append_c(g, (char)rnd());
	} else if (how == 1) {
		unsigned n = 1 + rnd_below(20);

		for (unsigned i = 0; i < n; i++)
			g_string_append(g, pieces[rnd_below(G_N_ELEMENTS(pieces))]);
	} else {
		g_string_append(g, templates[rnd_below(G_N_ELEMENTS(templates))]);
		for (unsigned m = rnd_below(how == 2 ? 1 : 6); m > 0; m--) {
			gsize at = rnd_below((unsigned)g->len + 1);

			switch (rnd_below(4)) {
			case 0: /* a byte changed */
				if (at < g->len)
					g->str[at] = (char)rnd();
				break;
			case 1: /* bytes cut */
				if (at < g->len)
					g_string_erase(g, (gssize)at,
						       (gssize)rnd_below((unsigned)(g->len - at) + 1));
				break;
			case 2: /* a piece put in */
				g_string_insert(g, (gssize)at,
						pieces[rnd_below(G_N_ELEMENTS(pieces))]);
				break;
			default: /* a NUL */
				g_string_insert_c(g, (gssize)at, '\0');
				break;
			}
		}
	}
	for (gsize i = 0; i < g->len; i++)
		if (g->str[i] == '\n')
			g->str[i] = '\0';
	for (gsize i = 0; i <= g->len; i++) {
		if (i == g->len) {
			g_string_append_c(g, 'x');  /* never blank */
			break;
		}
		if (!strchr(" \t\r", g->str[i]) || !g->str[i])
			break;
	}
	return g;
}

/*
 * When the request is a JSON object whose "tag" is written plainly, the
 * reply's tag is that text byte for byte, or the request was refused.
 */
static void check_tag(const GString *req, const char *reply, bool ok)
{
	size_t roff, rn, off, n;
	bool rfound, found;

	if (!g_utf8_validate(req->str, (gssize)req->len, NULL) ||
	    !json_strict(req->str, req->len, "tag", &roff, &rn, &rfound) ||
	    !rfound)
		return;
	ck_assert(json_strict(reply, strlen(reply), "tag", &off, &n, &found));
	if (!found) {
		ck_assert_msg(!ok, "the tag of %s is lost in %s", req->str,
			      reply);
		return;
	}
	ck_assert_msg(rn == n && memcmp(req->str + roff, reply + off, n) == 0,
		      "tag %.*s came back as %.*s", (int)rn, req->str + roff,
		      (int)n, reply + off);
}

#define FUZZ_BATCH 32
#define FUZZ_CLIENTS 4

START_TEST(test_ctl_fuzz)
{
	struct tserver *s = START(NULL);
	const char *env = getenv("HOSTILE_FUZZ_SECONDS");
	double secs = env && *env ? atof(env) : 5, end;
	int fds0 = server_fds(s);
	unsigned long lines = 0, errors = 0, bytes = 0;
	struct cc c[FUZZ_CLIENTS];
	struct tpeer w;

	rng_seed("ctl-fuzz", 2);
	tpeer_join_ok(&w, s->sock, 1, false);
	for (int i = 0; i < FUZZ_CLIENTS; i++)
		cc_open(&c[i], s);
	end = now_seconds() + secs;
	while (now_seconds() < end) {
		struct cc *cl = &c[rnd_below(FUZZ_CLIENTS)];
		GString *req[FUZZ_BATCH], *all = g_string_new(NULL);
		unsigned n = 1 + rnd_below(FUZZ_BATCH);

		for (unsigned i = 0; i < n; i++) {
			req[i] = fuzz_line();
			g_string_append_len(all, req[i]->str, (gssize)req[i]->len);
			g_string_append_c(all, '\n');
		}
		twrite_all(cl->fd, all->str, all->len);
		bytes += all->len;
		g_string_free(all, TRUE);
		/* One reply per line, in order. */
		for (unsigned i = 0; i < n; i++) {
			char *text;
			JsonObject *o = cc_reply(cl, TWAIT_MS, &text);

			errors += !reply_ok(o);
			check_tag(req[i], text, reply_ok(o));
			json_object_unref(o);
			g_free(text);
			g_string_free(req[i], TRUE);
		}
		lines += n;
		/* The peer may have been kicked: it comes back. */
		if (tpeer_recv(&w, 0, &(struct tmsg){ 0 }, NULL) == 0) {
			tpeer_close(&w);
			tpeer_join_ok(&w, s->sock, 1, false);
		}
	}
	fprintf(stderr, "ctl-fuzz: %lu lines (%lu bytes) in %.1f s on %d clients, %lu answered with an error\n",
		lines, bytes, secs, FUZZ_CLIENTS, errors);
	ck_assert_uint_gt(lines, 100);
	ck_assert_uint_gt(errors, 0);
	ck_assert_uint_lt(errors, lines);
	for (int i = 0; i < FUZZ_CLIENTS; i++)
		cc_close(&c[i]);
	tpeer_close(&w);
	expect_healthy(s, 0, fds0);
	tserver_stop_ok(s);
}
END_TEST

/* ---- overlong lines, invalid UTF-8, NUL bytes ------------------------- */

/* Send `line` (its newline added) and get one error reply with `code`;
 * then the connection still answers info. */
static void expect_refused_line(struct cc *c, const struct tserver *s,
				const char *line, size_t len, const char *code)
{
	JsonObject *o;

	twrite_all(c->fd, line, len);
	twrite_all(c->fd, "\n", 1);
	o = cc_reply(c, TWAIT_MS, NULL);
	ck_assert_msg(!reply_ok(o), "accepted: %.*s", (int)(len > 80 ? 80 : len),
		      line);
	ck_assert_msg(strcmp(ostr(o, "error"), code) == 0,
		      "error %s, want %s, for %.*s", ostr(o, "error"), code,
		      (int)(len > 80 ? 80 : len), line);
	json_object_unref(o);
	expect_info(c, s, 0);
}

START_TEST(test_ctl_bad_lines)
{
	static const struct {
		const char *text;
		size_t len;
		const char *code;
	} bad[] = {
#define B(s, code) { s, sizeof(s) - 1, code }
		B("\xc0\x80", "parse"),
		B("{\"command\":\"info\",\"tag\":\"\xed\xa0\x80\"}", "parse"),
		B("{\"command\":\"info\",\"tag\":\"\xf4\x90\x80\x80\"}", "parse"),
		B("{\"command\":\"info\",\"tag\":\"\xe2\x82\"}", "parse"),
		B("{\"command\":\"info\",\"tag\":\"\x80\"}", "parse"),
		B("\xff\xfe{}", "parse"),
		B("{\"command\":\"in\0fo\"}", "parse"),
		B("\0{\"command\":\"info\"}", "parse"),
		B("{\"command\":\"info\"}\0", "parse"),
		B("{\"command\":\"info\",\"tag\":\"\0\"}", "parse"),
		B("{\"command\":\"info\",\"tag\":\"\\ud800\"}", "invalid"),
		B("{\"command\":\"info\",\"tag\":\"\x01\"}", "parse"),
		B("{\"command\":\"info\",\"tag\":1e400}", "invalid"),
#undef B
	};
	struct tserver *s = START(NULL);
	int fds0 = server_fds(s);
	size_t sizes[] = { 4096, 4097, 5000, 65536, 1u << 20 };
	struct cc c;

	cc_open(&c, s);
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		JsonObject *o;

		twrite_all(c.fd, bad[i].text, bad[i].len);
		twrite_all(c.fd, "\n", 1);
		o = cc_reply(&c, TWAIT_MS, NULL);
		/* Refused, or answered with the tag exactly as sent. */
		if (reply_ok(o))
			ck_assert_msg(strcmp(bad[i].code, "invalid") == 0,
				      "line %zu accepted", i);
		else
			ck_assert_msg(!strcmp(ostr(o, "error"), bad[i].code) ||
				      !strcmp(bad[i].code, "invalid"),
				      "line %zu: error %s, want %s", i,
				      ostr(o, "error"), bad[i].code);
		json_object_unref(o);
		expect_info(&c, s, 0);
	}

	/* Overlong lines: one too-long each, the rest dropped. The longest
	 * line that fits (4095 bytes and the newline) is answered. */
	{
		char *line = g_malloc(4095);

		memset(line, ' ', 4095);
		memcpy(line, "{\"command\":\"info\"}", 18);
		twrite_all(c.fd, line, 4095);
		twrite_all(c.fd, "\n", 1);
		JsonObject *o = cc_reply(&c, TWAIT_MS, NULL);

		ck_assert(reply_ok(o));
		json_object_unref(o);
		g_free(line);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
		char *line = g_malloc(sizes[i]);

		memset(line, 'a', sizes[i]);
		memcpy(line, "{\"command\":\"info\",\"tag\":\"", 25);
		expect_refused_line(&c, s, line, sizes[i], "too-long");
		g_free(line);
	}
	/* Overlong with NULs and bad UTF-8 in it, sent in pieces. */
	{
		char *line = g_malloc(20000);

		rng_seed("ctl-bad-lines", 3);
		rnd_bytes(line, 20000);
		for (size_t i = 0; i < 20000; i++)
			if (line[i] == '\n')
				line[i] = '\0';
		expect_refused_line(&c, s, line, 20000, "too-long");
		g_free(line);
	}
	cc_close(&c);
	expect_healthy(s, 0, fds0);
	tserver_stop_ok(s);
}
END_TEST

/* ---- pipelined requests, then the write side closed --------------------- */

#define PIPELINED 20000

/*
 * Send PIPELINED requests (tags 0, 1, ...) and shutdown(SHUT_WR). With
 * read_along, replies are read while sending; without, only what must be
 * read for the sending to go on; slowly: then read in small pieces. Every
 * reply comes, in order, before EOF.
 */
static void pipelined(const struct tserver *s, bool read_along,
		      bool slowly, const char *cmd)
{
	GString *all = g_string_new(NULL);
	unsigned next = 0;
	size_t sent = 0;
	struct cc c;

	for (unsigned i = 0; i < PIPELINED; i++)
		g_string_append_printf(all, "{\"command\":\"%s\",\"tag\":%u}\n",
				       cmd, i);
	/* The last line without its newline: answered too. */
	g_string_truncate(all, all->len - 1);
	cc_open(&c, s);
	ck_assert_int_eq(fcntl(c.fd, F_SETFL, O_NONBLOCK), 0);
	while (sent < all->len) {
		struct pollfd pfd = { .fd = c.fd, .events = POLLOUT };
		ssize_t n = send(c.fd, all->str + sent, all->len - sent,
				 MSG_NOSIGNAL);

		if (n > 0) {
			sent += (size_t)n;
			if (read_along)
				cc_fill(&c, 0);
			continue;
		}
		ck_assert_msg(errno == EAGAIN, "send: %s", g_strerror(errno));
		/* Without read_along, read only when the sending is stuck:
		 * the server stopped reading until we read. */
		if (!read_along && poll(&pfd, 1, 200) == 1)
			continue;
		pfd.events = POLLIN | POLLOUT;
		ck_assert_int_eq(poll(&pfd, 1, TWAIT_MS), 1);
		if (pfd.revents & POLLIN)
			cc_fill(&c, 0);
	}
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	if (slowly) {
		/* Small reads: the socket stays full while the server
		 * answers the last lines and sees the end. */
		char buf[4096];
		ssize_t n;

		ck_assert_int_eq(fcntl(c.fd, F_SETFL, 0), 0);
		while ((n = recv(c.fd, buf, sizeof(buf), 0)) > 0) {
			g_string_append_len(c.in, buf, n);
			usleep(100);
		}
		c.eof = true;
	}
	for (;;) {
		size_t len;
		char *line = cc_line(&c, TWAIT_MS, &len);
		JsonObject *o;

		if (!line)
			break;
		o = check_line(line, len);
		ck_assert_msg(reply_ok(o), "%s", line);
		ck_assert_msg(json_object_get_int_member(o, "tag") == next,
			      "reply %u has tag %lld", next,
			      (long long)json_object_get_int_member(o, "tag"));
		next++;
		json_object_unref(o);
		g_free(line);
	}
	ck_assert_msg(c.eof, "the server did not close the connection after %u replies",
		      next);
	ck_assert_msg(next == PIPELINED,
		      "%u of %u pipelined %s replies came before the server closed (%s)",
		      next, PIPELINED, cmd, read_along ? "read along" : "read after");
	fprintf(stderr, "pipelined %s (%s%s): %u replies, all before EOF\n",
		cmd, read_along ? "read along" : "read after",
		slowly ? ", slowly" : "", next);
	cc_close(&c);
	g_string_free(all, TRUE);
}

/* Send `n` copies of `line` (its newline added) in batches, each
 * answered with an error `code` before the next batch goes. */
static void send_refused_lines(struct cc *c, const char *line, int n,
			       const char *code)
{
	enum { BATCH = 200 };
	GString *batch = g_string_new(NULL);

	for (int i = 0; i < BATCH; i++)
		g_string_append_printf(batch, "%s\n", line);
	for (int done = 0; done < n; done += BATCH) {
		twrite_all(c->fd, batch->str, batch->len);
		for (int i = 0; i < BATCH; i++) {
			JsonObject *o = cc_reply(c, TWAIT_MS, NULL);

			ck_assert_msg(!reply_ok(o) && !strcmp(ostr(o, "error"), code),
				      "%s: %s", line, ostr(o, "message"));
			json_object_unref(o);
		}
	}
	g_string_free(batch, TRUE);
}

/* Lines json-glib 1.6 leaked a buffer for (surrogate escapes it cannot
 * pair): refused, and the server's memory does not grow with them
 * (20000 of them grew it by about 3.7 MB before they were refused). */
START_TEST(test_ctl_no_growth)
{
	static const char *const lines[] = {
		"{\"command\":\"info\",\"a\":\"\\ud83d\\u0041\"}",
		"{\"command\":\"info\",\"a\":\"\\ud83d\\ud83d\"}",
		"{\"command\":\"info\",\"tag\":[\"\\udbff\\u00e9\"]}",
	};
	struct tserver *s = START(NULL);
	int fds0 = server_fds(s);
	struct cc c;
	long rss0, rss1;

	cc_open(&c, s);
	/* Warm up: the allocator's pools, the reply path. */
	send_refused_lines(&c, "{\"command\":\"nope\"}", 2000,
			   "unknown-command");
	send_refused_lines(&c, lines[0], 200, "parse");
	rss0 = proc_peak_rss_kib(s->pid);
	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++)
		send_refused_lines(&c, lines[i], 20000 / (int)G_N_ELEMENTS(lines),
				   "parse");
	rss1 = proc_peak_rss_kib(s->pid);
	fprintf(stderr, "no-growth: 20000 refused escapes; server peak RSS %ld -> %ld KiB\n",
		rss0, rss1);
	if (TRSS_MEANINGFUL)
		ck_assert_msg(rss1 - rss0 < 1024,
			      "the server grew by %ld KiB", rss1 - rss0);
	cc_close(&c);
	expect_healthy(s, 0, fds0);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(test_ctl_pipelined)
{
	struct tserver *s = START(NULL);
	int fds0 = server_fds(s);
	struct tpeer p;

	tpeer_join_ok(&p, s->sock, 1, false);
	pipelined(s, false, true, "info");
	pipelined(s, false, true, "peers");
	pipelined(s, true, false, "info");
	pipelined(s, false, false, "info");
	tpeer_close(&p);
	expect_healthy(s, 0, fds0);
	tserver_stop_ok(s);
}
END_TEST

/* ---- clients that never read ------------------------------------------ */

#define NEVER_READ 60

START_TEST(test_ctl_never_read)
{
	struct tserver *s = START(NULL);
	int fds0 = server_fds(s), cl[NEVER_READ];
	GString *req = g_string_new(NULL);
	char *path = ctl_path(s);
	struct cc c;
	long rss0, rss1;

	for (int i = 0; i < 2000; i++)
		g_string_append(req, "{\"command\":\"info\"}\n{\"command\":\"watch\"}\n");
	cc_open(&c, s);
	expect_info(&c, s, 0);
	rss0 = proc_peak_rss_kib(s->pid);
	/* Each asks for far more than it reads (nothing), until the
	 * server stops reading it. */
	for (int i = 0; i < NEVER_READ; i++) {
		size_t sent = 0;

		cl[i] = raw_connect(path, true);
		ck_assert_int_ge(cl[i], 0);
		for (;;) {
			ssize_t n = send(cl[i], req->str + sent % req->len,
					 req->len - sent % req->len,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n < 0) {
				struct pollfd pfd = { .fd = cl[i],
						      .events = POLLOUT };

				ck_assert_int_eq(errno, EAGAIN);
				/* Full both ways once nothing moves. */
				if (poll(&pfd, 1, 100) == 0)
					break;
				continue;
			}
			sent += (size_t)n;
		}
		/* The reading client is answered all along. */
		if (i % 10 == 0)
			expect_info(&c, s, 0);
	}
	/* Peers joining and leaving make events the watchers do not read. */
	for (int i = 0; i < 50; i++) {
		struct tpeer p;

		tpeer_join_ok(&p, s->sock, 1, false);
		tpeer_close(&p);
	}
	wait_peer_count(&c, s, 0);
	expect_info(&c, s, 0);
	rss1 = proc_peak_rss_kib(s->pid);
	fprintf(stderr, "never-read: %d clients that never read; server fds %d, peak RSS %ld -> %ld KiB\n",
		NEVER_READ, server_fds(s), rss0, rss1);
	ck_assert_int_eq(server_fds(s), fds0 + 1 + NEVER_READ);
	for (int i = 0; i < NEVER_READ; i++)
		close(cl[i]);
	cc_close(&c);
	expect_server_fds(s, fds0);
	expect_healthy(s, 0, fds0);
	g_string_free(req, TRUE);
	g_free(path);
	tserver_stop_ok(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hostile-peers");
	TCase *tc;

	tc = tcase_with("peers", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, test_random_peers);
	tcase_add_test(tc, test_fd_flood);
	tcase_add_test(tc, test_shrink_posix);
	tcase_add_test(tc, test_shrink_dir);
	tcase_add_test(tc, test_shrink_memfd);
	suite_add_tcase(s, tc);

	tc = tcase_with("control", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, test_ctl_fuzz);
	tcase_add_test(tc, test_ctl_bad_lines);
	tcase_add_test(tc, test_ctl_no_growth);
	tcase_add_test(tc, test_ctl_pipelined);
	tcase_add_test(tc, test_ctl_never_read);
	suite_add_tcase(s, tc);
	return run_tracked_suite(s);
}
