/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: the connection a command holds to the server. Opening it
 * tries the control socket and, when nothing listens there, falls back to
 * joining as a peer (ctl-fallback.c); requests, replies and events then go
 * the same way over either (ctl-control.c for the socket's lines).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>

#include "ctl-conn.h"
#include "ivshmem.h"

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

int ctl_conn_connect_error(const struct ctl_opts *o, const char *path,
			   bool control, int err)
{
	char *hint = start_hint(o);
	int r = ctl_connect_error(path, err, hint, control);

	g_free(hint);
	return r;
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

	if (o->pci) {
		/* Inside a guest there is no server to ask: the device is
		 * the peer. */
		if (!fallback) {
			ctl_error("inside a guest (--pci) there is no control socket, and this command needs one");
			status = CTL_EXIT_FAILURE;
		} else {
			status = ctl_fallback_join(c, fallback, 0);
		}
		if (status == CTL_EXIT_OK)
			*out = c;
		else
			ctl_conn_close(c);
		return status;
	}
	r = unix_connect(o->control_path, &c->fd);
	if (r == 0) {
		*out = c;
		return CTL_EXIT_OK;
	}
	if (r != -ENOENT && r != -ECONNREFUSED) {
		status = ctl_conn_connect_error(o, o->control_path, true, r);
	} else if (fallback && !o->control_given) {
		status = ctl_fallback_join(c, fallback, r);
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
		status = ctl_conn_connect_error(o, o->control_path, true, r);
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

/* An error reply: say the server's sentence. */
static int reply_error(JsonObject *reply)
{
	const char *msg = ctl_json_str(reply, "message");
	const char *code = ctl_json_str(reply, "error");

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

	if (fd)
		*fd = -1;
	if (c->peer) {
		int pfd = -1;

		node = ctl_fallback_call(c, json_node_get_object(request),
					 &pfd);
		if (fd)
			*fd = pfd;
		else if (pfd >= 0)
			close(pfd);
	} else {
		status = ctl_control_send(c, request);
		if (status == CTL_EXIT_OK) {
			r = ctl_control_recv(c, REPLY_TIMEOUT_MS, &node);
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
	if (!ctl_json_true(o, "ok")) {
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

int ctl_request(const struct ctl_opts *o, const char *fallback,
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
	status = ctl_print_reply(o, reply, text);
	json_node_unref(reply);
	return status;
}

int ctl_conn_get_fd(struct ctl_conn *c)
{
	return c->peer ? ivshmem_peer_get_fd(c->peer) : c->fd;
}

void ctl_conn_dispatch(struct ctl_conn *c)
{
	/* The control socket is read by ctl_conn_next_event(). */
	if (c->peer)
		ivshmem_peer_dispatch(c->peer);
}

int ctl_conn_next_event(struct ctl_conn *c, JsonNode **event)
{
	int r;

	if (c->peer) {
		*event = g_queue_pop_head(&c->events);
		if (*event)
			return 1;
		if (!c->peer_error)
			return 0;
		ctl_error("disconnected from %s: %s", c->opt->socket_path,
			  ivshmem_peer_get_error(c->peer));
		return -1;
	}
	r = ctl_control_recv(c, 0, event);
	if (r == -ECONNRESET)
		ctl_error("the server closed the control connection (did it stop?)");
	return r < 0 ? -1 : r;
}
