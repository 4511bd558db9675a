/* SPDX-License-Identifier: MIT */
/*
 * Interop with real QEMU: an ivshmem-doorbell device connects to the server
 * next to a test peer. QEMU runs with -S (no guest code) and the test plays
 * the guest through the qtest protocol: it programs PCI config space, maps
 * the BARs, reads the registers and the shared memory, rings doorbells, and
 * watches MSI-X for the interrupts the peer sends.
 *
 * Two kinds of peer face QEMU: the test-common tpeer, which checks the
 * protocol stream message by message, and (the lib_* tests) the library's
 * own peer side, ivshmem_peer_*, driven by a plain poll() loop.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define QEMU_BIN	"qemu-system-x86_64"
#define VECTORS		2

/* PCI IDs of ivshmem (QEMU's Red Hat/Qumranet range). */
#define IVSHMEM_PCI_ID	0x11101af4u

/* ivshmem registers in BAR0. */
#define REG_IVPOSITION	0x08
#define REG_DOORBELL	0x0c

/*
 * Guest-physical addresses, all inside the pc machine's PCI hole (RAM ends
 * at 64 MiB, the IOAPIC starts at 0xfec00000), aligned to the BAR sizes.
 */
#define BAR0_ADDR	0xfebf0000u
#define BAR1_ADDR	0xfebf1000u
#define BAR2_ADDR	0xe0000000u
#define PCI_HOLE_END	0xfec00000u

/* Where MSI-X vector v writes its data: plain guest RAM, not the APIC. */
#define MSI_ADDR(v)	(0x100000u + 4u * (v))
#define MSI_DATA(v)	(0xc0de0000u | (v))

/* MSI-X capability and table layout (PCI spec). */
#define PCI_CAP_ID_MSIX		0x11
#define MSIX_CTRL_ENABLE	0x8000
#define MSIX_CTRL_MASKALL	0x4000
#define MSIX_ENTRY_SIZE		16
#define MSIX_ENTRY_CTRL		12
#define MSIX_ENTRY_MASKED	1u

/*
 * What a test child started. Check forks per test and a failing assertion
 * leaves with _exit(), so no teardown runs in the child: the record lives in
 * memory shared with the runner, which removes what a dead child left.
 */
struct leftovers {
	pid_t qemu;
	struct tserver srv;
	bool srv_up;
	char dir[64];
	char qsock[108];
	char qlog[128];
};

static struct leftovers *left;

/* Per-test state, in the test child. */
static struct {
	struct tpeer peer;
	bool peer_up;
	int qt;                 /* qtest connection */
	GString *in;            /* qtest bytes not yet consumed */
	int qemu_id;
	uint32_t dev;           /* config address of the device (bus 0) */
	uint32_t msix_cap;
	uint64_t table, pba;    /* guest addresses of the MSI-X table and PBA */
	uint64_t bar0_size, bar1_size, bar2_size;
	uint8_t *shm;           /* the peer's mapping of the shared memory */

	/* lib_* tests: a library peer instead of the tpeer */
	struct ivshmem_peer *lp;
	struct {
		int id;                 /* its own ID */
		uint8_t *shm;           /* its mapping */
		uint64_t shm_size;
		unsigned njoined, nleft, nready;
		int ready_vectors;      /* own vectors when ready came */
		int joined_id, left_id;
		unsigned joined_vectors;
		uint64_t bells[VECTORS];        /* doorbell counts by vector */
		unsigned ncalls[VECTORS];       /* doorbell callbacks */
		unsigned stray;         /* doorbells on other vectors */
		int disconnected;       /* the error, 0 if none */
		bool echo;              /* ring QEMU back from the callback */
		int echo_err;           /* the first ring-back error */
		unsigned nlog;          /* warnings and errors logged */
	} lib;
} t;

/* ---- cleanup, also for a child that died ------------------------------- */

static void dump_file(const char *what, const char *path)
{
	char *text = NULL;

	if (path[0] && g_file_get_contents(path, &text, NULL, NULL) && *text)
		fprintf(stderr, "---- %s ----\n%s\n", what, text);
	g_free(text);
}

static void wait_gone(pid_t pid)
{
	/* Not our child any more: someone else reaps it, a zombie is gone. */
	struct tserver proc = { .pid = pid };
	double deadline = now_seconds() + 5;

	while (tserver_alive(&proc) && now_seconds() < deadline)
		usleep(2000);
}

/*
 * Runs in the runner after a child ended: the child's processes are no
 * longer our children, so they are stopped by their recorded IDs.
 */
static void reap_leftovers(void)
{
	if (left->qemu > 0 || left->srv_up)
		fprintf(stderr, "cleaning up after a failed test\n");
	dump_file("QEMU log", left->qlog);
	if (left->srv_up)
		dump_file("server log", left->srv.log);
	if (left->qemu > 0) {
		kill(left->qemu, SIGKILL);
		wait_gone(left->qemu);
	}
	if (left->srv_up) {
		if (left->srv.pid > 0) {
			kill(left->srv.pid, SIGKILL);
			wait_gone(left->srv.pid);
		}
		tserver_cleanup(&left->srv);
	}
	if (left->qsock[0])
		unlink(left->qsock);
	if (left->qlog[0])
		unlink(left->qlog);
	if (left->dir[0])
		rmdir(left->dir);
	memset(left, 0, sizeof(*left));
}

/* ---- qtest ------------------------------------------------------------- */

/* One reply line, skipping the asynchronous "IRQ ..." notices. */
static char *qt_line(void)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;

	for (;;) {
		char *nl = memchr(t.in->str, '\n', t.in->len);

		if (nl) {
			size_t n = (size_t)(nl - t.in->str);
			char *line = g_strndup(t.in->str, n);

			g_string_erase(t.in, 0, (gssize)n + 1);
			if (g_str_has_prefix(line, "IRQ")) {
				g_free(line);
				continue;
			}
			return line;
		}

		struct pollfd pfd = { .fd = t.qt, .events = POLLIN };
		int ms = (int)((deadline - now_seconds()) * 1000);
		char buf[4096];
		ssize_t r;

		ck_assert_msg(ms > 0, "qtest: no reply within %d ms",
			      TWAIT_MS);
		if (poll(&pfd, 1, ms) < 0) {
			ck_assert_msg(errno == EINTR, "poll: %s",
				      strerror(errno));
			continue;
		}
		if (!pfd.revents)
			continue;
		r = read(t.qt, buf, sizeof(buf));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		ck_assert_msg(r > 0, "qtest: connection lost (%s)",
			      r < 0 ? strerror(errno) : "EOF");
		g_string_append_len(t.in, buf, r);
	}
}

/* Send one command and return its reply, which must start with "OK". */
G_GNUC_PRINTF(1, 2)
static char *qt_cmd(const char *fmt, ...)
{
	va_list ap;
	char *cmd, *reply;
	size_t len, off = 0;

	va_start(ap, fmt);
	cmd = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	len = strlen(cmd);
	while (off < len) {
		ssize_t w = send(t.qt, cmd + off, len - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		ck_assert_msg(w > 0, "qtest: send: %s", strerror(errno));
		off += (size_t)w;
	}
	reply = qt_line();
	ck_assert_msg(!strcmp(reply, "OK") || g_str_has_prefix(reply, "OK "),
		      "qtest: '%.60s' answered '%s'", cmd, reply);
	g_free(cmd);
	return reply;
}

/* A command whose reply is "OK 0x<value>". */
G_GNUC_PRINTF(1, 2)
static uint64_t qt_val(const char *fmt, ...)
{
	va_list ap;
	char *cmd, *reply, *end;
	uint64_t v;

	va_start(ap, fmt);
	cmd = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	reply = qt_cmd("%s", cmd);
	ck_assert_msg(g_str_has_prefix(reply, "OK 0x"),
		      "qtest: '%s' answered '%s'", cmd, reply);
	v = g_ascii_strtoull(reply + 5, &end, 16);
	ck_assert_msg(*end == '\0', "qtest: bad number in '%s'", reply);
	g_free(reply);
	g_free(cmd);
	return v;
}

static void qt_ok(char *reply)
{
	g_free(reply);
}

static uint32_t readl(uint64_t addr)
{
	return (uint32_t)qt_val("readl 0x%" PRIx64 "\n", addr);
}

static void writel(uint64_t addr, uint32_t val)
{
	qt_ok(qt_cmd("writel 0x%" PRIx64 " 0x%x\n", addr, val));
}

static void mem_write(uint64_t addr, const uint8_t *data, size_t len)
{
	GString *s = g_string_new(NULL);

	g_string_printf(s, "write 0x%" PRIx64 " %zu 0x", addr, len);
	for (size_t i = 0; i < len; i++)
		g_string_append_printf(s, "%02x", data[i]);
	g_string_append_c(s, '\n');
	qt_ok(qt_cmd("%s", s->str));
	g_string_free(s, TRUE);
}

static void mem_read(uint64_t addr, uint8_t *data, size_t len)
{
	char *reply = qt_cmd("read 0x%" PRIx64 " %zu\n", addr, len);

	ck_assert_msg(g_str_has_prefix(reply, "OK 0x") &&
		      strlen(reply) == 5 + 2 * len,
		      "qtest: read of %zu bytes answered '%.80s'", len, reply);
	for (size_t i = 0; i < len; i++) {
		int hi = g_ascii_xdigit_value(reply[5 + 2 * i]);
		int lo = g_ascii_xdigit_value(reply[6 + 2 * i]);

		ck_assert(hi >= 0 && lo >= 0);
		data[i] = (uint8_t)(hi << 4 | lo);
	}
	g_free(reply);
}

/* Poll a guest dword until (value & mask) == want; returns the last value. */
static uint32_t poll_readl(uint64_t addr, uint32_t mask, uint32_t want)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;
	uint32_t v;

	/* QEMU's main loop picks up an eventfd after the ring returned. */
	while (((v = readl(addr)) & mask) != want &&
	       now_seconds() < deadline)
		usleep(1000);
	return v;
}

/* ---- PCI config space through ports 0xcf8/0xcfc ------------------------ */

static void cfg_select(unsigned off)
{
	qt_ok(qt_cmd("outl 0xcf8 0x%x\n", 0x80000000u | t.dev | (off & 0xfc)));
}

static uint32_t cfg_read32(unsigned off)
{
	cfg_select(off);
	return (uint32_t)qt_val("inl 0xcfc\n");
}

static uint16_t cfg_read16(unsigned off)
{
	cfg_select(off);
	return (uint16_t)qt_val("inw 0x%x\n", 0xcfc + (off & 2));
}

static uint8_t cfg_read8(unsigned off)
{
	cfg_select(off);
	return (uint8_t)qt_val("inb 0x%x\n", 0xcfc + (off & 3));
}

static void cfg_write32(unsigned off, uint32_t val)
{
	cfg_select(off);
	qt_ok(qt_cmd("outl 0xcfc 0x%x\n", val));
}

static void cfg_write16(unsigned off, uint16_t val)
{
	cfg_select(off);
	qt_ok(qt_cmd("outw 0x%x 0x%x\n", 0xcfc + (off & 2), val));
}

/*
 * Size a memory BAR the standard way (all ones, read back the mask), then
 * place it at addr. Returns the size; *is64 tells whether it took two
 * dwords.
 */
static uint64_t bar_assign(unsigned bar, uint64_t addr, bool *is64,
			   bool *prefetch)
{
	unsigned off = 0x10 + 4 * bar;
	uint32_t lo = cfg_read32(off), mlo, mhi = 0xffffffffu;
	uint64_t size;

	ck_assert_msg(!(lo & 1), "BAR%u is an I/O BAR", bar);
	*is64 = (lo & 6) == 4;
	*prefetch = lo & 8;
	cfg_write32(off, 0xffffffffu);
	mlo = cfg_read32(off);
	if (*is64) {
		cfg_write32(off + 4, 0xffffffffu);
		mhi = cfg_read32(off + 4);
	}
	size = ~(((uint64_t)mhi << 32) | (mlo & ~0xfu)) + 1;
	ck_assert_msg(size && !(size & (size - 1)),
		      "BAR%u: mask %08x%08x is no power-of-two size", bar, mhi,
		      mlo);
	ck_assert_msg(!(addr & (size - 1)), "BAR%u: 0x%" PRIx64
		      " not aligned to its size 0x%" PRIx64, bar, addr, size);
	cfg_write32(off, (uint32_t)addr);
	if (*is64)
		cfg_write32(off + 4, (uint32_t)(addr >> 32));
	ck_assert_uint_eq(cfg_read32(off) & ~0xfu, (uint32_t)addr);
	return size;
}

static uint32_t find_capability(uint8_t id)
{
	unsigned ptr, n;

	ck_assert_msg(cfg_read16(0x06) & 0x10, "no capability list");
	ptr = cfg_read8(0x34) & 0xfc;
	/* Bounded walk: a looping list must not hang the test. */
	for (n = 0; ptr >= 0x40 && n < 48; n++) {
		if (cfg_read8(ptr) == id)
			return ptr;
		ptr = cfg_read8(ptr + 1) & 0xfc;
	}
	return 0;
}

/* ---- the machine ------------------------------------------------------- */

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		      "bind %s: %s", path, strerror(errno));
	ck_assert_int_eq(listen(fd, 1), 0);
	return fd;
}

static pid_t spawn_qemu(void)
{
	char *qtest = g_strdup_printf("unix:%s", left->qsock);
	char *chardev = g_strdup_printf("socket,path=%s,id=ivs",
					left->srv.sock);
	char *device = g_strdup_printf("ivshmem-doorbell,chardev=ivs,"
				       "vectors=%u", VECTORS);
	const char *argv[] = {
		QEMU_BIN, "-M", "pc", "-accel", "tcg",
		/* -S: no guest code runs, the test is the guest. */
		"-S", "-display", "none", "-nodefaults", "-m", "64M",
		"-qtest", qtest, "-qtest-log", "/dev/null",
		"-chardev", chardev, "-device", device, NULL,
	};
	pid_t parent = getpid();
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int log = open(left->qlog, O_WRONLY | O_CREAT | O_TRUNC |
			       O_CLOEXEC, 0644);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		/* A test child that fails leaves at once: take QEMU along. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (log >= 0) {
			dup2(log, STDOUT_FILENO);
			dup2(log, STDERR_FILENO);
		}
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	g_free(qtest);
	g_free(chardev);
	g_free(device);
	return pid;
}

/* Accept QEMU's qtest connection, failing early if QEMU exits instead. */
static int accept_qtest(int lfd)
{
	double deadline = now_seconds() + 30;

	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		int status;

		if (poll(&pfd, 1, 50) > 0) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			ck_assert_msg(fd >= 0, "accept: %s", strerror(errno));
			return fd;
		}
		if (waitpid(left->qemu, &status, WNOHANG) == left->qemu) {
			left->qemu = 0;
			ck_abort_msg("QEMU exited (status 0x%x) before "
				     "connecting to qtest", status);
		}
		ck_assert_msg(now_seconds() < deadline,
			      "QEMU did not connect to qtest");
	}
}

/* Wait until the peer knows QEMU with all its vectors; returns its ID. */
static int wait_qemu_join(void)
{
	double deadline = now_seconds() + 30;
	int id = -1;

	while (id < 0 || t.peer.nvec[id] < VECTORS) {
		int ms = (int)((deadline - now_seconds()) * 1000);
		struct tmsg m;
		char *why = NULL;
		int r = tpeer_recv(&t.peer, ms > 0 ? ms : 0, &m, &why);

		ck_assert_msg(r == 1, "peer: waiting for QEMU to join: %d %s",
			      r, why ? why : "");
		ck_assert_msg(m.kind == TMSG_VECTOR, "peer: unexpected %s "
			      "for %d", m.kind == TMSG_LEAVE ? "leave" :
			      "message", m.id);
		ck_assert_int_ne(m.id, t.peer.id);
		if (id < 0)
			id = m.id;
		ck_assert_int_eq(m.id, id);
	}
	return id;
}

/* What every fixture starts with: fresh state and a server. */
static void fixture_begin(void)
{
	const char *args[] = { "-n", G_STRINGIFY(VECTORS), NULL };

	reap_leftovers();
	memset(&t, 0, sizeof(t));
	t.qt = -1;
	t.in = g_string_new(NULL);

	ck_assert_int_eq(tserver_start(&left->srv, args), 0);
	left->srv_up = true;
}

/* Start QEMU with the device on the server and take its qtest connection. */
static void qemu_start(void)
{
	int lfd;

	snprintf(left->dir, sizeof(left->dir), "/tmp/ivshmem-qemu-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(left->dir));
	snprintf(left->qsock, sizeof(left->qsock), "%s/qtest", left->dir);
	snprintf(left->qlog, sizeof(left->qlog), "%s/log", left->dir);
	/* QEMU's -qtest unix:PATH is a client: listen before starting it. */
	lfd = listen_unix(left->qsock);
	left->qemu = spawn_qemu();
	t.qt = accept_qtest(lfd);
	close(lfd);
	unlink(left->qsock);
	left->qsock[0] = '\0';
}

/* Find the device on bus 0, place its BARs, enable decoding and DMA. */
static void device_setup(void)
{
	bool is64, prefetch;
	int slot;

	for (slot = 0; slot < 32; slot++) {
		t.dev = (uint32_t)slot << 11;
		if (cfg_read32(0x00) == IVSHMEM_PCI_ID)
			break;
	}
	ck_assert_msg(slot < 32, "no ivshmem device on bus 0");

	t.bar0_size = bar_assign(0, BAR0_ADDR, &is64, &prefetch);
	ck_assert(!is64);
	t.bar1_size = bar_assign(1, BAR1_ADDR, &is64, &prefetch);
	ck_assert(!is64);
	ck_assert_uint_le(t.bar1_size, PCI_HOLE_END - BAR1_ADDR);
	t.bar2_size = bar_assign(2, BAR2_ADDR, &is64, &prefetch);
	ck_assert_msg(is64 && prefetch, "BAR2 is not 64-bit prefetchable");
	/* Memory decoding for the BARs, bus mastering for the MSI writes. */
	cfg_write16(0x04, 0x0006);
}

static void setup(void)
{
	fixture_begin();
	ck_assert_int_eq(tpeer_connect(&t.peer, left->srv.sock, VECTORS,
				       true), 0);
	t.peer_up = true;
	ck_assert_int_eq(tpeer_greet(&t.peer, 5000), 0);
	t.shm = mmap(NULL, t.peer.shm_size, PROT_READ | PROT_WRITE,
		     MAP_SHARED, t.peer.shm_fd, 0);
	ck_assert(t.shm != MAP_FAILED);

	qemu_start();
	t.qemu_id = wait_qemu_join();
	device_setup();
}

/* ---- the library peer -------------------------------------------------- */

static void lib_ready(void *user, struct ivshmem_peer *peer)
{
	int id = ivshmem_peer_get_id(peer);

	t.lib.nready++;
	t.lib.ready_vectors = ivshmem_peer_get_vectors(peer, id);
}

static void lib_joined(void *user, struct ivshmem_peer *peer, int id,
		       unsigned vectors)
{
	t.lib.njoined++;
	t.lib.joined_id = id;
	t.lib.joined_vectors = vectors;
}

static void lib_left(void *user, struct ivshmem_peer *peer, int id)
{
	t.lib.nleft++;
	t.lib.left_id = id;
}

static void lib_doorbell(void *user, struct ivshmem_peer *peer,
			 unsigned vector, uint64_t count)
{
	int r;

	if (vector >= VECTORS) {
		t.lib.stray++;
		return;
	}
	t.lib.bells[vector] += count;
	t.lib.ncalls[vector]++;
	if (!t.lib.echo)
		return;
	/* Ring QEMU back on the same vector, from inside the callback. */
	r = ivshmem_peer_ring(peer, t.qemu_id, vector);
	if (r < 0 && !t.lib.echo_err)
		t.lib.echo_err = r;
}

static void lib_disconnected(void *user, struct ivshmem_peer *peer,
			     int error)
{
	if (!t.lib.disconnected)
		t.lib.disconnected = error ? error : -EINVAL;
}

/* Into the test's log, debug messages excepted. */
static void lib_log(void *user, int priority, const char *fmt, va_list ap)
{
	if (priority >= IVSHMEM_LOG_DEBUG)
		return;
	if (priority <= IVSHMEM_LOG_WARNING)
		t.lib.nlog++;
	fprintf(stderr, "libivshmem <%d>: ", priority);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static const struct ivshmem_peer_ops lib_ops = {
	.ready = lib_ready,
	.joined = lib_joined,
	.left = lib_left,
	.doorbell = lib_doorbell,
	.disconnected = lib_disconnected,
	.log = lib_log,
};

/*
 * One turn of the caller's loop: wait up to @ms for the peer's fd, then
 * dispatch (also when nothing is ready: it must not block). The connection
 * to the server must survive.
 */
static void lib_pump(int ms)
{
	struct pollfd pfd = { .fd = ivshmem_peer_get_fd(t.lp),
			      .events = POLLIN };
	int r;

	ck_assert_int_ge(pfd.fd, 0);
	if (poll(&pfd, 1, ms) < 0)
		ck_assert_msg(errno == EINTR, "poll: %s", strerror(errno));
	r = ivshmem_peer_dispatch(t.lp);
	ck_assert_msg(r == 0, "ivshmem_peer_dispatch: %d (%s)", r,
		      ivshmem_strerror(r));
	ck_assert_msg(!t.lib.disconnected, "library peer disconnected: %s",
		      ivshmem_strerror(t.lib.disconnected));
}

/* Dispatch until vector v has been rung at least n times in all, or ms. */
static void lib_wait_bell(unsigned v, uint64_t n, int ms)
{
	double deadline = now_seconds() + ms / 1000.0;

	while (t.lib.bells[v] < n && now_seconds() < deadline)
		lib_pump(10);
}

static void lib_clear_bells(void)
{
	memset(t.lib.bells, 0, sizeof(t.lib.bells));
	memset(t.lib.ncalls, 0, sizeof(t.lib.ncalls));
}

/* Nothing rung, on any vector (after dispatching whatever is pending). */
static void lib_assert_quiet(void)
{
	lib_pump(50);
	for (unsigned v = 0; v < VECTORS; v++)
		ck_assert_msg(!t.lib.ncalls[v], "vector %u rung %" PRIu64
			      " times in %u callbacks", v, t.lib.bells[v],
			      t.lib.ncalls[v]);
	ck_assert_uint_eq(t.lib.stray, 0);
}

/* Dispatch until the library peer reports a join; returns the ID. */
static int lib_wait_qemu_join(void)
{
	double deadline = now_seconds() + 30;

	while (!t.lib.njoined && now_seconds() < deadline)
		lib_pump(50);
	ck_assert_msg(t.lib.njoined, "library peer: QEMU did not join");
	ck_assert_uint_eq(t.lib.njoined, 1);
	ck_assert_int_ne(t.lib.joined_id, t.lib.id);
	return t.lib.joined_id;
}

/* tserver_start() returned once the server listens: no retry needed. */
static int lib_connect(const char *path)
{
	return ivshmem_peer_connect(t.lp, path);
}

/*
 * Like setup(), with a library peer in place of the tpeer: it is READY
 * before QEMU starts, so it sees QEMU join.
 */
static void setup_lib(void)
{
	struct ivshmem_peer_config cfg = { .vectors = VECTORS };
	void *addr = NULL;
	double deadline;
	int r;

	fixture_begin();
	t.lib.id = t.lib.joined_id = t.lib.left_id = -1;
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &lib_ops, NULL, &t.lp), 0);
	ck_assert_int_eq(ivshmem_peer_get_state(t.lp), IVSHMEM_PEER_IDLE);
	r = lib_connect(left->srv.sock);
	ck_assert_msg(r == 0, "ivshmem_peer_connect: %d (%s)", r,
		      ivshmem_strerror(r));
	r = ivshmem_peer_wait_ready(t.lp, 5000);
	ck_assert_msg(r == 0, "ivshmem_peer_wait_ready: %d (%s)", r,
		      ivshmem_strerror(r));
	ck_assert_int_eq(ivshmem_peer_get_state(t.lp), IVSHMEM_PEER_READY);
	ck_assert_uint_eq(t.lib.nready, 1);
	ck_assert_uint_eq(t.lib.njoined, 0);
	t.lib.id = ivshmem_peer_get_id(t.lp);
	ck_assert_int_ge(t.lib.id, 0);
	/*
	 * The peer is configured with the server's vector count, so it must
	 * be ready only with all of them (lib_join checks ready_vectors).
	 * The other tests need them all: dispatch until they are there.
	 */
	deadline = now_seconds() + 5;
	while (ivshmem_peer_get_vectors(t.lp, t.lib.id) < VECTORS &&
	       now_seconds() < deadline)
		lib_pump(10);
	ck_assert_int_eq(ivshmem_peer_get_vectors(t.lp, t.lib.id), VECTORS);
	ck_assert_int_eq(ivshmem_peer_get_shm(t.lp, &addr, &t.lib.shm_size),
			 0);
	ck_assert_ptr_nonnull(addr);
	t.lib.shm = addr;

	qemu_start();
	t.qemu_id = lib_wait_qemu_join();
	device_setup();
}

static void teardown(void)
{
	int status = 0;

	if (t.qt >= 0)
		close(t.qt);
	t.qt = -1;
	if (left->qemu > 0) {
		double deadline = now_seconds() + 5;

		kill(left->qemu, SIGTERM);
		while (waitpid(left->qemu, &status, WNOHANG) != left->qemu) {
			if (now_seconds() > deadline) {
				kill(left->qemu, SIGKILL);
				waitpid(left->qemu, &status, 0);
				break;
			}
			usleep(2000);
		}
		left->qemu = 0;
	}
	/* The library peer after QEMU, before the server: all leave. */
	ivshmem_peer_free(t.lp);
	t.lp = NULL;
	if (t.shm && t.shm != MAP_FAILED)
		munmap(t.shm, t.peer.shm_size);
	t.shm = NULL;
	if (t.peer_up)
		tpeer_close(&t.peer);
	t.peer_up = false;
	g_string_free(t.in, TRUE);
	t.in = NULL;
	if (left->srv_up) {
		int r = tserver_stop(&left->srv);

		left->srv_up = false;
		ck_assert_msg(r == 0, "tserver_stop: %d", r);
	}
	unlink(left->qlog);
	left->qlog[0] = '\0';
	ck_assert_msg(rmdir(left->dir) == 0, "rmdir %s: %s", left->dir,
		      strerror(errno));
	left->dir[0] = '\0';
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(device_layout)
{
	/* The register block, and the shared memory as the server sized it. */
	ck_assert_uint_eq(t.bar0_size, 256);
	ck_assert_uint_eq(t.bar2_size, t.peer.shm_size);
	ck_assert_uint_eq(t.peer.shm_size, 4u << 20);
	ck_assert_int_eq(t.peer.npeers, 1);
}
END_TEST

START_TEST(ivposition)
{
	/* QEMU's own ID is the one the other peers were told it joined as. */
	ck_assert_int_ne(t.qemu_id, t.peer.id);
	ck_assert_uint_eq(readl(BAR0_ADDR + REG_IVPOSITION),
			  (uint32_t)t.qemu_id);
	/* A read-only register: a write changes nothing. */
	writel(BAR0_ADDR + REG_IVPOSITION, 0x1234);
	ck_assert_uint_eq(readl(BAR0_ADDR + REG_IVPOSITION),
			  (uint32_t)t.qemu_id);
}
END_TEST

START_TEST(shared_memory)
{
	uint8_t out[256], in[256];
	uint64_t far = t.peer.shm_size - sizeof(out);

	/* Guest writes, peer reads: at the start and at the very end. */
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + 3);
	mem_write(BAR2_ADDR, out, sizeof(out));
	ck_assert_mem_eq(t.shm, out, sizeof(out));
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(0xff - i);
	mem_write(BAR2_ADDR + far, out, sizeof(out));
	ck_assert_mem_eq(t.shm + far, out, sizeof(out));

	/* Peer writes, guest reads. */
	for (size_t i = 0; i < sizeof(out); i++)
		t.shm[0x1000 + i] = (uint8_t)(i ^ 0x5a);
	mem_read(BAR2_ADDR + 0x1000, in, sizeof(in));
	ck_assert_mem_eq(in, t.shm + 0x1000, sizeof(in));

	/* Aligned dword accesses, in both directions. */
	writel(BAR2_ADDR + 0x2000, 0xa5b6c7d8);
	ck_assert_uint_eq(t.shm[0x2000], 0xd8);
	ck_assert_uint_eq(t.shm[0x2003], 0xa5);
	memcpy(t.shm + 0x2004, "\x01\x02\x03\x04", 4);
	ck_assert_uint_eq(readl(BAR2_ADDR + 0x2004), 0x04030201);
}
END_TEST

START_TEST(doorbell_to_peer)
{
	for (unsigned v = 0; v < VECTORS; v++) {
		uint32_t val = (uint32_t)t.peer.id << 16 | v;
		int64_t n = -ETIMEDOUT;

		/*
		 * QEMU learns about the peer from its greeting, which its main
		 * loop may still be reading: a doorbell to a peer it does not
		 * know yet is dropped. Once it knows, the eventfd is written
		 * before qtest answers, so a short wait suffices.
		 */
		for (int i = 0; i < 50 && n == -ETIMEDOUT; i++) {
			writel(BAR0_ADDR + REG_DOORBELL, val);
			n = tpeer_wait_doorbell(&t.peer, v, 200);
		}
		ck_assert_msg(n > 0, "vector %u: no doorbell: %lld", v,
			      (long long)n);
		/* Only the vector that was rung. */
		for (unsigned o = 0; o < VECTORS; o++)
			ck_assert_int_eq(tpeer_wait_doorbell(&t.peer, o, 50),
					 -ETIMEDOUT);
	}

	/* Again, now known to be connected: exactly one event each. */
	for (unsigned v = 0; v < VECTORS; v++) {
		writel(BAR0_ADDR + REG_DOORBELL,
		       (uint32_t)t.peer.id << 16 | v);
		ck_assert_int_eq(tpeer_wait_doorbell(&t.peer, v, 5000), 1);
		for (unsigned o = 0; o < VECTORS; o++)
			ck_assert_int_eq(tpeer_wait_doorbell(&t.peer, o, 50),
					 -ETIMEDOUT);
	}
}
END_TEST

/*
 * QEMU delivers a peer's interrupt only through MSI-X (without it the event
 * is consumed and dropped): enable it, every vector masked, with vector v
 * writing MSI_DATA(v) to MSI_ADDR(v) in guest RAM.
 */
static void msix_setup(void)
{
	uint32_t ctrl, tab, pba;

	t.msix_cap = find_capability(PCI_CAP_ID_MSIX);
	ck_assert_msg(t.msix_cap, "no MSI-X capability");
	ctrl = cfg_read16(t.msix_cap + 2);
	ck_assert_uint_eq((ctrl & 0x7ff) + 1, VECTORS);
	tab = cfg_read32(t.msix_cap + 4);
	pba = cfg_read32(t.msix_cap + 8);
	ck_assert_uint_eq(tab & 7, 1);
	ck_assert_uint_eq(pba & 7, 1);
	t.table = BAR1_ADDR + (tab & ~7u);
	t.pba = BAR1_ADDR + (pba & ~7u);
	ck_assert_uint_le((tab & ~7u) + VECTORS * MSIX_ENTRY_SIZE,
			  t.bar1_size);
	ck_assert_uint_lt(pba & ~7u, t.bar1_size);

	for (unsigned v = 0; v < VECTORS; v++) {
		uint64_t e = t.table + v * MSIX_ENTRY_SIZE;

		writel(e + MSIX_ENTRY_CTRL, MSIX_ENTRY_MASKED);
		writel(e + 0, MSI_ADDR(v));
		writel(e + 4, 0);
		writel(e + 8, MSI_DATA(v));
		writel(MSI_ADDR(v), 0);
	}
	cfg_write16(t.msix_cap + 2, (uint16_t)((ctrl & ~MSIX_CTRL_MASKALL) |
					       MSIX_CTRL_ENABLE));
	ck_assert_uint_eq(cfg_read16(t.msix_cap + 2) &
			  (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL),
			  MSIX_CTRL_ENABLE);
	ck_assert_uint_eq(readl(t.pba) & ((1u << VECTORS) - 1), 0);
}

/*
 * After msix_setup(): ring(v) must interrupt QEMU on vector v and no other.
 * Masked, the interrupt is held as the pending bit; unmasking delivers it;
 * unmasked, it is delivered directly. Leaves every vector unmasked.
 */
static void check_interrupts(int (*ring)(unsigned vector))
{
	for (unsigned v = 0; v < VECTORS; v++) {
		uint64_t e = t.table + v * MSIX_ENTRY_SIZE;
		uint32_t bit = 1u << v;

		/* Masked: the interrupt is held as the vector's pending bit. */
		ck_assert_int_eq(ring(v), 0);
		ck_assert_msg(poll_readl(t.pba, bit, bit) & bit,
			      "vector %u: pending bit not set", v);
		ck_assert_uint_eq(readl(t.pba) & ((1u << VECTORS) - 1), bit);
		for (unsigned o = 0; o < VECTORS; o++)
			ck_assert_uint_eq(readl(MSI_ADDR(o)), 0);

		/* Unmasking delivers it: QEMU writes the data to guest RAM. */
		writel(e + MSIX_ENTRY_CTRL, 0);
		ck_assert_uint_eq(poll_readl(MSI_ADDR(v), ~0u, MSI_DATA(v)),
				  MSI_DATA(v));
		ck_assert_uint_eq(readl(t.pba) & bit, 0);
		writel(MSI_ADDR(v), 0);

		/* Unmasked: delivered directly. */
		ck_assert_int_eq(ring(v), 0);
		ck_assert_uint_eq(poll_readl(MSI_ADDR(v), ~0u, MSI_DATA(v)),
				  MSI_DATA(v));
		ck_assert_uint_eq(readl(t.pba) & bit, 0);
		for (unsigned o = 0; o < VECTORS; o++)
			if (o != v)
				ck_assert_uint_eq(readl(MSI_ADDR(o)), 0);
		writel(MSI_ADDR(v), 0);
	}
}

static int tpeer_ring_qemu(unsigned vector)
{
	return tpeer_ring(&t.peer, t.qemu_id, vector);
}

START_TEST(doorbell_from_peer)
{
	msix_setup();
	check_interrupts(tpeer_ring_qemu);
}
END_TEST

START_TEST(leave_on_exit)
{
	char *why = NULL;
	int status, r;
	struct tmsg m;

	ck_assert_int_eq(kill(left->qemu, SIGTERM), 0);
	ck_assert_int_eq(waitpid(left->qemu, &status, 0), left->qemu);
	left->qemu = 0;
	ck_assert_msg(WIFEXITED(status) || WTERMSIG(status) == SIGTERM,
		      "QEMU died by signal %d", WTERMSIG(status));

	/* The peer is told QEMU's ID left, and nothing else. */
	r = tpeer_recv(&t.peer, 10000, &m, &why);
	ck_assert_msg(r == 1, "peer: waiting for the leave: %d %s", r,
		      why ? why : "");
	ck_assert_int_eq(m.kind, TMSG_LEAVE);
	ck_assert_int_eq(m.id, t.qemu_id);
	ck_assert_int_eq(t.peer.npeers, 0);
	ck_assert_int_eq(tpeer_fd(&t.peer, t.qemu_id, 0), -1);
	/* The server is still there for the remaining peer. */
	ck_assert(tserver_alive(&left->srv));
}
END_TEST

/* ---- the library peer and QEMU ----------------------------------------- */

START_TEST(lib_join)
{
	int ids[4] = { -1, -1, -1, -1 };

	/* The ID the library announced is QEMU's IVPOSITION, with both
	 * vectors of the device. */
	ck_assert_uint_eq(readl(BAR0_ADDR + REG_IVPOSITION),
			  (uint32_t)t.qemu_id);
	ck_assert_uint_eq(t.lib.joined_vectors, VECTORS);
	ck_assert_int_eq(ivshmem_peer_get_vectors(t.lp, t.qemu_id), VECTORS);
	ck_assert_int_eq(ivshmem_peer_get_peers(t.lp, ids, 4), 1);
	ck_assert_int_eq(ids[0], t.qemu_id);
	ck_assert_int_eq(ivshmem_peer_get_state(t.lp), IVSHMEM_PEER_READY);
	/* Configured for VECTORS, and the server has VECTORS: ready came
	 * with all of them (header: ready when it holds that many). */
	ck_assert_msg(t.lib.ready_vectors == VECTORS,
		      "ready with %d own vectors of %d", t.lib.ready_vectors,
		      VECTORS);
	/* Its mapping is the whole of the device's BAR2. */
	ck_assert_uint_eq(t.lib.shm_size, t.bar2_size);
	ck_assert_uint_eq(t.lib.shm_size, 4u << 20);

	/* Nothing else comes: no second join, no leave, no doorbell. */
	lib_assert_quiet();
	ck_assert_uint_eq(t.lib.njoined, 1);
	ck_assert_uint_eq(t.lib.nleft, 0);
	ck_assert_uint_eq(t.lib.nready, 1);
	ck_assert_uint_eq(t.lib.nlog, 0);
}
END_TEST

START_TEST(lib_shared_memory)
{
	uint8_t out[4096], in[4096];
	uint64_t far = t.lib.shm_size - 256;

	/* Guest writes through BAR2, the library's mapping reads. */
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 13 + 1);
	mem_write(BAR2_ADDR, out, sizeof(out));
	ck_assert_mem_eq(t.lib.shm, out, sizeof(out));
	for (size_t i = 0; i < 256; i++)
		out[i] = (uint8_t)(0xa5 ^ i);
	mem_write(BAR2_ADDR + far, out, 256);
	ck_assert_mem_eq(t.lib.shm + far, out, 256);

	/* The library's mapping writes, the guest reads. */
	for (size_t i = 0; i < sizeof(out); i++)
		t.lib.shm[0x10000 + i] = (uint8_t)(i * 5 + 0x33);
	mem_read(BAR2_ADDR + 0x10000, in, sizeof(in));
	ck_assert_mem_eq(in, t.lib.shm + 0x10000, sizeof(in));

	/* Aligned dword accesses, in both directions. */
	writel(BAR2_ADDR + 0x2000, 0x11223344);
	ck_assert_uint_eq(t.lib.shm[0x2000], 0x44);
	ck_assert_uint_eq(t.lib.shm[0x2003], 0x11);
	memcpy(t.lib.shm + 0x2004, "\x0a\x0b\x0c\x0d", 4);
	ck_assert_uint_eq(readl(BAR2_ADDR + 0x2004), 0x0d0c0b0a);
}
END_TEST

START_TEST(lib_doorbell_from_qemu)
{
	for (unsigned v = 0; v < VECTORS; v++) {
		uint32_t val = (uint32_t)t.lib.id << 16 | v;

		/* QEMU may still be reading its greeting (see
		 * doorbell_to_peer): a doorbell to a peer it does not know
		 * yet is dropped. */
		lib_clear_bells();
		for (int i = 0; i < 50 && !t.lib.bells[v]; i++) {
			writel(BAR0_ADDR + REG_DOORBELL, val);
			lib_wait_bell(v, 1, 200);
		}
		ck_assert_msg(t.lib.bells[v], "vector %u: no doorbell", v);
		/* Only the vector that was rung. */
		t.lib.ncalls[v] = 0;
		lib_assert_quiet();
		for (unsigned o = 0; o < VECTORS; o++)
			if (o != v)
				ck_assert_uint_eq(t.lib.bells[o], 0);
	}

	/* Known to be connected now: one callback, count 1, per doorbell. */
	for (unsigned v = 0; v < VECTORS; v++) {
		lib_clear_bells();
		writel(BAR0_ADDR + REG_DOORBELL, (uint32_t)t.lib.id << 16 | v);
		lib_wait_bell(v, 1, 5000);
		lib_pump(50);
		ck_assert_uint_eq(t.lib.bells[v], 1);
		ck_assert_uint_eq(t.lib.ncalls[v], 1);
		for (unsigned o = 0; o < VECTORS; o++)
			if (o != v)
				ck_assert_uint_eq(t.lib.ncalls[o], 0);
	}

	/* Three doorbells before the peer looks: an eventfd counts, so one
	 * callback with count 3. QEMU writes the eventfd before qtest
	 * answers. */
	lib_clear_bells();
	for (int i = 0; i < 3; i++)
		writel(BAR0_ADDR + REG_DOORBELL,
		       (uint32_t)t.lib.id << 16 | (VECTORS - 1));
	lib_wait_bell(VECTORS - 1, 3, 5000);
	lib_pump(50);
	ck_assert_uint_eq(t.lib.bells[VECTORS - 1], 3);
	ck_assert_uint_eq(t.lib.ncalls[VECTORS - 1], 1);
	ck_assert_uint_eq(t.lib.ncalls[0], 0);
	ck_assert_uint_eq(t.lib.stray, 0);

	/* A vector the library peer does not have: QEMU drops it. */
	lib_clear_bells();
	writel(BAR0_ADDR + REG_DOORBELL, (uint32_t)t.lib.id << 16 | VECTORS);
	lib_assert_quiet();
}
END_TEST

static int lib_ring_qemu(unsigned vector)
{
	return ivshmem_peer_ring(t.lp, t.qemu_id, vector);
}

START_TEST(lib_doorbell_to_qemu)
{
	msix_setup();
	check_interrupts(lib_ring_qemu);

	/* QEMU has VECTORS vectors: one more is refused, nothing sent. */
	ck_assert_int_eq(ivshmem_peer_ring(t.lp, t.qemu_id, VECTORS),
			 -ERANGE);
	usleep(50000);
	ck_assert_uint_eq(readl(t.pba) & ((1u << VECTORS) - 1), 0);
	for (unsigned o = 0; o < VECTORS; o++)
		ck_assert_uint_eq(readl(MSI_ADDR(o)), 0);
	/* Ringing QEMU is not reported back to the ringer. */
	lib_assert_quiet();
}
END_TEST

START_TEST(lib_ping_pong)
{
	msix_setup();
	for (unsigned v = 0; v < VECTORS; v++)
		writel(t.table + v * MSIX_ENTRY_SIZE + MSIX_ENTRY_CTRL, 0);
	t.lib.echo = true;

	/* Guest rings the library peer, whose doorbell callback rings QEMU
	 * back on the same vector: the MSI arrives. First once per vector,
	 * retrying while QEMU may not know the library peer yet. */
	for (unsigned v = 0; v < VECTORS; v++) {
		for (int i = 0; i < 50 && !t.lib.bells[v]; i++) {
			writel(BAR0_ADDR + REG_DOORBELL,
			       (uint32_t)t.lib.id << 16 | v);
			lib_wait_bell(v, 1, 200);
		}
		ck_assert_msg(t.lib.bells[v], "vector %u: no doorbell", v);
		ck_assert_int_eq(t.lib.echo_err, 0);
		ck_assert_uint_eq(poll_readl(MSI_ADDR(v), ~0u, MSI_DATA(v)),
				  MSI_DATA(v));
		writel(MSI_ADDR(v), 0);
	}

	/* Then round trips, alternating vectors, each one checked. */
	for (unsigned i = 0; i < 40; i++) {
		unsigned v = i % VECTORS;
		uint64_t before = t.lib.bells[v];

		writel(BAR0_ADDR + REG_DOORBELL, (uint32_t)t.lib.id << 16 | v);
		lib_wait_bell(v, before + 1, 5000);
		ck_assert_uint_eq(t.lib.bells[v], before + 1);
		ck_assert_int_eq(t.lib.echo_err, 0);
		ck_assert_uint_eq(poll_readl(MSI_ADDR(v), ~0u, MSI_DATA(v)),
				  MSI_DATA(v));
		for (unsigned o = 0; o < VECTORS; o++)
			if (o != v)
				ck_assert_uint_eq(readl(MSI_ADDR(o)), 0);
		writel(MSI_ADDR(v), 0);
	}
	ck_assert_uint_eq(t.lib.stray, 0);
	ck_assert_uint_eq(readl(t.pba) & ((1u << VECTORS) - 1), 0);
}
END_TEST

START_TEST(lib_leave_on_exit)
{
	double deadline;
	int status;

	ck_assert_int_eq(kill(left->qemu, SIGTERM), 0);
	ck_assert_int_eq(waitpid(left->qemu, &status, 0), left->qemu);
	left->qemu = 0;
	ck_assert_msg(WIFEXITED(status) || WTERMSIG(status) == SIGTERM,
		      "QEMU died by signal %d", WTERMSIG(status));

	/* The library peer is told QEMU's ID left, and nothing else. */
	deadline = now_seconds() + 10;
	while (!t.lib.nleft && now_seconds() < deadline)
		lib_pump(50);
	ck_assert_msg(t.lib.nleft, "library peer: no leave for QEMU");
	lib_assert_quiet();
	ck_assert_uint_eq(t.lib.nleft, 1);
	ck_assert_int_eq(t.lib.left_id, t.qemu_id);
	ck_assert_uint_eq(t.lib.njoined, 1);
	ck_assert_int_eq(ivshmem_peer_get_peers(t.lp, NULL, 0), 0);
	ck_assert_int_eq(ivshmem_peer_get_vectors(t.lp, t.qemu_id), -ENOENT);
	ck_assert_int_eq(ivshmem_peer_ring(t.lp, t.qemu_id, 0), -ENOENT);
	/* Still connected to the server, which is still there. */
	ck_assert_int_eq(ivshmem_peer_get_state(t.lp), IVSHMEM_PEER_READY);
	ck_assert(tserver_alive(&left->srv));
	/* The own vectors still work: ring oneself. */
	ck_assert_int_eq(ivshmem_peer_ring(t.lp, t.lib.id, VECTORS - 1), 0);
	lib_wait_bell(VECTORS - 1, 1, 5000);
	ck_assert_uint_eq(t.lib.bells[VECTORS - 1], 1);
	ck_assert_uint_eq(t.lib.ncalls[VECTORS - 1], 1);
}
END_TEST

int main(void)
{
	char *qemu = g_find_program_in_path(QEMU_BIN);
	Suite *s;
	TCase *tc;
	int ret;

	if (!qemu) {
		fprintf(stderr, "%s not found in PATH: skipping\n", QEMU_BIN);
		return 77;
	}
	g_free(qemu);

	left = mmap(NULL, sizeof(*left), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (left == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(left, 0, sizeof(*left));

	s = suite_create("qemu-interop");
	tc = tcase_with("ivshmem-doorbell", 0, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, device_layout);
	tcase_add_test(tc, ivposition);
	tcase_add_test(tc, shared_memory);
	tcase_add_test(tc, doorbell_to_peer);
	tcase_add_test(tc, doorbell_from_peer);
	tcase_add_test(tc, leave_on_exit);
	suite_add_tcase(s, tc);

	tc = tcase_with("library-peer", 0, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_lib, teardown);
	tcase_add_test(tc, lib_join);
	tcase_add_test(tc, lib_shared_memory);
	tcase_add_test(tc, lib_doorbell_from_qemu);
	tcase_add_test(tc, lib_doorbell_to_qemu);
	tcase_add_test(tc, lib_ping_pong);
	tcase_add_test(tc, lib_leave_on_exit);
	suite_add_tcase(s, tc);
	ret = run_suite(s);
	reap_leftovers();
	munmap(left, sizeof(*left));
	return ret;
}
