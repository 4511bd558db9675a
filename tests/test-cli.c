/* SPDX-License-Identifier: MIT */
/*
 * One grammar for what users type (common/cli.h): sizes, bounded numbers
 * and durations. Each table of inputs runs through the module, then
 * through every program's option that takes that kind of value: each
 * program accepts what the module accepts within the option's bounds,
 * and refuses the rest with the module's sentence after its own name.
 * A few accepted values are then followed to where the program uses them
 * (the server's size in its control socket's info, ivshmem-ctl's offset
 * in its dump, the Unicorn example's size in its mismatch message, a
 * timeout's length).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "cli.h"
#include "common.h"
#include "tproc.h"

#define E60 (UINT64_C(1) << 60)

/* ---- the grammar ------------------------------------------------------- */

/* v: the value with no bounds (0..UINT64_MAX); r: 0, -EINVAL, -ERANGE. */
struct size_case {
	const char *in;
	int r;
	uint64_t v;
};

static const struct size_case size_cases[] = {
	/* What ivshmem-server took before (K..E, either case). */
	{ "4096", 0, 4096 },
	{ "4k", 0, 4096 },
	{ "4K", 0, 4096 },
	{ "4m", 0, 4 << 20 },
	{ "4M", 0, 4 << 20 },
	{ "1G", 0, UINT64_C(1) << 30 },
	{ "2t", 0, UINT64_C(2) << 40 },
	{ "1P", 0, UINT64_C(1) << 50 },
	{ "1e", 0, E60 },
	{ "15E", 0, 15 * E60 },
	{ "010", 0, 10 },
	/* What ivshmem-ctl took before (hex, KiB forms). */
	{ "0x1000", 0, 4096 },
	{ "0X1000", 0, 4096 },
	{ "0xabcdef", 0, 0xabcdef },
	{ "0x10K", 0, 16384 },
	{ "4KiB", 0, 4096 },
	{ "4kib", 0, 4096 },
	{ "4MiB", 0, 4 << 20 },
	{ "1GIB", 0, UINT64_C(1) << 30 },
	{ "1TiB", 0, UINT64_C(1) << 40 },
	/* New to both: B, P and E forms. After 0x, B and E are digits. */
	{ "4096B", 0, 4096 },
	{ "4096b", 0, 4096 },
	{ "1PiB", 0, UINT64_C(1) << 50 },
	{ "1EiB", 0, E60 },
	{ "0x1E", 0, 0x1e },
	{ "0x1B", 0, 0x1b },
	{ "0x1EiB", 0, E60 },
	{ "0x1eib", 0, E60 },
	{ "0", 0, 0 },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "0xffffffffffffffff", 0, UINT64_MAX },
	/* Too large. */
	{ "16E", -ERANGE, 0 },
	{ "16EiB", -ERANGE, 0 },
	{ "18446744073709551616", -ERANGE, 0 },
	{ "99999999999999999999", -ERANGE, 0 },
	{ "0x10000000000000000", -ERANGE, 0 },
	{ "17179869184T", -ERANGE, 0 },
	/* Not sizes. */
	{ "", -EINVAL, 0 },
	{ "x", -EINVAL, 0 },
	{ "12Q", -EINVAL, 0 },
	{ "K", -EINVAL, 0 },
	{ "KiB", -EINVAL, 0 },
	{ "0x", -EINVAL, 0 },
	{ "0xK", -EINVAL, 0 },
	{ "0xEiB", -EINVAL, 0 },
	{ "4KB", -EINVAL, 0 },
	{ "4MB", -EINVAL, 0 },
	{ "4Ki", -EINVAL, 0 },
	{ "4KiBB", -EINVAL, 0 },
	{ "4KK", -EINVAL, 0 },
	{ "4 K", -EINVAL, 0 },
	{ " 4K", -EINVAL, 0 },
	{ "\v4K", -EINVAL, 0 },
	{ "0x\v4", -EINVAL, 0 },
	{ "4K ", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ "1.5M", -EINVAL, 0 },
	{ "1e3", -EINVAL, 0 },
	{ "0x1G0", -EINVAL, 0 },
	{ "0b101", -EINVAL, 0 },
	{ "4\xc3\xa9", -EINVAL, 0 },
};

struct num_case {
	const char *in;
	int r;
	uint64_t v;
};

static const struct num_case num_cases[] = {
	{ "0", 0, 0 },
	{ "1", 0, 1 },
	{ "2", 0, 2 },
	{ "64", 0, 64 },
	{ "65", 0, 65 },
	{ "100", 0, 100 },
	{ "101", 0, 101 },
	{ "010", 0, 10 },
	{ "0x40", 0, 64 },
	{ "0X41", 0, 65 },
	{ "0x0", 0, 0 },
	{ "65536", 0, 65536 },
	{ "65537", 0, 65537 },
	{ "16777216", 0, 16777216 },
	{ "16777217", 0, 16777217 },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "18446744073709551616", -ERANGE, 0 },
	{ "0x10000000000000000", -ERANGE, 0 },
	{ "", -EINVAL, 0 },
	{ "x", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ " 1", -EINVAL, 0 },
	{ "1 ", -EINVAL, 0 },
	/* Whitespace strtoull would skip, also after 0x. */
	{ "\v1", -EINVAL, 0 },
	{ "\t1", -EINVAL, 0 },
	{ "\n1", -EINVAL, 0 },
	{ "\f1", -EINVAL, 0 },
	{ "\r1", -EINVAL, 0 },
	{ "0x\v1", -EINVAL, 0 },
	{ "0x 1", -EINVAL, 0 },
	{ "0x-1", -EINVAL, 0 },
	{ "0x0x1", -EINVAL, 0 },
	{ "1.0", -EINVAL, 0 },
	{ "1k", -EINVAL, 0 },
	{ "0x", -EINVAL, 0 },
	{ "0x1g", -EINVAL, 0 },
	{ "1e2", -EINVAL, 0 },
};

struct sec_case {
	const char *in;
	int r;
	double v;
};

static const struct sec_case sec_cases[] = {
	/* What ivshmem-ctl and the Unicorn example took before. */
	{ "5", 0, 5 },
	{ "0.5", 0, 0.5 },
	{ ".5", 0, 0.5 },
	{ "5.", 0, 5 },
	{ "1e3", 0, 1000 },
	{ "1e-3", 0, 0.001 },
	{ "0x10", 0, 16 },
	{ "31536000", 0, 31536000 },
	/* New: s and ms. */
	{ "5s", 0, 5 },
	{ "0.5s", 0, 0.5 },
	{ "500ms", 0, 0.5 },
	{ "1.5ms", 0, 0.0015 },
	/* Out of range: 0, or more than a year. */
	{ "0", -ERANGE, 0 },
	{ "0.0", -ERANGE, 0 },
	{ "0s", -ERANGE, 0 },
	{ "0ms", -ERANGE, 0 },
	{ "31536001", -ERANGE, 0 },
	{ "31536000001ms", -ERANGE, 0 },
	{ "1e9", -ERANGE, 0 },
	/* Numbers beyond a double: out of range too. */
	{ "1e999", -ERANGE, 0 },
	{ "1e999ms", -ERANGE, 0 },
	{ "1e-400", -ERANGE, 0 },
	/* Not durations. */
	{ "", -EINVAL, 0 },
	{ "soon", -EINVAL, 0 },
	{ "x", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ " 1", -EINVAL, 0 },
	{ "1 ", -EINVAL, 0 },
	{ "5 s", -EINVAL, 0 },
	{ "5m", -EINVAL, 0 },
	{ "5S", -EINVAL, 0 },
	{ "5sec", -EINVAL, 0 },
	{ "5mss", -EINVAL, 0 },
	{ "inf", -EINVAL, 0 },
	{ "nan", -EINVAL, 0 },
	{ ".", -EINVAL, 0 },
	{ "1e", -EINVAL, 0 },
};

START_TEST(test_sizes)
{
	for (size_t i = 0; i < G_N_ELEMENTS(size_cases); i++) {
		const struct size_case *c = &size_cases[i];
		g_autofree char *error = NULL;
		uint64_t v = 12345;
		int r = cli_parse_size("size", c->in, 0, UINT64_MAX, &v,
				       &error);

		g_autofree char *head = g_strdup_printf("invalid size '%s': ",
							c->in);

		ck_assert_msg(r == c->r, "'%s': %d, want %d", c->in, r, c->r);
		if (r == 0) {
			ck_assert_msg(v == c->v, "'%s': %" PRIu64 ", want %"
				      PRIu64, c->in, v, c->v);
			ck_assert_ptr_null(error);
		} else {
			/* One line that quotes the input. */
			const char *q;

			ck_assert_uint_eq(v, 12345);
			/* Control characters are shown escaped (see
			 * test_sentence_one_line). */
			for (q = c->in; *q && !g_ascii_iscntrl(*q); q++)
				;
			if (!*q)
				ck_assert_msg(g_str_has_prefix(error, head),
					      "%s", error);
			else
				ck_assert_msg(g_str_has_prefix(error,
					      "invalid size '"), "%s", error);
			for (q = error; *q; q++)
				ck_assert_msg(!g_ascii_iscntrl(*q), "%s",
					      error);
		}
	}
}
END_TEST

START_TEST(test_size_sentences)
{
	g_autofree char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
	uint64_t v;

	ck_assert_int_eq(cli_parse_size("size", "x", 1, UINT64_MAX, &v, &a),
			 -EINVAL);
	ck_assert_str_eq(a, "invalid size 'x': give a number (decimal, or hexadecimal with 0x) with an optional K, M, G, T, P or E suffix (powers of 1024; or KiB, MiB, ..., or B), for example 4M");
	ck_assert_int_eq(cli_parse_size("size", "0", 1, UINT64_MAX, &v, &b),
			 -ERANGE);
	ck_assert_str_eq(b, "invalid size '0': out of range, give a size of at least 1");
	ck_assert_int_eq(cli_parse_size("length", "8K", 0, 4096, &v, &c),
			 -ERANGE);
	ck_assert_str_eq(c, "invalid length '8K': out of range, give a size of at most 4096");
	ck_assert_int_eq(cli_parse_size("size", "16E", 0, UINT64_MAX, &v, &d),
			 -ERANGE);
	ck_assert_str_eq(d, "invalid size '16E': out of range, give a size of at most 18446744073709551615");
	/* Long input is cut in the sentence. */
	ck_assert_int_eq(cli_parse_size("size",
					"0123456789012345678901234567890123456789x",
					0, UINT64_MAX, &v, &e), -EINVAL);
	ck_assert_msg(g_str_has_prefix(e, "invalid size '0123456789012345678901234567890123456789...': "),
		      "%s", e);
	/* NULL error: no sentence wanted. */
	ck_assert_int_eq(cli_parse_size("size", "x", 0, 1, &v, NULL), -EINVAL);
}
END_TEST

/* Control characters in the input are shown escaped: the sentence stays
 * one line, and a vertical tab shows where it was refused. */
START_TEST(test_sentence_one_line)
{
	g_autofree char *a = NULL, *b = NULL, *c = NULL;
	uint64_t v;
	double d;

	ck_assert_int_eq(cli_parse_size("size", "4M\n", 0, UINT64_MAX, &v,
					&a), -EINVAL);
	ck_assert_msg(g_str_has_prefix(a, "invalid size '4M\\n': "), "%s", a);
	ck_assert_int_eq(cli_parse_u64("count", "\v1\r\t\x01\x7f", 0,
				       UINT64_MAX, &v, &b), -EINVAL);
	ck_assert_msg(g_str_has_prefix(b, "invalid count '\\v1\\r\\t\\x01\\x7f': "),
		      "%s", b);
	ck_assert_int_eq(cli_parse_seconds("timeout", "5\ns", &d, &c),
			 -EINVAL);
	ck_assert_msg(g_str_has_prefix(c, "invalid timeout '5\\ns': "), "%s", c);
	/* Non-ASCII UTF-8 is shown as it is. */
	g_clear_pointer(&a, g_free);
	ck_assert_int_eq(cli_parse_size("size", "4\xc3\xa9", 0, UINT64_MAX,
					&v, &a), -EINVAL);
	ck_assert_msg(g_str_has_prefix(a, "invalid size '4\xc3\xa9': "), "%s", a);
}
END_TEST

START_TEST(test_numbers)
{
	for (size_t i = 0; i < G_N_ELEMENTS(num_cases); i++) {
		const struct num_case *c = &num_cases[i];
		g_autofree char *error = NULL;
		uint64_t v = 12345;
		int r = cli_parse_u64("count", c->in, 0, UINT64_MAX, &v,
				      &error);

		ck_assert_msg(r == c->r, "'%s': %d, want %d", c->in, r, c->r);
		if (r == 0) {
			ck_assert_uint_eq(v, c->v);
			ck_assert_ptr_null(error);
		} else {
			ck_assert_uint_eq(v, 12345);
			ck_assert_ptr_nonnull(error);
		}
	}
}
END_TEST

START_TEST(test_number_sentences)
{
	g_autofree char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	unsigned u = 7;

	ck_assert_int_eq(cli_parse_uint("vector count", "x", 1, 64, &u, &a),
			 -EINVAL);
	ck_assert_str_eq(a, "invalid vector count 'x': give a number from 1 to 64 (decimal, or hexadecimal with 0x)");
	ck_assert_int_eq(cli_parse_uint("vector count", "65", 1, 64, &u, &b),
			 -ERANGE);
	ck_assert_str_eq(b, "invalid vector count '65': out of range, give a number from 1 to 64");
	ck_assert_int_eq(cli_parse_uint("count", "0", 1, UINT_MAX, &u, &c),
			 -ERANGE);
	ck_assert_str_eq(c, "invalid count '0': out of range, give a number from 1 to 4294967295");
	ck_assert_int_eq(cli_parse_uint("count", "4294967296", 0, UINT_MAX,
					&u, &d), -ERANGE);
	ck_assert_str_eq(d, "invalid count '4294967296': out of range, give a number of at most 4294967295");
	ck_assert_uint_eq(u, 7);
	ck_assert_int_eq(cli_parse_uint("count", "0x40", 1, 64, &u, NULL), 0);
	ck_assert_uint_eq(u, 64);
}
END_TEST

START_TEST(test_seconds)
{
	for (size_t i = 0; i < G_N_ELEMENTS(sec_cases); i++) {
		const struct sec_case *c = &sec_cases[i];
		g_autofree char *error = NULL;
		double v = -1;
		int r = cli_parse_seconds("timeout", c->in, &v, &error);

		ck_assert_msg(r == c->r, "'%s': %d, want %d", c->in, r, c->r);
		if (r == 0) {
			ck_assert_msg(fabs(v - c->v) < 1e-9, "'%s': %g, want %g",
				      c->in, v, c->v);
			ck_assert_ptr_null(error);
		} else {
			ck_assert(v == -1);
			ck_assert_ptr_nonnull(error);
		}
	}
}
END_TEST

START_TEST(test_second_sentences)
{
	g_autofree char *a = NULL, *b = NULL;
	double v;

	ck_assert_int_eq(cli_parse_seconds("timeout", "soon", &v, &a), -EINVAL);
	ck_assert_str_eq(a, "invalid timeout 'soon': give a number of seconds, a fraction allowed, with an optional s or ms suffix, for example 5, 0.5 or 500ms");
	ck_assert_int_eq(cli_parse_seconds("timeout", "0", &v, &b), -ERANGE);
	ck_assert_str_eq(b, "invalid timeout '0': out of range, give more than 0 and at most 31536000 seconds (a year)");
}
END_TEST

START_TEST(test_defaults)
{
	/* QEMU's ivshmem-server's, which scripts and QEMU command lines
	 * rely on. */
	ck_assert_str_eq(CLI_DEFAULT_SOCKET, "/tmp/ivshmem_socket");
	ck_assert_str_eq(CLI_DEFAULT_SHM_NAME, "ivshmem");
	ck_assert_uint_eq(CLI_DEFAULT_SHM_SIZE, 4 << 20);
	ck_assert_int_eq(CLI_DEFAULT_VECTORS, 1);
	ck_assert_str_eq(CLI_CONTROL_SUFFIX, ".ctl");
}
END_TEST

/* ---- the programs ------------------------------------------------------- */

enum kind { SIZE, NUMBER, SECONDS };

/*
 * An option of a program. args: its arguments, VALUE standing for the
 * input, and after it one argument the program refuses only once every
 * option has been read (so an accepted value shows as that refusal,
 * not as a start). A refusal is the module's sentence, word for word.
 */
struct option_case {
	const char *label;
	const char *(*path)(void);
	const char *args[12];
	enum kind kind;
	const char *what;
	uint64_t min, max;
	const char *prog;       /* the messages' prefix */
	int status;             /* the exit status of a refusal */
	const char *hint;       /* the line after the sentence, or NULL */
	const char *accepted[2];/* one of them is in stderr when accepted */
};

#define VALUE "\x01"

static const char *ctl_path(void)
{
	return proc_ctl_path();
}

static const char *unicorn_path(void)
{
	return FLAT_UNICORN_PATH;
}

static const char *doorbell_path(void)
{
	return BENCH_DOORBELL_PATH;
}

static const char *mesh_path(void)
{
	return BENCH_MESH_PATH;
}

static const char *flat_mmio_path(void)
{
	return BENCH_FLAT_MMIO_PATH;
}

#define SERVER_ARGS "-F", "-S", "/nonexistent/ivshmem-cli-test", "-M", \
	"ivshmem-cli-test-none", "--no-control"
#define SERVER_HINT "Try 'ivshmem-server --help' for more information.\n"
#define SERVER_EXTRA { "ivshmem-server: unexpected argument 'extra'" }
#define CTL_HINT(cmd) "Try 'ivshmem-ctl " cmd " --help' for more information.\n"
#define CTL_EXTRA { "ivshmem-ctl: unexpected argument 'extra'" }
#define UNICORN_HINT "Try 'ivshmem-flat-unicorn --help' for more information.\n"
#define UNICORN_ACCEPTED { "no firmware given", "give a multiple of 4K" }
#define USAGE_TEXT { "Usage: ", "usage: " }

static const struct option_case options[] = {
	/* Sizes. */
	{ "ivshmem-server -l", server_path,
	  { SERVER_ARGS, "-l", VALUE, "extra" }, SIZE, "size", 1, INT64_MAX,
	  "ivshmem-server", 1, SERVER_HINT, SERVER_EXTRA },
	{ "ivshmem-server --size", server_path,
	  { SERVER_ARGS, "--size", VALUE, "extra" }, SIZE, "size", 1,
	  INT64_MAX, "ivshmem-server", 1, SERVER_HINT, SERVER_EXTRA },
	{ "ivshmem-ctl dump --length", ctl_path,
	  { "dump", "--length", VALUE, "extra" }, SIZE, "length", 0,
	  UINT64_MAX, "ivshmem-ctl", 2, CTL_HINT("dump"), CTL_EXTRA },
	{ "ivshmem-ctl dump --offset", ctl_path,
	  { "dump", "--offset", VALUE, "extra" }, SIZE, "offset", 0,
	  UINT64_MAX, "ivshmem-ctl", 2, CTL_HINT("dump"), CTL_EXTRA },
	{ "ivshmem-ctl read --length", ctl_path,
	  { "read", "--length", VALUE, "extra" }, SIZE, "length", 0,
	  UINT64_MAX, "ivshmem-ctl", 2, CTL_HINT("read"), CTL_EXTRA },
	{ "ivshmem-ctl write --offset", ctl_path,
	  { "write", "--offset", VALUE, "00", "extra" }, SIZE, "offset", 0,
	  UINT64_MAX, "ivshmem-ctl", 2, CTL_HINT("write"), CTL_EXTRA },
	{ "ivshmem-ctl channel --line", ctl_path,
	  { "channel", "list", "--line", VALUE, "extra" }, SIZE, "--line", 0,
	  4096, "ivshmem-ctl", 2, CTL_HINT("channel"), CTL_EXTRA },
	{ "ivshmem-flat-unicorn --shm-size", unicorn_path,
	  { "--shm-size", VALUE }, SIZE, "size", 1, INT64_MAX,
	  "ivshmem-flat-unicorn", 2, UNICORN_HINT, UNICORN_ACCEPTED },
	/* Numbers. */
	{ "ivshmem-server -n", server_path,
	  { SERVER_ARGS, "-n", VALUE, "extra" }, NUMBER, "vector count", 1,
	  IVSHMEM_MAX_VECTORS, "ivshmem-server", 1, SERVER_HINT,
	  SERVER_EXTRA },
	{ "ivshmem-server --max-peers", server_path,
	  { SERVER_ARGS, "--max-peers", VALUE, "extra" }, NUMBER,
	  "peer limit", 1, IVSHMEM_MAX_PEERS, "ivshmem-server", 1,
	  SERVER_HINT, SERVER_EXTRA },
	{ "ivshmem-server --queue-limit", server_path,
	  { SERVER_ARGS, "--queue-limit", VALUE, "extra" }, NUMBER,
	  "queue limit", 1, 1u << 24, "ivshmem-server", 1, SERVER_HINT,
	  SERVER_EXTRA },
	{ "ivshmem-ctl peer --vectors", ctl_path,
	  { "peer", "--vectors", VALUE, "extra" }, NUMBER, "vector count", 0,
	  IVSHMEM_MAX_VECTORS, "ivshmem-ctl", 2, CTL_HINT("peer"),
	  CTL_EXTRA },
	{ "ivshmem-ctl peer --wait-peers", ctl_path,
	  { "peer", "--wait-peers", VALUE, "extra" }, NUMBER, "peer count", 0,
	  IVSHMEM_MAX_PEERS - 1, "ivshmem-ctl", 2, CTL_HINT("peer"),
	  CTL_EXTRA },
	{ "ivshmem-ctl watch --count", ctl_path,
	  { "watch", "--count", VALUE, "extra" }, NUMBER, "event count", 0,
	  UINT64_MAX, "ivshmem-ctl", 2, CTL_HINT("watch"), CTL_EXTRA },
	{ "ivshmem-ctl channel --end", ctl_path,
	  { "channel", "list", "--end", VALUE, "extra" }, NUMBER, "--end", 0,
	  1, "ivshmem-ctl", 2, CTL_HINT("channel"), CTL_EXTRA },
	{ "ivshmem-ctl channel --vector", ctl_path,
	  { "channel", "list", "--vector", VALUE, "extra" }, NUMBER,
	  "--vector", 0, IVSHMEM_MAX_VECTORS - 1, "ivshmem-ctl", 2,
	  CTL_HINT("channel"), CTL_EXTRA },
	{ "bench-doorbell --vectors", doorbell_path,
	  { "--vectors", VALUE, "extra" }, NUMBER, "vector count", 1,
	  IVSHMEM_MAX_VECTORS, "bench-doorbell", 2, NULL, USAGE_TEXT },
	{ "bench-doorbell --iterations", doorbell_path,
	  { "--iterations", VALUE, "extra" }, NUMBER, "iteration count", 1,
	  100000000, "bench-doorbell", 2, NULL, USAGE_TEXT },
	{ "bench-doorbell --warmup", doorbell_path,
	  { "--warmup", VALUE, "extra" }, NUMBER, "warm-up count", 0,
	  100000000, "bench-doorbell", 2, NULL, USAGE_TEXT },
	{ "bench-doorbell --rounds", doorbell_path,
	  { "--rounds", VALUE, "extra" }, NUMBER, "round count", 1, 1000,
	  "bench-doorbell", 2, NULL, USAGE_TEXT },
	{ "bench-mesh --peers", mesh_path,
	  { "--peers", VALUE, "extra" }, NUMBER, "peer count", 1, 8192,
	  "bench-mesh", 2, NULL, USAGE_TEXT },
	{ "bench-mesh --vectors", mesh_path,
	  { "--vectors", VALUE, "extra" }, NUMBER, "vector count", 1,
	  IVSHMEM_MAX_VECTORS, "bench-mesh", 2, NULL, USAGE_TEXT },
	{ "bench-mesh --repeat", mesh_path,
	  { "--repeat", VALUE, "extra" }, NUMBER, "repeat count", 1, 100,
	  "bench-mesh", 2, NULL, USAGE_TEXT },
	{ "bench-flat-mmio --n", flat_mmio_path,
	  { "--n", VALUE, "--extra" }, NUMBER, "access count", 1, UINT64_MAX,
	  "bench-flat-mmio", 2, NULL, USAGE_TEXT },
	{ "bench-flat-mmio --rounds", flat_mmio_path,
	  { "--rounds", VALUE, "--extra" }, NUMBER, "round count", 1, 64,
	  "bench-flat-mmio", 2, NULL, USAGE_TEXT },
	/* Durations. */
	{ "ivshmem-flat-unicorn --timeout", unicorn_path,
	  { "--timeout", VALUE }, SECONDS, "timeout", 0, 0,
	  "ivshmem-flat-unicorn", 2, UNICORN_HINT, UNICORN_ACCEPTED },
	{ "ivshmem-ctl watch --timeout", ctl_path,
	  { "watch", "--timeout", VALUE, "extra" }, SECONDS, "timeout", 0, 0,
	  "ivshmem-ctl", 2, CTL_HINT("watch"), CTL_EXTRA },
	{ "ivshmem-ctl peer --timeout", ctl_path,
	  { "peer", "--timeout", VALUE, "extra" }, SECONDS, "timeout", 0, 0,
	  "ivshmem-ctl", 2, CTL_HINT("peer"), CTL_EXTRA },
};

struct run {
	int status;             /* -1: killed by a signal */
	char *out, *err;
};

/* Run path with args (NULL-terminated), stdin /dev/null, both outputs
 * read to the end. */
static void run(const char *path, const char *const *args, struct run *r)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	int wait_status = 0;

	g_ptr_array_add(argv, (gpointer)path);
	for (size_t i = 0; args[i]; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	ck_assert_msg(g_spawn_sync(NULL, (char **)argv->pdata, NULL,
				   G_SPAWN_DEFAULT, NULL, NULL, &r->out,
				   &r->err, &wait_status, &error),
		      "cannot run %s: %s", path, error ? error->message : "");
	r->status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

static void run_free(struct run *r)
{
	g_free(r->out);
	g_free(r->err);
}

/* The module's verdict on in for the option: 0, or <0 with *error. */
static int module(const struct option_case *o, const char *in, char **error)
{
	uint64_t v;
	double d;

	switch (o->kind) {
	case SIZE:
		return cli_parse_size(o->what, in, o->min, o->max, &v, error);
	case NUMBER:
		return cli_parse_u64(o->what, in, o->min, o->max, &v, error);
	default:
		return cli_parse_seconds(o->what, in, &d, error);
	}
}

/* The option given in: accepted or refused as the module says, refused
 * with its sentence. */
static void check_option(const struct option_case *o, const char *in)
{
	g_autofree char *error = NULL, *want = NULL;
	const char *args[G_N_ELEMENTS(o->args) + 1] = { NULL };
	struct run r;
	int m = module(o, in, &error);

	for (size_t i = 0; i < G_N_ELEMENTS(o->args) && o->args[i]; i++)
		args[i] = strcmp(o->args[i], VALUE) == 0 ? in : o->args[i];
	run(o->path(), args, &r);
	if (m == 0) {
		ck_assert_msg(strstr(r.err, o->accepted[0]) ||
			      (o->accepted[1] && strstr(r.err, o->accepted[1])),
			      "%s '%s': should be accepted, stderr: %s",
			      o->label, in, r.err);
	} else {
		want = g_strdup_printf("%s: %s\n%s", o->prog, error,
				       o->hint ? o->hint : "");
		ck_assert_msg(r.status == o->status,
			      "%s '%s': status %d, want %d (stderr: %s)",
			      o->label, in, r.status, o->status, r.err);
		ck_assert_msg(strcmp(r.err, want) == 0,
			      "%s '%s':\nstderr: %s\nwant:   %s", o->label, in,
			      r.err, want);
		ck_assert_str_eq(r.out, "");
	}
	run_free(&r);
}

START_TEST(test_option)
{
	const struct option_case *o = &options[_i];

	if (!*o->path()) {
		printf("%s: not built, skipped\n", o->label);
		return;
	}
	switch (o->kind) {
	case SIZE:
		for (size_t i = 0; i < G_N_ELEMENTS(size_cases); i++)
			check_option(o, size_cases[i].in);
		break;
	case NUMBER:
		for (size_t i = 0; i < G_N_ELEMENTS(num_cases); i++)
			check_option(o, num_cases[i].in);
		break;
	case SECONDS:
		for (size_t i = 0; i < G_N_ELEMENTS(sec_cases); i++)
			check_option(o, sec_cases[i].in);
		break;
	}
}
END_TEST

/* ---- accepted values, used --------------------------------------------- */

/* Some sizes that ivshmem-server took before, and some it did not. */
static const char *const server_sizes[] = {
	"12288", "8k", "1M", "4MiB", "0x3000", "0x10K", "1GiB",
};

/* The server creates the size it was given, as its control socket says. */
START_TEST(test_server_size)
{
	for (size_t i = 0; i < G_N_ELEMENTS(server_sizes); i++) {
		const char *in = server_sizes[i];
		const char *sargs[] = { "--memfd", "--exact-size", "-l", in,
					NULL };
		struct tserver *s = tserver_start_tracked(sargs);
		g_autofree char *want = NULL;
		uint64_t v;
		struct run r;

		ck_assert_msg(s, "no server with -l %s", in);
		ck_assert_int_eq(cli_parse_size("size", in, 1, INT64_MAX, &v,
						NULL), 0);
		const char *cargs[] = { "info", "-S", s->sock, "--json", NULL };

		run(proc_ctl_path(), cargs, &r);
		ck_assert_msg(r.status == 0, "info: %s", r.err);
		want = g_strdup_printf("\"size\":%" PRIu64 ",", v);
		ck_assert_msg(strstr(r.out, want), "-l %s: %s, want %s", in,
			      r.out, want);
		run_free(&r);
		ck_assert_int_eq(tserver_stop(s), 0);
	}
}
END_TEST

/* ivshmem-ctl dumps from the offset it was given (the first line's
 * address), for every accepted offset inside the shared memory, and
 * refuses one beyond it at run time. */
START_TEST(test_ctl_offset)
{
	const char *sargs[] = { "--memfd", NULL };
	struct tserver *s = tserver_start_tracked(sargs);

	ck_assert(s);
	for (size_t i = 0; i < G_N_ELEMENTS(size_cases); i++) {
		const struct size_case *c = &size_cases[i];
		const char *args[] = { "dump", "-S", s->sock, "--offset", c->in,
				       "--length", "1", NULL };
		g_autofree char *want = NULL;
		struct run r;

		if (c->r < 0)
			continue;
		run(proc_ctl_path(), args, &r);
		if (c->v < CLI_DEFAULT_SHM_SIZE) {
			want = g_strdup_printf("%08" PRIx64 " ", c->v);
			ck_assert_msg(r.status == 0 &&
				      g_str_has_prefix(r.out, want),
				      "--offset %s: %d %s%s, want %s", c->in,
				      r.status, r.out, r.err, want);
		} else {
			ck_assert_msg(r.status == 1,
				      "--offset %s: %d %s%s, want status 1",
				      c->in, r.status, r.out, r.err);
		}
		run_free(&r);
	}
	ck_assert_int_eq(tserver_stop(s), 0);
}
END_TEST

/* The Unicorn example's device has the size it was given: it says so
 * when the server's differs. */
START_TEST(test_unicorn_size)
{
	static const char *const sizes[] = { "8k", "0x3000", "1MiB", "2M" };
	const char *sargs[] = { "--memfd", "--exact-size", "-l", "4K", NULL };
	struct tserver *s;

	if (!*FLAT_UNICORN_PATH) {
		printf("the Unicorn example is not built: skipped\n");
		return;
	}
	s = tserver_start_tracked(sargs);
	ck_assert(s);
	for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
		const char *args[] = { "-S", s->sock, "--shm-size", sizes[i],
				       "--timeout", "30", FLAT_UNICORN_FIRMWARE,
				       NULL };
		g_autofree char *want = NULL;
		uint64_t v;
		struct run r;

		ck_assert_int_eq(cli_parse_size("size", sizes[i], 1, INT64_MAX,
						&v, NULL), 0);
		run(FLAT_UNICORN_PATH, args, &r);
		want = g_strdup_printf("has 4096 bytes of shared memory and the device %" PRIu64 " (--shm-size)",
				       v);
		ck_assert_msg(r.status == 1 && strstr(r.err, want),
			      "--shm-size %s: %d %s, want %s", sizes[i],
			      r.status, r.err, want);
		run_free(&r);
	}
	ck_assert_int_eq(tserver_stop(s), 0);
}
END_TEST

/* A timeout lasts what it says, with or without its unit. */
START_TEST(test_ctl_timeout)
{
	static const char *const timeouts[] = { "0.3", "300ms", "0.3s" };
	const char *sargs[] = { "--memfd", NULL };
	struct tserver *s = tserver_start_tracked(sargs);

	ck_assert(s);
	for (size_t i = 0; i < G_N_ELEMENTS(timeouts); i++) {
		const char *args[] = { "watch", "-S", s->sock, "--timeout",
				       timeouts[i], NULL };
		double t0 = now_seconds(), t;
		struct run r;

		run(proc_ctl_path(), args, &r);
		t = now_seconds() - t0;
		ck_assert_msg(r.status == 0, "--timeout %s: %d %s",
			      timeouts[i], r.status, r.err);
		/* Generous above: the machine may be loaded. */
		ck_assert_msg(t >= 0.29 && t < 10, "--timeout %s: %.3f s",
			      timeouts[i], t);
		run_free(&r);
	}
	ck_assert_int_eq(tserver_stop(s), 0);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_with("grammar", 0, NULL);

	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_size_sentences);
	tcase_add_test(tc, test_sentence_one_line);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_number_sentences);
	tcase_add_test(tc, test_seconds);
	tcase_add_test(tc, test_second_sentences);
	tcase_add_test(tc, test_defaults);
	suite_add_tcase(s, tc);

	tc = tcase_with("programs", 120, tserver_reap_tracked);
	tcase_add_loop_test(tc, test_option, 0, G_N_ELEMENTS(options));
	suite_add_tcase(s, tc);

	tc = tcase_with("values", 120, tserver_reap_tracked);
	tcase_add_test(tc, test_server_size);
	tcase_add_test(tc, test_ctl_offset);
	tcase_add_test(tc, test_unicorn_size);
	tcase_add_test(tc, test_ctl_timeout);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_tracked_suite(cli_suite());
}
