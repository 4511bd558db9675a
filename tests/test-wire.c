/* SPDX-License-Identifier: MIT */
/* The wire layer over real socketpairs: encoding, fd passing, the output
 * queue, and malformed input. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "wire-private.h"

static int sp[2];

static void setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
				    SOCK_NONBLOCK, 0, sp), 0);
}

static void teardown(void)
{
	close(sp[0]);
	close(sp[1]);
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

START_TEST(encode_little_endian)
{
	uint8_t b[IVSHMEM_MSG_SIZE];
	const int64_t values[] = { 0, 1, -1, 65535, INT64_MIN, INT64_MAX,
				   0x0102030405060708LL };

	ivshmem_msg_encode(0x0102030405060708LL, b);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(b[i], 8 - i);
	ivshmem_msg_encode(-1, b);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(b[i], 0xff);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		ivshmem_msg_encode(values[i], b);
		ck_assert(ivshmem_msg_decode(b) == values[i]);
	}
}
END_TEST

START_TEST(send_recv_fd)
{
	struct ivshmem_inbuf in;
	int efd = eventfd(0, EFD_CLOEXEC);
	int64_t v;
	int fd;

	ivshmem_inbuf_init(&in);
	ck_assert_int_eq(ivshmem_wire_send(sp[0], 42, -1), 0);
	ck_assert_int_eq(ivshmem_wire_send(sp[0], -1, efd), 0);
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd), 1);
	ck_assert(v == 42);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd), 1);
	ck_assert(v == -1);
	ck_assert_int_ge(fd, 0);
	ck_assert(same_file(fd, efd));
	/* Received fds are close-on-exec. */
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd),
			 -EAGAIN);
	close(fd);
	close(efd);
}
END_TEST

/* Split writes: the receiver assembles one message from pieces. */
START_TEST(partial_message)
{
	struct ivshmem_inbuf in;
	uint8_t b[IVSHMEM_MSG_SIZE];
	int64_t v;
	int fd;

	ivshmem_inbuf_init(&in);
	ivshmem_msg_encode(123456789, b);
	ck_assert_int_eq(write(sp[0], b, 3), 3);
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd), -EAGAIN);
	ck_assert_int_eq(write(sp[0], b + 3, 5), 5);
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd), 1);
	ck_assert(v == 123456789);
	ck_assert_int_eq(fd, -1);
}
END_TEST

START_TEST(eof_boundary_and_mid_message)
{
	struct ivshmem_inbuf in;
	int64_t v;
	int fd;

	ivshmem_inbuf_init(&in);
	ck_assert_int_eq(ivshmem_wire_send(sp[0], 7, -1), 0);
	ck_assert_int_eq(write(sp[0], "abc", 3), 3);
	shutdown(sp[0], SHUT_WR);
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd), 1);
	ck_assert(v == 7);
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd), -EPROTO);
	/* After the error the buffer is clean: the next read sees EOF. */
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd), 0);
}
END_TEST

/* Two fds on one 8-byte message break ivshmem-protocol(7) rule 3 (one fd
 * per message): both are closed and the message is refused. */
START_TEST(two_fds_one_message)
{
	struct ivshmem_inbuf in;
	uint8_t b[IVSHMEM_MSG_SIZE];
	int e[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = b, .iov_len = sizeof(b) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	int64_t v;
	int fd, before;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(c), e, sizeof(e));
	ivshmem_msg_encode(3, b);
	ck_assert_int_eq(sendmsg(sp[0], &mh, 0), 8);
	close(e[0]);
	close(e[1]);
	before = count_open_fds();
	ivshmem_inbuf_init(&in);
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd), -EBADMSG);
	ck_assert_int_eq(count_open_fds(), before);
}
END_TEST

/* Many messages with fds through a small socket buffer: the queue keeps
 * what does not fit, order and fd identity hold, nothing leaks. */
START_TEST(queue_wraps_in_order)
{
	enum { N = 20000, NFD = 4 };
	struct ivshmem_outq q;
	struct ivshmem_fdref *refs[NFD];
	struct ivshmem_inbuf in;
	int64_t next = 0, v;
	int fd, r, sndbuf = 4096;

	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (int i = 0; i < NFD; i++)
		refs[i] = ivshmem_fdref_new(eventfd(0, EFD_CLOEXEC));
	ivshmem_outq_init(&q);
	ivshmem_inbuf_init(&in);
	for (int64_t i = 0; i < N; i++)
		ck_assert_int_eq(ivshmem_outq_push(&q, i,
				 i % 3 ? refs[i % NFD] : NULL), 0);
	/* The queue holds references: the owner may let go now. */
	for (int i = 0; i < NFD; i++)
		ivshmem_fdref_unref(refs[i]);

	int stalls = 0;

	while (next < N) {
		r = ivshmem_outq_flush(&q, sp[0]);
		ck_assert(r == 0 || r == -EAGAIN);
		if (r == -EAGAIN)
			stalls++;
		while ((r = ivshmem_wire_recv(sp[1], &in, &v, &fd)) == 1) {
			ck_assert(v == next);
			if (next % 3) {
				ck_assert_int_ge(fd, 0);
				ck_assert(fd_is_eventfd(fd));
				close(fd);
			} else {
				ck_assert_int_eq(fd, -1);
			}
			next++;
		}
		ck_assert_int_eq(r, -EAGAIN);
	}
	ck_assert(ivshmem_outq_empty(&q));
	/* The buffer was small enough that the queue had to wait. */
	ck_assert_int_gt(stalls, 0);
	/* The large ring is given back once empty, and the queue works on. */
	ck_assert_uint_gt(q.cap, 64);
	ivshmem_outq_trim(&q);
	ck_assert_uint_eq(q.cap, 0);
	ck_assert_ptr_null(q.ring);
	ck_assert_int_eq(ivshmem_outq_push(&q, 5, NULL), 0);
	ck_assert_int_eq(ivshmem_outq_flush(&q, sp[0]), 0);
	ck_assert_int_eq(ivshmem_wire_recv(sp[1], &in, &v, &fd), 1);
	ck_assert(v == 5);
	ivshmem_outq_clear(&q);
}
END_TEST

START_TEST(flush_to_closed_peer)
{
	struct ivshmem_outq q;

	ivshmem_outq_init(&q);
	ck_assert_int_eq(ivshmem_outq_push(&q, 1, NULL), 0);
	close(sp[1]);
	/* MSG_NOSIGNAL: an error, not SIGPIPE. */
	ck_assert_int_eq(ivshmem_outq_flush(&q, sp[0]), -EPIPE);
	ivshmem_outq_clear(&q);
	sp[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}
END_TEST

START_TEST(clear_releases_fds)
{
	struct ivshmem_outq q;
	struct ivshmem_fdref *r = ivshmem_fdref_new(eventfd(0, EFD_CLOEXEC));
	int fd = r->fd;

	ivshmem_outq_init(&q);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(ivshmem_outq_push(&q, i, r), 0);
	ck_assert_uint_eq(r->refs, 1001);
	ivshmem_fdref_unref(r);
	ck_assert(fcntl(fd, F_GETFD) >= 0);
	ivshmem_outq_clear(&q);
	/* The last reference closed it. */
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_with("wire", 0, NULL);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, encode_little_endian);
	tcase_add_test(tc, send_recv_fd);
	tcase_add_test(tc, partial_message);
	tcase_add_test(tc, eof_boundary_and_mid_message);
	tcase_add_test(tc, two_fds_one_message);
	tcase_add_test(tc, queue_wraps_in_order);
	tcase_add_test(tc, flush_to_closed_peer);
	tcase_add_test(tc, clear_releases_fds);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
