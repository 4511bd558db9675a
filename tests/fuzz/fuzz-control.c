/* SPDX-License-Identifier: MIT */
/*
 * The control socket's request parser and dispatcher (server/control.c)
 * on its libev loop, in front of a real library server with two real
 * peer connections, through a real AF_UNIX connection (abstract
 * addresses: nothing on the file system).
 *
 * Input: the bytes a control client sends (request lines; byte 0 also
 * says whether the peers are connected and whether the client stops
 * reading), then end of input. Every reply line must be valid UTF-8 and
 * exactly one JSON object (json-glib parses it; the strict check of
 * common/json-line.c finds nothing else on the line) with a boolean
 * "ok"; an error reply has a string "error" and "message". A failure
 * aborts. After the run the process holds the fds it held before.
 */
#include <poll.h>
#include <stdbool.h>
#include <sys/un.h>
#include <time.h>

#include <ev.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "control.h"
#include "fuzz-fds.h"
#include "ivshmem.h"
#include "json-line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_WATCH 16

static struct ev_loop *loop;
static struct ivshmem_server *srv;
static struct control *ctl;
static int watch_fd[MAX_WATCH];
static short watch_ev[MAX_WATCH];
static int nwatch;
static struct sockaddr_un peer_addr, ctl_addr;
static socklen_t peer_alen, ctl_alen;
static JsonParser *parser;

static void on_watch(void *user, int fd, int events)
{
	for (int i = 0; i < nwatch; i++) {
		if (watch_fd[i] != fd)
			continue;
		if (events < 0) {
			watch_fd[i] = watch_fd[--nwatch];
			watch_ev[i] = watch_ev[nwatch];
		} else {
			watch_ev[i] = (short)events;
		}
		return;
	}
	if (events < 0)
		return;
	if (nwatch == MAX_WATCH)
		abort();
	watch_fd[nwatch] = fd;
	watch_ev[nwatch++] = (short)events;
}

static void on_event(void *user, const struct ivshmem_server_event *ev)
{
	control_event(ctl, ev);
}

static void on_log(void *user, int prio, const char *fmt, va_list ap)
{
}

static const struct ivshmem_server_ops ops = {
	.watch = on_watch,
	.event = on_event,
	.log = on_log,
};

static void pump_server(void)
{
	for (int round = 0; round < 8; round++) {
		struct pollfd pfd[MAX_WATCH];
		int n = nwatch;

		for (int i = 0; i < n; i++) {
			pfd[i].fd = watch_fd[i];
			pfd[i].events = watch_ev[i];
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)n, 0) <= 0)
			break;
		for (int i = 0; i < n; i++)
			if (pfd[i].revents)
				ivshmem_server_dispatch(srv, pfd[i].fd,
							pfd[i].revents);
	}
}

static int listen_abstract(const char *what, struct sockaddr_un *a,
			   socklen_t *alen)
{
	int fd;

	a->sun_family = AF_UNIX;
	snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1,
		 "libivshmem-fuzz-%s-%d", what, (int)getpid());
	*alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			    strlen(a->sun_path + 1));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)a, *alen) < 0 ||
	    listen(fd, 16) < 0)
		abort();
	return fd;
}

static int connect_to(const struct sockaddr_un *a, socklen_t alen)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)a, alen) < 0)
		abort();
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ivshmem_server_config cfg = { 0 };
	struct control_info info = {
		.socket_path = "/fuzz/ivshmem_socket",
		.control_path = "/fuzz/ivshmem_socket.ctl",
		.shm_kind = IVSHMEM_SHM_MEMFD,
		.shm_size = 4096,
		.max_peers = 8,
		.queue_limit = 64,
	};
	int lfd, cfd;

	g_setenv("G_SLICE", "always-malloc", TRUE);
	loop = ev_loop_new(EVFLAG_AUTO);
	lfd = listen_abstract("peers", &peer_addr, &peer_alen);
	cfg.listen_fd = lfd;
	cfg.shm_fd = memfd_create("fuzz-shm", MFD_CLOEXEC);
	if (!loop || cfg.shm_fd < 0 || ftruncate(cfg.shm_fd, 4096) < 0)
		abort();
	cfg.vectors = 2;
	cfg.max_peers = 8;
	cfg.queue_limit = 64;
	if (ivshmem_server_new(&cfg, &ops, NULL, &srv) < 0)
		abort();
	clock_gettime(CLOCK_REALTIME, &info.started);
	clock_gettime(CLOCK_MONOTONIC, &info.started_mono);
	cfd = listen_abstract("control", &ctl_addr, &ctl_alen);
	if (control_new(loop, srv, &info, cfd, &ctl) < 0)
		abort();
	parser = json_parser_new();
	return 0;
}

static void check_line(const char *line, size_t len)
{
	g_autoptr(GError) err = NULL;
	JsonNode *root, *ok;
	JsonObject *o;
	const char *why;

	/* FUZZ_CONTROL_SHOW=1: print the replies (to read a seed's). */
	if (g_getenv("FUZZ_CONTROL_SHOW"))
		fprintf(stderr, "%.*s\n", (int)len, line);
	if (!g_utf8_validate(line, (gssize)len, NULL)) {
		fprintf(stderr, "reply not UTF-8: %.*s\n", (int)len, line);
		abort();
	}
	why = jsonl_check(line, len);
	if (why) {
		fprintf(stderr, "reply not one JSON value (%s): %.*s\n", why,
			(int)len, line);
		abort();
	}
	if (!json_parser_load_from_data(parser, line, (gssize)len, &err)) {
		fprintf(stderr, "reply not JSON (%s): %.*s\n", err->message,
			(int)len, line);
		abort();
	}
	root = json_parser_get_root(parser);
	if (!root || !JSON_NODE_HOLDS_OBJECT(root))
		abort();
	o = json_node_get_object(root);
	/* Events have "event", replies "ok". */
	if (json_object_has_member(o, "event"))
		return;
	ok = json_object_get_member(o, "ok");
	if (!ok || json_node_get_value_type(ok) != G_TYPE_BOOLEAN) {
		fprintf(stderr, "reply without ok: %.*s\n", (int)len, line);
		abort();
	}
	if (!json_node_get_boolean(ok) &&
	    (!json_object_has_member(o, "error") ||
	     !json_object_has_member(o, "message")))
		abort();
}

/* Read replies; close the fds they carry; check each whole line. */
static bool read_replies(int sock, GString *out)
{
	for (;;) {
		char buf[4096];
		ssize_t n = fuzz_recv(sock, buf, sizeof(buf));
		char *nl;

		if (n < 0)
			return n != -EAGAIN;
		if (n == 0)
			return true;
		g_string_append_len(out, buf, n);
		while ((nl = memchr(out->str, '\n', out->len))) {
			size_t len = (size_t)(nl - out->str);

			check_line(out->str, len);
			g_string_erase(out, 0, (gssize)len + 1);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GString) out = g_string_new(NULL);
	int peers[2] = { -1, -1 }, cl, before;
	bool reading, ended = false;
	size_t off;

	if (size < 1)
		return 0;
	/* Counted for each run: libFuzzer opens fds between runs (pipes
	 * to the symbolizer when it reports a new function). */
	before = fuzz_count_fds();
	reading = !(data[0] & 2);
	if (data[0] & 1) {
		peers[0] = connect_to(&peer_addr, peer_alen);
		peers[1] = connect_to(&peer_addr, peer_alen);
		pump_server();
	}
	cl = connect_to(&ctl_addr, ctl_alen);
	off = 1;
	if (off == size)
		shutdown(cl, SHUT_WR);
	for (int i = 0; i < 10000 && !ended; i++) {
		if (off < size) {
			ssize_t n = fuzz_send(cl, data + off, size - off,
					      NULL, 0);

			if (n > 0)
				off += (size_t)n;
			if (off == size)
				shutdown(cl, SHUT_WR);
		}
		ev_run(loop, EVRUN_NOWAIT);
		pump_server();
		if (reading || off == size)
			ended = read_replies(cl, out);
	}
	close(cl);
	for (int k = 0; k < 2; k++)
		if (peers[k] >= 0)
			close(peers[k]);
	/* Until the server has let the peers and the control client go
	 * (a few rounds): then it holds what it held before. */
	for (int i = 0; i < 20; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		pump_server();
		if (ivshmem_server_get_peer_count(srv) == 0 &&
		    fuzz_count_fds() == before)
			break;
	}
	if (ivshmem_server_get_peer_count(srv) != 0)
		abort();
	fuzz_check_fds(before, "control");
	return 0;
}
