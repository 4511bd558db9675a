/* SPDX-License-Identifier: MIT */
/*
 * The wire layer: 8-byte little-endian messages, each with at most one fd,
 * a per-connection output queue, non-blocking sends and receives.
 * Internal: not installed.
 */
#ifndef LIBIVSHMEM_WIRE_PRIVATE_H
#define LIBIVSHMEM_WIRE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One protocol message is exactly this many bytes. */
#define IVSHMEM_MSG_SIZE 8

/*
 * A reference-counted fd. The same eventfd is queued for many peers; it is
 * closed when the last queue entry referring to it is sent and its owner
 * has let go of it.
 */
struct ivshmem_fdref {
	int fd;
	unsigned refs;
};

struct ivshmem_fdref *ivshmem_fdref_new(int fd);
struct ivshmem_fdref *ivshmem_fdref_ref(struct ivshmem_fdref *r);
void ivshmem_fdref_unref(struct ivshmem_fdref *r);

struct ivshmem_msg {
	int64_t value;
	struct ivshmem_fdref *fd; /* NULL: no fd */
};

/* FIFO of messages waiting to be sent on one connection. */
struct ivshmem_outq {
	struct ivshmem_msg *ring;
	size_t cap;   /* power of two, or 0 */
	size_t head;
	size_t count;
};

void ivshmem_outq_init(struct ivshmem_outq *q);
/* Drop every queued message (unref their fds) and free the ring. */
void ivshmem_outq_clear(struct ivshmem_outq *q);
/* Free a large ring once the queue is empty. */
void ivshmem_outq_trim(struct ivshmem_outq *q);
/* Append a message, taking a new reference on fd. -ENOMEM on failure. */
int ivshmem_outq_push(struct ivshmem_outq *q, int64_t value,
		      struct ivshmem_fdref *fd);
static inline bool ivshmem_outq_empty(const struct ivshmem_outq *q)
{
	return q->count == 0;
}

/*
 * Send as much of the queue as the socket takes, without blocking.
 * Returns 0 when the queue is empty, -EAGAIN when messages remain (wait
 * for POLLOUT), or another negative errno on a socket error (-EPIPE,
 * -ECONNRESET, ...). Messages are sent one per msghdr, each with its own
 * fd, batched with sendmmsg.
 */
int ivshmem_outq_flush(struct ivshmem_outq *q, int sock);

/* Encode / decode one message's 8 bytes (little-endian). */
void ivshmem_msg_encode(int64_t value, uint8_t out[IVSHMEM_MSG_SIZE]);
int64_t ivshmem_msg_decode(const uint8_t in[IVSHMEM_MSG_SIZE]);

/*
 * Receive state for one connection: the bytes of a partial message and the
 * fd that arrived with it.
 */
struct ivshmem_inbuf {
	uint8_t buf[IVSHMEM_MSG_SIZE];
	size_t len;
	int fd; /* -1: none */
};

void ivshmem_inbuf_init(struct ivshmem_inbuf *in);
/* Close a pending fd and forget partial bytes. */
void ivshmem_inbuf_clear(struct ivshmem_inbuf *in);

/*
 * Receive at most one message. Reads never cross a message boundary, so at
 * most one fd is taken with each message.
 * Returns 1 with *value and *fd_out (-1 for none; the caller owns it) when
 * a whole message arrived; -EAGAIN when the socket has no more data yet;
 * 0 on EOF at a message boundary; -EPROTO on EOF in the middle of a
 * message; -EBADMSG when a message came with more than one fd or an fd
 * that is not SCM_RIGHTS (every such fd is closed); -EMSGSIZE when control
 * data was truncated (fds may have been lost); -EMFILE or -ENFILE when it
 * was truncated because this process (or the system) had no fd free for
 * them (a local shortage, not the sender's doing); other negative errno from
 * recvmsg. Received fds are close-on-exec.
 */
int ivshmem_wire_recv(int sock, struct ivshmem_inbuf *in, int64_t *value,
		      int *fd_out);

/* Send one message with an optional fd (fd < 0: none). Non-blocking
 * sockets may return -EAGAIN. Used by tests and simple senders. */
int ivshmem_wire_send(int sock, int64_t value, int fd);

#endif
