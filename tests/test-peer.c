/* SPDX-License-Identifier: MIT */
/*
 * The peer side against a scripted server: the test writes the server's
 * messages into one end of a socketpair (ivshmem_wire_send, or raw sendmsg
 * for malformed ones) and the library reads the other end. Every test
 * checks the callbacks, the state, and that no fd is leaked: each fd the
 * test sends is compared (kcmp) with the fds of the process to see whether
 * the library still holds it.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"
#include "trec.h"
#include "wire-private.h"

#define SHM_SIZE (64 * 1024)

/* ---- what the callbacks saw ------------------------------------------- */

/* The user pointer of the peer under test (there is one at a time). */
static struct trec rec;

/* ---- fds ---------------------------------------------------------------- */

/* Do a and b refer to the same open file description? */
static bool same_file(int a, int b)
{
	pid_t me = getpid();
	long r = syscall(SYS_kcmp, (long)me, (long)me, (long)KCMP_FILE,
			 (long)a, (long)b);
	struct stat sa, sb;

	if (r >= 0)
		return r == 0;
	/* No kcmp (seccomp): the inode is the next best thing. */
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* How many other fds of this process refer to the open file of fd: 0 once
 * the library has closed the copy the test sent it. */
static int copies(int fd)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		int other;

		if (e->d_name[0] == '.')
			continue;
		other = atoi(e->d_name);
		if (other != fd && other != dirfd(d) && same_file(fd, other))
			n++;
	}
	closedir(d);
	return n;
}

static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* The other end of this socket is closed. (It never sends anything: EOF,
 * or ECONNRESET when it closed with data left unread.) */
static bool other_end_closed(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	char c;
	ssize_t n;

	if (poll(&p, 1, 0) != 1 || !(p.revents & (POLLHUP | POLLIN)))
		return false;
	n = recv(sock, &c, 1, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Read an eventfd: its count, or 0 when it was not rung. */
static uint64_t efd_take(int fd)
{
	uint64_t v = 0;
	ssize_t n = read(fd, &v, sizeof(v));

	if (n < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		return 0;
	}
	ck_assert_int_eq(n, sizeof(v));
	return v;
}

static void efd_add(int fd, uint64_t v)
{
	ck_assert_int_eq(write(fd, &v, sizeof(v)), sizeof(v));
}

/* ---- the fixture: one peer, one scripted server end ------------------- */

static struct ivshmem_peer *peer;
static int srv = -1;            /* the test's end: the server */
static int kept[128];           /* the test's own fds, closed by finish() */
static unsigned nkept;
static void *tmap;              /* the test's mapping of its shm */
static size_t tmap_size;

static int keep(int fd)
{
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(nkept, sizeof(kept) / sizeof(kept[0]));
	kept[nkept++] = fd;
	return fd;
}

/* A new peer (cfg NULL: defaults), connected to a fresh socketpair. */
static void start(const struct ivshmem_peer_config *cfg)
{
	const struct ivshmem_peer_config dflt = { 0 };
	int sp[2];

	trec_reset(&rec);
	nkept = 0;
	tmap = NULL;
	ck_assert_int_eq(ivshmem_peer_new(cfg ? cfg : &dflt, &trec_ops, &rec,
					  &peer), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer), IVSHMEM_PEER_IDLE);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sp), 0);
	srv = sp[0];
	ck_assert_int_eq(ivshmem_peer_connect_fd(peer, sp[1]), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer),
			 IVSHMEM_PEER_CONNECTING);
}

/* Free everything (the fd check then finds the fds the test had before). */
static void finish(void)
{
	ivshmem_peer_free(peer);
	peer = NULL;
	if (srv >= 0)
		close(srv);
	srv = -1;
	for (unsigned i = 0; i < nkept; i++)
		close(kept[i]);
	nkept = 0;
	if (tmap)
		munmap(tmap, tmap_size);
	tmap = NULL;
}

/* The server closes its end. */
static void server_close(void)
{
	ck_assert_int_eq(close(srv), 0);
	srv = -1;
}

static void send_msg(int64_t value, int fd)
{
	ck_assert_int_eq(ivshmem_wire_send(srv, value, fd), 0);
}

/* One sendmsg of the first len bytes of value's encoding, with nfds fds in
 * one SCM_RIGHTS cmsg. */
static void send_raw(int64_t value, size_t len, const int *fds,
		     unsigned nfds)
{
	uint8_t b[IVSHMEM_MSG_SIZE];

	ck_assert_uint_le(len, sizeof(b));
	ivshmem_msg_encode(value, b);
	ck_assert_int_eq(tsend_fds(srv, b, len, fds, nfds, 0), (ssize_t)len);
}

static int new_eventfd(void)
{
	return keep(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
}

/* The write end of a pipe (the read end is closed): not an eventfd, not
 * mappable. */
static int new_pipe(void)
{
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	return keep(p[1]);
}

/* A memfd of size bytes; map it as tmap when map is set. */
static int new_shm(size_t size, bool map)
{
	int fd = keep(memfd_create("test-peer", MFD_CLOEXEC));

	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	if (map) {
		ck_assert_ptr_null(tmap);
		tmap = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			    fd, 0);
		ck_assert(tmap != MAP_FAILED);
		tmap_size = size;
	}
	return fd;
}

/* Version, own ID and the shm fd. */
static void send_head(int id, int shm)
{
	send_msg(0, -1);
	send_msg(id, -1);
	send_msg(-1, shm);
}

/* n vector messages for id, a new eventfd each, kept in efd[]. */
static void send_vectors(int id, unsigned n, int *efd)
{
	for (unsigned v = 0; v < n; v++) {
		efd[v] = new_eventfd();
		send_msg(id, efd[v]);
	}
}

/* A greeting with no other peer: head and n own vectors, then ready. */
static void greet_ready(int id, unsigned n, int *own)
{
	send_head(id, new_shm(SHM_SIZE, true));
	send_vectors(id, n, own);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer), IVSHMEM_PEER_READY);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 1);
}

/*
 * The connection must end with err: returned by dispatch (or wait_ready
 * when wait is set), reported once to ops->disconnected, the state
 * DISCONNECTED, the socket closed, and nothing happens afterwards.
 */
static void expect_error(int err, bool wait)
{
	int r;

	rec.warnings_ok = true;
	if (wait)
		r = ivshmem_peer_wait_ready(peer, 2000);
	else
		r = ivshmem_peer_dispatch(peer);
	ck_assert_msg(r == err, "%s returned %d (%s), want %d (%s)",
		      wait ? "wait_ready" : "dispatch", r,
		      ivshmem_strerror(r), err, ivshmem_strerror(err));
	ck_assert_int_eq(ivshmem_peer_get_state(peer),
			 IVSHMEM_PEER_DISCONNECTED);
	ck_assert_uint_eq(trec_count(&rec, EV_DISCONNECTED, 0), 1);
	ck_assert_int_eq(trec_last(&rec, EV_DISCONNECTED)->error, err);
	if (srv >= 0)
		ck_assert_msg(other_end_closed(srv),
			      "the peer did not close its socket");
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 0), -ENOTCONN);
	ck_assert_int_eq(ivshmem_peer_disconnect(peer), -ENOTCONN);
	ck_assert_uint_eq(trec_count(&rec, EV_DISCONNECTED, 0), 1);
}

/* An error during the greeting: never ready, nothing of the stream kept. */
static void expect_greeting_error(int err, bool wait)
{
	expect_error(err, wait);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 0);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, NULL, 0), 0);
}

/* ---- the happy path ------------------------------------------------------ */

/*
 * Every test below but the first starts from the same greeting: own ID
 * HP_OWN, HP_V vectors, after peers HP_A and HP_B (not in ID order), HP_V
 * vectors each; the test holds their eventfds and the shared memory (its
 * own mapping, tmap, says "written by the test").
 */
enum { HP_V = 3, HP_OWN = 2, HP_A = 3, HP_B = 1, HP_C = 7 };

static struct {
	int ea[HP_V], eb[HP_V], eo[HP_V], shm;
} hp;

static void happy_start(void)
{
	start(NULL);
	hp.shm = new_shm(SHM_SIZE, true);
	strcpy(tmap, "written by the test");
	send_head(HP_OWN, hp.shm);
	send_vectors(HP_A, HP_V, hp.ea);
	send_vectors(HP_B, HP_V, hp.eb);
	send_vectors(HP_OWN, HP_V, hp.eo);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_uint_eq(rec.nevs, 3);
}

/* Still ready, once, never disconnected, nothing logged; then freed. */
static void happy_finish(void)
{
	ck_assert_int_eq(ivshmem_peer_get_state(peer), IVSHMEM_PEER_READY);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 1);
	ck_assert_uint_eq(trec_count(&rec, EV_DISCONNECTED, 0), 0);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}

/* ivshmem-protocol(7) rule 17: version, own ID, shm, the others' vectors,
 * own vectors last; each other peer is reported joined, then ready,
 * once. */
START_TEST(greeting_joins_then_ready)
{
	enum { V = HP_V, OWN = HP_OWN, A = HP_A, B = HP_B };
	int ea[V], eb[V], eo[V], shm;
	void *addr = NULL;
	uint64_t size = 0;

	start(NULL);
	shm = new_shm(SHM_SIZE, true);
	strcpy(tmap, "written by the test");
	ck_assert_int_eq(ivshmem_peer_get_id(peer), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &addr, &size), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_get_shm_fd(peer), -ENODATA);

	send_head(OWN, shm);
	ck_assert(readable(ivshmem_peer_get_fd(peer), 1000));
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer),
			 IVSHMEM_PEER_CONNECTING);
	ck_assert_int_eq(ivshmem_peer_get_id(peer), OWN);
	ck_assert_int_eq(ivshmem_peer_get_vector_fd(peer, 0), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 50), -ETIMEDOUT);

	/* Two peers already connected (not in ID order), then our own
	 * vectors: each is reported joined, then ready, once. */
	send_vectors(A, V, ea);
	send_vectors(B, V, eb);
	send_vectors(OWN, V, eo);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer), IVSHMEM_PEER_READY);
	ck_assert_uint_eq(rec.nevs, 3);
	ck_assert_int_eq(rec.evs[0].kind, EV_JOINED);
	ck_assert_int_eq(rec.evs[0].id, A);
	ck_assert_uint_eq(rec.evs[0].n, V);
	ck_assert_int_eq(rec.evs[1].kind, EV_JOINED);
	ck_assert_int_eq(rec.evs[1].id, B);
	ck_assert_uint_eq(rec.evs[1].n, V);
	ck_assert_int_eq(rec.evs[2].kind, EV_READY);
	ck_assert_int_eq(rec.evs[2].state, IVSHMEM_PEER_READY);
	ck_assert_int_eq(rec.evs[2].id, OWN);
	ck_assert_uint_eq(rec.evs[2].n, V);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 0), 0);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(rec.nevs, 3);
	happy_finish();
}
END_TEST

/* The peer table: the own ID, the others in ID order, bad IDs refused. */
START_TEST(table_after_greeting)
{
	enum { V = HP_V, OWN = HP_OWN, A = HP_A, B = HP_B, C = HP_C };
	int ids[4];

	happy_start();
	ck_assert_int_eq(ivshmem_peer_get_id(peer), OWN);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, OWN), V);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, A), V);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, B), V);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, C), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, -1), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 65536), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, NULL, 0), 2);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, ids, 4), 2);
	ck_assert_int_eq(ids[0], B);
	ck_assert_int_eq(ids[1], A);
	ids[1] = -7;
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, ids, 1), 2);
	ck_assert_int_eq(ids[0], B);
	ck_assert_int_eq(ids[1], -7);
	happy_finish();
}
END_TEST

/* The shared memory, both ways, and its fd is the one received. */
START_TEST(shm_both_ways)
{
	void *addr = NULL;
	uint64_t size = 0;
	int shm_fd;

	happy_start();
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &addr, &size), 0);
	ck_assert_ptr_nonnull(addr);
	ck_assert_uint_eq(size, SHM_SIZE);
	ck_assert_str_eq(addr, "written by the test");
	strcpy((char *)addr + 1000, "written by the peer");
	ck_assert_str_eq((char *)tmap + 1000, "written by the peer");
	((char *)tmap)[SHM_SIZE - 1] = 'z';
	ck_assert_int_eq(((char *)addr)[SHM_SIZE - 1], 'z');
	shm_fd = ivshmem_peer_get_shm_fd(peer);
	ck_assert_int_ge(shm_fd, 0);
	ck_assert(same_file(shm_fd, hp.shm));
	happy_finish();
}
END_TEST

/* ivshmem-protocol(7) rule 8: ringing another peer writes 1 to exactly
 * that eventfd; unknown peers and vectors are refused. */
START_TEST(ring_other_peer)
{
	enum { V = HP_V, A = HP_A, B = HP_B, C = HP_C };
	int *ea = hp.ea, *eb = hp.eb, *eo = hp.eo;

	happy_start();
	ck_assert_int_eq(ivshmem_peer_ring(peer, A, 2), 0);
	ck_assert_uint_eq(efd_take(ea[2]), 1);
	ck_assert_int_eq(ivshmem_peer_ring(peer, B, 0), 0);
	ck_assert_int_eq(ivshmem_peer_ring(peer, B, 0), 0);
	ck_assert_uint_eq(efd_take(eb[0]), 2);
	for (unsigned v = 0; v < V; v++) {
		ck_assert_uint_eq(efd_take(ea[v]), 0);
		ck_assert_uint_eq(efd_take(eb[v]), 0);
		ck_assert_uint_eq(efd_take(eo[v]), 0);
	}
	ck_assert_int_eq(ivshmem_peer_ring(peer, C, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_ring(peer, 70000, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_ring(peer, -1, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_ring(peer, A, V), -ERANGE);
	ck_assert_int_eq(ivshmem_peer_ring(peer, A, 1000), -ERANGE);
	happy_finish();
}
END_TEST

/* ivshmem-protocol(7) rule 8: a doorbell on an own vector is reported
 * with the vector and the eventfd's count, which the peer reads. */
START_TEST(doorbell_own_vector_count)
{
	int *eo = hp.eo;

	happy_start();
	efd_add(eo[2], 1);
	efd_add(eo[2], 1);
	ck_assert(readable(ivshmem_peer_get_fd(peer), 1000));
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(rec.nevs, 4);
	ck_assert_int_eq(rec.evs[3].kind, EV_DOORBELL);
	ck_assert_uint_eq(rec.evs[3].n, 2);
	ck_assert_uint_eq(rec.evs[3].count, 2);
	ck_assert_uint_eq(efd_take(eo[2]), 0); /* the peer took it */

	efd_add(eo[0], 5);
	efd_add(eo[1], 1);
	ck_assert(readable(ivshmem_peer_get_fd(peer), 1000));
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(rec.nevs, 6);
	for (unsigned i = 4; i < 6; i++) {
		ck_assert_int_eq(rec.evs[i].kind, EV_DOORBELL);
		ck_assert_uint_eq(rec.evs[i].count, rec.evs[i].n == 0 ? 5 : 1);
	}
	ck_assert_uint_ne(rec.evs[4].n, rec.evs[5].n);
	happy_finish();
}
END_TEST

/* ivshmem-protocol(7) rule 14: ringing one's own ID is allowed. */
START_TEST(ring_own_id)
{
	enum { OWN = HP_OWN };

	happy_start();
	ck_assert_int_eq(ivshmem_peer_ring(peer, OWN, 1), 0);
	ck_assert(readable(ivshmem_peer_get_fd(peer), 1000));
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(rec.nevs, 4);
	ck_assert_int_eq(rec.evs[3].kind, EV_DOORBELL);
	ck_assert_uint_eq(rec.evs[3].n, 1);
	ck_assert_uint_eq(rec.evs[3].count, 1);
	happy_finish();
}
END_TEST

/* Direct access to an own vector: reading it takes the doorbell. */
START_TEST(own_vector_fd_takes_doorbell)
{
	enum { V = HP_V };
	int *eo = hp.eo, vfd;

	happy_start();
	vfd = ivshmem_peer_get_vector_fd(peer, 1);
	ck_assert_int_ge(vfd, 0);
	ck_assert(same_file(vfd, eo[1]));
	ck_assert_int_eq(ivshmem_peer_get_vector_fd(peer, V), -ERANGE);
	efd_add(eo[1], 1);
	ck_assert_uint_eq(efd_take(vfd), 1);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(rec.nevs, 3);
	happy_finish();
}
END_TEST

/* A later join of C (V vector messages) as event 3, the table after it. */
static void join_c(int *ec)
{
	enum { V = HP_V, A = HP_A, B = HP_B, C = HP_C };
	int ids[4];

	send_vectors(C, V, ec);
	ck_assert(readable(ivshmem_peer_get_fd(peer), 1000));
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(rec.nevs, 4);
	ck_assert_int_eq(rec.evs[3].kind, EV_JOINED);
	ck_assert_int_eq(rec.evs[3].id, C);
	ck_assert_uint_eq(rec.evs[3].n, V);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, C), V);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, ids, 4), 3);
	ck_assert_int_eq(ids[0], B);
	ck_assert_int_eq(ids[1], A);
	ck_assert_int_eq(ids[2], C);
}

/* ivshmem-protocol(7) rule 5: a newcomer's V vector messages are a join;
 * it can be rung at once. */
START_TEST(join_after_greeting)
{
	enum { C = HP_C };
	int ec[HP_V];

	happy_start();
	join_c(ec);
	ck_assert_int_eq(ivshmem_peer_ring(peer, C, 2), 0);
	ck_assert_uint_eq(efd_take(ec[2]), 1);
	happy_finish();
}
END_TEST

/* After ready, a peer announced with fewer vectors than the own count
 * is reported once the stream pauses, not only when another message
 * comes. */
START_TEST(join_fewer_vectors_after_pause)
{
	enum { C = HP_C };
	int ec[HP_V - 1], ids[4];
	double t0 = now_seconds();

	happy_start();
	send_vectors(C, HP_V - 1, ec);
	while (trec_count(&rec, EV_JOINED, 0) < 3 && now_seconds() - t0 < 5) {
		if (readable(ivshmem_peer_get_fd(peer), 1000))
			ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	}
	ck_assert_uint_eq(rec.nevs, 4);
	ck_assert_int_eq(rec.evs[3].kind, EV_JOINED);
	ck_assert_int_eq(rec.evs[3].id, C);
	ck_assert_uint_eq(rec.evs[3].n, HP_V - 1);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, ids, 4), 3);
	ck_assert_int_eq(ivshmem_peer_ring(peer, C, HP_V - 2), 0);
	ck_assert_uint_eq(efd_take(ec[HP_V - 2]), 1);
	happy_finish();
}
END_TEST

/* ivshmem-protocol(7) rule 6: a leave closes that peer's eventfds (and
 * only those). */
START_TEST(leave_closes_eventfds)
{
	enum { V = HP_V, A = HP_A, B = HP_B, C = HP_C };
	int *ea = hp.ea, *eb = hp.eb, ec[HP_V], ids[4], fds;

	happy_start();
	join_c(ec);
	for (unsigned v = 0; v < V; v++)
		ck_assert_int_eq(copies(ea[v]), 1);
	fds = count_open_fds();
	send_msg(A, -1);
	ck_assert(readable(ivshmem_peer_get_fd(peer), 1000));
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(rec.nevs, 5);
	ck_assert_int_eq(rec.evs[4].kind, EV_LEFT);
	ck_assert_int_eq(rec.evs[4].id, A);
	ck_assert_int_eq(count_open_fds(), fds - V);
	for (unsigned v = 0; v < V; v++) {
		ck_assert_int_eq(copies(ea[v]), 0);
		ck_assert_int_eq(copies(eb[v]), 1);
	}
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, A), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_ring(peer, A, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, ids, 4), 2);
	ck_assert_int_eq(ids[0], B);
	ck_assert_int_eq(ids[1], C);
	happy_finish();
}
END_TEST

/* A peer that left and comes back with the same ID (IDs are reused once
 * the server's counter wraps) is a new join. */
START_TEST(rejoin_same_id)
{
	int own[2], e1[2], e2[2];

	start(NULL);
	send_head(0, new_shm(SHM_SIZE, true));
	send_vectors(1, 2, e1);
	send_vectors(0, 2, own);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	send_msg(1, -1);
	send_vectors(1, 2, e2);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(rec.nevs, 4);
	ck_assert_int_eq(rec.evs[2].kind, EV_LEFT);
	ck_assert_int_eq(rec.evs[2].id, 1);
	ck_assert_int_eq(rec.evs[3].kind, EV_JOINED);
	ck_assert_int_eq(rec.evs[3].id, 1);
	ck_assert_uint_eq(rec.evs[3].n, 2);
	ck_assert_int_eq(copies(e1[0]), 0);
	ck_assert_int_eq(copies(e1[1]), 0);
	ck_assert_int_eq(ivshmem_peer_ring(peer, 1, 1), 0);
	ck_assert_uint_eq(efd_take(e2[1]), 1);
	ck_assert_uint_eq(efd_take(e1[1]), 0);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}
END_TEST

/* IVSHMEM_PEER_NO_MAP: no mapping, the fd instead. */
START_TEST(no_map)
{
	const struct ivshmem_peer_config cfg = {
		.flags = IVSHMEM_PEER_NO_MAP,
	};
	int own[1], shm, fd;
	void *addr = (void *)1;
	uint64_t size = 0;
	char buf[8] = "";

	start(&cfg);
	shm = new_shm(SHM_SIZE, false);
	ck_assert_int_eq(pwrite(shm, "abc", 4, 4096), 4);
	send_head(0, shm);
	send_vectors(0, 1, own);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &addr, &size), 0);
	ck_assert_ptr_null(addr);
	ck_assert_uint_eq(size, SHM_SIZE);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, NULL, NULL), 0);
	fd = ivshmem_peer_get_shm_fd(peer);
	ck_assert_int_ge(fd, 0);
	ck_assert(same_file(fd, shm));
	ck_assert_int_eq(pread(fd, buf, 4, 4096), 4);
	ck_assert_str_eq(buf, "abc");
	ck_assert_int_eq(ivshmem_peer_get_id(peer), 0);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}
END_TEST

/* config.shm_size given and matching. */
START_TEST(shm_size_matches)
{
	const struct ivshmem_peer_config cfg = { .shm_size = SHM_SIZE };
	int own[2];
	uint64_t size = 0;

	start(&cfg);
	greet_ready(9, 2, own);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, NULL, &size), 0);
	ck_assert_uint_eq(size, SHM_SIZE);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 9), 2);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}
END_TEST

/*
 * config.vectors smaller than the server's: the extra fds (in the greeting,
 * in a later join, and own ones after ready) are closed, and that is no
 * error. The extras may be logged, once per peer ID.
 */
START_TEST(more_vectors_than_configured)
{
	const struct ivshmem_peer_config cfg = { .vectors = 2 };
	enum { SV = 3, OWN = 4, A = 1, C = 6 };
	int ea[SV], eo[SV], ec[SV], extra[2], fds;
	unsigned logs;

	start(&cfg);
	rec.warnings_ok = true;
	send_head(OWN, new_shm(SHM_SIZE, true));
	send_vectors(A, SV, ea);
	send_vectors(OWN, SV, eo);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer), IVSHMEM_PEER_READY);
	ck_assert_uint_eq(rec.nevs, 2);
	ck_assert_int_eq(rec.evs[0].kind, EV_JOINED);
	ck_assert_int_eq(rec.evs[0].id, A);
	ck_assert_uint_eq(rec.evs[0].n, 2);
	ck_assert_int_eq(rec.evs[1].kind, EV_READY);
	ck_assert_uint_eq(rec.evs[1].n, 2);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, A), 2);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, OWN), 2);
	for (unsigned v = 0; v < 2; v++) {
		ck_assert_int_eq(copies(ea[v]), 1);
		ck_assert_int_eq(copies(eo[v]), 1);
	}
	ck_assert_int_eq(copies(ea[2]), 0);
	ck_assert_int_eq(copies(eo[2]), 0);
	ck_assert_int_eq(ivshmem_peer_get_vector_fd(peer, 2), -ERANGE);
	ck_assert_int_eq(ivshmem_peer_ring(peer, A, 2), -ERANGE);
	ck_assert_int_eq(ivshmem_peer_ring(peer, A, 1), 0);
	ck_assert_uint_eq(efd_take(ea[1]), 1);

	/* A later join with 3 vectors: 2 kept. */
	fds = count_open_fds();
	send_vectors(C, SV, ec);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(count_open_fds(), fds + SV + 2);
	ck_assert_uint_eq(rec.nevs, 3);
	ck_assert_int_eq(rec.evs[2].kind, EV_JOINED);
	ck_assert_int_eq(rec.evs[2].id, C);
	ck_assert_uint_eq(rec.evs[2].n, 2);
	ck_assert_int_eq(copies(ec[2]), 0);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, C), 2);

	/* More own vectors after ready: closed, and no new log message
	 * (the extras of this ID were logged already). */
	logs = rec.nlog;
	send_vectors(OWN, 2, extra);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(copies(extra[0]), 0);
	ck_assert_int_eq(copies(extra[1]), 0);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, OWN), 2);
	ck_assert_uint_eq(rec.nlog, logs);

	ck_assert_int_eq(ivshmem_peer_get_state(peer), IVSHMEM_PEER_READY);
	ck_assert_uint_eq(trec_count(&rec, EV_DISCONNECTED, 0), 0);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 1);
	/* Logged at most once per peer ID that had extras (A, OWN, C). */
	ck_assert_uint_le(rec.nlog, 3);
	finish();
}
END_TEST

/* A greeting split inside the own vectors (the server wrote it in two
 * goes): not ready at the pause, ready at once when the configured count
 * is complete, with all of them. */
START_TEST(split_own_vectors_not_ready_early)
{
	const struct ivshmem_peer_config cfg = { .vectors = 2 };
	int own[2];

	start(&cfg);
	send_head(3, new_shm(SHM_SIZE, true));
	send_vectors(3, 1, own);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 100), -ETIMEDOUT);
	ck_assert_int_eq(ivshmem_peer_get_state(peer),
			 IVSHMEM_PEER_CONNECTING);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 0);
	send_msg(3, own[1] = new_eventfd());
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer), IVSHMEM_PEER_READY);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 1);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 3), 2);
	finish();
}
END_TEST

/* config.vectors larger than the server's: fewer vectors, ready once the
 * stream has stayed quiet after the own vectors (one empty read is not
 * enough: the rest of a greeting may still be on its way). */
START_TEST(fewer_vectors_ready_on_pause)
{
	const struct ivshmem_peer_config cfg = { .vectors = 4 };
	int own[2];
	double t0;

	start(&cfg);
	send_head(3, new_shm(SHM_SIZE, true));
	send_vectors(3, 2, own);
	t0 = now_seconds();
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer),
			 IVSHMEM_PEER_CONNECTING);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 5000), 0);
	ck_assert(now_seconds() - t0 >= 0.2);
	ck_assert_int_eq(ivshmem_peer_get_state(peer), IVSHMEM_PEER_READY);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 1);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 3), 2);
	ck_assert_int_ge(ivshmem_peer_get_vector_fd(peer, 1), 0);
	ck_assert_int_eq(ivshmem_peer_get_vector_fd(peer, 2), -ERANGE);
	efd_add(own[1], 1);
	ck_assert(readable(ivshmem_peer_get_fd(peer), 1000));
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(trec_last(&rec, EV_DOORBELL)->n, 1);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}
END_TEST

/* config.vectors larger than the server's: ready when another message
 * follows the own vectors (before it is handled). */
START_TEST(fewer_vectors_ready_on_next_message)
{
	const struct ivshmem_peer_config cfg = { .vectors = 4 };
	int own[2], e9[2];

	start(&cfg);
	send_head(3, new_shm(SHM_SIZE, true));
	send_vectors(3, 2, own);
	send_vectors(9, 2, e9);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(rec.nevs, 2);
	ck_assert_int_eq(rec.evs[0].kind, EV_READY);
	ck_assert_uint_eq(rec.evs[0].n, 2);
	ck_assert_int_eq(rec.evs[1].kind, EV_JOINED);
	ck_assert_int_eq(rec.evs[1].id, 9);
	ck_assert_uint_eq(rec.evs[1].n, 2);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 3), 2);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 9), 2);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}
END_TEST

/* vectors 0, nobody else: the pause ends the greeting, and an own vector
 * that comes after it is still added. */
START_TEST(own_vectors_grow_after_pause)
{
	int own[1], late[1], vfd;

	start(NULL);
	greet_ready(5, 1, own);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 5), 1);
	ck_assert_int_eq(ivshmem_peer_get_vector_fd(peer, 1), -ERANGE);
	send_vectors(5, 1, late);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 5), 2);
	vfd = ivshmem_peer_get_vector_fd(peer, 1);
	ck_assert_int_ge(vfd, 0);
	ck_assert(same_file(vfd, late[0]));
	efd_add(late[0], 1);
	ck_assert(readable(ivshmem_peer_get_fd(peer), 1000));
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(trec_last(&rec, EV_DOORBELL)->n, 1);
	ck_assert_uint_eq(trec_last(&rec, EV_DOORBELL)->count, 1);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 1);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}
END_TEST

/* ---- the server goes away, and the peer comes back ---------------------- */

START_TEST(eof_after_greeting)
{
	int ea[2], eo[2], vfd;
	void *addr = NULL, *addr2 = NULL;

	start(NULL);
	send_head(1, new_shm(SHM_SIZE, true));
	strcpy(tmap, "before");
	send_vectors(0, 2, ea);
	send_vectors(1, 2, eo);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &addr, NULL), 0);

	server_close();
	ck_assert(readable(ivshmem_peer_get_fd(peer), 1000));
	expect_error(-ECONNRESET, false);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 1);

	/* What was received stays usable. */
	ck_assert_int_eq(ivshmem_peer_get_id(peer), 1);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &addr2, NULL), 0);
	ck_assert_ptr_eq(addr, addr2);
	ck_assert_str_eq(addr, "before");
	strcpy(tmap, "after");
	ck_assert_str_eq(addr, "after");
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 0), 2);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, NULL, 0), 1);
	ck_assert_int_eq(ivshmem_peer_ring(peer, 0, 1), 0);
	ck_assert_uint_eq(efd_take(ea[1]), 1);
	vfd = ivshmem_peer_get_vector_fd(peer, 0);
	ck_assert_int_ge(vfd, 0);
	efd_add(eo[0], 1);
	ck_assert_uint_eq(efd_take(vfd), 1);
	finish();
}
END_TEST

/* After -ECONNRESET, a new connection: ready again, the mapping at the same
 * address with the new shared memory's content. */
START_TEST(reconnect_keeps_address)
{
	int ea[1], eo[1], eo2[2], shm1, shm2, sp[2], fd;
	void *addr1 = NULL, *addr2 = NULL, *map2;

	start(NULL);
	fd = ivshmem_peer_get_fd(peer);
	ck_assert_int_ge(fd, 0);
	shm1 = new_shm(SHM_SIZE, true);
	strcpy(tmap, "first");
	send_head(1, shm1);
	send_vectors(0, 1, ea);
	send_vectors(1, 1, eo);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &addr1, NULL), 0);
	ck_assert_str_eq(addr1, "first");
	server_close();
	expect_error(-ECONNRESET, false);

	shm2 = new_shm(SHM_SIZE, false);
	map2 = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, shm2,
		    0);
	ck_assert(map2 != MAP_FAILED);
	strcpy(map2, "second");

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sp), 0);
	srv = sp[0];
	ck_assert_int_eq(ivshmem_peer_connect_fd(peer, sp[1]), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer),
			 IVSHMEM_PEER_CONNECTING);
	ck_assert_int_eq(ivshmem_peer_get_fd(peer), fd);
	/* The last connection's table and own eventfds are gone. */
	ck_assert_int_eq(copies(ea[0]), 0);
	ck_assert_int_eq(copies(eo[0]), 0);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, NULL, 0), 0);
	/* The mapping stays until the new shared memory arrives. */
	ck_assert_str_eq(addr1, "first");

	send_head(7, shm2);
	send_vectors(7, 2, eo2);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 2);
	ck_assert_uint_eq(trec_count(&rec, EV_DISCONNECTED, 0), 1);
	ck_assert_int_eq(ivshmem_peer_get_id(peer), 7);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 7), 2);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &addr2, NULL), 0);
	ck_assert_ptr_eq(addr2, addr1);
	ck_assert_str_eq(addr2, "second");
	strcpy((char *)addr2 + 64, "through the new mapping");
	ck_assert_str_eq((char *)map2 + 64, "through the new mapping");
	ck_assert_str_eq(tmap, "first");
	ck_assert_int_eq(copies(shm1), 0);
	ck_assert_int_eq(copies(shm2), 1);
	munmap(map2, SHM_SIZE);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}
END_TEST

/* ivshmem_peer_disconnect(): like the server going away, without the
 * callback; then a new connection works. */
START_TEST(disconnect_keeps_resources)
{
	int own[1], own2[1], sp[2];
	void *addr = NULL;

	start(NULL);
	greet_ready(2, 1, own);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &addr, NULL), 0);
	strcpy(tmap, "kept");
	ck_assert_int_eq(ivshmem_peer_disconnect(peer), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(peer),
			 IVSHMEM_PEER_DISCONNECTED);
	ck_assert(other_end_closed(srv));
	ck_assert_uint_eq(trec_count(&rec, EV_DISCONNECTED, 0), 0);
	ck_assert_str_eq(addr, "kept");
	ck_assert_int_eq(ivshmem_peer_get_id(peer), 2);
	ck_assert_int_eq(ivshmem_peer_ring(peer, 2, 0), 0);
	ck_assert_uint_eq(efd_take(own[0]), 1);
	ck_assert_int_eq(ivshmem_peer_disconnect(peer), -ENOTCONN);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 0), -ENOTCONN);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_uint_eq(trec_count(&rec, EV_DISCONNECTED, 0), 0);

	close(srv);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sp), 0);
	srv = sp[0];
	ck_assert_int_eq(ivshmem_peer_connect_fd(peer, sp[1]), 0);
	send_head(3, new_shm(SHM_SIZE, false));
	send_vectors(3, 1, own2);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(ivshmem_peer_get_id(peer), 3);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 2);
	ck_assert_int_eq(copies(own[0]), 0);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}
END_TEST

/* ---- malformed streams ------------------------------------------------- */

/* 4 bytes, then the writer closes. */
START_TEST(short_message_eof)
{
	start(NULL);
	send_msg(0, -1);
	send_raw(5, 4, NULL, 0);
	server_close();
	expect_greeting_error(-EPROTO, false);
	finish();
}
END_TEST

/* 4 bytes and the writer stays: not ready, not an error; the rest of the
 * message completes it. */
START_TEST(short_message_open)
{
	uint8_t b[IVSHMEM_MSG_SIZE];
	int own[1];

	start(NULL);
	send_msg(0, -1);
	send_raw(5, 4, NULL, 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 100), -ETIMEDOUT);
	ck_assert_int_eq(ivshmem_peer_get_state(peer),
			 IVSHMEM_PEER_CONNECTING);
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(ivshmem_peer_get_id(peer), -ENODATA);
	ck_assert_uint_eq(rec.nevs, 0);

	ivshmem_msg_encode(5, b);
	ck_assert_int_eq(write(srv, b + 4, 4), 4);
	send_msg(-1, new_shm(SHM_SIZE, false));
	send_vectors(5, 1, own);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(ivshmem_peer_get_id(peer), 5);
	ck_assert_uint_eq(rec.nwarn, 0);
	finish();
}
END_TEST

/* EOF in the middle of a message that came with an fd: that fd is closed. */
START_TEST(eof_mid_message_with_fd)
{
	int pw;

	start(NULL);
	send_msg(0, -1);
	send_msg(1, -1);
	pw = new_pipe();
	send_raw(-1, 4, &pw, 1);
	server_close();
	expect_greeting_error(-EPROTO, false);
	ck_assert_int_eq(copies(pw), 0);
	finish();
}
END_TEST

START_TEST(eof_before_anything)
{
	start(NULL);
	server_close();
	expect_greeting_error(-ECONNREFUSED, true);
	ck_assert_int_eq(ivshmem_peer_get_id(peer), -ENODATA);
	finish();
}
END_TEST

/* The server goes away in the middle of the greeting. */
START_TEST(eof_mid_greeting)
{
	start(NULL);
	send_msg(0, -1);
	send_msg(4, -1);
	server_close();
	expect_greeting_error(-ECONNRESET, false);
	finish();
}
END_TEST

START_TEST(version_1)
{
	start(NULL);
	send_msg(1, -1);
	send_msg(0, -1);
	expect_greeting_error(-EPROTONOSUPPORT, true);
	finish();
}
END_TEST

START_TEST(id_70000)
{
	start(NULL);
	send_msg(0, -1);
	send_msg(70000, -1);
	expect_greeting_error(-ERANGE, false);
	ck_assert_int_eq(ivshmem_peer_get_id(peer), -ENODATA);
	finish();
}
END_TEST

START_TEST(id_minus_1)
{
	start(NULL);
	send_msg(0, -1);
	send_msg(-1, -1);
	expect_greeting_error(-ERANGE, true);
	finish();
}
END_TEST

/* A value below -1 after the greeting. */
START_TEST(value_minus_5_later)
{
	int own[1];

	start(NULL);
	greet_ready(0, 1, own);
	send_msg(-5, -1);
	expect_error(-ERANGE, false);
	ck_assert_uint_eq(trec_count(&rec, EV_READY, 0), 1);
	finish();
}
END_TEST

/* A vector for ID 65536: -ERANGE, and its eventfd is closed. */
START_TEST(vector_id_out_of_range)
{
	int e[1];

	start(NULL);
	send_head(0, new_shm(SHM_SIZE, true));
	send_vectors(65536, 1, e);
	expect_greeting_error(-ERANGE, false);
	ck_assert_int_eq(copies(e[0]), 0);
	finish();
}
END_TEST

START_TEST(missing_shm_fd)
{
	start(NULL);
	send_msg(0, -1);
	send_msg(0, -1);
	send_msg(-1, -1);
	expect_greeting_error(-ENODATA, true);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, NULL, NULL), -ENODATA);
	finish();
}
END_TEST

/* The third message is a vector, not the shared memory. */
START_TEST(third_message_not_shm)
{
	int e[1];

	start(NULL);
	send_msg(0, -1);
	send_msg(0, -1);
	send_vectors(0, 1, e);
	expect_greeting_error(-ENODATA, false);
	ck_assert_int_eq(copies(e[0]), 0);
	finish();
}
END_TEST

START_TEST(shm_is_pipe)
{
	int pw;

	start(NULL);
	pw = new_pipe();
	send_head(0, pw);
	expect_greeting_error(-ENODEV, false);
	ck_assert_int_eq(copies(pw), 0);
	ck_assert_int_eq(ivshmem_peer_get_shm_fd(peer), -ENODATA);
	finish();
}
END_TEST

START_TEST(shm_wrong_size)
{
	const struct ivshmem_peer_config cfg = { .shm_size = SHM_SIZE };
	int shm;

	start(&cfg);
	shm = new_shm(SHM_SIZE / 2, false);
	send_head(0, shm);
	expect_greeting_error(-EFBIG, true);
	ck_assert_int_eq(copies(shm), 0);
	/* Both sizes are named, so the user knows which to change. */
	ck_assert_str_eq(ivshmem_peer_get_error(peer),
			 "The server's shared memory is 32768 bytes; 65536 "
			 "bytes are required");
	finish();
}
END_TEST

START_TEST(shm_empty)
{
	int shm;

	start(NULL);
	shm = new_shm(0, false);
	send_head(0, shm);
	expect_greeting_error(-EFBIG, false);
	ck_assert_int_eq(copies(shm), 0);
	finish();
}
END_TEST

/* An shm fd that cannot be mapped read-write: the sentence says what
 * was mapped, and why it failed. */
START_TEST(shm_read_only_file)
{
	char path[] = "/tmp/test-peer-shm-XXXXXX";
	int w = mkstemp(path), shm;

	ck_assert_int_ge(w, 0);
	ck_assert_int_eq(ftruncate(w, 4096), 0);
	start(NULL);
	shm = keep(open(path, O_RDONLY | O_CLOEXEC));
	close(w);
	unlink(path);
	send_head(0, shm);
	expect_greeting_error(-EACCES, false);
	ck_assert_int_eq(copies(shm), 0);
	ck_assert_str_eq(ivshmem_peer_get_error(peer),
			 "Mapping the server's shared memory (4096 bytes) "
			 "read-write failed: Permission denied (the server "
			 "sent it opened read-only)");
	finish();
}
END_TEST

START_TEST(shm_write_sealed)
{
	int shm;

	start(NULL);
	shm = keep(memfd_create("test-peer", MFD_CLOEXEC | MFD_ALLOW_SEALING));
	ck_assert_int_eq(ftruncate(shm, 4096), 0);
	ck_assert_int_eq(fcntl(shm, F_ADD_SEALS, F_SEAL_WRITE), 0);
	send_head(0, shm);
	expect_greeting_error(-EPERM, false);
	ck_assert_int_eq(copies(shm), 0);
	ck_assert_str_eq(ivshmem_peer_get_error(peer),
			 "Mapping the server's shared memory (4096 bytes) "
			 "read-write failed: Operation not permitted (the "
			 "server sent a memfd sealed against writing)");
	finish();
}
END_TEST

/* Whether the region can shrink under the peer is the caller's to know. */
START_TEST(shm_sealed_reported)
{
	int own[1], shm;

	start(NULL);
	ck_assert_int_eq(ivshmem_peer_get_shm_sealed(peer), -ENODATA);
	greet_ready(0, 1, own);
	ck_assert_int_eq(ivshmem_peer_get_shm_sealed(peer), 0);
	finish();

	start(NULL);
	shm = keep(memfd_create("test-peer", MFD_CLOEXEC | MFD_ALLOW_SEALING));
	ck_assert_int_eq(ftruncate(shm, SHM_SIZE), 0);
	ck_assert_int_eq(fcntl(shm, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	ck_assert_int_eq(ivshmem_shm_sealed(shm), 1);
	send_head(0, shm);
	send_vectors(0, 1, own);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(ivshmem_peer_get_shm_sealed(peer), 1);
	finish();
	ck_assert_int_eq(ivshmem_peer_get_shm_sealed(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_shm_sealed(-1), -EBADF);
	ck_assert_ptr_null(ivshmem_peer_get_error(NULL));
}
END_TEST

START_TEST(fd_on_version)
{
	int e;

	start(NULL);
	e = new_eventfd();
	send_msg(0, e);
	expect_greeting_error(-EBADR, false);
	ck_assert_int_eq(copies(e), 0);
	finish();
}
END_TEST

START_TEST(fd_on_id)
{
	int e;

	start(NULL);
	e = new_eventfd();
	send_msg(0, -1);
	send_msg(3, e);
	expect_greeting_error(-EBADR, true);
	ck_assert_int_eq(copies(e), 0);
	ck_assert_int_eq(ivshmem_peer_get_id(peer), -ENODATA);
	finish();
}
END_TEST

/* Two fds on one 8-byte message: both closed. */
START_TEST(two_fds_one_message)
{
	int two[2];

	start(NULL);
	two[0] = new_shm(SHM_SIZE, false);
	two[1] = new_pipe();
	send_msg(0, -1);
	send_msg(0, -1);
	send_raw(-1, IVSHMEM_MSG_SIZE, two, 2);
	expect_greeting_error(-EBADMSG, false);
	ck_assert_int_eq(copies(two[0]), 0);
	ck_assert_int_eq(copies(two[1]), 0);
	finish();
}
END_TEST

/* More fds than the control buffer holds: -EMSGSIZE, none kept. */
START_TEST(control_data_truncated)
{
	int many[16];

	start(NULL);
	for (unsigned i = 0; i < 16; i++)
		many[i] = new_pipe();
	send_msg(0, -1);
	send_msg(0, -1);
	send_raw(-1, IVSHMEM_MSG_SIZE, many, 16);
	expect_greeting_error(-EMSGSIZE, false);
	for (unsigned i = 0; i < 16; i++)
		ck_assert_int_eq(copies(many[i]), 0);
	finish();
}
END_TEST

/* Control data that is not SCM_RIGHTS: with SO_PASSCRED on the peer's
 * socket every message comes with SCM_CREDENTIALS. */
START_TEST(control_data_not_rights)
{
	const struct ivshmem_peer_config cfg = { 0 };
	int sp[2], one = 1;

	trec_reset(&rec);
	nkept = 0;
	tmap = NULL;
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &trec_ops, &rec, &peer), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sp), 0);
	ck_assert_int_eq(setsockopt(sp[1], SOL_SOCKET, SO_PASSCRED, &one,
				    sizeof(one)), 0);
	srv = sp[0];
	ck_assert_int_eq(ivshmem_peer_connect_fd(peer, sp[1]), 0);
	send_msg(0, -1);
	expect_greeting_error(-EBADMSG, false);
	finish();
}
END_TEST

START_TEST(vector_is_pipe)
{
	int pw, shm;

	start(NULL);
	shm = new_shm(SHM_SIZE, true);
	send_head(0, shm);
	pw = new_pipe();
	send_msg(1, pw);
	expect_greeting_error(-EBADFD, false);
	ck_assert_int_eq(copies(pw), 0);
	finish();
}
END_TEST

/* A second shared-memory message: refused and closed; the first mapping
 * stays. */
START_TEST(second_shm)
{
	int own[1], shm1, shm2;
	void *addr = NULL;

	start(NULL);
	shm1 = new_shm(SHM_SIZE, true);
	send_head(0, shm1);
	send_vectors(0, 1, own);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	shm2 = new_shm(SHM_SIZE, false);
	send_msg(-1, shm2);
	expect_error(-EEXIST, false);
	ck_assert_int_eq(copies(shm2), 0);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &addr, NULL), 0);
	ck_assert_ptr_nonnull(addr);
	strcpy(tmap, "still mapped");
	ck_assert_str_eq(addr, "still mapped");
	finish();
}
END_TEST

/*
 * After a protocol error following the greeting, every fd received on the
 * connection is closed (the peer table's eventfds and the shm fd), as
 * ivshmem.h documents: nothing from a server that broke the protocol is
 * trusted. Only the mapping would stay (there is none with NO_MAP).
 */
START_TEST(protocol_error_closes_what_was_received)
{
	const struct ivshmem_peer_config cfg = {
		.flags = IVSHMEM_PEER_NO_MAP,
	};
	int ea[1], own[1], shm;

	start(&cfg);
	shm = new_shm(SHM_SIZE, false);
	send_head(2, shm);
	send_vectors(1, 1, ea);
	send_vectors(2, 1, own);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(copies(shm), 1);
	ck_assert_int_eq(copies(ea[0]), 1);
	ck_assert_int_eq(copies(own[0]), 1);
	send_msg(9, -1);
	expect_error(-ESRCH, false);

	ck_assert_int_eq(ivshmem_peer_get_id(peer), 2);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, NULL, NULL), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_get_shm_fd(peer), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 1), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_ring(peer, 1, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_vector_fd(peer, 0), -ENODATA);
	ck_assert_int_eq(copies(shm), 0);
	ck_assert_int_eq(copies(ea[0]), 0);
	ck_assert_int_eq(copies(own[0]), 0);
	finish();
}
END_TEST

/* ---- callbacks that re-enter the peer ----------------------------------- */

static int next_sock = -1;      /* the peer's end of the next connection */
static int nested_result;
static int vector_fd_in_callback;

/* ready: try a nested dispatch, then drop the connection and start the
 * next one, while the message that completed the greeting is in hand. */
static void on_ready_reconnect(void *user, struct ivshmem_peer *p)
{
	trec_on_ready(user, p);
	if (trec_count(&rec, EV_READY, 0) > 1)
		return;
	nested_result = ivshmem_peer_dispatch(p);
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, 0), 0);
	ck_assert_int_eq(ivshmem_peer_disconnect(p), 0);
	ck_assert_int_eq(ivshmem_peer_connect_fd(p, next_sock), 0);
	next_sock = -1;
}

static void on_disconnected_look(void *user, struct ivshmem_peer *p,
				 int error)
{
	trec_on_disconnected(user, p, error);
	vector_fd_in_callback = ivshmem_peer_get_vector_fd(p, 0);
}

static const struct ivshmem_peer_ops reenter_ops = {
	.ready = on_ready_reconnect,
	.joined = trec_on_joined,
	.left = trec_on_left,
	.doorbell = trec_on_doorbell,
	.disconnected = on_disconnected_look,
	.log = trec_on_log,
};

/*
 * A ready callback that reconnects while the newcomer's vector that ended
 * the greeting is being taken: that vector belongs to the old connection,
 * so it is closed, and the new connection starts with an empty table.
 * Dispatch from inside a callback is refused with -EBUSY.
 */
START_TEST(callback_reconnects_mid_message)
{
	const struct ivshmem_peer_config cfg = { 0 };
	int sp[2], own[1], other[1], own2[1];

	trec_reset(&rec);
	nkept = 0;
	tmap = NULL;
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &reenter_ops, &rec, &peer), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sp), 0);
	srv = sp[0];
	ck_assert_int_eq(ivshmem_peer_connect_fd(peer, sp[1]), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sp), 0);
	next_sock = sp[1];

	send_head(5, new_shm(SHM_SIZE, true));
	send_vectors(5, 1, own);
	send_vectors(7, 1, other);      /* ends the own block: ready */
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	ck_assert_int_eq(trec_count(&rec, EV_READY, 0), 1);
	ck_assert_int_eq(nested_result, -EBUSY);
	ck_assert_int_eq(next_sock, -1);
	ck_assert_int_eq(ivshmem_peer_get_state(peer),
			 IVSHMEM_PEER_CONNECTING);
	ck_assert_int_eq(trec_count(&rec, EV_JOINED, 0), 0);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, NULL, 0), 0);
	ck_assert_int_eq(ivshmem_peer_get_vectors(peer, 7), -ENOENT);
	ck_assert_int_eq(copies(other[0]), 0);
	ck_assert_int_eq(copies(own[0]), 0);
	ck_assert(other_end_closed(srv));

	/* The new connection works on its own. */
	close(srv);
	srv = sp[0];
	send_head(8, keep(memfd_create("test-peer2", MFD_CLOEXEC)));
	ck_assert_int_eq(ftruncate(kept[nkept - 1], SHM_SIZE), 0);
	send_vectors(8, 1, own2);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	ck_assert_int_eq(trec_count(&rec, EV_READY, 0), 2);
	ck_assert_int_eq(ivshmem_peer_get_id(peer), 8);
	ck_assert_int_eq(ivshmem_peer_get_peers(peer, NULL, 0), 0);
	ck_assert_int_eq(trec_count(&rec, EV_DISCONNECTED, 0), 0);
	finish();
}
END_TEST

/* After a violation the own eventfds are still open while
 * ops->disconnected runs (it can stop other threads reading them), and
 * closed once it returned. */
START_TEST(violation_closes_after_callback)
{
	const struct ivshmem_peer_config cfg = { 0 };
	int sp[2], own[1];

	trec_reset(&rec);
	nkept = 0;
	tmap = NULL;
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &reenter_ops, &rec, &peer), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sp), 0);
	srv = sp[0];
	ck_assert_int_eq(ivshmem_peer_connect_fd(peer, sp[1]), 0);
	next_sock = keep(dup(sp[1]));   /* unused: ready does not reconnect */
	trec_add(&rec, EV_READY);       /* ... because it counts as the 2nd */
	vector_fd_in_callback = -1;

	send_head(5, new_shm(SHM_SIZE, true));
	send_vectors(5, 1, own);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 2000), 0);
	send_msg(5, -1);                /* a leave for the own ID */
	rec.warnings_ok = true;
	ck_assert_int_eq(ivshmem_peer_dispatch(peer), -EIDRM);
	ck_assert_int_ge(vector_fd_in_callback, 0);
	ck_assert_int_eq(ivshmem_peer_get_vector_fd(peer, 0), -ENODATA);
	ck_assert_int_eq(copies(own[0]), 0);
	finish();
}
END_TEST

START_TEST(leave_own_id)
{
	int own[1];

	start(NULL);
	greet_ready(3, 1, own);
	send_msg(3, -1);
	expect_error(-EIDRM, false);
	ck_assert_uint_eq(trec_count(&rec, EV_LEFT, 0), 0);
	finish();
}
END_TEST

START_TEST(leave_unknown_id)
{
	int own[1];

	start(NULL);
	greet_ready(3, 1, own);
	send_msg(4, -1);
	expect_error(-ESRCH, false);
	ck_assert_uint_eq(trec_count(&rec, EV_LEFT, 0), 0);
	finish();
}
END_TEST

START_TEST(strerror_sentences)
{
	static const int codes[] = {
		ECONNREFUSED, ECONNRESET, EPROTO, EPROTONOSUPPORT, ERANGE,
		ENODATA, ENODEV, EFBIG, EBADR, EBADMSG, EMSGSIZE, EBADFD,
		EEXIST, EIDRM, ESRCH,
	};
	enum { N = sizeof(codes) / sizeof(codes[0]) };
	const char *s[N];

	for (unsigned i = 0; i < N; i++) {
		s[i] = ivshmem_strerror(-codes[i]);
		ck_assert_ptr_nonnull(s[i]);
		ck_assert_uint_gt(strlen(s[i]), 10);
		/* The protocol meaning, not libc's text. */
		ck_assert_str_ne(s[i], strerror(codes[i]));
		for (unsigned j = 0; j < i; j++)
			ck_assert_msg(strcmp(s[i], s[j]) != 0,
				      "same text for %d and %d: %s",
				      codes[i], codes[j], s[i]);
	}
	ck_assert_ptr_nonnull(ivshmem_strerror(0));
	ck_assert_ptr_nonnull(ivshmem_strerror(-ETIMEDOUT));
	ck_assert_ptr_nonnull(ivshmem_strerror(-123456));
	ck_assert_ptr_nonnull(ivshmem_strerror(123));
	/* Any int: -INT_MIN must not be computed (UBSan reports it). */
	ck_assert_ptr_nonnull(ivshmem_strerror(INT32_MIN));
}
END_TEST

/* ---- arguments and states --------------------------------------------- */

START_TEST(argument_checks)
{
	const struct ivshmem_peer_config dflt = { 0 };
	struct ivshmem_peer_config cfg = { 0 };
	struct ivshmem_peer *p = NULL;
	int fds = count_open_fds(), ids[2], sp[2], sp2[2], fd, lfd;
	char dir[] = "/tmp/ivshmem-peer-XXXXXX", path[200], longp[300];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	void *addr;

	trec_reset(&rec);
	ck_assert_int_eq(ivshmem_peer_new(NULL, &trec_ops, &rec, &p), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_new(&dflt, NULL, NULL, &p), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_new(&dflt, &trec_ops, &rec, NULL),
			 -EINVAL);
	cfg.vectors = IVSHMEM_MAX_VECTORS + 1;
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &trec_ops, &rec, &p), -EINVAL);
	cfg.vectors = 0;
	cfg.flags = 1u << 7;
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &trec_ops, &rec, &p), -EINVAL);
	ck_assert_int_eq(count_open_fds(), fds);
	cfg.flags = 0;
	cfg.vectors = IVSHMEM_MAX_VECTORS;
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &trec_ops, &rec, &p), 0);
	ivshmem_peer_free(p);
	ivshmem_peer_free(NULL);
	p = NULL;

	/* NULL peer everywhere. */
	ck_assert_int_eq(ivshmem_peer_connect(NULL, "/x"), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_connect_fd(NULL, 0), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_disconnect(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_fd(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_dispatch(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_wait_ready(NULL, 0), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_state(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_id(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_shm(NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_shm_fd(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_vectors(NULL, 0), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_peers(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_ring(NULL, 0, 0), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_vector_fd(NULL, 0), -EINVAL);
	/* fd 0 was not taken. */
	ck_assert_int_ge(fcntl(0, F_GETFD), 0);

	/* IDLE. */
	ck_assert_int_eq(ivshmem_peer_new(&dflt, &trec_ops, &rec, &p), 0);
	fd = ivshmem_peer_get_fd(p);
	ck_assert_int_ge(fd, 0);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(ivshmem_peer_get_state(p), IVSHMEM_PEER_IDLE);
	ck_assert_int_eq(ivshmem_peer_disconnect(p), -ENOTCONN);
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, 0), -ENOTCONN);
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, -1), -ENOTCONN);
	ck_assert_int_eq(ivshmem_peer_dispatch(p), 0);
	ck_assert_int_eq(ivshmem_peer_get_id(p), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_get_shm(p, &addr, NULL), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_get_shm_fd(p), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_get_vector_fd(p, 0), -ENODATA);
	ck_assert_int_eq(ivshmem_peer_get_vectors(p, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_vectors(p, -1), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_vectors(p, IVSHMEM_MAX_PEERS),
			 -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_peers(p, NULL, 0), 0);
	ck_assert_int_eq(ivshmem_peer_get_peers(p, NULL, 2), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_peers(p, ids, 2), 0);
	ck_assert_int_eq(ivshmem_peer_ring(p, 0, 0), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_ring(p, IVSHMEM_MAX_PEERS, 0), -ENOENT);

	/* connect: bad paths. */
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(ivshmem_peer_connect(p, NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_connect(p, ""), -EINVAL);
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(ivshmem_peer_connect(p, longp), -ENAMETOOLONG);
	snprintf(path, sizeof(path), "%s/missing", dir);
	ck_assert_int_eq(ivshmem_peer_connect(p, path), -ENOENT);
	/* A stale socket file: nobody listens. */
	snprintf(path, sizeof(path), "%s/stale", dir);
	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(lfd);
	ck_assert_int_eq(ivshmem_peer_connect(p, path), -ECONNREFUSED);
	unlink(path);
	ck_assert_int_eq(ivshmem_peer_connect_fd(p, -1), -EINVAL);
	ck_assert_int_eq(ivshmem_peer_get_state(p), IVSHMEM_PEER_IDLE);

	/* connect_fd takes the fd and makes it non-blocking, close-on-exec. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ck_assert_int_eq(ivshmem_peer_connect_fd(NULL, sp[1]), -EINVAL);
	ck_assert_int_ge(fcntl(sp[1], F_GETFD), 0);
	ck_assert_int_eq(ivshmem_peer_connect_fd(p, sp[1]), 0);
	ck_assert(fcntl(sp[1], F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(sp[1], F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(ivshmem_peer_get_state(p), IVSHMEM_PEER_CONNECTING);
	ck_assert_int_eq(ivshmem_peer_get_fd(p), fd);

	/* Connected twice: -EISCONN, and connect_fd leaves its fd to the
	 * caller, open and as it was. */
	snprintf(path, sizeof(path), "%s/live", dir);
	ck_assert_int_eq(ivshmem_socket_listen(path, &lfd), 0);
	ck_assert_int_eq(ivshmem_peer_connect(p, path), -EISCONN);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sp2), 0);
	ck_assert_int_eq(ivshmem_peer_connect_fd(p, sp2[1]), -EISCONN);
	ck_assert(!other_end_closed(sp2[0]));
	ck_assert(!(fcntl(sp2[1], F_GETFL) & O_NONBLOCK));
	close(sp2[1]);
	ck_assert(other_end_closed(sp2[0]));
	close(sp2[0]);
	ck_assert(!other_end_closed(sp[0]));
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, 10), -ETIMEDOUT);

	/* disconnect: no callback, then not connected. */
	ck_assert_int_eq(ivshmem_peer_disconnect(p), 0);
	ck_assert(other_end_closed(sp[0]));
	ck_assert_int_eq(ivshmem_peer_get_state(p), IVSHMEM_PEER_DISCONNECTED);
	ck_assert_int_eq(ivshmem_peer_disconnect(p), -ENOTCONN);
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, 0), -ENOTCONN);
	ck_assert_uint_eq(rec.nevs, 0);
	close(sp[0]);

	/* connect() to a live listener: connected, greeting pending. */
	ck_assert_int_eq(ivshmem_peer_connect(p, path), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(p), IVSHMEM_PEER_CONNECTING);
	ck_assert_int_eq(ivshmem_peer_connect(p, path), -EISCONN);
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, 10), -ETIMEDOUT);
	ivshmem_peer_free(p);
	close(lfd);
	unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);
	ck_assert_uint_eq(rec.nwarn, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("peer");
	TCase *good = tcase_with("greeting", 0, NULL);
	TCase *bad = tcase_with("malformed", 0, NULL);
	TCase *api = tcase_with("api", 0, NULL);

	tcase_add_test(good, greeting_joins_then_ready);
	tcase_add_test(good, table_after_greeting);
	tcase_add_test(good, shm_both_ways);
	tcase_add_test(good, ring_other_peer);
	tcase_add_test(good, doorbell_own_vector_count);
	tcase_add_test(good, ring_own_id);
	tcase_add_test(good, own_vector_fd_takes_doorbell);
	tcase_add_test(good, join_after_greeting);
	tcase_add_test(good, join_fewer_vectors_after_pause);
	tcase_add_test(good, leave_closes_eventfds);
	tcase_add_test(good, rejoin_same_id);
	tcase_add_test(good, no_map);
	tcase_add_test(good, shm_size_matches);
	tcase_add_test(good, more_vectors_than_configured);
	tcase_add_test(good, split_own_vectors_not_ready_early);
	tcase_add_test(good, fewer_vectors_ready_on_pause);
	tcase_add_test(good, fewer_vectors_ready_on_next_message);
	tcase_add_test(good, own_vectors_grow_after_pause);
	tcase_add_test(good, eof_after_greeting);
	tcase_add_test(good, reconnect_keeps_address);
	tcase_add_test(good, disconnect_keeps_resources);

	tcase_add_test(bad, short_message_eof);
	tcase_add_test(bad, short_message_open);
	tcase_add_test(bad, eof_mid_message_with_fd);
	tcase_add_test(bad, eof_before_anything);
	tcase_add_test(bad, eof_mid_greeting);
	tcase_add_test(bad, version_1);
	tcase_add_test(bad, id_70000);
	tcase_add_test(bad, id_minus_1);
	tcase_add_test(bad, value_minus_5_later);
	tcase_add_test(bad, vector_id_out_of_range);
	tcase_add_test(bad, missing_shm_fd);
	tcase_add_test(bad, third_message_not_shm);
	tcase_add_test(bad, shm_is_pipe);
	tcase_add_test(bad, shm_wrong_size);
	tcase_add_test(bad, shm_empty);
	tcase_add_test(bad, shm_read_only_file);
	tcase_add_test(bad, shm_write_sealed);
	tcase_add_test(bad, shm_sealed_reported);
	tcase_add_test(bad, fd_on_version);
	tcase_add_test(bad, fd_on_id);
	tcase_add_test(bad, two_fds_one_message);
	tcase_add_test(bad, control_data_truncated);
	tcase_add_test(bad, control_data_not_rights);
	tcase_add_test(bad, vector_is_pipe);
	tcase_add_test(bad, second_shm);
	tcase_add_test(bad, protocol_error_closes_what_was_received);
	tcase_add_test(bad, leave_own_id);
	tcase_add_test(bad, callback_reconnects_mid_message);
	tcase_add_test(bad, violation_closes_after_callback);
	tcase_add_test(bad, leave_unknown_id);
	tcase_add_test(bad, strerror_sentences);

	tcase_add_test(api, argument_checks);

	suite_add_tcase(s, good);
	suite_add_tcase(s, bad);
	suite_add_tcase(s, api);
	return run_suite(s);
}
