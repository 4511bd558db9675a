/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of ivshmem-server's control socket (protocol 1): real
 * server processes, a raw control client that reads replies with recvmsg
 * and parses them with json-glib, and real test peers.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
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

#include <json-glib/json-glib.h>

#include "common.h"
#include "config.h"

/* Another client must be answered within this while one misbehaves. */
#define PROMPT_MS 2000
#define TCASE_TIMEOUT 120

/* ---- cleanup after a failed test ----------------------------------------- */

/*
 * Servers are tserver_tracked() (common.h), but tserver_cleanup() knows
 * nothing of control sockets: their paths, and the temp dirs of these
 * tests, are kept here, in memory shared with the runner, and removed
 * before the tracked servers' dirs.
 */
#define MAX_LEFT 256

struct leftovers {
	unsigned npaths, ndirs;
	char path[MAX_LEFT][128];
	char dir[32][64];
	pid_t daemon;
};
static struct leftovers *left;

static void leave_path(const char *path)
{
	if (left->npaths < MAX_LEFT)
		g_strlcpy(left->path[left->npaths++], path,
			  sizeof(left->path[0]));
}

static void remove_leftovers(void)
{
	if (left->daemon > 0)
		kill(left->daemon, SIGKILL);
	left->daemon = -1;
	for (unsigned i = 0; i < left->npaths; i++)
		unlink(left->path[i]);
	left->npaths = 0;
	tserver_reap_tracked();
	while (left->ndirs > 0)
		rmdir(left->dir[--left->ndirs]);
}

/* A temp dir of our own, removed after a failure (when empty). */
static const char *temp_dir(void)
{
	char *d;

	ck_assert_uint_lt(left->ndirs, G_N_ELEMENTS(left->dir));
	d = left->dir[left->ndirs];
	snprintf(d, sizeof(left->dir[0]), "/tmp/ivshmem-ctltest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d));
	left->ndirs++;
	return d;
}

static char *path_in(const char *dir, const char *name)
{
	char *p = g_strdup_printf("%s/%s", dir, name);

	leave_path(p);
	return p;
}

/* The default control socket of s: its socket path + ".ctl". */
static char *ctl_of(const struct tserver *s)
{
	return g_strdup_printf("%s.ctl", s->sock);
}

/* ---- test peers ---------------------------------------------------------- */

/* A connection to the peer socket that never reads. */
static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = TWAIT_MS / 1000 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	/* A server that stopped accepting fails the test, not hangs it. */
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
				    sizeof(tv)), 0);
	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		      "connect %s: %s", path, g_strerror(errno));
	return fd;
}

/* The eventfd of own vector v was rung (count 1 or more): read it. Or,
 * with want 0, it was not rung. Doorbells from the server are written
 * before the reply, so no waiting is needed. */
static void expect_doorbell(struct tpeer *p, unsigned v, int64_t want)
{
	int64_t n = tpeer_wait_doorbell(p, v, 0);

	if (want == 0)
		ck_assert_msg(n == -ETIMEDOUT,
			      "peer %d vector %u rung (%lld) unexpectedly",
			      p->id, v, (long long)n);
	else
		ck_assert_msg(n == want, "peer %d vector %u: %lld, want %lld",
			      p->id, v, (long long)n, (long long)want);
}

/* ---- a raw control client ------------------------------------------------ */

#define MAX_FDS 16

struct cc {
	int fd;
	GString *in;            /* received, not yet taken as lines */
	uint64_t received;      /* bytes received so far */
	uint64_t taken;         /* bytes taken as lines so far */
	uint64_t line_off;      /* stream offset of the last line taken */
	bool eof;
	int err;                /* errno that ended the stream, or 0 */
	unsigned nfds;
	struct {
		int fd;
		uint64_t from, to;  /* bytes of the recvmsg that brought it */
	} fds[MAX_FDS];
};

static int cc_try(struct cc *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(c->fd, 0);
	ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(c->fd);
		c->fd = -1;
		return -e;
	}
	c->in = g_string_new(NULL);
	return 0;
}

/* Connect, retrying while the socket is not there yet. */
static void cc_open(struct cc *c, const char *path)
{
	memset(c, 0, sizeof(*c));
	c->fd = tconnect_retry(path);
	c->in = g_string_new(NULL);
}

static void cc_close(struct cc *c)
{
	for (unsigned i = 0; i < c->nfds; i++)
		if (c->fds[i].fd >= 0)
			close(c->fds[i].fd);
	if (c->fd >= 0)
		close(c->fd);
	if (c->in)
		g_string_free(c->in, TRUE);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Send one request line (the newline is added). */
static void cc_send(struct cc *c, const char *req)
{
	/* One write, so that the server sees the lines all at once. */
	char *line = g_strconcat(req, "\n", NULL);

	twrite_all(c->fd, line, strlen(line));
	g_free(line);
}

/* One recvmsg, after waiting up to timeout_ms: > 0 bytes, 0 EOF,
 * -ETIMEDOUT, or a negative errno. */
static int cc_fill(struct cc *c, int timeout_ms)
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
	struct cmsghdr *cm;
	ssize_t n;
	int r;

	do {
		r = poll(&pfd, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	do {
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	ck_assert_msg(!(msg.msg_flags & MSG_CTRUNC), "control data truncated");
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int nfd = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		ck_assert_int_eq(cm->cmsg_level, SOL_SOCKET);
		ck_assert_int_eq(cm->cmsg_type, SCM_RIGHTS);
		for (int i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(fd));
			ck_assert_uint_lt(c->nfds, MAX_FDS);
			c->fds[c->nfds].fd = fd;
			c->fds[c->nfds].from = c->received;
			c->fds[c->nfds].to = c->received + (uint64_t)n;
			c->nfds++;
		}
	}
	if (n == 0)
		return 0;
	g_string_append_len(c->in, buf, n);
	c->received += (uint64_t)n;
	return (int)n;
}

/* The next line without its newline (g_free it), or NULL on timeout or
 * at the end of the stream (c->eof). */
static char *cc_line(struct cc *c, int timeout_ms)
{
	double deadline = now_seconds() + timeout_ms / 1000.0;

	for (;;) {
		char *nl = memchr(c->in->str, '\n', c->in->len);

		if (nl) {
			size_t n = (size_t)(nl - c->in->str);
			char *line = g_strndup(c->in->str, n);

			/* JSON has no raw control characters, in strings
			 * or out of them. */
			for (size_t i = 0; i < n; i++)
				ck_assert_msg((unsigned char)line[i] >= 0x20,
					      "byte 0x%02x at %zu of: %s",
					      (unsigned char)line[i], i, line);
			c->line_off = c->taken;
			c->taken += n + 1;
			g_string_erase(c->in, 0, (gssize)n + 1);
			return line;
		}
		if (c->eof)
			return NULL;

		int ms = (int)((deadline - now_seconds()) * 1000);
		int r = cc_fill(c, ms > 0 ? ms : 0);

		if (r == -ETIMEDOUT)
			return NULL;
		if (r <= 0) {
			c->eof = true;
			c->err = -r;
		}
	}
}

/* Nothing arrives within ms. */
static void cc_quiet(struct cc *c, int ms)
{
	char *line = cc_line(c, ms);

	ck_assert_msg(!line && !c->eof, "unexpected: %s",
		      line ? line : "end of stream");
}

/* The stream ends (after any line still to come is taken: none). */
static void cc_expect_eof(struct cc *c)
{
	char *line = cc_line(c, TWAIT_MS);

	ck_assert_msg(!line, "want the end of the stream, got: %s", line);
	ck_assert_msg(c->eof, "the server did not close the connection");
}

/* Has the server closed its end? (Whatever is still unread.) */
static bool cc_hup(struct cc *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = 0 };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP);
}

static char *node_text(JsonNode *n)
{
	return json_to_string(n, FALSE);
}

static char *obj_text(JsonObject *o)
{
	JsonNode *n = json_node_alloc();
	char *t;

	json_node_init_object(n, o);
	t = node_text(n);
	json_node_unref(n);
	return t;
}

static JsonNode *parse(const char *text)
{
	JsonParser *p = json_parser_new();
	GError *err = NULL;
	JsonNode *root;

	ck_assert_msg(json_parser_load_from_data(p, text, -1, &err),
		      "not JSON (%s): %s", err ? err->message : "?", text);
	root = json_parser_get_root(p);
	ck_assert_msg(root, "no JSON value: '%s'", text);
	root = json_node_copy(root);
	g_object_unref(p);
	return root;
}

/* A line that must be one JSON object. */
static JsonObject *parse_obj(const char *line)
{
	JsonNode *root;
	JsonObject *o;

	ck_assert_msg(g_utf8_validate(line, -1, NULL), "not UTF-8: %s", line);
	root = parse(line);
	ck_assert_msg(JSON_NODE_HOLDS_OBJECT(root), "not an object: %s", line);
	o = json_object_ref(json_node_get_object(root));
	json_node_unref(root);
	return o;
}

/* The next line, as an object; fails the test on timeout. */
static JsonObject *cc_next(struct cc *c, int timeout_ms)
{
	char *line = cc_line(c, timeout_ms);
	JsonObject *o;

	ck_assert_msg(line, "no line within %d ms (%s)", timeout_ms,
		      c->eof ? "the server closed the connection" : "timeout");
	o = parse_obj(line);
	g_free(line);
	return o;
}

static JsonObject *cc_call(struct cc *c, const char *req)
{
	cc_send(c, req);
	return cc_next(c, TWAIT_MS);
}

/* ---- looking into replies ------------------------------------------------ */

static JsonNode *member(JsonObject *o, const char *name)
{
	JsonNode *n = json_object_get_member(o, name);

	if (!n) {
		char *t = obj_text(o);

		ck_abort_msg("no \"%s\" in %s", name, t);
	}
	return n;
}

static gint64 oint(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);

	if (!JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_INT64) {
		char *t = obj_text(o);

		ck_abort_msg("\"%s\" is not an integer in %s", name, t);
	}
	return json_node_get_int(n);
}

static double onum(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);

	if (JSON_NODE_HOLDS_VALUE(n) &&
	    json_node_get_value_type(n) == G_TYPE_INT64)
		return (double)json_node_get_int(n);
	if (!JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_DOUBLE) {
		char *t = obj_text(o);

		ck_abort_msg("\"%s\" is not a number in %s", name, t);
	}
	return json_node_get_double(n);
}

static const char *ostr(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);

	if (!JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_STRING) {
		char *t = obj_text(o);

		ck_abort_msg("\"%s\" is not a string in %s", name, t);
	}
	return json_node_get_string(n);
}

static bool onull(JsonObject *o, const char *name)
{
	return JSON_NODE_HOLDS_NULL(member(o, name));
}

static JsonObject *oobj(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);

	ck_assert(JSON_NODE_HOLDS_OBJECT(n));
	return json_node_get_object(n);
}

static JsonArray *oarr(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);

	ck_assert(JSON_NODE_HOLDS_ARRAY(n));
	return json_node_get_array(n);
}

static void expect_ok(JsonObject *o, const char *command)
{
	JsonNode *ok = json_object_get_member(o, "ok");
	char *t = obj_text(o);

	ck_assert_msg(ok && JSON_NODE_HOLDS_VALUE(ok) &&
		      json_node_get_value_type(ok) == G_TYPE_BOOLEAN &&
		      json_node_get_boolean(ok), "not ok: %s", t);
	ck_assert_msg(!strcmp(ostr(o, "command"), command),
		      "want command %s: %s", command, t);
	g_free(t);
}

/* An error reply with this code; "command" present (and equal) when
 * command is not NULL, absent otherwise. */
static void expect_error(JsonObject *o, const char *command, const char *code)
{
	JsonNode *ok = json_object_get_member(o, "ok");
	char *t = obj_text(o);

	ck_assert_msg(ok && JSON_NODE_HOLDS_VALUE(ok) &&
		      json_node_get_value_type(ok) == G_TYPE_BOOLEAN &&
		      !json_node_get_boolean(ok), "not an error: %s", t);
	ck_assert_msg(!strcmp(ostr(o, "error"), code), "want error %s: %s",
		      code, t);
	ck_assert_msg(strlen(ostr(o, "message")) > 10, "no message: %s", t);
	if (command)
		ck_assert_msg(!strcmp(ostr(o, "command"), command),
			      "want command %s: %s", command, t);
	else
		ck_assert_msg(!json_object_has_member(o, "command"),
			      "unexpected command: %s", t);
	g_free(t);
}

/* Send req; the reply is an error with this code. */
static void call_error(struct cc *c, const char *req, const char *command,
		       const char *code)
{
	JsonObject *o = cc_call(c, req);

	expect_error(o, command, code);
	json_object_unref(o);
}

/* An info request tagged n; its reply is the very next line. */
static void expect_info(struct cc *c, int n)
{
	char *req = g_strdup_printf("{\"command\":\"info\",\"tag\":%d}", n);
	JsonObject *o = cc_call(c, req);

	expect_ok(o, "info");
	ck_assert_int_eq(oint(o, "tag"), n);
	json_object_unref(o);
	g_free(req);
}

/* "2026-11-21T10:00:00.123456Z" */
static void expect_time(const char *s)
{
	int y, mo, d, h, mi, sec, us, n = 0;

	ck_assert_msg(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ%n", &y, &mo, &d,
			     &h, &mi, &sec, &us, &n) == 7 &&
		      n == (int)strlen(s) && strlen(s) == 27,
		      "not an ISO 8601 UTC time: %s", s);
	ck_assert_int_ge(y, 2020);
}

/* A peer object as "peers" and "watch" give it. */
static void expect_peer_obj(JsonObject *p, int id, unsigned vectors)
{
	ck_assert_int_eq(oint(p, "id"), id);
	ck_assert_int_eq(oint(p, "vectors"), vectors);
	ck_assert_int_eq(oint(p, "pid"), getpid());
	ck_assert_int_eq(oint(p, "uid"), getuid());
	ck_assert_int_eq(oint(p, "gid"), getgid());
	ck_assert_int_ge(oint(p, "queued"), 0);
	expect_time(ostr(p, "connected_at"));
	ck_assert(onum(p, "connected_for") >= 0);
	ck_assert(onum(p, "connected_for") < 600);
}

/* ---- start-up failures --------------------------------------------------- */

/*
 * Run a server on s (prepared) with `-F -S sock -M name EXTRA...` that
 * must refuse to start: exit 1, one message saying `needle`, and nothing
 * left: neither socket nor the shm object.
 */
static void refused(struct tserver *s, const char *sock,
		    const char *const *extra, const char *needle)
{
	const char *args[16] = { "-F", "-S", sock, "-M", s->shm_name };
	char *ctl = g_strdup_printf("%s.ctl", sock);
	unsigned n = 5;

	while (extra && *extra)
		args[n++] = *extra++;
	args[n] = NULL;
	ck_assert_int_eq(tserver_run(s, args, TWAIT_MS), 1);
	tserver_expect_one_message(s, needle);
	ck_assert_msg(!path_exists(sock), "%s left behind", sock);
	ck_assert_msg(!path_exists(ctl), "%s left behind", ctl);
	ck_assert(!shm_exists(s->shm_name));
	g_free(ctl);
	unlink(s->log);
}

static struct tserver *prepared(void)
{
	struct tserver *s = tserver_tracked();

	ck_assert_ptr_nonnull(s);
	tserver_prepare(s);
	return s;
}

/* ---- the socket file ----------------------------------------------------- */

START_TEST(test_default_socket)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s), *want, *log;
	struct tpeer p;
	struct stat st;
	struct cc c;
	JsonObject *o;

	/* Once a peer is greeted the loop runs: both sockets are made. */
	tpeer_join_ok(&p, s->sock, 1, false);
	ck_assert_int_eq(lstat(ctl, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(st.st_uid, geteuid());
	ck_assert_uint_eq(st.st_gid, getegid());

	want = g_strdup_printf("ivshmem-server: control socket %s (mode 0600", ctl);
	log = tserver_log(s);
	ck_assert_msg(strstr(log, want), "no '%s' in:\n%s", want, log);
	/* Quiet by default: connections are logged with -v only. */
	ck_assert(!strstr(log, "control client"));
	g_free(log);
	g_free(want);

	cc_open(&c, ctl);
	o = cc_call(&c, "{\"command\":\"info\"}");
	expect_ok(o, "info");
	ck_assert_str_eq(ostr(o, "control"), ctl);
	json_object_unref(o);
	cc_close(&c);

	tpeer_close(&p);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

START_TEST(test_control_group)
{
	struct tserver *s;
	struct group *gr;
	char name[32], *ctl;
	struct stat st;
	struct tpeer p;
	gid_t gid;

	/* Root may give it any group; another user one of its own. */
	if (geteuid() == 0 && (gr = getgrnam("nogroup"))) {
		g_strlcpy(name, "nogroup", sizeof(name));
		gid = gr->gr_gid;
	} else {
		gid = getegid();
		snprintf(name, sizeof(name), "%u", (unsigned)gid);
	}
	s = START("--control-group", name);
	ctl = ctl_of(s);
	tpeer_join_ok(&p, s->sock, 1, false);
	ck_assert_int_eq(lstat(ctl, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	ck_assert_uint_eq(st.st_gid, gid);
	ck_assert_uint_eq(st.st_uid, geteuid());
	ck_assert(tserver_log_has(s, "(mode 0660"));
	tpeer_close(&p);
	tserver_stop_ok(s);
	g_free(ctl);

	if (geteuid() == 0) {
		/* A number that names no group is a gid all the same. */
		s = START("--control-group", "4242");
		ctl = ctl_of(s);
		tpeer_join_ok(&p, s->sock, 1, false);
		ck_assert_int_eq(lstat(ctl, &st), 0);
		ck_assert_uint_eq(st.st_gid, 4242);
		ck_assert_uint_eq(st.st_mode & 07777, 0660);
		tpeer_close(&p);
		tserver_stop_ok(s);
		g_free(ctl);
	} else {
		/* A group we are not in: refused at start-up, after the
		 * sockets were made, and both are removed. */
		s = prepared();
		refused(s, s->sock,
			(const char *const[]){ "--control-group", "0", NULL },
			"cannot give the control socket");
		tserver_cleanup(s);
	}

	s = prepared();
	refused(s, s->sock,
		(const char *const[]){ "--control-group", "no-such-group-xyz", NULL },
		"unknown group 'no-such-group-xyz' for --control-group");
	refused(s, s->sock,
		(const char *const[]){ "--control-group", "4294967295", NULL },
		"unknown group '4294967295'");
	refused(s, s->sock,
		(const char *const[]){ "--no-control", "--control-group",
				       name, NULL },
		"--control-group needs a control socket");
	tserver_cleanup(s);
	ck_assert(!path_exists(s->dir));
}
END_TEST

START_TEST(test_control_path)
{
	const char *dir = temp_dir();
	char *path = path_in(dir, "my.ctl"), *ctl;
	struct tserver *s = START("--control", path);
	struct tpeer p;
	struct stat st;
	struct cc c;
	JsonObject *o;

	tpeer_join_ok(&p, s->sock, 1, false);
	ctl = ctl_of(s);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert(!path_exists(ctl));
	cc_open(&c, path);
	o = cc_call(&c, "{\"command\":\"info\"}");
	expect_ok(o, "info");
	ck_assert_str_eq(ostr(o, "control"), path);
	ck_assert_str_eq(ostr(o, "socket"), s->sock);
	json_object_unref(o);
	cc_close(&c);
	tpeer_close(&p);
	tserver_stop_ok(s);
	ck_assert_msg(!path_exists(path), "%s left behind", path);
	ck_assert_int_eq(rmdir(dir), 0);
	g_free(path);
	g_free(ctl);
}
END_TEST

START_TEST(test_no_control)
{
	const char *dir = temp_dir();
	char *path = path_in(dir, "x.ctl"), *ctl, *log;
	struct tserver *s = START("--no-control");
	struct tpeer p, q;

	ctl = ctl_of(s);
	tpeer_join_ok(&p, s->sock, 1, false);
	tpeer_join_ok(&q, s->sock, 1, false);
	tpeer_wait_peers_ok(&p, 1);
	ck_assert(!path_exists(ctl));
	log = tserver_log(s);
	ck_assert_msg(strstr(log, "attach QEMU with"), "no banner:\n%s", log);
	ck_assert_msg(!strstr(log, "control"), "control in:\n%s", log);
	g_free(log);
	tpeer_close(&p);
	tpeer_close(&q);
	tserver_stop_ok(s);
	g_free(ctl);

	/* The last of --control and --no-control wins. */
	s = START("--control", path, "--no-control");
	tpeer_join_ok(&p, s->sock, 1, false);
	ck_assert(!path_exists(path));
	ctl = ctl_of(s);
	ck_assert(!path_exists(ctl));
	tpeer_close(&p);
	tserver_stop_ok(s);
	g_free(ctl);

	s = START("--no-control", "--control", path);
	tpeer_join_ok(&p, s->sock, 1, false);
	ck_assert(path_exists(path));
	tpeer_close(&p);
	tserver_stop_ok(s);
	ck_assert(!path_exists(path));
	ck_assert_int_eq(rmdir(dir), 0);
	g_free(path);
}
END_TEST

START_TEST(test_stale_control_socket)
{
	struct tserver *old = START(NULL), *s;
	char *ctl = ctl_of(old);
	struct tpeer p;
	struct stat st;
	struct cc c;
	JsonObject *o;

	tpeer_join_ok(&p, old->sock, 1, false);
	tpeer_close(&p);
	tserver_kill(old);
	ck_assert_int_eq(lstat(ctl, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));

	s = START("-S", old->sock, "-M", old->shm_name);
	tpeer_join_ok(&p, old->sock, 1, false);
	cc_open(&c, ctl);
	o = cc_call(&c, "{\"command\":\"info\"}");
	expect_ok(o, "info");
	ck_assert_int_eq(oint(o, "pid"), s->pid);
	json_object_unref(o);
	cc_close(&c);
	tpeer_close(&p);

	tserver_stop_ok(s);
	ck_assert(!path_exists(old->sock));
	ck_assert(!path_exists(ctl));
	tserver_cleanup(old);
	ck_assert(!path_exists(old->dir));
	g_free(ctl);
}
END_TEST

START_TEST(test_control_socket_in_use)
{
	struct tserver *s = START(NULL), *s2, *s3;
	char *ctl = ctl_of(s), *needle, *file, *longsock;
	struct tpeer p, q;
	struct tmsg m;
	struct cc c;
	JsonObject *o;

	tpeer_join_ok(&p, s->sock, 1, false);

	/* Another server on the same control socket: exit 1, its own peer
	 * socket removed again, no shm object made. */
	s2 = prepared();
	needle = g_strdup_printf("another server is already listening on %s: ",
				 ctl);
	refused(s2, s2->sock, (const char *const[]){ "--control", ctl, NULL },
		needle);
	g_free(needle);

	/* The first one is untouched: its peers saw nobody come or go and
	 * its control socket answers. */
	ck_assert_int_eq(tpeer_recv(&p, TQUIET_MS, &m, NULL), -ETIMEDOUT);
	cc_open(&c, ctl);
	o = cc_call(&c, "{\"command\":\"info\"}");
	expect_ok(o, "info");
	ck_assert_int_eq(oint(o, "pid"), s->pid);
	ck_assert_int_eq(oint(o, "peers"), 1);
	json_object_unref(o);
	cc_close(&c);

	/* Not a socket: left alone. */
	file = g_strdup_printf("%s/file", s2->dir);
	ck_assert(g_file_set_contents(file, "keep", -1, NULL));
	refused(s2, s2->sock, (const char *const[]){ "--control", file, NULL },
		"exists and is not a socket");
	ck_assert(path_exists(file));
	unlink(file);
	g_free(file);

	/* Not the peer socket itself. */
	refused(s2, s2->sock,
		(const char *const[]){ "--control", s2->sock, NULL },
		"cannot be the peer socket");
	refused(s2, s2->sock, (const char *const[]){ "--control", "", NULL },
		"is empty");

	/* A socket path that fits sun_path (107 bytes) but not with ".ctl". */
	longsock = g_strdup_printf("%s/%0*d", s2->dir,
				   (int)(105 - strlen(s2->dir) - 1), 0);
	ck_assert_uint_eq(strlen(longsock), 105);
	refused(s2, longsock, NULL, "too long");
	/* It does without a control socket. */
	s3 = START("-S", longsock, "--no-control");
	tpeer_join_ok(&q, longsock, 1, false);
	tpeer_close(&q);
	tserver_stop_ok(s3);
	ck_assert(!path_exists(longsock));
	g_free(longsock);
	tserver_cleanup(s2);
	ck_assert(!path_exists(s2->dir));

	tpeer_close(&p);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

/* ---- commands ------------------------------------------------------------ */

START_TEST(test_info)
{
	struct tserver *s = START("-l", "1M", "-n", "3", "--max-peers", "10",
				  "--queue-limit", "100");
	char *ctl = ctl_of(s);
	struct tpeer p;
	struct cc c;
	JsonObject *o, *shm;
	double up;

	cc_open(&c, ctl);
	o = cc_call(&c, "{\"command\":\"info\"}");
	expect_ok(o, "info");
	ck_assert_str_eq(ostr(o, "server"), "ivshmem-server");
	ck_assert_str_eq(ostr(o, "version"), IVSHMEM_VERSION);
	ck_assert_int_eq(oint(o, "protocol"), 1);
	ck_assert_int_eq(oint(o, "pid"), s->pid);
	ck_assert_str_eq(ostr(o, "socket"), s->sock);
	ck_assert_str_eq(ostr(o, "control"), ctl);
	shm = oobj(o, "shm");
	ck_assert_str_eq(ostr(shm, "kind"), "posix");
	ck_assert_str_eq(ostr(shm, "name"), s->shm_name);
	ck_assert_int_eq(oint(shm, "size"), 1 << 20);
	ck_assert_int_eq(oint(o, "vectors"), 3);
	ck_assert_int_eq(oint(o, "peers"), 0);
	ck_assert_int_eq(oint(o, "max_peers"), 10);
	ck_assert_int_eq(oint(o, "queue_limit"), 100);
	expect_time(ostr(o, "started_at"));
	up = onum(o, "uptime");
	ck_assert(up >= 0 && up < 60);
	ck_assert(!json_object_has_member(o, "tag"));
	json_object_unref(o);

	tpeer_join_ok(&p, s->sock, 3, false);
	usleep(20000);
	o = cc_call(&c, "{\"command\":\"info\"}");
	ck_assert_int_eq(oint(o, "peers"), 1);
	ck_assert(onum(o, "uptime") >= up + 0.02);
	json_object_unref(o);
	tpeer_close(&p);
	cc_close(&c);
	tserver_stop_ok(s);
	g_free(ctl);

	/* memfd: no name; the defaults for the limits. */
	s = START("--memfd", "--exact-size", "-l", "12345");
	ctl = ctl_of(s);
	cc_open(&c, ctl);
	o = cc_call(&c, "{\"command\":\"info\"}");
	shm = oobj(o, "shm");
	ck_assert_str_eq(ostr(shm, "kind"), "memfd");
	ck_assert(onull(shm, "name"));
	ck_assert_int_eq(oint(shm, "size"), 12345);
	ck_assert_int_eq(oint(o, "vectors"), 1);
	ck_assert_int_eq(oint(o, "max_peers"), 65536);
	ck_assert_int_eq(oint(o, "queue_limit"), 65536);
	json_object_unref(o);
	cc_close(&c);
	tserver_stop_ok(s);
	g_free(ctl);

	/* a directory */
	const char *dir = temp_dir();

	s = START("-m", dir);
	ctl = ctl_of(s);
	cc_open(&c, ctl);
	o = cc_call(&c, "{\"command\":\"shm\"}");
	expect_ok(o, "shm");
	ck_assert_str_eq(ostr(o, "kind"), "dir");
	ck_assert_str_eq(ostr(o, "name"), dir);
	ck_assert_int_eq(oint(o, "size"), 4 << 20);
	json_object_unref(o);
	cc_close(&c);
	tserver_stop_ok(s);
	ck_assert_int_eq(rmdir(dir), 0);
	g_free(ctl);
}
END_TEST

START_TEST(test_peers)
{
	struct tserver *s = START("-n", "2");
	char *ctl = ctl_of(s);
	struct tpeer p[3];
	struct cc c;
	JsonObject *o;
	JsonArray *a;

	cc_open(&c, ctl);
	o = cc_call(&c, "{\"command\":\"peers\"}");
	expect_ok(o, "peers");
	ck_assert_int_eq(oint(o, "vectors"), 2);
	ck_assert_uint_eq(json_array_get_length(oarr(o, "peers")), 0);
	json_object_unref(o);

	for (int i = 0; i < 3; i++)
		tpeer_join_ok(&p[i], s->sock, 2, false);
	for (int i = 0; i < 3; i++)
		tpeer_wait_peers_ok(&p[i], 2);
	/* IDs are next-fit: with 1 gone, a new one gets 3, and the list
	 * is still sorted. */
	tpeer_close(&p[1]);
	tpeer_expect_leave(&p[0], 1);
	tpeer_join_ok(&p[1], s->sock, 2, false);
	ck_assert_int_eq(p[1].id, 3);
	for (int i = 0; i < 3; i++)
		tpeer_wait_peers_ok(&p[i], 2);

	o = cc_call(&c, "{\"command\":\"peers\"}");
	expect_ok(o, "peers");
	a = oarr(o, "peers");
	ck_assert_uint_eq(json_array_get_length(a), 3);
	int want[] = { 0, 2, 3 };

	for (unsigned i = 0; i < 3; i++) {
		JsonObject *po = json_array_get_object_element(a, i);

		expect_peer_obj(po, want[i], 2);
		/* Every peer has read all it was sent. */
		ck_assert_int_eq(oint(po, "queued"), 0);
	}
	json_object_unref(o);

	for (int i = 0; i < 3; i++)
		tpeer_close(&p[i]);
	cc_close(&c);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

/* "vectors" of a ring reply, as a bit mask. */
static uint64_t rung(JsonObject *o)
{
	JsonArray *a = oarr(o, "vectors");
	uint64_t mask = 0;

	for (unsigned i = 0; i < json_array_get_length(a); i++) {
		gint64 v = json_array_get_int_element(a, i);

		ck_assert(v >= 0 && v < 64);
		ck_assert_msg(i == 0 ||
			      v > json_array_get_int_element(a, i - 1),
			      "vectors not in order");
		mask |= 1ull << v;
	}
	return mask;
}

START_TEST(test_ring)
{
	struct tserver *s = START("-n", "4");
	char *ctl = ctl_of(s), *req;
	struct tpeer a, b;
	struct cc c;
	JsonObject *o;

	tpeer_join_ok(&a, s->sock, 4, false);
	tpeer_join_ok(&b, s->sock, 4, false);
	tpeer_wait_peers_ok(&a, 1);
	cc_open(&c, ctl);

	req = g_strdup_printf("{\"command\":\"ring\",\"peer\":%d,\"vector\":2}",
			      a.id);
	o = cc_call(&c, req);
	expect_ok(o, "ring");
	ck_assert_int_eq(oint(o, "peer"), a.id);
	ck_assert_uint_eq(rung(o), 1u << 2);
	json_object_unref(o);
	g_free(req);
	for (unsigned v = 0; v < 4; v++) {
		expect_doorbell(&a, v, v == 2);
		expect_doorbell(&b, v, 0);
	}

	req = g_strdup_printf("{\"command\":\"ring\",\"peer\":%d,\"vector\":\"all\"}",
			      b.id);
	o = cc_call(&c, req);
	expect_ok(o, "ring");
	ck_assert_int_eq(oint(o, "peer"), b.id);
	ck_assert_uint_eq(rung(o), 0xf);
	json_object_unref(o);
	g_free(req);
	for (unsigned v = 0; v < 4; v++) {
		expect_doorbell(&a, v, 0);
		expect_doorbell(&b, v, 1);
	}

	/* No vector: all of them. Twice: the counts add up. */
	req = g_strdup_printf("{\"command\":\"ring\",\"peer\":%d}", a.id);
	for (int i = 0; i < 2; i++) {
		o = cc_call(&c, req);
		expect_ok(o, "ring");
		ck_assert_uint_eq(rung(o), 0xf);
		json_object_unref(o);
	}
	g_free(req);
	for (unsigned v = 0; v < 4; v++) {
		expect_doorbell(&a, v, 2);
		expect_doorbell(&b, v, 0);
	}

	/* Nobody joined or left. */
	tpeer_expect_quiet(&a, 0);
	tpeer_expect_quiet(&b, 0);
	tpeer_close(&a);
	tpeer_close(&b);
	cc_close(&c);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

START_TEST(test_ring_kick_errors)
{
	struct tserver *s = START("-n", "4");
	char *ctl = ctl_of(s), *req;
	struct tpeer a;
	struct cc c;
	JsonObject *o;
	const char *bad_peer[] = {
		"\"peer\":\"0\"", "\"peer\":0.0", "\"peer\":3.0", "\"peer\":1e3",
		"\"peer\":-1", "\"peer\":70000", "\"peer\":65536",
		"\"peer\":99999999999999999999", "\"peer\":null",
		"\"peer\":true", "\"peer\":[0]", "\"peer\":{}", "\"tag\":0",
	};
	const char *bad_vector[] = {
		"-1", "1.0", "\"1\"", "null", "\"ALL\"", "[1]", "false",
		"-9223372036854775808",
	};

	tpeer_join_ok(&a, s->sock, 4, false);
	ck_assert_int_eq(a.id, 0);
	cc_open(&c, ctl);

	for (unsigned i = 0; i < G_N_ELEMENTS(bad_peer); i++) {
		req = g_strdup_printf("{\"command\":\"ring\",%s,\"vector\":0}",
				      bad_peer[i]);
		call_error(&c, req, "ring", "invalid");
		g_free(req);
		req = g_strdup_printf("{\"command\":\"kick\",%s}", bad_peer[i]);
		call_error(&c, req, "kick", "invalid");
		g_free(req);
	}
	for (unsigned i = 0; i < G_N_ELEMENTS(bad_vector); i++) {
		req = g_strdup_printf("{\"command\":\"ring\",\"peer\":0,\"vector\":%s}",
				      bad_vector[i]);
		call_error(&c, req, "ring", "invalid");
		g_free(req);
	}

	o = cc_call(&c, "{\"command\":\"ring\",\"peer\":9,\"vector\":0}");
	expect_error(o, "ring", "no-such-peer");
	ck_assert(strstr(ostr(o, "message"), "9"));
	json_object_unref(o);
	call_error(&c, "{\"command\":\"ring\",\"peer\":65535}", "ring",
		   "no-such-peer");
	call_error(&c, "{\"command\":\"kick\",\"peer\":9}", "kick",
		   "no-such-peer");
	call_error(&c, "{\"command\":\"kick\",\"peer\":65535}", "kick",
		   "no-such-peer");
	/* The peer is checked before the vector. */
	call_error(&c, "{\"command\":\"ring\",\"peer\":9,\"vector\":99}",
		   "ring", "no-such-peer");

	o = cc_call(&c, "{\"command\":\"ring\",\"peer\":0,\"vector\":4}");
	expect_error(o, "ring", "no-such-vector");
	ck_assert_msg(strstr(ostr(o, "message"), "4 vectors"), "%s",
		      ostr(o, "message"));
	json_object_unref(o);
	call_error(&c, "{\"command\":\"ring\",\"peer\":0,\"vector\":70000}",
		   "ring", "no-such-vector");
	call_error(&c, "{\"command\":\"ring\",\"peer\":0,\"vector\":9223372036854775807}",
		   "ring", "no-such-vector");

	/* None of it rang or dropped anybody; the connection still works. */
	for (unsigned v = 0; v < 4; v++)
		expect_doorbell(&a, v, 0);
	tpeer_expect_quiet(&a, 0);
	o = cc_call(&c, "{\"command\":\"ring\",\"peer\":0,\"vector\":3}");
	expect_ok(o, "ring");
	json_object_unref(o);
	expect_doorbell(&a, 3, 1);
	tpeer_close(&a);
	cc_close(&c);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

/* The next line is a leave event of `id` for `reason`. */
static void expect_leave_event(struct cc *w, int id, const char *reason,
			       unsigned peers)
{
	JsonObject *o = cc_next(w, TWAIT_MS), *p;

	ck_assert_str_eq(ostr(o, "event"), "leave");
	expect_time(ostr(o, "time"));
	p = oobj(o, "peer");
	ck_assert_int_eq(oint(p, "id"), id);
	ck_assert_int_eq(oint(p, "pid"), getpid());
	ck_assert_int_eq(oint(p, "uid"), getuid());
	ck_assert_int_eq(oint(p, "gid"), getgid());
	ck_assert_str_eq(ostr(o, "reason"), reason);
	ck_assert_int_eq(oint(o, "peers"), peers);
	ck_assert(!json_object_has_member(o, "ok"));
	json_object_unref(o);
}

static void expect_join_event(struct cc *w, int id, unsigned vectors,
			      unsigned peers)
{
	JsonObject *o = cc_next(w, TWAIT_MS);

	ck_assert_str_eq(ostr(o, "event"), "join");
	expect_time(ostr(o, "time"));
	expect_peer_obj(oobj(o, "peer"), id, vectors);
	ck_assert_int_eq(oint(o, "peers"), peers);
	json_object_unref(o);
}

START_TEST(test_kick)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s), *req, *line;
	struct tpeer a, b, c;
	struct tmsg m;
	struct cc w, k;
	JsonObject *o;

	tpeer_join_ok(&a, s->sock, 1, false);
	tpeer_join_ok(&b, s->sock, 1, false);
	tpeer_join_ok(&c, s->sock, 1, false);
	tpeer_wait_peers_ok(&a, 2);
	tpeer_wait_peers_ok(&b, 2);
	tpeer_wait_peers_ok(&c, 2);
	cc_open(&w, ctl);
	o = cc_call(&w, "{\"command\":\"watch\"}");
	expect_ok(o, "watch");
	ck_assert_uint_eq(json_array_get_length(oarr(o, "peers")), 3);
	json_object_unref(o);

	cc_open(&k, ctl);
	req = g_strdup_printf("{\"command\":\"kick\",\"peer\":%d}", b.id);
	o = cc_call(&k, req);
	expect_ok(o, "kick");
	ck_assert_int_eq(oint(o, "peer"), b.id);
	json_object_unref(o);

	/* b sees its connection end; the others are told it left. */
	ck_assert_int_eq(tpeer_recv(&b, TWAIT_MS, &m, NULL), 0);
	tpeer_expect_leave(&a, b.id);
	tpeer_expect_leave(&c, b.id);
	expect_leave_event(&w, b.id, "kicked", 2);
	line = g_strdup_printf("control client pid %ld (uid %ld) disconnects peer %d (pid %ld)",
			       (long)getpid(), (long)getuid(), b.id,
			       (long)getpid());
	/* Shown without -v. */
	ck_assert_msg(tserver_log_wait(s, line, TWAIT_MS), "no '%s'", line);
	g_free(line);

	/* Gone: a second kick finds nobody. */
	o = cc_call(&k, req);
	expect_error(o, "kick", "no-such-peer");
	json_object_unref(o);
	g_free(req);

	/* A watcher that kicks: the leave happened before the reply. */
	req = g_strdup_printf("{\"command\":\"kick\",\"peer\":%d,\"tag\":\"k\"}",
			      c.id);
	cc_send(&w, req);
	g_free(req);
	expect_leave_event(&w, c.id, "kicked", 1);
	o = cc_next(&w, TWAIT_MS);
	expect_ok(o, "kick");
	ck_assert_str_eq(ostr(o, "tag"), "k");
	json_object_unref(o);
	ck_assert_int_eq(tpeer_recv(&c, TWAIT_MS, &m, NULL), 0);
	tpeer_expect_leave(&a, c.id);
	tpeer_expect_quiet(&a, TQUIET_MS);
	cc_quiet(&w, 0);
	ck_assert(tserver_alive(s));

	tpeer_close(&a);
	tpeer_close(&b);
	tpeer_close(&c);
	cc_close(&w);
	cc_close(&k);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

START_TEST(test_watch)
{
	struct tserver *s = START("--max-peers", "3");
	char *ctl = ctl_of(s);
	struct tpeer a, b, c, d, e;
	struct tmsg m;
	struct cc w, w2;
	JsonObject *o, *ev;
	JsonArray *arr;

	tpeer_join_ok(&a, s->sock, 1, false);
	cc_open(&w, ctl);
	o = cc_call(&w, "{\"command\":\"watch\",\"tag\":1}");
	expect_ok(o, "watch");
	ck_assert_int_eq(oint(o, "tag"), 1);
	arr = oarr(o, "peers");
	ck_assert_uint_eq(json_array_get_length(arr), 1);
	expect_peer_obj(json_array_get_object_element(arr, 0), a.id, 1);
	json_object_unref(o);

	tpeer_join_ok(&b, s->sock, 1, false);
	expect_join_event(&w, b.id, 1, 2);

	/* Requests are still answered while watching. */
	o = cc_call(&w, "{\"command\":\"peers\"}");
	expect_ok(o, "peers");
	ck_assert_uint_eq(json_array_get_length(oarr(o, "peers")), 2);
	json_object_unref(o);

	tpeer_join_ok(&c, s->sock, 1, false);
	expect_join_event(&w, c.id, 1, 3);

	/* Full: the fourth is refused. */
	ck_assert_int_eq(tpeer_connect(&d, s->sock, 1, false), 0);
	ck_assert_int_eq(tpeer_recv(&d, TWAIT_MS, &m, NULL), 0);
	tpeer_close(&d);
	ev = cc_next(&w, TWAIT_MS);
	ck_assert_str_eq(ostr(ev, "event"), "refused");
	expect_time(ostr(ev, "time"));
	ck_assert_str_eq(ostr(ev, "reason"), "full");
	ck_assert_int_eq(oint(ev, "pid"), getpid());
	ck_assert_int_eq(oint(ev, "uid"), getuid());
	ck_assert_int_eq(oint(ev, "gid"), getgid());
	ck_assert(strlen(ostr(ev, "message")) > 10);
	ck_assert_int_eq(oint(ev, "peers"), 3);
	json_object_unref(ev);

	int bid = b.id;

	tpeer_close(&b);
	expect_leave_event(&w, bid, "closed", 2);

	/* A second watch answers again and does not double the events. */
	o = cc_call(&w, "{\"command\":\"watch\"}");
	expect_ok(o, "watch");
	arr = oarr(o, "peers");
	ck_assert_uint_eq(json_array_get_length(arr), 2);
	expect_peer_obj(json_array_get_object_element(arr, 0), a.id, 1);
	expect_peer_obj(json_array_get_object_element(arr, 1), c.id, 1);
	json_object_unref(o);

	cc_open(&w2, ctl);
	o = cc_call(&w2, "{\"command\":\"watch\"}");
	json_object_unref(o);
	tpeer_join_ok(&e, s->sock, 1, false);
	expect_join_event(&w, e.id, 1, 3);
	expect_join_event(&w2, e.id, 1, 3);
	cc_quiet(&w, TQUIET_MS);
	cc_quiet(&w2, 0);

	/* Peers stayed whole. */
	tpeer_wait_peers_ok(&a, 2);
	tpeer_close(&a);
	tpeer_close(&c);
	tpeer_close(&e);
	cc_close(&w);
	cc_close(&w2);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

/* The fd that came with the bytes of the last line taken: exactly one. */
static int fd_of_line(struct cc *c)
{
	int fd = -1;

	for (unsigned i = 0; i < c->nfds; i++) {
		if (c->fds[i].fd >= 0 && c->fds[i].from <= c->line_off &&
		    c->line_off < c->fds[i].to) {
			ck_assert_msg(fd < 0, "two fds with one line");
			fd = c->fds[i].fd;
			c->fds[i].fd = -1;
		}
	}
	ck_assert_msg(fd >= 0, "no fd came with the reply's bytes");
	return fd;
}

static void shm_round(const char *const *args, const char *kind,
		      uint64_t size)
{
	struct tserver *s = tserver_start_ok(args);
	char *ctl = ctl_of(s), *line;
	struct stat st, pst;
	struct tpeer p;
	struct cc c;
	JsonObject *o;
	uint8_t *pm, *cm;
	int fd;

	tpeer_join_ok(&p, s->sock, 1, false);
	ck_assert_uint_eq(p.shm_size, size);
	pm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, p.shm_fd, 0);
	ck_assert(pm != MAP_FAILED);

	/* Between two other replies, in one write. */
	cc_open(&c, ctl);
	cc_send(&c, "{\"command\":\"info\"}\n{\"command\":\"shm\",\"tag\":7}\n"
		"{\"command\":\"info\"}");
	line = cc_line(&c, TWAIT_MS);
	ck_assert_ptr_nonnull(line);
	g_free(line);
	o = cc_next(&c, TWAIT_MS);
	expect_ok(o, "shm");
	ck_assert_str_eq(ostr(o, "kind"), kind);
	if (!strcmp(kind, "posix"))
		ck_assert_str_eq(ostr(o, "name"), s->shm_name);
	else
		ck_assert(onull(o, "name"));
	ck_assert_int_eq(oint(o, "size"), size);
	ck_assert_int_eq(oint(o, "tag"), 7);
	json_object_unref(o);
	fd = fd_of_line(&c);
	line = cc_line(&c, TWAIT_MS);
	ck_assert_ptr_nonnull(line);
	g_free(line);
	ck_assert_uint_eq(c.nfds, 1);

	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_size, size);
	ck_assert_int_eq(fstat(p.shm_fd, &pst), 0);
	ck_assert(st.st_dev == pst.st_dev && st.st_ino == pst.st_ino);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);

	cm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(cm != MAP_FAILED);
	for (uint64_t i = 0; i < size; i += 4093)
		pm[i] = (uint8_t)(i * 7 + 1);
	for (uint64_t i = 0; i < size; i += 4093)
		ck_assert_uint_eq(cm[i], (uint8_t)(i * 7 + 1));
	cm[size - 1] = 0xa5;
	cm[0] = 0x5a;
	ck_assert_uint_eq(pm[size - 1], 0xa5);
	ck_assert_uint_eq(pm[0], 0x5a);
	munmap(cm, size);
	munmap(pm, size);
	close(fd);

	/*
	 * Three at once: an fd in flight counts against the server's user
	 * until it is received, so the next two are refused while the first
	 * is unread, and no fd comes with them. Once it is read, another
	 * one may go.
	 */
	cc_send(&c, "{\"command\":\"shm\"}\n{\"command\":\"shm\",\"tag\":2}\n{\"command\":\"shm\",\"tag\":3}");
	o = cc_next(&c, TWAIT_MS);
	expect_ok(o, "shm");
	json_object_unref(o);
	fd = fd_of_line(&c);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert(st.st_dev == pst.st_dev && st.st_ino == pst.st_ino);
	close(fd);
	for (int i = 2; i <= 3; i++) {
		o = cc_next(&c, TWAIT_MS);
		expect_error(o, "shm", "failed");
		ck_assert(strstr(ostr(o, "message"), "not been received yet"));
		ck_assert_int_eq(oint(o, "tag"), i);
		json_object_unref(o);
	}
	ck_assert_uint_eq(c.nfds, 2);
	o = cc_call(&c, "{\"command\":\"shm\"}");
	expect_ok(o, "shm");
	json_object_unref(o);
	close(fd_of_line(&c));
	ck_assert_uint_eq(c.nfds, 3);

	cc_close(&c);
	tpeer_close(&p);
	tserver_stop_ok(s);
	g_free(ctl);
}

START_TEST(test_shm)
{
	shm_round((const char *const[]){ "-l", "1M", NULL }, "posix", 1 << 20);
	shm_round((const char *const[]){ "--memfd", "-l", "64K", NULL },
		  "memfd", 64 << 10);
}
END_TEST

START_TEST(test_tag)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s);
	struct cc c;
	const char *tags[] = {
		"\"abc\"", "42", "-1.5", "null", "true", "false", "\"\"",
		"[1,\"x\",{\"y\":[]}]", "{\"a\":{\"b\":null},\"c\":[true]}",
		"\"\\u00e9\\n\\\"\"", "1e300",
		"\"\\u0001\\u001e\\u001f\\u007f\"",
	};
	/* each request: what comes before the tag and after it */
	const char *reqs[][2] = {
		{ "{\"command\":\"info\",\"tag\":", "}" },
		{ "{\"tag\":", ",\"command\":\"peers\"}" },
		{ "{\"command\":\"ring\",\"peer\":9,\"tag\":", "}" },
		{ "{\"command\":\"kick\",\"peer\":\"x\",\"tag\":", "}" },
		{ "{\"command\":\"bogus\",\"tag\":", "}" },
		{ "{\"tag\":", "}" },
	};

	cc_open(&c, ctl);
	for (unsigned t = 0; t < G_N_ELEMENTS(tags); t++) {
		JsonNode *want = parse(tags[t]);

		for (unsigned r = 0; r < G_N_ELEMENTS(reqs); r++) {
			char *req = g_strconcat(reqs[r][0], tags[t],
						reqs[r][1], NULL);
			JsonObject *o = cc_call(&c, req);
			JsonNode *got = member(o, "tag");
			char *gt = node_text(got), *wt = node_text(want);

			ck_assert_msg(json_node_equal(got, want),
				      "%s: tag %s came back as %s", req, wt, gt);
			g_free(gt);
			g_free(wt);
			g_free(req);
			json_object_unref(o);
		}
		json_node_unref(want);
	}

	/* No tag, no tag; unknown members are ignored. */
	JsonObject *o = cc_call(&c, "{\"command\":\"peers\",\"future\":{\"x\":[1]},\"zz\":null}");

	expect_ok(o, "peers");
	ck_assert(!json_object_has_member(o, "tag"));
	json_object_unref(o);
	o = cc_call(&c, "{\"command\":\"nope\"}");
	expect_error(o, NULL, "unknown-command");
	ck_assert(!json_object_has_member(o, "tag"));
	json_object_unref(o);
	cc_close(&c);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

/* Tags json-glib would not give back as sent (numbers out of its range
 * or that it prints otherwise, escapes it decodes otherwise): each comes
 * back byte for byte, in a reply that is valid JSON and valid UTF-8.
 * Escapes json-glib cannot take (U+0000, unpaired surrogates) and a tag
 * whose name is written with escapes are refused, saying why. */
START_TEST(test_tag_exact)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s);
	struct cc c;
	const char *tags[] = {
		"1e21", "1e400", "-1e-400", "9223372036854775808",
		"18446744073709551616", "-9223372036854775809",
		"123456789012345678901234567890", "1.0", "0.1", "1E+2",
		"\"\\ud83d\\ude00\"", "\"\\uDBFF\\uDFFF\"", "\"a\\u0001b\"",
		"\"\\u00E9\"", "[ 1 , {\"t\" : 2e999 } ]", "\"\\/\"",
	};

	cc_open(&c, ctl);
	for (unsigned t = 0; t < G_N_ELEMENTS(tags); t++) {
		for (unsigned r = 0; r < 2; r++) {
			char *req = r ?
				g_strdup_printf("{\"tag\": %s ,\"command\":\"info\"}", tags[t]) :
				g_strdup_printf("{\"command\":\"nope\",\"tag\":%s}", tags[t]);
			char *want = g_strdup_printf(",\"tag\":%s}", tags[t]);
			char *line;
			JsonParser *p = json_parser_new();

			cc_send(&c, req);
			line = cc_line(&c, TWAIT_MS);
			ck_assert_ptr_nonnull(line);
			ck_assert_msg(g_utf8_validate(line, -1, NULL), "%s: not UTF-8", req);
			ck_assert_msg(json_parser_load_from_data(p, line, -1, NULL),
				      "%s: reply not JSON: %s", req, line);
			ck_assert_msg(g_str_has_suffix(line, want),
				      "%s: the reply does not end in %s: %s", req, want, line);
			g_object_unref(p);
			g_free(line);
			g_free(want);
			g_free(req);
		}
	}
	/* Escapes json-glib leaks a buffer for, mangles or cuts a string
	 * at: refused, in a tag or anywhere else, naming the escape. Before
	 * they were, "\\ud83d" leaked 152 bytes per line in the server,
	 * "info\\u0000x" ran info and "\\ud83dx" came back as U+FFFD. */
	static const struct {
		const char *line, *why;
	} refused[] = {
		{ "{\"command\":\"info\",\"tag\":\"\\udc00\"}", "unpaired surrogate" },
		{ "{\"command\":\"info\",\"tag\":\"\\ud83d\"}", "unpaired surrogate" },
		{ "{\"command\":\"info\",\"tag\":\"\\ud83dx\"}", "unpaired surrogate" },
		{ "{\"command\":\"info\",\"tag\":\"\\ud83d\\u0041\"}", "unpaired surrogate" },
		{ "{\"command\":\"info\",\"tag\":\"\\ud83d\\ud83d\"}", "unpaired surrogate" },
		{ "{\"command\":\"info\",\"tag\":\"x\\uDC00y\"}", "unpaired surrogate" },
		{ "{\"command\":\"info\",\"tag\":\"\\ud83d\\u12\"}", "malformed" },
		{ "{\"command\":\"info\",\"tag\":\"a\\u0000b\"}", "\\u0000" },
		{ "{\"command\":\"info\\u0000x\"}", "\\u0000" },
		{ "{\"command\":\"\\ud83dx\"}", "unpaired surrogate" },
		{ "{\"command\":\"info\",\"x\":[\"\\ud800\"]}", "unpaired surrogate" },
		{ "{\"command\":\"info\",\"\\udfff\":1}", "unpaired surrogate" },
	};

	for (unsigned i = 0; i < G_N_ELEMENTS(refused); i++) {
		JsonObject *r = cc_call(&c, refused[i].line);

		expect_error(r, NULL, "parse");
		ck_assert(!json_object_has_member(r, "tag"));
		ck_assert_msg(strstr(ostr(r, "message"), refused[i].why),
			      "%s: %s", refused[i].line, ostr(r, "message"));
		json_object_unref(r);
	}
	/* The name spelled with an escape: refused, without a tag. */
	JsonObject *o = cc_call(&c, "{\"command\":\"info\",\"t\\u0061g\":1}");

	expect_error(o, NULL, "invalid");
	ck_assert(!json_object_has_member(o, "tag"));
	ck_assert_msg(strstr(ostr(o, "message"), "without escapes"), "%s", ostr(o, "message"));
	json_object_unref(o);
	/* And the connection still answers. */
	o = cc_call(&c, "{\"command\":\"info\",\"tag\":1}");
	expect_ok(o, "info");
	json_object_unref(o);
	cc_close(&c);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

/* ---- hostile clients ----------------------------------------------------- */

START_TEST(test_garbage)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s), *big, *line;
	const char *pad = "{\"command\":\"info\",\"tag\":1,\"pad\":\"";
	struct tpeer a, b;
	struct cc c;
	JsonObject *o;
	int n = 0;
	static const char nul_line[] = "{\"command\":\"in\0fo\"}\n";
	struct {
		const char *line;
		const char *command, *code;
	} bad[] = {
		{ "this is not json", NULL, "parse" },
		{ "{\"command\":\"info\"", NULL, "parse" },
		{ "{\"command\":\"info\xff\"}", NULL, "parse" },
		{ "\xc3\x28", NULL, "parse" },
		{ "{\"command\":\"info\"} {\"command\":\"info\"}", NULL, "parse" },
		{ "{\"command\":\"info\"}}", NULL, "parse" },
		/* What json-glib 1.6 would take (and partly leak). */
		{ "{\"command\":\"info\"}{\"command\":\"info\"}", NULL, "parse" },
		{ "5 {}", NULL, "parse" },
		{ "{'command':'info'}", NULL, "parse" },
		{ "{\"command\":\"info\"} /* c */", NULL, "parse" },
		{ "{\"command\":\"info\"} // c", NULL, "parse" },
		{ "{command:\"info\"}", NULL, "parse" },
		{ "{\"command\" \"info\"}", NULL, "parse" },
		{ "{\"command\":\"info\",}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":[1,]}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":01}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":1.}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":.5}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":-}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":1e}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":NaN}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":tru}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":\"\\x41\"}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":\"\\u12\"}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":\"a\tb\"}", NULL, "parse" },
		{ "{\"command\":\"info\",\"tag\":\"open}", NULL, "parse" },
		{ "[1,2,3]", NULL, "invalid" },
		{ "[{\"command\":\"info\"}]", NULL, "invalid" },
		{ "42", NULL, "invalid" },
		{ "\"info\"", NULL, "invalid" },
		{ "null", NULL, "invalid" },
		{ "{}", NULL, "invalid" },
		{ "{\"command\":5}", NULL, "invalid" },
		{ "{\"command\":null}", NULL, "invalid" },
		{ "{\"command\":[\"info\"]}", NULL, "invalid" },
		{ "{\"command\":\"frobnicate\"}", NULL, "unknown-command" },
		{ "{\"command\":\"INFO\"}", NULL, "unknown-command" },
	};

	tpeer_join_ok(&a, s->sock, 1, false);
	cc_open(&c, ctl);
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		call_error(&c, bad[i].line, bad[i].command, bad[i].code);
		expect_info(&c, n++);
	}
	o = cc_call(&c, "{\"command\":\"frobnicate\"}");
	ck_assert(strstr(ostr(o, "message"), "info, peers, ring, kick, watch and shm"));
	json_object_unref(o);

	/* Deep nesting, in a request and in a tag that comes back. */
	char *open_ = g_strnfill(2040, '['), *close_ = g_strnfill(2040, ']');

	big = g_strconcat(open_, close_, NULL);
	call_error(&c, big, NULL, "invalid");
	g_free(big);
	big = g_strnfill(4000, '{');
	call_error(&c, big, NULL, "parse");
	g_free(big);
	big = g_strconcat("{\"command\":\"info\",\"tag\":", open_ + 40,
			  close_ + 40, "}", NULL);
	g_free(open_);
	g_free(close_);
	o = cc_call(&c, big);
	expect_ok(o, "info");
	ck_assert(JSON_NODE_HOLDS_ARRAY(member(o, "tag")));
	json_object_unref(o);
	g_free(big);
	expect_info(&c, n++);

	/* A NUL byte inside the line. */
	twrite_all(c.fd, nul_line, sizeof(nul_line) - 1);
	o = cc_next(&c, TWAIT_MS);
	expect_error(o, NULL, "parse");
	json_object_unref(o);
	expect_info(&c, n++);

	/* Empty and blank lines get nothing; CRLF is fine. */
	twrite_all(c.fd, "\n\n   \t \n\r\n", strlen("\n\n   \t \n\r\n"));
	cc_quiet(&c, TQUIET_MS);
	expect_info(&c, n++);
	line = "{\"command\":\"info\",\"tag\":-5}\r\n";
	twrite_all(c.fd, line, strlen(line));
	o = cc_next(&c, TWAIT_MS);
	expect_ok(o, "info");
	ck_assert_int_eq(oint(o, "tag"), -5);
	json_object_unref(o);

	/* The longest line there may be: 4096 bytes with its newline. */
	big = g_strdup_printf("%s%0*d\"}", pad, (int)(4095 - strlen(pad) - 2), 0);
	ck_assert_uint_eq(strlen(big), 4095);
	o = cc_call(&c, big);
	expect_ok(o, "info");
	json_object_unref(o);
	g_free(big);
	/* One byte more: too long, answered once. */
	big = g_strdup_printf("%s%0*d\"}", pad, (int)(4096 - strlen(pad) - 2), 0);
	ck_assert_uint_eq(strlen(big), 4096);
	call_error(&c, big, NULL, "too-long");
	g_free(big);
	expect_info(&c, n++);

	/* 8000 bytes. */
	big = g_strnfill(8000, 'x');
	call_error(&c, big, NULL, "too-long");
	expect_info(&c, n++);
	g_free(big);

	/* 100000 bytes with no newline for a while: answered once, as soon
	 * as the line is too long, then nothing until the newline. */
	big = g_strnfill(50000, '{');
	twrite_all(c.fd, big, 50000);
	o = cc_next(&c, TWAIT_MS);
	expect_error(o, NULL, "too-long");
	json_object_unref(o);
	cc_quiet(&c, TQUIET_MS);
	twrite_all(c.fd, big, 50000);
	cc_quiet(&c, TQUIET_MS);
	twrite_all(c.fd, "}}\n", 3);
	expect_info(&c, n++);
	g_free(big);

	/* A line that ends the overlong one and a request in one write. */
	big = g_strnfill(5000, 'y');
	twrite_all(c.fd, big, 5000);
	cc_send(&c, "\n{\"command\":\"info\",\"tag\":77}");
	o = cc_next(&c, TWAIT_MS);
	expect_error(o, NULL, "too-long");
	json_object_unref(o);
	o = cc_next(&c, TWAIT_MS);
	ck_assert_int_eq(oint(o, "tag"), 77);
	json_object_unref(o);
	g_free(big);

	/* Nothing else came; the server still serves peers. */
	cc_quiet(&c, TQUIET_MS);
	tpeer_join_ok(&b, s->sock, 1, false);
	tpeer_wait_peers_ok(&a, 1);
	ck_assert(tserver_alive(s));
	tpeer_close(&a);
	tpeer_close(&b);
	cc_close(&c);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

START_TEST(test_eof)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s);
	struct cc c;
	JsonObject *o;

	/* Requests, then EOF: answered, then closed. */
	cc_open(&c, ctl);
	cc_send(&c, "{\"command\":\"info\",\"tag\":1}\n{\"command\":\"peers\",\"tag\":2}");
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	o = cc_next(&c, TWAIT_MS);
	ck_assert_int_eq(oint(o, "tag"), 1);
	json_object_unref(o);
	o = cc_next(&c, TWAIT_MS);
	expect_ok(o, "peers");
	ck_assert_int_eq(oint(o, "tag"), 2);
	json_object_unref(o);
	cc_expect_eof(&c);
	cc_close(&c);

	/* A last line without its newline is a request too. */
	cc_open(&c, ctl);
	twrite_all(c.fd, "{\"command\":\"info\",\"tag\":3}",
		 strlen("{\"command\":\"info\",\"tag\":3}"));
	ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
	o = cc_next(&c, TWAIT_MS);
	ck_assert_int_eq(oint(o, "tag"), 3);
	json_object_unref(o);
	cc_expect_eof(&c);
	cc_close(&c);

	/* Gone before its reply, or in the middle of a line. */
	for (int i = 0; i < 20; i++) {
		cc_open(&c, ctl);
		cc_send(&c, "{\"command\":\"peers\"}\n{\"command\":\"shm\"}\n{\"comm");
		cc_close(&c);
	}
	cc_open(&c, ctl);
	expect_info(&c, 4);
	cc_close(&c);
	ck_assert(tserver_alive(s));
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

/* n peers join and leave, one after the other; a and b read along, and
 * another control client is answered promptly meanwhile. Stops early
 * when *stop says so. */
static unsigned churn(const struct tserver *s, unsigned n, struct tpeer *a,
		      struct tpeer *b, struct cc *o, struct cc *stop)
{
	unsigned cycles = 0;

	while (cycles < n && !(stop && cc_hup(stop))) {
		close(raw_connect(s->sock));
		if (++cycles % 100)
			continue;
		tpeer_drain(a, 0);
		tpeer_drain(b, 0);
		JsonObject *r = cc_call(o, "{\"command\":\"info\"}");

		expect_ok(r, "info");
		json_object_unref(r);
	}
	return cycles;
}

/* The "queued" of peer id in a peers reply, or -1 if it is not there. */
static gint64 queued_of(JsonObject *r, int id)
{
	JsonArray *arr = oarr(r, "peers");

	for (unsigned i = 0; i < json_array_get_length(arr); i++) {
		JsonObject *p = json_array_get_object_element(arr, i);

		if (oint(p, "id") == id)
			return oint(p, "queued");
	}
	return -1;
}

/*
 * Wait until the server has n peers and nothing queued for a and b, and
 * a and b have read everything: a peer that stopped reading may have
 * more waiting in the server than its socket holds, sent only as it
 * reads.
 */
static void settle(struct cc *o, unsigned n, struct tpeer *a, struct tpeer *b)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;

	for (;;) {
		JsonObject *r = cc_call(o, "{\"command\":\"peers\"}");
		bool flushed = json_array_get_length(oarr(r, "peers")) == n &&
			       queued_of(r, a->id) == 0 &&
			       queued_of(r, b->id) == 0;

		json_object_unref(r);
		/* After a reply with nothing queued, all is in the sockets. */
		tpeer_drain(a, flushed ? TQUIET_MS : 0);
		tpeer_drain(b, flushed ? TQUIET_MS : 0);
		if (flushed && a->npeers == n - 1 && b->npeers == n - 1)
			break;
		ck_assert_msg(now_seconds() < deadline,
			      "not settled at %u peers: a knows %u, b %u", n,
			      a->npeers, b->npeers);
		if (!flushed)
			usleep(10000);
	}
}

START_TEST(test_slow_watcher)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s), *line;
	struct tpeer a, b;
	struct cc w, o;
	JsonObject *r;
	JsonArray *arr;
	unsigned cycles;
	int lazy;

	tpeer_join_ok(&a, s->sock, 1, true);
	tpeer_join_ok(&b, s->sock, 1, true);
	tpeer_wait_peers_ok(&a, 1);
	cc_open(&w, ctl);
	r = cc_call(&w, "{\"command\":\"watch\"}");
	expect_ok(r, "watch");
	json_object_unref(r);
	cc_open(&o, ctl);

	/* w reads none of the events: about 330 bytes per join and leave,
	 * so it goes after some 3000 and well before 15000. */
	cycles = churn(s, 15000, &a, &b, &o, &w);
	ck_assert_msg(cc_hup(&w), "a watcher that did not read %u joins and leaves is still connected",
		      cycles);
	line = g_strdup_printf("control client pid %ld uid %ld does not read its events",
			       (long)getpid(), (long)getuid());
	ck_assert_msg(tserver_log_wait(s, line, TWAIT_MS), "no '%s'", line);
	g_free(line);

	/* a and b stayed whole, and still ring each other. */
	settle(&o, 2, &a, &b);
	ck_assert_uint_eq(a.npeers, 1);
	ck_assert_uint_eq(b.npeers, 1);
	ck_assert_int_eq(tpeer_ring(&a, b.id, 0), 0);
	ck_assert_int_eq(tpeer_wait_doorbell(&b, 0, TWAIT_MS), 1);
	ck_assert_int_eq(tpeer_ring(&b, a.id, 0), 0);
	ck_assert_int_eq(tpeer_wait_doorbell(&a, 0, TWAIT_MS), 1);

	/* "queued" shows a peer that does not read. */
	lazy = raw_connect(s->sock);
	churn(s, 500, &a, &b, &o, NULL);
	settle(&o, 3, &a, &b);
	r = cc_call(&o, "{\"command\":\"peers\"}");
	arr = oarr(r, "peers");
	ck_assert_uint_eq(json_array_get_length(arr), 3);
	for (unsigned i = 0; i < 3; i++) {
		JsonObject *p = json_array_get_object_element(arr, i);
		gint64 id = oint(p, "id");

		if (id == a.id || id == b.id)
			ck_assert_int_eq(oint(p, "queued"), 0);
		else
			ck_assert_int_gt(oint(p, "queued"), 100);
	}
	json_object_unref(r);

	close(lazy);
	tpeer_close(&a);
	tpeer_close(&b);
	cc_close(&w);
	cc_close(&o);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

#define PIPELINED 100000

START_TEST(test_pipeline)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s);
	struct cc c, o;
	GString *reqs = g_string_new(NULL);
	size_t sent = 0;
	unsigned got = 0;
	JsonObject *r;
	struct tpeer a;
	long rss0, rss1;

	for (unsigned i = 0; i < PIPELINED; i++)
		g_string_append_printf(reqs, "{\"command\":\"info\",\"tag\":%u}\n",
				       i);
	cc_open(&c, ctl);
	expect_info(&c, -1);
	rss0 = proc_peak_rss_kib(s->pid);
	ck_assert_int_gt(rss0, 0);
	/* Write without reading until the server stops taking them. */
	for (;;) {
		ssize_t n = send(c.fd, reqs->str + sent, reqs->len - sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			break;
		}
		sent += (size_t)n;
		ck_assert_uint_lt(sent, reqs->len);
	}

	/* Not stalled: another client is answered, a peer gets in. */
	cc_open(&o, ctl);
	cc_send(&o, "{\"command\":\"info\"}");
	r = cc_next(&o, PROMPT_MS);
	expect_ok(r, "info");
	json_object_unref(r);
	tpeer_join_ok(&a, s->sock, 1, false);

	/* Then every reply comes, in order, as c reads. */
	while (got < PIPELINED) {
		struct pollfd pfd = {
			.fd = c.fd,
			.events = POLLIN | (sent < reqs->len ? POLLOUT : 0),
		};
		char *line;

		ck_assert_msg(poll(&pfd, 1, TWAIT_MS) == 1,
			      "stuck after %u replies, %zu bytes sent", got,
			      sent);
		if (pfd.revents & POLLOUT) {
			ssize_t n = send(c.fd, reqs->str + sent,
					 reqs->len - sent,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n > 0)
				sent += (size_t)n;
		}
		if (!(pfd.revents & POLLIN))
			continue;
		ck_assert_int_gt(cc_fill(&c, 0), 0);
		while ((line = memchr(c.in->str, '\n', c.in->len))) {
			size_t len = (size_t)(line - c.in->str);
			const char *tag;

			c.in->str[len] = '\0';
			ck_assert_msg(g_str_has_prefix(c.in->str, "{\"ok\":true,\"command\":\"info\","),
				      "reply %u: %s", got, c.in->str);
			tag = strstr(c.in->str, ",\"tag\":");
			ck_assert_ptr_nonnull(tag);
			ck_assert_int_eq(strtol(tag + 7, NULL, 10), got);
			got++;
			g_string_erase(c.in, 0, (gssize)len + 1);
		}
	}
	cc_quiet(&c, 0);
	/* What waited for c stayed bounded (the replies were 40 MB).
	 * AddressSanitizer keeps freed memory in quarantine: no bound. */
	rss1 = proc_peak_rss_kib(s->pid);
	if (TRSS_MEANINGFUL)
		ck_assert_msg(rss1 - rss0 < 8192, "the server grew by %ld KiB",
			      rss1 - rss0);
	g_string_free(reqs, TRUE);
	tpeer_close(&a);
	cc_close(&c);
	cc_close(&o);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

#define MAX_CLIENTS 64

START_TEST(test_busy)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s), *line;
	struct cc c[MAX_CLIENTS], extra;
	double deadline;
	JsonObject *o;

	for (int i = 0; i < MAX_CLIENTS; i++) {
		cc_open(&c[i], ctl);
		expect_info(&c[i], i);
	}
	cc_open(&extra, ctl);
	o = cc_next(&extra, TWAIT_MS);
	expect_error(o, NULL, "busy");
	json_object_unref(o);
	cc_expect_eof(&extra);
	cc_close(&extra);
	line = g_strdup_printf("control client pid %ld uid %ld refused: 64 control clients are connected already",
			       (long)getpid(), (long)getuid());
	ck_assert_msg(tserver_log_wait(s, line, TWAIT_MS), "no '%s'", line);
	g_free(line);

	/* The 64 still work; one leaves and the next one gets in. */
	expect_info(&c[10], 1000);
	cc_close(&c[10]);
	deadline = now_seconds() + TWAIT_MS / 1000.0;
	for (;;) {
		static const char req[] = "{\"command\":\"info\"}\n";

		cc_open(&extra, ctl);
		/* A refused client may find its connection closed: the
		 * "busy" is still there to read. */
		if (send(extra.fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0)
			ck_assert_int_eq(errno, EPIPE);
		o = cc_next(&extra, TWAIT_MS);
		if (json_object_has_member(o, "command") ||
		    now_seconds() > deadline)
			break;
		/* still busy: the close is not seen yet */
		json_object_unref(o);
		cc_close(&extra);
		usleep(10000);
	}
	expect_ok(o, "info");
	json_object_unref(o);
	cc_close(&extra);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (i != 10)
			cc_close(&c[i]);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

START_TEST(test_emfile)
{
	struct tserver *s = START(NULL);
	char *ctl = ctl_of(s), *line;
	struct cc c0, c1, c2;
	struct rlimit rl;
	struct tpeer p;
	double cpu0, cpu1;

	tpeer_join_ok(&p, s->sock, 1, false);
	cc_open(&c0, ctl);
	expect_info(&c0, 0);
	/* Room for one more control client. */
	rl.rlim_cur = rl.rlim_max = proc_fd_limit_leaving(s->pid, 1);
	ck_assert_int_eq(prlimit(s->pid, RLIMIT_NOFILE, &rl, NULL), 0);
	cc_open(&c1, ctl);
	expect_info(&c1, 1);

	/* The next one waits in the backlog; the server does not spin. */
	cc_open(&c2, ctl);
	cc_send(&c2, "{\"command\":\"info\",\"tag\":2}");
	cpu0 = proc_cpu_seconds(s->pid);
	line = cc_line(&c2, 1000);
	cpu1 = proc_cpu_seconds(s->pid);
	ck_assert_msg(!line, "answered without an fd: %s", line);
	ck_assert_msg(cpu1 - cpu0 < 0.3, "server busy while paused: %.2f s",
		      cpu1 - cpu0);
	ck_assert(tserver_log_wait(s, "cannot accept control clients (Too many open files)",
			       TWAIT_MS));
	/* The others are served meanwhile. */
	expect_info(&c0, 3);

	/* One leaves: the waiting one gets in at the next retry. */
	cc_close(&c1);
	{
		JsonObject *o = cc_next(&c2, TWAIT_MS);

		ck_assert_int_eq(oint(o, "tag"), 2);
		json_object_unref(o);
	}
	cc_close(&c0);
	cc_close(&c2);
	tpeer_close(&p);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

START_TEST(test_verbose_log)
{
	struct tserver *s = START("-v");
	char *ctl = ctl_of(s), *line, *req;
	struct tpeer p;
	struct cc c;
	JsonObject *o;

	tpeer_join_ok(&p, s->sock, 1, false);
	cc_open(&c, ctl);
	expect_info(&c, 0);
	line = g_strdup_printf("control client pid %ld uid %ld connected",
			       (long)getpid(), (long)getuid());
	ck_assert_msg(tserver_log_wait(s, line, TWAIT_MS), "no '%s'", line);
	g_free(line);

	req = g_strdup_printf("{\"command\":\"ring\",\"peer\":%d,\"vector\":0}",
			      p.id);
	o = cc_call(&c, req);
	expect_ok(o, "ring");
	json_object_unref(o);
	g_free(req);
	line = g_strdup_printf("control client pid %ld rang vector 0 of peer %d (pid %ld)",
			       (long)getpid(), p.id, (long)getpid());
	ck_assert_msg(tserver_log_wait(s, line, TWAIT_MS), "no '%s'", line);
	g_free(line);

	cc_close(&c);
	line = g_strdup_printf("control client pid %ld uid %ld disconnected",
			       (long)getpid(), (long)getuid());
	ck_assert_msg(tserver_log_wait(s, line, TWAIT_MS), "no '%s'", line);
	g_free(line);
	tpeer_close(&p);
	tserver_stop_ok(s);
	g_free(ctl);
}
END_TEST

/* The daemon runs in /: relative paths were made absolute. */
START_TEST(test_daemon_relative_paths)
{
	const char *dir = temp_dir();
	struct tserver *s = prepared();
	char *sock = path_in(dir, "sock"), *ctl = path_in(dir, "sock.ctl");
	char *pidfile = path_in(dir, "pid"), *text = NULL;
	struct cc c;
	JsonObject *o;
	long pid;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(chdir(dir), 0);

	const char *args[] = { "-S", "sock", "-M", s->shm_name, "-p", "pid",
			       NULL };

	ck_assert_int_eq(tserver_run(s, args, TWAIT_MS), 0);
	ck_assert(g_file_get_contents(pidfile, &text, NULL, NULL));
	pid = strtol(text, NULL, 10);
	g_free(text);
	ck_assert_int_gt(pid, 1);
	left->daemon = (pid_t)pid;
	ck_assert_int_eq(chdir("/"), 0);

	/* Serving once the launcher returned: no retry. */
	ck_assert_int_eq(cc_try(&c, ctl), 0);
	o = cc_call(&c, "{\"command\":\"info\"}");
	expect_ok(o, "info");
	ck_assert_int_eq(oint(o, "pid"), pid);
	ck_assert_str_eq(ostr(o, "socket"), sock);
	ck_assert_str_eq(ostr(o, "control"), ctl);
	json_object_unref(o);
	cc_close(&c);

	ck_assert_int_eq(kill((pid_t)pid, SIGTERM), 0);
	ck_assert_int_eq(proc_wait_exit((pid_t)pid, TWAIT_MS), 0);
	left->daemon = -1;
	ck_assert(!path_exists(ctl));
	ck_assert(!path_exists(sock));
	ck_assert(!path_exists(pidfile));
	ck_assert(!shm_exists(s->shm_name));
	tserver_cleanup(s);
	ck_assert_int_eq(rmdir(dir), 0);
	g_free(sock);
	g_free(ctl);
	g_free(pidfile);
}
END_TEST

/* ---- runner -------------------------------------------------------------- */

static Suite *control_suite(void)
{
	Suite *s = suite_create("server-control");
	TCase *tc;

	tc = tcase_with("socket", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_default_socket);
	tcase_add_test(tc, test_control_group);
	tcase_add_test(tc, test_control_path);
	tcase_add_test(tc, test_no_control);
	tcase_add_test(tc, test_stale_control_socket);
	tcase_add_test(tc, test_control_socket_in_use);
	tcase_add_test(tc, test_daemon_relative_paths);
	suite_add_tcase(s, tc);

	tc = tcase_with("commands", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_info);
	tcase_add_test(tc, test_peers);
	tcase_add_test(tc, test_ring);
	tcase_add_test(tc, test_ring_kick_errors);
	tcase_add_test(tc, test_kick);
	tcase_add_test(tc, test_watch);
	tcase_add_test(tc, test_shm);
	tcase_add_test(tc, test_tag);
	tcase_add_test(tc, test_tag_exact);
	suite_add_tcase(s, tc);

	tc = tcase_with("hostile", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_eof);
	tcase_add_test(tc, test_slow_watcher);
	tcase_add_test(tc, test_pipeline);
	tcase_add_test(tc, test_busy);
	tcase_add_test(tc, test_emfile);
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
	ret = run_suite(control_suite());
	remove_leftovers();
	munmap(left, sizeof(*left));
	return ret;
}
