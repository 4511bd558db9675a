/* SPDX-License-Identifier: MIT */
/* What the socket fuzz targets share: counting open fds, making fds of
 * several kinds and sending them with bytes. Header-only. */
#ifndef FUZZ_FDS_H
#define FUZZ_FDS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* The number of open fds (the entries of /proc/self/fd, less the one
 * reading it). */
static inline int fuzz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		abort();
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static inline void fuzz_check_fds(int before, const char *what)
{
	int after = fuzz_count_fds();

	if (after != before) {
		fprintf(stderr, "%s: %d fds open before, %d after\n", what,
			before, after);
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

/* Up to 3 fds of @p kind into fds[]; the count. size: of a memfd. */
static inline int fuzz_make_fds(enum fuzz_fd_kind kind, uint64_t size,
				int fds[3])
{
	int p[2];

	switch (kind) {
	case FUZZ_FD_NONE:
	case FUZZ_FD_KINDS:
		return 0;
	case FUZZ_FD_MEMFD:
	case FUZZ_FD_SEALED:
		fds[0] = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fds[0] < 0)
			abort();
		if (ftruncate(fds[0], (off_t)size) < 0)
			abort();
		if (kind == FUZZ_FD_SEALED &&
		    fcntl(fds[0], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
			  F_SEAL_WRITE | F_SEAL_SEAL) < 0)
			abort();
		return 1;
	case FUZZ_FD_EVENTFD:
		fds[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fds[0] < 0)
			abort();
		return 1;
	case FUZZ_FD_PIPE:
		if (pipe2(p, O_CLOEXEC) < 0)
			abort();
		close(p[1]);
		fds[0] = p[0];
		return 1;
	case FUZZ_FD_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
			abort();
		close(p[1]);
		fds[0] = p[0];
		return 1;
	case FUZZ_FD_SEVERAL:
		fds[0] = eventfd(0, EFD_CLOEXEC);
		fds[1] = eventfd(0, EFD_CLOEXEC);
		fds[2] = memfd_create("fuzz", MFD_CLOEXEC);
		if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0)
			abort();
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

static inline void fuzz_close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static inline uint64_t fuzz_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif
