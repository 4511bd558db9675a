/* SPDX-License-Identifier: MIT */
/*
 * The peer side (libivshmem/peer.c, wire.c) reading a hostile server's
 * stream, bytes and fds, through a real socketpair.
 *
 * Input: byte 0 configures the peer (vector count 0..3, required shm
 * size, IVSHMEM_PEER_NO_MAP) and whether the stream stays quiet before
 * it ends; then records of 10 bytes: an fd kind, a size selector (memfd
 * size; how many bytes of the message to send before the rest, split
 * messages; or a pause after the message), and the 8 bytes of a message
 * (a little-endian int64, as ivshmem-protocol(7) has them). After each
 * record the peer dispatches. A pause is the quiet period the peer
 * waits for when the stream stops inside a block of vectors: its timer
 * is made to expire at once. At the end the fake server closes its end
 * and the peer must end the connection. Every callback's view must be
 * consistent with the peer's getters, and after ivshmem_peer_free() the
 * process must hold exactly the fds it held before the run.
 */
#include <poll.h>
#include <stdbool.h>
#include <sys/timerfd.h>

#include "fuzz-fds.h"
#include "ivshmem.h"
#include "peer-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	struct ivshmem_peer *peer;
	unsigned ready, disconnected;
	int last_error;
	bool in_ready;
};

static void on_ready(void *user, struct ivshmem_peer *p)
{
	struct run *r = user;
	void *addr = NULL;
	uint64_t len = 0;

	r->ready++;
	if (r->ready > 1)
		abort();
	if (ivshmem_peer_get_state(p) != IVSHMEM_PEER_READY)
		abort();
	if (ivshmem_peer_get_id(p) < 0 || ivshmem_peer_get_id(p) > 65535)
		abort();
	/* The mapping is the size the server gave: touch both ends. */
	if (ivshmem_peer_get_shm(p, &addr, &len) == 0 && addr && len) {
		volatile uint8_t *b = addr;

		b[0] = b[0];
		b[len - 1] = b[len - 1];
	}
	if (ivshmem_peer_dispatch(p) != -EBUSY)
		abort();
}

static void on_joined(void *user, struct ivshmem_peer *p, int id,
		      unsigned vectors)
{
	if (id < 0 || id > 65535 || vectors == 0 ||
	    vectors > IVSHMEM_MAX_VECTORS)
		abort();
	if (ivshmem_peer_get_id(p) == id)
		abort();
}

static void on_left(void *user, struct ivshmem_peer *p, int id)
{
	if (id < 0 || id > 65535)
		abort();
	if (ivshmem_peer_get_vectors(p, id) >= 0)
		abort(); /* still in the table */
}

static void on_disconnected(void *user, struct ivshmem_peer *p, int error)
{
	struct run *r = user;

	r->disconnected++;
	r->last_error = error;
	if (error >= 0 || !ivshmem_strerror(error))
		abort();
}

static void on_log(void *user, int prio, const char *fmt, va_list ap)
{
	/* Silent: a fuzz run logs thousands of violations. */
}

static const struct ivshmem_peer_ops ops = {
	.ready = on_ready,
	.joined = on_joined,
	.left = on_left,
	.disconnected = on_disconnected,
	.log = on_log,
};

static void pump(struct run *r)
{
	int fd = ivshmem_peer_get_fd(r->peer);

	for (int i = 0; i < 64; i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 0) <= 0)
			return;
		ivshmem_peer_dispatch(r->peer);
		if (ivshmem_peer_get_state(r->peer) ==
		    IVSHMEM_PEER_DISCONNECTED)
			return;
	}
}

/* The stream stays quiet: if the peer waits for that (its timer is
 * armed), the wait ends now. */
static void quiet(struct run *r)
{
	int tfd = peer_timer_fd(r->peer);
	struct itimerspec its;
	struct pollfd pfd = { .fd = ivshmem_peer_get_fd(r->peer),
			      .events = POLLIN };

	if (timerfd_gettime(tfd, &its) < 0)
		abort();
	if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
		return;
	its.it_value.tv_sec = 0;
	its.it_value.tv_nsec = 1;
	if (timerfd_settime(tfd, 0, &its, NULL) < 0)
		abort();
	if (poll(&pfd, 1, 1000) != 1)
		abort(); /* an expired timer makes the peer's fd readable */
	pump(r);
}

static bool send_all(struct run *r, int sock, const uint8_t *buf,
		     size_t len, const int *fds, int nfds)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = fuzz_send(sock, buf + off, len - off,
				      off ? NULL : fds, off ? 0 : nfds);

		if (n == -EAGAIN) {
			if (ivshmem_peer_get_state(r->peer) ==
			    IVSHMEM_PEER_DISCONNECTED)
				return false;
			pump(r);
			continue;
		}
		if (n < 0)
			return false; /* the peer closed its end */
		off += (size_t)n;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t sizes[] = { 0, 1, 4096, 4097, 65536,
		1u << 20, 4096 * 3 };
	struct run r = { 0 };
	struct ivshmem_peer_config cfg = { 0 };
	int before, sv[2];

	if (size < 1)
		return 0;
	fuzz_pool_init(sizes, 7);
	before = fuzz_count_fds();
	cfg.vectors = data[0] & 3;
	cfg.shm_size = (data[0] & 4) ? 4096 : 0;
	cfg.flags = (data[0] & 8) ? IVSHMEM_PEER_NO_MAP : 0;
	if (ivshmem_peer_new(&cfg, &ops, &r, &r.peer) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (ivshmem_peer_connect_fd(r.peer, sv[0]) < 0)
		abort();

	for (size_t i = 1; i + 10 <= size; i += 10) {
		const uint8_t *rec = data + i;
		enum fuzz_fd_kind kind = rec[0] % 16 < FUZZ_FD_KINDS ?
					 rec[0] % 16 : FUZZ_FD_NONE;
		int fds[3], nfds;
		/* Split a message: some bytes, a dispatch, the rest. */
		size_t split = (rec[1] >> 4) < 8 ? (rec[1] >> 4) : 0;
		bool ok;

		nfds = fuzz_pool_fds(kind, rec[1] % 7, fds);
		if (split) {
			ok = send_all(&r, sv[1], rec + 2, split, fds, nfds);
			pump(&r);
			ok = ok && send_all(&r, sv[1], rec + 2 + split,
					    8 - split, NULL, 0);
		} else {
			ok = send_all(&r, sv[1], rec + 2, 8, fds, nfds);
		}
		pump(&r);
		if ((rec[1] >> 4) == 15)
			quiet(&r);
		if (!ok ||
		    ivshmem_peer_get_state(r.peer) == IVSHMEM_PEER_DISCONNECTED)
			break;
	}
	/* A trailing partial record: bytes cut in the middle of a message. */
	if ((size - 1) % 10 > 2 &&
	    ivshmem_peer_get_state(r.peer) != IVSHMEM_PEER_DISCONNECTED)
		send_all(&r, sv[1], data + size - (size - 1) % 10 + 2,
			 (size - 1) % 10 - 2, NULL, 0);
	if ((data[0] & 16) &&
	    ivshmem_peer_get_state(r.peer) != IVSHMEM_PEER_DISCONNECTED)
		quiet(&r);
	/* The server goes away: the peer must see it. */
	close(sv[1]);
	for (int i = 0; i < 1000 &&
	     ivshmem_peer_get_state(r.peer) != IVSHMEM_PEER_DISCONNECTED; i++)
		pump(&r);
	if (ivshmem_peer_get_state(r.peer) != IVSHMEM_PEER_DISCONNECTED ||
	    r.disconnected != 1)
		abort();
	ivshmem_peer_free(r.peer);
	fuzz_check_fds(before, "peer stream");
	return 0;
}
