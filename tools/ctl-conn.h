/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: inside struct ctl_conn, between the files that make it up
 * (ctl-connect.c, ctl-control.c, ctl-fallback.c). The commands use the
 * ctl_conn_* calls of ctl.h instead.
 */
#ifndef IVSHMEM_CTL_CONN_H
#define IVSHMEM_CTL_CONN_H

#include "ctl.h"

/* How long a reply may take. */
#define REPLY_TIMEOUT_MS 10000

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

/* ctl-connect.c: say why path cannot be reached (err, negative), with how
 * to start the server; control: path is the control socket. Returns
 * CTL_EXIT_FAILURE. */
int ctl_conn_connect_error(const struct ctl_opts *o, const char *path,
			   bool control, int err);

/* ctl-control.c: send req (not taken) on c->fd: CTL_EXIT_OK, or
 * CTL_EXIT_FAILURE after saying why. */
int ctl_control_send(struct ctl_conn *c, JsonNode *req);
/*
 * The next JSON object from the server, waiting up to timeout_ms (0: only
 * what is there). 1 with *out; 0 none in time; -ECONNRESET the server
 * closed the connection (not said); -EPROTO or another -errno after saying
 * why.
 */
int ctl_control_recv(struct ctl_conn *c, int timeout_ms, JsonNode **out);

/* ctl-fallback.c: join the server at c->opt->socket_path as a peer, after
 * the control socket failed with err; fallback says what for. The exit
 * status, after saying why when it is not CTL_EXIT_OK. */
int ctl_fallback_join(struct ctl_conn *c, const char *fallback, int err);
/* Answer req as the server would, from what the peer knows: a reply
 * object (an error reply included). *fd: the shm request's fd, else
 * left. */
JsonNode *ctl_fallback_call(struct ctl_conn *c, JsonObject *req, int *fd);

#endif
