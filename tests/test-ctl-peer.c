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
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "tproc.h"

#define TCASE_TIMEOUT 120

#define SHM_SIZE 4194304

/* ---- an ivshmem-ctl process ---------------------------------------------- */

/* Run `ivshmem-ctl ARGS...` (NULL-terminated) with pipes on 0, 1, 2. */
static void ctl_start_argv(struct proc *c, const char *const *args)
{
	proc_start(c, proc_ctl_path(), args);
}

#define CTL(c, ...) do { \
	const char *const a_[] = { __VA_ARGS__, NULL }; \
	ctl_start_argv(c, a_); \
} while (0)

/* `ivshmem-ctl peer -S SOCK [ARGS...]` */
#define PEER(c, s, ...) CTL(c, "peer", "-S", (s)->sock, ##__VA_ARGS__)

/* Close stdin, expect exit 0, free. */
static void ctl_end(struct proc *c)
{
	proc_close_in(c);
	EXPECT_EXIT(c, 0);
	proc_free(c);
}

/* Run ivshmem-ctl ARGS to the end with stdin closed; its status. */
static int ctl_run(struct proc *c, const char *const *args)
{
	ctl_start_argv(c, args);
	proc_close_in(c);
	return proc_wait(c, TWAIT_MS);
}

/* The next n lines are doorbells, one per vector in `vectors` (a bit
 * mask), each of count 1, in any order. */
static void expect_doorbells(struct proc *c, unsigned vectors)
{
	unsigned seen = 0, want = vectors;

	while (want) {
		const char *l = proc_next(c, TWAIT_MS);
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

static void expect_set(struct proc *c, const char **want, size_t n)
{
	bool *seen = g_new0(bool, n);

	for (size_t k = 0; k < n; k++) {
		const char *l = proc_next(c, TWAIT_MS);
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
	struct proc a, b, c;

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
	proc_send(&a, "ring 1 1");
	EXPECT(&a, "ok ring doorbells=1");
	EXPECT(&b, "doorbell vector=1 count=1");
	proc_expect_quiet(&a, TQUIET_MS);
	proc_expect_quiet(&c, TQUIET_MS);

	proc_send(&b, "ring 2 all");
	EXPECT(&b, "ok ring doorbells=2");
	expect_doorbells(&c, 3);
	proc_expect_quiet(&a, TQUIET_MS);
	proc_expect_quiet(&b, 0);

	/* ring all: every vector of every other peer, not its own. */
	proc_send(&c, "ring all");
	EXPECT(&c, "ok ring doorbells=4");
	expect_doorbells(&a, 3);
	expect_doorbells(&b, 3);
	proc_expect_quiet(&c, TQUIET_MS);

	proc_send(&a, "ring all 0");
	EXPECT(&a, "ok ring doorbells=2");
	expect_doorbells(&b, 1);
	expect_doorbells(&c, 1);

	/* Ringing itself is allowed; by now it has both vectors. */
	proc_send(&a, "ring 0 1");
	EXPECT(&a, "ok ring doorbells=1");
	EXPECT(&a, "doorbell vector=1 count=1");
	proc_send(&a, "ring 0 all");
	EXPECT(&a, "ok ring doorbells=2");
	expect_doorbells(&a, 3);

	proc_send(&a, "peers");
	EXPECT(&a, "peers 1,2");

	/* The end of stdin ends it with 0; the others see it leave. */
	ctl_end(&c);
	EXPECT(&a, "leave id=2");
	EXPECT(&b, "leave id=2");
	proc_send(&b, "peers");
	EXPECT(&b, "peers 0");

	/* quit ends it too. */
	proc_send(&a, "quit");
	EXPECT_EXIT(&a, 0);
	proc_free(&a);
	EXPECT(&b, "leave id=0");
	proc_send(&b, "peers");
	EXPECT(&b, "peers");
	ctl_end(&b);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(test_json)
{
	struct tserver *s = START(NULL);
	struct proc a, b;

	PEER(&a, s, "--json");
	EXPECT(&a, "{\"event\":\"ready\",\"id\":0,\"vectors\":1,\"peers\":[],\"shm-size\":%d}",
	       SHM_SIZE);
	/* --json as a global option, before the command. */
	CTL(&b, "--json", "peer", "-S", s->sock);
	EXPECT(&b, "{\"event\":\"ready\",\"id\":1,\"vectors\":1,\"peers\":[0],\"shm-size\":%d}",
	       SHM_SIZE);
	EXPECT(&a, "{\"event\":\"join\",\"id\":1,\"vectors\":1}");

	proc_send(&a, "peers");
	EXPECT(&a, "{\"event\":\"peers\",\"ids\":[1]}");
	proc_send(&a, "ring 1 0");
	EXPECT(&a, "{\"event\":\"ok\",\"command\":\"ring\",\"doorbells\":1}");
	EXPECT(&b, "{\"event\":\"doorbell\",\"vector\":0,\"count\":1}");
	proc_send(&a, "write 8 \"a\\\"b\"");
	EXPECT(&a, "{\"event\":\"ok\",\"command\":\"write\",\"offset\":8,\"length\":3}");
	proc_send(&b, "read 8 3");
	EXPECT(&b, "{\"event\":\"data\",\"offset\":8,\"hex\":\"612262\"}");

	/* Strings are escaped: quote, backslash, a control character, and
	 * invalid UTF-8 (replaced by U+FFFD). */
	proc_send(&a, "foo\"\\\x01\xff");
	EXPECT(&a, "{\"event\":\"error\",\"message\":\"unknown command 'foo\\\"\\\\\\u0001\xef\xbf\xbd' (commands: peers, ring, write, read, quit)\"}");
	/* As json-glib writes them: backspace and form feed in their short
	 * forms, DEL as \u007f, other non-ASCII (U+00E9) as it is. */
	proc_send(&a, "bar\b\f\x7f\xc3\xa9");
	EXPECT(&a, "{\"event\":\"error\",\"message\":\"unknown command 'bar\\b\\f\\u007f\xc3\xa9' (commands: peers, ring, write, read, quit)\"}");

	ctl_end(&b);
	EXPECT(&a, "{\"event\":\"leave\",\"id\":1}");

	/* The server goes away: a disconnected event, status 1. */
	tserver_kill(s);
	EXPECT(&a, "{\"event\":\"disconnected\",\"error\":\"%s\"}",
	       ivshmem_strerror(-ECONNRESET));
	EXPECT_EXIT(&a, 1);
	proc_free(&a);
	tserver_cleanup(s);
}
END_TEST

START_TEST(test_shared_memory)
{
	struct tserver *s = START(NULL);
	struct proc a, b;
	char path[128];
	unsigned char *shm;
	int fd;

	PEER(&a, s);
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s);
	EXPECT(&b, "ready id=1 vectors=1 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");

	proc_send(&a, "write 16 deadbeef");
	EXPECT(&a, "ok write offset=16 length=4");
	proc_send(&b, "read 16 4");
	EXPECT(&b, "data offset=16 hex=deadbeef");

	proc_send(&b, "write 0x20 0xCAFE");
	EXPECT(&b, "ok write offset=32 length=2");
	proc_send(&a, "read 0x20 0x2");
	EXPECT(&a, "data offset=32 hex=cafe");

	proc_send(&a, "write 64 \"hi there\\n\\x00\\\\\"");
	EXPECT(&a, "ok write offset=64 length=11");
	proc_send(&b, "read 64 11");
	EXPECT(&b, "data offset=64 hex=68692074686572650a005c");

	proc_send(&b, "read 0 0");
	EXPECT(&b, "data offset=0 hex=");
	proc_send(&b, "write %d ff", SHM_SIZE - 1);
	EXPECT(&b, "ok write offset=%d length=1", SHM_SIZE - 1);
	proc_send(&a, "read %d 1", SHM_SIZE - 1);
	EXPECT(&a, "data offset=%d hex=ff", SHM_SIZE - 1);

	/* Out of bounds: refused, nothing written. */
	proc_send(&a, "write %d aabbccdd", SHM_SIZE - 2);
	EXPECT(&a, "error message=\"a write of 4 bytes at offset %d is past the end of the shared memory (%d bytes)\"",
	       SHM_SIZE - 2, SHM_SIZE);
	proc_send(&b, "read %d 2", SHM_SIZE - 2);
	EXPECT(&b, "data offset=%d hex=00ff", SHM_SIZE - 2);
	proc_send(&b, "read %d 1", SHM_SIZE);
	EXPECT(&b, "error message=\"a read of 1 bytes at offset %d is past the end of the shared memory (%d bytes)\"",
	       SHM_SIZE, SHM_SIZE);
	proc_send(&b, "read 0xffffffffffffffff 2");
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
	tserver_stop_ok(s);
}
END_TEST

/* Another peer truncates the POSIX object: read and write stop where it
 * now ends and say so; the tool goes on. */
START_TEST(test_shrunk_shared_memory)
{
	struct tserver *s = START(NULL);
	char path[128], hex[801];
	struct proc a;
	int fd;

	PEER(&a, s);
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	proc_send(&a, "write 4000 0102");
	EXPECT(&a, "ok write offset=4000 length=2");
	snprintf(path, sizeof(path), "/dev/shm/%s", s->shm_name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 8192), 0);
	close(fd);

	proc_send(&a, "read 4096 8192");
	EXPECT(&a, "error message=\"the shared memory shrank to 8192 bytes while in use: another peer truncated it (ivshmem-server --memfd seals it against that); 4096 of the 8192 bytes at offset 4096 were read\"");
	memset(hex, 'a', 800);
	hex[800] = '\0';
	proc_send(&a, "write 8000 %s", hex);
	EXPECT(&a, "error message=\"the shared memory shrank to 8192 bytes while in use: another peer truncated it (ivshmem-server --memfd seals it against that); 192 of the 400 bytes at offset 8000 were written\"");
	/* What is left works as before. */
	proc_send(&a, "read 4000 2");
	EXPECT(&a, "data offset=4000 hex=0102");
	proc_send(&a, "read 8190 2");
	EXPECT(&a, "data offset=8190 hex=aaaa");
	proc_close_in(&a);
	EXPECT_EXIT(&a, 0);
	ck_assert_str_eq(proc_stderr(&a), "");
	proc_free(&a);
	tserver_stop_ok(s);
}
END_TEST

/* A bad command: the error line, then the next command still works. */
#define BAD(c, cmd, msg) do { \
	proc_send(c, "%s", cmd); \
	EXPECT(c, "error message=\"%s\"", msg); \
} while (0)

#define RING_USAGE "give 'ring PEER VECTOR', 'ring PEER all' or 'ring all [VECTOR]'"
#define WRITE_USAGE "give 'write OFFSET HEX' or 'write OFFSET \\\"TEXT\\\"'"
#define NOT_HEX "is not hex bytes: give an even number of hex digits (deadbeef or 0xdeadbeef) or \\\"TEXT\\\""

START_TEST(test_bad_commands)
{
	struct tserver *s = START(NULL);
	struct proc a, b;
	GString *big;

	PEER(&a, s);
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s);
	EXPECT(&b, "ready id=1 vectors=1 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");
	proc_send(&a, "write 0 11223344");
	EXPECT(&a, "ok write offset=0 length=4");

	BAD(&a, "bogus", "unknown command 'bogus' (commands: peers, ring, write, read, quit)");
	/* The text form quotes strings as the JSON form does. */
	BAD(&a, "bogus\b", "unknown command 'bogus\\b' (commands: peers, ring, write, read, quit)");
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
	proc_send(&a, "%s", "");
	proc_send(&a, "   # a comment");
	proc_send(&a, "read 0 4\r");
	EXPECT(&a, "data offset=0 hex=11223344");

	/* An overlong line: one error, the rest of the line is dropped. */
	big = g_string_new("write 0 ");
	for (unsigned i = 0; i < (1u << 20) + 200; i++)
		g_string_append(big, "ab");
	proc_send(&a, "%s", big->str);
	g_string_free(big, TRUE);
	EXPECT(&a, "error message=\"the line is longer than %u bytes: ignored\"",
	       2 * (1u << 20) + 256);
	proc_send(&a, "read 0 4");
	EXPECT(&a, "data offset=0 hex=11223344");

	/* Nothing happened to anyone. */
	proc_send(&a, "peers");
	EXPECT(&a, "peers 1");
	proc_expect_quiet(&a, TQUIET_MS);
	proc_expect_quiet(&b, 0);

	/* A last line without a newline still runs at the end of input. */
	ck_assert_int_eq(write(a.in, "ring 1 0", 8), 8);
	ctl_end(&a);
	EXPECT(&b, "doorbell vector=0 count=1");
	EXPECT(&b, "leave id=0");
	ctl_end(&b);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(test_vectors_option)
{
	struct tserver *s = START("-n", "2", NULL);
	struct proc a, b;

	PEER(&a, s, "--vectors", "1");
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s, "--vectors=0");
	EXPECT(&b, "ready id=1 vectors=2 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");
	proc_send(&a, "ring 1 1");
	EXPECT(&a, "error message=\"peer 1 has no vector 1 (it has 1)\"");
	proc_send(&b, "ring 0 all");
	EXPECT(&b, "ok ring doorbells=2");
	/* a closed its second eventfd: only vector 0 reaches it. */
	EXPECT(&a, "doorbell vector=0 count=1");
	proc_expect_quiet(&a, TQUIET_MS);
	ctl_end(&a);
	ctl_end(&b);
	tserver_stop_ok(s);
}
END_TEST

/* ---- one-shot mode ------------------------------------------------------- */

START_TEST(test_oneshot_ring)
{
	struct tserver *s = START("-n", "2", NULL);
	struct proc a, b, c, d;

	/* The peer is already there. Alone with no --vectors, its ready
	 * line may count fewer vectors than it then gets (see
	 * test_three_peers): the doorbells below show it has both. */
	PEER(&b, s);
	EXPECT_PREFIX(&b, "ready id=0 vectors=");
	PEER(&a, s, "--wait-peers", "1", "--ring", "all:all", "--timeout", "5");
	proc_close_in(&a);       /* no reason to stop in one-shot mode */
	EXPECT(&a, "ready id=1 vectors=2 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT_EXIT(&a, 0);
	proc_expect_quiet(&a, TQUIET_MS);
	proc_free(&a);
	EXPECT_SET(&b, "join id=1 vectors=2", "doorbell vector=0 count=1",
		   "doorbell vector=1 count=1", "leave id=1");

	/* Waiting for a peer that comes later; --ring twice, in order. */
	PEER(&c, s, "--wait-peers=2", "--ring=all:0", "--ring", "0:1",
	     "--timeout=10");
	EXPECT(&c, "ready id=2 vectors=2 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&b, "join id=2 vectors=2");
	proc_expect_quiet(&c, TQUIET_MS);
	ck_assert_int_eq(waitpid(c.pid, NULL, WNOHANG), 0);
	PEER(&d, s);
	EXPECT(&d, "ready id=3 vectors=2 peers=0,2 shm-size=%d", SHM_SIZE);
	EXPECT(&c, "join id=3 vectors=2");
	EXPECT_EXIT(&c, 0);
	proc_free(&c);
	EXPECT_SET(&b, "join id=3 vectors=2", "doorbell vector=0 count=1",
		   "doorbell vector=1 count=1", "leave id=2");
	EXPECT_SET(&d, "doorbell vector=0 count=1", "leave id=2");

	/* --wait-peers 0 alone: join, print ready, exit. */
	PEER(&a, s, "--wait-peers", "0");
	EXPECT(&a, "ready id=4 vectors=2 peers=0,3 shm-size=%d", SHM_SIZE);
	EXPECT_EXIT(&a, 0);
	proc_free(&a);
	EXPECT(&b, "join id=4 vectors=2");
	EXPECT(&b, "leave id=4");

	/* A --ring that cannot be done: status 1, said on stderr. */
	PEER(&a, s, "--ring", "9:0");
	EXPECT(&a, "ready id=5 vectors=2 peers=0,3 shm-size=%d", SHM_SIZE);
	EXPECT_EXIT(&a, 1);
	ck_assert_msg(strstr(proc_stderr(&a), "--ring 9:0 failed: no peer 9 is connected"),
		      "stderr: %s", proc_stderr(&a));
	proc_free(&a);

	ctl_end(&b);
	ctl_end(&d);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(test_exit_after_doorbells)
{
	struct tserver *s = START(NULL);
	struct proc a, b, c;
	unsigned sum = 0, v, count;
	const char *l;

	PEER(&a, s, "--exit-after-doorbells", "1");
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s);
	EXPECT(&b, "ready id=1 vectors=1 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");
	proc_expect_quiet(&a, TQUIET_MS);
	ck_assert_int_eq(waitpid(a.pid, NULL, WNOHANG), 0);
	proc_send(&b, "ring 0 0");
	EXPECT(&b, "ok ring doorbells=1");
	EXPECT(&a, "doorbell vector=0 count=1");
	EXPECT_EXIT(&a, 0);     /* its stdin is still open */
	proc_free(&a);
	EXPECT(&b, "leave id=0");

	/* Counts add up, however the eventfd merges them. */
	PEER(&c, s, "--exit-after-doorbells=3", "--json");
	EXPECT(&c, "{\"event\":\"ready\",\"id\":2,\"vectors\":1,\"peers\":[1],\"shm-size\":%d}",
	       SHM_SIZE);
	EXPECT(&b, "join id=2 vectors=1");
	proc_send(&b, "ring 2 0");
	proc_send(&b, "ring 2 0");
	proc_send(&b, "ring all");
	while (sum < 3) {
		l = proc_next(&c, TWAIT_MS);
		ck_assert_msg(l && sscanf(l, "{\"event\":\"doorbell\",\"vector\":%u,\"count\":%u}",
					  &v, &count) == 2 && v == 0,
			      "want a doorbell, got '%s'", l ? l : "(nothing)");
		sum += count;
	}
	ck_assert_uint_eq(sum, 3);
	EXPECT_EXIT(&c, 0);
	proc_free(&c);
	ctl_end(&b);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(test_timeout)
{
	struct tserver *s = START(NULL);
	struct proc a;
	double t0 = now_seconds(), t;

	PEER(&a, s, "--wait-peers", "1", "--timeout", "0.5");
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	EXPECT_EXIT(&a, 1);
	t = now_seconds() - t0;
	ck_assert_msg(t >= 0.45 && t < 5, "exited after %.2f s", t);
	ck_assert_msg(strstr(proc_stderr(&a),
			     "ivshmem-ctl: timed out after 0.5 s waiting for 1 other peer (0 connected)"),
		      "stderr: %s", proc_stderr(&a));
	proc_free(&a);

	PEER(&a, s, "--exit-after-doorbells", "2", "--timeout", ".3");
	EXPECT_PREFIX(&a, "ready id=1 vectors=1 peers=");
	EXPECT_EXIT(&a, 1);
	ck_assert_msg(strstr(proc_stderr(&a),
			     "timed out after 0.3 s waiting for 2 doorbells (0 received)"),
		      "stderr: %s", proc_stderr(&a));
	proc_free(&a);

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
		ck_assert_str_eq(proc_stderr(&a),
				 "ivshmem-ctl: timed out after 0.3 s waiting for the server's greeting\n");
		proc_expect_quiet(&a, 0);
		proc_free(&a);
		close(fd);
		unlink(path);
	}

	/* Interactive: the deadline also ends a session left open. */
	PEER(&a, s, "--timeout", "0.3");
	EXPECT_PREFIX(&a, "ready id=2 vectors=1 peers=");
	EXPECT_EXIT(&a, 1);
	ck_assert_msg(strstr(proc_stderr(&a), "with standard input still open"),
		      "stderr: %s", proc_stderr(&a));
	proc_free(&a);
	tserver_stop_ok(s);
}
END_TEST

/* ---- failures and the command line --------------------------------------- */

START_TEST(test_no_server)
{
	char dir[] = "/tmp/ivshmem-ctl-test-XXXXXX", path[128];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *args[] = { "peer", "-S", path, NULL };
	char *want;
	struct proc a;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	ck_assert_int_eq(ctl_run(&a, args), 1);
	want = g_strdup_printf("ivshmem-ctl: cannot connect to %s: no such file; is ivshmem-server running? (start it with: ivshmem-server -S %s)\n",
			       path, path);
	ck_assert_str_eq(proc_stderr(&a), want);
	g_free(want);
	proc_expect_quiet(&a, 0);
	proc_free(&a);

	/* A stale socket file nobody listens on. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(ctl_run(&a, args), 1);
	ck_assert_msg(strstr(proc_stderr(&a), ": nobody is listening on it; is ivshmem-server running? (start it with: ivshmem-server -S "),
		      "stderr: %s", proc_stderr(&a));
	proc_free(&a);
	unlink(path);
	rmdir(dir);
}
END_TEST


START_TEST(test_usage)
{
	struct proc c;
	const char *out;

	USAGE_ERROR(NULL, "--bogus");
	USAGE_ERROR(NULL, "-x", "peer");
	USAGE_ERROR(NULL, "-S");
	USAGE_ERROR(NULL, "nosuchcommand");
	USAGE_ERROR(NULL, "help", "nosuchcommand");
	USAGE_ERROR(NULL, "-v");          /* no command */
	USAGE_ERROR("peer", "peer", "--bogus");
	USAGE_ERROR("peer", "peer", "extra");
	USAGE_ERROR("peer", "peer", "--ring");
	USAGE_ERROR("peer", "peer", "--ring", "1");
	USAGE_ERROR("peer", "peer", "--ring", "1:64");
	USAGE_ERROR("peer", "peer", "--ring", "x:0");
	USAGE_ERROR("peer", "peer", "--vectors", "65");
	USAGE_ERROR("peer", "peer", "--wait-peers", "-1");
	USAGE_ERROR("peer", "peer", "--wait-peers", "65536");
	USAGE_ERROR("peer", "peer", "--exit-after-doorbells", "0");
	USAGE_ERROR("peer", "peer", "--timeout", "0");
	USAGE_ERROR("peer", "peer", "--timeout", "-1");
	USAGE_ERROR("peer", "peer", "--timeout", "soon");
	USAGE_ERROR("peer", "peer", "-S", "");
	USAGE_ERROR("peer", "peer", "-S",
		    "/tmp/a-socket-path-that-is-far-too-long-for-sun-path-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");

	/* The sentence names the option and what is wrong with it. */
	{
		const char *const a[] = { "peer", "--json=x", NULL };

		ck_assert_int_eq(ctl_run(&c, a), 2);
		ck_assert_str_eq(proc_stderr(&c),
				 "ivshmem-ctl: option '--json' takes no argument\n"
				 "Try 'ivshmem-ctl peer --help' for more information.\n");
		proc_free(&c);
	}

	/* --help: exit 0, the commands and the exit statuses. */
	{
		const char *const a[] = { "--help", NULL };

		ck_assert_int_eq(ctl_run(&c, a), 0);
		out = proc_stdout_rest(&c);
		ck_assert_msg(strstr(out, "Usage: ivshmem-ctl") &&
			      strstr(out, "  peer ") &&
			      strstr(out, "Exit status:") &&
			      strstr(out, "0  success") &&
			      strstr(out, "1  runtime error") &&
			      strstr(out, "2  usage error"), "%s", out);
		ck_assert_str_eq(proc_stderr(&c), "");
		proc_free(&c);
	}
	{
		const char *const a[] = { "peer", "--help", NULL };
		char *peer_help;

		ck_assert_int_eq(ctl_run(&c, a), 0);
		out = proc_stdout_rest(&c);
		ck_assert_msg(strstr(out, "Usage: ivshmem-ctl peer") &&
			      strstr(out, "--wait-peers") &&
			      strstr(out, "--exit-after-doorbells") &&
			      strstr(out, "ready id=ID vectors=V peers=ID,ID shm-size=BYTES") &&
			      strstr(out, "Exit status: 0") &&
			      strstr(out, "2 on a usage error"), "%s", out);
		peer_help = g_strdup(out);
		proc_free(&c);

		/* help peer says the same. */
		const char *const h[] = { "help", "peer", NULL };

		ck_assert_int_eq(ctl_run(&c, h), 0);
		ck_assert_str_eq(proc_stdout_rest(&c), peer_help);
		g_free(peer_help);
		proc_free(&c);
	}
	{
		const char *const a[] = { "--version", NULL };
		char *want = g_strdup_printf("ivshmem-ctl (libivshmem) %s\n",
					     ivshmem_version());

		ck_assert_int_eq(ctl_run(&c, a), 0);
		ck_assert_str_eq(proc_stdout_rest(&c), want);
		g_free(want);
		proc_free(&c);
	}
}
END_TEST

START_TEST(test_server_killed)
{
	struct tserver *s = START(NULL);
	struct proc a, b;
	char *want;

	PEER(&a, s);
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s, "--stay");
	proc_close_in(&b);
	EXPECT(&b, "ready id=1 vectors=1 peers=0 shm-size=%d", SHM_SIZE);
	EXPECT(&a, "join id=1 vectors=1");

	tserver_kill(s);
	EXPECT(&a, "disconnected error=\"%s\"", ivshmem_strerror(-ECONNRESET));
	EXPECT(&b, "disconnected error=\"%s\"", ivshmem_strerror(-ECONNRESET));
	EXPECT_EXIT(&a, 1);
	EXPECT_EXIT(&b, 1);     /* --stay too: a script must know */
	want = g_strdup_printf("ivshmem-ctl: disconnected from %s: %s\n",
			       s->sock, ivshmem_strerror(-ECONNRESET));
	ck_assert_str_eq(proc_stderr(&a), want);
	g_free(want);
	proc_free(&a);
	proc_free(&b);
	tserver_cleanup(s);
}
END_TEST

/* One protocol message (a little-endian int64) on sock, with fd if >= 0. */
static void script_send(int sock, int64_t value, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = &value, .iov_len = sizeof(value) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ck_assert_int_eq(sendmsg(sock, &mh, 0), (ssize_t)sizeof(value));
}

/* A peer announced and gone within the greeting was never shown: its
 * leave is not shown either, and the ready line comes first. */
START_TEST(test_leave_within_greeting)
{
	char dir[] = "/tmp/ivshmem-test-XXXXXX";
	struct pollfd pfd;
	struct proc a;
	char *path;
	int ls, c, shm, e0, e1;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	path = g_build_filename(dir, "sock", NULL);
	ck_assert_int_eq(ivshmem_socket_listen(path, &ls), 0);
	{
		const char *const args[] = { "peer", "-S", path, "--vectors",
					     "1", NULL };

		proc_start(&a, proc_ctl_path(), args);
	}
	pfd = (struct pollfd){ .fd = ls, .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, TWAIT_MS), 1);
	c = accept(ls, NULL, NULL);
	ck_assert_int_ge(c, 0);
	shm = memfd_create("leave-test", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(shm, 4096), 0);
	e0 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e1 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	script_send(c, 0, -1);          /* version */
	script_send(c, 1, -1);          /* own ID */
	script_send(c, -1, shm);        /* shared memory */
	script_send(c, 0, e0);          /* peer 0, one vector */
	script_send(c, 0, -1);          /* peer 0 left */
	script_send(c, 1, e1);          /* own vector */
	EXPECT(&a, "ready id=1 vectors=1 peers= shm-size=4096");
	proc_expect_quiet(&a, TQUIET_MS);
	proc_close_in(&a);
	EXPECT_EXIT(&a, 0);
	ck_assert_str_eq(proc_stderr(&a), "");
	proc_free(&a);
	close(shm);
	close(e0);
	close(e1);
	close(c);
	close(ls);
	unlink(path);
	rmdir(dir);
	g_free(path);
}
END_TEST

/* A server that breaks the protocol (version 1): the tool says so once,
 * in its own sentence, not also through the library's log. */
START_TEST(test_violation_said_once)
{
	char dir[] = "/tmp/ivshmem-test-XXXXXX";
	const int64_t version = 1;
	struct pollfd pfd;
	struct proc a;
	char *path, *want;
	int ls, c;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	path = g_build_filename(dir, "sock", NULL);
	ck_assert_int_eq(ivshmem_socket_listen(path, &ls), 0);
	{
		const char *const args[] = { "peer", "-S", path, NULL };

		proc_start(&a, proc_ctl_path(), args);
	}
	pfd = (struct pollfd){ .fd = ls, .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, TWAIT_MS), 1);
	c = accept(ls, NULL, NULL);
	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(write(c, &version, sizeof(version)), sizeof(version));
	EXPECT(&a, "disconnected error=\"%s\"",
	       ivshmem_strerror(-EPROTONOSUPPORT));
	EXPECT_EXIT(&a, 1);
	want = g_strdup_printf("ivshmem-ctl: disconnected from %s: %s\n", path,
			       ivshmem_strerror(-EPROTONOSUPPORT));
	ck_assert_str_eq(proc_stderr(&a), want);
	g_free(want);
	proc_free(&a);
	close(c);
	close(ls);
	unlink(path);
	rmdir(dir);
	g_free(path);
}
END_TEST

START_TEST(test_server_full)
{
	struct tserver *s = START("--max-peers", "1", NULL);
	struct proc a, b;

	PEER(&a, s);
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	PEER(&b, s);
	EXPECT(&b, "disconnected error=\"%s\"",
	       ivshmem_strerror(-ECONNREFUSED));
	EXPECT_EXIT(&b, 1);
	proc_free(&b);
	ctl_end(&a);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(test_stay_cpu)
{
	struct tserver *s = START(NULL);
	struct proc a, b;
	double cpu;

	/* --stay: the end of stdin does not end it, and it sleeps. */
	PEER(&a, s, "--stay");
	EXPECT(&a, "ready id=0 vectors=1 peers= shm-size=%d", SHM_SIZE);
	proc_close_in(&a);
	/* One-shot mode, still waiting, stdin ended: sleeps too. */
	PEER(&b, s, "--wait-peers", "5");
	proc_close_in(&b);
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
	proc_free(&b);
	EXPECT(&a, "leave id=1");
	kill(a.pid, SIGTERM);
	EXPECT_EXIT(&a, 0);
	proc_free(&a);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(test_signals)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct tserver *s = START(NULL);
	struct proc a;

	for (unsigned i = 0; i < G_N_ELEMENTS(sigs); i++) {
		PEER(&a, s);
		EXPECT_PREFIX(&a, "ready id=%u vectors=1 peers=", i);
		kill(a.pid, sigs[i]);
		EXPECT_EXIT(&a, 0);
		ck_assert_str_eq(proc_stderr(&a), "");
		proc_free(&a);
	}
	tserver_stop_ok(s);
}
END_TEST

/* ---- runner -------------------------------------------------------------- */

static Suite *ctl_peer_suite(void)
{
	Suite *s = suite_create("ctl-peer");
	TCase *tc;

	tc = tcase_with("interactive", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, test_three_peers);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_shared_memory);
	tcase_add_test(tc, test_shrunk_shared_memory);
	tcase_add_test(tc, test_bad_commands);
	tcase_add_test(tc, test_vectors_option);
	suite_add_tcase(s, tc);

	tc = tcase_with("one-shot", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, test_oneshot_ring);
	tcase_add_test(tc, test_exit_after_doorbells);
	tcase_add_test(tc, test_timeout);
	suite_add_tcase(s, tc);

	tc = tcase_with("process", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, test_no_server);
	tcase_add_test(tc, test_usage);
	tcase_add_test(tc, test_server_killed);
	tcase_add_test(tc, test_server_full);
	tcase_add_test(tc, test_violation_said_once);
	tcase_add_test(tc, test_leave_within_greeting);
	tcase_add_test(tc, test_stay_cpu);
	tcase_add_test(tc, test_signals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_tracked_suite(ctl_peer_suite());
}
