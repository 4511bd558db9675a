/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: the fallback for a server with no control socket (QEMU's).
 * The server is joined as a peer for the length of the command, and the
 * requests info, peers, ring, shm and watch are answered from what a peer
 * knows, in the shape of the server's replies (ivshmem-server(8), CONTROL
 * SOCKET) with null for the rest and "via":"peer".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "ctl-conn.h"
#include "ivshmem.h"

/* How long the server's greeting may take. */
#define READY_TIMEOUT_MS 10000

/* Close an object that a peer answered in place of the server. */
static JsonNode *reply_end(JsonBuilder *b)
{
	jsonl_add_string(b, "via", "peer");
	json_builder_end_object(b);
	return ctl_json_take(b);
}

static char *now_iso8601(void)
{
	GDateTime *t = g_date_time_new_now_utc();
	char *s = g_date_time_format_iso8601(t);

	g_date_time_unref(t);
	return s;
}

/* ---- joining, and the library's callbacks -------------------------------- */

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
	ctl_json_add_null(b, "pid");
	ctl_json_add_null(b, "uid");
	ctl_json_add_null(b, "gid");
	if (full) {
		ctl_json_add_null(b, "queued");
		ctl_json_add_null(b, "connected_at");
		ctl_json_add_null(b, "connected_for");
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
		ctl_json_add_null(b, "reason");
	jsonl_add_int(b, "peers", peer_count(c));
	g_queue_push_tail(&c->events, reply_end(b));
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
	IVSHMEM_PRINTF(3, 0);

static void on_log(void *user, int priority, const char *fmt, va_list ap)
{
	struct ctl_conn *c = user;

	ctl_log(c->opt->verbose, priority, fmt, ap);
}

int ctl_fallback_join(struct ctl_conn *c, const char *fallback, int err)
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
	if (o->pci)
		return ctl_pci_open(o, c->peer);
	r = ivshmem_peer_connect(c->peer, o->socket_path);
	if (r < 0)
		return ctl_conn_connect_error(o, o->socket_path, false, r);
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
			  o->socket_path, ivshmem_peer_get_error(c->peer));
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

/* ---- the requests answered from what a peer knows ------------------------ */

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
	return reply_end(b);
}

static int own_vectors(struct ctl_conn *c)
{
	int v = ivshmem_peer_get_vectors(c->peer, ivshmem_peer_get_id(c->peer));

	return v > 0 ? v : 0;
}

static void add_peer_list(JsonBuilder *b, struct ctl_conn *c)
{
	unsigned n;
	int *ids = ctl_peer_ids(c->peer, &n);

	json_builder_set_member_name(b, "peers");
	json_builder_begin_array(b);
	for (unsigned i = 0; i < n; i++) {
		int vectors = ivshmem_peer_get_vectors(c->peer, ids[i]);

		add_peer_object(b, ids[i], vectors, true);
	}
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

/* The members kind, name and size of the shared memory fd. */
static void add_shm(JsonBuilder *b, int fd, uint64_t size)
{
	const char *kind = NULL;
	char *name = NULL;

	if (fd >= 0)
		kind = shm_kind(fd, &name);
	jsonl_add_string(b, "kind", kind);
	jsonl_add_string(b, "name", name);
	jsonl_add_int(b, "size", (gint64)size);
	json_builder_set_member_name(b, "sealed");
	json_builder_add_boolean_value(b, fd >= 0 && ivshmem_shm_sealed(fd) == 1);
	g_free(name);
}

/* Inside a guest: the device. */
static JsonNode *pci_info(struct ctl_conn *c, const struct ivshmem_pci_info *pi)
{
	static const char *const modes[] = {
		[IVSHMEM_PCI_MODE_VFIO] = "vfio",
		[IVSHMEM_PCI_MODE_POLL] = "poll",
		[IVSHMEM_PCI_MODE_PLAIN] = "plain",
	};
	JsonBuilder *b = jsonl_reply_new("info");
	uint64_t size = 0;
	int id = ivshmem_peer_get_id(c->peer);

	ivshmem_peer_get_shm(c->peer, NULL, &size);
	jsonl_add_string(b, "device", pi->address);
	jsonl_add_string(b, "mode", modes[pi->mode]);
	if (id >= 0)
		jsonl_add_int(b, "id", id);
	else
		ctl_json_add_null(b, "id");
	jsonl_add_int(b, "vectors", own_vectors(c));
	json_builder_set_member_name(b, "shm");
	json_builder_begin_object(b);
	jsonl_add_string(b, "kind", "pci");
	jsonl_add_string(b, "name", pi->address);
	jsonl_add_int(b, "size", (gint64)size);
	/* A device's memory cannot shrink. */
	json_builder_set_member_name(b, "sealed");
	json_builder_add_boolean_value(b, true);
	json_builder_end_object(b);
	jsonl_add_int(b, "poll_us", pi->poll_us);
	jsonl_add_string(b, "why", pi->why[0] ? pi->why : NULL);
	return reply_end(b);
}

static JsonNode *peer_info(struct ctl_conn *c)
{
	struct ivshmem_pci_info pi;

	if (ivshmem_peer_get_pci(c->peer, &pi) == 0)
		return pci_info(c, &pi);
	JsonBuilder *b = jsonl_reply_new("info");
	uint64_t size = 0;

	ivshmem_peer_get_shm(c->peer, NULL, &size);
	ctl_json_add_null(b, "server");
	ctl_json_add_null(b, "version");
	ctl_json_add_null(b, "protocol");
	ctl_json_add_null(b, "pid");
	jsonl_add_string(b, "socket", c->opt->socket_path);
	ctl_json_add_null(b, "control");
	json_builder_set_member_name(b, "shm");
	json_builder_begin_object(b);
	add_shm(b, ivshmem_peer_get_shm_fd(c->peer), size);
	json_builder_end_object(b);
	jsonl_add_int(b, "vectors", own_vectors(c));
	jsonl_add_int(b, "peers", peer_count(c));
	ctl_json_add_null(b, "max_peers");
	ctl_json_add_null(b, "queue_limit");
	ctl_json_add_null(b, "started_at");
	ctl_json_add_null(b, "uptime");
	return reply_end(b);
}

static JsonNode *peer_ring(struct ctl_conn *c, JsonObject *req)
{
	JsonBuilder *b;
	gint64 id, vector = -1;
	int nv, r;

	if (!ctl_json_int(req, "peer", &id) || id < 0 ||
	    id >= IVSHMEM_MAX_PEERS ||
	    (ctl_json_member(req, "vector") &&
	     !ctl_json_int(req, "vector", &vector) &&
	     g_strcmp0(ctl_json_str(req, "vector"), "all") != 0))
		return error_reply("ring", "invalid", "bad ring request");
	nv = ivshmem_peer_get_vectors(c->peer, (int)id);
	if (ivshmem_peer_get_pci(c->peer, &(struct ivshmem_pci_info){ 0 }) == 0) {
		/* A guest does not know the other peers: "all" is as many
		 * vectors as its own. */
		nv = own_vectors(c);
		if (nv == 0)
			return error_reply("ring", "failed",
					   "this device has no doorbell (ivshmem-plain)");
	} else if (nv < 0 || id == ivshmem_peer_get_id(c->peer))
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
			json_node_unref(ctl_json_take(b));
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

	if (shm < 0 || ivshmem_peer_get_shm(c->peer, NULL, &size) < 0)
		return error_reply("shm", "failed",
				   "the server sent no shared memory");
	*fd = fcntl(shm, F_DUPFD_CLOEXEC, 3);
	if (*fd < 0)
		return error_reply("shm", "failed", "cannot keep the shared-memory fd: %s",
				   g_strerror(errno));
	b = jsonl_reply_new("shm");
	add_shm(b, shm, size);
	return reply_end(b);
}

JsonNode *ctl_fallback_call(struct ctl_conn *c, JsonObject *req, int *fd)
{
	const char *command = ctl_json_str(req, "command");
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

