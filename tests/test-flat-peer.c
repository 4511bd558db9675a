/* SPDX-License-Identifier: MIT */
/*
 * The ivshmem-flat core on a libivshmem peer (device-core's glue), through
 * a real ivshmem-server process, with a library peer on the other side:
 * guest DOORBELL writes reach the other peer on the right vector and bad
 * ones ring nothing, the other peer's doorbells reach the device's IRQ in
 * both modes, IVPOSITION and the shared memory come from the handshake, a
 * wrong shared-memory size is refused with both sizes named, and
 * doorbells go on when the server goes away.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "ivshmem-flat-peer.h"

#define WAIT_MS 10000
#define MiB (1024u * 1024u)

static struct tserver *start_server(const char *const *args)
{
	struct tserver *s = tserver_start_tracked(args);

	ck_assert_msg(s, "server did not start");
	return s;
}

/* ---- the emulator side: IRQ calls and log lines ------------------------ */

#define MAX_IRQS 64
struct emu {
	struct ivshmem_flat_peer *fp;
	struct ivshmem_flat *dev;
	struct {
		unsigned line;
		bool level;
	} irq[MAX_IRQS];
	unsigned nirq;
	int disconnected;       /* the error, 0 until called */
	char log[2048];         /* every log line, newline-separated */
	bool errors_ok;         /* the test expects error logs */
};

static void emu_set_irq(void *user, unsigned line, bool level)
{
	struct emu *e = user;

	ck_assert_uint_lt(e->nirq, MAX_IRQS);
	e->irq[e->nirq].line = line;
	e->irq[e->nirq].level = level;
	e->nirq++;
}

static void emu_disconnected(void *user, int error)
{
	struct emu *e = user;

	ck_assert_int_eq(e->disconnected, 0);
	ck_assert_int_lt(error, 0);
	e->disconnected = error;
}

static void emu_log(void *user, int priority, const char *fmt, va_list ap)
	IVSHMEM_PRINTF(3, 0);

static void emu_log(void *user, int priority, const char *fmt, va_list ap)
{
	struct emu *e = user;
	size_t len = strlen(e->log);
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (priority <= IVSHMEM_LOG_WARNING)
		ck_assert_msg(e->errors_ok, "unexpected log: %s", line);
	snprintf(e->log + len, sizeof(e->log) - len, "%s\n", line);
}

static const struct ivshmem_flat_peer_ops emu_ops = {
	.set_irq = emu_set_irq,
	.disconnected = emu_disconnected,
	.log = emu_log,
};

static void emu_new(struct emu *e, uint32_t flags, uint64_t shm_size)
{
	const struct ivshmem_flat_peer_config cfg = {
		.flags = flags, .shm_size = shm_size,
	};

	memset(e, 0, sizeof(*e));
	ck_assert_int_eq(ivshmem_flat_peer_new(&cfg, &emu_ops, e, &e->fp), 0);
	e->dev = ivshmem_flat_peer_device(e->fp);
	ck_assert_ptr_nonnull(e->dev);
}

static void emu_pump(struct emu *e, int ms)
{
	struct pollfd p = { .fd = ivshmem_flat_peer_get_fd(e->fp),
			    .events = POLLIN };

	ck_assert_int_ge(p.fd, 0);
	poll(&p, 1, ms);
	ivshmem_flat_peer_dispatch(e->fp);
}

/* Pump until the device has made n IRQ calls (or ms pass). */
static void emu_wait_irqs(struct emu *e, unsigned n, int ms)
{
	double deadline = now_seconds() + ms / 1000.0;

	while (e->nirq < n && now_seconds() < deadline)
		emu_pump(e, 50);
	ck_assert_uint_eq(e->nirq, n);
}

static uint32_t mmio_read(struct emu *e, uint32_t offset)
{
	return ivshmem_flat_mmio_read(e->dev, offset, 4);
}

static void mmio_write(struct emu *e, uint32_t offset, uint32_t value)
{
	ivshmem_flat_mmio_write(e->dev, offset, value, 4);
}

static void doorbell(struct emu *e, unsigned peer, unsigned vector)
{
	mmio_write(e, IVSHMEM_FLAT_DOORBELL, peer << 16 | vector);
}

/* ---- the other side: a library peer counting its doorbells ------------- */

struct other {
	struct ivshmem_peer *peer;
	uint64_t rung[IVSHMEM_MAX_VECTORS];     /* count per own vector */
	int joined, left;                       /* last IDs, -1 none */
};

static void other_joined(void *user, struct ivshmem_peer *peer, int id,
			 unsigned vectors)
{
	((struct other *)user)->joined = id;
}

static void other_left(void *user, struct ivshmem_peer *peer, int id)
{
	((struct other *)user)->left = id;
}

static void other_doorbell(void *user, struct ivshmem_peer *peer,
			   unsigned vector, uint64_t count)
{
	struct other *o = user;

	ck_assert_uint_lt(vector, IVSHMEM_MAX_VECTORS);
	o->rung[vector] += count;
}

static const struct ivshmem_peer_ops other_ops = {
	.joined = other_joined,
	.left = other_left,
	.doorbell = other_doorbell,
};

static void other_connect(struct other *o, const char *path)
{
	const struct ivshmem_peer_config cfg = { 0 };

	memset(o, 0, sizeof(*o));
	o->joined = o->left = -1;
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &other_ops, o, &o->peer), 0);
	ck_assert_int_eq(ivshmem_peer_connect(o->peer, path), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(o->peer, WAIT_MS), 0);
}

static void other_pump(struct other *o, int ms)
{
	struct pollfd p = { .fd = ivshmem_peer_get_fd(o->peer),
			    .events = POLLIN };

	poll(&p, 1, ms);
	ck_assert_int_eq(ivshmem_peer_dispatch(o->peer), 0);
}

static uint64_t other_total(const struct other *o)
{
	uint64_t n = 0;

	for (unsigned v = 0; v < IVSHMEM_MAX_VECTORS; v++)
		n += o->rung[v];
	return n;
}

/* Pump until `total` doorbells arrived, then a little longer, so that a
 * doorbell that should not come has its chance to. */
static void other_wait_total(struct other *o, uint64_t total, int ms)
{
	double deadline = now_seconds() + ms / 1000.0;

	while (other_total(o) < total && now_seconds() < deadline)
		other_pump(o, 50);
	other_pump(o, 100);
	ck_assert_uint_eq(other_total(o), total);
}

static void other_wait_joined(struct other *o, int id)
{
	double deadline = now_seconds() + WAIT_MS / 1000.0;

	while (o->joined != id && now_seconds() < deadline)
		other_pump(o, 50);
	ck_assert_int_eq(o->joined, id);
}

/* ---- tests ---------------------------------------------------------------- */

static const char *const two_vectors[] = { "-n", "2", NULL };

START_TEST(default_mode_both_ways)
{
	struct tserver *s = start_server(two_vectors);
	struct ivshmem_flat_stats st;
	struct other o;
	struct emu e;
	void *shm = NULL;
	uint64_t size = 0;
	int fds = count_open_fds(), id, oid;
	char *oshm;

	other_connect(&o, s->sock);
	oid = ivshmem_peer_get_id(o.peer);
	emu_new(&e, 0, 0);
	ck_assert_uint_eq(mmio_read(&e, IVSHMEM_FLAT_IVPOSITION),
			  IVSHMEM_FLAT_NO_ID);
	ck_assert_int_eq(ivshmem_flat_peer_get_shm(e.fp, &shm, &size),
			 -ENODATA);
	ck_assert_int_eq(ivshmem_flat_peer_connect(e.fp, s->sock, WAIT_MS), 0);

	/* IVPOSITION is the ID of the handshake; the other peer sees it. */
	id = ivshmem_peer_get_id(ivshmem_flat_peer_peer(e.fp));
	ck_assert_int_ge(id, 0);
	ck_assert_int_ne(id, oid);
	ck_assert_uint_eq(mmio_read(&e, IVSHMEM_FLAT_IVPOSITION), (unsigned)id);
	other_wait_joined(&o, id);

	/* The shared memory is the server's 4 MiB (QEMU's default size),
	 * the same memory the other peer has. */
	ck_assert_int_eq(ivshmem_flat_peer_get_shm(e.fp, &shm, &size), 0);
	ck_assert_uint_eq(size, 4 * MiB);
	ck_assert_int_eq(ivshmem_peer_get_shm(o.peer, (void **)&oshm, NULL),
			 0);
	strcpy(oshm + 4096, "from the other peer");
	ck_assert_str_eq((char *)shm + 4096, "from the other peer");

	/* Guest -> other peer, on the vector written and no other. */
	doorbell(&e, (unsigned)oid, 1);
	other_wait_total(&o, 1, WAIT_MS);
	ck_assert_uint_eq(o.rung[1], 1);
	doorbell(&e, (unsigned)oid, 0);
	other_wait_total(&o, 2, WAIT_MS);
	ck_assert_uint_eq(o.rung[0], 1);

	/* A vector the peer does not have, and a peer that does not exist,
	 * ring nothing; they are counted. */
	doorbell(&e, (unsigned)oid, 2);
	doorbell(&e, (unsigned)oid, 0xFFFF);
	doorbell(&e, (unsigned)(oid + id + 1), 0);
	other_wait_total(&o, 2, 0);
	ivshmem_flat_get_stats(e.dev, &st);
	ck_assert_uint_eq(st.doorbells, 2);
	ck_assert_uint_eq(st.doorbells_dropped, 3);

	/* Other peer -> device: each doorbell pulses IRQ line 0, as QEMU's
	 * device does; INTRSTATUS stays 0. */
	ck_assert_int_eq(ivshmem_peer_ring(o.peer, id, 1), 0);
	emu_wait_irqs(&e, 2, WAIT_MS);
	ck_assert(e.irq[0].line == 0 && e.irq[0].level);
	ck_assert(e.irq[1].line == 0 && !e.irq[1].level);
	ck_assert_uint_eq(mmio_read(&e, IVSHMEM_FLAT_INTRSTATUS), 0);

	/* Ringing the own ID is allowed (ivshmem-protocol(7) rule 14). */
	doorbell(&e, (unsigned)id, 0);
	emu_wait_irqs(&e, 4, WAIT_MS);
	ivshmem_flat_get_stats(e.dev, &st);
	ck_assert_uint_eq(st.doorbells, 3);
	ck_assert_uint_eq(st.events, 2);

	ivshmem_flat_peer_free(e.fp);
	ivshmem_peer_free(o.peer);
	ck_assert_int_eq(count_open_fds(), fds);
	ck_assert_int_eq(tserver_stop(s), 0);
}
END_TEST

START_TEST(latched_mode_level_irq)
{
	struct tserver *s = start_server(two_vectors);
	struct other o;
	struct emu e;
	int id;

	other_connect(&o, s->sock);
	emu_new(&e, IVSHMEM_FLAT_LATCHED, 0);
	ck_assert_int_eq(ivshmem_flat_peer_connect(e.fp, s->sock, WAIT_MS), 0);
	id = ivshmem_peer_get_id(ivshmem_flat_peer_peer(e.fp));
	other_wait_joined(&o, id);

	/* Masked: the event latches, the line stays low. */
	ck_assert_int_eq(ivshmem_peer_ring(o.peer, id, 1), 0);
	{
		double deadline = now_seconds() + WAIT_MS / 1000.0;
		struct ivshmem_flat_stats st;

		do {
			emu_pump(&e, 50);
			ivshmem_flat_get_stats(e.dev, &st);
		} while (st.events == 0 && now_seconds() < deadline);
		ck_assert_uint_eq(st.events, 1);
	}
	ck_assert_uint_eq(e.nirq, 0);
	/* Unmasking raises the level; reading the status clears it and
	 * lowers the line. */
	mmio_write(&e, IVSHMEM_FLAT_INTRMASK, 0x3);
	ck_assert_uint_eq(e.nirq, 1);
	ck_assert(e.irq[0].line == 0 && e.irq[0].level);
	ck_assert_uint_eq(mmio_read(&e, IVSHMEM_FLAT_INTRSTATUS), 0x2);
	ck_assert_uint_eq(e.nirq, 2);
	ck_assert(!e.irq[1].level);
	ck_assert_uint_eq(mmio_read(&e, IVSHMEM_FLAT_INTRSTATUS), 0);

	/* Unmasked: the next doorbell raises the line at once. */
	ck_assert_int_eq(ivshmem_peer_ring(o.peer, id, 0), 0);
	emu_wait_irqs(&e, 3, WAIT_MS);
	ck_assert(e.irq[2].level);
	ck_assert_uint_eq(mmio_read(&e, IVSHMEM_FLAT_INTRSTATUS), 0x1);

	ivshmem_flat_peer_free(e.fp);
	ivshmem_peer_free(o.peer);
	ck_assert_int_eq(tserver_stop(s), 0);
}
END_TEST

/*
 * Every destination ID with the vectors that matter, and every vector for
 * the IDs that matter, go through the core into the library's ring with
 * its checks: only the (peer, vector) pairs that exist ring anything, each
 * exactly once. Under AddressSanitizer this also shows that no guest value
 * indexes past an array on the way (QEMU's ivshmem-flat indexes a
 * 64-entry array with the guest's 16-bit vector).
 */
START_TEST(walk_doorbell_values)
{
	static const unsigned vectors[] = { 0, 1, 2, 63, 64, 0x7FFF, 0xFFFF };
	struct tserver *s = start_server(two_vectors);
	struct ivshmem_flat_stats st;
	uint64_t want_other = 0, want_own = 0, writes = 0;
	struct other o;
	struct emu e;
	int id, oid;

	other_connect(&o, s->sock);
	oid = ivshmem_peer_get_id(o.peer);
	emu_new(&e, IVSHMEM_FLAT_LATCHED, 0);
	ck_assert_int_eq(ivshmem_flat_peer_connect(e.fp, s->sock, WAIT_MS), 0);
	id = ivshmem_peer_get_id(ivshmem_flat_peer_peer(e.fp));
	other_wait_joined(&o, id);

	for (unsigned peer = 0; peer <= 0xFFFF; peer++) {
		for (size_t i = 0; i < G_N_ELEMENTS(vectors); i++) {
			doorbell(&e, peer, vectors[i]);
			writes++;
			if (vectors[i] < 2 && peer == (unsigned)oid)
				want_other++;
			if (vectors[i] < 2 && peer == (unsigned)id)
				want_own++;
		}
	}
	for (unsigned v = 0; v <= 0xFFFF; v++) {
		const unsigned peers[] = { (unsigned)oid, (unsigned)id,
					   (unsigned)(oid + id + 1), 0xFFFF };

		for (size_t i = 0; i < G_N_ELEMENTS(peers); i++) {
			doorbell(&e, peers[i], v);
			writes++;
			if (v < 2 && peers[i] == (unsigned)oid)
				want_other++;
			if (v < 2 && peers[i] == (unsigned)id)
				want_own++;
		}
	}
	ivshmem_flat_get_stats(e.dev, &st);
	ck_assert_uint_eq(st.doorbells, want_other + want_own);
	ck_assert_uint_eq(st.doorbells + st.doorbells_dropped, writes);

	/* The other peer's eventfds counted exactly its rings (an eventfd
	 * adds up; the callback reports the sum). */
	other_wait_total(&o, want_other, WAIT_MS);
	ck_assert_uint_eq(o.rung[0], want_other / 2);
	ck_assert_uint_eq(o.rung[1], want_other / 2);
	/* The own rings latched both bits (a read clears them: collect). */
	{
		double deadline = now_seconds() + WAIT_MS / 1000.0;
		uint32_t status = 0;

		while (status != 0x3 && now_seconds() < deadline) {
			emu_pump(&e, 50);
			status |= mmio_read(&e, IVSHMEM_FLAT_INTRSTATUS);
		}
		ck_assert_uint_eq(status, 0x3);
	}

	ivshmem_flat_peer_free(e.fp);
	ivshmem_peer_free(o.peer);
	ck_assert_int_eq(tserver_stop(s), 0);
}
END_TEST

START_TEST(wrong_shm_size_refused)
{
	static const char *const one_mib[] = { "-l", "1M", NULL };
	struct tserver *s = start_server(one_mib);
	struct ivshmem_flat_stats st;
	struct other o;
	struct emu e;
	double deadline;
	int id;

	other_connect(&o, s->sock);
	emu_new(&e, 0, 0);
	e.errors_ok = true;
	ck_assert_int_eq(ivshmem_flat_peer_connect(e.fp, s->sock, WAIT_MS),
			 -EFBIG);
	/* The ID the server gave (the library keeps it after the error). */
	id = ivshmem_peer_get_id(ivshmem_flat_peer_peer(e.fp));
	ck_assert_int_ge(id, 0);
	/* Both sizes and what to do are said. */
	ck_assert_msg(strstr(e.log, "server's shared memory is 1048576 bytes;"
				    " 4194304 bytes are required"),
		      "log: %s", e.log);
	ck_assert_msg(strstr(e.log, "the device's shmem-size is 4194304 bytes:"
				    " start ivshmem-server with -l 4194304"),
		      "log: %s", e.log);
	/* Nothing changed on the device; the connection is closed, so the
	 * other peer sees it leave, and nothing was mapped. */
	ck_assert_uint_eq(mmio_read(&e, IVSHMEM_FLAT_IVPOSITION),
			  IVSHMEM_FLAT_NO_ID);
	ck_assert_int_eq(ivshmem_flat_peer_get_shm(e.fp, NULL, NULL),
			 -ENODATA);
	doorbell(&e, (unsigned)ivshmem_peer_get_id(o.peer), 0);
	ivshmem_flat_get_stats(e.dev, &st);
	ck_assert_uint_eq(st.doorbells_dropped, 1);
	deadline = now_seconds() + WAIT_MS / 1000.0;
	while (o.left != id && now_seconds() < deadline)
		other_pump(&o, 50);
	ck_assert_int_eq(o.joined, id);
	ck_assert_int_eq(o.left, id);
	ck_assert_int_eq(ivshmem_peer_get_peers(o.peer, NULL, 0), 0);
	ck_assert_uint_eq(other_total(&o), 0);

	/* A device of the server's size connects. */
	ivshmem_flat_peer_free(e.fp);
	emu_new(&e, 0, 1 * MiB);
	ck_assert_int_eq(ivshmem_flat_peer_connect(e.fp, s->sock, WAIT_MS), 0);

	ivshmem_flat_peer_free(e.fp);
	ivshmem_peer_free(o.peer);
	ck_assert_int_eq(tserver_stop(s), 0);
}
END_TEST

START_TEST(server_gone_doorbells_go_on)
{
	struct tserver *s = start_server(two_vectors);
	struct ivshmem_flat_stats st;
	struct other o;
	struct emu e;
	double deadline;
	int id, oid, r;

	other_connect(&o, s->sock);
	oid = ivshmem_peer_get_id(o.peer);
	emu_new(&e, 0, 0);
	ck_assert_int_eq(ivshmem_flat_peer_connect(e.fp, s->sock, WAIT_MS), 0);
	id = ivshmem_peer_get_id(ivshmem_flat_peer_peer(e.fp));
	other_wait_joined(&o, id);

	ck_assert_int_eq(tserver_stop(s), 0);
	e.errors_ok = true;
	deadline = now_seconds() + WAIT_MS / 1000.0;
	while (!e.disconnected && now_seconds() < deadline)
		emu_pump(&e, 50);
	ck_assert_int_eq(e.disconnected, -ECONNRESET);
	deadline = now_seconds() + WAIT_MS / 1000.0;
	do {
		struct pollfd p = { .fd = ivshmem_peer_get_fd(o.peer),
				    .events = POLLIN };

		poll(&p, 1, 50);
		r = ivshmem_peer_dispatch(o.peer);
	} while (r == 0 && now_seconds() < deadline);
	ck_assert_int_eq(r, -ECONNRESET);

	/* Both keep the eventfds they received (ivshmem-protocol(7) rule 9): a
	 * DOORBELL write still rings the other peer, as in QEMU, and its
	 * doorbells still reach the device. IVPOSITION keeps the ID. */
	doorbell(&e, (unsigned)oid, 1);
	deadline = now_seconds() + WAIT_MS / 1000.0;
	while (o.rung[1] == 0 && now_seconds() < deadline) {
		struct pollfd p = { .fd = ivshmem_peer_get_fd(o.peer),
				    .events = POLLIN };

		poll(&p, 1, 50);
		ck_assert_int_eq(ivshmem_peer_dispatch(o.peer), 0);
	}
	ck_assert_uint_eq(o.rung[1], 1);
	ck_assert_int_eq(ivshmem_peer_ring(o.peer, id, 0), 0);
	emu_wait_irqs(&e, 2, WAIT_MS);
	ivshmem_flat_get_stats(e.dev, &st);
	ck_assert_uint_eq(st.doorbells, 1);
	ck_assert_uint_eq(st.doorbells_dropped, 0);
	ck_assert_uint_eq(mmio_read(&e, IVSHMEM_FLAT_IVPOSITION), (unsigned)id);

	/* A reconnect forgets the old ID at once: the new server may give
	 * it to someone else. This one has another size, so the device
	 * ends with no ID and rings nothing. */
	{
		static const char *const one_mib[] = { "-l", "1M", NULL };
		struct tserver *s2 = start_server(one_mib);

		e.disconnected = 0;
		ck_assert_int_eq(ivshmem_flat_peer_connect(e.fp, s2->sock,
							   WAIT_MS), -EFBIG);
		ck_assert_int_eq(e.disconnected, -EFBIG);
		ck_assert_uint_eq(mmio_read(&e, IVSHMEM_FLAT_IVPOSITION),
				  IVSHMEM_FLAT_NO_ID);
		doorbell(&e, (unsigned)oid, 1);
		ivshmem_flat_get_stats(e.dev, &st);
		ck_assert_uint_eq(st.doorbells, 1);
		ck_assert_uint_eq(st.doorbells_dropped, 1);
		ck_assert_int_eq(tserver_stop(s2), 0);
	}

	ivshmem_flat_peer_free(e.fp);
	ivshmem_peer_free(o.peer);
}
END_TEST

START_TEST(arguments)
{
	const struct ivshmem_flat_peer_config cfg = { 0 };
	const struct ivshmem_flat_peer_config bad_flags = {
		.flags = IVSHMEM_FLAT_IRQ_PER_VECTOR,
	};
	const struct ivshmem_flat_peer_config bad_vectors = {
		.vectors = IVSHMEM_MAX_VECTORS + 1,
	};
	const struct ivshmem_flat_peer_ops no_irq = { 0 };
	struct ivshmem_flat_peer *fp = NULL;
	int fds = count_open_fds();
	struct emu e;

	ck_assert_int_eq(ivshmem_flat_peer_new(NULL, &emu_ops, NULL, &fp),
			 -EINVAL);
	ck_assert_int_eq(ivshmem_flat_peer_new(&cfg, NULL, NULL, &fp), -EINVAL);
	ck_assert_int_eq(ivshmem_flat_peer_new(&cfg, &no_irq, NULL, &fp),
			 -EINVAL);
	ck_assert_int_eq(ivshmem_flat_peer_new(&cfg, &emu_ops, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(ivshmem_flat_peer_new(&bad_flags, &emu_ops, NULL,
					       &fp), -EINVAL);
	ck_assert_int_eq(ivshmem_flat_peer_new(&bad_vectors, &emu_ops, NULL,
					       &fp), -EINVAL);
	ck_assert_ptr_null(fp);
	ck_assert_int_eq(ivshmem_flat_peer_connect(NULL, "/x", 0), -EINVAL);
	ck_assert_int_eq(ivshmem_flat_peer_get_fd(NULL), -EINVAL);
	ck_assert_int_eq(ivshmem_flat_peer_dispatch(NULL), -EINVAL);
	ck_assert_ptr_null(ivshmem_flat_peer_device(NULL));
	ck_assert_int_eq(ivshmem_flat_peer_get_shm(NULL, NULL, NULL), -EINVAL);
	ivshmem_flat_peer_free(NULL);

	/* No server there: the library's error, nothing left open. */
	emu_new(&e, 0, 0);
	ck_assert_int_eq(ivshmem_flat_peer_connect(e.fp,
			"/nonexistent/ivshmem.sock", 100), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_get_state(ivshmem_flat_peer_peer(e.fp)),
			 IVSHMEM_PEER_IDLE);
	ivshmem_flat_peer_free(e.fp);
	ck_assert_int_eq(count_open_fds(), fds);
}
END_TEST

static void reap(void)
{
	tserver_reap_tracked();
}

int main(void)
{
	Suite *s = suite_create("flat-peer");
	TCase *tc = tcase_create("flat-peer");

	if (tserver_tracking_init() < 0)
		return EXIT_FAILURE;
	tcase_add_unchecked_fixture(tc, NULL, reap);
	tcase_add_test(tc, default_mode_both_ways);
	tcase_add_test(tc, latched_mode_level_irq);
	tcase_add_test(tc, walk_doorbell_values);
	tcase_add_test(tc, wrong_shm_size_refused);
	tcase_add_test(tc, server_gone_doorbells_go_on);
	tcase_add_test(tc, arguments);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
