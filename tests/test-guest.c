/* SPDX-License-Identifier: MIT */
/*
 * A real Linux guest on ivshmem-doorbell: Debian's cloud kernel under
 * qemu-system-x86_64 (TCG, q35 with an emulated IOMMU), an initramfs with
 * the guest agent (guest/agent.c) that drives libivshmem's guest side,
 * and a real ivshmem-server between the guest and a host peer. And the
 * scenario ivshmem-flat exists for: that guest and Cortex-M firmware on
 * the ivshmem-flat device core (the Unicorn example) exchanging messages
 * through one server.
 *
 * Skips (77) with the reason when the kernel package cannot be fetched
 * (guest/image.sh) or QEMU is missing.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "common.h"
#include "tproc.h"

#define BOOT_MS 120000          /* TCG on a shared machine */
#define CMD_MS 60000
#define SHM_SIZE (4u << 20)

static char image_dir[512];
static char *qemu_path;

struct guest {
	struct proc qemu;
	char *line;             /* the last answer, without "ok " */
};

/* Boot the guest with ivshmem-doorbell devices at PCI slots 3 and 4 on
 * server s (plus ivshmem-plain at slot 5 when plain). */
static void guest_boot(struct guest *g, const struct tserver *s, bool plain,
		       bool iommu);

static void guest_start(struct guest *g, const struct tserver *s, bool plain)
{
	guest_boot(g, s, plain, true);
}

/* The same, with or without the IOMMU VFIO needs. */
static void guest_boot(struct guest *g, const struct tserver *s, bool plain,
		       bool iommu)
{
	char *kernel = g_build_filename(image_dir, "vmlinuz", NULL);
	char *initrd = g_build_filename(image_dir, "initrd.gz", NULL);
	char *c0 = g_strdup_printf("socket,path=%s,id=c0", s->sock);
	char *c1 = g_strdup_printf("socket,path=%s,id=c1", s->sock);
	const char *args[64];
	const char *line;
	int n = 0;

	memset(g, 0, sizeof(*g));
	g->qemu.name = "guest";
	args[n++] = "-machine";
	args[n++] = "q35";
	args[n++] = "-accel";
	args[n++] = "tcg";
	if (iommu) {
		args[n++] = "-device";
		args[n++] = "intel-iommu,intremap=on";
	}
	args[n++] = "-nodefaults";
	args[n++] = "-display";
	args[n++] = "none";
	args[n++] = "-serial";
	args[n++] = "stdio";
	args[n++] = "-no-reboot";
	args[n++] = "-m";
	args[n++] = "256";
	args[n++] = "-kernel";
	args[n++] = kernel;
	args[n++] = "-initrd";
	args[n++] = initrd;
	args[n++] = "-append";
	args[n++] = iommu ?
		"console=ttyS0 intel_iommu=on quiet loglevel=1 panic=-1" :
		"console=ttyS0 quiet loglevel=1 panic=-1";
	args[n++] = "-chardev";
	args[n++] = c0;
	args[n++] = "-device";
	args[n++] = "ivshmem-doorbell,chardev=c0,vectors=2,addr=3";
	args[n++] = "-chardev";
	args[n++] = c1;
	args[n++] = "-device";
	args[n++] = "ivshmem-doorbell,chardev=c1,vectors=2,addr=4";
	if (plain) {
		args[n++] = "-object";
		args[n++] = "memory-backend-ram,id=plainmem,size=1M";
		args[n++] = "-device";
		args[n++] = "ivshmem-plain,memdev=plainmem,addr=5";
	}
	args[n] = NULL;
	proc_start(&g->qemu, qemu_path, args);
	/* Kernel lines before the agent starts are not ours. */
	while ((line = proc_next(&g->qemu, BOOT_MS)) &&
	       strcmp(line, "agent ready") != 0)
		;
	ck_assert_msg(line, "the guest did not boot (stderr: %s; console: %s)",
		      proc_stderr(&g->qemu), proc_stdout_rest(&g->qemu));
	g_free(kernel);
	g_free(initrd);
	g_free(c0);
	g_free(c1);
}

/* Send a command; its answer line (after any kernel lines). */
G_GNUC_PRINTF(2, 3)
static const char *guest_cmd(struct guest *g, const char *fmt, ...)
{
	const char *line;
	va_list ap;
	char *cmd;

	va_start(ap, fmt);
	cmd = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	proc_send(&g->qemu, "%s", cmd);
	while ((line = proc_next(&g->qemu, CMD_MS)) &&
	       !g_str_has_prefix(line, "ok") && !g_str_has_prefix(line, "err"))
		;
	ck_assert_msg(line, "guest: no answer to '%s' (stderr: %s)", cmd,
		      proc_stderr(&g->qemu));
	g_free(cmd);
	return line;
}

/* The command succeeds; what follows "ok" (or ""). */
#define GUEST_OK(g, ...) ({ \
	const char *l_ = guest_cmd(g, __VA_ARGS__); \
	ck_assert_msg(g_str_has_prefix(l_, "ok"), "guest: got '%s'", l_); \
	l_[2] ? l_ + 3 : ""; \
})

static void guest_stop(struct guest *g)
{
	proc_send(&g->qemu, "quit");
	ck_assert_int_eq(proc_wait(&g->qemu, CMD_MS), 0);
	proc_free(&g->qemu);
}

/* The pid the server's control socket reports for peer id. */
static long ctl_peer_pid(const struct tserver *s, int id)
{
	const char *const args[] = { "peers", "-S", s->sock, "--json", NULL };
	struct proc p = { .name = "ivshmem-ctl peers" };
	JsonParser *parser = json_parser_new();
	const char *line;
	long pid = -1;

	proc_start(&p, proc_ctl_path(), args);
	line = proc_next(&p, TWAIT_MS);
	ck_assert_ptr_nonnull(line);
	ck_assert(json_parser_load_from_data(parser, line, -1, NULL));
	JsonArray *peers = json_object_get_array_member(
		json_node_get_object(json_parser_get_root(parser)), "peers");
	for (guint i = 0; i < json_array_get_length(peers); i++) {
		JsonObject *o = json_array_get_object_element(peers, i);

		if (json_object_get_int_member(o, "id") == id)
			pid = (long)json_object_get_int_member(o, "pid");
	}
	g_object_unref(parser);
	EXPECT_EXIT(&p, 0);
	proc_free(&p);
	return pid;
}

static uint64_t host_rung[2];

static void host_doorbell(void *user, struct ivshmem_peer *peer,
			  unsigned vector, uint64_t count)
{
	host_rung[vector] += count;
}

/* Host side: a libivshmem peer with 2 vectors, counting its doorbells. */
static struct ivshmem_peer *host_peer(const struct tserver *s)
{
	const struct ivshmem_peer_config cfg = { .vectors = 2 };
	const struct ivshmem_peer_ops ops = { .doorbell = host_doorbell };
	struct ivshmem_peer *p;

	ck_assert_int_eq(ivshmem_peer_new(&cfg, &ops, NULL, &p), 0);
	ck_assert_int_eq(ivshmem_peer_connect(p, s->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(p, TWAIT_MS), 0);
	return p;
}

/* Wait for the host's own vector v to be rung: its count, 0 on timeout. */
static uint64_t host_wait(struct ivshmem_peer *p, unsigned v, int ms)
{
	struct pollfd pfd = { .fd = ivshmem_peer_get_fd(p), .events = POLLIN };
	uint64_t n;

	while (!host_rung[v] && poll(&pfd, 1, ms) == 1)
		ivshmem_peer_dispatch(p);
	n = host_rung[v];
	host_rung[v] = 0;
	return n;
}

/* Wait until the host peer knows peer id (the server's join notice). */
static void host_knows(struct ivshmem_peer *p, int id)
{
	struct pollfd pfd = { .fd = ivshmem_peer_get_fd(p), .events = POLLIN };

	while (ivshmem_peer_get_vectors(p, id) < 0)
		ck_assert_msg(poll(&pfd, 1, TWAIT_MS) == 1 &&
			      ivshmem_peer_dispatch(p) == 0,
			      "the host never learns of peer %d", id);
}

static uint8_t pattern(unsigned seed, uint64_t i)
{
	return (uint8_t)(seed * 131u + i * 7u + (i >> 8));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Opening: what the guest finds, and each way opening fails. */
START_TEST(test_guest_open)
{
	struct tserver *s = START("-n", "2", NULL);
	struct guest g;
	const char *r;
	int id0, id1, n, group[3];
	char mode[16], *want;
	unsigned vec, poll_us;

	guest_start(&g, s, true);
	/* Address, doorbell, vectors, BAR2, driver, IOMMU group. */
	r = GUEST_OK(&g, "list");
	ck_assert_msg(sscanf(r, "3 0000:00:03.0,1,2,4194304,-,%d "
			     "0000:00:04.0,1,2,4194304,-,%d "
			     "0000:00:05.0,0,0,1048576,-,%d%n",
			     &group[0], &group[1], &group[2], &n) == 3 &&
		      r[n] == '\0' && group[0] >= 0 && group[1] >= 0 &&
		      group[2] >= 0 && group[0] != group[1], "list: %s", r);

	/* Errors, each naming what to do; nothing is opened. */
	r = guest_cmd(&g, "open 0000:00:1f.0 auto");
	ck_assert_msg(g_str_has_prefix(r, "err -19 PCI device 0000:00:1f.0 is 0x8086:0x2918, not ivshmem"), "%s", r);
	r = guest_cmd(&g, "open 0000:00:09.0 auto");
	ck_assert_msg(g_str_has_prefix(r, "err -19 there is no PCI device 0000:00:09.0"), "%s", r);
	r = guest_cmd(&g, "open 00:3.0.1 auto");
	ck_assert_msg(g_str_has_prefix(r, "err -22 \"00:3.0.1\" is not a PCI address"), "%s", r);
	r = guest_cmd(&g, "open 0000:00:03.0 vfio");
	ck_assert_msg(g_str_has_prefix(r, "err -16 0000:00:03.0 is not bound to vfio-pci: ivshmem-ctl guest bind 0000:00:03.0"), "%s", r);

	/* Bound to vfio-pci, VFIO is used; "00:03.0" is domain 0's. */
	GUEST_OK(&g, "bind 0000:00:03.0");
	r = GUEST_OK(&g, "list");
	want = g_strdup_printf("0000:00:03.0,1,2,4194304,vfio-pci,%d ", group[0]);
	ck_assert_msg(strstr(r, want), "%s", r);
	g_free(want);
	r = GUEST_OK(&g, "open 00:03.0 vfio");
	ck_assert_msg(sscanf(r, "0 %d vfio 2 0 0000:00:03.0%n", &id0, &n) == 1 &&
		      r[n] == '\0', "open: %s", r);
	/* A device open once is busy for a second opener (VFIO's group). */
	r = guest_cmd(&g, "open 0000:00:03.0 vfio");
	want = g_strdup_printf("err -16 IOMMU group %d (0000:00:03.0) is in use", group[0]);
	ck_assert_msg(g_str_has_prefix(r, want), "%s", r);
	g_free(want);

	/* Not bound: sysfs, polled, and it says why. */
	r = guest_cmd(&g, "open 0000:00:04.0 vfio");
	ck_assert_msg(g_str_has_prefix(r, "err -16 0000:00:04.0 is not bound to vfio-pci"), "%s", r);
	r = GUEST_OK(&g, "open 0000:00:04.0 auto");
	ck_assert_msg(sscanf(r, "1 %d %15s %u %u 0000:00:04.0%n", &id1, mode,
			     &vec, &poll_us, &n) == 4 &&
		      strcmp(r + n, " 0000:00:04.0 is not bound to vfio-pci: ivshmem-ctl guest bind 0000:00:04.0") == 0 &&
		      strcmp(mode, "poll") == 0 && vec == 2 && poll_us == 1000,
		      "open: %s", r);
	/* The IDs are the server's for QEMU's two connections. */
	ck_assert_int_ne(id0, id1);
	ck_assert_int_eq(ctl_peer_pid(s, id0), g.qemu.pid);
	ck_assert_int_eq(ctl_peer_pid(s, id1), g.qemu.pid);

	/* ivshmem-plain: shared memory, no ID (-ENODATA), no vectors. */
	r = GUEST_OK(&g, "open 0000:00:05.0 auto");
	ck_assert_msg(strcmp(r, "2 -61 plain 0 0 0000:00:05.0") == 0, "%s", r);
	GUEST_OK(&g, "fill 2 0 4096 9");
	GUEST_OK(&g, "check 2 0 4096 9");
	r = guest_cmd(&g, "ring 2 %d 0", id0);
	ck_assert_msg(strcmp(r, "err No such file or directory") == 0, "%s", r);

	/* Closing gives the device back: it opens again. */
	GUEST_OK(&g, "close 0");
	r = GUEST_OK(&g, "open 0000:00:03.0 vfio");
	ck_assert_msg(g_str_has_prefix(r, "0 "), "%s", r);

	/* Not root: the group's node is root's. */
	GUEST_OK(&g, "close 0");
	GUEST_OK(&g, "drop");
	r = guest_cmd(&g, "open 0000:00:03.0 vfio");
	want = g_strdup_printf("err -13 cannot open /dev/vfio/%d: Permission denied (run as root, or chown the group's node to this user)",
			       group[0]);
	ck_assert_str_eq(r, want);
	g_free(want);
	guest_stop(&g);
	tserver_stop_ok(s);
}
END_TEST

/* A guest without an IOMMU, and a user who is not root: each says what
 * to do, and the device still works polled where it can. */
START_TEST(test_guest_no_iommu)
{
	struct tserver *s = START("-n", "2", NULL);
	struct guest g;
	const char *r;
	int id, n;

	guest_boot(&g, s, false, false);
	r = GUEST_OK(&g, "list");
	ck_assert_str_eq(r, "2 0000:00:03.0,1,2,4194304,-,-1 0000:00:04.0,1,2,4194304,-,-1");
	r = guest_cmd(&g, "open 0000:00:03.0 vfio");
	ck_assert_str_eq(r, "err -6 0000:00:03.0 has no IOMMU group, which VFIO needs: boot the guest with an IOMMU (QEMU: -machine q35 -device intel-iommu,intremap=on; guest kernel: intel_iommu=on)");
	r = guest_cmd(&g, "bind 0000:00:03.0");
	ck_assert_msg(g_str_has_prefix(r, "err vfio-pci did not take 0000:00:03.0 (it needs an IOMMU group"), "%s", r);
	/* Refused changes nothing: still unbound, and usable polled. */
	r = GUEST_OK(&g, "list");
	ck_assert_str_eq(r, "2 0000:00:03.0,1,2,4194304,-,-1 0000:00:04.0,1,2,4194304,-,-1");
	r = GUEST_OK(&g, "open 0000:00:03.0 auto");
	ck_assert_msg(sscanf(r, "0 %d poll 2 1000 0000:00:03.0 %n", &id, &n) == 1 &&
		      g_str_has_prefix(r + n, "0000:00:03.0 has no IOMMU group"),
		      "open: %s", r);
	GUEST_OK(&g, "fill 0 0 4096 1");
	GUEST_OK(&g, "check 0 0 4096 1");

	/* Not root: no sysfs files, no VFIO. */
	GUEST_OK(&g, "drop");
	r = guest_cmd(&g, "open 0000:00:04.0 sysfs");
	ck_assert_str_eq(r, "err -13 cannot open /sys/bus/pci/devices/0000:00:04.0/config: Permission denied (run as root)");
	r = guest_cmd(&g, "open 0000:00:04.0 auto");
	ck_assert_str_eq(r, "err -13 cannot open /sys/bus/pci/devices/0000:00:04.0/config: Permission denied (run as root)");
	/* The device open before stays usable. */
	GUEST_OK(&g, "check 0 0 4096 1");
	guest_stop(&g);
	tserver_stop_ok(s);
}
END_TEST

/* Shared memory and doorbells both ways, through VFIO and through the
 * polled sysfs path, and the round-trip time. */
START_TEST(test_guest_doorbells)
{
	struct tserver *s = START("-n", "2", NULL);
	struct ivshmem_peer *host = host_peer(s);
	int hid = ivshmem_peer_get_id(host), id0, id1;
	uint8_t *mem;
	uint64_t size;
	struct guest g;
	const char *r;
	double t0, rtt;
	const unsigned N = 200;

	ck_assert_int_eq(ivshmem_peer_get_shm(host, (void **)&mem, &size), 0);
	guest_start(&g, s, false);
	GUEST_OK(&g, "bind 0000:00:03.0");
	r = GUEST_OK(&g, "open 0000:00:03.0 vfio");
	ck_assert_int_eq(sscanf(r, "0 %d", &id0), 1);
	r = GUEST_OK(&g, "open 0000:00:04.0 sysfs");
	ck_assert_int_eq(sscanf(r, "1 %d", &id1), 1);
	host_knows(host, id0);
	host_knows(host, id1);
	host_rung[0] = host_rung[1] = 0;

	/* Guest to host: a pattern, then a doorbell on each vector. */
	GUEST_OK(&g, "fill 0 65536 65536 3");
	for (uint64_t i = 0; i < 65536; i++)
		ck_assert_msg(mem[65536 + i] == pattern(3, i), "byte %" PRIu64, i);
	for (unsigned v = 0; v < 2; v++) {
		GUEST_OK(&g, "ring 0 %d %u", hid, v);
		ck_assert_uint_ge(host_wait(host, v, TWAIT_MS), 1);
		GUEST_OK(&g, "ring 1 %d %u", hid, v);
		ck_assert_uint_ge(host_wait(host, v, TWAIT_MS), 1);
	}
	/* Host to guest: a pattern, then a doorbell on each vector of
	 * each device; the guest sees the host's bytes. */
	for (uint64_t i = 0; i < 65536; i++)
		mem[131072 + i] = pattern(5, i);
	GUEST_OK(&g, "check 0 131072 65536 5");
	GUEST_OK(&g, "check 1 131072 65536 5");
	for (unsigned v = 0; v < 2; v++) {
		ck_assert_int_eq(ivshmem_peer_ring(host, id0, v), 0);
		r = GUEST_OK(&g, "wait 0 %u 10000", v);
		ck_assert_str_eq(r, "1");
		ck_assert_int_eq(ivshmem_peer_ring(host, id1, v), 0);
		r = GUEST_OK(&g, "wait 1 %u 10000", v);
		ck_assert_str_eq(r, "1");
	}
	/* Nothing rung: nothing seen, on either path. */
	r = guest_cmd(&g, "wait 0 1 300");
	ck_assert_str_eq(r, "err timeout");
	r = guest_cmd(&g, "wait 1 0 300");
	ck_assert_str_eq(r, "err timeout");

	/* The round trip host -> guest (MSI-X through VFIO) -> host. */
	proc_send(&g.qemu, "echo 0 0 %d %u", hid, N);
	usleep(200000);
	t0 = now_s();
	for (unsigned i = 0; i < N; i++) {
		ck_assert_int_eq(ivshmem_peer_ring(host, id0, 0), 0);
		ck_assert_msg(host_wait(host, 0, TWAIT_MS) == 1, "round trip %u", i);
	}
	rtt = (now_s() - t0) / N;
	r = guest_cmd(&g, "%s", "");
	ck_assert_str_eq(r, "ok");
	fprintf(stderr, "guest: doorbell round trip host-guest-host %.1f us (VFIO, TCG)\n",
		rtt * 1e6);
	proc_send(&g.qemu, "echo 1 1 %d %u", hid, 50);
	usleep(200000);
	t0 = now_s();
	for (unsigned i = 0; i < 50; i++) {
		ck_assert_int_eq(ivshmem_peer_ring(host, id1, 1), 0);
		ck_assert_msg(host_wait(host, 1, TWAIT_MS) == 1, "round trip %u", i);
	}
	rtt = (now_s() - t0) / 50;
	r = guest_cmd(&g, "%s", "");
	ck_assert_str_eq(r, "ok");
	fprintf(stderr, "guest: doorbell round trip host-guest-host %.1f us (polled sysfs, TCG)\n",
		rtt * 1e6);

	guest_stop(&g);
	ivshmem_peer_free(host);
	tserver_stop_ok(s);
}
END_TEST

/* A channel between the host and the guest: messages both ways. */
static void channel_with_guest(struct ivshmem_peer *host, struct guest *g,
			       unsigned dev, unsigned n)
{
	const struct ivshmem_channel_spec spec = {
		.name = "g", .ring_size = { 16384, 16384 },
	};
	const struct ivshmem_channel_config ccfg = {
		.offset = 1 << 20, .name = "g", .end = 0, .vector = 1,
	};
	struct ivshmem_channel *ch;
	struct ivshmem_channel_stats st;
	uint8_t out[4096], in[4096];
	unsigned sent = 0, got = 0, seed = 1;
	size_t lens[16];
	void *mem;
	uint64_t size;
	const char *r;

	ck_assert_int_eq(ivshmem_peer_get_shm(host, &mem, &size), 0);
	ck_assert_int_eq(ivshmem_layout_write(mem, size, 1 << 20, &spec, 1, 0), 0);
	ck_assert_int_eq(ivshmem_channel_attach(host, &ccfg, &ch), 0);
	proc_send(&g->qemu, "serve %u %u g 1 1", dev, 1u << 20);
	while (got < n) {
		while (sent < n && sent - got < 16) {
			size_t len = sent % 97 == 0 ? 4096 - 8 :
				     1 + (size_t)rand_r(&seed) % 1500;
			int e;

			for (size_t i = 0; i < len; i++)
				out[i] = (uint8_t)(sent * 11u + i);
			e = ivshmem_channel_send(ch, out, len);
			if (e == -EAGAIN)
				break;
			ck_assert_int_eq(e, 0);
			lens[sent % 16] = len;
			sent++;
		}
		ssize_t k = ivshmem_channel_recv(ch, in, sizeof(in));

		if (k == -EAGAIN) {
			int e = ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_READABLE |
						     IVSHMEM_CHANNEL_WRITABLE,
						     CMD_MS);
			ck_assert_msg(e > 0, "echo %u: %s", got,
				      e ? strerror(-e) : "timeout");
			continue;
		}
		ck_assert_msg(k >= 0 && (size_t)k == lens[got % 16],
			      "echo %u: %zd bytes, %zu sent", got, k,
			      lens[got % 16]);
		for (ssize_t i = 0; i < k; i++)
			ck_assert_msg(in[i] == (uint8_t)(got * 11u + i),
				      "echo %u: byte %zd", got, i);
		got++;
	}
	ck_assert_int_eq(ivshmem_channel_send(ch, "", 0), 0);
	r = GUEST_OK(g, "%s", "");
	ck_assert_uint_eq(strtoul(r, NULL, 10), n);
	ck_assert_int_eq(ivshmem_channel_get_stats(ch, &st), 0);
	ck_assert_uint_eq(st.sent, n + 1);
	ck_assert_uint_eq(st.received, n);
	ck_assert_int_eq(st.error, 0);
	fprintf(stderr, "guest: channel on device %u: %u messages each way, host rang %" PRIu64
		", suppressed %" PRIu64 "\n", dev, n, st.doorbells_rung,
		st.doorbells_suppressed);
	ivshmem_channel_detach(ch);
}

START_TEST(test_guest_channel)
{
	struct tserver *s = START("-n", "2", NULL);
	struct ivshmem_peer *host = host_peer(s);
	struct guest g;

	guest_start(&g, s, false);
	GUEST_OK(&g, "bind 0000:00:03.0");
	GUEST_OK(&g, "open 0000:00:03.0 vfio");
	GUEST_OK(&g, "open 0000:00:04.0 sysfs");
	channel_with_guest(host, &g, 0, 3000);
	channel_with_guest(host, &g, 1, 1000);
	guest_stop(&g);
	ivshmem_peer_free(host);
	tserver_stop_ok(s);
}
END_TEST

/* Run a shell command line in the guest: its output lines (without the
 * "| ") joined by newlines, into *out (g_free it); its exit status. */
static int guest_sh(struct guest *g, char **out, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

static int guest_sh(struct guest *g, char **out, const char *fmt, ...)
{
	GString *acc = g_string_new(NULL);
	const char *line;
	va_list ap;
	char *cmd;
	int st = -1;

	va_start(ap, fmt);
	cmd = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	proc_send(&g->qemu, "sh %s", cmd);
	while ((line = proc_next(&g->qemu, CMD_MS))) {
		if (g_str_has_prefix(line, "| ")) {
			g_string_append_printf(acc, "%s\n", line + 2);
		} else if (sscanf(line, "ok %d", &st) == 1) {
			break;
		}
	}
	ck_assert_msg(line, "guest: '%s' did not finish", cmd);
	g_free(cmd);
	*out = g_string_free(acc, FALSE);
	return st;
}

/* ivshmem-ctl inside the guest, on the devices instead of a server. */
START_TEST(test_guest_ctl)
{
	struct tserver *s = START("-n", "2", NULL);
	struct ivshmem_peer *host = host_peer(s);
	int hid = ivshmem_peer_get_id(host), gid = -1;
	const struct ivshmem_channel_spec spec = { .name = "c" };
	uint8_t *mem;
	uint64_t size;
	struct guest g;
	char *out, *want;

	ck_assert_int_eq(ivshmem_peer_get_shm(host, (void **)&mem, &size), 0);
	guest_start(&g, s, true);
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl guest list"), 0);
	ck_assert_msg(g_str_has_prefix(out, "ADDRESS       KIND      VECTORS  SHM               DRIVER      IOMMU-GROUP\n"
				       "0000:00:03.0  doorbell        2  4194304 (4 MiB)   -           ") &&
		      strstr(out, "\n0000:00:04.0  doorbell        2  4194304 (4 MiB)   -           ") &&
		      strstr(out, "\n0000:00:05.0  plain           0  1048576 (1 MiB)   -           "),
		      "guest list:\n%s", out);
	g_free(out);
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl guest bind 0000:00:03.0"), 0);
	ck_assert_str_eq(out, "0000:00:03.0 is bound to vfio-pci\n");
	g_free(out);
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl guest bind 00:03"), 2);
	ck_assert_msg(g_str_has_prefix(out, "ivshmem-ctl: \"00:03\" is not a PCI address"), "%s", out);
	g_free(out);

	/* info: through VFIO, and the other device polled, saying why. */
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl info --pci 0000:00:03.0"), 0);
	ck_assert_msg(sscanf(out, "device       0000:00:03.0\nmode         vfio\nid           %d\n", &gid) == 1,
		      "info:\n%s", out);
	ck_assert_msg(strstr(out, "\nvectors      2\nshm-size     4194304 (4 MiB)\n"), "info:\n%s", out);
	g_free(out);
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl info --json --pci 0000:00:04.0"), 0);
	ck_assert_msg(strstr(out, "ivshmem-ctl: 0000:00:04.0 through sysfs: its doorbells are polled every 1 ms, not interrupts (0000:00:04.0 is not bound to vfio-pci") &&
		      strstr(out, "\"mode\":\"poll\"") && strstr(out, "\"poll_us\":1000"),
		      "info:\n%s", out);
	g_free(out);
	/* What needs a server refuses, saying so. */
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl peers --pci auto"), 1);
	ck_assert_str_eq(out, "ivshmem-ctl: peers: inside a guest (--pci) the other peers are not known (the device tells nothing of them): run ivshmem-ctl peers on the host, against the server\n");
	g_free(out);
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl kick --pci auto 0"), 1);
	ck_assert_str_eq(out, "ivshmem-ctl: inside a guest (--pci) there is no control socket, and this command needs one\n");
	g_free(out);

	/* write and dump, against the host's view. */
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl write --pci 0000:00:03.0 --offset 4096 0xdeadbeef"), 0);
	ck_assert_str_eq(out, "wrote 4 bytes at offset 4096\n");
	g_free(out);
	ck_assert_msg(mem[4096] == 0xde && mem[4097] == 0xad && mem[4098] == 0xbe &&
		      mem[4099] == 0xef, "the host does not see the guest's write");
	memcpy(mem + 8192, "hello, guest....", 16);
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl dump --pci 0000:00:04.0 --offset 8192 --length 16"), 0);
	ck_assert_msg(strstr(out, "00002000  68 65 6c 6c 6f 2c 20 67  75 65 73 74 2e 2e 2e 2e  |hello, guest....|\n00002010\n"),
		      "dump:\n%s", out);
	g_free(out);

	/* ring: both vectors of the host, from the guest. */
	host_knows(host, gid);
	host_rung[0] = host_rung[1] = 0;
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl ring --pci 0000:00:03.0 %d", hid), 0);
	want = g_strdup_printf("rang peer %d vectors 0,1\n", hid);
	ck_assert_str_eq(out, want);
	g_free(want);
	g_free(out);
	ck_assert_uint_ge(host_wait(host, 0, TWAIT_MS), 1);
	ck_assert_uint_ge(host_wait(host, 1, TWAIT_MS), 1);

	/* peer: the ready line, then a doorbell from the host as an event. */
	proc_send(&g.qemu, "sh (sleep 5) | ivshmem-ctl peer --pci 0000:00:03.0");
	want = g_strdup_printf("| ready id=%d vectors=2 peers= shm-size=4194304", gid);
	EXPECT(&g.qemu, "%s", want);
	g_free(want);
	ck_assert_int_eq(ivshmem_peer_ring(host, gid, 1), 0);
	EXPECT(&g.qemu, "| doorbell vector=1 count=1");
	EXPECT(&g.qemu, "ok 0");

	/* channel: the host's layout, seen and used from the guest. */
	ck_assert_int_eq(ivshmem_layout_write(mem, size, 1 << 20, &spec, 1, 0), 0);
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl channel list --pci 0000:00:03.0 --offset 1M"), 0);
	ck_assert_msg(g_str_has_prefix(out, "channel name=\"c\" ring0=65536 ring1=65536 "), "channel list:\n%s", out);
	g_free(out);
	ck_assert_int_eq(guest_sh(&g, &out, "printf 'one\\ntwo\\n' | ivshmem-ctl channel send --pci 0000:00:03.0 --offset 1M --vector 1 c"), 0);
	g_free(out);
	{
		const struct ivshmem_channel_config ccfg = {
			.offset = 1 << 20, .name = "c", .end = 1, .vector = 1,
		};
		struct ivshmem_channel *ch;
		char buf[16];
		ssize_t k;

		ck_assert_int_eq(ivshmem_channel_attach(host, &ccfg, &ch), 0);
		k = ivshmem_channel_recv(ch, buf, sizeof(buf));
		ck_assert_int_eq(k, 3);
		ck_assert_int_eq(memcmp(buf, "one", 3), 0);
		k = ivshmem_channel_recv(ch, buf, sizeof(buf));
		ck_assert_int_eq(k, 3);
		ck_assert_int_eq(memcmp(buf, "two", 3), 0);
		ck_assert_int_eq(ivshmem_channel_send(ch, "from the host", 13), 0);
		ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl channel recv --pci 0000:00:03.0 --offset 1M --end 0 --vector 1 --count 1 c"), 0);
		ck_assert_str_eq(out, "from the host\n");
		g_free(out);
		ivshmem_channel_detach(ch);
	}
	ck_assert_int_eq(guest_sh(&g, &out, "ivshmem-ctl channel stat --pci 0000:00:03.0 --offset 1M --json c"), 0);
	want = g_strdup_printf("\"end0-peer\":%d,", gid);
	ck_assert_msg(strstr(out, want) && strstr(out, "\"end0-received\":1,") &&
		      strstr(out, "\"end1-received\":2,") &&
		      strstr(out, "\"fill0\":0,\"fill1\":0,"), "stat:\n%s", out);
	g_free(want);
	g_free(out);
	guest_stop(&g);
	ivshmem_peer_free(host);
	tserver_stop_ok(s);
}
END_TEST

#ifdef FLAT_UNICORN_PATH
/* The Linux guest and the Cortex-M firmware talk through one server; the
 * host only serves, and ivshmem-ctl channel stat shows both ends. */
START_TEST(test_guest_firmware)
{
	struct tserver *s = START("-n", "2", NULL);
	const char *const eargs[] = { "-S", s->sock, "--latched", "--timeout",
				      "120", FLAT_UNICORN_FIRMWARE_ECHO, NULL };
	const char *const sargs[] = { "channel", "stat", "-S", s->sock,
				      "--json", "echo", NULL };
	struct proc emu = { .name = "firmware" };
	struct proc stat = { .name = "ivshmem-ctl channel stat" };
	unsigned fw_id, msgs, rung, sleeps, got;
	unsigned long long grung, gsupp;
	struct guest g;
	const char *r;
	int gid, n;

	guest_start(&g, s, false);
	GUEST_OK(&g, "bind 0000:00:03.0");
	r = GUEST_OK(&g, "open 0000:00:03.0 vfio");
	ck_assert_int_eq(sscanf(r, "0 %d", &gid), 1);
	fprintf(stderr, "server %s; Linux guest (QEMU pid %ld) on ivshmem-doorbell: peer %d, through VFIO\n",
		s->sock, (long)g.qemu.pid, gid);
	/* The guest writes the layout; the firmware waits for it. */
	GUEST_OK(&g, "layout 0 0 echo 4096");
	proc_start(&emu, FLAT_UNICORN_PATH, eargs);
	ck_assert_ptr_nonnull(proc_next(&emu, TWAIT_MS));
	ck_assert_msg(sscanf(emu.line, "IVPOSITION %u", &fw_id) == 1, "%s (%s)",
		      emu.line, proc_stderr(&emu));
	EXPECT(&emu, "attached");
	fprintf(stderr, "Cortex-M3 echo firmware on ivshmem-flat (Unicorn): peer %u, attached to end 1 of channel \"echo\"\n",
		fw_id);

	r = GUEST_OK(&g, "talk 0 0 echo 0 0 2000");
	ck_assert_msg(sscanf(r, "%u %llu %llu", &got, &grung, &gsupp) == 3 &&
		      got == 2000, "talk: %s", r);
	ck_assert_ptr_nonnull(proc_next(&emu, CMD_MS));
	ck_assert_msg(sscanf(emu.line, "echo: %u messages, rung %u, sleeps %u%n",
			     &msgs, &rung, &sleeps, &n) == 3 &&
		      emu.line[n] == '\0', "firmware: %s", emu.line);
	ck_assert_uint_eq(msgs, 2000);
	EXPECT_EXIT(&emu, 0);
	proc_free(&emu);
	fprintf(stderr, "guest+firmware: 2000 messages each way; guest rang %llu (suppressed %llu), firmware rang %u, slept %u\n",
		grung, gsupp, rung, sleeps);

	/* On the host: both ends, the guest's and the firmware's IDs, and
	 * every message consumed both ways. (A receiver publishes its
	 * received counter with its batched releases, so the guest's may lag
	 * by its last batch; the indices are exact.) */
	proc_start(&stat, proc_ctl_path(), sargs);
	ck_assert_ptr_nonnull(proc_next(&stat, TWAIT_MS));
	fprintf(stderr, "ivshmem-ctl channel stat --json echo:\n%s\n", stat.line);
	{
		JsonParser *jp = json_parser_new();
		JsonObject *o;

		ck_assert(json_parser_load_from_data(jp, stat.line, -1, NULL));
		o = json_node_get_object(json_parser_get_root(jp));
		ck_assert_str_eq(json_object_get_string_member(o, "end0-state"),
				 "attached");
		ck_assert_int_eq(json_object_get_int_member(o, "end0-peer"), gid);
		ck_assert_int_eq(json_object_get_int_member(o, "end1-peer"), fw_id);
		ck_assert_int_eq(json_object_get_int_member(o, "end0-sent"), 2001);
		ck_assert_int_eq(json_object_get_int_member(o, "end1-sent"), 2000);
		ck_assert_int_eq(json_object_get_int_member(o, "end1-received"), 2001);
		ck_assert_int_eq(json_object_get_int_member(o, "end0-head"),
				 json_object_get_int_member(o, "end1-tail"));
		ck_assert_int_eq(json_object_get_int_member(o, "end1-head"),
				 json_object_get_int_member(o, "end0-tail"));
		ck_assert_int_eq(json_object_get_int_member(o, "end0-rung"),
				 (gint64)grung);
		g_object_unref(jp);
	}
	EXPECT_EXIT(&stat, 0);
	proc_free(&stat);
	GUEST_OK(&g, "detach 0");
	guest_stop(&g);
	tserver_stop_ok(s);
}
END_TEST
#endif

static Suite *guest_suite(void)
{
	Suite *su = suite_create("guest");
	TCase *tc = tcase_create("guest");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_guest_open);
	tcase_add_test(tc, test_guest_doorbells);
	tcase_add_test(tc, test_guest_channel);
	tcase_add_test(tc, test_guest_ctl);
	tcase_add_test(tc, test_guest_no_iommu);
	suite_add_tcase(su, tc);
#ifdef FLAT_UNICORN_PATH
	tc = tcase_create("firmware");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_guest_firmware);
	suite_add_tcase(su, tc);
#endif
	return su;
}

int main(void)
{
	gchar *err = NULL, *cmd;
	gint status = 0;

	qemu_path = g_find_program_in_path("qemu-system-x86_64");
	if (!qemu_path) {
		printf("SKIP: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)\n");
		return 77;
	}
	snprintf(image_dir, sizeof(image_dir), "%s", GUEST_IMAGE_DIR);
	cmd = g_strdup_printf("sh %s %s %s %s", GUEST_IMAGE_SCRIPT,
			      GUEST_IMAGE_DIR, GUEST_AGENT_PATH, proc_ctl_path());
	if (!g_spawn_command_line_sync(cmd, NULL, &err, &status, NULL) ||
	    !g_spawn_check_wait_status(status, NULL)) {
		if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
			printf("SKIP: %s", err ? err : "no guest image\n");
			return 77;
		}
		fprintf(stderr, "guest image: %s\n", err ? err : "failed");
		return 1;
	}
	g_free(cmd);
	g_free(err);
	return run_tracked_suite(guest_suite());
}
