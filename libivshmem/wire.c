/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire-private.h"

/* Messages per sendmmsg call. */
#define BATCH 64

struct ivshmem_fdref *ivshmem_fdref_new(int fd)
{
	struct ivshmem_fdref *r = malloc(sizeof(*r));

	if (!r)
		return NULL;
	r->fd = fd;
	r->refs = 1;
	return r;
}

struct ivshmem_fdref *ivshmem_fdref_ref(struct ivshmem_fdref *r)
{
	assert(r && r->refs > 0);
	r->refs++;
	return r;
}

void ivshmem_fdref_unref(struct ivshmem_fdref *r)
{
	if (!r)
		return;
	assert(r->refs > 0);
	if (--r->refs == 0) {
		if (r->fd >= 0)
			close(r->fd);
		free(r);
	}
}

void ivshmem_msg_encode(int64_t value, uint8_t out[IVSHMEM_MSG_SIZE])
{
	uint64_t v = (uint64_t)value;

	for (int i = 0; i < IVSHMEM_MSG_SIZE; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

int64_t ivshmem_msg_decode(const uint8_t in[IVSHMEM_MSG_SIZE])
{
	uint64_t v = 0;

	for (int i = 0; i < IVSHMEM_MSG_SIZE; i++)
		v |= (uint64_t)in[i] << (8 * i);
	return (int64_t)v;
}

void ivshmem_outq_init(struct ivshmem_outq *q)
{
	memset(q, 0, sizeof(*q));
}

void ivshmem_outq_clear(struct ivshmem_outq *q)
{
	for (size_t i = 0; i < q->count; i++)
		ivshmem_fdref_unref(q->ring[(q->head + i) & (q->cap - 1)].fd);
	free(q->ring);
	ivshmem_outq_init(q);
}

void ivshmem_outq_trim(struct ivshmem_outq *q)
{
	/* A greeting can need a large ring once; do not keep it for the
	 * connection's lifetime. */
	if (q->count == 0 && q->cap > 64)
		ivshmem_outq_clear(q);
}

static int outq_grow(struct ivshmem_outq *q)
{
	size_t ncap = q->cap ? q->cap * 2 : 64;
	struct ivshmem_msg *n;

	if (ncap > SIZE_MAX / sizeof(*n))
		return -ENOMEM;
	n = malloc(ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	/* Unwrap the ring into the new array. */
	for (size_t i = 0; i < q->count; i++)
		n[i] = q->ring[(q->head + i) & (q->cap - 1)];
	free(q->ring);
	q->ring = n;
	q->cap = ncap;
	q->head = 0;
	return 0;
}

int ivshmem_outq_push(struct ivshmem_outq *q, int64_t value,
		      struct ivshmem_fdref *fd)
{
	if (q->count == q->cap) {
		int r = outq_grow(q);

		if (r < 0)
			return r;
	}
	struct ivshmem_msg *m = &q->ring[(q->head + q->count) & (q->cap - 1)];

	m->value = value;
	m->fd = fd ? ivshmem_fdref_ref(fd) : NULL;
	q->count++;
	return 0;
}

static void outq_pop(struct ivshmem_outq *q)
{
	assert(q->count > 0);
	ivshmem_fdref_unref(q->ring[q->head].fd);
	q->head = (q->head + 1) & (q->cap - 1);
	q->count--;
}

int ivshmem_outq_flush(struct ivshmem_outq *q, int sock)
{
	struct mmsghdr hdr[BATCH];
	struct iovec iov[BATCH];
	uint8_t bytes[BATCH][IVSHMEM_MSG_SIZE];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl[BATCH];

	while (q->count > 0) {
		unsigned n = q->count < BATCH ? (unsigned)q->count : BATCH;

		for (unsigned i = 0; i < n; i++) {
			const struct ivshmem_msg *m =
				&q->ring[(q->head + i) & (q->cap - 1)];
			struct msghdr *mh = &hdr[i].msg_hdr;

			ivshmem_msg_encode(m->value, bytes[i]);
			iov[i].iov_base = bytes[i];
			iov[i].iov_len = IVSHMEM_MSG_SIZE;
			memset(mh, 0, sizeof(*mh));
			mh->msg_iov = &iov[i];
			mh->msg_iovlen = 1;
			if (m->fd) {
				struct cmsghdr *c;

				memset(ctl[i].buf, 0, sizeof(ctl[i].buf));
				mh->msg_control = ctl[i].buf;
				mh->msg_controllen = sizeof(ctl[i].buf);
				c = CMSG_FIRSTHDR(mh);
				c->cmsg_level = SOL_SOCKET;
				c->cmsg_type = SCM_RIGHTS;
				c->cmsg_len = CMSG_LEN(sizeof(int));
				memcpy(CMSG_DATA(c), &m->fd->fd, sizeof(int));
			}
		}

		int r;

		do {
			r = sendmmsg(sock, hdr, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		} while (r < 0 && errno == EINTR);
		if (r < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;

		for (int i = 0; i < r; i++) {
			/*
			 * An AF_UNIX stream socket takes an 8-byte message
			 * whole or not at all; a short count would split a
			 * message from its fd, so treat it as broken.
			 */
			if (hdr[i].msg_len != IVSHMEM_MSG_SIZE)
				return -EPIPE;
			outq_pop(q);
		}
		if ((unsigned)r < n)
			return -EAGAIN;
	}
	return 0;
}

void ivshmem_inbuf_init(struct ivshmem_inbuf *in)
{
	in->len = 0;
	in->fd = -1;
}

void ivshmem_inbuf_clear(struct ivshmem_inbuf *in)
{
	if (in->fd >= 0)
		close(in->fd);
	ivshmem_inbuf_init(in);
}

/* Take the fds out of a received control message. Returns the one fd (or
 * -1), or -EBADMSG after closing all of them if there was more than one or
 * anything other than SCM_RIGHTS. */
static int take_fds(struct msghdr *mh)
{
	int fd = -1, bad = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c;
	     c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			continue;
		}
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < n; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd < 0 && !bad) {
				fd = f;
			} else {
				close(f);
				bad = 1;
			}
		}
	}
	if (bad) {
		if (fd >= 0)
			close(fd);
		return -EBADMSG;
	}
	return fd;
}

int ivshmem_wire_recv(int sock, struct ivshmem_inbuf *in, int64_t *value,
		      int *fd_out)
{
	union {
		/* Room for a few fds so that a sender's extra fds are
		 * received (and closed) rather than silently discarded. */
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;

	while (in->len < IVSHMEM_MSG_SIZE) {
		struct iovec iov = {
			.iov_base = in->buf + in->len,
			.iov_len = IVSHMEM_MSG_SIZE - in->len,
		};
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n;

		do {
			n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;

		int fd = take_fds(&mh);

		if (mh.msg_flags & MSG_CTRUNC) {
			/* The kernel truncates too when it cannot install an
			 * fd here: no free fd now means the shortage is
			 * ours, not the sender's (looked at before closing
			 * what did arrive, which would free one). */
			int probe = fcntl(sock, F_DUPFD_CLOEXEC, 0);
			int err = probe < 0 && (errno == EMFILE ||
						errno == ENFILE) ?
				  -errno : -EMSGSIZE;

			if (probe >= 0)
				close(probe);
			if (fd >= 0)
				close(fd);
			ivshmem_inbuf_clear(in);
			return err;
		}
		if (fd == -EBADMSG || (fd >= 0 && in->fd >= 0)) {
			if (fd >= 0)
				close(fd);
			ivshmem_inbuf_clear(in);
			return -EBADMSG;
		}
		if (fd >= 0)
			in->fd = fd;
		if (n == 0) {
			int partial = in->len > 0 || in->fd >= 0;

			ivshmem_inbuf_clear(in);
			return partial ? -EPROTO : 0;
		}
		in->len += (size_t)n;
	}
	*value = ivshmem_msg_decode(in->buf);
	*fd_out = in->fd;
	in->len = 0;
	in->fd = -1;
	return 1;
}

int ivshmem_wire_send(int sock, int64_t value, int fd)
{
	struct ivshmem_fdref ref = { .fd = fd, .refs = 1 };
	struct ivshmem_outq q;
	int r;

	ivshmem_outq_init(&q);
	r = ivshmem_outq_push(&q, value, fd >= 0 ? &ref : NULL);
	if (r < 0)
		return r;
	r = ivshmem_outq_flush(&q, sock);
	/* ref lives on the stack: never let the queue close the caller's fd */
	if (q.count)
		q.ring[q.head].fd = NULL;
	ivshmem_outq_clear(&q);
	return r;
}
