/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the ivshmem-ctl commands that use the server's
 * control socket (info, peers, ring, kick, watch, dump, read, write): a
 * real ivshmem-server, library peers in the test process, and ivshmem-ctl
 * processes run to their end (or, for watch, read line by line). The
 * fallback to joining as a peer against a server without a control socket.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "common.h"
#include "tproc.h"
#include "trec.h"

#define TCASE_TIMEOUT 120

#define SHM_SIZE 4194304

static void ctl_path(const struct tserver *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s.ctl", s->sock);
}

/* Connect to path (a control socket): the fd, or -errno. */
static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

/* A request straight on the control socket: the reply object (unref its
 * node with json_node_unref(*node)). For comparing ivshmem-ctl's messages
 * with the server's own. */
static JsonObject *control_request(const struct tserver *s,
				   const char *line, JsonNode **node)
{
	char path[160], buf[65536];
	size_t len = 0;
	JsonParser *p = json_parser_new();
	int fd;

	ctl_path(s, path, sizeof(path));
	fd = connect_unix(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	while (!memchr(buf, '\n', len)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		ck_assert_int_eq(poll(&pfd, 1, TWAIT_MS), 1);
		n = read(fd, buf + len, sizeof(buf) - len - 1);
		ck_assert_int_gt(n, 0);
		len += (size_t)n;
	}
	close(fd);
	ck_assert(json_parser_load_from_data(p, buf,
		(gssize)((char *)memchr(buf, '\n', len) - buf), NULL));
	*node = json_node_copy(json_parser_get_root(p));
	g_object_unref(p);
	ck_assert(JSON_NODE_HOLDS_OBJECT(*node));
	return json_node_get_object(*node);
}

/* ---- library peers in the test process ------------------------------------ */

/* The first joined or left event for peer id at index from or later. */
static const struct ev *wait_id(struct trec *r, enum ev_kind kind, int id,
				unsigned from, int ms)
{
	double deadline = now_seconds() + ms / 1000.0;

	for (;;) {
		for (unsigned i = from; i < r->nevs; i++)
			if (r->evs[i].kind == kind && r->evs[i].id == id)
				return &r->evs[i];
		double rest = deadline - now_seconds();

		if (rest <= 0)
			return NULL;
		trec_pump(r, (int)(rest * 1000) + 1);
	}
}

/* A library peer with `vectors` vectors joins s and is ready. */
static struct trec *peer_join(const struct tserver *s, unsigned vectors)
{
	const struct ivshmem_peer_config cfg = { .vectors = vectors };
	struct trec *r = g_new0(struct trec, 1);

	ck_assert_int_eq(ivshmem_peer_new(&cfg, &trec_ops, r, &r->peer), 0);
	ck_assert_int_eq(ivshmem_peer_connect(r->peer, s->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(r->peer, TWAIT_MS), 0);
	r->id = ivshmem_peer_get_id(r->peer);
	ck_assert_int_eq(ivshmem_peer_get_vectors(r->peer, r->id),
			 (int)vectors);
	return r;
}

static void peer_free(struct trec *r)
{
	ivshmem_peer_free(r->peer);
	g_free(r);
}

/* Doorbells that came already (a ring is done when ivshmem-ctl exits:
 * the eventfd was written before the reply). vectors: a bit per vector. */
static unsigned doorbells_now(struct trec *r, unsigned from)
{
	unsigned mask = 0;

	trec_pump(r, 0);
	for (unsigned i = from; i < r->nevs; i++) {
		if (r->evs[i].kind != EV_DOORBELL)
			continue;
		ck_assert_uint_eq(r->evs[i].count, 1);
		ck_assert_uint_lt(r->evs[i].n, 32);
		ck_assert_msg(!(mask & (1u << r->evs[i].n)),
			      "vector %u twice", r->evs[i].n);
		mask |= 1u << r->evs[i].n;
	}
	return mask;
}

/* ---- ivshmem-ctl processes ------------------------------------------------- */

static void read_into(int fd, GString *dst, bool *eof)
{
	char b[65536];
	ssize_t n;

	while ((n = read(fd, b, sizeof(b))) > 0)
		g_string_append_len(dst, b, n);
	if (n == 0)
		*eof = true;
}

/*
 * Run ivshmem-ctl args to its end, feeding it input (len bytes; NULL: its
 * stdin is closed at once) and collecting all it writes, however much:
 * c->buf holds its stdout, proc_stderr(c) its stderr. Its exit status.
 */
static int collect(struct proc *c, const void *input, size_t len)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;
	bool err_eof = false;
	size_t off = 0;

	if (!input)
		proc_close_in(c);
	else
		fcntl(c->in, F_SETFL, O_NONBLOCK);
	while (!c->eof || !err_eof) {
		struct pollfd p[3] = {
			{ .fd = c->eof ? -1 : c->out, .events = POLLIN },
			{ .fd = err_eof ? -1 : c->err, .events = POLLIN },
			{ .fd = c->in, .events = POLLOUT },
		};
		int left = (int)((deadline - now_seconds()) * 1000);

		ck_assert_msg(left > 0, "ivshmem-ctl did not finish (stderr: %s)",
			      c->errbuf->str);
		ck_assert_int_ge(poll(p, 3, left), 0);
		if (p[0].revents)
			read_into(c->out, c->buf, &c->eof);
		if (p[1].revents)
			read_into(c->err, c->errbuf, &err_eof);
		if (p[2].revents) {
			ssize_t n = write(c->in, (const char *)input + off,
					  len - off);

			if (n > 0)
				off += (size_t)n;
			if (n < 0 || off == len)
				proc_close_in(c);
		}
	}
	return proc_wait(c, TWAIT_MS);
}

static int run_in(struct proc *c, const void *input, size_t len,
		  const char *const *args)
{
	signal(SIGPIPE, SIG_IGN);
	proc_start(c, proc_ctl_path(), args);
	return collect(c, input, len);
}

static int run(struct proc *c, const char *const *args)
{
	return run_in(c, NULL, 0, args);
}

/* Run `ivshmem-ctl ARGS...` to its end into c; its status. */
#define RUN(c, ...) ({ \
	const char *const a_[] = { __VA_ARGS__, NULL }; \
	run(c, a_); \
})
#define RUN_IN(c, data, len, ...) ({ \
	const char *const a_[] = { __VA_ARGS__, NULL }; \
	run_in(c, data, len, a_); \
})

/* `ivshmem-ctl ARGS` exits 0; its stdout, which must not be empty
 * unless said, with nothing on stderr. g_free the result. */
static char *ok_output(const char *const *args, bool may_be_empty)
{
	struct proc c;
	char *out;
	int st = run(&c, args);

	ck_assert_msg(st == 0, "%s %s: exit status %d (stderr: %s)", args[0],
		      args[1] ? args[1] : "", st, proc_stderr(&c));
	ck_assert_msg(may_be_empty || c.buf->len, "no output");
	ck_assert_msg(strcmp(proc_stderr(&c), "") == 0, "stderr: %s",
		      proc_stderr(&c));
	out = g_strndup(c.buf->str, c.buf->len);
	proc_free(&c);
	return out;
}

#define OUT(...) ({ \
	const char *const a_[] = { __VA_ARGS__, NULL }; \
	ok_output(a_, false); \
})

/* `ivshmem-ctl ARGS` exits with status, nothing on stdout; its stderr
 * (g_free it). */
static char *fail_output(int status, const char *const *args)
{
	struct proc c;
	char *err;
	int st = run(&c, args);

	ck_assert_msg(st == status, "%s: exit status %d, want %d (stderr: %s)",
		      args[0], st, status, proc_stderr(&c));
	ck_assert_msg(c.buf->len == 0, "stdout: %s", c.buf->str);
	err = g_strdup(proc_stderr(&c));
	proc_free(&c);
	/* One sentence per line, each naming the tool. */
	ck_assert_msg(g_str_has_prefix(err, "ivshmem-ctl: ") &&
		      g_str_has_suffix(err, "\n"), "stderr: %s", err);
	return err;
}

#define FAIL(status, ...) ({ \
	const char *const a_[] = { __VA_ARGS__, NULL }; \
	fail_output(status, a_); \
})

/* The single JSON object of a line (or of the whole output, which must
 * be one line). */
static JsonObject *json_line(const char *s, JsonNode **node)
{
	JsonParser *p = json_parser_new();
	GError *err = NULL;
	size_t len = strlen(s);

	ck_assert_msg(len && s[len - 1] != '\n' ?
		      !strchr(s, '\n') : strchr(s, '\n') == s + len - 1,
		      "not one line: %s", s);
	ck_assert_msg(json_parser_load_from_data(p, s, -1, &err),
		      "not JSON: %s (%s)", s, err ? err->message : "");
	*node = json_node_copy(json_parser_get_root(p));
	g_object_unref(p);
	ck_assert_msg(JSON_NODE_HOLDS_OBJECT(*node), "not an object: %s", s);
	return json_node_get_object(*node);
}

static bool is_null(JsonObject *o, const char *name)
{
	return json_object_has_member(o, name) &&
	       JSON_NODE_HOLDS_NULL(json_object_get_member(o, name));
}

static gint64 int_member(JsonObject *o, const char *name)
{
	JsonNode *n;

	ck_assert_msg(json_object_has_member(o, name), "no member '%s'", name);
	n = json_object_get_member(o, name);
	ck_assert_msg(JSON_NODE_HOLDS_VALUE(n) &&
		      json_node_get_value_type(n) == G_TYPE_INT64,
		      "'%s' is not an integer", name);
	return json_node_get_int(n);
}

static const char *str_member(JsonObject *o, const char *name)
{
	JsonNode *n;

	ck_assert_msg(json_object_has_member(o, name), "no member '%s'", name);
	n = json_object_get_member(o, name);
	ck_assert_msg(JSON_NODE_HOLDS_VALUE(n) &&
		      json_node_get_value_type(n) == G_TYPE_STRING,
		      "'%s' is not a string", name);
	return json_node_get_string(n);
}

static bool bool_member(JsonObject *o, const char *name)
{
	ck_assert_msg(json_object_has_member(o, name), "no member '%s'", name);
	return json_object_get_boolean_member(o, name);
}

/* The integers of an array member as "0,1,2". */
static char *int_list(JsonObject *o, const char *name)
{
	JsonArray *a = json_object_get_array_member(o, name);
	GString *s = g_string_new(NULL);

	ck_assert_ptr_nonnull(a);
	for (guint i = 0; i < json_array_get_length(a); i++)
		g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? "," : "",
				       json_array_get_int_element(a, i));
	return g_string_free(s, FALSE);
}

#define ck_assert_contains(hay, needle) \
	ck_assert_msg(strstr((hay), (needle)), "'%s' not in: %s", (needle), \
		      (hay))

/* Is s a date and time in ISO 8601? */
static bool is_iso8601(const char *s)
{
	GDateTime *t = s ? g_date_time_new_from_iso8601(s, NULL) : NULL;

	if (t)
		g_date_time_unref(t);
	return t != NULL;
}

/* ---- info ------------------------------------------------------------------ */

START_TEST(test_info)
{
	struct tserver *s = START("-n", "2", NULL);
	struct trec *a = peer_join(s, 2), *b = peer_join(s, 2);
	char ctl[160], *out, **lines, *want;
	JsonObject *o, *shm;
	JsonNode *node;
	unsigned n;

	ctl_path(s, ctl, sizeof(ctl));
	out = OUT("info", "-S", s->sock);
	lines = g_strsplit(out, "\n", -1);
	n = g_strv_length(lines);
	ck_assert_msg(n == 16 && !*lines[15], "%s", out);
	/* "key  value", the values in one column. */
	for (unsigned i = 0; i < 15; i++)
		ck_assert_msg(strlen(lines[i]) > 13 && lines[i][11] == ' ' &&
			      lines[i][12] == ' ' && lines[i][13] != ' ',
			      "line '%s'", lines[i]);
	ck_assert_str_eq(lines[0], "server       ivshmem-server");
	want = g_strdup_printf("version      %s", ivshmem_version());
	ck_assert_str_eq(lines[1], want);
	g_free(want);
	ck_assert_str_eq(lines[2], "protocol     1");
	want = g_strdup_printf("pid          %ld", (long)s->pid);
	ck_assert_str_eq(lines[3], want);
	g_free(want);
	want = g_strdup_printf("socket       %s", s->sock);
	ck_assert_str_eq(lines[4], want);
	g_free(want);
	want = g_strdup_printf("control      %s", ctl);
	ck_assert_str_eq(lines[5], want);
	g_free(want);
	want = g_strdup_printf("shm          posix %s", s->shm_name);
	ck_assert_str_eq(lines[6], want);
	g_free(want);
	ck_assert_str_eq(lines[7], "shm-size     4194304 (4 MiB)");
	/* A POSIX object: any peer can truncate it. */
	ck_assert_str_eq(lines[8], "shm-sealed   no: any peer can shrink it");
	ck_assert_str_eq(lines[9], "vectors      2");
	ck_assert_str_eq(lines[10], "peers        2");
	ck_assert_str_eq(lines[11], "max-peers    65536");
	ck_assert(g_str_has_prefix(lines[12], "queue-limit  "));
	ck_assert_msg(g_regex_match_simple("^started      \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\S+$",
					   lines[13], 0, 0), "%s", lines[13]);
	ck_assert_msg(g_regex_match_simple("^uptime       (\\d+[hm] )*\\d+s$",
					   lines[14], 0, 0), "%s", lines[14]);
	g_strfreev(lines);
	g_free(out);

	/* --json: the server's object, on one line; before or after the
	 * command. */
	out = OUT("--json", "info", "-S", s->sock);
	o = json_line(out, &node);
	ck_assert(bool_member(o, "ok"));
	ck_assert_str_eq(str_member(o, "command"), "info");
	ck_assert_str_eq(str_member(o, "server"), "ivshmem-server");
	ck_assert_str_eq(str_member(o, "version"), ivshmem_version());
	ck_assert_int_eq(int_member(o, "protocol"), 1);
	ck_assert_int_eq(int_member(o, "pid"), s->pid);
	ck_assert_str_eq(str_member(o, "socket"), s->sock);
	ck_assert_str_eq(str_member(o, "control"), ctl);
	shm = json_object_get_object_member(o, "shm");
	ck_assert_ptr_nonnull(shm);
	ck_assert_str_eq(str_member(shm, "kind"), "posix");
	ck_assert_str_eq(str_member(shm, "name"), s->shm_name);
	ck_assert_int_eq(int_member(shm, "size"), SHM_SIZE);
	ck_assert(!bool_member(shm, "sealed"));
	ck_assert_int_eq(int_member(o, "vectors"), 2);
	ck_assert_int_eq(int_member(o, "peers"), 2);
	ck_assert_int_eq(int_member(o, "max_peers"), 65536);
	ck_assert_int_gt(int_member(o, "queue_limit"), 0);
	ck_assert(json_object_has_member(o, "started_at"));
	ck_assert(json_object_has_member(o, "uptime"));
	ck_assert(!json_object_has_member(o, "via"));
	json_node_unref(node);
	g_free(out);

	/* -C names the control socket: the -S path is then not used. */
	out = OUT("info", "--json", "-S", "/nonexistent/sock", "-C", ctl);
	o = json_line(out, &node);
	ck_assert_str_eq(str_member(o, "socket"), s->sock);
	json_node_unref(node);
	g_free(out);

	/* The memfd kind, with no name. */
	{
		struct tserver *m = START("--memfd", NULL);

		out = OUT("info", "-S", m->sock);
		ck_assert_contains(out, "\nshm          memfd\n");
		ck_assert_contains(out, "\nshm-sealed   yes\n");
		g_free(out);
		out = OUT("info", "-S", m->sock, "--json");
		o = json_line(out, &node);
		shm = json_object_get_object_member(o, "shm");
		ck_assert_str_eq(str_member(shm, "kind"), "memfd");
		ck_assert(is_null(shm, "name"));
		ck_assert(bool_member(shm, "sealed"));
		json_node_unref(node);
		g_free(out);
		tserver_stop_ok(m);
	}

	peer_free(a);
	peer_free(b);
	tserver_stop_ok(s);
}
END_TEST

/* ---- peers ----------------------------------------------------------------- */

/* Where in line the word ends that starts at or after from. */
static size_t word_end(const char *line, size_t from)
{
	while (line[from] == ' ')
		from++;
	while (line[from] && line[from] != ' ')
		from++;
	return from;
}

START_TEST(test_peers)
{
	struct tserver *s = START("-n", "2", NULL);
	struct trec *r[3];
	char *out, **lines, **w;
	JsonObject *o;
	JsonNode *node;
	JsonArray *list;

	/* None yet: the header alone. */
	out = OUT("peers", "-S", s->sock);
	ck_assert_str_eq(out, "ID  VECTORS  PID  UID  GID  QUEUED  CONNECTED\n");
	g_free(out);
	out = OUT("peers", "-S", s->sock, "--json");
	ck_assert_str_eq(out, "{\"ok\":true,\"command\":\"peers\",\"vectors\":2,\"peers\":[]}\n");
	g_free(out);

	for (int i = 0; i < 3; i++) {
		r[i] = peer_join(s, 2);
		ck_assert_int_eq(r[i]->id, i);
	}
	/* One peer leaves: the list follows. */
	peer_free(r[1]);
	r[1] = NULL;

	out = OUT("-S", s->sock, "peers");
	lines = g_strsplit(out, "\n", -1);
	ck_assert_msg(g_strv_length(lines) == 4 && !*lines[3], "%s", out);
	w = g_strsplit_set(lines[0], " ", -1);
	{
		char *joined = g_strjoinv("|", w);

		ck_assert_msg(g_regex_match_simple("^ID\\|+VECTORS\\|+PID\\|+UID\\|+GID\\|+QUEUED\\|+CONNECTED$",
						   joined, 0, 0), "%s", lines[0]);
		g_free(joined);
	}
	g_strfreev(w);
	for (int i = 1; i <= 2; i++) {
		char **t = g_regex_split_simple(" +", lines[i], 0, 0);
		char *want;

		/* Leading spaces: an empty first token. */
		ck_assert_msg(g_strv_length(t) == 11 && !*t[0], "%s", lines[i]);
		want = g_strdup_printf("%d|2|%ld|%ld|%ld|0", i == 1 ? 0 : 2,
				       (long)getpid(), (long)getuid(),
				       (long)getgid());
		{
			char *got = g_strjoin("|", t[1], t[2], t[3], t[4],
					      t[5], t[6], NULL);

			ck_assert_str_eq(got, want);
			g_free(got);
		}
		g_free(want);
		g_strfreev(t);
		/* Numbers right-aligned under their headers. */
		for (size_t k = 0, h = 0; k < 6; k++) {
			size_t end_h = word_end(lines[0], h);

			ck_assert_msg(word_end(lines[i], h) == end_h,
				      "column %zu misaligned:\n%s\n%s", k,
				      lines[0], lines[i]);
			h = end_h;
		}
		/* The local time it connected, and how long ago. */
		ck_assert_msg(g_regex_match_simple("  \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\((\\d+[hm] )*\\d+s ago\\)$",
						   lines[i], 0, 0), "%s", lines[i]);
	}
	g_strfreev(lines);
	g_free(out);

	out = OUT("peers", "--json", "-S", s->sock);
	o = json_line(out, &node);
	ck_assert(bool_member(o, "ok"));
	ck_assert_str_eq(str_member(o, "command"), "peers");
	ck_assert_int_eq(int_member(o, "vectors"), 2);
	list = json_object_get_array_member(o, "peers");
	ck_assert_uint_eq(json_array_get_length(list), 2);
	for (guint i = 0; i < 2; i++) {
		JsonObject *p = json_array_get_object_element(list, i);

		ck_assert_int_eq(int_member(p, "id"), i == 0 ? 0 : 2);
		ck_assert_int_eq(int_member(p, "vectors"), 2);
		ck_assert_int_eq(int_member(p, "pid"), getpid());
		ck_assert_int_eq(int_member(p, "uid"), getuid());
		ck_assert_int_eq(int_member(p, "gid"), getgid());
		ck_assert_int_eq(int_member(p, "queued"), 0);
		ck_assert(is_iso8601(str_member(p, "connected_at")));
		ck_assert(json_object_get_double_member(p, "connected_for") >= 0);
	}
	ck_assert(!json_object_has_member(o, "via"));
	json_node_unref(node);
	g_free(out);

	peer_free(r[0]);
	peer_free(r[2]);
	tserver_stop_ok(s);
}
END_TEST

/* ---- ring ------------------------------------------------------------------ */

START_TEST(test_ring)
{
	struct tserver *s = START("-n", "3", NULL);
	struct trec *r[3];
	unsigned from[3];
	char *out;
	JsonObject *o;
	JsonNode *node;

	for (int i = 0; i < 3; i++)
		r[i] = peer_join(s, 3);
#define MARK() do { for (int i_ = 0; i_ < 3; i_++) from[i_] = r[i_]->nevs; } while (0)
#define BELLS(i) doorbells_now(r[i], from[i])

	/* One vector of one peer: that doorbell, and no other anywhere. */
	MARK();
	out = OUT("ring", "-S", s->sock, "1", "2");
	ck_assert_str_eq(out, "rang peer 1 vector 2\n");
	g_free(out);
	ck_assert_uint_eq(BELLS(1), 1u << 2);
	ck_assert_uint_eq(BELLS(0), 0);
	ck_assert_uint_eq(BELLS(2), 0);

	/* No vector: all of them. */
	MARK();
	out = OUT("ring", "-S", s->sock, "2");
	ck_assert_str_eq(out, "rang peer 2 vectors 0,1,2\n");
	g_free(out);
	ck_assert_uint_eq(BELLS(2), 7);
	ck_assert_uint_eq(BELLS(0), 0);
	ck_assert_uint_eq(BELLS(1), 0);

	MARK();
	out = OUT("ring", "0", "all", "-S", s->sock, "--json");
	o = json_line(out, &node);
	ck_assert(bool_member(o, "ok"));
	ck_assert_str_eq(str_member(o, "command"), "ring");
	ck_assert_int_eq(int_member(o, "peer"), 0);
	{
		char *l = int_list(o, "vectors");

		ck_assert_str_eq(l, "0,1,2");
		g_free(l);
	}
	json_node_unref(node);
	g_free(out);
	ck_assert_uint_eq(BELLS(0), 7);
	ck_assert_uint_eq(BELLS(1), 0);
	ck_assert_uint_eq(BELLS(2), 0);

	MARK();
	out = OUT("--json", "-S", s->sock, "ring", "0x1", "0");
	ck_assert_str_eq(out, "{\"ok\":true,\"command\":\"ring\",\"peer\":1,\"vectors\":[0]}\n");
	g_free(out);
	ck_assert_uint_eq(BELLS(1), 1);
	ck_assert_uint_eq(BELLS(0), 0);
	ck_assert_uint_eq(BELLS(2), 0);
#undef MARK
#undef BELLS

	for (int i = 0; i < 3; i++)
		peer_free(r[i]);
	tserver_stop_ok(s);
}
END_TEST

/* ivshmem-ctl says the server's own message for the same request. */
static void expect_server_message(struct tserver *s, const char *request,
				  const char *code, const char *err)
{
	JsonNode *node;
	JsonObject *o = control_request(s, request, &node);
	char *want;

	ck_assert(!bool_member(o, "ok"));
	ck_assert_str_eq(str_member(o, "error"), code);
	want = g_strdup_printf("ivshmem-ctl: %s\n", str_member(o, "message"));
	ck_assert_str_eq(err, want);
	g_free(want);
	json_node_unref(node);
}

START_TEST(test_ring_kick_errors)
{
	struct tserver *s = START("-n", "2", NULL);
	struct trec *a = peer_join(s, 2);
	unsigned from = a->nevs;
	char *err;

	err = FAIL(1, "ring", "-S", s->sock, "9");
	expect_server_message(s, "{\"command\":\"ring\",\"peer\":9}\n",
			      "no-such-peer", err);
	ck_assert_contains(err, "9");
	g_free(err);

	err = FAIL(1, "ring", "-S", s->sock, "0", "2");
	expect_server_message(s, "{\"command\":\"ring\",\"peer\":0,\"vector\":2}\n",
			      "no-such-vector", err);
	ck_assert_contains(err, "2");
	g_free(err);

	/* --json changes nothing for errors: the sentence on stderr. */
	err = FAIL(1, "ring", "-S", s->sock, "0", "64", "--json");
	expect_server_message(s, "{\"command\":\"ring\",\"peer\":0,\"vector\":64}\n",
			      "no-such-vector", err);
	g_free(err);

	err = FAIL(1, "kick", "-S", s->sock, "5");
	expect_server_message(s, "{\"command\":\"kick\",\"peer\":5}\n",
			      "no-such-peer", err);
	g_free(err);

	/* Nothing was rung or kicked. */
	ck_assert_uint_eq(doorbells_now(a, from), 0);
	ck_assert_uint_eq(trec_count(a, EV_DISCONNECTED, from), 0);
	peer_free(a);
	tserver_stop_ok(s);
}
END_TEST

/* ---- kick ------------------------------------------------------------------ */

START_TEST(test_kick)
{
	struct tserver *s = START(NULL);
	struct trec *a = peer_join(s, 1), *b = peer_join(s, 1),
		   *c = peer_join(s, 1);
	unsigned fa = a->nevs, fb = b->nevs, fc = c->nevs;
	const struct ev *e;
	char *out;
	JsonNode *node;
	JsonObject *o;

	out = OUT("kick", "-S", s->sock, "0");
	ck_assert_str_eq(out, "disconnected peer 0\n");
	g_free(out);
	e = trec_wait_event(a, EV_DISCONNECTED, fa, TWAIT_MS);
	ck_assert_msg(e, "peer 0 was not disconnected");
	ck_assert_int_eq(e->error, -ECONNRESET);
	ck_assert_msg(wait_id(b, EV_LEFT, 0, fb, TWAIT_MS),
		      "peer 1 was not told");
	ck_assert_msg(wait_id(c, EV_LEFT, 0, fc, TWAIT_MS),
		      "peer 2 was not told");

	out = OUT("kick", "2", "--json", "-S", s->sock);
	o = json_line(out, &node);
	ck_assert(bool_member(o, "ok"));
	ck_assert_str_eq(str_member(o, "command"), "kick");
	ck_assert_int_eq(int_member(o, "peer"), 2);
	json_node_unref(node);
	g_free(out);
	ck_assert(trec_wait_event(c, EV_DISCONNECTED, fc, TWAIT_MS));
	ck_assert_msg(wait_id(b, EV_LEFT, 2, fb, TWAIT_MS),
		      "peer 1 was not told of 2");

	/* Only they went: b is still there, the only one. */
	out = OUT("peers", "--json", "-S", s->sock);
	ck_assert_contains(out, "\"peers\":[{\"id\":1,");
	ck_assert_uint_eq(trec_count(b, EV_DISCONNECTED, fb), 0);
	g_free(out);

	peer_free(a);
	peer_free(b);
	peer_free(c);
	tserver_stop_ok(s);
}
END_TEST

/* ---- watch ----------------------------------------------------------------- */

#define WATCH(c, s, ...) do { \
	const char *const a_[] = { "watch", "-S", (s)->sock, ##__VA_ARGS__, \
				   NULL }; \
	proc_start(c, proc_ctl_path(), a_); \
	proc_close_in(c); \
} while (0)

/* The next line of c is a JSON event: its object (unref *node). */
static JsonObject *next_json(struct proc *c, JsonNode **node)
{
	const char *l = proc_next(c, TWAIT_MS);

	ck_assert_msg(l, "no line from watch (stderr: %s)", proc_stderr(c));
	return json_line(l, node);
}

/* A text and a JSON watcher see every event, in order: joins, a join
 * refused (the server is full), a close, a kick; --count ends the text
 * one, SIGINT the JSON one. */
START_TEST(watch_reports_each_event)
{
	struct tserver *s = START("-n", "2", "--max-peers", "3", NULL);
	struct trec *a = peer_join(s, 2), *b, *c;
	struct proc w, j;
	long pid = (long)getpid(), uid = (long)getuid(), gid = (long)getgid();
	JsonObject *o, *p;
	JsonNode *node;
	char *out;

	WATCH(&w, s, "--count", "5");
	EXPECT(&w, "watching peers=0");
	WATCH(&j, s, "--json");
	o = next_json(&j, &node);
	ck_assert(bool_member(o, "ok"));
	ck_assert_str_eq(str_member(o, "command"), "watch");
	{
		JsonArray *l = json_object_get_array_member(o, "peers");

		ck_assert_uint_eq(json_array_get_length(l), 1);
		p = json_array_get_object_element(l, 0);
		ck_assert_int_eq(int_member(p, "id"), 0);
		ck_assert_int_eq(int_member(p, "pid"), pid);
	}
	json_node_unref(node);

	b = peer_join(s, 2);
	EXPECT(&w, "join id=1 vectors=2 pid=%ld uid=%ld gid=%ld peers=2",
	       pid, uid, gid);
	o = next_json(&j, &node);
	ck_assert_str_eq(str_member(o, "event"), "join");
	ck_assert(is_iso8601(str_member(o, "time")));
	ck_assert_int_eq(int_member(o, "peers"), 2);
	p = json_object_get_object_member(o, "peer");
	ck_assert_int_eq(int_member(p, "id"), 1);
	ck_assert_int_eq(int_member(p, "vectors"), 2);
	ck_assert_int_eq(int_member(p, "pid"), pid);
	ck_assert_int_eq(int_member(p, "uid"), uid);
	ck_assert_int_eq(int_member(p, "gid"), gid);
	json_node_unref(node);

	c = peer_join(s, 2);
	EXPECT(&w, "join id=2 vectors=2 pid=%ld uid=%ld gid=%ld peers=3",
	       pid, uid, gid);
	/* A fourth is refused: the server is full. */
	{
		const struct ivshmem_peer_config cfg = { .vectors = 2 };
		struct trec *x = g_new0(struct trec, 1);

		ck_assert_int_eq(ivshmem_peer_new(&cfg, &trec_ops, x,
						  &x->peer), 0);
		ck_assert_int_eq(ivshmem_peer_connect(x->peer, s->sock), 0);
		/* The library may log about being refused. */
		x->warnings_ok = true;
		ck_assert_int_eq(ivshmem_peer_wait_ready(x->peer, TWAIT_MS),
				 -ECONNREFUSED);
		x->warnings_ok = false;
		peer_free(x);
	}
	EXPECT_PREFIX(&w, "refused pid=%ld uid=%ld gid=%ld reason=full message=\"",
		      pid, uid, gid);

	/* Closed: with the socket error if there was one (unread data
	 * makes the close a reset). */
	peer_free(b);
	{
		const char *l = proc_next(&w, TWAIT_MS);
		char *re = g_strdup_printf("^leave id=1 pid=%ld uid=%ld gid=%ld reason=closed( error=\"[^\"]+\")? peers=2$",
					   pid, uid, gid);

		ck_assert_msg(l && g_regex_match_simple(re, l, 0, 0), "got '%s'",
			      l ? l : "(nothing)");
		g_free(re);
	}
	out = OUT("kick", "-S", s->sock, "0");
	g_free(out);
	/* The fifth event: --count 5 ends it. */
	EXPECT(&w, "leave id=0 pid=%ld uid=%ld gid=%ld reason=kicked peers=1",
	       pid, uid, gid);
	EXPECT_EXIT(&w, 0);
	ck_assert_str_eq(proc_stderr(&w), "");
	ck_assert_str_eq(proc_stdout_rest(&w), "");
	proc_free(&w);

	/* The JSON watcher saw the same, in order. */
	o = next_json(&j, &node);
	ck_assert_str_eq(str_member(o, "event"), "join");
	ck_assert_int_eq(int_member(json_object_get_object_member(o, "peer"), "id"), 2);
	json_node_unref(node);
	o = next_json(&j, &node);
	ck_assert_str_eq(str_member(o, "event"), "refused");
	ck_assert_str_eq(str_member(o, "reason"), "full");
	ck_assert_int_eq(int_member(o, "pid"), pid);
	json_node_unref(node);
	o = next_json(&j, &node);
	ck_assert_str_eq(str_member(o, "event"), "leave");
	ck_assert_str_eq(str_member(o, "reason"), "closed");
	ck_assert_int_eq(int_member(o, "peers"), 2);
	ck_assert_int_eq(int_member(json_object_get_object_member(o, "peer"), "id"), 1);
	json_node_unref(node);
	o = next_json(&j, &node);
	ck_assert_str_eq(str_member(o, "reason"), "kicked");
	ck_assert_int_eq(int_member(json_object_get_object_member(o, "peer"), "id"), 0);
	json_node_unref(node);

	/* SIGINT: a clean end. */
	kill(j.pid, SIGINT);
	EXPECT_EXIT(&j, 0);
	ck_assert_str_eq(proc_stderr(&j), "");
	proc_free(&j);
	peer_free(a);
	peer_free(c);
	tserver_stop_ok(s);
}
END_TEST

/* A server (2 vectors) whose only peer is *c, ID 2: 0 and 1 came and
 * went. */
static struct tserver *watch_start(struct trec **c)
{
	struct tserver *s = START("-n", "2", "--max-peers", "3", NULL);
	struct trec *a = peer_join(s, 2), *b = peer_join(s, 2);
	unsigned fc;

	*c = peer_join(s, 2);
	fc = (*c)->nevs;
	peer_free(a);
	peer_free(b);
	ck_assert_msg(wait_id(*c, EV_LEFT, 0, fc, TWAIT_MS), "0 did not leave");
	ck_assert_msg(wait_id(*c, EV_LEFT, 1, fc, TWAIT_MS), "1 did not leave");
	return s;
}

/* --count 0: the snapshot only. */
START_TEST(watch_count_0_is_the_snapshot)
{
	struct trec *c;
	struct tserver *s = watch_start(&c);
	char *out;

	out = OUT("watch", "-S", s->sock, "--count", "0");
	ck_assert_str_eq(out, "watching peers=2\n");
	g_free(out);
	peer_free(c);
	tserver_stop_ok(s);
}
END_TEST

/* --timeout: the watch's length (exit 0) or, with --count, a deadline
 * missed (exit 1). */
START_TEST(watch_timeout)
{
	struct trec *c;
	struct tserver *s = watch_start(&c);
	char *out;

	out = OUT("watch", "-S", s->sock, "--timeout", "0.2");
	ck_assert_str_eq(out, "watching peers=2\n");
	g_free(out);
	{
		struct proc t;

		ck_assert_int_eq(RUN(&t, "watch", "-S", s->sock, "--timeout",
				     "0.2", "--count", "2"), 1);
		ck_assert_str_eq(t.buf->str, "watching peers=2\n");
		ck_assert_str_eq(proc_stderr(&t),
				 "ivshmem-ctl: timed out after 0.2 s with 0 of 2 events\n");
		proc_free(&t);
	}
	peer_free(c);
	tserver_stop_ok(s);
}
END_TEST

/* SIGTERM ends a watch with 0 (as SIGINT does). */
START_TEST(watch_sigterm_ends_0)
{
	struct trec *c;
	struct tserver *s = watch_start(&c);
	struct proc w;

	WATCH(&w, s);
	EXPECT(&w, "watching peers=2");
	kill(w.pid, SIGTERM);
	EXPECT_EXIT(&w, 0);
	proc_free(&w);
	peer_free(c);
	tserver_stop_ok(s);
}
END_TEST

/* The server goes away: exit 1, and a sentence. */
START_TEST(watch_server_gone_ends_1)
{
	struct trec *c;
	struct tserver *s = watch_start(&c);
	struct proc w;

	WATCH(&w, s);
	EXPECT(&w, "watching peers=2");
	tserver_stop_ok(s);
	EXPECT_EXIT(&w, 1);
	ck_assert_msg(g_str_has_prefix(proc_stderr(&w), "ivshmem-ctl: the server closed the control connection"),
		      "stderr: %s", proc_stderr(&w));
	proc_free(&w);
	peer_free(c);
}
END_TEST

/* ---- dump, read, write ----------------------------------------------------- */

/* The hexdump -C line of 16 bytes (or fewer) at off. */
static char *hex_line(uint64_t off, const uint8_t *p, size_t n)
{
	GString *s = g_string_new(NULL);

	g_string_append_printf(s, "%08" G_GINT64_MODIFIER "x ", (guint64)off);
	for (size_t i = 0; i < 16; i++) {
		if (i == 8)
			g_string_append_c(s, ' ');
		if (i < n)
			g_string_append_printf(s, " %02x", p[i]);
		else
			g_string_append(s, "   ");
	}
	g_string_append(s, "  |");
	for (size_t i = 0; i < n; i++)
		g_string_append_c(s, p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.');
	g_string_append(s, "|\n");
	return g_string_free(s, FALSE);
}

/* A server (4 MiB) and a library peer a, with its mapping of the shared
 * memory (*shm), which ctl reads and writes. */
static struct tserver *shm_start(struct trec **a, uint8_t **shm)
{
	struct tserver *s = START(NULL);
	uint64_t size;

	*a = peer_join(s, 1);
	ck_assert_int_eq(ivshmem_peer_get_shm((*a)->peer, (void **)shm,
					      &size), 0);
	ck_assert_uint_eq(size, SHM_SIZE);
	return s;
}

static void shm_stop(struct tserver *s, struct trec *a)
{
	peer_free(a);
	tserver_stop_ok(s);
}

/* ctl writes, the peer's mapping has it. */
START_TEST(write_lands_in_the_mapping)
{
	uint8_t *shm;
	struct trec *a;
	struct tserver *s = shm_start(&a, &shm);
	char *out;

	out = OUT("write", "-S", s->sock, "--offset", "16", "deadbeef");
	ck_assert_str_eq(out, "wrote 4 bytes at offset 16\n");
	g_free(out);
	ck_assert_mem_eq(shm + 16, "\xde\xad\xbe\xef", 4);
	out = OUT("write", "-S", s->sock, "--offset=0x20", "0xCAFE", "--json");
	ck_assert_str_eq(out, "{\"offset\":32,\"length\":2}\n");
	g_free(out);
	ck_assert_mem_eq(shm + 32, "\xca\xfe", 2);
	shm_stop(s, a);
}
END_TEST

/* Standard input, raw, binary, more than a pipe holds. */
START_TEST(write_from_stdin)
{
	uint8_t *shm;
	struct trec *a;
	struct tserver *s = shm_start(&a, &shm);
	const size_t big_len = 200000;
	struct proc c;
	uint8_t *big;

	big = g_malloc(big_len);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	ck_assert_int_eq(RUN_IN(&c, big, big_len, "write", "-S", s->sock,
				"--offset", "1K"), 0);
	ck_assert_str_eq(c.buf->str, "wrote 200000 bytes at offset 1024\n");
	proc_free(&c);
	ck_assert_mem_eq(shm + 1024, big, big_len);
	g_free(big);
	shm_stop(s, a);
}
END_TEST

/* The peer writes, ctl reads: raw bytes, as many as asked. */
START_TEST(read_raw_and_json)
{
	uint8_t *shm;
	struct trec *a;
	struct tserver *s = shm_start(&a, &shm);
	struct proc c;
	JsonObject *o;
	JsonNode *node;
	char *out;

	memcpy(shm + 300000, "hello\0world\n", 12);
	ck_assert_int_eq(RUN(&c, "read", "-S", s->sock, "--offset", "300000",
			     "--length", "12"), 0);
	ck_assert_uint_eq(c.buf->len, 12);
	ck_assert_mem_eq(c.buf->str, "hello\0world\n", 12);
	proc_free(&c);
	out = OUT("read", "-S", s->sock, "--offset", "300000", "--length",
		  "12", "--json");
	o = json_line(out, &node);
	ck_assert_int_eq(int_member(o, "offset"), 300000);
	ck_assert_int_eq(int_member(o, "length"), 12);
	ck_assert_str_eq(str_member(o, "hex"), "68656c6c6f00776f726c640a");
	json_node_unref(node);
	g_free(out);
	shm_stop(s, a);
}
END_TEST

/* The whole of it, by default; the same bytes. */
START_TEST(read_whole_by_default)
{
	uint8_t *shm;
	struct trec *a;
	struct tserver *s = shm_start(&a, &shm);
	struct proc c;

	ck_assert_int_eq(RUN(&c, "read", "-S", s->sock), 0);
	ck_assert_uint_eq(c.buf->len, SHM_SIZE);
	ck_assert(memcmp(c.buf->str, shm, SHM_SIZE) == 0);
	proc_free(&c);
	ck_assert_int_eq(RUN(&c, "read", "-S", s->sock, "--offset", "4M"), 0);
	ck_assert_uint_eq(c.buf->len, 0);
	proc_free(&c);
	shm_stop(s, a);
}
END_TEST

/* dump: as hexdump -C, equal lines as one '*', the end offset. (The
 * bytes at 16 as write_lands_in_the_mapping leaves them.) */
START_TEST(dump_as_hexdump_c)
{
	uint8_t *shm;
	struct trec *a;
	struct tserver *s = shm_start(&a, &shm);
	char *out, off[32];

	memcpy(shm + 16, "\xde\xad\xbe\xef", 4);

	memset(shm + 2 * 1024 * 1024, 0, 256);
	memcpy(shm + 2 * 1024 * 1024 + 0x33, "ABC~\x7f\x1f", 6);
	snprintf(off, sizeof(off), "%d", 2 * 1024 * 1024);
	out = OUT("dump", "-S", s->sock, "--offset", off, "--length", "100");
	{
		GString *w = g_string_new(NULL);
		uint64_t base = 2 * 1024 * 1024;
		char *l;

		/* 00 and 10, 20 equal to it; 30; 40, and 50 equal to it;
		 * the 4 bytes at 60. */
		l = hex_line(base, shm + base, 16);
		g_string_append(w, l);
		g_free(l);
		g_string_append(w, "*\n");
		for (uint64_t i = 0x30; i <= 0x40; i += 16) {
			l = hex_line(base + i, shm + base + i, 16);
			g_string_append(w, l);
			g_free(l);
		}
		g_string_append(w, "*\n");
		l = hex_line(base + 0x60, shm + base + 0x60, 4);
		g_string_append(w, l);
		g_free(l);
		g_string_append_printf(w, "%08x\n", (unsigned)base + 100);
		ck_assert_str_eq(out, w->str);
		ck_assert_contains(out, "00200030  00 00 00 41 42 43 7e 7f  1f 00 00 00 00 00 00 00  |...ABC~.........|\n");
		ck_assert_contains(out, "00200060  00 00 00 00                                       |....|\n");
		g_string_free(w, TRUE);
	}
	g_free(out);
	/* --all: no '*'. */
	out = OUT("dump", "-S", s->sock, "--offset", off, "--length", "0x64",
		  "--all");
	ck_assert(!strstr(out, "*"));
	ck_assert_contains(out, "00200040  00 00");
	ck_assert_contains(out, "00200050  00 00");
	g_free(out);
	/* Not aligned: lines start at the offset. */
	out = OUT("dump", "-S", s->sock, "--offset", "18", "--length", "3");
	ck_assert_str_eq(out, "00000012  be ef 00                                          |...|\n00000015\n");
	g_free(out);
	out = OUT("dump", "-S", s->sock, "--offset", "16", "--length", "4",
		  "--json");
	ck_assert_str_eq(out, "{\"offset\":16,\"length\":4,\"hex\":\"deadbeef\"}\n");
	g_free(out);
	shm_stop(s, a);
}
END_TEST

/* Near the end: the last bytes, both ways. */
START_TEST(last_bytes_both_ways)
{
	uint8_t *shm;
	struct trec *a;
	struct tserver *s = shm_start(&a, &shm);
	char *out, off[32];

	snprintf(off, sizeof(off), "%d", SHM_SIZE - 4);
	out = OUT("write", "-S", s->sock, "--offset", off, "01020304");
	g_free(out);
	ck_assert_mem_eq(shm + SHM_SIZE - 4, "\x01\x02\x03\x04", 4);
	shm[SHM_SIZE - 1] = 0x99;
	out = OUT("dump", "-S", s->sock, "--offset", off);
	ck_assert_str_eq(out, "003ffffc  01 02 03 99                                       |....|\n00400000\n");
	g_free(out);
	shm_stop(s, a);
}
END_TEST

/* Out of range: refused, naming the size; nothing written. (The last 4
 * bytes as last_bytes_both_ways leaves them.) */
START_TEST(out_of_range_refused)
{
	uint8_t *shm;
	struct trec *a;
	struct tserver *s = shm_start(&a, &shm);
	char *out, *want, off[32];
	struct proc c;

	snprintf(off, sizeof(off), "%d", SHM_SIZE - 4);
	memcpy(shm + SHM_SIZE - 4, "\x01\x02\x03\x99", 4);

	want = g_strdup_printf("ivshmem-ctl: cannot write 5 bytes at offset %d: the shared memory has %d bytes, 4 from there\n",
			       SHM_SIZE - 4, SHM_SIZE);
	out = FAIL(1, "write", "-S", s->sock, "--offset", off, "0102030405");
	ck_assert_str_eq(out, want);
	g_free(out);
	g_free(want);
	ck_assert_mem_eq(shm + SHM_SIZE - 4, "\x01\x02\x03\x99", 4);
	ck_assert_int_eq(RUN_IN(&c, "abcde", 5, "write", "-S", s->sock,
				"--offset", off), 1);
	ck_assert_contains(proc_stderr(&c), "the input is longer than the 4 bytes from offset 4194300 to the end of the shared memory (4194304 bytes); nothing was written");
	proc_free(&c);
	ck_assert_mem_eq(shm + SHM_SIZE - 4, "\x01\x02\x03\x99", 4);
	out = FAIL(1, "read", "-S", s->sock, "--offset", "4M", "--length", "1");
	ck_assert_contains(out, "4194304 bytes");
	g_free(out);
	out = FAIL(1, "dump", "-S", s->sock, "--offset", "0x400001");
	ck_assert_str_eq(out, "ivshmem-ctl: offset 4194305 is past the end of the shared memory (4194304 bytes)\n");
	g_free(out);
	out = FAIL(1, "dump", "-S", s->sock, "--length", "5M");
	ck_assert_contains(out, "4194304 bytes");
	g_free(out);
	out = FAIL(1, "read", "-S", s->sock, "--offset", "18446744073709551615",
		   "--length", "2");
	ck_assert_contains(out, "(4194304 bytes)");
	g_free(out);
	shm_stop(s, a);
}
END_TEST

/* --json has a bound; without it, the raw bytes have none. */
/* What every tool stopped by a shrinking region says. */
#define SHRANK(to) "ivshmem-ctl: the shared memory shrank to " to \
	" bytes while in use: another peer truncated it (ivshmem-server " \
	"--memfd seals it against that); "

/*
 * Another peer truncates the POSIX object while read or dump copies it
 * out: the tool stops where the memory now ends and says so, it does not
 * die of SIGBUS. Its stdout is left unread until it is mid-copy.
 */
static void shrink_while_showing(const char *const *args, const char *tail)
{
	uint8_t *shm;
	struct trec *a;
	struct tserver *s = shm_start(&a, &shm);
	struct pollfd p;
	struct proc c;
	const char *const *arg;
	const char *argv[8];
	unsigned n = 0;

	for (arg = args; *arg; arg++)
		argv[n++] = *arg;
	argv[n++] = "-S";
	argv[n++] = s->sock;
	argv[n] = NULL;
	signal(SIGPIPE, SIG_IGN);
	proc_start(&c, proc_ctl_path(), argv);
	p = (struct pollfd){ .fd = c.out, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, TWAIT_MS), 1);
	ck_assert_int_eq(ftruncate(ivshmem_peer_get_shm_fd(a->peer), 65536), 0);
	ck_assert_int_eq(collect(&c, NULL, 0), 1);
	ck_assert_msg(g_str_has_prefix(proc_stderr(&c), SHRANK("65536")) &&
		      g_str_has_suffix(proc_stderr(&c), tail) &&
		      !strchr(proc_stderr(&c), '\n')[1],
		      "stderr: %s", proc_stderr(&c));
	ck_assert_uint_gt(c.buf->len, 0);
	ck_assert_uint_lt(c.buf->len, SHM_SIZE);
	proc_free(&c);
	shm_stop(s, a);
}

START_TEST(read_survives_shrinking)
{
	static const char *const args[] = { "read", NULL };

	shrink_while_showing(args, " of the 4194304 bytes at offset 0 were shown\n");
}
END_TEST

START_TEST(dump_survives_shrinking)
{
	static const char *const args[] = { "dump", "--all", "--offset", "16",
					    NULL };

	shrink_while_showing(args, " of the 4194288 bytes at offset 16 were shown\n");
}
END_TEST

/* The object shrinks between mapping and the write: what fits is written,
 * and the rest is said. */
START_TEST(write_survives_shrinking)
{
	static uint8_t data[8192];
	uint8_t *shm;
	struct trec *a;
	struct tserver *s = shm_start(&a, &shm);
	const char *args[] = { "write", "-S", s->sock, NULL };
	struct proc c;

	memset(data, 0x5a, sizeof(data));
	signal(SIGPIPE, SIG_IGN);
	proc_start(&c, proc_ctl_path(), args);
	proc_wait_mapped(c.pid, "/ivshmem-ctl", s->shm_name);
	ck_assert_int_eq(ftruncate(ivshmem_peer_get_shm_fd(a->peer), 4096), 0);
	ck_assert_int_eq(collect(&c, data, sizeof(data)), 1);
	ck_assert_str_eq(proc_stderr(&c), SHRANK("4096")
			 "4096 of the 8192 bytes at offset 0 were written\n");
	ck_assert_uint_eq(c.buf->len, 0);
	ck_assert_mem_eq(shm, data, 4096);
	proc_free(&c);
	shm_stop(s, a);
}
END_TEST

START_TEST(json_bound_64_mib)
{
	struct tserver *s;
	struct proc c;
	char *out;

	s = START("-l", "128M", NULL);
	out = FAIL(1, "dump", "--json", "-S", s->sock);
	ck_assert_str_eq(out, "ivshmem-ctl: --json shows at most 64 MiB, not 134217728 bytes: give a --length, or read without --json for the raw bytes\n");
	g_free(out);
	out = OUT("read", "--json", "-S", s->sock, "--offset", "128M", "--length", "0");
	ck_assert_str_eq(out, "{\"offset\":134217728,\"length\":0,\"hex\":\"\"}\n");
	g_free(out);
	ck_assert_int_eq(RUN(&c, "read", "-S", s->sock, "--offset", "63M"), 0);
	ck_assert_uint_eq(c.buf->len, 65u << 20);
	proc_free(&c);
	tserver_stop_ok(s);
}
END_TEST

/* ---- the command line ------------------------------------------------------ */

START_TEST(test_usage)
{
	static const char *const cmds[] = {
		"info", "peers", "ring", "kick", "watch", "dump", "read",
		"write",
	};
	/* Every command's own options, in its help. */
	static const char *const opts[][4] = {
		{ NULL }, { NULL }, { "PEER [VECTOR|all]", NULL },
		{ "PEER", NULL }, { "--count", "--timeout", NULL },
		{ "--offset", "--length", "--all", NULL },
		{ "--offset", "--length", NULL }, { "--offset", "[HEX]", NULL },
	};
	struct proc c;
	char *out;

	USAGE_ERROR("info", "info", "extra");
	USAGE_ERROR("info", "info", "--bogus");
	USAGE_ERROR("peers", "peers", "x");
	USAGE_ERROR("peers", "peers", "-x");
	USAGE_ERROR("peers", "peers", "-C", "");
	USAGE_ERROR("peers", "peers", "--json=1");
	USAGE_ERROR("ring", "ring");
	USAGE_ERROR("ring", "ring", "x");
	USAGE_ERROR("ring", "ring", "-1");
	USAGE_ERROR("ring", "ring", "65536");
	USAGE_ERROR("ring", "ring", "1", "x");
	USAGE_ERROR("ring", "ring", "1", "2", "3");
	USAGE_ERROR("ring", "ring", "all");
	USAGE_ERROR("kick", "kick");
	USAGE_ERROR("kick", "kick", "1", "2");
	USAGE_ERROR("kick", "kick", "one");
	USAGE_ERROR("watch", "watch", "--count");
	USAGE_ERROR("watch", "watch", "--count", "x");
	USAGE_ERROR("watch", "watch", "--timeout", "0");
	USAGE_ERROR("watch", "watch", "--timeout", "soon");
	USAGE_ERROR("watch", "watch", "now");
	USAGE_ERROR("dump", "dump", "--offset", "x");
	USAGE_ERROR("dump", "dump", "--offset", "-1");
	USAGE_ERROR("dump", "dump", "--length", "1Q");
	USAGE_ERROR("dump", "dump", "--length", "99999999999999999999");
	USAGE_ERROR("dump", "dump", "--offset", "17179869184T");
	USAGE_ERROR("dump", "dump", "0");
	USAGE_ERROR("read", "read", "--all");
	USAGE_ERROR("read", "read", "10");
	USAGE_ERROR("write", "write", "zz");
	USAGE_ERROR("write", "write", "0xabc");
	USAGE_ERROR("write", "write", "0x");
	USAGE_ERROR("write", "write", "00", "11");
	USAGE_ERROR("write", "write", "--length", "1");
	USAGE_ERROR("write", "write", "--offset", "1X", "00");
	/* The global options after the command are checked as its own. */
	USAGE_ERROR("kick", "kick", "1", "-S", "");
	{
		const char *const a[] = { "dump", "--offset", "q", NULL };

		ck_assert_int_eq(run(&c, a), 2);
		ck_assert_str_eq(proc_stderr(&c),
				 "ivshmem-ctl: invalid offset 'q': give a number (decimal, or hexadecimal with 0x) with an optional K, M, G, T, P or E suffix (powers of 1024; or KiB, MiB, ..., or B), for example 4M\n"
				 "Try 'ivshmem-ctl dump --help' for more information.\n");
		proc_free(&c);
	}

	/* --help for each: status 0, its usage and its options; help CMD
	 * says the same. */
	for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
		const char *const a[] = { cmds[i], "--help", NULL };
		const char *const h[] = { "help", cmds[i], NULL };
		char *usage = g_strdup_printf("Usage: ivshmem-ctl %s [OPTION]...",
					      cmds[i]);
		char *help;

		help = ok_output(a, false);
		ck_assert_contains(help, usage);
		ck_assert_contains(help, "-S, --socket=PATH");
		ck_assert_contains(help, "-C, --control=PATH");
		ck_assert_contains(help, "--json");
		ck_assert_contains(help, "Exit status:");
		for (size_t k = 0; opts[i][k]; k++)
			ck_assert_contains(help, opts[i][k]);
		out = ok_output(h, false);
		ck_assert_str_eq(out, help);
		g_free(out);
		g_free(help);
		g_free(usage);
	}

	/* ivshmem-ctl --help lists every command and -C. */
	out = OUT("--help");
	for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
		char *line = g_strdup_printf("\n  %-10s ", cmds[i]);

		ck_assert_contains(out, line);
		g_free(line);
	}
	ck_assert_contains(out, "-C, --control=PATH");
	g_free(out);
}
END_TEST

START_TEST(test_no_server)
{
	char dir[] = "/tmp/ivshmem-ctl-test-XXXXXX", path[128], ctl[140];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char *const fallback_cmds[] = {
		"info", "peers", "watch", "dump", "read",
	};
	char *err, *want;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(ctl, sizeof(ctl), "%s.ctl", path);

	/* Neither socket: the peer socket is named (the fallback tried it
	 * last). */
	want = g_strdup_printf("ivshmem-ctl: cannot connect to %s: no such file; is ivshmem-server running? (start it with: ivshmem-server -S %s)\n",
			       path, path);
	for (size_t i = 0; i < G_N_ELEMENTS(fallback_cmds); i++) {
		err = FAIL(1, fallback_cmds[i], "-S", path);
		ck_assert_str_eq(err, want);
		g_free(err);
	}
	err = FAIL(1, "ring", "1", "-S", path);
	ck_assert_str_eq(err, want);
	g_free(err);
	err = FAIL(1, "write", "00", "-S", path);
	ck_assert_str_eq(err, want);
	g_free(err);
	g_free(want);
	/* kick cannot fall back; -C names the control socket: it is said. */
	want = g_strdup_printf("ivshmem-ctl: cannot connect to %s: no such file; is ivshmem-server running? (start it with: ivshmem-server -S %s)\n",
			       ctl, path);
	err = FAIL(1, "kick", "1", "-S", path);
	ck_assert_str_eq(err, want);
	g_free(err);
	err = FAIL(1, "peers", "-S", path, "-C", ctl);
	ck_assert_str_eq(err, want);
	g_free(err);
	g_free(want);
	want = g_strdup_printf("ivshmem-ctl: cannot connect to %s/other.ctl: no such file; is ivshmem-server running? (start it with: ivshmem-server -S %s --control=%s/other.ctl)\n",
			       dir, path, dir);
	{
		char other[160];

		snprintf(other, sizeof(other), "%s/other.ctl", dir);
		err = FAIL(1, "-C", other, "info", "-S", path);
		ck_assert_str_eq(err, want);
		g_free(err);
	}
	g_free(want);

	/* Stale socket files nobody listens on. */
	strcpy(sa.sun_path, ctl);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	err = FAIL(1, "peers", "-S", path);
	want = g_strdup_printf("ivshmem-ctl: cannot connect to %s: nobody is listening on it; is ivshmem-server running? (start it with: ivshmem-server -S %s)\n",
			       path, path);
	ck_assert_str_eq(err, want);
	g_free(want);
	g_free(err);
	err = FAIL(1, "kick", "0", "-S", path);
	want = g_strdup_printf("ivshmem-ctl: cannot connect to %s: nobody is listening on it; the server at %s has no control socket (QEMU's server has none, nor has ivshmem-server --no-control), and this command needs one\n",
			       ctl, path);
	ck_assert_str_eq(err, want);
	g_free(want);
	g_free(err);
	unlink(ctl);
	unlink(path);
	rmdir(dir);

	/* A path too long for a socket address. */
	{
		const char *const a[] = { "peers", "-S",
			"/tmp/a-socket-path-that-is-far-too-long-for-sun-path-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			NULL };
		struct proc c;

		ck_assert_int_eq(run(&c, a), 2);
		ck_assert_contains(proc_stderr(&c), "too long");
		proc_free(&c);
	}
}
END_TEST

/* ---- permissions ----------------------------------------------------------- */

#define NOBODY 65534

/* Run ivshmem-ctl args as user and group NOBODY (we are root); its exit
 * status, with its stdout and stderr together in *out (g_free it). */
static int run_as_nobody(const char *const *args, char **out)
{
	GString *buf = g_string_new(NULL);
	double deadline = now_seconds() + TWAIT_MS / 1000.0;
	const char **argv;
	int fds[2], status;
	bool hung = false;
	char *copy;
	size_t n = 0;
	pid_t pid;

	while (args[n])
		n++;
	argv = g_new0(const char *, n + 2);
	/* A copy nobody can run wherever the build is. */
	argv[0] = copy = tprog_copy(proc_ctl_path());
	memcpy(argv + 1, args, n * sizeof(*args));
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
		    setuid(NOBODY) < 0)
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	g_free(argv);
	close(fds[1]);
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		char b[4096];
		ssize_t r;
		int left = (int)((deadline - now_seconds()) * 1000);

		if (left <= 0 || poll(&p, 1, left) != 1) {
			kill(pid, SIGKILL);
			hung = true;
			break;
		}
		r = read(fds[0], b, sizeof(b));
		if (r <= 0)
			break;
		g_string_append_len(buf, b, r);
	}
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	tprog_copy_remove(copy);
	ck_assert_msg(!hung, "ivshmem-ctl did not finish");
	*out = g_string_free(buf, FALSE);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_permission)
{
	const char *const args[] = { "--control-group", "65534", NULL };
	struct tserver *s = START(NULL), *g;
	char ctl[160], *err, *want;

	ctl_path(s, ctl, sizeof(ctl));
	want = g_strdup_printf("ivshmem-ctl: cannot connect to %s: permission denied; the control socket is only for the server's user, unless the server was started with --control-group=GROUP for a group of yours\n",
			       ctl);
	if (getuid() != 0) {
		/* Its mode 0600 does not stop us, its owner; 0 does. */
		ck_assert_int_eq(chmod(ctl, 0), 0);
		err = FAIL(1, "peers", "-S", s->sock);
		ck_assert_str_eq(err, want);
		g_free(err);
		g_free(want);
		tserver_stop_ok(s);
		return;
	}
	/* Another user may enter the dir, but not use the socket (0600). */
	ck_assert_int_eq(chmod(s->dir, 0711), 0);
	{
		const char *const a[] = { "peers", "-S", s->sock, NULL };

		ck_assert_int_eq(run_as_nobody(a, &err), 1);
		ck_assert_str_eq(err, want);
		g_free(err);
	}
	g_free(want);
	tserver_stop_ok(s);

	/* With --control-group, the group may. */
	g = tserver_start_ok(args);
	ck_assert_int_eq(chmod(g->dir, 0711), 0);
	{
		const char *const a[] = { "info", "--json", "-S", g->sock, NULL };
		JsonNode *node;
		JsonObject *o;

		ck_assert_int_eq(run_as_nobody(a, &err), 0);
		o = json_line(err, &node);
		ck_assert_str_eq(str_member(o, "socket"), g->sock);
		json_node_unref(node);
		g_free(err);
	}
	tserver_stop_ok(g);
}
END_TEST

/* ---- without a control socket: joining as a peer -------------------------- */

/* A server with two vectors and no control socket, and two library peers
 * (IDs 0 and 1): ivshmem-ctl joins as a peer. ctl: the path a control
 * socket would have. */
static struct tserver *fallback_start(struct trec **a, struct trec **b,
				      char *ctl, size_t size)
{
	struct tserver *s = START("-n", "2", "--no-control", NULL);

	*a = peer_join(s, 2);
	*b = peer_join(s, 2);
	ctl_path(s, ctl, size);
	ck_assert_int_eq(access(ctl, F_OK), -1);
	return s;
}

static void fallback_stop(struct tserver *s, struct trec *a, struct trec *b)
{
	peer_free(a);
	peer_free(b);
	tserver_stop_ok(s);
}

/* With -C, ivshmem-ctl does not fall back: that socket or nothing, and
 * it says a server may be there. */
START_TEST(no_fallback_with_control_path)
{
	struct trec *a, *b;
	char ctl[160];
	struct tserver *s = fallback_start(&a, &b, ctl, sizeof(ctl));
	char *out, *note;

	out = FAIL(1, "peers", "-S", s->sock, "-C", ctl);
	note = g_strdup_printf("ivshmem-ctl: cannot connect to %s: no such file; a server may be at %s, but without this control socket (ivshmem-server has its own where its --control says, %s.ctl by default, unless --no-control)\n",
			       ctl, s->sock, s->sock);
	ck_assert_str_eq(out, note);
	g_free(note);
	g_free(out);

	/* That socket or nothing: no joining. */
	out = FAIL(1, "peers", "-S", s->sock, "-C", ctl);
	ck_assert_contains(out, "cannot connect to");
	ck_assert_contains(out, ctl);
	ck_assert(!strstr(out, "joining"));
	g_free(out);
	fallback_stop(s, a, b);
}
END_TEST

/* peers: the others (not its own ID), what a peer cannot know as '-';
 * one sentence on stderr says what it did. */
START_TEST(fallback_peers)
{
	struct trec *a, *b;
	char ctl[160];
	struct tserver *s = fallback_start(&a, &b, ctl, sizeof(ctl));
	unsigned fa;
	struct proc c;
	char *note, **lines;

	fa = a->nevs;
	ck_assert_int_eq(RUN(&c, "peers", "-S", s->sock), 0);
	note = g_strdup_printf("ivshmem-ctl: no control socket at %s (no such file: QEMU's server has none): joining the server at %s as a peer to list the peers; the other peers see it join and leave\n",
			       ctl, s->sock);
	ck_assert_str_eq(proc_stderr(&c), note);
	lines = g_strsplit(c.buf->str, "\n", -1);
	ck_assert_msg(g_strv_length(lines) == 4, "%s", c.buf->str);
	ck_assert_str_eq(lines[1], " 0        2    -    -    -       -  -");
	ck_assert_str_eq(lines[2], " 1        2    -    -    -       -  -");
	g_strfreev(lines);
	proc_free(&c);
	/* It joined (as ID 2) and left. */
	ck_assert_msg(wait_id(a, EV_JOINED, 2, fa, TWAIT_MS), "no join seen");
	ck_assert_msg(wait_id(a, EV_LEFT, 2, fa, TWAIT_MS), "no leave seen");
	g_free(note);
	fallback_stop(s, a, b);
}
END_TEST

/* peers --json: via a peer, what a peer cannot know as null. */
START_TEST(fallback_peers_json)
{
	struct trec *a, *b;
	char ctl[160];
	struct tserver *s = fallback_start(&a, &b, ctl, sizeof(ctl));
	struct proc c;
	JsonObject *o, *p;
	JsonNode *node;
	JsonArray *list;

	ck_assert_int_eq(RUN(&c, "peers", "-S", s->sock, "--json"), 0);
	ck_assert_contains(proc_stderr(&c), "joining the server at");
	o = json_line(c.buf->str, &node);
	ck_assert(bool_member(o, "ok"));
	ck_assert_str_eq(str_member(o, "command"), "peers");
	ck_assert_str_eq(str_member(o, "via"), "peer");
	ck_assert_int_eq(int_member(o, "vectors"), 2);
	list = json_object_get_array_member(o, "peers");
	ck_assert_uint_eq(json_array_get_length(list), 2);
	for (guint i = 0; i < 2; i++) {
		p = json_array_get_object_element(list, i);
		ck_assert_int_eq(int_member(p, "id"), i);
		ck_assert_int_eq(int_member(p, "vectors"), 2);
		ck_assert(is_null(p, "pid") && is_null(p, "uid") &&
			  is_null(p, "gid") && is_null(p, "queued") &&
			  is_null(p, "connected_at") &&
			  is_null(p, "connected_for"));
	}
	json_node_unref(node);
	proc_free(&c);
	fallback_stop(s, a, b);
}
END_TEST

/* ring reaches the library peer, on that vector only. */
START_TEST(fallback_ring)
{
	struct trec *a, *b;
	char ctl[160];
	struct tserver *s = fallback_start(&a, &b, ctl, sizeof(ctl));
	unsigned fa, fb;
	struct proc c;

	fa = a->nevs;
	fb = b->nevs;
	ck_assert_int_eq(RUN(&c, "ring", "-S", s->sock, "1", "1"), 0);
	ck_assert_str_eq(c.buf->str, "rang peer 1 vector 1\n");
	ck_assert_contains(proc_stderr(&c), "as a peer to ring;");
	proc_free(&c);
	ck_assert_uint_eq(doorbells_now(b, fb), 2);
	ck_assert_uint_eq(doorbells_now(a, fa), 0);
	fb = b->nevs;
	ck_assert_int_eq(RUN(&c, "ring", "-S", s->sock, "0", "--json"), 0);
	ck_assert_str_eq(c.buf->str, "{\"ok\":true,\"command\":\"ring\",\"peer\":0,\"vectors\":[0,1],\"via\":\"peer\"}\n");
	proc_free(&c);
	ck_assert_uint_eq(doorbells_now(a, fa), 3);
	ck_assert_uint_eq(doorbells_now(b, fb), 0);
	/* Errors as a peer sees them. */
	ck_assert_int_eq(RUN(&c, "ring", "-S", s->sock, "7"), 1);
	ck_assert_contains(proc_stderr(&c), "ivshmem-ctl: no peer 7 is connected\n");
	proc_free(&c);
	ck_assert_int_eq(RUN(&c, "ring", "-S", s->sock, "0", "2"), 1);
	ck_assert_contains(proc_stderr(&c), "ivshmem-ctl: peer 0 has no vector 2 (it has 2)\n");
	proc_free(&c);
	fallback_stop(s, a, b);
}
END_TEST

/* kick cannot: it says so. */
START_TEST(fallback_kick_refused)
{
	struct trec *a, *b;
	char ctl[160];
	struct tserver *s = fallback_start(&a, &b, ctl, sizeof(ctl));
	char *out;

	out = FAIL(1, "kick", "-S", s->sock, "0");
	ck_assert_contains(out, "cannot connect to");
	ck_assert_contains(out, ctl);
	ck_assert_contains(out, "no control socket");
	ck_assert_contains(out, "this command needs one");
	g_free(out);
	ck_assert_uint_eq(trec_count(a, EV_DISCONNECTED, 0), 0);
	fallback_stop(s, a, b);
}
END_TEST

/* info: what a peer knows. */
START_TEST(fallback_info)
{
	struct trec *a, *b;
	char ctl[160];
	struct tserver *s = fallback_start(&a, &b, ctl, sizeof(ctl));
	struct proc c;
	JsonObject *o, *p;
	JsonNode *node;

	ck_assert_int_eq(RUN(&c, "info", "-S", s->sock, "--json"), 0);
	o = json_line(c.buf->str, &node);
	ck_assert_str_eq(str_member(o, "via"), "peer");
	ck_assert(is_null(o, "pid") && is_null(o, "version"));
	ck_assert_str_eq(str_member(o, "socket"), s->sock);
	p = json_object_get_object_member(o, "shm");
	ck_assert_str_eq(str_member(p, "kind"), "posix");
	ck_assert_str_eq(str_member(p, "name"), s->shm_name);
	ck_assert_int_eq(int_member(p, "size"), SHM_SIZE);
	ck_assert(!bool_member(p, "sealed"));
	ck_assert_int_eq(int_member(o, "vectors"), 2);
	ck_assert_int_eq(int_member(o, "peers"), 2);
	json_node_unref(node);
	proc_free(&c);
	ck_assert_int_eq(RUN(&c, "info", "-S", s->sock), 0);
	ck_assert_contains(c.buf->str, "\npid          -\n");
	ck_assert_contains(c.buf->str, "\nshm-sealed   no: any peer can shrink it\n");
	ck_assert_contains(c.buf->str, "\nshm-size     4194304 (4 MiB)\n");
	proc_free(&c);
	fallback_stop(s, a, b);
}
END_TEST

/* The shared memory through the fd a peer gets. */
START_TEST(fallback_shared_memory)
{
	struct trec *a, *b;
	char ctl[160];
	struct tserver *s = fallback_start(&a, &b, ctl, sizeof(ctl));
	struct proc c;
	uint8_t *shm;

	ck_assert_int_eq(ivshmem_peer_get_shm(a->peer, (void **)&shm, NULL), 0);
	ck_assert_int_eq(RUN(&c, "write", "-S", s->sock, "--offset", "100",
			     "c0ffee"), 0);
	ck_assert_str_eq(c.buf->str, "wrote 3 bytes at offset 100\n");
	ck_assert_contains(proc_stderr(&c), "as a peer to write into the shared memory;");
	proc_free(&c);
	ck_assert_mem_eq(shm + 100, "\xc0\xff\xee", 3);
	memcpy(shm + 200, "xyz", 3);
	ck_assert_int_eq(RUN(&c, "read", "-S", s->sock, "--offset", "200",
			     "--length", "3"), 0);
	ck_assert_uint_eq(c.buf->len, 3);
	ck_assert_mem_eq(c.buf->str, "xyz", 3);
	proc_free(&c);
	ck_assert_int_eq(RUN(&c, "dump", "-S", s->sock, "--offset", "96",
			     "--length", "8"), 0);
	ck_assert_str_eq(c.buf->str, "00000060  00 00 00 00 c0 ff ee 00                           |........|\n00000068\n");
	proc_free(&c);
	fallback_stop(s, a, b);
}
END_TEST

/* watch: the others joining and leaving, as a peer sees them. */
START_TEST(fallback_watch)
{
	struct trec *a, *b;
	char ctl[160];
	struct tserver *s = fallback_start(&a, &b, ctl, sizeof(ctl));
	struct proc w;
	struct trec *x;
	int id;

	WATCH(&w, s, "--count", "2");
	EXPECT(&w, "watching peers=0,1");
	x = peer_join(s, 2);
	id = x->id;
	EXPECT(&w, "join id=%d vectors=2 peers=3", id);
	peer_free(x);
	EXPECT(&w, "leave id=%d peers=2", id);
	EXPECT_EXIT(&w, 0);
	proc_free(&w);
	fallback_stop(s, a, b);
}
END_TEST

/* The server goes away under a watch: 1, and a sentence. */
START_TEST(fallback_watch_server_gone)
{
	struct trec *a, *b;
	char ctl[160];
	struct tserver *s = fallback_start(&a, &b, ctl, sizeof(ctl));
	char *want = g_strdup_printf("disconnected from %s: ", s->sock);
	struct proc w;

	WATCH(&w, s);
	EXPECT(&w, "watching peers=0,1");
	tserver_stop_ok(s);
	EXPECT_EXIT(&w, 1);
	ck_assert_contains(proc_stderr(&w), want);
	g_free(want);
	proc_free(&w);
	peer_free(a);
	peer_free(b);
}
END_TEST

/* ---- runner ---------------------------------------------------------------- */

/* A control socket at ctl that answers one request with `reply` (its
 * newline added) and then waits for the client to close: a child
 * process, reaped by the caller. */
static pid_t fake_control(const char *ctl, const char *reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	ck_assert_int_ge(lfd, 0);
	ck_assert_uint_lt(strlen(ctl), sizeof(sa.sun_path));
	strcpy(sa.sun_path, ctl);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = accept(lfd, NULL, NULL);
		char c;

		alarm(TWAIT_MS / 1000);
		/* The request, up to its newline; then the reply. */
		while (fd >= 0 && read(fd, &c, 1) == 1 && c != '\n')
			;
		if (fd >= 0) {
			(void)!write(fd, reply, strlen(reply));
			(void)!write(fd, "\n", 1);
			while (read(fd, &c, 1) > 0)
				;
		}
		_exit(0);
	}
	close(lfd);
	return pid;
}

/* A control socket sending what the server itself refuses (json-glib
 * takes some of it, and leaks for some): ivshmem-ctl refuses it, saying
 * why, and exits 1. */
START_TEST(hostile_control_replies)
{
	static const struct {
		const char *reply, *why;
	} bad[] = {
		{ "{\"ok\":true,\"command\":\"info\"}{\"ok\":true}",
		  "not one JSON value (it has more than one JSON value)" },
		{ "{\"ok\":true,\"command\":\"info\",\"x\":\"\\ud83d\\u0041\"}",
		  "not one JSON value (it has an unpaired surrogate" },
		{ "{'ok':true,'command':'info'}", "not one JSON value" },
		{ "{\"ok\":true,\"command\":\"info\",\"x\":\"\xff\"}",
		  "not valid UTF-8" },
	};
	char dir[] = "/tmp/ivshmem-ctl-test-XXXXXX", path[128], ctl[140];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(ctl, sizeof(ctl), "%s.ctl", path);
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		pid_t pid = fake_control(ctl, bad[i].reply);
		char *err = FAIL(1, "info", "-S", path);

		ck_assert_msg(strstr(err, "the server sent a line that is") &&
			      strstr(err, bad[i].why), "%s: %s", bad[i].reply,
			      err);
		g_free(err);
		ck_assert_int_eq(proc_wait_exit(pid, TWAIT_MS), 0);
		ck_assert_int_eq(unlink(ctl), 0);
	}
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc;

	tc = tcase_with("control", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, test_info);
	tcase_add_test(tc, test_peers);
	tcase_add_test(tc, test_ring);
	tcase_add_test(tc, test_ring_kick_errors);
	tcase_add_test(tc, test_kick);
	tcase_add_test(tc, watch_reports_each_event);
	tcase_add_test(tc, watch_count_0_is_the_snapshot);
	tcase_add_test(tc, watch_timeout);
	tcase_add_test(tc, watch_sigterm_ends_0);
	tcase_add_test(tc, watch_server_gone_ends_1);
	tcase_add_test(tc, hostile_control_replies);
	suite_add_tcase(s, tc);

	tc = tcase_with("shm", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, read_survives_shrinking);
	tcase_add_test(tc, dump_survives_shrinking);
	tcase_add_test(tc, write_survives_shrinking);
	tcase_add_test(tc, write_lands_in_the_mapping);
	tcase_add_test(tc, write_from_stdin);
	tcase_add_test(tc, read_raw_and_json);
	tcase_add_test(tc, read_whole_by_default);
	tcase_add_test(tc, dump_as_hexdump_c);
	tcase_add_test(tc, last_bytes_both_ways);
	tcase_add_test(tc, out_of_range_refused);
	tcase_add_test(tc, json_bound_64_mib);
	suite_add_tcase(s, tc);

	tc = tcase_with("process", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, test_usage);
	tcase_add_test(tc, test_no_server);
	tcase_add_test(tc, test_permission);
	tcase_add_test(tc, no_fallback_with_control_path);
	tcase_add_test(tc, fallback_peers);
	tcase_add_test(tc, fallback_peers_json);
	tcase_add_test(tc, fallback_ring);
	tcase_add_test(tc, fallback_kick_refused);
	tcase_add_test(tc, fallback_info);
	tcase_add_test(tc, fallback_shared_memory);
	tcase_add_test(tc, fallback_watch);
	tcase_add_test(tc, fallback_watch_server_gone);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_tracked_suite(ctl_suite());
}
