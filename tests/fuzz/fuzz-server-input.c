/* SPDX-License-Identifier: MIT */
/*
 * The server side (libivshmem/server.c, wire.c, table.c) taking what
 * hostile peers can send it, through real AF_UNIX connections to a
 * listening socket (an abstract address: nothing on the file system).
 *
 * Input: byte 0 configures the server (vectors, max_peers, queue_limit);
 * then operations of 4 bytes (op, client, two arguments) on up to 8
 * client connections: connect, send bytes (from the input) with fds of
 * any kind, close, shut down writing, read what the server sent (closing
 * the fds that came with it), ring and kick through the API; the server
 * dispatches after each. The events must add up to the peer count the
 * server reports; at the end every client closes, the server must drop
 * every peer, and after ivshmem_server_free() the process must hold
 * exactly the fds it held before the run.
 */
#include <poll.h>
#include <stdbool.h>
#include <sys/un.h>

#include "fuzz-fds.h"
#include "ivshmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_WATCH 64
#define MAX_CLIENTS 8

struct run {
	struct ivshmem_server *srv;
	int watch_fd[MAX_WATCH];
	short watch_ev[MAX_WATCH];
	int nwatch;
	int joined, left;
	int clients[MAX_CLIENTS];
	bool timer;
};

static void on_watch(void *user, int fd, int events)
{
	struct run *r = user;

	for (int i = 0; i < r->nwatch; i++) {
		if (r->watch_fd[i] != fd)
			continue;
		if (events < 0) {
			r->watch_fd[i] = r->watch_fd[--r->nwatch];
			r->watch_ev[i] = r->watch_ev[r->nwatch];
		} else {
			r->watch_ev[i] = (short)events;
		}
		return;
	}
	if (events < 0)
		return;
	if (r->nwatch == MAX_WATCH)
		abort();
	r->watch_fd[r->nwatch] = fd;
	r->watch_ev[r->nwatch++] = (short)events;
}

static void on_timer(void *user, int ms)
{
	((struct run *)user)->timer = ms >= 0;
}

static void on_event(void *user, const struct ivshmem_server_event *ev)
{
	struct run *r = user;

	if (ev->type == IVSHMEM_EVENT_PEER_JOINED)
		r->joined++;
	else if (ev->type == IVSHMEM_EVENT_PEER_LEFT)
		r->left++;
	if (ev->type == IVSHMEM_EVENT_PEER_JOINED ||
	    ev->type == IVSHMEM_EVENT_PEER_LEFT) {
		if (ev->id < 0 || ev->id > 65535)
			abort();
	}
	/* Peers that died in the same dispatch are no longer counted in
	 * the leave of the first of them: at most, then exactly once every
	 * leave is out (pump()). */
	if ((int)ev->peers > r->joined - r->left) {
		fprintf(stderr, "event %d id %d: peers %u, %d joined, %d left\n",
			ev->type, ev->id, ev->peers, r->joined, r->left);
		abort();
	}
}

static void on_log(void *user, int prio, const char *fmt, va_list ap)
{
}

static const struct ivshmem_server_ops ops = {
	.watch = on_watch,
	.timer = on_timer,
	.event = on_event,
	.log = on_log,
};

static void pump(struct run *r)
{
	for (int round = 0; round < 16; round++) {
		struct pollfd pfd[MAX_WATCH];
		int n = r->nwatch, ready;

		for (int i = 0; i < n; i++) {
			pfd[i].fd = r->watch_fd[i];
			pfd[i].events = r->watch_ev[i];
			pfd[i].revents = 0;
		}
		ready = poll(pfd, (nfds_t)n, 0);
		if (ready <= 0)
			break;
		for (int i = 0; i < n; i++)
			if (pfd[i].revents &&
			    ivshmem_server_dispatch(r->srv, pfd[i].fd,
						    pfd[i].revents) < 0)
				abort();
	}
	if (r->timer) {
		r->timer = false;
		ivshmem_server_timeout(r->srv);
	}
	if (ivshmem_server_get_peer_count(r->srv) != r->joined - r->left)
		abort();
}

/* Read what the server sent a client; close the fds it carried. */
static void drain(int sock)
{
	uint8_t buf[256];

	for (int i = 0; i < 64 && fuzz_recv(sock, buf, sizeof(buf)) > 0; i++)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t sizes[] = { 0, 8, 4096 };
	struct ivshmem_server_config cfg = { 0 };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t alen;
	struct run r = { 0 };
	int before, lfd, shm;
	size_t i;

	if (size < 1)
		return 0;
	fuzz_pool_init(sizes, 3);
	before = fuzz_count_fds();
	for (int k = 0; k < MAX_CLIENTS; k++)
		r.clients[k] = -1;

	/* An abstract address, unique to this process. */
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1,
		 "libivshmem-fuzz-server-%d", (int)getpid());
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   strlen(addr.sun_path + 1));
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, alen) < 0 ||
	    listen(lfd, 16) < 0)
		abort();
	shm = memfd_create("fuzz-shm", MFD_CLOEXEC);
	if (shm < 0 || ftruncate(shm, 4096) < 0)
		abort();
	cfg.listen_fd = lfd;
	cfg.shm_fd = shm;
	cfg.vectors = 1 + (data[0] & 3);
	cfg.max_peers = (data[0] >> 2) & 7;      /* 0: the maximum */
	cfg.queue_limit = (data[0] >> 5) & 7;    /* 0: the default */
	if (ivshmem_server_new(&cfg, &ops, &r, &r.srv) < 0)
		abort();

	for (i = 1; i + 4 <= size; i += 4) {
		const uint8_t *op = data + i;
		int k = op[1] % MAX_CLIENTS;
		int *c = &r.clients[k];

		switch (op[0] % 8) {
		case 0: /* connect */
			if (*c >= 0)
				break;
			*c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
				    SOCK_CLOEXEC, 0);
			if (*c < 0)
				abort();
			if (connect(*c, (struct sockaddr *)&addr, alen) < 0) {
				close(*c); /* backlog full */
				*c = -1;
			}
			break;
		case 1:
		case 2: { /* bytes, from the input, with fds */
			size_t n = op[2] % 17;
			int fds[3], nfds;

			if (*c < 0)
				break;
			if (n > size - i - 4)
				n = size - i - 4;
			nfds = fuzz_pool_fds((enum fuzz_fd_kind)(op[3] %
						FUZZ_FD_KINDS), op[3] / 16, fds);
			if (n || nfds)
				fuzz_send(*c, n ? op + 4 : (const uint8_t *)"", n ? n : 1,
					  fds, nfds);
			i += n;
			break;
		}
		case 3: /* early close */
			if (*c >= 0)
				close(*c);
			*c = -1;
			break;
		case 4:
			if (*c >= 0)
				shutdown(*c, SHUT_WR);
			break;
		case 5:
			if (*c >= 0)
				drain(*c);
			break;
		case 6: {
			int err = ivshmem_server_ring(r.srv, op[2] % 10,
						      op[3] % 6);

			if (err != 0 && err != -ENOENT && err != -ERANGE)
				abort();
			break;
		}
		default: {
			int err = ivshmem_server_kick(r.srv, op[2] % 10);

			if (err != 0 && err != -ENOENT)
				abort();
			break;
		}
		}
		pump(&r);
	}
	for (int k = 0; k < MAX_CLIENTS; k++)
		if (r.clients[k] >= 0)
			close(r.clients[k]);
	for (int n = 0; n < 100 && ivshmem_server_get_peer_count(r.srv) > 0;
	     n++)
		pump(&r);
	if (ivshmem_server_get_peer_count(r.srv) != 0 || r.joined != r.left)
		abort();
	ivshmem_server_free(r.srv);
	if (r.nwatch != 0)
		abort(); /* every watched fd was given up */
	fuzz_check_fds(before, "server input");
	return 0;
}
