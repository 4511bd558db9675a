/* SPDX-License-Identifier: MIT */
/*
 * The Unicorn example end to end: Cortex-M firmware on the ivshmem-flat
 * device (device-core/examples/unicorn) against a real ivshmem-server,
 * with `ivshmem-ctl peer` processes on the other side, all driven through
 * pipes. The firmware's exchange (its README.md): it prints IVPOSITION,
 * waits for a request in shared memory (magic 'RQST' at 0, the peer to
 * ring at 4), writes "hello from firmware <ID>" at 0x100, rings vector 1
 * of that peer, waits for vector 0 (polling INTRSTATUS; or, built with
 * HELLO_IRQ and run with --irq, in its interrupt handler), and prints the
 * reply found at 0x200.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "tproc.h"

#define TCASE_TIMEOUT 120
/* For the emulator: ends a firmware that waits for what never comes. */
#define EMU_TIMEOUT "60"

#define SHM_SIZE 4194304

#define PROG "ivshmem-flat-unicorn"
#define USAGE_HINT "Try '" PROG " --help' for more information.\n"

static const char *emu_path(void)
{
	const char *env = getenv("IVSHMEM_FLAT_UNICORN");

	return env && *env ? env : FLAT_UNICORN_PATH;
}

#define EMU(p, ...) do { \
	const char *const a_[] = { __VA_ARGS__, NULL }; \
	proc_start(p, emu_path(), a_); \
} while (0)

/* `ivshmem-ctl peer -S SOCK --vectors 2 [ARGS...]` */
#define PEER(p, s, ...) do { \
	const char *const a_[] = { "peer", "-S", (s)->sock, "--vectors", "2", \
				   ##__VA_ARGS__, NULL }; \
	proc_start(p, proc_ctl_path(), a_); \
} while (0)

/* An ivshmem-ctl peer: close stdin, expect exit 0, free. */
static void peer_end(struct proc *p)
{
	proc_close_in(p);
	EXPECT_EXIT(p, 0);
	ck_assert_str_eq(proc_stderr(p), "");
	proc_free(p);
}

/* Run the emulator with ARGS to its end; its status. stdin is closed. */
static int emu_run(struct proc *p, const char *const *args)
{
	proc_start(p, emu_path(), args);
	proc_close_in(p);
	return proc_wait(p, TWAIT_MS);
}

/* Lower-case hex of n bytes. */
static char *hex(const void *data, size_t n)
{
	const unsigned char *b = data;
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%02x", b[i]);
	return g_string_free(s, FALSE);
}

/* A firmware image in a memfd the emulator inherits: its path. */
static char *memfd_firmware(const void *image, size_t n, int *fd)
{
	*fd = memfd_create("firmware", 0);
	ck_assert_int_ge(*fd, 0);
	ck_assert_int_eq(write(*fd, image, n), (ssize_t)n);
	return g_strdup_printf("/dev/fd/%d", *fd);
}

/* ---- the exchange -------------------------------------------------------- */

/*
 * The firmware's exchange with the emulator in latched mode and IRQ_ARG
 * (NULL, or --irq); the firmware says how it saw vector 0 in WAITED_BY.
 */
static void exchange(const char *firmware, const char *irq_arg,
		     const char *waited_by)
{
	struct tserver *s = START("-n", "2", NULL);
	static const char reply[] = "hello from the host";
	struct proc by, host, emu;
	unsigned emu_id;
	char *msg, *want;
	double t0, t_ready, t_doorbell, t_end;
	int n;

	/*
	 * A bystander (ID 0), the host the firmware answers (ID 1), then
	 * the emulator (ID 2): the firmware rings a peer other than the
	 * first, and only that one.
	 */
	PEER(&by, s);
	EXPECT(&by, "ready id=0 vectors=2 peers= shm-size=%d", SHM_SIZE);
	PEER(&host, s);
	EXPECT(&host, "ready id=1 vectors=2 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&by, "join id=1 vectors=2");

	t0 = now_seconds();
	if (irq_arg)
		EMU(&emu, "-S", s->sock, "--latched", irq_arg, "--timeout",
		    EMU_TIMEOUT, firmware);
	else
		EMU(&emu, "-S", s->sock, "--latched", "--timeout", EMU_TIMEOUT,
		    firmware);
	/* The firmware's IVPOSITION is the ID the others see join. */
	ck_assert_ptr_nonnull(proc_next(&emu, TWAIT_MS));
	ck_assert_msg(sscanf(emu.line, "IVPOSITION %u%n", &emu_id, &n) == 1 &&
		      emu.line[n] == '\0',
		      "want 'IVPOSITION <ID>', got '%s' (stderr: %s)",
		      emu.line, proc_stderr(&emu));
	ck_assert_uint_eq(emu_id, 2);
	EXPECT(&host, "join id=%u vectors=2", emu_id);
	EXPECT(&by, "join id=%u vectors=2", emu_id);
	EXPECT(&emu, "waiting for a request at shared-memory offset 0");
	t_ready = now_seconds();
	/* It waits for the request, and rings nobody meanwhile. */
	proc_expect_quiet(&host, TQUIET_MS);
	proc_expect_quiet(&emu, 0);

	/* The request: the peer to ring, then the magic. */
	proc_send(&host, "write 4 01000000");
	EXPECT(&host, "ok write offset=4 length=4");
	proc_send(&host, "write 0 \"RQST\"");
	EXPECT(&host, "ok write offset=0 length=4");
	EXPECT(&emu, "ringing peer 1 vector 1");

	/* The doorbell on vector 1 of the host, and of nobody else. */
	EXPECT(&host, "doorbell vector=1 count=1");
	t_doorbell = now_seconds();
	proc_expect_quiet(&by, TQUIET_MS);
	/* The firmware took the request (cleared the magic) and wrote its
	 * message, NUL included, before ringing. */
	proc_send(&host, "read 0 8");
	EXPECT(&host, "data offset=0 hex=0000000001000000");
	msg = g_strdup_printf("hello from firmware %u", emu_id);
	want = hex(msg, strlen(msg) + 1);
	proc_send(&by, "read 0x100 %zu", strlen(msg) + 1);
	EXPECT(&by, "data offset=256 hex=%s", want);
	g_free(want);
	g_free(msg);

	/* The reply, then vector 0 of the emulator: the firmware sees
	 * INTRSTATUS bit 0 and prints the reply. */
	proc_send(&host, "write 0x200 \"%s\\0\"", reply);
	EXPECT(&host, "ok write offset=512 length=%zu", sizeof(reply));
	proc_expect_quiet(&emu, TQUIET_MS);   /* no reply before the doorbell */
	proc_send(&host, "ring %u 0", emu_id);
	EXPECT(&host, "ok ring doorbells=1");
	EXPECT(&emu, "INTRSTATUS 0x00000001 (%s)", waited_by);
	EXPECT(&emu, "reply: %s", reply);
	EXPECT_EXIT(&emu, 0);
	t_end = now_seconds();
	ck_assert_str_eq(proc_stdout_rest(&emu), "");
	ck_assert_str_eq(proc_stderr(&emu), "");
	proc_free(&emu);
	fprintf(stderr, "exchange (%s): emulator waiting after %.3f s, doorbell to the host after %.3f s, done %.3f s after the start\n",
		waited_by, t_ready - t0, t_doorbell - t0, t_end - t0);

	EXPECT(&host, "leave id=%u", emu_id);
	EXPECT(&by, "leave id=%u", emu_id);
	proc_expect_quiet(&host, 0);
	proc_expect_quiet(&by, 0);
	peer_end(&by);
	peer_end(&host);
	tserver_stop_ok(s);
}

/* The required path: the firmware polls INTRSTATUS (Unicorn has no
 * NVIC). */
START_TEST(test_exchange_polled)
{
	exchange(FLAT_UNICORN_FIRMWARE, NULL, "polled");
}
END_TEST

/* With --irq the emulator enters the firmware's handler of external
 * interrupt 0, which reads INTRSTATUS; the firmware sleeps in WFI. */
START_TEST(test_exchange_irq)
{
	exchange(FLAT_UNICORN_FIRMWARE_IRQ, "--irq", "IRQ 0 handler");
}
END_TEST

/* The interrupt firmware without --irq: no NVIC is mapped, so enabling
 * the interrupt faults, and says where. */
START_TEST(test_irq_firmware_without_irq)
{
	struct tserver *s = START("-n", "2", NULL);
	const char *args[] = { "-S", s->sock, "--latched", "--timeout",
			       EMU_TIMEOUT, FLAT_UNICORN_FIRMWARE_IRQ, NULL };
	struct proc emu;

	ck_assert_int_eq(emu_run(&emu, args), 1);
	ck_assert_str_eq(proc_stdout_rest(&emu), "IVPOSITION 0\n");
	ck_assert_msg(g_str_has_prefix(proc_stderr(&emu),
				       PROG ": the firmware stopped at PC 0x") &&
		      g_str_has_suffix(emu.errbuf->str,
				       ": a write to unmapped memory at 0xe000e100 (4 bytes)\n"),
		      "stderr: %s", emu.errbuf->str);
	proc_free(&emu);
	tserver_stop_ok(s);
}
END_TEST

/* QEMU's default mode reads INTRMASK as 0: the firmware, which needs the
 * latched mode, says so and exits with its own status, which the
 * emulator passes on. */
START_TEST(test_default_mode)
{
	struct tserver *s = START("-n", "2", NULL);
	const char *args[] = { "-S", s->sock, "--timeout", EMU_TIMEOUT,
			       FLAT_UNICORN_FIRMWARE, NULL };
	struct proc emu;

	ck_assert_int_eq(emu_run(&emu, args), 11);
	ck_assert_str_eq(proc_stdout_rest(&emu),
			 "IVPOSITION 0\n"
			 "firmware: INTRMASK reads back 0: the device is not in latched mode (run the emulator with --latched)\n");
	ck_assert_str_eq(proc_stderr(&emu), "");
	proc_free(&emu);
	tserver_stop_ok(s);
}
END_TEST

/* ---- runtime errors ------------------------------------------------------ */

START_TEST(test_no_server)
{
	struct tserver *s = tserver_tracked();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *args[] = { "-S", NULL, "--latched",
			       FLAT_UNICORN_FIRMWARE, NULL };
	struct proc emu;
	char *want;
	int fd;

	/* A private dir, no server started: nothing at the path. */
	ck_assert_ptr_nonnull(s);
	tserver_prepare(s);
	args[1] = s->sock;
	ck_assert_int_eq(emu_run(&emu, args), 1);
	want = g_strdup_printf(PROG ": cannot connect to %s: no server there; is ivshmem-server running? (use -S PATH)\n",
			       s->sock);
	ck_assert_str_eq(proc_stderr(&emu), want);
	ck_assert_str_eq(proc_stdout_rest(&emu), "");
	g_free(want);
	proc_free(&emu);

	/* A stale socket file nobody listens on. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, s->sock);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(emu_run(&emu, args), 1);
	want = g_strdup_printf(PROG ": cannot connect to %s: nobody listens on that socket; is ivshmem-server running? (use -S PATH)\n",
			       s->sock);
	ck_assert_str_eq(proc_stderr(&emu), want);
	g_free(want);
	proc_free(&emu);
	tserver_cleanup(s);
}
END_TEST

START_TEST(test_wrong_shm_size)
{
	struct tserver *s = START("-l", "1M", "-n", "2", NULL);
	const char *args[] = { "-S", s->sock, "--latched", "--timeout",
			       EMU_TIMEOUT, FLAT_UNICORN_FIRMWARE, NULL };
	const char *sized[] = { "-S", s->sock, "--shm-size", "1M",
				"--timeout", EMU_TIMEOUT,
				FLAT_UNICORN_FIRMWARE, NULL };
	struct proc emu, by;
	char *want;

	/* A peer there first sees the server's side of it all. */
	PEER(&by, s);
	EXPECT(&by, "ready id=0 vectors=2 peers= shm-size=1048576");

	/* The device's default 4 MiB against the server's 1 MiB: refused
	 * before the CPU starts, both sizes named, both fixes offered. */
	ck_assert_int_eq(emu_run(&emu, args), 1);
	want = g_strdup_printf(PROG ": the server at %s has 1048576 bytes of shared memory and the device 4194304 (--shm-size): start ivshmem-server with -l 4194304, or give --shm-size 1048576\n",
			       s->sock);
	ck_assert_str_eq(proc_stderr(&emu), want);
	ck_assert_str_eq(proc_stdout_rest(&emu), "");
	g_free(want);
	proc_free(&emu);
	EXPECT(&by, "join id=1 vectors=2");
	EXPECT(&by, "leave id=1");

	/* The server is unharmed, and the matching size runs the firmware
	 * (which then stops at the mode check: no --latched). */
	ck_assert_int_eq(emu_run(&emu, sized), 11);
	ck_assert_msg(g_str_has_prefix(proc_stdout_rest(&emu),
				       "IVPOSITION 2\n"),
		      "stdout: %s", emu.buf->str);
	proc_free(&emu);
	EXPECT(&by, "join id=2 vectors=2");
	EXPECT(&by, "leave id=2");
	peer_end(&by);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(test_timeout)
{
	struct tserver *s = START(NULL);
	const char *args[] = { "-S", s->sock, "--latched", "--timeout", "0.5",
			       FLAT_UNICORN_FIRMWARE, NULL };
	struct proc emu;
	double t0 = now_seconds(), t;

	/* Nobody writes the request: the firmware waits until the
	 * deadline. */
	ck_assert_int_eq(emu_run(&emu, args), 1);
	t = now_seconds() - t0;
	ck_assert_msg(t >= 0.45 && t < 5, "exited after %.2f s", t);
	ck_assert_str_eq(proc_stdout_rest(&emu),
			 "IVPOSITION 0\n"
			 "waiting for a request at shared-memory offset 0\n");
	ck_assert_msg(g_str_has_prefix(proc_stderr(&emu),
				       PROG ": timed out after 0.5 s: the firmware did not exit (PC 0x"),
		      "stderr: %s", emu.errbuf->str);
	proc_free(&emu);
	tserver_stop_ok(s);
}
END_TEST

/* Firmware that faults: one sentence with the PC and the cause. */
START_TEST(test_firmware_faults)
{
	/* SP, reset vector 0x9 (Thumb), then at 0x8:
	 * ldr r0, [pc, #4]; ldr r0, [r0]; b .; nop; .word 0x30000000 */
	static const unsigned char unmapped[] = {
		0x00, 0x00, 0x01, 0x20, 0x09, 0x00, 0x00, 0x00,
		0x01, 0x48, 0x00, 0x68, 0xfe, 0xe7, 0x00, 0xbf,
		0x00, 0x00, 0x00, 0x30,
	};
	/* At 0x8: nop; udf #0 */
	static const unsigned char undefined[] = {
		0x00, 0x00, 0x01, 0x20, 0x09, 0x00, 0x00, 0x00,
		0x00, 0xbf, 0x00, 0xde,
	};
	/* At 0x8: svc #0 */
	static const unsigned char svc[] = {
		0x00, 0x00, 0x01, 0x20, 0x09, 0x00, 0x00, 0x00,
		0x00, 0xdf, 0xfe, 0xe7,
	};
	/* A reset vector without the Thumb bit. */
	static const unsigned char arm_vector[] = {
		0x00, 0x00, 0x01, 0x20, 0x08, 0x00, 0x00, 0x00,
		0xfe, 0xe7, 0x00, 0xbf,
	};
	struct tserver *s = START(NULL);
	const char *args[] = { "-S", s->sock, "--timeout", EMU_TIMEOUT, NULL,
			       NULL };
	struct proc emu;
	char *path;
	int fd;

	path = memfd_firmware(unmapped, sizeof(unmapped), &fd);
	args[4] = path;
	ck_assert_int_eq(emu_run(&emu, args), 1);
	ck_assert_str_eq(proc_stderr(&emu),
			 PROG ": the firmware stopped at PC 0x0000000a: a read of unmapped memory at 0x30000000 (4 bytes)\n");
	proc_free(&emu);
	close(fd);
	g_free(path);

	path = memfd_firmware(undefined, sizeof(undefined), &fd);
	args[4] = path;
	ck_assert_int_eq(emu_run(&emu, args), 1);
	ck_assert_str_eq(proc_stderr(&emu),
			 PROG ": the firmware stopped at PC 0x0000000a: an undefined instruction, or a branch to an address with bit 0 clear (ARM state, which M-profile lacks)\n");
	proc_free(&emu);
	close(fd);
	g_free(path);

	/* Exceptions stop the CPU: there are no handlers to run. */
	path = memfd_firmware(svc, sizeof(svc), &fd);
	args[4] = path;
	ck_assert_int_eq(emu_run(&emu, args), 1);
	ck_assert_msg(g_str_has_prefix(proc_stderr(&emu),
				       PROG ": the firmware raised CPU exception 2 (SVC) near PC 0x"),
		      "stderr: %s", emu.errbuf->str);
	proc_free(&emu);
	close(fd);
	g_free(path);

	path = memfd_firmware(arm_vector, sizeof(arm_vector), &fd);
	args[4] = path;
	ck_assert_int_eq(emu_run(&emu, args), 1);
	ck_assert_msg(g_str_has_prefix(proc_stderr(&emu),
				       PROG ": the firmware /dev/fd/") &&
		      strstr(emu.errbuf->str,
			     "has reset vector 0x00000008: it must be a Thumb address (bit 0 set)"),
		      "stderr: %s", emu.errbuf->str);
	proc_free(&emu);
	close(fd);
	g_free(path);
	tserver_stop_ok(s);
}
END_TEST

/* ---- the command line ---------------------------------------------------- */

/* The emulator with ARGS exits 2 with one sentence and the hint. */
#undef USAGE_ERROR
#define USAGE_ERROR(...) proc_expect_usage(emu_path(), PROG, USAGE_HINT, \
	(const char *const[]){ __VA_ARGS__, NULL })

START_TEST(test_usage)
{
	struct proc p;
	const char *out;

	USAGE_ERROR("");
	USAGE_ERROR("--bogus", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR("-x", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR("-S");
	USAGE_ERROR("-S", "", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR("--latched=yes", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR("--shm-size", "0", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR("--shm-size", "4X", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR("--shm-size", "1000", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR("--shm-size", "4G", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR("--timeout", "0", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR("--timeout", "soon", FLAT_UNICORN_FIRMWARE);
	USAGE_ERROR(FLAT_UNICORN_FIRMWARE, "extra");
	USAGE_ERROR("--latched");       /* no firmware */

	/* The sentence names what is wrong. */
	{
		const char *const a[] = { NULL };

		ck_assert_int_eq(emu_run(&p, a), 2);
		ck_assert_str_eq(proc_stderr(&p),
				 PROG ": no firmware given: give the path of a flat binary (FIRMWARE.bin)\n"
				 USAGE_HINT);
		proc_free(&p);
	}

	/* --help: exit 0; the options, the board, the interrupt path and
	 * the exit statuses. */
	{
		const char *const a[] = { "--help", NULL };

		ck_assert_int_eq(emu_run(&p, a), 0);
		out = proc_stdout_rest(&p);
		ck_assert_msg(g_str_has_prefix(out, "Usage: " PROG " [OPTION]... FIRMWARE.bin\n") &&
			      strstr(out, "--socket=PATH") &&
			      strstr(out, "/tmp/ivshmem_socket") &&
			      strstr(out, "--shm-size=SIZE") &&
			      strstr(out, "--latched") &&
			      strstr(out, "--timeout=SECONDS") &&
			      strstr(out, "0x400FF000") &&
			      strstr(out, "0x40100000") &&
			      strstr(out, "--irq") &&
			      strstr(out, "NVIC") &&
			      strstr(out, "polls INTRSTATUS") &&
			      strstr(out, "Exit status:") &&
			      strstr(out, "2 on a usage error"), "%s", out);
		ck_assert_str_eq(proc_stderr(&p), "");
		proc_free(&p);
	}
}
END_TEST

/* ---- runner -------------------------------------------------------------- */

/* ---- a channel -------------------------------------------------------- */

/*
 * The echo firmware (firmware/echo.c) on a channel: this process writes
 * the layout at offset 0 and attaches to end 0 as a library peer; the
 * firmware attaches to end 1 and sends back what it receives. Thousands
 * of messages of random sizes (every size from 1 to the maximum, so the
 * 4 KiB rings wrap with padding all the time) come back intact and in
 * order, from a 32-bit little-endian CPU that found every offset of the
 * layout itself.
 */
START_TEST(test_channel_echo)
{
	enum { N = 5000, BURST = 16 };
	const struct ivshmem_peer_config pcfg = { .vectors = 2 };
	const struct ivshmem_peer_ops ops = { 0 };
	const struct ivshmem_channel_spec spec = {
		.name = "echo", .ring_size = { 4096, 4096 },
	};
	const struct ivshmem_channel_config ccfg = {
		.offset = 0, .name = "echo", .end = 0, .vector = 1,
	};
	struct tserver *s = START("-n", "2", NULL);
	struct ivshmem_channel_stats st;
	struct ivshmem_peer *peer;
	struct ivshmem_channel *ch;
	uint8_t out[2048], in[2048];
	uint32_t sent = 0, got = 0, rung, sleeps;
	unsigned seed = 12345, emu_id, msgs;
	size_t max, lens[BURST];
	struct proc emu;
	uint64_t size;
	void *mem;
	int n, r;

	ck_assert_int_eq(ivshmem_peer_new(&pcfg, &ops, NULL, &peer), 0);
	ck_assert_int_eq(ivshmem_peer_connect(peer, s->sock), 0);
	ck_assert_int_eq(ivshmem_peer_wait_ready(peer, TWAIT_MS), 0);
	ck_assert_int_eq(ivshmem_peer_get_shm(peer, &mem, &size), 0);
	ck_assert_int_eq(ivshmem_layout_write(mem, size, 0, &spec, 1, 0), 0);
	ck_assert_int_eq(ivshmem_channel_attach(peer, &ccfg, &ch), 0);
	ck_assert_int_eq(ivshmem_channel_get_stats(ch, &st), 0);
	max = st.max_msg;
	ck_assert_uint_eq(max, 4096 / 2 - 8);

	EMU(&emu, "-S", s->sock, "--latched", "--timeout", EMU_TIMEOUT,
	    FLAT_UNICORN_FIRMWARE_ECHO);
	ck_assert_ptr_nonnull(proc_next(&emu, TWAIT_MS));
	ck_assert_msg(sscanf(emu.line, "IVPOSITION %u%n", &emu_id, &n) == 1 &&
		      emu.line[n] == '\0', "want 'IVPOSITION <ID>', got '%s' (stderr: %s)",
		      emu.line, proc_stderr(&emu));
	EXPECT(&emu, "attached");

	/* Up to BURST messages out at a time: the host queues them faster
	 * than the emulated CPU takes one, so most sends find the firmware
	 * awake. When the ring is full, the host takes echoes (the
	 * firmware may be waiting for room in the other ring). */
	while (got < N) {
		bool refused = false;

		while (sent < N && sent - got < BURST) {
			size_t len = sent % 101 == 0 ? max :
				     1 + (size_t)rand_r(&seed) % max;

			for (size_t i = 0; i < len; i++)
				out[i] = (uint8_t)(sent * 7u + i * 13u);
			r = ivshmem_channel_send(ch, out, len);
			if (r == -EAGAIN) {
				refused = true;
				break;
			}
			ck_assert_int_eq(r, 0);
			lens[sent % BURST] = len;
			sent++;
		}
		ssize_t k = ivshmem_channel_recv(ch, in, sizeof(in));

		if (k == -EAGAIN) {
			/* The firmware sends an echo before it releases the
			 * message: room may come after the last echo. */
			r = ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_READABLE |
						 (refused ? IVSHMEM_CHANNEL_WRITABLE : 0),
						 TWAIT_MS);
			ck_assert_msg(r > 0, "echo %u: %s (stderr: %s)", got,
				      strerror(-r), proc_stderr(&emu));
			continue;
		}
		if ((size_t)k != lens[got % BURST])
			ck_abort_msg("echo %u: %zd bytes, %zu sent", got, k,
				     lens[got % BURST]);
		for (ssize_t i = 0; i < k; i++) {
			if (in[i] != (uint8_t)(got * 7u + i * 13u))
				ck_abort_msg("echo %u: byte %zd differs", got,
					     i);
		}
		got++;
	}
	ck_assert_int_eq(ivshmem_channel_send(ch, "", 0), 0);
	ck_assert_ptr_nonnull(proc_next(&emu, TWAIT_MS));
	ck_assert_msg(sscanf(emu.line, "echo: %u messages, rung %u, sleeps %u%n",
			     &msgs, &rung, &sleeps, &n) == 3 &&
		      emu.line[n] == '\0', "got '%s'", emu.line);
	EXPECT_EXIT(&emu, 0);
	ck_assert_uint_eq(msgs, N);

	ck_assert_int_eq(ivshmem_channel_get_stats(ch, &st), 0);
	ck_assert_int_eq(st.error, 0);
	ck_assert_uint_eq(st.sent, N + 1);
	ck_assert_uint_eq(st.received, N);
	/* The firmware's end: its ID, and the counters it printed. */
	ck_assert_int_eq(st.other.peer, (int)emu_id);
	ck_assert_uint_eq(st.other.rung, rung);
	/* Each side rang at most once for each doorbell the other asked
	 * for (and once more for the ask the attach makes)... */
	ck_assert_uint_le(rung, st.sleeps + 1);
	ck_assert_uint_le(st.doorbells_rung, (uint64_t)sleeps + 1);
	/* ...and the bursts went without most of them. */
	ck_assert_uint_lt(st.doorbells_rung, N / 2);
	ck_assert_uint_gt(st.doorbells_suppressed, N / 2);
	proc_free(&emu);
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(peer);
	tserver_stop_ok(s);
}
END_TEST

static Suite *flat_unicorn_suite(void)
{
	Suite *s = suite_create("flat-unicorn");
	TCase *tc;

	tc = tcase_with("firmware", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, test_exchange_polled);
	tcase_add_test(tc, test_exchange_irq);
	tcase_add_test(tc, test_irq_firmware_without_irq);
	tcase_add_test(tc, test_default_mode);
	tcase_add_test(tc, test_channel_echo);
	suite_add_tcase(s, tc);

	tc = tcase_with("errors", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, test_no_server);
	tcase_add_test(tc, test_wrong_shm_size);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_firmware_faults);
	tcase_add_test(tc, test_usage);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_tracked_suite(flat_unicorn_suite());
}
