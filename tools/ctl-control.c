/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: the control socket's lines, one JSON object each way
 * (ivshmem-server(8), CONTROL SOCKET): a request out, objects in, and the
 * fd that may come with a reply.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "ctl-conn.h"

/* A request line, newline included (the server's limit). */
#define MAX_REQUEST 4096
/* A reply line: the peer list of a full server is about 10 MiB. */
#define MAX_REPLY (64u << 20)

int ctl_control_send(struct ctl_conn *c, JsonNode *req)
{
	double deadline = ctl_now() + REPLY_TIMEOUT_MS / 1000.0;
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
			if (poll(&p, 1, ctl_ms_left(deadline)) == 0) {
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

int ctl_control_recv(struct ctl_conn *c, int timeout_ms, JsonNode **out)
{
	double deadline = ctl_now() + timeout_ms / 1000.0;

	for (;;) {
		char *nl = memchr(c->in->str, '\n', c->in->len);

		if (nl) {
			gsize len = (gsize)(nl - c->in->str);
			char *line = g_strndup(c->in->str, len);
			JsonParser *parser;
			GError *err = NULL;
			JsonNode *root;
			const char *why;
			int r = 1;

			g_string_erase(c->in, 0, (gssize)len + 1);
			g_strstrip(line);
			if (!*line) {
				g_free(line);
				continue;
			}
			/* What the server itself takes (json-line.h): json-glib
			 * takes more, and leaks for some. */
			parser = json_parser_new();
			if (!g_utf8_validate(line, -1, NULL)) {
				ctl_error("the server sent a line that is not valid UTF-8");
				r = -EPROTO;
			} else if ((why = jsonl_check(line, strlen(line)))) {
				ctl_error("the server sent a line that is not one JSON value (it has %s)",
					  why);
				r = -EPROTO;
			} else if (!json_parser_load_from_data(parser, line, -1,
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
		int r = poll(&p, 1, ctl_ms_left(deadline));

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

