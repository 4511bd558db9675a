/*
 * ivshmem-flat-unicorn: ARM Cortex-M firmware in the Unicorn engine with
 * an ivshmem-flat device at QEMU's default addresses, joined to an
 * ivshmem server through the libivshmem glue (ivshmem-flat-peer.h).
 *
 * The board (board.h): the firmware binary in flash at 0, RAM at
 * 0x20000000, a test console at 0x40000000 (putchar, exit), the device's
 * registers at 0x400FF000 and its shared memory at 0x40100000, mapped
 * straight from the glue's mapping of the server's shared memory.
 *
 * One thread. The CPU runs in slices of SLICE_INSNS instructions; between
 * slices the glue's fd is polled without waiting and dispatched, so a
 * doorbell reaches the device core (INTRSTATUS, the IRQ line) within one
 * slice. Register accesses go to the core from Unicorn's MMIO callbacks,
 * on the same thread.
 *
 * Interrupts: Unicorn 2 has no NVIC and never enters an exception handler
 * (an exception stops the CPU). By default nothing is delivered to the
 * CPU: the IRQ line's level is kept and shown in the console's IRQ
 * register, and firmware polls INTRSTATUS in latched mode (--latched).
 * With --irq this program is the NVIC for external interrupt 0: between
 * slices it enters the handler as the CPU would (the exception frame on
 * the main stack, LR = EXC_RETURN, IPSR = 16, PC = vector 16), and the
 * handler's return, which Unicorn reports as exception EXCP_EXCEPTION_EXIT
 * to the interrupt hook, is completed here (the frame popped, IPSR = 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <unicorn/unicorn.h>

#include "board.h"
#include "cli.h"
#include "ivshmem-flat-peer.h"

#define PROG "ivshmem-flat-unicorn"

/* Instructions per slice: tens of microseconds (a slice also ends early,
 * at WFI for one). */
#define SLICE_INSNS 20000
/* How long to wait for the server's greeting (or --timeout, if shorter). */
#define GREETING_MS 5000

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* Exception numbers Unicorn reports to the interrupt hook (QEMU's
 * target/arm/cpu.h; UDF and INVSTATE stop it as UC_ERR_INSN_INVALID). */
#define EXCP_EXCEPTION_EXIT 8
static const char *const exception_names[] = {
	[2] = "SVC",
	[3] = "a prefetch abort",
	[4] = "a data abort",
	[7] = "BKPT",
	[EXCP_EXCEPTION_EXIT] = "an exception return (there is no exception to return from)",
	[16] = "a semihosting call",
	[17] = "a coprocessor instruction without the coprocessor (NOCP)",
	[19] = "a stack overflow (STKOF)",
	[22] = "an unaligned access",
	[23] = "a division by zero",
};

struct options {
	const char *socket;
	uint64_t shm_size;
	bool latched;
	bool irq;
	double timeout;         /* seconds; 0: none */
	bool verbose;
	const char *firmware;
};

struct emu {
	const struct options *opt;
	uc_engine *uc;
	struct ivshmem_flat_peer *fp;
	struct ivshmem_flat *dev;
	bool irq;               /* the device's IRQ line 0 */

	/* --irq: the minimal NVIC (board.h) and the handler's state. */
	bool irq_enabled;       /* ISER0 bit 0 */
	bool irq_pending;
	bool irq_active;        /* in the handler */
	bool irq_returned;      /* the handler returned: complete it */

	/* While connecting, messages are kept for one sentence at the end. */
	bool connecting;
	char glue_msg[512];     /* the glue's error, its prefix cut */

	/* What stopped the CPU. */
	bool exited;
	int status;
	bool mem_fault;
	uc_mem_type fault_type;
	uint64_t fault_addr;
	int fault_size;
	int exception;          /* -1: none */
};

/* ---- messages ------------------------------------------------------------ */

static void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help' for more information.\n", stderr);
	return EXIT_USAGE;
}

/* usage_error() with a sentence of cli.h's (freed). */
static int usage_error_free(char *msg)
{
	int r = usage_error("%s", msg);

	free(msg);
	return r;
}

static void usage(void)
{
	printf(
"Usage: " PROG " [OPTION]... FIRMWARE.bin\n"
"Run ARM Cortex-M3 firmware in the Unicorn engine with an ivshmem-flat\n"
"device at QEMU's default addresses, joined to an ivshmem server as a peer.\n"
"\n"
"  -S, --socket=PATH      the server's socket (default " CLI_DEFAULT_SOCKET ")\n"
"      --shm-size=SIZE    the device's shared-memory size, which must be the\n"
"                         server's (QEMU's shmem-size), a multiple of 4K;\n"
"                         K, M, G, T, P or E suffix, powers of 1024, as\n"
"                         ivshmem-server -l (default 4M)\n"
"      --latched          latched mode: a real INTRSTATUS and INTRMASK and a\n"
"                         level IRQ (default: QEMU's mode, which reads both\n"
"                         as 0 and pulses the IRQ for every doorbell)\n"
"      --irq              deliver the device's IRQ line to the CPU as external\n"
"                         interrupt 0 (vector table entry 16), through a\n"
"                         minimal NVIC at 0xE000E000 (ISER0, ICER0, ISPR0,\n"
"                         ICPR0, IABR0 bit 0); see Interrupts below\n"
"      --timeout=SECONDS  exit with status 1 if the firmware has not exited\n"
"                         after SECONDS (decimals allowed; or 500ms)\n"
"  -v, --verbose          show the library's messages, doorbells and IRQ\n"
"                         changes on standard error\n"
"  -h, --help             show this help and exit\n"
"\n"
"The board (Thumb, little-endian):\n"
"  0x%08X  flash, %u KiB: FIRMWARE.bin, a vector table first (initial SP,\n"
"              reset vector)\n"
"  0x%08X  RAM, %u KiB\n"
"  0x%08X  test console: write 0x00 PUTCHAR (a byte to standard output),\n"
"              write 0x04 EXIT (stop; exit with the low byte as status),\n"
"              read 0x08 IRQ (the level of the device's IRQ line)\n"
"  0x%08X  ivshmem-flat registers: 0x00 INTRMASK, 0x04 INTRSTATUS,\n"
"              0x08 IVPOSITION, 0x0C DOORBELL (peer << 16 | vector)\n"
"  0x%08X  ivshmem-flat shared memory (the server's, mapped directly)\n"
"\n"
"Interrupts: by default none reach the CPU. Unicorn has no interrupt\n"
"controller (NVIC) and stops at any exception instead of running its\n"
"handler, so firmware polls INTRSTATUS with --latched (or the console's IRQ\n"
"register). With --irq this program enters the handler of external\n"
"interrupt 0 itself, as the CPU would: in thread mode on the main stack,\n"
"while PRIMASK and FAULTMASK are 0 and ISER0 bit 0 is set; no priorities,\n"
"no nesting. The CPU runs in slices of %u instructions; between slices\n"
"doorbells are taken from the server and reach the device, and a pending\n"
"interrupt is taken (with it masked, one instruction at a time until the\n"
"mask is lifted).\n"
"\n"
"Exit status: the firmware's (the EXIT register); 1 on a runtime error (no\n"
"server, a shared-memory size other than the server's, a firmware fault,\n"
"--timeout), said in one sentence on standard error; 2 on a usage error.\n",
	       BOARD_FLASH_BASE, BOARD_FLASH_SIZE / 1024,
	       BOARD_RAM_BASE, BOARD_RAM_SIZE / 1024,
	       BOARD_CONSOLE_BASE, IVSHMEM_FLAT_DEFAULT_MMIO_BASE,
	       IVSHMEM_FLAT_DEFAULT_SHM_BASE, SLICE_INSNS);
}

/* ---- options ------------------------------------------------------------- */

/* EXIT_OK to run, -1 after --help, else the status to exit with. */
static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_SHM_SIZE = 256, OPT_LATCHED, OPT_IRQ, OPT_TIMEOUT };
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "shm-size", required_argument, NULL, OPT_SHM_SIZE },
		{ "latched", no_argument, NULL, OPT_LATCHED },
		{ "irq", no_argument, NULL, OPT_IRQ },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* The shared memory must fit below the system region (0xE0000000)
	 * and be whole Unicorn pages (1 KiB on M-profile; 4 KiB is also a
	 * host page). */
	const uint64_t max_shm = 0xE0000000u - IVSHMEM_FLAT_DEFAULT_SHM_BASE;
	char *error = NULL;
	int c;

	/* The device's shmem-size default is the server's -l default, so
	 * that the two defaults work together. */
	_Static_assert(IVSHMEM_FLAT_DEFAULT_SHM_SIZE == CLI_DEFAULT_SHM_SIZE,
		       "the device's and the server's default sizes differ");
	o->socket = CLI_DEFAULT_SOCKET;
	o->shm_size = IVSHMEM_FLAT_DEFAULT_SHM_SIZE;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":S:vh", longopts, NULL)) != -1) {
		const char *arg = argv[optind - 1];

		switch (c) {
		case 'S':
			o->socket = optarg;
			if (!*optarg)
				return usage_error("the socket path (-S) is empty");
			if (strlen(optarg) >= SUN_PATH_MAX)
				return usage_error("the socket path '%s' is longer than %zu bytes",
						   optarg, SUN_PATH_MAX - 1);
			break;
		case OPT_SHM_SIZE:
			if (cli_parse_size("size", optarg, 1, INT64_MAX,
					   &o->shm_size, &error) < 0)
				return usage_error_free(error);
			if (o->shm_size % 4096 || o->shm_size > max_shm)
				return usage_error("invalid size '%s' for --shm-size: give a multiple of 4K up to %" PRIu64 "M (the shared memory is mapped in whole pages below 0xE0000000)",
						   optarg, max_shm >> 20);
			break;
		case OPT_LATCHED:
			o->latched = true;
			break;
		case OPT_IRQ:
			o->irq = true;
			break;
		case OPT_TIMEOUT:
			if (cli_parse_seconds("timeout", optarg, &o->timeout,
					      &error) < 0)
				return usage_error_free(error);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage();
			return -1;
		case ':':
			if (strncmp(arg, "--", 2) == 0)
				return usage_error("option '%s' needs an argument",
						   arg);
			return usage_error("option '-%c' needs an argument",
					   optopt);
		default:
			if (strncmp(arg, "--", 2) == 0) {
				const char *eq = strchr(arg, '=');

				if (eq && optopt)
					return usage_error("option '%.*s' takes no argument",
							   (int)(eq - arg),
							   arg);
				return usage_error("unknown option '%s'", arg);
			}
			return usage_error("unknown option '-%c'", optopt);
		}
	}
	if (optind == argc)
		return usage_error("no firmware given: give the path of a flat binary (FIRMWARE.bin)");
	if (optind + 1 < argc)
		return usage_error("unexpected argument '%s' after the firmware",
				   argv[optind + 1]);
	o->firmware = argv[optind];
	if (!*o->firmware)
		return usage_error("the firmware path is empty");
	return EXIT_OK;
}

/* ---- the firmware file --------------------------------------------------- */

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Read FIRMWARE.bin into a malloc'ed buffer: 0, or 1 with a message. */
static int load_firmware(const char *path, uint8_t **out, size_t *len,
			 uint32_t *sp, uint32_t *pc)
{
	struct stat st;
	uint8_t *buf;
	size_t n = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		error("cannot open the firmware %s: %s", path, strerror(errno));
		return EXIT_RUNTIME;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		error("the firmware %s is not a regular file", path);
		close(fd);
		return EXIT_RUNTIME;
	}
	if (st.st_size < 8 || (uint64_t)st.st_size > BOARD_FLASH_SIZE) {
		error("the firmware %s is %jd bytes: give a flat binary of 8 bytes (the initial SP and reset vector) up to the flash size, %u bytes",
		      path, (intmax_t)st.st_size, BOARD_FLASH_SIZE);
		close(fd);
		return EXIT_RUNTIME;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		error("out of memory");
		close(fd);
		return EXIT_RUNTIME;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

		if (r <= 0) {
			error("cannot read the firmware %s: %s", path,
			      r < 0 ? strerror(errno) : "it got shorter");
			free(buf);
			close(fd);
			return EXIT_RUNTIME;
		}
		n += (size_t)r;
	}
	close(fd);

	*sp = get_le32(buf);
	*pc = get_le32(buf + 4);
	if (!(*pc & 1) || (*pc & ~1u) >= n) {
		error("the firmware %s has reset vector 0x%08" PRIx32 ": it must be a Thumb address (bit 0 set) inside the image, which starts with the vector table",
		      path, *pc);
		free(buf);
		return EXIT_RUNTIME;
	}
	*out = buf;
	*len = n;
	return EXIT_OK;
}

/* ---- the device's callbacks ---------------------------------------------- */

static void on_set_irq(void *user, unsigned line, bool level)
{
	struct emu *e = user;

	if (line == 0) {
		/* A rising edge makes the interrupt pending: QEMU's mode
		 * pulses the line, latched mode holds it. */
		if (level && !e->irq)
			e->irq_pending = true;
		e->irq = level;
	}
	if (e->opt->verbose)
		fprintf(stderr, PROG ": IRQ %u %s\n", line, level ? "high" : "low");
}

static void on_trace(void *user, const struct ivshmem_flat_trace *t)
{
	struct emu *e = user;

	if (!e->opt->verbose)
		return;
	switch (t->kind) {
	case IVSHMEM_FLAT_TRACE_DOORBELL:
		fprintf(stderr, PROG ": DOORBELL rang peer %u vector %" PRIu32 "\n",
			t->peer, t->vector);
		break;
	case IVSHMEM_FLAT_TRACE_DOORBELL_DROPPED:
		fprintf(stderr, PROG ": DOORBELL for peer %u vector %" PRIu32 " rang nothing (%s)\n",
			t->peer, t->vector,
			t->result == IVSHMEM_FLAT_ENOTCONN ? "not connected" :
			strerror(-t->result));
		break;
	case IVSHMEM_FLAT_TRACE_EVENT:
		fprintf(stderr, PROG ": doorbell on vector %" PRIu32 "\n",
			t->vector);
		break;
	case IVSHMEM_FLAT_TRACE_EVENT_DROPPED:
		fprintf(stderr, PROG ": doorbell on vector %" PRIu32 " dropped (latched mode has vectors 0..31)\n",
			t->vector);
		break;
	case IVSHMEM_FLAT_TRACE_BAD_ACCESS:
		fprintf(stderr, PROG ": ignored %s of %u bytes at register offset 0x%" PRIx64 "\n",
			t->write ? "write" : "read", t->size, t->offset);
		break;
	default:
		break;
	}
}

static void on_disconnected(void *user, int err)
{
	struct emu *e = user;

	if (!e->connecting)
		error("disconnected from %s: %s; DOORBELL writes ring nothing from now on",
		      e->opt->socket, ivshmem_strerror(err));
}

static void on_log(void *user, int priority, const char *fmt, va_list ap)
	IVSHMEM_PRINTF(3, 0);

static void on_log(void *user, int priority, const char *fmt, va_list ap)
{
	static const char glue_prefix[] = "ivshmem-flat: ";
	struct emu *e = user;
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (e->connecting && priority <= IVSHMEM_LOG_ERR) {
		if (strncmp(msg, glue_prefix, sizeof(glue_prefix) - 1) == 0)
			snprintf(e->glue_msg, sizeof(e->glue_msg), "%s",
				 msg + sizeof(glue_prefix) - 1);
	}
	if (e->opt->verbose ? priority <= IVSHMEM_LOG_INFO :
	    !e->connecting && priority <= IVSHMEM_LOG_WARNING)
		fprintf(stderr, PROG ": %s\n", msg);
}

/* ---- the server ---------------------------------------------------------- */

static int connect_error(struct emu *e, int err)
{
	const char *path = e->opt->socket;
	struct ivshmem_peer *peer = ivshmem_flat_peer_peer(e->fp);
	/* IDLE: the connect itself failed, not the greeting. */
	bool connected = ivshmem_peer_get_state(peer) != IVSHMEM_PEER_IDLE;
	uint64_t have = 0, want = 0;

	/* The library's sentence for the wrong size names both. */
	if (err == -EFBIG)
		sscanf(ivshmem_peer_get_error(peer),
		       "The server's shared memory is %" SCNu64
		       " bytes; %" SCNu64 " bytes are required", &have, &want);
	if (err == -EFBIG && have && want)
		error("the server at %s has %" PRIu64 " bytes of shared memory and the device %" PRIu64 " (--shm-size): start ivshmem-server with -l %" PRIu64 ", or give --shm-size %" PRIu64,
		      path, have, want, want, have);
	else if (err == -EFBIG && e->glue_msg[0])
		error("%s", e->glue_msg);
	else if (!connected && err == -ENOENT)
		error("cannot connect to %s: no server there; is ivshmem-server running? (use -S PATH)",
		      path);
	else if (!connected && err == -ECONNREFUSED)
		error("cannot connect to %s: nobody listens on that socket; is ivshmem-server running? (use -S PATH)",
		      path);
	else if (!connected && err == -EAGAIN)
		error("cannot connect to %s: the server's backlog is full; try again later",
		      path);
	else if (!connected)
		error("cannot connect to %s: %s", path, strerror(-err));
	else if (err == -ETIMEDOUT)
		error("the server at %s did not send its greeting in time",
		      path);
	else
		error("the server at %s ended the connection: %s", path,
		      ivshmem_strerror(err));
	return EXIT_RUNTIME;
}

static int join_server(struct emu *e)
{
	static const struct ivshmem_flat_peer_ops ops = {
		.set_irq = on_set_irq,
		.trace = on_trace,
		.disconnected = on_disconnected,
		.log = on_log,
	};
	struct ivshmem_flat_peer_config cfg = {
		.flags = e->opt->latched ? IVSHMEM_FLAT_LATCHED : 0,
		.shm_size = e->opt->shm_size,
	};
	int timeout_ms = GREETING_MS, r;

	if (e->opt->timeout > 0 && e->opt->timeout * 1000 < timeout_ms)
		timeout_ms = (int)(e->opt->timeout * 1000) + 1;
	r = ivshmem_flat_peer_new(&cfg, &ops, e, &e->fp);
	if (r < 0) {
		error("cannot create the device: %s", strerror(-r));
		return EXIT_RUNTIME;
	}
	e->dev = ivshmem_flat_peer_device(e->fp);
	e->connecting = true;
	r = ivshmem_flat_peer_connect(e->fp, e->opt->socket, timeout_ms);
	e->connecting = false;
	if (r < 0)
		return connect_error(e, r);
	return EXIT_OK;
}

/* ---- the board's MMIO ---------------------------------------------------- */

static uint64_t console_read(uc_engine *uc, uint64_t offset, unsigned size,
			     void *user)
{
	struct emu *e = user;

	/* FENCE: the emulated CPU's DMB need not order anything against
	 * the host's other threads and processes (one emulated CPU does not
	 * promise a host barrier for it); this read does. */
	if (offset == BOARD_CONSOLE_FENCE)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return offset == BOARD_CONSOLE_IRQ ? e->irq : 0;
}

static void console_write(uc_engine *uc, uint64_t offset, unsigned size,
			  uint64_t value, void *user)
{
	struct emu *e = user;

	switch (offset) {
	case BOARD_CONSOLE_PUTCHAR:
		putchar((int)(value & 0xFF));
		if ((value & 0xFF) == '\n')
			fflush(stdout);
		break;
	case BOARD_CONSOLE_EXIT:
		if (!e->exited) {
			e->exited = true;
			e->status = (int)(value & 0xFF);
		}
		uc_emu_stop(uc);
		break;
	default:
		break;
	}
}

static uint64_t device_read(uc_engine *uc, uint64_t offset, unsigned size,
			    void *user)
{
	struct emu *e = user;

	return ivshmem_flat_mmio_read(e->dev, offset, size);
}

static void device_write(uc_engine *uc, uint64_t offset, unsigned size,
			 uint64_t value, void *user)
{
	struct emu *e = user;

	ivshmem_flat_mmio_write(e->dev, offset, value, size);
}

static uint64_t nvic_read(uc_engine *uc, uint64_t offset, unsigned size,
			  void *user)
{
	struct emu *e = user;

	switch (offset) {
	case BOARD_NVIC_ISER0:
	case BOARD_NVIC_ICER0:
		return e->irq_enabled;
	case BOARD_NVIC_ISPR0:
	case BOARD_NVIC_ICPR0:
		return e->irq_pending;
	case BOARD_NVIC_IABR0:
		return e->irq_active;
	default:
		return 0;
	}
}

static void nvic_write(uc_engine *uc, uint64_t offset, unsigned size,
		       uint64_t value, void *user)
{
	struct emu *e = user;

	if (!(value & 1))
		return;
	switch (offset) {
	case BOARD_NVIC_ISER0:
		e->irq_enabled = true;
		break;
	case BOARD_NVIC_ICER0:
		e->irq_enabled = false;
		break;
	case BOARD_NVIC_ISPR0:
		e->irq_pending = true;
		break;
	case BOARD_NVIC_ICPR0:
		e->irq_pending = false;
		break;
	default:
		break;
	}
	/*
	 * The loop looks at the interrupt after this slice. Not
	 * uc_emu_stop() here: Unicorn 2.0.1 then reports the PC of this
	 * store, not of the next instruction, and resuming would repeat it.
	 */
}

static bool on_invalid(uc_engine *uc, uc_mem_type type, uint64_t address,
		       int size, int64_t value, void *user)
{
	struct emu *e = user;

	if (!e->mem_fault) {
		e->mem_fault = true;
		e->fault_type = type;
		e->fault_addr = address;
		e->fault_size = size;
	}
	return false;
}

static void on_interrupt(uc_engine *uc, uint32_t intno, void *user)
{
	struct emu *e = user;

	/* The handler's return to EXC_RETURN: irq_return() completes it. */
	if (intno == EXCP_EXCEPTION_EXIT && e->irq_active)
		e->irq_returned = true;
	else if (e->exception < 0)
		e->exception = (int)intno;
	uc_emu_stop(uc);
}

/* Map the board; 0, or 1 with a message. */
static int map_board(struct emu *e, const uint8_t *fw, size_t fw_len)
{
	uint64_t shm_size;
	uc_hook hook;
	void *shm;
	uc_err err;
	const char *what;

	err = uc_open(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, &e->uc);
	if (err) {
		error("cannot start Unicorn: %s", uc_strerror(err));
		return EXIT_RUNTIME;
	}
	/* Before anything else: the CPU is made on first use (MCLASS
	 * alone would be a Cortex-M33). */
	what = "select the Cortex-M3";
	err = uc_ctl_set_cpu_model(e->uc, UC_CPU_ARM_CORTEX_M3);
	if (err)
		goto fail;
	/* No stop address: slices end by count, EXIT or a fault. */
	what = "turn off the stop address";
	err = uc_ctl_exits_enable(e->uc);
	if (err)
		goto fail;

	what = "map the flash";
	err = uc_mem_map(e->uc, BOARD_FLASH_BASE, BOARD_FLASH_SIZE,
			 UC_PROT_READ | UC_PROT_EXEC);
	if (!err)
		err = uc_mem_write(e->uc, BOARD_FLASH_BASE, fw, fw_len);
	if (err)
		goto fail;
	what = "map the RAM";
	err = uc_mem_map(e->uc, BOARD_RAM_BASE, BOARD_RAM_SIZE, UC_PROT_ALL);
	if (err)
		goto fail;
	what = "map the test console";
	err = uc_mmio_map(e->uc, BOARD_CONSOLE_BASE, BOARD_CONSOLE_SIZE,
			  console_read, e, console_write, e);
	if (err)
		goto fail;
	/*
	 * Unicorn maps whole pages (1 KiB on M-profile): the 4 KiB up to
	 * the shared memory, whose offsets past IVSHMEM_FLAT_MMIO_SIZE the
	 * core reads as 0 too. (Not uc_ctl_get_page_size(): UC_CTL_READ()
	 * shifts a signed 2 into bit 31, which UBSan reports.)
	 */
	what = "map the ivshmem-flat registers";
	err = uc_mmio_map(e->uc, IVSHMEM_FLAT_DEFAULT_MMIO_BASE,
			  IVSHMEM_FLAT_DEFAULT_SHM_BASE -
			  IVSHMEM_FLAT_DEFAULT_MMIO_BASE,
			  device_read, e, device_write, e);
	if (err)
		goto fail;
	what = "map the shared memory";
	if (ivshmem_flat_peer_get_shm(e->fp, &shm, &shm_size) < 0 ||
	    shm_size % 4096) {
		err = UC_ERR_ARG;
		goto fail;
	}
	err = uc_mem_map_ptr(e->uc, IVSHMEM_FLAT_DEFAULT_SHM_BASE, shm_size,
			     UC_PROT_ALL, shm);
	if (err)
		goto fail;

	if (e->opt->irq) {
		what = "map the NVIC";
		err = uc_mmio_map(e->uc, BOARD_NVIC_BASE, BOARD_NVIC_SIZE,
				  nvic_read, e, nvic_write, e);
		if (err)
			goto fail;
	}

	what = "add the fault hooks";
	err = uc_hook_add(e->uc, &hook, UC_HOOK_MEM_INVALID, on_invalid, e,
			  1, 0);
	if (!err)
		err = uc_hook_add(e->uc, &hook, UC_HOOK_INTR, on_interrupt, e,
				  1, 0);
	if (err)
		goto fail;
	return EXIT_OK;

fail:
	error("cannot %s in Unicorn: %s", what, uc_strerror(err));
	return EXIT_RUNTIME;
}

/* ---- running ------------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *mem_fault_name(uc_mem_type type)
{
	switch (type) {
	case UC_MEM_READ_UNMAPPED: return "a read of unmapped memory";
	case UC_MEM_WRITE_UNMAPPED: return "a write to unmapped memory";
	case UC_MEM_FETCH_UNMAPPED: return "an instruction fetch from unmapped memory";
	case UC_MEM_WRITE_PROT: return "a write to read-only memory (flash)";
	case UC_MEM_READ_PROT: return "a read of unreadable memory";
	case UC_MEM_FETCH_PROT: return "an instruction fetch from memory that is not executable";
	default: return "an invalid memory access";
	}
}

static int cpu_stopped(struct emu *e, uc_err err)
{
	uint32_t pc = 0;

	uc_reg_read(e->uc, UC_ARM_REG_PC, &pc);
	if (e->exception >= 0) {
		const char *name = (size_t)e->exception <
				   sizeof(exception_names) /
				   sizeof(exception_names[0]) ?
				   exception_names[e->exception] : NULL;

		error("the firmware raised CPU exception %d (%s) near PC 0x%08" PRIx32 ", and this board runs no exception handlers",
		      e->exception, name ? name : "unknown", pc);
	} else if (e->mem_fault) {
		error("the firmware stopped at PC 0x%08" PRIx32 ": %s at 0x%08" PRIx64 " (%d bytes)",
		      pc, mem_fault_name(e->fault_type), e->fault_addr,
		      e->fault_size);
	} else if (err == UC_ERR_INSN_INVALID) {
		/* Unicorn stops at UDF, undefined encodings and INVSTATE
		 * itself, without the interrupt hook. */
		error("the firmware stopped at PC 0x%08" PRIx32 ": an undefined instruction, or a branch to an address with bit 0 clear (ARM state, which M-profile lacks)",
		      pc);
	} else {
		error("the firmware stopped at PC 0x%08" PRIx32 ": %s", pc,
		      uc_strerror(err));
	}
	return EXIT_RUNTIME;
}

/* ---- --irq: external interrupt 0 ----------------------------------------- */

#define EXC_RETURN_THREAD_MSP 0xFFFFFFF9u
#define XPSR_STKALIGN (1u << 9)
#define EPSR_T (1u << 24)

/* Registers in the order of the exception frame. */
static const int frame_regs[8] = {
	UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3,
	UC_ARM_REG_R12, UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_XPSR,
};

static uint32_t reg(struct emu *e, int id)
{
	uint32_t v = 0;

	uc_reg_read(e->uc, id, &v);
	return v;
}

static void set_reg(struct emu *e, int id, uint32_t v)
{
	uc_reg_write(e->uc, id, &v);
}

/*
 * Take external interrupt 0 if it is pending and may be taken now: push
 * the frame (r0-r3, r12, lr, the return address, xPSR; 8-byte aligned,
 * xPSR bit 9 telling the padding) on the main stack and start the
 * handler in handler mode with LR = EXC_RETURN. *step: it is pending but
 * masked (PRIMASK, FAULTMASK), so the next slice is one instruction: the
 * interrupt comes right after the CPSIE that unmasks it.
 */
static int irq_take(struct emu *e, uint32_t *pc, bool *step)
{
	uint8_t frame[32], vec[4];
	uint32_t sp, align, handler;

	*step = false;
	if (!e->irq_pending || !e->irq_enabled || e->irq_active ||
	    reg(e, UC_ARM_REG_IPSR))
		return EXIT_OK;
	if ((reg(e, UC_ARM_REG_PRIMASK) | reg(e, UC_ARM_REG_FAULTMASK)) & 1) {
		*step = true;
		return EXIT_OK;
	}
	if (reg(e, UC_ARM_REG_CONTROL) & 2) {
		error("the firmware runs on the process stack (CONTROL.SPSEL) at PC 0x%08" PRIx32 ", and --irq takes interrupts on the main stack only",
		      *pc);
		return EXIT_RUNTIME;
	}
	if (uc_mem_read(e->uc, BOARD_FLASH_BASE + 4 * BOARD_IRQ0_VECTOR, vec,
			4) != UC_ERR_OK)
		return EXIT_RUNTIME;
	handler = get_le32(vec);
	if (!(handler & 1)) {
		error("the firmware's vector table has no Thumb handler for external interrupt 0 (entry %u is 0x%08" PRIx32 ")",
		      BOARD_IRQ0_VECTOR, handler);
		return EXIT_RUNTIME;
	}

	sp = reg(e, UC_ARM_REG_SP);
	align = sp & 4;
	for (unsigned i = 0; i < 8; i++) {
		uint32_t v = i == 6 ? *pc : reg(e, frame_regs[i]);

		if (i == 7)
			v |= align ? XPSR_STKALIGN : 0;
		put_le32(frame + 4 * i, v);
	}
	sp = (sp - 32) & ~align;
	if (uc_mem_write(e->uc, sp, frame, sizeof(frame)) != UC_ERR_OK) {
		error("cannot take the interrupt at PC 0x%08" PRIx32 ": the stack (SP 0x%08" PRIx32 ") is not in RAM",
		      *pc, sp);
		return EXIT_RUNTIME;
	}
	set_reg(e, UC_ARM_REG_SP, sp);
	set_reg(e, UC_ARM_REG_LR, EXC_RETURN_THREAD_MSP);
	set_reg(e, UC_ARM_REG_IPSR, BOARD_IRQ0_VECTOR);
	set_reg(e, UC_ARM_REG_EPSR, EPSR_T);     /* Thumb, no IT block */
	e->irq_pending = false;
	e->irq_active = true;
	if (e->opt->verbose)
		fprintf(stderr, PROG ": interrupt 0 taken at PC 0x%08" PRIx32 "\n",
			*pc);
	*pc = handler;
	return EXIT_OK;
}

/* The handler branched to EXC_RETURN: pop the frame, back to thread
 * mode. With the line still high the interrupt is pending again. */
static int irq_return(struct emu *e, uint32_t *pc)
{
	uint32_t sp = reg(e, UC_ARM_REG_SP), exc_return, v[8];
	uint8_t frame[32];

	exc_return = reg(e, UC_ARM_REG_PC) | 1;
	if (exc_return != EXC_RETURN_THREAD_MSP) {
		error("the handler of interrupt 0 returned with EXC_RETURN 0x%08" PRIx32 "; --irq returns to thread mode on the main stack only (0x%08x)",
		      exc_return, EXC_RETURN_THREAD_MSP);
		return EXIT_RUNTIME;
	}
	if (uc_mem_read(e->uc, sp, frame, sizeof(frame)) != UC_ERR_OK) {
		error("cannot return from the interrupt: the stack (SP 0x%08" PRIx32 ") is not in RAM",
		      sp);
		return EXIT_RUNTIME;
	}
	for (unsigned i = 0; i < 8; i++)
		v[i] = get_le32(frame + 4 * i);
	for (unsigned i = 0; i < 6; i++)
		set_reg(e, frame_regs[i], v[i]);
	set_reg(e, UC_ARM_REG_APSR_NZCVQ, v[7]);
	set_reg(e, UC_ARM_REG_EPSR, v[7]);       /* T and the IT state */
	set_reg(e, UC_ARM_REG_IPSR, 0);
	set_reg(e, UC_ARM_REG_SP, sp + 32 + (v[7] & XPSR_STKALIGN ? 4 : 0));
	e->irq_active = false;
	if (e->irq)
		e->irq_pending = true;
	if (e->opt->verbose)
		fprintf(stderr, PROG ": interrupt 0 returned to PC 0x%08" PRIx32 "\n",
			v[6]);
	*pc = v[6];
	return EXIT_OK;
}

/* ---- the loop ------------------------------------------------------------ */

static int run(struct emu *e, uint32_t sp, uint32_t pc)
{
	struct pollfd pfd = {
		.fd = ivshmem_flat_peer_get_fd(e->fp),
		.events = POLLIN,
	};
	double deadline = e->opt->timeout > 0 ? now() + e->opt->timeout : 0;
	bool step = false;
	uc_err err;

	e->exception = -1;
	err = uc_reg_write(e->uc, UC_ARM_REG_SP, &sp);
	if (err) {
		error("cannot set the initial SP: %s", uc_strerror(err));
		return EXIT_RUNTIME;
	}
	for (;;) {
		/* Bit 0 keeps the CPU in Thumb state: without it Unicorn
		 * starts an M-profile CPU in ARM state, which faults. */
		err = uc_emu_start(e->uc, pc | 1, 0, 0,
				   step ? 1 : SLICE_INSNS);
		if (e->exited) {
			fflush(stdout);
			return e->status;
		}
		if (e->irq_returned && !err && !e->mem_fault) {
			e->irq_returned = false;
			if (irq_return(e, &pc))
				return EXIT_RUNTIME;
		} else if (err || e->mem_fault || e->exception >= 0) {
			return cpu_stopped(e, err);
		} else {
			uc_reg_read(e->uc, UC_ARM_REG_PC, &pc);
		}

		/* Doorbells and server messages; a lost connection is
		 * reported by on_disconnected, and the CPU runs on. */
		if (poll(&pfd, 1, 0) > 0)
			ivshmem_flat_peer_dispatch(e->fp);
		if (deadline && now() >= deadline) {
			fflush(stdout);
			error("timed out after %g s: the firmware did not exit (PC 0x%08" PRIx32 ")",
			      e->opt->timeout, pc);
			return EXIT_RUNTIME;
		}
		if (e->opt->irq && irq_take(e, &pc, &step))
			return EXIT_RUNTIME;
	}
}

int main(int argc, char **argv)
{
	struct options opt = { 0 };
	struct emu e = { .opt = &opt, .exception = -1 };
	uint32_t sp, pc;
	uint8_t *fw = NULL;
	size_t fw_len;
	int r;

	r = parse_options(argc, argv, &opt);
	if (r)
		return r < 0 ? EXIT_OK : r;
	r = load_firmware(opt.firmware, &fw, &fw_len, &sp, &pc);
	if (r)
		return r;
	r = join_server(&e);
	if (!r)
		r = map_board(&e, fw, fw_len);
	free(fw);
	if (!r)
		r = run(&e, sp, pc);
	if (e.uc)
		uc_close(e.uc);
	ivshmem_flat_peer_free(e.fp);
	return r;
}
