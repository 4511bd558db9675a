/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of `ivshmem-ctl peer`: a real ivshmem-server and real
 * ivshmem-ctl processes, driven through pipes on their stdin and stdout,
 * the way a script uses them.
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
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

/* Generous bounds: CI machines are shared and slow. */
#define WAIT_MS 10000
#define QUIET_MS 300
#define TCASE_TIMEOUT 120

#define SHM_SIZE 4194304

static const char *ctl_path(void)
{
	const char *env = getenv("IVSHMEM_CTL");

	return env && *env ? env : IVSHMEM_CTL_PATH;
}

/* Start a server with ARGS (NULL-terminated) or fail the test; a failed
 * test leaves nothing behind (tserver_tracked() in common.h). */
#define START(...) ({ \
	const char *const a_[] = { __VA_ARGS__ }; \
	struct tserver *s_ = tserver_start_tracked(a_); \
	ck_assert_msg(s_, "server did not start"); \
	s_; \
})

static void stop_ok(struct tserver *s)
{
	ck_assert_int_eq(tserver_stop(s), 0);
}

/* ---- an ivshmem-ctl process ---------------------------------------------- */

struct ctl {
	pid_t pid;
	int in;                 /* its stdin (write end), -1 once closed */
	int out;                /* its stdout (read end) */
	int err;                /* its stderr (read end) */
	GString *buf;           /* stdout read, not yet taken as lines */
	GString *errbuf;
	bool eof;
	char *line;             /* the last line taken */
};

/* Run `ivshmem-ctl ARGS...` (NULL-terminated) with pipes on 0, 1, 2. */
static void ctl_start_argv(struct ctl *c, const char *const *args)
{
	int in[2], out[2], err[2];
	size_t n = 0;
	const char **argv;

	while (args[n])
		n++;
	argv = g_new0(const char *, n + 2);
	argv[0] = ctl_path();
	memcpy(argv + 1, args, n * sizeof(*args));

	/* CLOEXEC: no other child may hold these ends, or closing stdin
	 * would not be seen as its end. */
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	g_free(argv);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	c->in = in[1];
	c->out = out[0];
	c->err = err[0];
	fcntl(c->out, F_SETFL, O_NONBLOCK);
	fcntl(c->err, F_SETFL, O_NONBLOCK);
	c->buf = g_string_new(NULL);
	c->errbuf = g_string_new(NULL);
	c->eof = false;
	c->line = NULL;
}

#define CTL(c, ...) do { \
	const char *const a_[] = { __VA_ARGS__, NULL }; \
	ctl_start_argv(c, a_); \
} while (0)

/* `ivshmem-ctl peer -S SOCK [ARGS...]` */
#define PEER(c, s, ...) CTL(c, "peer", "-S", (s)->sock, ##__VA_ARGS__)

static void drain(int fd, GString *dst, bool *eof)
{
	char b[4096];
	ssize_t n;

	while ((n = read(fd, b, sizeof(b))) > 0)
		g_string_append_len(dst, b, n);
	if (n == 0 && eof)
		*eof = true;
}

/* Its stderr so far. */
static const char *ctl_stderr(struct ctl *c)
{
	drain(c->err, c->errbuf, NULL);
	return c->errbuf->str;
}

/* The next stdout line (owned by c, valid until the next call), or NULL
 * on EOF or timeout. */
static const char *ctl_next(struct ctl *c, int timeout_ms)
{
	double deadline = now_seconds() + timeout_ms / 1000.0;

	g_free(c->line);
	c->line = NULL;
	for (;;) {
		char *nl = memchr(c->buf->str, '\n', c->buf->len);

		if (nl) {
			c->line = g_strndup(c->buf->str,
					    (gsize)(nl - c->buf->str));
			g_string_erase(c->buf, 0, nl - c->buf->str + 1);
			return c->line;
		}
		if (c->eof)
			return NULL;

		int left_ms = (int)((deadline - now_seconds()) * 1000);
		struct pollfd pfd = { .fd = c->out, .events = POLLIN };

		/* With no time left, still look once at what is there. */
		if (poll(&pfd, 1, left_ms > 0 ? left_ms : 0) <= 0)
			return NULL;
		drain(c->out, c->buf, &c->eof);
	}
}

/* The next line is exactly `want`. */
#define EXPECT(c, ...) do { \
	char *w_ = g_strdup_printf(__VA_ARGS__); \
	const char *l_ = ctl_next(c, WAIT_MS); \
	ck_assert_msg(l_ && strcmp(l_, w_) == 0, \
		      "pid %ld: want '%s', got '%s' (stderr: %s)", \
		      (long)(c)->pid, w_, l_ ? l_ : "(nothing)", \
		      ctl_stderr(c)); \
	g_free(w_); \
} while (0)

/* The next line starts with `want` (for a ready line whose peers= may
 * still list a peer that just exited, as the server may not have seen its
 * socket close yet, or whose vectors= is not exact). */
#define EXPECT_PREFIX(c, ...) do { \
	char *w_ = g_strdup_printf(__VA_ARGS__); \
	const char *l_ = ctl_next(c, WAIT_MS); \
	ck_assert_msg(l_ && g_str_has_prefix(l_, w_), \
		      "pid %ld: want '%s...', got '%s' (stderr: %s)", \
		      (long)(c)->pid, w_, l_ ? l_ : "(nothing)", \
		      ctl_stderr(c)); \
	g_free(w_); \
} while (0)

/* No stdout line for a while. */
static void expect_quiet(struct ctl *c, int ms)
{
	const char *l = ctl_next(c, ms);

	ck_assert_msg(!l, "pid %ld: unexpected '%s'", (long)c->pid, l);
}

static void ctl_send(struct ctl *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void ctl_send(struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	char *s;
	size_t off = 0, len;

	va_start(ap, fmt);
	s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	len = strlen(s);
	s = g_realloc(s, len + 2);
	s[len++] = '\n';
	while (off < len) {
		ssize_t n = write(c->in, s + off, len - off);

		ck_assert_msg(n > 0, "writing to ivshmem-ctl: %s",
			      g_strerror(errno));
		off += (size_t)n;
	}
	g_free(s);
}

static void ctl_close_in(struct ctl *c)
{
	if (c->in >= 0)
		close(c->in);
	c->in = -1;
}

/* Wait for it to exit; its exit status, or -1 if killed by a signal. The
 * test fails if it does not exit in time. */
static int ctl_wait(struct ctl *c, int timeout_ms)
{
	double deadline = now_seconds() + timeout_ms / 1000.0;
	int status;

	while (waitpid(c->pid, &status, WNOHANG) != c->pid) {
		if (now_seconds() > deadline) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &status, 0);
			ck_abort_msg("ivshmem-ctl %ld did not exit (stderr: %s)",
				     (long)c->pid, ctl_stderr(c));
		}
		usleep(1000);
	}
	c->pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Exits with `status`; close its stdin first. */
#define EXPECT_EXIT(c, status) do { \
	int st_ = ctl_wait(c, WAIT_MS); \
	ck_assert_msg(st_ == (status), "exit status %d, want %d (stderr: %s)", \
		      st_, (status), ctl_stderr(c)); \
} while (0)

static void ctl_free(struct ctl *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	ctl_close_in(c);
	close(c->out);
	close(c->err);
	g_string_free(c->buf, TRUE);
	g_string_free(c->errbuf, TRUE);
	g_free(c->line);
	memset(c, 0, sizeof(*c));
}

/* Close stdin, expect exit 0, free. */
static void ctl_end(struct ctl *c)
{
	ctl_close_in(c);
	EXPECT_EXIT(c, 0);
	ctl_free(c);
}

/* Run ivshmem-ctl ARGS to the end with stdin closed; its status. */
static int ctl_run(struct ctl *c, const char *const *args)
{
	ctl_start_argv(c, args);
	ctl_close_in(c);
	return ctl_wait(c, WAIT_MS);
}

/* The next n lines are doorbells, one per vector in `vectors` (a bit
 * mask), each of count 1, in any order. */
static void expect_doorbells(struct ctl *c, unsigned vectors)
{
	unsigned seen = 0, want = vectors;

	while (want) {
		const char *l = ctl_next(c, WAIT_MS);
		unsigned v, count;

		ck_assert_msg(l && sscanf(l, "doorbell vector=%u count=%u",
					  &v, &count) == 2,
			      "pid %ld: want a doorbell, got '%s'",
			      (long)c->pid, l ? l : "(nothing)");
		ck_assert_msg(v < 32 && (want & (1u << v)) && count == 1,
			      "pid %ld: unexpected '%s' (seen mask %x)",
			      (long)c->pid, l, seen);
		want &= ~(1u << v);
		seen |= 1u << v;
	}
}

/*
 * The next lines are exactly these (NULL-terminated), in any order: for
 * lines that come through different fds (a join or leave notice on the
 * socket, a doorbell on an eventfd), whose order is not defined.
 */
#define EXPECT_SET(c, ...) do { \
	const char *w_[] = { __VA_ARGS__, NULL }; \
	expect_set(c, w_, G_N_ELEMENTS(w_) - 1); \
} while (0)

static void expect_set(struct ctl *c, const char **want, size_t n)
{
	bool *seen = g_new0(bool, n);

	for (size_t k = 0; k < n; k++) {
		const char *l = ctl_next(c, WAIT_MS);
		size_t i;

		for (i = 0; l && i < n; i++)
			if (!seen[i] && strcmp(l, want[i]) == 0)
				break;
		ck_assert_msg(l && i < n, "pid %ld: unexpected '%s' (line %zu of %zu expected, first '%s')",
			      (long)c->pid, l ? l : "(nothing)", k + 1, n,
			      want[0]);
		seen[i] = true;
	}
	g_free(seen);
}

/* ---- events and stdin commands ------------------------------------------- */

START_TEST(test_three_peers)
{
	struct tserver *s = START("-n", "2", NULL);
	struct ctl a, b, c;

	/*
	 * Alone and with no --vectors, a peer can only tell the end of its
	 * greeting from a quiet stream (ivshmem_peer_config.vectors): on a
	 * loaded machine it may count fewer vectors than come (that case is
	 * in test_oneshot_ring). With the count given it waits for them.
	 * b and c learn the count from a.
	 */
	PEER(&a, s, "--vectors", "2");
	EXPECT(&a, "ready id=0 vectors=2 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s);
	EXPECT(&b, "ready id=1 vectors=2 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=2");
	PEER(&c, s);
	EXPECT(&c, "ready id=2 vectors=2 peers=0,1 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=2 vectors=2");
	EXPECT(&b, "join id=2 vectors=2");

	/* One doorbell, in exactly the target. */
	ctl_send(&a, "ring 1 1");
	EXPECT(&a, "ok ring doorbells=1");
	EXPECT(&b, "doorbell vector=1 count=1");
	expect_quiet(&a, QUIET_MS);
	expect_quiet(&c, QUIET_MS);

	ctl_send(&b, "ring 2 all");
	EXPECT(&b, "ok ring doorbells=2");
	expect_doorbells(&c, 3);
	expect_quiet(&a, QUIET_MS);
	expect_quiet(&b, 0);

	/* ring all: every vector of every other peer, not its own. */
	ctl_send(&c, "ring all");
	EXPECT(&c, "ok ring doorbells=4");
	expect_doorbells(&a, 3);
	expect_doorbells(&b, 3);
	expect_quiet(&c, QUIET_MS);

	ctl_send(&a, "ring all 0");
	EXPECT(&a, "ok ring doorbells=2");
	expect_doorbells(&b, 1);
	expect_doorbells(&c, 1);

	/* Ringing itself is allowed; by now it has both vectors. */
	ctl_send(&a, "ring 0 1");
	EXPECT(&a, "ok ring doorbells=1");
	EXPECT(&a, "doorbell vector=1 count=1");
	ctl_send(&a, "ring 0 all");
	EXPECT(&a, "ok ring doorbells=2");
	expect_doorbells(&a, 3);

	ctl_send(&a, "peers");
	EXPECT(&a, "peers 1,2");

	/* The end of stdin ends it with 0; the others see it leave. */
	ctl_end(&c);
	EXPECT(&a, "leave id=2");
	EXPECT(&b, "leave id=2");
	ctl_send(&b, "peers");
	EXPECT(&b, "peers 0");

	/* quit ends it too. */
	ctl_send(&a, "quit");
	EXPECT_EXIT(&a, 0);
	ctl_free(&a);
	EXPECT(&b, "leave id=0");
	ctl_send(&b, "peers");
	EXPECT(&b, "peers");
	ctl_end(&b);
	stop_ok(s);
}
END_TEST

START_TEST(test_json)
{
	struct tserver *s = START(NULL);
	struct ctl a, b;

	PEER(&a, s, "--json");
	EXPECT(&a, "{\"event\":\"ready\",\"id\":0,\"vectors\":1,\"peers\":[],\"shm-size\":%d}",
	       SHM_SIZE);
	/* --json as a global option, before the command. */
	CTL(&b, "--json", "peer", "-S", s->sock);
	EXPECT(&b, "{\"event\":\"ready\",\"id\":1,\"vectors\":1,\"peers\":[0],\"shm-size\":%d}",
	       SHM_SIZE);
	EXPECT(&a, "{\"event\":\"join\",\"id\":1,\"vectors\":1}");

	ctl_send(&a, "peers");
	EXPECT(&a, "{\"event\":\"peers\",\"ids\":[1]}");
	ctl_send(&a, "ring 1 0");
	EXPECT(&a, "{\"event\":\"ok\",\"command\":\"ring\",\"doorbells\":1}");
	EXPECT(&b, "{\"event\":\"doorbell\",\"vector\":0,\"count\":1}");
	ctl_send(&a, "write 8 \"a\\\"b\"");
	EXPECT(&a, "{\"event\":\"ok\",\"command\":\"write\",\"offset\":8,\"length\":3}");
	ctl_send(&b, "read 8 3");
	EXPECT(&b, "{\"event\":\"data\",\"offset\":8,\"hex\":\"612262\"}");

	/* Strings are escaped: quote, backslash, a control character, and
	 * invalid UTF-8 (replaced by U+FFFD). */
	ctl_send(&a, "foo\"\\\x01\xff");
	EXPECT(&a, "{\"event\":\"error\",\"message\":\"unknown command 'foo\\\"\\\\\\u0001\xef\xbf\xbd' (commands: peers, ring, write, read, quit)\"}");

	ctl_end(&b);
	EXPECT(&a, "{\"event\":\"leave\",\"id\":1}");

	/* The server goes away: a disconnected event, status 1. */
	tserver_kill(s);
	EXPECT(&a, "{\"event\":\"disconnected\",\"error\":\"%s\"}",
	       ivshmem_strerror(-ECONNRESET));
	EXPECT_EXIT(&a, 1);
	ctl_free(&a);
	tserver_cleanup(s);
}
END_TEST

START_TEST(test_shared_memory)
{
	struct tserver *s = START(NULL);
	struct ctl a, b;
	char path[128];
	unsigned char *shm;
	int fd;

	PEER(&a, s);
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s);
	EXPECT(&b, "ready id=1 vectors=1 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");

	ctl_send(&a, "write 16 deadbeef");
	EXPECT(&a, "ok write offset=16 length=4");
	ctl_send(&b, "read 16 4");
	EXPECT(&b, "data offset=16 hex=deadbeef");

	ctl_send(&b, "write 0x20 0xCAFE");
	EXPECT(&b, "ok write offset=32 length=2");
	ctl_send(&a, "read 0x20 0x2");
	EXPECT(&a, "data offset=32 hex=cafe");

	ctl_send(&a, "write 64 \"hi there\\n\\x00\\\\\"");
	EXPECT(&a, "ok write offset=64 length=11");
	ctl_send(&b, "read 64 11");
	EXPECT(&b, "data offset=64 hex=68692074686572650a005c");

	ctl_send(&b, "read 0 0");
	EXPECT(&b, "data offset=0 hex=");
	ctl_send(&b, "write %d ff", SHM_SIZE - 1);
	EXPECT(&b, "ok write offset=%d length=1", SHM_SIZE - 1);
	ctl_send(&a, "read %d 1", SHM_SIZE - 1);
	EXPECT(&a, "data offset=%d hex=ff", SHM_SIZE - 1);

	/* Out of bounds: refused, nothing written. */
	ctl_send(&a, "write %d aabbccdd", SHM_SIZE - 2);
	EXPECT(&a, "error message=\"a write of 4 bytes at offset %d is past the end of the shared memory (%d bytes)\"",
	       SHM_SIZE - 2, SHM_SIZE);
	ctl_send(&b, "read %d 2", SHM_SIZE - 2);
	EXPECT(&b, "data offset=%d hex=00ff", SHM_SIZE - 2);
	ctl_send(&b, "read %d 1", SHM_SIZE);
	EXPECT(&b, "error message=\"a read of 1 bytes at offset %d is past the end of the shared memory (%d bytes)\"",
	       SHM_SIZE, SHM_SIZE);
	ctl_send(&b, "read 0xffffffffffffffff 2");
	EXPECT(&b, "error message=\"a read of 2 bytes at offset 18446744073709551615 is past the end of the shared memory (%d bytes)\"",
	       SHM_SIZE);

	/* The server's shared memory object itself holds the bytes. */
	snprintf(path, sizeof(path), "/dev/shm/%s", s->shm_name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	shm = mmap(NULL, SHM_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(shm != MAP_FAILED);
	ck_assert_mem_eq(shm + 16, "\xde\xad\xbe\xef", 4);
	ck_assert_mem_eq(shm + 32, "\xca\xfe", 2);
	ck_assert_mem_eq(shm + 64, "hi there\n\0\\", 11);
	ck_assert_mem_eq(shm + SHM_SIZE - 2, "\x00\xff", 2);
	munmap(shm, SHM_SIZE);
	close(fd);

	ctl_end(&a);
	ctl_end(&b);
	stop_ok(s);
}
END_TEST

/* A bad command: the error line, then the next command still works. */
#define BAD(c, cmd, msg) do { \
	ctl_send(c, "%s", cmd); \
	EXPECT(c, "error message=\"%s\"", msg); \
} while (0)

#define RING_USAGE "give 'ring PEER VECTOR', 'ring PEER all' or 'ring all [VECTOR]'"
#define WRITE_USAGE "give 'write OFFSET HEX' or 'write OFFSET \\\"TEXT\\\"'"
#define NOT_HEX "is not hex bytes: give an even number of hex digits (deadbeef or 0xdeadbeef) or \\\"TEXT\\\""

START_TEST(test_bad_commands)
{
	struct tserver *s = START(NULL);
	struct ctl a, b;
	GString *big;

	PEER(&a, s);
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s);
	EXPECT(&b, "ready id=1 vectors=1 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");
	ctl_send(&a, "write 0 11223344");
	EXPECT(&a, "ok write offset=0 length=4");

	BAD(&a, "bogus", "unknown command 'bogus' (commands: peers, ring, write, read, quit)");
	BAD(&a, "peers x", "'peers' takes no arguments");
	BAD(&a, "quit now", "'quit' takes no arguments");
	BAD(&a, "ring", RING_USAGE);
	BAD(&a, "ring 1", RING_USAGE);
	BAD(&a, "ring 1 0 0", RING_USAGE);
	BAD(&a, "ring 9 0", "no peer 9 is connected");
	BAD(&a, "ring 9 all", "no peer 9 is connected");
	BAD(&a, "ring 1 1", "peer 1 has no vector 1 (it has 1)");
	BAD(&a, "ring all 3", "peer 1 has no vector 3 (it has 1)");
	BAD(&a, "ring x 0", "'x' is not a peer ID (0..65535) or 'all': " RING_USAGE);
	BAD(&a, "ring 65536 0", "'65536' is not a peer ID (0..65535) or 'all': " RING_USAGE);
	BAD(&a, "ring 1 -1", "'-1' is not a vector number or 'all': " RING_USAGE);
	BAD(&a, "write", WRITE_USAGE);
	BAD(&a, "write 0", WRITE_USAGE);
	BAD(&a, "write 0 abc", "'abc' " NOT_HEX);
	BAD(&a, "write 0 0x", "'' " NOT_HEX);
	BAD(&a, "write 0 zz", "'zz' " NOT_HEX);
	BAD(&a, "write 0 00 11", WRITE_USAGE " (quote text with spaces)");
	BAD(&a, "write -1 00", "'-1' is not an offset: give a number (decimal, or hexadecimal with 0x)");
	BAD(&a, "write 010x 00", "'010x' is not an offset: give a number (decimal, or hexadecimal with 0x)");
	BAD(&a, "write 0 \"open", "the text has no closing '\\\"'");
	BAD(&a, "write 0 \"a\\q\"", "unknown escape: use \\\\\\\" \\\\\\\\ \\\\n \\\\r \\\\t \\\\0 or \\\\xHH");
	BAD(&a, "write 0 \"a\\x4\"", "\\\\x needs two hex digits");
	BAD(&a, "write 0 \"\"", "the text is empty: nothing to write");
	BAD(&a, "write 0 \"a\" b", "unexpected characters after the closing '\\\"'");
	BAD(&a, "read", "give 'read OFFSET LENGTH'");
	BAD(&a, "read 0", "give 'read OFFSET LENGTH'");
	BAD(&a, "read 0 x", "'x' is not a length: give a number (decimal, or hexadecimal with 0x)");
	BAD(&a, "read 0 2000000", "at most 1048576 bytes per read");

	/* Empty lines, comments and CRLF line ends are fine. */
	ctl_send(&a, "%s", "");
	ctl_send(&a, "   # a comment");
	ctl_send(&a, "read 0 4\r");
	EXPECT(&a, "data offset=0 hex=11223344");

	/* An overlong line: one error, the rest of the line is dropped. */
	big = g_string_new("write 0 ");
	for (unsigned i = 0; i < (1u << 20) + 200; i++)
		g_string_append(big, "ab");
	ctl_send(&a, "%s", big->str);
	g_string_free(big, TRUE);
	EXPECT(&a, "error message=\"the line is longer than %u bytes: ignored\"",
	       2 * (1u << 20) + 256);
	ctl_send(&a, "read 0 4");
	EXPECT(&a, "data offset=0 hex=11223344");

	/* Nothing happened to anyone. */
	ctl_send(&a, "peers");
	EXPECT(&a, "peers 1");
	expect_quiet(&a, QUIET_MS);
	expect_quiet(&b, 0);

	/* A last line without a newline still runs at the end of input. */
	ck_assert_int_eq(write(a.in, "ring 1 0", 8), 8);
	ctl_end(&a);
	EXPECT(&b, "doorbell vector=0 count=1");
	EXPECT(&b, "leave id=0");
	ctl_end(&b);
	stop_ok(s);
}
END_TEST

START_TEST(test_vectors_option)
{
	struct tserver *s = START("-n", "2", NULL);
	struct ctl a, b;

	PEER(&a, s, "--vectors", "1");
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s, "--vectors=0");
	EXPECT(&b, "ready id=1 vectors=2 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");
	ctl_send(&a, "ring 1 1");
	EXPECT(&a, "error message=\"peer 1 has no vector 1 (it has 1)\"");
	ctl_send(&b, "ring 0 all");
	EXPECT(&b, "ok ring doorbells=2");
	/* a closed its second eventfd: only vector 0 reaches it. */
	EXPECT(&a, "doorbell vector=0 count=1");
	expect_quiet(&a, QUIET_MS);
	ctl_end(&a);
	ctl_end(&b);
	stop_ok(s);
}
END_TEST

/* ---- one-shot mode ------------------------------------------------------- */

START_TEST(test_oneshot_ring)
{
	struct tserver *s = START("-n", "2", NULL);
	struct ctl a, b, c, d;

	/* The peer is already there. Alone with no --vectors, its ready
	 * line may count fewer vectors than it then gets (see
	 * test_three_peers): the doorbells below show it has both. */
	PEER(&b, s);
	EXPECT_PREFIX(&b, "ready id=0 vectors=");
	PEER(&a, s, "--wait-peers", "1", "--ring", "all:all", "--timeout", "5");
	ctl_close_in(&a);       /* no reason to stop in one-shot mode */
	EXPECT(&a, "ready id=1 vectors=2 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT_EXIT(&a, 0);
	expect_quiet(&a, QUIET_MS);
	ctl_free(&a);
	EXPECT_SET(&b, "join id=1 vectors=2", "doorbell vector=0 count=1",
		   "doorbell vector=1 count=1", "leave id=1");

	/* Waiting for a peer that comes later; --ring twice, in order. */
	PEER(&c, s, "--wait-peers=2", "--ring=all:0", "--ring", "0:1",
	     "--timeout=10");
	EXPECT(&c, "ready id=2 vectors=2 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&b, "join id=2 vectors=2");
	expect_quiet(&c, QUIET_MS);
	ck_assert_int_eq(waitpid(c.pid, NULL, WNOHANG), 0);
	PEER(&d, s);
	EXPECT(&d, "ready id=3 vectors=2 peers=0,2 shm-size=%d", SHM_SIZE);
	EXPECT(&c, "join id=3 vectors=2");
	EXPECT_EXIT(&c, 0);
	ctl_free(&c);
	EXPECT_SET(&b, "join id=3 vectors=2", "doorbell vector=0 count=1",
		   "doorbell vector=1 count=1", "leave id=2");
	EXPECT_SET(&d, "doorbell vector=0 count=1", "leave id=2");

	/* --wait-peers 0 alone: join, print ready, exit. */
	PEER(&a, s, "--wait-peers", "0");
	EXPECT(&a, "ready id=4 vectors=2 peers=0,3 shm-size=%d", SHM_SIZE);
	EXPECT_EXIT(&a, 0);
	ctl_free(&a);
	EXPECT(&b, "join id=4 vectors=2");
	EXPECT(&b, "leave id=4");

	/* A --ring that cannot be done: status 1, said on stderr. */
	PEER(&a, s, "--ring", "9:0");
	EXPECT(&a, "ready id=5 vectors=2 peers=0,3 shm-size=%d", SHM_SIZE);
	EXPECT_EXIT(&a, 1);
	ck_assert_msg(strstr(ctl_stderr(&a), "--ring 9:0 failed: no peer 9 is connected"),
		      "stderr: %s", ctl_stderr(&a));
	ctl_free(&a);

	ctl_end(&b);
	ctl_end(&d);
	stop_ok(s);
}
END_TEST

START_TEST(test_exit_after_doorbells)
{
	struct tserver *s = START(NULL);
	struct ctl a, b, c;
	unsigned sum = 0, v, count;
	const char *l;

	PEER(&a, s, "--exit-after-doorbells", "1");
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s);
	EXPECT(&b, "ready id=1 vectors=1 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");
	expect_quiet(&a, QUIET_MS);
	ck_assert_int_eq(waitpid(a.pid, NULL, WNOHANG), 0);
	ctl_send(&b, "ring 0 0");
	EXPECT(&b, "ok ring doorbells=1");
	EXPECT(&a, "doorbell vector=0 count=1");
	EXPECT_EXIT(&a, 0);     /* its stdin is still open */
	ctl_free(&a);
	EXPECT(&b, "leave id=0");

	/* Counts add up, however the eventfd merges them. */
	PEER(&c, s, "--exit-after-doorbells=3", "--json");
	EXPECT(&c, "{\"event\":\"ready\",\"id\":2,\"vectors\":1,\"peers\":[1],\"shm-size\":%d}",
	       SHM_SIZE);
	EXPECT(&b, "join id=2 vectors=1");
	ctl_send(&b, "ring 2 0");
	ctl_send(&b, "ring 2 0");
	ctl_send(&b, "ring all");
	while (sum < 3) {
		l = ctl_next(&c, WAIT_MS);
		ck_assert_msg(l && sscanf(l, "{\"event\":\"doorbell\",\"vector\":%u,\"count\":%u}",
					  &v, &count) == 2 && v == 0,
			      "want a doorbell, got '%s'", l ? l : "(nothing)");
		sum += count;
	}
	ck_assert_uint_eq(sum, 3);
	EXPECT_EXIT(&c, 0);
	ctl_free(&c);
	ctl_end(&b);
	stop_ok(s);
}
END_TEST

START_TEST(test_timeout)
{
	struct tserver *s = START(NULL);
	struct ctl a;
	double t0 = now_seconds(), t;

	PEER(&a, s, "--wait-peers", "1", "--timeout", "0.5");
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	EXPECT_EXIT(&a, 1);
	t = now_seconds() - t0;
	ck_assert_msg(t >= 0.45 && t < 5, "exited after %.2f s", t);
	ck_assert_msg(strstr(ctl_stderr(&a),
			     "ivshmem-ctl: timed out after 0.5 s waiting for 1 other peer (0 connected)"),
		      "stderr: %s", ctl_stderr(&a));
	ctl_free(&a);

	PEER(&a, s, "--exit-after-doorbells", "2", "--timeout", ".3");
	EXPECT_PREFIX(&a, "ready id=1 vectors=1 peers=");
	EXPECT_EXIT(&a, 1);
	ck_assert_msg(strstr(ctl_stderr(&a),
			     "timed out after 0.3 s waiting for 2 doorbells (0 received)"),
		      "stderr: %s", ctl_stderr(&a));
	ctl_free(&a);

	/* A socket that accepts but never greets. */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		char path[128];

		snprintf(path, sizeof(path), "%s/mute", s->dir);
		strcpy(sa.sun_path, path);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		ck_assert_int_eq(listen(fd, 4), 0);
		CTL(&a, "peer", "-S", path, "--timeout", "0.3");
		EXPECT_EXIT(&a, 1);
		ck_assert_str_eq(ctl_stderr(&a),
				 "ivshmem-ctl: timed out after 0.3 s waiting for the server's greeting\n");
		expect_quiet(&a, 0);
		ctl_free(&a);
		close(fd);
		unlink(path);
	}

	/* Interactive: the deadline also ends a session left open. */
	PEER(&a, s, "--timeout", "0.3");
	EXPECT_PREFIX(&a, "ready id=2 vectors=1 peers=");
	EXPECT_EXIT(&a, 1);
	ck_assert_msg(strstr(ctl_stderr(&a), "with standard input still open"),
		      "stderr: %s", ctl_stderr(&a));
	ctl_free(&a);
	stop_ok(s);
}
END_TEST

/* ---- failures and the command line --------------------------------------- */

START_TEST(test_no_server)
{
	char dir[] = "/tmp/ivshmem-ctl-test-XXXXXX", path[128];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *args[] = { "peer", "-S", path, NULL };
	char *want;
	struct ctl a;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	ck_assert_int_eq(ctl_run(&a, args), 1);
	want = g_strdup_printf("ivshmem-ctl: cannot connect to %s: No such file or directory (is ivshmem-server running? use -S PATH)\n",
			       path);
	ck_assert_str_eq(ctl_stderr(&a), want);
	g_free(want);
	expect_quiet(&a, 0);
	ctl_free(&a);

	/* A stale socket file nobody listens on. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(ctl_run(&a, args), 1);
	ck_assert_msg(strstr(ctl_stderr(&a), "Connection refused (is ivshmem-server running? use -S PATH)"),
		      "stderr: %s", ctl_stderr(&a));
	ctl_free(&a);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ivshmem-ctl ARGS exits 2 with one sentence and the hint. */
#define USAGE_ERROR(hint, ...) do { \
	const char *const a_[] = { __VA_ARGS__, NULL }; \
	struct ctl c_; \
	const char *e_; \
	ck_assert_int_eq(ctl_run(&c_, a_), 2); \
	e_ = ctl_stderr(&c_); \
	ck_assert_msg(g_str_has_prefix(e_, "ivshmem-ctl: ") && \
		      g_str_has_suffix(e_, "\nTry 'ivshmem-ctl " hint \
				       "--help' for more information.\n") && \
		      strchr(e_, '\n') + 1 == strstr(e_, "Try"), \
		      "stderr: %s", e_); \
	expect_quiet(&c_, 0); \
	ctl_free(&c_); \
} while (0)

START_TEST(test_usage)
{
	struct ctl c;
	const char *out;

	USAGE_ERROR("", "--bogus");
	USAGE_ERROR("", "-x", "peer");
	USAGE_ERROR("", "-S");
	USAGE_ERROR("", "nosuchcommand");
	USAGE_ERROR("", "help", "nosuchcommand");
	USAGE_ERROR("", "-v");          /* no command */
	USAGE_ERROR("peer ", "peer", "--bogus");
	USAGE_ERROR("peer ", "peer", "extra");
	USAGE_ERROR("peer ", "peer", "--ring");
	USAGE_ERROR("peer ", "peer", "--ring", "1");
	USAGE_ERROR("peer ", "peer", "--ring", "1:64");
	USAGE_ERROR("peer ", "peer", "--ring", "x:0");
	USAGE_ERROR("peer ", "peer", "--vectors", "65");
	USAGE_ERROR("peer ", "peer", "--wait-peers", "-1");
	USAGE_ERROR("peer ", "peer", "--wait-peers", "65536");
	USAGE_ERROR("peer ", "peer", "--exit-after-doorbells", "0");
	USAGE_ERROR("peer ", "peer", "--timeout", "0");
	USAGE_ERROR("peer ", "peer", "--timeout", "-1");
	USAGE_ERROR("peer ", "peer", "--timeout", "soon");
	USAGE_ERROR("peer ", "peer", "-S", "");
	USAGE_ERROR("peer ", "peer", "-S",
		    "/tmp/a-socket-path-that-is-far-too-long-for-sun-path-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");

	/* The sentence names the option and what is wrong with it. */
	{
		const char *const a[] = { "peer", "--json=x", NULL };

		ck_assert_int_eq(ctl_run(&c, a), 2);
		ck_assert_str_eq(ctl_stderr(&c),
				 "ivshmem-ctl: option '--json' takes no argument\n"
				 "Try 'ivshmem-ctl peer --help' for more information.\n");
		ctl_free(&c);
	}

	/* --help: exit 0, the commands and the exit statuses. */
	{
		const char *const a[] = { "--help", NULL };

		ck_assert_int_eq(ctl_run(&c, a), 0);
		drain(c.out, c.buf, &c.eof);
		out = c.buf->str;
		ck_assert_msg(strstr(out, "Usage: ivshmem-ctl") &&
			      strstr(out, "  peer ") &&
			      strstr(out, "Exit status:") &&
			      strstr(out, "0  success") &&
			      strstr(out, "1  runtime error") &&
			      strstr(out, "2  usage error"), "%s", out);
		ck_assert_str_eq(ctl_stderr(&c), "");
		ctl_free(&c);
	}
	{
		const char *const a[] = { "peer", "--help", NULL };
		char *peer_help;

		ck_assert_int_eq(ctl_run(&c, a), 0);
		drain(c.out, c.buf, &c.eof);
		out = c.buf->str;
		ck_assert_msg(strstr(out, "Usage: ivshmem-ctl peer") &&
			      strstr(out, "--wait-peers") &&
			      strstr(out, "--exit-after-doorbells") &&
			      strstr(out, "ready id=ID vectors=V peers=ID,ID shm-size=BYTES") &&
			      strstr(out, "Exit status: 0") &&
			      strstr(out, "2 on a usage error"), "%s", out);
		peer_help = g_strdup(out);
		ctl_free(&c);

		/* help peer says the same. */
		const char *const h[] = { "help", "peer", NULL };

		ck_assert_int_eq(ctl_run(&c, h), 0);
		drain(c.out, c.buf, &c.eof);
		ck_assert_str_eq(c.buf->str, peer_help);
		g_free(peer_help);
		ctl_free(&c);
	}
	{
		const char *const a[] = { "--version", NULL };
		char *want = g_strdup_printf("ivshmem-ctl (libivshmem) %s\n",
					     ivshmem_version());

		ck_assert_int_eq(ctl_run(&c, a), 0);
		drain(c.out, c.buf, &c.eof);
		ck_assert_str_eq(c.buf->str, want);
		g_free(want);
		ctl_free(&c);
	}
}
END_TEST

START_TEST(test_server_killed)
{
	struct tserver *s = START(NULL);
	struct ctl a, b;
	char *want;

	PEER(&a, s);
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s, "--stay");
	ctl_close_in(&b);
	EXPECT(&b, "ready id=1 vectors=1 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");

	tserver_kill(s);
	EXPECT(&a, "disconnected error=\"%s\"", ivshmem_strerror(-ECONNRESET));
	EXPECT(&b, "disconnected error=\"%s\"", ivshmem_strerror(-ECONNRESET));
	EXPECT_EXIT(&a, 1);
	EXPECT_EXIT(&b, 1);     /* --stay too: a script must know */
	want = g_strdup_printf("ivshmem-ctl: disconnected from %s: %s\n",
			       s->sock, ivshmem_strerror(-ECONNRESET));
	ck_assert_str_eq(ctl_stderr(&a), want);
	g_free(want);
	ctl_free(&a);
	ctl_free(&b);
	tserver_cleanup(s);
}
END_TEST

START_TEST(test_server_full)
{
	struct tserver *s = START("--max-peers", "1", NULL);
	struct ctl a, b;

	PEER(&a, s);
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s);
	EXPECT(&b, "disconnected error=\"%s\"",
	       ivshmem_strerror(-ECONNREFUSED));
	EXPECT_EXIT(&b, 1);
	ctl_free(&b);
	ctl_end(&a);
	stop_ok(s);
}
END_TEST

START_TEST(test_stay_cpu)
{
	struct tserver *s = START(NULL);
	struct ctl a, b;
	double cpu;

	/* --stay: the end of stdin does not end it, and it sleeps. */
	PEER(&a, s, "--stay");
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	ctl_close_in(&a);
	/* One-shot mode, still waiting, stdin ended: sleeps too. */
	PEER(&b, s, "--wait-peers", "5");
	ctl_close_in(&b);
	EXPECT(&b, "ready id=1 vectors=1 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");

	usleep(100 * 1000);
	cpu = proc_cpu_seconds(a.pid) + proc_cpu_seconds(b.pid);
	sleep(1);
	cpu = proc_cpu_seconds(a.pid) + proc_cpu_seconds(b.pid) - cpu;
	ck_assert_msg(cpu < 0.2, "%.2f s of CPU in 1 s after stdin ended", cpu);
	ck_assert_int_eq(waitpid(a.pid, NULL, WNOHANG), 0);
	ck_assert_int_eq(waitpid(b.pid, NULL, WNOHANG), 0);

	/* Still working: b leaves, a says so. */
	kill(b.pid, SIGTERM);
	EXPECT_EXIT(&b, 0);
	ctl_free(&b);
	EXPECT(&a, "leave id=1");
	kill(a.pid, SIGTERM);
	EXPECT_EXIT(&a, 0);
	ctl_free(&a);
	stop_ok(s);
}
END_TEST

START_TEST(test_signals)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct tserver *s = START(NULL);
	struct ctl a;

	for (unsigned i = 0; i < G_N_ELEMENTS(sigs); i++) {
		PEER(&a, s);
		EXPECT_PREFIX(&a, "ready id=%u vectors=1 peers=", i);
		kill(a.pid, sigs[i]);
		EXPECT_EXIT(&a, 0);
		ck_assert_str_eq(ctl_stderr(&a), "");
		ctl_free(&a);
	}
	stop_ok(s);
}
END_TEST

/* ---- runner -------------------------------------------------------------- */

static TCase *tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TCASE_TIMEOUT);
	tcase_add_unchecked_fixture(tc, NULL, tserver_reap_tracked);
	return tc;
}

static Suite *ctl_peer_suite(void)
{
	Suite *s = suite_create("ctl-peer");
	TCase *tc;

	tc = tcase("interactive");
	tcase_add_test(tc, test_three_peers);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_shared_memory);
	tcase_add_test(tc, test_bad_commands);
	tcase_add_test(tc, test_vectors_option);
	suite_add_tcase(s, tc);

	tc = tcase("one-shot");
	tcase_add_test(tc, test_oneshot_ring);
	tcase_add_test(tc, test_exit_after_doorbells);
	tcase_add_test(tc, test_timeout);
	suite_add_tcase(s, tc);

	tc = tcase("process");
	tcase_add_test(tc, test_no_server);
	tcase_add_test(tc, test_usage);
	tcase_add_test(tc, test_server_killed);
	tcase_add_test(tc, test_server_full);
	tcase_add_test(tc, test_stay_cpu);
	tcase_add_test(tc, test_signals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int ret;

	if (tserver_tracking_init() < 0)
		return EXIT_FAILURE;
	ret = run_suite(ctl_peer_suite());
	tserver_reap_tracked();
	return ret;
}
