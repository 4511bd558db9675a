/* SPDX-License-Identifier: MIT */
/*
 * The control socket: one JSON object per line in each direction (protocol
 * 1). Requests are parsed with JsonParser, replies and events written with
 * JsonBuilder and JsonGenerator. Every socket is non-blocking and every
 * resource a client can make the server hold is bounded: the request line,
 * the number of clients, the output waiting for each of them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <ev.h>
#include <glib.h>

#include "config.h"
#include "control.h"
#include "json-line.h"

#define MAX_CLIENTS 64
/* A request line, newline included. */
#define LINE_MAX_BYTES 4096
/* Above this much waiting output, a client's requests are not read. */
#define BACKPRESSURE_BYTES (64u << 10)
/* Above this much waiting output from events, a watcher is dropped.
 * Replies do not count: back-pressure bounds them (64 KiB and one more
 * reply), and a large snapshot must not cost its watcher the next event. */
#define EVENT_LIMIT_BYTES (1u << 20)
/* While fds are exhausted, retry accepting this often (seconds). */
#define ACCEPT_RETRY 0.25
/* Clients accepted per wake-up, and bytes read from one client per
 * wake-up: nobody starves the others. */
#define ACCEPT_BATCH 16
#define READ_BUDGET (64u << 10)
#define IOV_BATCH 64

/* A piece of output: one line. */
struct chunk {
	struct chunk *next;
	size_t len, off;        /* off: bytes already sent */
	int fd;                 /* sent with the first byte, or -1; not owned */
	bool event;             /* counts against EVENT_LIMIT_BYTES */
	char data[];
};

struct client {
	struct control *ctl;
	ev_io io;
	int fd;
	int events;             /* what io watches now */
	struct ucred cred;
	bool watching;          /* sent "watch": gets events */
	bool discarding;        /* inside an overlong line */
	bool eof;               /* the client closed its side */
	bool dead;              /* closed, freed once no callback runs */
	bool fd_sent;           /* an shm fd went out (or waits to) */
	char in[LINE_MAX_BYTES];
	size_t in_len;
	struct chunk *head, *tail;
	size_t queued;          /* bytes waiting */
	size_t event_bytes;     /* of which from events */
};

struct control {
	struct ev_loop *loop;
	struct ivshmem_server *srv;
	struct control_info info;   /* strings owned */
	int listen_fd;
	ev_io accept_io;
	ev_timer accept_timer;
	bool accept_paused;
	bool full_logged;
	struct client *clients[MAX_CLIENTS];
	unsigned depth;             /* callbacks running */
	JsonParser *parser;
};

/* ---- small helpers ------------------------------------------------------- */

static void format_time(const struct timespec *ts, char buf[40])
{
	struct tm tm;
	size_t n;

	gmtime_r(&ts->tv_sec, &tm);
	n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 40 - n, ".%06ldZ", ts->tv_nsec / 1000);
}

static double seconds_since(const struct timespec *t, clockid_t clock)
{
	struct timespec now;
	double d;

	clock_gettime(clock, &now);
	d = (double)(now.tv_sec - t->tv_sec) +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e9;
	return d > 0 ? d : 0;
}

static void add_time(JsonBuilder *b, const char *name,
		     const struct timespec *ts)
{
	char buf[40];

	format_time(ts, buf);
	json_builder_set_member_name(b, name);
	json_builder_add_string_value(b, buf);
}

static void add_now(JsonBuilder *b, const char *name)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	add_time(b, name, &now);
}

/* pid, uid, gid: null when SO_PEERCRED did not tell. */
static void add_cred(JsonBuilder *b, pid_t pid, uid_t uid, gid_t gid)
{
	json_builder_set_member_name(b, "pid");
	if (pid == -1)
		json_builder_add_null_value(b);
	else
		json_builder_add_int_value(b, pid);
	json_builder_set_member_name(b, "uid");
	if (uid == (uid_t)-1)
		json_builder_add_null_value(b);
	else
		json_builder_add_int_value(b, uid);
	json_builder_set_member_name(b, "gid");
	if (gid == (gid_t)-1)
		json_builder_add_null_value(b);
	else
		json_builder_add_int_value(b, gid);
}

static void add_peer(JsonBuilder *b, const struct ivshmem_server_peer_info *p)
{
	struct timespec at = {
		.tv_sec = (time_t)(p->connected_ns / 1000000000),
		.tv_nsec = (long)(p->connected_ns % 1000000000),
	};

	json_builder_begin_object(b);
	jsonl_add_int(b, "id", p->id);
	jsonl_add_int(b, "vectors", p->vectors);
	add_cred(b, p->pid, p->uid, p->gid);
	jsonl_add_int(b, "queued", p->queued);
	add_time(b, "connected_at", &at);
	json_builder_set_member_name(b, "connected_for");
	json_builder_add_double_value(b, seconds_since(&at, CLOCK_REALTIME));
	json_builder_end_object(b);
}

/* An array of every connected peer, by ID. */
static void add_peers(struct control *ctl, JsonBuilder *b, const char *name)
{
	int n = ivshmem_server_get_peer_count(ctl->srv);
	int *ids = g_new(int, n > 0 ? n : 1);

	n = ivshmem_server_get_peers(ctl->srv, ids, (unsigned)(n > 0 ? n : 0));
	if (n < 0)
		n = 0;
	json_builder_set_member_name(b, name);
	json_builder_begin_array(b);
	for (int i = 0; i < n; i++) {
		struct ivshmem_server_peer_info p;

		if (ivshmem_server_get_peer(ctl->srv, ids[i], &p) == 0)
			add_peer(b, &p);
	}
	json_builder_end_array(b);
	g_free(ids);
}

/* The builder's object as one line, newline included. */
static char *to_line(JsonBuilder *b, size_t *len)
{
	JsonNode *root = json_builder_get_root(b);
	char *line = jsonl_line(root, len);

	json_node_unref(root);
	return line;
}

/* ---- output -------------------------------------------------------------- */

static void client_close(struct client *c);

static void chunk_free(struct chunk *ch)
{
	g_free(ch);
}

static void client_push(struct client *c, const char *data, size_t len,
			int fd, bool event)
{
	struct chunk *ch;

	if (c->dead)
		return;
	ch = g_malloc(sizeof(*ch) + len);
	ch->next = NULL;
	ch->len = len;
	ch->off = 0;
	ch->fd = fd;
	ch->event = event;
	memcpy(ch->data, data, len);
	if (c->tail)
		c->tail->next = ch;
	else
		c->head = ch;
	c->tail = ch;
	c->queued += len;
	if (event)
		c->event_bytes += len;
}

/* Take n sent bytes off the queue. */
static void client_consumed(struct client *c, size_t n)
{
	while (n > 0) {
		struct chunk *ch = c->head;
		size_t take = ch->len - ch->off;

		if (take > n)
			take = n;
		ch->off += take;
		ch->fd = -1;    /* went with the first byte */
		n -= take;
		c->queued -= take;
		if (ch->event)
			c->event_bytes -= take;
		if (ch->off == ch->len) {
			c->head = ch->next;
			if (!c->head)
				c->tail = NULL;
			chunk_free(ch);
		}
	}
}

/*
 * Send what the socket takes without blocking. A chunk's fd goes with its
 * first byte, so a sendmsg() never carries bytes of an earlier chunk
 * before a chunk with an fd. 0 (all sent or EAGAIN) or a negative errno.
 */
static int client_flush(struct client *c)
{
	while (c->head) {
		struct iovec iov[IOV_BATCH];
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} cmsg;
		struct msghdr msg = { .msg_iov = iov };
		struct chunk *ch = c->head;
		int fd = ch->off == 0 ? ch->fd : -1;
		ssize_t n;

		for (; ch && msg.msg_iovlen < IOV_BATCH; ch = ch->next) {
			if (msg.msg_iovlen > 0 && ch->fd >= 0)
				break;
			iov[msg.msg_iovlen].iov_base = ch->data + ch->off;
			iov[msg.msg_iovlen].iov_len = ch->len - ch->off;
			msg.msg_iovlen++;
		}
		if (fd >= 0) {
			memset(&cmsg, 0, sizeof(cmsg));
			msg.msg_control = cmsg.buf;
			msg.msg_controllen = sizeof(cmsg.buf);
			cmsg.h.cmsg_level = SOL_SOCKET;
			cmsg.h.cmsg_type = SCM_RIGHTS;
			cmsg.h.cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(&cmsg.h), &fd, sizeof(int));
		}
		do {
			n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		client_consumed(c, (size_t)n);
	}
	return 0;
}

/* Watch for reading unless the client is back-pressured or gone, for
 * writing while output waits. */
static void client_update(struct client *c)
{
	int want = 0;

	if (c->dead)
		return;
	if (!c->eof && c->queued <= BACKPRESSURE_BYTES)
		want |= EV_READ;
	if (c->queued > 0)
		want |= EV_WRITE;
	if (want == c->events)
		return;
	ev_io_stop(c->ctl->loop, &c->io);
	c->events = want;
	if (want) {
		ev_io_set(&c->io, c->fd, want);
		ev_io_start(c->ctl->loop, &c->io);
	}
}

/* ---- replies ------------------------------------------------------------- */

struct request {
	struct client *c;
	const char *command;    /* a known command, or NULL */
	JsonObject *obj;
	JsonNode *tag;
	const char *tag_text;   /* the tag as the request wrote it */
	size_t tag_len;
};


/* Close the reply (with the request's tag) and queue it, fd attached. */
static void reply_end(const struct request *rq, JsonBuilder *b, int fd)
{
	size_t len;
	char *line;

	json_builder_end_object(b);
	line = to_line(b, &len);
	g_object_unref(b);
	if (rq->tag_text) {
		/* The tag goes back byte for byte as the request wrote it
		 * (json-glib's copy would not: big integers wrap, some
		 * numbers and strings change), last, before the closing
		 * brace and its newline. */
		GString *g = g_string_new_len(line, (gssize)len);
		gsize at = len >= 2 ? len - 2 : 0;

		g_assert(len >= 3 && line[len - 2] == '}' && line[len - 1] == '\n');
		g_string_insert_len(g, (gssize)at, rq->tag_text,
				    (gssize)rq->tag_len);
		g_string_insert(g, (gssize)at, ",\"tag\":");
		g_free(line);
		len = g->len;
		line = g_string_free(g, FALSE);
	}
	client_push(rq->c, line, len, fd, false);
	g_free(line);
}

G_GNUC_PRINTF(3, 4)
static void reply_error(const struct request *rq, const char *code,
			const char *fmt, ...)
{
	JsonBuilder *b;
	va_list ap;

	va_start(ap, fmt);
	b = jsonl_error_new(rq->command, code, fmt, ap);
	va_end(ap);
	reply_end(rq, b, -1);
}

/* ---- commands ------------------------------------------------------------ */

static const char *shm_kind_str(enum ivshmem_shm_kind k)
{
	switch (k) {
	case IVSHMEM_SHM_POSIX: return "posix";
	case IVSHMEM_SHM_DIR: return "dir";
	case IVSHMEM_SHM_MEMFD: return "memfd";
	}
	return "unknown";
}

static void add_shm(struct control *ctl, JsonBuilder *b)
{
	jsonl_add_string(b, "kind", shm_kind_str(ctl->info.shm_kind));
	jsonl_add_string(b, "name", ctl->info.shm_kind == IVSHMEM_SHM_MEMFD ?
		   NULL : ctl->info.shm_name);
	jsonl_add_int(b, "size", (gint64)ctl->info.shm_size);
	json_builder_set_member_name(b, "sealed");
	json_builder_add_boolean_value(b, ivshmem_shm_sealed(
		ivshmem_server_get_shm_fd(ctl->srv)) == 1);
}

static void cmd_info(const struct request *rq)
{
	struct control *ctl = rq->c->ctl;
	JsonBuilder *b = jsonl_reply_new(rq->command);

	jsonl_add_string(b, "server", "ivshmem-server");
	jsonl_add_string(b, "version", IVSHMEM_VERSION);
	jsonl_add_int(b, "protocol", CONTROL_PROTOCOL);
	jsonl_add_int(b, "pid", getpid());
	jsonl_add_string(b, "socket", ctl->info.socket_path);
	jsonl_add_string(b, "control", ctl->info.control_path);
	json_builder_set_member_name(b, "shm");
	json_builder_begin_object(b);
	add_shm(ctl, b);
	json_builder_end_object(b);
	jsonl_add_int(b, "vectors", ivshmem_server_get_vectors(ctl->srv));
	jsonl_add_int(b, "peers", ivshmem_server_get_peer_count(ctl->srv));
	jsonl_add_int(b, "max_peers", ctl->info.max_peers);
	jsonl_add_int(b, "queue_limit", ctl->info.queue_limit);
	add_time(b, "started_at", &ctl->info.started);
	json_builder_set_member_name(b, "uptime");
	json_builder_add_double_value(b, seconds_since(&ctl->info.started_mono,
						       CLOCK_MONOTONIC));
	reply_end(rq, b, -1);
}

static void cmd_peers(const struct request *rq)
{
	struct control *ctl = rq->c->ctl;
	JsonBuilder *b = jsonl_reply_new(rq->command);

	jsonl_add_int(b, "vectors", ivshmem_server_get_vectors(ctl->srv));
	add_peers(ctl, b, "peers");
	reply_end(rq, b, -1);
}

static void cmd_watch(const struct request *rq)
{
	JsonBuilder *b = jsonl_reply_new(rq->command);

	add_peers(rq->c->ctl, b, "peers");
	reply_end(rq, b, -1);
	rq->c->watching = true;
}

/* Has the client received everything sent to it? */
static bool all_read(const struct client *c)
{
	int unread;

	return c->queued == 0 && ioctl(c->fd, SIOCOUTQ, &unread) == 0 &&
	       unread == 0;
}

static void cmd_shm(const struct request *rq)
{
	struct control *ctl = rq->c->ctl;
	JsonBuilder *b = jsonl_reply_new(rq->command);
	int fd = ivshmem_server_get_shm_fd(ctl->srv);

	/*
	 * An fd in flight counts against the server's user until it is
	 * received (the kernel refuses SCM_RIGHTS with ETOOMANYREFS past
	 * RLIMIT_NOFILE, and peers would be dropped): one unread at a time
	 * per client.
	 */
	if (rq->c->fd_sent && !all_read(rq->c)) {
		g_object_unref(b);
		reply_error(rq, "failed",
			    "the descriptor of the last shm reply on this connection has not been received yet: read it before asking again");
		return;
	}
	rq->c->fd_sent = true;
	add_shm(ctl, b);
	/* The server's own fd: it outlives every client, and sending it
	 * takes no fd of ours however many replies wait. */
	reply_end(rq, b, fd);
}

/* The "peer" argument: 0..65535, or an error reply and -1. */
static int arg_peer(const struct request *rq)
{
	JsonNode *n = json_object_get_member(rq->obj, "peer");
	gint64 v;

	if (!n) {
		reply_error(rq, "invalid",
			    "\"peer\" is missing: give the peer's ID, an integer from 0 to %d",
			    IVSHMEM_MAX_PEERS - 1);
		return -1;
	}
	if (!JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_INT64 ||
	    (v = json_node_get_int(n)) < 0 || v >= IVSHMEM_MAX_PEERS) {
		reply_error(rq, "invalid",
			    "\"peer\" must be an integer from 0 to %d",
			    IVSHMEM_MAX_PEERS - 1);
		return -1;
	}
	return (int)v;
}

static void cmd_ring(const struct request *rq)
{
	struct control *ctl = rq->c->ctl;
	unsigned nvec = (unsigned)ivshmem_server_get_vectors(ctl->srv);
	struct ivshmem_server_peer_info info;
	JsonNode *n;
	JsonBuilder *b;
	gint64 vector = -1;     /* -1: all */
	int peer, r;

	peer = arg_peer(rq);
	if (peer < 0)
		return;
	n = json_object_get_member(rq->obj, "vector");
	if (n && JSON_NODE_HOLDS_VALUE(n) &&
	    json_node_get_value_type(n) == G_TYPE_STRING &&
	    strcmp(json_node_get_string(n), "all") == 0) {
		vector = -1;
	} else if (n && (!JSON_NODE_HOLDS_VALUE(n) ||
			 json_node_get_value_type(n) != G_TYPE_INT64 ||
			 (vector = json_node_get_int(n)) < 0)) {
		reply_error(rq, "invalid",
			    "\"vector\" must be a vector number (an integer from 0) or \"all\"");
		return;
	}
	if (ivshmem_server_get_peer(ctl->srv, peer, &info) < 0) {
		reply_error(rq, "no-such-peer", "no peer with ID %d is connected",
			    peer);
		return;
	}
	if (vector >= (gint64)nvec) {
		reply_error(rq, "no-such-vector",
			    "there is no vector %" G_GINT64_FORMAT ": the server has %u vector%s, numbered from 0",
			    vector, nvec, nvec == 1 ? "" : "s");
		return;
	}

	b = jsonl_reply_new(rq->command);
	jsonl_add_int(b, "peer", peer);
	json_builder_set_member_name(b, "vectors");
	json_builder_begin_array(b);
	for (unsigned v = vector < 0 ? 0 : (unsigned)vector;
	     v < (vector < 0 ? nvec : (unsigned)vector + 1); v++) {
		r = ivshmem_server_ring(ctl->srv, peer, v);
		if (r < 0) {
			g_object_unref(b);
			reply_error(rq, "failed",
				    "cannot ring vector %u of peer %d: %s%s", v,
				    peer, r == -EAGAIN ?
				    "its eventfd counter is full" :
				    g_strerror(-r),
				    vector < 0 && v > 0 ?
				    " (the vectors before it were rung)" : "");
			return;
		}
		json_builder_add_int_value(b, v);
	}
	json_builder_end_array(b);
	reply_end(rq, b, -1);
	if (vector < 0)
		g_info("control client pid %ld rang every vector of peer %d (pid %ld)",
		       (long)rq->c->cred.pid, peer, (long)info.pid);
	else
		g_info("control client pid %ld rang vector %u of peer %d (pid %ld)",
		       (long)rq->c->cred.pid, (unsigned)vector, peer,
		       (long)info.pid);
}

static void cmd_kick(const struct request *rq)
{
	struct control *ctl = rq->c->ctl;
	struct ivshmem_server_peer_info info;
	JsonBuilder *b;
	int peer;

	peer = arg_peer(rq);
	if (peer < 0)
		return;
	if (ivshmem_server_get_peer(ctl->srv, peer, &info) < 0) {
		reply_error(rq, "no-such-peer", "no peer with ID %d is connected",
			    peer);
		return;
	}
	g_message("control client pid %ld (uid %ld) disconnects peer %d (pid %ld)",
		  (long)rq->c->cred.pid, (long)rq->c->cred.uid, peer,
		  (long)info.pid);
	/* The leave event reaches the watchers (this client too) before
	 * this reply: it happened first. */
	if (ivshmem_server_kick(ctl->srv, peer) < 0) {
		reply_error(rq, "no-such-peer", "no peer with ID %d is connected",
			    peer);
		return;
	}
	b = jsonl_reply_new(rq->command);
	jsonl_add_int(b, "peer", peer);
	reply_end(rq, b, -1);
}

static const struct command {
	const char *name;
	void (*run)(const struct request *rq);
} commands[] = {
	{ "info", cmd_info },
	{ "peers", cmd_peers },
	{ "ring", cmd_ring },
	{ "kick", cmd_kick },
	{ "watch", cmd_watch },
	{ "shm", cmd_shm },
};

/* ---- requests ------------------------------------------------------------ */

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* One request line, without its newline. */
static void handle_line(struct client *c, const char *line, size_t len)
{
	struct control *ctl = c->ctl;
	struct request rq = { .c = c };
	GError *err = NULL;
	JsonNode *root, *n;
	const char *name, *why;
	size_t off = 0, tag_len = 0;

	if (blank(line, len))
		return;
	/* NUL bytes fail too: they would cut the line short. */
	if (!g_utf8_validate(line, (gssize)len, NULL)) {
		reply_error(&rq, "parse", "the line is not valid UTF-8");
		return;
	}
	/* Strict JSON first: json-glib would take more, and leak some. */
	why = jsonl_check(line, len);
	if (why) {
		reply_error(&rq, "parse",
			    "the line is not one JSON value this server takes: it has %s; send one object per line, like {\"command\":\"info\"}",
			    why);
		return;
	}
	if (!json_parser_load_from_data(ctl->parser, line, (gssize)len, &err)) {
		reply_error(&rq, "parse", "the line is not valid JSON: %s",
			    err->message);
		g_error_free(err);
		return;
	}
	root = json_parser_get_root(ctl->parser);
	if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
		reply_error(&rq, "invalid",
			    "the request must be a JSON object, like {\"command\":\"info\"}");
		return;
	}
	rq.obj = json_node_get_object(root);
	rq.tag = json_object_get_member(rq.obj, "tag");
	if (rq.tag && !jsonl_member_text(line, len, "tag", &off, &tag_len)) {
		reply_error(&rq, "invalid",
			    "write the member name \"tag\" without escapes, so that it comes back as sent");
		return;
	}
	if (rq.tag) {
		rq.tag_text = line + off;
		rq.tag_len = tag_len;
	}
	n = json_object_get_member(rq.obj, "command");
	if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_STRING) {
		reply_error(&rq, "invalid",
			    "\"command\" must be a string naming the command, like {\"command\":\"info\"}");
		return;
	}
	name = json_node_get_string(n);
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (strcmp(name, commands[i].name) == 0) {
			rq.command = commands[i].name;
			commands[i].run(&rq);
			return;
		}
	}
	reply_error(&rq, "unknown-command",
		    "unknown command \"%s\": the commands are info, peers, ring, kick, watch and shm",
		    name);
}

/* Answer the complete lines read so far, until back-pressure. */
static void handle_input(struct client *c)
{
	size_t start = 0;

	while (!c->dead && start < c->in_len &&
	       c->queued <= BACKPRESSURE_BYTES) {
		char *nl = memchr(c->in + start, '\n', c->in_len - start);

		if (c->discarding) {
			/* The rest of an overlong line, answered already. */
			if (!nl) {
				start = c->in_len;
				break;
			}
			c->discarding = false;
			start = (size_t)(nl - c->in) + 1;
			continue;
		}
		if (!nl) {
			if (start == 0 && c->in_len == sizeof(c->in)) {
				struct request rq = { .c = c };

				reply_error(&rq, "too-long",
					    "the line is longer than %d bytes: it was ignored up to its newline",
					    LINE_MAX_BYTES);
				c->discarding = true;
				start = c->in_len;
			}
			break;
		}
		handle_line(c, c->in + start, (size_t)(nl - (c->in + start)));
		start = (size_t)(nl - c->in) + 1;
	}
	if (c->dead)
		return;
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
}

/* Is a complete line (or an overlong one) waiting in the buffer? */
static bool has_request(const struct client *c)
{
	return c->in_len == sizeof(c->in) ||
	       memchr(c->in, '\n', c->in_len) != NULL;
}

/* Answer what is buffered, then read while there is room. */
static void client_input(struct client *c)
{
	size_t budget = READ_BUDGET;

	handle_input(c);
	while (!c->dead && !c->eof && budget > 0 &&
	       c->queued <= BACKPRESSURE_BYTES) {
		ssize_t n;

		do {
			n = recv(c->fd, c->in + c->in_len,
				 sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		} while (n < 0 && errno == EINTR);
		if (n < 0) {
			if (errno != EAGAIN)
				client_close(c);
			return;
		}
		if (n == 0) {
			c->eof = true;
			return;
		}
		c->in_len += (size_t)n;
		budget -= (size_t)n < budget ? (size_t)n : budget;
		handle_input(c);
	}
}

/* ---- clients ------------------------------------------------------------- */

static void client_free(struct client *c)
{
	while (c->head) {
		struct chunk *ch = c->head;

		c->head = ch->next;
		chunk_free(ch);
	}
	g_free(c);
}

static void client_close(struct client *c);

/* Sending failed with -err: a client that closed is no news, anything
 * else is worth a warning. */
static void client_send_failed(struct client *c, int err)
{
	if (err != -EPIPE && err != -ECONNRESET)
		g_warning("control client pid %ld uid %ld: cannot send to it (%s): disconnected",
			  (long)c->cred.pid, (long)c->cred.uid, g_strerror(-err));
	client_close(c);
}

/* Close the connection now; the memory goes when no callback runs. */
static void client_close(struct client *c)
{
	if (c->dead)
		return;
	g_info("control client pid %ld uid %ld disconnected",
	       (long)c->cred.pid, (long)c->cred.uid);
	ev_io_stop(c->ctl->loop, &c->io);
	close(c->fd);
	c->fd = -1;
	c->dead = true;
}

static void reap(struct control *ctl)
{
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		if (ctl->clients[i] && ctl->clients[i]->dead) {
			client_free(ctl->clients[i]);
			ctl->clients[i] = NULL;
		}
	}
}

static void enter(struct control *ctl)
{
	ctl->depth++;
}

static void leave(struct control *ctl)
{
	if (--ctl->depth == 0)
		reap(ctl);
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = w->data;
	struct control *ctl = c->ctl;

	int r;

	enter(ctl);
	if ((revents & EV_WRITE) && (r = client_flush(c)) < 0)
		client_send_failed(c, r);
	if (!c->dead && c->queued <= BACKPRESSURE_BYTES)
		client_input(c);
	if (!c->dead && c->eof && c->in_len > 0) {
		/* An unterminated last line is a request too. */
		if (!c->discarding)
			handle_line(c, c->in, c->in_len);
		c->in_len = 0;
		c->discarding = false;
	}
	/*
	 * Send what is ready. When that makes room, answer the lines that
	 * came in while the client was back-pressured: they would wait for
	 * input that may never come. A few rounds, then the loop's turn
	 * (output still waits, so the client is called again).
	 */
	for (int round = 0; !c->dead && c->queued > 0 && round < 4; round++) {
		r = client_flush(c);
		if (r < 0) {
			client_send_failed(c, r);
			break;
		}
		if (c->queued > BACKPRESSURE_BYTES || !has_request(c))
			break;
		handle_input(c);
	}
	/* It closed its side: it goes once every reply has been sent, and
	 * is called again while some wait (for writing only). */
	if (!c->dead && c->eof && c->queued == 0)
		client_close(c);
	client_update(c);
	leave(ctl);
}

static void refuse_busy(struct control *ctl, int fd, const struct ucred *cred)
{
	struct request rq = { 0 };
	struct client tmp = { .ctl = ctl, .fd = fd };

	rq.c = &tmp;
	reply_error(&rq, "busy",
		    "too many control clients (%d are connected): try again when one has gone",
		    MAX_CLIENTS);
	client_flush(&tmp);
	while (tmp.head) {
		struct chunk *ch = tmp.head;

		tmp.head = ch->next;
		chunk_free(ch);
	}
	close(fd);
	if (!ctl->full_logged)
		g_warning("control client pid %ld uid %ld refused: %d control clients are connected already",
			  (long)cred->pid, (long)cred->uid, MAX_CLIENTS);
	else
		g_info("control client pid %ld uid %ld refused: too many control clients",
		       (long)cred->pid, (long)cred->uid);
	ctl->full_logged = true;
}

static void client_add(struct control *ctl, int fd)
{
	struct ucred cred = { .pid = -1, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	struct client *c;
	unsigned slot;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		cred = (struct ucred){ .pid = -1, .uid = (uid_t)-1,
				       .gid = (gid_t)-1 };
	for (slot = 0; slot < MAX_CLIENTS && ctl->clients[slot]; slot++)
		;
	if (slot == MAX_CLIENTS) {
		refuse_busy(ctl, fd, &cred);
		return;
	}
	ctl->full_logged = false;
	c = g_new0(struct client, 1);
	c->ctl = ctl;
	c->fd = fd;
	c->cred = cred;
	ev_init(&c->io, client_cb);
	c->io.data = c;
	ctl->clients[slot] = c;
	g_info("control client pid %ld uid %ld connected", (long)cred.pid,
	       (long)cred.uid);
	client_update(c);
}

static void accept_pause(struct control *ctl, int err)
{
	ev_io_stop(ctl->loop, &ctl->accept_io);
	ev_timer_set(&ctl->accept_timer, ACCEPT_RETRY, 0.);
	ev_timer_start(ctl->loop, &ctl->accept_timer);
	if (!ctl->accept_paused)
		g_warning("cannot accept control clients (%s): trying again every %d ms",
			  g_strerror(err), (int)(ACCEPT_RETRY * 1000));
	ctl->accept_paused = true;
}

static void do_accept(struct control *ctl)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(ctl->listen_fd, NULL, NULL,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EAGAIN:
				break;
			default:
				/* EMFILE, ENFILE, ENOBUFS, ENOMEM, or an error
				 * we do not know to be transient: retry on the
				 * timer rather than spin on a listening socket
				 * that stays readable. */
				accept_pause(ctl, errno);
				return;
			}
			break;
		}
		client_add(ctl, fd);
	}
	if (ctl->accept_paused) {
		ctl->accept_paused = false;
		g_info("accepting control clients again");
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *ctl = w->data;

	enter(ctl);
	do_accept(ctl);
	leave(ctl);
}

static void accept_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct control *ctl = w->data;

	enter(ctl);
	ev_io_start(ctl->loop, &ctl->accept_io);
	do_accept(ctl);
	leave(ctl);
}

/* ---- events -------------------------------------------------------------- */

static const char *leave_reason_str(int reason)
{
	switch (reason) {
	case IVSHMEM_LEAVE_CLOSED: return "closed";
	case IVSHMEM_LEAVE_PROTOCOL: return "protocol";
	case IVSHMEM_LEAVE_QUEUE_FULL: return "queue-full";
	case IVSHMEM_LEAVE_ERROR: return "error";
	case IVSHMEM_LEAVE_KICKED: return "kicked";
	}
	return "error";
}

static char *event_line(struct control *ctl,
			const struct ivshmem_server_event *ev, size_t *len)
{
	JsonBuilder *b = json_builder_new();
	struct ivshmem_server_peer_info p;
	char *line;

	json_builder_begin_object(b);
	switch (ev->type) {
	case IVSHMEM_EVENT_PEER_JOINED:
		jsonl_add_string(b, "event", "join");
		add_now(b, "time");
		json_builder_set_member_name(b, "peer");
		if (ivshmem_server_get_peer(ctl->srv, ev->id, &p) < 0) {
			/* Gone already (it closed before its greeting was
			 * out): its leave follows. */
			int nvec = ivshmem_server_get_vectors(ctl->srv);

			struct timespec now;

			clock_gettime(CLOCK_REALTIME, &now);
			p = (struct ivshmem_server_peer_info){
				.id = ev->id, .vectors = (unsigned)nvec,
				.pid = ev->pid, .uid = ev->uid, .gid = ev->gid,
				.connected_ns = (int64_t)now.tv_sec * 1000000000 +
						now.tv_nsec,
			};
		}
		add_peer(b, &p);
		break;
	case IVSHMEM_EVENT_PEER_LEFT:
		jsonl_add_string(b, "event", "leave");
		add_now(b, "time");
		json_builder_set_member_name(b, "peer");
		json_builder_begin_object(b);
		jsonl_add_int(b, "id", ev->id);
		add_cred(b, ev->pid, ev->uid, ev->gid);
		json_builder_end_object(b);
		jsonl_add_string(b, "reason", leave_reason_str(ev->reason));
		if (ev->error)
			jsonl_add_string(b, "error", g_strerror(ev->error));
		break;
	case IVSHMEM_EVENT_REFUSED:
		jsonl_add_string(b, "event", "refused");
		add_now(b, "time");
		add_cred(b, ev->pid, ev->uid, ev->gid);
		jsonl_add_string(b, "reason", ev->error == ENOSPC ? "full" :
				 ev->error == EPERM || ev->error == EACCES ?
				 "denied" : "error");
		if (ev->error == ENOSPC) {
			jsonl_add_string(b, "message",
				   "every peer ID is in use: the connection was closed");
		} else {
			char *m = g_strdup_printf("the connection was closed: %s",
						  g_strerror(ev->error));

			jsonl_add_string(b, "message", m);
			g_free(m);
		}
		break;
	default:
		g_object_unref(b);
		return NULL;
	}
	jsonl_add_int(b, "peers", ev->peers);
	json_builder_end_object(b);
	line = to_line(b, len);
	g_object_unref(b);
	return line;
}

void control_event(struct control *ctl, const struct ivshmem_server_event *ev)
{
	char *line = NULL;
	size_t len = 0;

	if (!ctl)
		return;
	enter(ctl);
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = ctl->clients[i];

		if (!c || c->dead || !c->watching)
			continue;
		if (!line && !(line = event_line(ctl, ev, &len)))
			break;
		client_push(c, line, len, -1, true);
		if (c->event_bytes > EVENT_LIMIT_BYTES) {
			g_warning("control client pid %ld uid %ld does not read its events (over %u KiB wait): disconnected",
				  (long)c->cred.pid, (long)c->cred.uid,
				  EVENT_LIMIT_BYTES >> 10);
			client_close(c);
			continue;
		}
		/* Sent when the loop finds the socket writable: a burst of
		 * events goes out in few writes. */
		client_update(c);
	}
	g_free(line);
	leave(ctl);
}

/* ---- life ---------------------------------------------------------------- */

int control_new(struct ev_loop *loop, struct ivshmem_server *srv,
		const struct control_info *info, int listen_fd,
		struct control **out)
{
	struct control *ctl;

	if (!loop || !srv || !info || listen_fd < 0 || !out)
		return -EINVAL;
	ctl = g_new0(struct control, 1);
	ctl->loop = loop;
	ctl->srv = srv;
	ctl->info = *info;
	ctl->info.socket_path = g_strdup(info->socket_path);
	ctl->info.control_path = g_strdup(info->control_path);
	ctl->info.shm_name = g_strdup(info->shm_name);
	ctl->listen_fd = listen_fd;
	ctl->parser = json_parser_new();
	ev_io_init(&ctl->accept_io, accept_cb, listen_fd, EV_READ);
	ctl->accept_io.data = ctl;
	ev_init(&ctl->accept_timer, accept_timer_cb);
	ctl->accept_timer.data = ctl;
	ev_io_start(loop, &ctl->accept_io);
	*out = ctl;
	return 0;
}

void control_free(struct control *ctl)
{
	if (!ctl)
		return;
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		if (ctl->clients[i]) {
			client_close(ctl->clients[i]);
			client_free(ctl->clients[i]);
		}
	}
	ev_io_stop(ctl->loop, &ctl->accept_io);
	ev_timer_stop(ctl->loop, &ctl->accept_timer);
	close(ctl->listen_fd);
	g_object_unref(ctl->parser);
	g_free((char *)ctl->info.socket_path);
	g_free((char *)ctl->info.control_path);
	g_free((char *)ctl->info.shm_name);
	g_free(ctl);
}
