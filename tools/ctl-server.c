/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl info, peers, ring, kick and watch: requests on the server's
 * control socket (one JSON object per line each way), and the connection
 * they share with ctl-shm.c. A server with no control socket (QEMU's) is
 * joined as a peer instead, by the commands that can make do with what a
 * peer sees; the replies then have the same shape.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "ctl.h"
#include "ivshmem.h"

/* How long a reply, or a peer's greeting, may take. */
#define REPLY_TIMEOUT_MS 10000
#define READY_TIMEOUT_MS 10000
/* A request line, newline included (the server's limit). */
#define MAX_REQUEST 4096
/* A reply line: the peer list of a full server is about 10 MiB. */
#define MAX_REPLY (64u << 20)

struct ctl_conn {
	const struct ctl_opts *opt;

	/* The control socket. */
	int fd;                 /* -1 when joined as a peer */
	GString *in;            /* bytes received, not yet a whole line */
	int rx_fd;              /* an fd that came with them, or -1 */
	bool eof;

	/* Or the server joined as a peer. */
	struct ivshmem_peer *peer;
	bool watching;          /* queue join and leave events */
	GQueue events;          /* JsonNode *, for watch */
	int peer_error;         /* the connection ended with this, or 0 */
};

/* ---- JSON helpers ---------------------------------------------------------- */

JsonNode *ctl_request_new(const char *command)
{
	JsonObject *o = json_object_new();
	JsonNode *n = json_node_new(JSON_NODE_OBJECT);

	json_object_set_string_member(o, "command", command);
	json_node_take_object(n, o);
	return n;
}

static JsonNode *member(JsonObject *o, const char *name)
{
	return o && json_object_has_member(o, name) ?
	       json_object_get_member(o, name) : NULL;
}

/* An integer member: true with *v when there is one. */
static bool get_int(JsonObject *o, const char *name, gint64 *v)
{
	JsonNode *n = member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_INT64)
		return false;
	*v = json_node_get_int(n);
	return true;
}

/* A number member (integer or not). */
static bool get_number(JsonObject *o, const char *name, double *v)
{
	JsonNode *n = member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n))
		return false;
	switch (json_node_get_value_type(n)) {
	case G_TYPE_INT64:
		*v = (double)json_node_get_int(n);
		return true;
	case G_TYPE_DOUBLE:
		*v = json_node_get_double(n);
		return true;
	default:
		return false;
	}
}

static const char *get_str(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(n);
}

static JsonObject *get_obj(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);

	return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static JsonArray *get_array(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);

	return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static JsonNode *builder_take(JsonBuilder *b)
{
	JsonNode *n = json_builder_get_root(b);

	g_object_unref(b);
	return n;
}

static void add_null(JsonBuilder *b, const char *name)
{
	json_builder_set_member_name(b, name);
	json_builder_add_null_value(b);
}

static char *now_iso8601(void)
{
	GDateTime *t = g_date_time_new_now_utc();
	char *s = g_date_time_format_iso8601(t);

	g_date_time_unref(t);
	return s;
}

/* ---- connecting ------------------------------------------------------------ */

/* Connect without blocking (a full backlog is -EAGAIN, not a wait); the
 * socket stays non-blocking. 0 or -errno. */
static int unix_connect(const char *path, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	/* The length was checked by ctl_opts_check(). */
	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	*out = fd;
	return 0;
}

static char *start_hint(const struct ctl_opts *o)
{
	char *def = g_strdup_printf("%s.ctl", o->socket_path);
	char *s;

	if (strcmp(o->control_path, def) != 0)
		s = g_strdup_printf("ivshmem-server -S %s --control=%s",
				    o->socket_path, o->control_path);
	else
		s = g_strdup_printf("ivshmem-server -S %s", o->socket_path);
	g_free(def);
	return s;
}

/* Say why path cannot be reached; control: it is the control socket. */
static int connect_error(const struct ctl_opts *o, const char *path,
			 bool control, int err)
{
	char *hint = start_hint(o);
	int r = ctl_connect_error(path, err, hint, control);

	g_free(hint);
	return r;
}

/* ---- joined as a peer: callbacks --------------------------------------- */

static int peer_count(struct ctl_conn *c)
{
	int n = ivshmem_peer_get_peers(c->peer, NULL, 0);

	return n > 0 ? n : 0;
}

/* A peer object with what a peer knows: its ID and vectors. */
static void add_peer_object(JsonBuilder *b, int id, int vectors, bool full)
{
	json_builder_begin_object(b);
	jsonl_add_int(b, "id", id);
	if (full)
		jsonl_add_int(b, "vectors", vectors);
	add_null(b, "pid");
	add_null(b, "uid");
	add_null(b, "gid");
	if (full) {
		add_null(b, "queued");
		add_null(b, "connected_at");
		add_null(b, "connected_for");
	}
	json_builder_end_object(b);
}

static void queue_event(struct ctl_conn *c, const char *event, int id,
			int vectors)
{
	JsonBuilder *b = json_builder_new();
	char *now = now_iso8601();
	bool join = strcmp(event, "join") == 0;

	json_builder_begin_object(b);
	jsonl_add_string(b, "event", event);
	jsonl_add_string(b, "time", now);
	json_builder_set_member_name(b, "peer");
	add_peer_object(b, id, vectors, join);
	if (!join)
		add_null(b, "reason");
	jsonl_add_int(b, "peers", peer_count(c));
	jsonl_add_string(b, "via", "peer");
	json_builder_end_object(b);
	g_queue_push_tail(&c->events, builder_take(b));
	g_free(now);
}

static void on_joined(void *user, struct ivshmem_peer *peer, int id,
		      unsigned vectors)
{
	struct ctl_conn *c = user;

	/* Those already there are in the watch reply. */
	if (c->watching)
		queue_event(c, "join", id, (int)vectors);
}

static void on_left(void *user, struct ivshmem_peer *peer, int id)
{
	struct ctl_conn *c = user;

	if (c->watching)
		queue_event(c, "leave", id, 0);
}

static void on_disconnected(void *user, struct ivshmem_peer *peer, int error)
{
	struct ctl_conn *c = user;

	c->peer_error = error;
}

static void on_log(void *user, int priority, const char *fmt, va_list ap)
{
	struct ctl_conn *c = user;

	if (priority > IVSHMEM_LOG_WARNING && !c->opt->verbose)
		return;
	fflush(stdout);
	fputs("ivshmem-ctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static int join_as_peer(struct ctl_conn *c, const char *fallback, int err)
{
	const struct ctl_opts *o = c->opt;
	/* Nothing is mapped: the shm commands map the fd themselves. */
	const struct ivshmem_peer_config config = {
		.flags = IVSHMEM_PEER_NO_MAP,
	};
	const struct ivshmem_peer_ops ops = {
		.joined = on_joined,
		.left = on_left,
		.disconnected = on_disconnected,
		.log = on_log,
	};
	int r;

	r = ivshmem_peer_new(&config, &ops, c, &c->peer);
	if (r < 0) {
		ctl_error("cannot create a peer: %s", g_strerror(-r));
		return CTL_EXIT_FAILURE;
	}
	r = ivshmem_peer_connect(c->peer, o->socket_path);
	if (r < 0)
		return connect_error(o, o->socket_path, false, r);
	ctl_error("no control socket at %s (%s): joining the server at %s as a peer %s; the other peers see it join and leave",
		  o->control_path,
		  err == -ENOENT ? "no such file: QEMU's server has none" :
		  "nobody is listening on it", o->socket_path, fallback);
	r = ivshmem_peer_wait_ready(c->peer, READY_TIMEOUT_MS);
	if (r == -ETIMEDOUT) {
		ctl_error("timed out after %d s waiting for the greeting of the server at %s",
			  READY_TIMEOUT_MS / 1000, o->socket_path);
		return CTL_EXIT_FAILURE;
	}
	if (r < 0) {
		ctl_error("joining the server at %s failed: %s",
			  o->socket_path, ivshmem_strerror(r));
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

static bool is_socket(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int ctl_conn_open(const struct ctl_opts *o, const char *fallback,
		  struct ctl_conn **out)
{
	struct ctl_conn *c = g_new0(struct ctl_conn, 1);
	int r, status;

	c->opt = o;
	c->fd = -1;
	c->rx_fd = -1;
	c->in = g_string_new(NULL);
	g_queue_init(&c->events);

	r = unix_connect(o->control_path, &c->fd);
	if (r == 0) {
		*out = c;
		return CTL_EXIT_OK;
	}
	if (r != -ENOENT && r != -ECONNREFUSED) {
		status = connect_error(o, o->control_path, true, r);
	} else if (fallback && !o->control_given) {
		status = join_as_peer(c, fallback, r);
	} else if (is_socket(o->socket_path) && o->control_given) {
		ctl_error("cannot connect to %s: %s; a server may be at %s, but without this control socket (ivshmem-server has its own where its --control says, %s.ctl by default, unless --no-control)",
			  o->control_path,
			  r == -ENOENT ? "no such file" :
			  "nobody is listening on it", o->socket_path,
			  o->socket_path);
		status = CTL_EXIT_FAILURE;
	} else if (is_socket(o->socket_path)) {
		/* A server without a control socket, most likely. */
		ctl_error("cannot connect to %s: %s; the server at %s has no control socket (QEMU's server has none, nor has ivshmem-server --no-control), and this command needs one",
			  o->control_path,
			  r == -ENOENT ? "no such file" :
			  "nobody is listening on it", o->socket_path);
		status = CTL_EXIT_FAILURE;
	} else {
		status = connect_error(o, o->control_path, true, r);
	}
	if (status == CTL_EXIT_OK)
		*out = c;
	else
		ctl_conn_close(c);
	return status;
}

void ctl_conn_close(struct ctl_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	if (c->rx_fd >= 0)
		close(c->rx_fd);
	g_string_free(c->in, TRUE);
	ivshmem_peer_free(c->peer);
	g_queue_clear_full(&c->events, (GDestroyNotify)json_node_unref);
	g_free(c);
}

/* ---- the control socket: lines in and out ------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int ms_left(double deadline)
{
	double left = deadline - now();

	return left <= 0 ? 0 : (int)ceil(left * 1000);
}

/* 0, or CTL_EXIT_FAILURE after saying why. */
static int send_request(struct ctl_conn *c, JsonNode *req)
{
	double deadline = now() + REPLY_TIMEOUT_MS / 1000.0;
	size_t len, off = 0;
	char *line = jsonl_line(req, &len);
	int status = CTL_EXIT_OK;

	if (len > MAX_REQUEST) {
		/* Only numbers and fixed words go in: never in practice. */
		ctl_error("the request is longer than %d bytes", MAX_REQUEST);
		status = CTL_EXIT_FAILURE;
	}
	while (status == CTL_EXIT_OK && off < len) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		ssize_t n = send(c->fd, line + off, len - off,
				 MSG_NOSIGNAL);

		if (n >= 0) {
			off += (gsize)n;
		} else if (errno == EAGAIN) {
			if (poll(&p, 1, ms_left(deadline)) == 0) {
				ctl_error("%s takes no request (timed out after %d s)",
					  c->opt->control_path,
					  REPLY_TIMEOUT_MS / 1000);
				status = CTL_EXIT_FAILURE;
			}
		} else if (errno != EINTR) {
			ctl_error("cannot send to %s: %s", c->opt->control_path,
				  errno == EPIPE || errno == ECONNRESET ?
				  "the server closed the connection" :
				  g_strerror(errno));
			status = CTL_EXIT_FAILURE;
		}
	}
	g_free(line);
	return status;
}

/* Read what is there (once). 0, -EAGAIN, or -errno after saying why. */
static int receive(struct ctl_conn *c)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctrl;
	char buf[65536];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctrl.buf,
		.msg_controllen = sizeof(ctrl.buf),
	};
	ssize_t n;

	do {
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN)
			return -EAGAIN;
		if (errno == ECONNRESET) {
			c->eof = true;
			return 0;
		}
		ctl_error("cannot read from %s: %s", c->opt->control_path,
			  g_strerror(errno));
		return -errno;
	}
	/* Keep the first fd; close any other (a reply carries one at most:
	 * the truncated rest the kernel closed). */
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h;
	     h = CMSG_NXTHDR(&msg, h)) {
		size_t nfd;
		int *fds = (int *)(void *)CMSG_DATA(h);

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, fds + i, sizeof(fd));
			if (c->rx_fd < 0)
				c->rx_fd = fd;
			else
				close(fd);
		}
	}
	if (n == 0)
		c->eof = true;
	g_string_append_len(c->in, buf, n);
	return 0;
}

/*
 * The next JSON object from the server, waiting up to timeout_ms (0: only
 * what is there). 1 with *out; 0 none in time; -ECONNRESET the server
 * closed the connection (not said); -EPROTO or another -errno after saying
 * why.
 */
static int recv_object(struct ctl_conn *c, int timeout_ms, JsonNode **out)
{
	double deadline = now() + timeout_ms / 1000.0;

	for (;;) {
		char *nl = memchr(c->in->str, '\n', c->in->len);

		if (nl) {
			gsize len = (gsize)(nl - c->in->str);
			char *line = g_strndup(c->in->str, len);
			JsonParser *parser;
			GError *err = NULL;
			JsonNode *root;
			int r = 1;

			g_string_erase(c->in, 0, (gssize)len + 1);
			g_strstrip(line);
			if (!*line) {
				g_free(line);
				continue;
			}
			parser = json_parser_new();
			if (!json_parser_load_from_data(parser, line, -1,
							&err)) {
				ctl_error("the server sent a line that is not JSON (%s)",
					  err->message);
				g_error_free(err);
				r = -EPROTO;
			} else if (!JSON_NODE_HOLDS_OBJECT(
					   root = json_parser_get_root(parser))) {
				ctl_error("the server sent a line that is not a JSON object");
				r = -EPROTO;
			} else {
				*out = json_node_copy(root);
			}
			g_object_unref(parser);
			g_free(line);
			return r;
		}
		if (c->in->len > MAX_REPLY) {
			ctl_error("the server sent a line longer than %u bytes",
				  MAX_REPLY);
			return -EPROTO;
		}
		if (c->eof)
			return -ECONNRESET;

		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = poll(&p, 1, ms_left(deadline));

		if (r < 0 && errno != EINTR) {
			ctl_error("poll: %s", g_strerror(errno));
			return -errno;
		}
		if (r == 0)
			return 0;
		if (r > 0) {
			r = receive(c);
			if (r < 0 && r != -EAGAIN)
				return r;
		}
	}
}

/* ---- joined as a peer: the commands answered from what it knows ---------- */


static JsonNode *reply_end(JsonBuilder *b)
{
	jsonl_add_string(b, "via", "peer");
	json_builder_end_object(b);
	return builder_take(b);
}

static JsonNode *error_reply(const char *command, const char *code,
			     const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static JsonNode *error_reply(const char *command, const char *code,
			     const char *fmt, ...)
{
	JsonBuilder *b;
	va_list ap;

	va_start(ap, fmt);
	b = jsonl_error_new(command, code, fmt, ap);
	va_end(ap);
	jsonl_add_string(b, "via", "peer");
	json_builder_end_object(b);
	return builder_take(b);
}

/* Sets *n; g_free the result. */
static int *other_peers(struct ctl_conn *c, unsigned *n)
{
	int r = ivshmem_peer_get_peers(c->peer, NULL, 0);
	int *ids = NULL;

	/* One thread, no dispatch in between: the count holds. */
	if (r > 0) {
		ids = g_new(int, r);
		r = ivshmem_peer_get_peers(c->peer, ids, (unsigned)r);
	}
	*n = r > 0 ? (unsigned)r : 0;
	return ids;
}

static int own_vectors(struct ctl_conn *c)
{
	int v = ivshmem_peer_get_vectors(c->peer, ivshmem_peer_get_id(c->peer));

	return v > 0 ? v : 0;
}

static void add_peer_list(JsonBuilder *b, struct ctl_conn *c)
{
	unsigned n;
	int *ids = other_peers(c, &n);

	json_builder_set_member_name(b, "peers");
	json_builder_begin_array(b);
	for (unsigned i = 0; i < n; i++)
		add_peer_object(b, ids[i],
				ivshmem_peer_get_vectors(c->peer, ids[i]), true);
	json_builder_end_array(b);
	g_free(ids);
}

/*
 * What the shared memory is, from the link of its fd: a memfd, a POSIX
 * object (in /dev/shm) or a file in a directory. name is NULL, the
 * object's name, or the directory; g_free it.
 */
static const char *shm_kind(int fd, char **name)
{
	char path[64], target[PATH_MAX];
	ssize_t n;
	char *t;

	*name = NULL;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return NULL;
	target[n] = '\0';
	if (g_str_has_prefix(target, "/memfd:"))
		return "memfd";
	t = strstr(target, " (deleted)");
	if (t && t[strlen(" (deleted)")] == '\0')
		*t = '\0';
	if (g_str_has_prefix(target, "/dev/shm/") &&
	    !strchr(target + strlen("/dev/shm/"), '/')) {
		*name = g_strdup(target + strlen("/dev/shm/"));
		return "posix";
	}
	*name = g_path_get_dirname(target);
	return "dir";
}

static JsonNode *peer_info(struct ctl_conn *c)
{
	JsonBuilder *b = jsonl_reply_new("info");
	int fd = ivshmem_peer_get_shm_fd(c->peer);
	uint64_t size = 0;
	const char *kind = NULL;
	char *name = NULL;

	if (fd >= 0)
		kind = shm_kind(fd, &name);
	ivshmem_peer_get_shm(c->peer, NULL, &size);
	add_null(b, "server");
	add_null(b, "version");
	add_null(b, "protocol");
	add_null(b, "pid");
	jsonl_add_string(b, "socket", c->opt->socket_path);
	add_null(b, "control");
	json_builder_set_member_name(b, "shm");
	json_builder_begin_object(b);
	jsonl_add_string(b, "kind", kind);
	jsonl_add_string(b, "name", name);
	jsonl_add_int(b, "size", (gint64)size);
	json_builder_end_object(b);
	jsonl_add_int(b, "vectors", own_vectors(c));
	jsonl_add_int(b, "peers", peer_count(c));
	add_null(b, "max_peers");
	add_null(b, "queue_limit");
	add_null(b, "started_at");
	add_null(b, "uptime");
	g_free(name);
	return reply_end(b);
}

static JsonNode *peer_ring(struct ctl_conn *c, JsonObject *req)
{
	JsonBuilder *b;
	gint64 id, vector = -1;
	int nv, r;

	if (!get_int(req, "peer", &id) || id < 0 || id >= IVSHMEM_MAX_PEERS ||
	    (member(req, "vector") && !get_int(req, "vector", &vector) &&
	     g_strcmp0(get_str(req, "vector"), "all") != 0))
		return error_reply("ring", "invalid", "bad ring request");
	nv = ivshmem_peer_get_vectors(c->peer, (int)id);
	if (nv < 0 || id == ivshmem_peer_get_id(c->peer))
		return error_reply("ring", "no-such-peer",
				   "no peer %d is connected", (int)id);
	if (vector >= nv)
		return error_reply("ring", "no-such-vector",
				   "peer %d has no vector %" G_GINT64_FORMAT
				   " (it has %d)", (int)id, vector, nv);
	b = jsonl_reply_new("ring");
	jsonl_add_int(b, "peer", id);
	json_builder_set_member_name(b, "vectors");
	json_builder_begin_array(b);
	for (int v = vector < 0 ? 0 : (int)vector;
	     v < (vector < 0 ? nv : vector + 1); v++) {
		r = ivshmem_peer_ring(c->peer, (int)id, (unsigned)v);
		if (r < 0) {
			json_node_unref(builder_take(b));
			return error_reply("ring", "failed",
					   "cannot ring vector %d of peer %d: %s",
					   v, (int)id, g_strerror(-r));
		}
		json_builder_add_int_value(b, v);
	}
	json_builder_end_array(b);
	return reply_end(b);
}

static JsonNode *peer_shm(struct ctl_conn *c, int *fd)
{
	JsonBuilder *b;
	int shm = ivshmem_peer_get_shm_fd(c->peer);
	uint64_t size = 0;
	const char *kind = NULL;
	char *name = NULL;

	if (shm < 0 || ivshmem_peer_get_shm(c->peer, NULL, &size) < 0)
		return error_reply("shm", "failed",
				   "the server sent no shared memory");
	*fd = fcntl(shm, F_DUPFD_CLOEXEC, 3);
	if (*fd < 0)
		return error_reply("shm", "failed", "cannot keep the shared-memory fd: %s",
				   g_strerror(errno));
	kind = shm_kind(shm, &name);
	b = jsonl_reply_new("shm");
	jsonl_add_string(b, "kind", kind);
	jsonl_add_string(b, "name", name);
	jsonl_add_int(b, "size", (gint64)size);
	g_free(name);
	return reply_end(b);
}

static JsonNode *peer_call(struct ctl_conn *c, JsonObject *req, int *fd)
{
	const char *command = get_str(req, "command");
	JsonBuilder *b;

	if (g_strcmp0(command, "info") == 0)
		return peer_info(c);
	if (g_strcmp0(command, "ring") == 0)
		return peer_ring(c, req);
	if (g_strcmp0(command, "shm") == 0)
		return peer_shm(c, fd);
	if (g_strcmp0(command, "peers") == 0 ||
	    g_strcmp0(command, "watch") == 0) {
		b = jsonl_reply_new(command);
		if (command[0] == 'p')
			jsonl_add_int(b, "vectors", own_vectors(c));
		add_peer_list(b, c);
		c->watching = command[0] == 'w';
		return reply_end(b);
	}
	return error_reply(command, "unknown-command",
			   "a peer cannot do '%s'", command ? command : "");
}

/* ---- requests ------------------------------------------------------------- */

/* An error reply: say the server's sentence. */
static int reply_error(JsonObject *reply)
{
	const char *msg = get_str(reply, "message");
	const char *code = get_str(reply, "error");

	if (msg)
		ctl_error("%s", msg);
	else
		ctl_error("the server refused the request (%s)",
			  code ? code : "no reason given");
	return CTL_EXIT_FAILURE;
}

int ctl_conn_call(struct ctl_conn *c, JsonNode *request, JsonNode **reply,
		  int *fd)
{
	JsonNode *node = NULL;
	JsonObject *o;
	int status = CTL_EXIT_OK, r;
	gboolean ok;

	if (fd)
		*fd = -1;
	if (c->peer) {
		int pfd = -1;

		node = peer_call(c, json_node_get_object(request), &pfd);
		if (fd)
			*fd = pfd;
		else if (pfd >= 0)
			close(pfd);
	} else {
		status = send_request(c, request);
		if (status == CTL_EXIT_OK) {
			r = recv_object(c, REPLY_TIMEOUT_MS, &node);
			if (r == 0)
				ctl_error("no reply from %s within %d s",
					  c->opt->control_path,
					  REPLY_TIMEOUT_MS / 1000);
			else if (r == -ECONNRESET)
				ctl_error("the server closed %s without a reply",
					  c->opt->control_path);
			if (r <= 0)
				status = CTL_EXIT_FAILURE;
		}
		if (status == CTL_EXIT_OK && fd) {
			*fd = c->rx_fd;
			c->rx_fd = -1;
		}
	}
	json_node_unref(request);
	if (status != CTL_EXIT_OK)
		return status;

	o = json_node_get_object(node);
	ok = member(o, "ok") && JSON_NODE_HOLDS_VALUE(member(o, "ok")) &&
	     json_node_get_value_type(member(o, "ok")) == G_TYPE_BOOLEAN &&
	     json_node_get_boolean(member(o, "ok"));
	if (!ok) {
		status = reply_error(o);
		json_node_unref(node);
		if (fd && *fd >= 0) {
			close(*fd);
			*fd = -1;
		}
		return status;
	}
	*reply = node;
	return CTL_EXIT_OK;
}

/* ---- options -------------------------------------------------------------- */

static void common_help(void)
{
	printf("\n" CTL_COMMON_HELP);
}

static void exit_help(bool fallback)
{
	printf("\n"
"Exit status: 0 on success; 1 on a runtime error (the server cannot be\n"
"reached, or refused the request: its sentence is shown on standard error);\n"
"2 on a usage error.\n");
	if (fallback)
		printf("\n"
"Without a control socket (QEMU's server, or ivshmem-server --no-control)\n"
"and with no -C, it joins the server as a peer instead, and says so on\n"
"standard error; what a peer cannot know is shown as '-' (null in JSON,\n"
"with \"via\":\"peer\").\n");
}

static const struct option common_long_options[] = {
	CTL_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 },
};

/*
 * The options of a command that has none of its own, and its positional
 * arguments (at least min, at most max) into args. CTL_EXIT_OK, -1 after
 * --help, or CTL_EXIT_USAGE after saying why.
 */
static int parse_simple(const char *command, const char *synopsis,
			void (*help)(void), const struct ctl_global *g,
			int argc, char **argv, struct ctl_opts *o, int min,
			int max, char **args)
{
	int c, r;

	ctl_opts_init(o, g);
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_COMMON_SHORTOPTS,
				common_long_options, NULL)) != -1) {
		if (c == 'h') {
			help();
			return -1;
		}
		r = ctl_common_option(command, c, argv, o);
		if (r != CTL_EXIT_OK)
			return CTL_EXIT_USAGE;
	}
	if (argc - optind > max)
		return ctl_usage_error(command, "unexpected argument '%s'%s%s%s",
				       argv[optind + max],
				       synopsis ? ": give '" : "",
				       synopsis ? synopsis : "",
				       synopsis ? "'" : "");
	if (argc - optind < min)
		return ctl_usage_error(command, "missing argument: give '%s'",
				       synopsis);
	for (int i = 0; i < max; i++)
		args[i] = optind + i < argc ? argv[optind + i] : NULL;
	return ctl_opts_check(command, o);
}

/* Exit status of parse_simple's result. */
static int parsed(int r)
{
	return r < 0 ? CTL_EXIT_OK : r;
}

/* ---- text output ---------------------------------------------------------- */

/* "4194304 (4 MiB)"; below 1 KiB only the number. */
static char *human_size(uint64_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB", "EiB" };
	unsigned i = 0;
	double v;

	if (n < 1024)
		return g_strdup_printf("%" PRIu64, n);
	while (i + 1 < G_N_ELEMENTS(units) && n >> (10 * (i + 2)))
		i++;
	if ((n & ((UINT64_C(1) << (10 * (i + 1))) - 1)) == 0)
		return g_strdup_printf("%" PRIu64 " (%" PRIu64 " %s)", n,
				       n >> (10 * (i + 1)), units[i]);
	v = (double)n / (double)(UINT64_C(1) << (10 * (i + 1)));
	return g_strdup_printf("%" PRIu64 " (%.1f %s)", n, v, units[i]);
}

/* "1d 2h 3m 4s", leading zero units left out. */
static char *human_duration(double seconds)
{
	uint64_t t = seconds > 0 && isfinite(seconds) ? (uint64_t)seconds : 0;
	uint64_t d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, s = t % 60;

	if (d)
		return g_strdup_printf("%" PRIu64 "d %" PRIu64 "h %" PRIu64
				       "m %" PRIu64 "s", d, h, m, s);
	if (h)
		return g_strdup_printf("%" PRIu64 "h %" PRIu64 "m %" PRIu64
				       "s", h, m, s);
	if (m)
		return g_strdup_printf("%" PRIu64 "m %" PRIu64 "s", m, s);
	return g_strdup_printf("%" PRIu64 "s", s);
}

/* An ISO 8601 time as local time in format; the string itself if it
 * cannot be read. */
static char *local_time(const char *iso, const char *format)
{
	GDateTime *t = g_date_time_new_from_iso8601(iso, NULL), *l;
	char *s;

	if (!t)
		return g_strdup(iso);
	l = g_date_time_to_local(t);
	s = g_date_time_format(l, format);
	g_date_time_unref(l);
	g_date_time_unref(t);
	return s ? s : g_strdup(iso);
}

/* A member as text: integers and strings as they are, the rest '-'. */
static char *text_of(JsonObject *o, const char *name)
{
	const char *s = get_str(o, name);
	double d;
	gint64 v;

	if (s)
		return g_strdup(s);
	if (get_int(o, name, &v))
		return g_strdup_printf("%" G_GINT64_FORMAT, v);
	if (get_number(o, name, &d))
		return g_strdup_printf("%g", d);
	return g_strdup("-");
}

/* Print reply as JSON, or with text(); the exit status. */
static int print_reply(const struct ctl_opts *o, JsonNode *reply,
		       void (*text)(JsonObject *))
{
	int r;

	if (o->json) {
		r = ctl_print_json(reply);
		if (r < 0) {
			ctl_error("cannot write to standard output: %s",
				  g_strerror(-r));
			return CTL_EXIT_FAILURE;
		}
		return CTL_EXIT_OK;
	}
	text(json_node_get_object(reply));
	return ctl_stdout_status();
}

/* One "key  value" line of info. */
static void info_line(const char *key, const char *value)
{
	printf("%-12s %s\n", key, value);
}

static void info_take(const char *key, char *value)
{
	info_line(key, value);
	g_free(value);
}

static void info_text(JsonObject *r)
{
	JsonObject *shm = get_obj(r, "shm");
	const char *kind = get_str(shm, "kind"), *name = get_str(shm, "name");
	const char *started = get_str(r, "started_at");
	gint64 v;
	double d;

	info_take("server", text_of(r, "server"));
	info_take("version", text_of(r, "version"));
	info_take("protocol", text_of(r, "protocol"));
	info_take("pid", text_of(r, "pid"));
	info_take("socket", text_of(r, "socket"));
	info_take("control", text_of(r, "control"));
	if (kind && name)
		info_take("shm", g_strdup_printf("%s %s", kind, name));
	else
		info_line("shm", kind ? kind : "-");
	if (get_int(shm, "size", &v) && v >= 0)
		info_take("shm-size", human_size((uint64_t)v));
	else
		info_line("shm-size", "-");
	info_take("vectors", text_of(r, "vectors"));
	info_take("peers", text_of(r, "peers"));
	info_take("max-peers", text_of(r, "max_peers"));
	info_take("queue-limit", text_of(r, "queue_limit"));
	if (started)
		info_take("started", local_time(started, "%Y-%m-%d %H:%M:%S %Z"));
	else
		info_line("started", "-");
	if (get_number(r, "uptime", &d))
		info_take("uptime", human_duration(d));
	else
		info_line("uptime", "-");
}

enum { COL_ID, COL_VECTORS, COL_PID, COL_UID, COL_GID, COL_QUEUED,
       COL_CONNECTED, NCOLS };

static void peers_text(JsonObject *r)
{
	static const char *const head[NCOLS] = {
		"ID", "VECTORS", "PID", "UID", "GID", "QUEUED", "CONNECTED",
	};
	static const char *const key[NCOLS - 1] = {
		"id", "vectors", "pid", "uid", "gid", "queued",
	};
	JsonArray *list = get_array(r, "peers");
	guint n = list ? json_array_get_length(list) : 0;
	GPtrArray *cells = g_ptr_array_new_with_free_func(g_free);
	int width[NCOLS];

	for (int k = 0; k < NCOLS; k++) {
		width[k] = (int)strlen(head[k]);
		g_ptr_array_add(cells, g_strdup(head[k]));
	}
	for (guint i = 0; i < n; i++) {
		JsonNode *pn = json_array_get_element(list, i);
		JsonObject *p = JSON_NODE_HOLDS_OBJECT(pn) ?
				json_node_get_object(pn) : NULL;
		const char *at = get_str(p, "connected_at");
		double d;
		char *s;

		for (int k = 0; k < NCOLS - 1; k++)
			g_ptr_array_add(cells, text_of(p, key[k]));
		if (at) {
			char *t = local_time(at, "%Y-%m-%d %H:%M:%S");

			if (get_number(p, "connected_for", &d)) {
				char *age = human_duration(d);

				s = g_strdup_printf("%s (%s ago)", t, age);
				g_free(age);
				g_free(t);
			} else {
				s = t;
			}
		} else {
			s = g_strdup("-");
		}
		g_ptr_array_add(cells, s);
	}
	for (guint i = 0; i < cells->len; i++) {
		int len = (int)g_utf8_strlen(cells->pdata[i], -1);

		if (len > width[i % NCOLS])
			width[i % NCOLS] = len;
	}
	for (guint i = 0; i < cells->len; i++) {
		int k = (int)(i % NCOLS);

		/* Numbers right-aligned, the time as it is. */
		if (k == COL_CONNECTED)
			printf("%s\n", (char *)cells->pdata[i]);
		else
			printf("%*s  ", width[k], (char *)cells->pdata[i]);
	}
	g_ptr_array_unref(cells);
}

/* "0,1,2" from an array of integers. */
static char *int_list(JsonArray *a)
{
	GString *s = g_string_new(NULL);
	guint n = a ? json_array_get_length(a) : 0;

	for (guint i = 0; i < n; i++) {
		JsonNode *e = json_array_get_element(a, i);

		if (JSON_NODE_HOLDS_VALUE(e) &&
		    json_node_get_value_type(e) == G_TYPE_INT64)
			g_string_append_printf(s, "%s%" G_GINT64_FORMAT,
					       s->len ? "," : "",
					       json_node_get_int(e));
	}
	return g_string_free(s, FALSE);
}

static void ring_text(JsonObject *r)
{
	JsonArray *v = get_array(r, "vectors");
	char *peer = text_of(r, "peer"), *list = int_list(v);

	printf("rang peer %s vector%s %s\n", peer,
	       v && json_array_get_length(v) == 1 ? "" : "s", list);
	g_free(peer);
	g_free(list);
}

static void kick_text(JsonObject *r)
{
	char *peer = text_of(r, "peer");

	printf("disconnected peer %s\n", peer);
	g_free(peer);
}

/* ---- info, peers, ring, kick ---------------------------------------------- */

/* Send request, print the reply as JSON or with text(). */
static int request(const struct ctl_opts *o, const char *fallback,
		   JsonNode *req, void (*text)(JsonObject *))
{
	struct ctl_conn *c;
	JsonNode *reply;
	int status;

	status = ctl_conn_open(o, fallback, &c);
	if (status != CTL_EXIT_OK) {
		json_node_unref(req);
		return status;
	}
	status = ctl_conn_call(c, req, &reply, NULL);
	/* Done with the server: a peer leaves before the printing. */
	ctl_conn_close(c);
	if (status != CTL_EXIT_OK)
		return status;
	status = print_reply(o, reply, text);
	json_node_unref(reply);
	return status;
}

#define INFO_FALLBACK "to see what a peer sees"

static void info_help(void)
{
	printf(
"Usage: ivshmem-ctl info [OPTION]...\n"
"Show the server: its version and pid, its sockets, the shared memory\n"
"(kind, name, size), the vector count, the peer count and limits, when it\n"
"started. One 'key  value' line each (a JSON object with --json).\n");
	common_help();
	exit_help(true);
}

int ctl_info_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	int r = parse_simple("info", NULL, info_help, g, argc, argv, &o, 0, 0, NULL);

	if (r != CTL_EXIT_OK)
		return parsed(r);
	return request(&o, INFO_FALLBACK, ctl_request_new("info"), info_text);
}

#define PEERS_FALLBACK "to list the peers"

static void peers_help(void)
{
	printf(
"Usage: ivshmem-ctl peers [OPTION]...\n"
"List the connected peers, one line each under a header:\n"
"  ID VECTORS PID UID GID QUEUED CONNECTED\n"
"PID, UID and GID are the peer process's credentials; QUEUED the messages\n"
"waiting for it in the server; CONNECTED the local time it connected and\n"
"how long ago. With --json: the server's reply, one object.\n"
"Joined as a peer (see below), it leaves its own ID out.\n");
	common_help();
	exit_help(true);
}

int ctl_peers_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	int r = parse_simple("peers", NULL, peers_help, g, argc, argv, &o, 0, 0,
			     NULL);

	if (r != CTL_EXIT_OK)
		return parsed(r);
	return request(&o, PEERS_FALLBACK, ctl_request_new("peers"),
		       peers_text);
}

/* A peer ID argument; CTL_EXIT_USAGE after saying why. */
static int parse_peer(const char *command, const char *s, gint64 *id)
{
	uint64_t v;
	char *shown;

	if (ctl_parse_u64(s, IVSHMEM_MAX_PEERS - 1, &v) == 0) {
		*id = (gint64)v;
		return CTL_EXIT_OK;
	}
	shown = ctl_shorten(s);
	ctl_usage_error(command, "'%s' is not a peer ID: give a number from 0 to %d",
			shown, IVSHMEM_MAX_PEERS - 1);
	g_free(shown);
	return CTL_EXIT_USAGE;
}

#define RING_FALLBACK "to ring"

static void ring_help(void)
{
	printf(
"Usage: ivshmem-ctl ring [OPTION]... PEER [VECTOR|all]\n"
"Ring vector VECTOR of peer PEER, as another peer would; without VECTOR,\n"
"or with 'all', every vector of PEER. Prints 'rang peer PEER vector V'\n"
"(or 'vectors V,V...'). A peer that is not connected or a vector it does\n"
"not have is a runtime error, said in the server's words.\n");
	common_help();
	exit_help(true);
}

int ctl_ring_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	char *args[2];
	JsonNode *req;
	gint64 id;
	uint64_t v = 0;
	bool all;
	int r = parse_simple("ring", "ring PEER [VECTOR|all]", ring_help, g, argc, argv, &o, 1, 2, args);

	if (r != CTL_EXIT_OK)
		return parsed(r);
	if (parse_peer("ring", args[0], &id) != CTL_EXIT_OK)
		return CTL_EXIT_USAGE;
	all = !args[1] || strcmp(args[1], "all") == 0;
	if (!all && ctl_parse_u64(args[1], UINT16_MAX, &v) < 0) {
		char *shown = ctl_shorten(args[1]);

		ctl_usage_error("ring", "'%s' is not a vector: give a number (0 is the first) or 'all'",
				shown);
		g_free(shown);
		return CTL_EXIT_USAGE;
	}
	req = ctl_request_new("ring");
	json_object_set_int_member(json_node_get_object(req), "peer", id);
	if (all)
		json_object_set_string_member(json_node_get_object(req),
					      "vector", "all");
	else
		json_object_set_int_member(json_node_get_object(req),
					   "vector", (gint64)v);
	return request(&o, RING_FALLBACK, req, ring_text);
}

static void kick_help(void)
{
	printf(
"Usage: ivshmem-ctl kick [OPTION]... PEER\n"
"Disconnect peer PEER; the other peers are told it left. Prints\n"
"'disconnected peer PEER'. Needs the server's control socket (a peer\n"
"cannot do this).\n");
	common_help();
	exit_help(false);
}

int ctl_kick_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	char *args[1];
	JsonNode *req;
	gint64 id;
	int r = parse_simple("kick", "kick PEER", kick_help, g, argc, argv, &o, 1, 1, args);

	if (r != CTL_EXIT_OK)
		return parsed(r);
	if (parse_peer("kick", args[0], &id) != CTL_EXIT_OK)
		return CTL_EXIT_USAGE;
	req = ctl_request_new("kick");
	json_object_set_int_member(json_node_get_object(req), "peer", id);
	return request(&o, NULL, req, kick_text);
}

/* ---- watch ---------------------------------------------------------------- */

#define WATCH_FALLBACK "to watch the others join and leave"

static void watch_help(void)
{
	printf(
"Usage: ivshmem-ctl watch [OPTION]...\n"
"Print the peers connected now, then one line per event as it happens:\n"
"  watching peers=ID,ID...\n"
"  join id=ID vectors=V pid=PID uid=UID gid=GID peers=N\n"
"  leave id=ID pid=PID uid=UID gid=GID reason=REASON peers=N\n"
"  refused pid=PID uid=UID gid=GID reason=REASON message=\"SENTENCE\"\n"
"N is the number of peers connected after the event; REASON of a leave is\n"
"closed, protocol, queue-full, error or kicked (a socket error adds\n"
"error=\"SENTENCE\" before peers=), of a refusal full, denied or error. What is\n"
"not known is left out.\n"
"With --json: the server's reply, then each event object as it sent it.\n"
"\n"
"      --count=N          exit (status 0) after N events\n"
"      --timeout=SECONDS  stop after SECONDS (decimals allowed): status 0,\n"
"                         or 1 when --count events had not come by then\n");
	common_help();
	printf("\n"
"It runs until SIGINT, SIGTERM or SIGHUP (status 0), --count events\n"
"(status 0), --timeout, or the server closing the connection (status 1).\n");
	exit_help(true);
}

enum {
	OPT_COUNT = CTL_OPT_OWN,
	OPT_TIMEOUT,
};

static const struct option watch_options[] = {
	CTL_COMMON_LONGOPTS,
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ NULL, 0, NULL, 0 },
};

/* A word the text output needs no quotes for. */
static bool is_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!g_ascii_isalnum(*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

static void out_int(struct ctl_out *out, JsonObject *o, const char *name)
{
	gint64 v;

	if (get_int(o, name, &v) && v >= 0)
		ctl_out_u64(out, name, (uint64_t)v);
}

static void out_string(struct ctl_out *out, JsonObject *o, const char *name)
{
	const char *s = get_str(o, name);

	if (!s)
		return;
	if (is_word(s))
		ctl_out_token(out, name, s);
	else
		ctl_out_str(out, name, s);
}

static void event_text(struct ctl_out *out, JsonObject *ev)
{
	const char *name = get_str(ev, "event");
	JsonObject *peer = get_obj(ev, "peer");

	if (!name)
		return;
	ctl_out_begin(out, is_word(name) ? name : "event");
	if (strcmp(name, "join") == 0 || strcmp(name, "leave") == 0) {
		out_int(out, peer, "id");
		out_int(out, peer, "vectors");
		out_int(out, peer, "pid");
		out_int(out, peer, "uid");
		out_int(out, peer, "gid");
		out_string(out, ev, "reason");
		out_string(out, ev, "error");
		out_int(out, ev, "peers");
	} else if (strcmp(name, "refused") == 0) {
		out_int(out, ev, "pid");
		out_int(out, ev, "uid");
		out_int(out, ev, "gid");
		out_string(out, ev, "reason");
		out_string(out, ev, "message");
	} else {
		/* A later kind: its numbers and strings as they come. */
		JsonObjectIter it;
		const char *k;
		JsonNode *v;

		json_object_iter_init(&it, ev);
		while (json_object_iter_next(&it, &k, &v)) {
			if (strcmp(k, "event") == 0 || strcmp(k, "time") == 0)
				continue;
			out_int(out, ev, k);
			out_string(out, ev, k);
		}
	}
}

static void watching_text(struct ctl_out *out, JsonObject *reply)
{
	JsonArray *list = get_array(reply, "peers");
	guint n = list ? json_array_get_length(list) : 0;
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int));

	for (guint i = 0; i < n; i++) {
		JsonNode *pn = json_array_get_element(list, i);
		gint64 id;

		if (JSON_NODE_HOLDS_OBJECT(pn) &&
		    get_int(json_node_get_object(pn), "id", &id)) {
			int v = (int)id;

			g_array_append_val(ids, v);
		}
	}
	ctl_out_begin(out, "watching");
	ctl_out_ids(out, "peers", (int *)(void *)ids->data, ids->len, false);
	g_array_unref(ids);
}

struct watch {
	const struct ctl_opts *o;
	struct ctl_conn *c;
	struct ctl_out out;
	uint64_t count;         /* --count, or 0 */
	bool counted;           /* --count given */
	uint64_t seen;          /* events printed */
	double timeout;         /* --timeout, or 0 */
	int status;             /* once decided, else -1 */
};

/* Print a reply or event; false when stdout failed. */
static bool watch_print(struct watch *w, JsonNode *node, bool reply)
{
	int r;

	if (w->o->json) {
		r = ctl_print_json(node);
	} else {
		if (reply)
			watching_text(&w->out, json_node_get_object(node));
		else
			event_text(&w->out, json_node_get_object(node));
		r = ctl_out_end(&w->out);
	}
	if (r < 0) {
		ctl_error("cannot write to standard output: %s",
			  g_strerror(-r));
		w->status = CTL_EXIT_FAILURE;
		return false;
	}
	return true;
}

/* Take every event there is. */
static void watch_events(struct watch *w)
{
	struct ctl_conn *c = w->c;

	while (w->status < 0) {
		JsonNode *ev = NULL;
		int r = 1;

		if (c->peer) {
			ev = g_queue_pop_head(&c->events);
			if (!ev) {
				if (c->peer_error) {
					ctl_error("disconnected from %s: %s",
						  w->o->socket_path,
						  ivshmem_strerror(c->peer_error));
					w->status = CTL_EXIT_FAILURE;
				}
				return;
			}
		} else {
			r = recv_object(c, 0, &ev);
			if (r == 0)
				return;
			if (r == -ECONNRESET)
				ctl_error("the server closed the control connection (did it stop?)");
			if (r < 0) {
				w->status = CTL_EXIT_FAILURE;
				return;
			}
		}
		/* Replies to nothing (none are asked) are not events. */
		if (get_str(json_node_get_object(ev), "event") &&
		    watch_print(w, ev, false)) {
			w->seen++;
			if (w->counted && w->seen >= w->count)
				w->status = CTL_EXIT_OK;
		}
		json_node_unref(ev);
	}
}

static void watch_loop(struct watch *w, int sfd)
{
	double deadline = w->timeout > 0 ? now() + w->timeout : 0;
	int fd = w->c->peer ? ivshmem_peer_get_fd(w->c->peer) : w->c->fd;

	/* Events may have come with the reply. */
	watch_events(w);
	while (w->status < 0) {
		struct pollfd p[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};
		int r;

		if (deadline > 0 && ms_left(deadline) == 0) {
			if (w->counted) {
				ctl_error("timed out after %g s with %" PRIu64
					  " of %" PRIu64 " events", w->timeout,
					  w->seen, w->count);
				w->status = CTL_EXIT_FAILURE;
			} else {
				w->status = CTL_EXIT_OK;
			}
			break;
		}
		r = poll(p, 2, deadline > 0 ? ms_left(deadline) : -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ctl_error("poll: %s", g_strerror(errno));
			w->status = CTL_EXIT_FAILURE;
			break;
		}
		if (p[1].revents) {
			/* SIGINT, SIGTERM, SIGHUP: a requested, clean end. */
			w->status = CTL_EXIT_OK;
			break;
		}
		if (p[0].revents) {
			if (w->c->peer)
				ivshmem_peer_dispatch(w->c->peer);
			watch_events(w);
		}
	}
}

int ctl_watch_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	struct watch w = { .o = &o, .status = -1 };
	JsonNode *reply;
	uint64_t v;
	int c, r, sfd = -1;

	ctl_opts_init(&o, g);
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_COMMON_SHORTOPTS,
				watch_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			watch_help();
			return CTL_EXIT_OK;
		case OPT_COUNT:
			if (ctl_parse_u64(optarg, UINT64_MAX, &v) < 0)
				return ctl_usage_error("watch", "invalid event count '%s': give a number",
						       optarg);
			w.count = v;
			w.counted = true;
			break;
		case OPT_TIMEOUT:
			if (ctl_parse_seconds(optarg, &w.timeout) < 0)
				return ctl_usage_error("watch", "invalid timeout '%s': give a positive number of seconds, like 5 or 0.5",
						       optarg);
			break;
		default:
			if (ctl_common_option("watch", c, argv, &o) !=
			    CTL_EXIT_OK)
				return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return ctl_usage_error("watch", "unexpected argument '%s'",
				       argv[optind]);
	r = ctl_opts_check("watch", &o);
	if (r != CTL_EXIT_OK)
		return r;

	/* Signals become readable on a signalfd, so poll() sees them; one
	 * that comes before the loop waits there. */
	sfd = ctl_signalfd();
	if (sfd < 0)
		return CTL_EXIT_FAILURE;
	r = ctl_conn_open(&o, WATCH_FALLBACK, &w.c);
	if (r != CTL_EXIT_OK) {
		close(sfd);
		return r;
	}
	ctl_out_init(&w.out, false);
	r = ctl_conn_call(w.c, ctl_request_new("watch"), &reply, NULL);
	if (r != CTL_EXIT_OK) {
		w.status = r;
	} else {
		if (watch_print(&w, reply, true) && w.counted && !w.count)
			w.status = CTL_EXIT_OK;
		json_node_unref(reply);
		watch_loop(&w, sfd);
	}
	ctl_out_clear(&w.out);
	ctl_conn_close(w.c);
	close(sfd);
	return w.status;
}
