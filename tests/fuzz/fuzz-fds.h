/* SPDX-License-Identifier: MIT */
/* What the socket fuzz targets share: counting open fds, making fds of
 * several kinds and sending them with bytes. A header, with tests/procfd.c
 * beside it in each target. */
#ifndef FUZZ_FDS_H
#define FUZZ_FDS_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <glib.h>

#include "procfd.h"

/* The number of open fds (tests/procfd.h). */
static inline int fuzz_count_fds(void)
{
	int n = procfd_count(getpid());

	if (n < 0)
		abort();
	return n;
}

static inline void fuzz_check_fds(int before, const char *what)
{
	int after = fuzz_count_fds();

	if (after != before) {
		char *list = procfd_list(getpid(), "  fd ");

		fprintf(stderr, "%s: %d fds open before, %d after:\n%s", what,
			before, after, list);
		g_free(list);
		abort();
	}
}

/* Kinds of fd a message can carry. */
enum fuzz_fd_kind {
	FUZZ_FD_NONE,
	FUZZ_FD_MEMFD,
	FUZZ_FD_EVENTFD,
	FUZZ_FD_PIPE,
	FUZZ_FD_SEVERAL,
	FUZZ_FD_SEALED,  /* a memfd sealed against writes and shrinking */
	FUZZ_FD_SOCKET,
	FUZZ_FD_KINDS,
};

/*
 * The fds a message can carry, made once per process and sent again and
 * again: what SCM_RIGHTS delivers are the receiver's own copies, and
 * what a receiver does with them (map a memfd, read an eventfd nobody
 * writes, close them) leaves them as they were. Making fresh ones for
 * every message costs more syscalls than the code under test makes.
 * fuzz_pool_init() runs before the first fd count, so the pool is part
 * of what the process holds before and after every run.
 */
#define FUZZ_POOL_SIZES 8

static struct {
	int nsizes;
	int memfd[FUZZ_POOL_SIZES], sealed[FUZZ_POOL_SIZES];
	int eventfd, pipe, socket, several[3];
} fuzz_pool;

static inline int fuzz_memfd(uint64_t size, bool seal)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		abort();
	if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
			  F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		abort();
	return fd;
}

/* The pool, with a memfd (and a sealed one) of each of @p n sizes. */
static inline void fuzz_pool_init(const uint64_t *sizes, int n)
{
	int p[2];

	if (fuzz_pool.nsizes)
		return;
	if (n < 1 || n > FUZZ_POOL_SIZES)
		abort();
	for (int i = 0; i < n; i++) {
		fuzz_pool.memfd[i] = fuzz_memfd(sizes[i], false);
		fuzz_pool.sealed[i] = fuzz_memfd(sizes[i], true);
	}
	fuzz_pool.eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fuzz_pool.several[0] = eventfd(0, EFD_CLOEXEC);
	fuzz_pool.several[1] = eventfd(0, EFD_CLOEXEC);
	fuzz_pool.several[2] = fuzz_memfd(4096, false);
	if (fuzz_pool.eventfd < 0 || fuzz_pool.several[0] < 0 ||
	    fuzz_pool.several[1] < 0)
		abort();
	/* A pipe's read end and a socket whose other end is closed. */
	if (pipe2(p, O_CLOEXEC) < 0)
		abort();
	close(p[1]);
	fuzz_pool.pipe = p[0];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
		abort();
	close(p[1]);
	fuzz_pool.socket = p[0];
	fuzz_pool.nsizes = n;
}

/* Up to 3 fds of @p kind into fds[] (a memfd of the pool's size
 * @p size_index, modulo its sizes); the count. They stay the pool's: do
 * not close them. */
static inline int fuzz_pool_fds(enum fuzz_fd_kind kind, unsigned size_index,
				int fds[3])
{
	unsigned i = size_index % (unsigned)fuzz_pool.nsizes;

	switch (kind) {
	case FUZZ_FD_NONE:
	case FUZZ_FD_KINDS:
		return 0;
	case FUZZ_FD_MEMFD:
		fds[0] = fuzz_pool.memfd[i];
		return 1;
	case FUZZ_FD_SEALED:
		fds[0] = fuzz_pool.sealed[i];
		return 1;
	case FUZZ_FD_EVENTFD:
		fds[0] = fuzz_pool.eventfd;
		return 1;
	case FUZZ_FD_PIPE:
		fds[0] = fuzz_pool.pipe;
		return 1;
	case FUZZ_FD_SOCKET:
		fds[0] = fuzz_pool.socket;
		return 1;
	case FUZZ_FD_SEVERAL:
		memcpy(fds, fuzz_pool.several, sizeof(fuzz_pool.several));
		return 3;
	}
	return 0;
}

/* Send @p len bytes with @p nfds fds, without blocking: the bytes sent
 * (0..len), or -errno. The fds are the caller's still. */
static inline ssize_t fuzz_send(int sock, const void *buf, size_t len,
				const int *fds, int nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} c;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > 0) {
		memset(&c, 0, sizeof(c));
		m.msg_control = c.buf;
		m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c.h.cmsg_level = SOL_SOCKET;
		c.h.cmsg_type = SCM_RIGHTS;
		c.h.cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(&c.h), fds, (size_t)nfds * sizeof(int));
	}
	n = sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

/* Receive once, without waiting, into @p buf, closing the fds that came
 * with the bytes: the count (0: the end of the stream), or -errno.
 * Control data other than SCM_RIGHTS is a finding: the code under test
 * sends none. */
static inline ssize_t fuzz_recv(int sock, void *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(16 * sizeof(int))];
	} c;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = c.buf, .msg_controllen = sizeof(c.buf),
	};
	ssize_t n = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return -errno;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fd;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			abort();
		for (size_t i = 0; i < k; i++) {
			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
	}
	return n;
}

static inline uint64_t fuzz_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif
