/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl dump, read and write: the shared memory, through the fd the
 * server attaches to its reply to the "shm" request (or, with no control
 * socket, the one it gives a peer), mapped here.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "ctl.h"
#include "ivshmem.h"

/* --json holds the data twice in hex, and json-glib copies it: keep that
 * to a size any machine has the memory for. */
#define MAX_JSON_LENGTH (64u << 20)

enum {
	OPT_OFFSET = CTL_OPT_OWN,
	OPT_LENGTH,
	OPT_ALL,
};

struct shm_opts {
	struct ctl_opts o;
	uint64_t offset;
	uint64_t length;
	bool length_given;
	bool all;               /* dump: no '*' lines */
	const char *hex;        /* write: the bytes, or NULL for stdin */
};

/* The shared memory, mapped whole. */
struct shm {
	uint8_t *addr;          /* NULL when size is 0 */
	uint64_t size;
	int fd;                 /* kept to tell the size it shrank to; or -1 */
	struct ivshmem_peer *pci;       /* --pci: the device, which maps it */
};

/* Copies go through a buffer of this size (a multiple of 16, so that dump
 * lines stay whole). */
#define COPY_CHUNK 65536u

/* ---- help and options ------------------------------------------------------ */

#define SHM_FALLBACK_READ "to read the shared memory"
#define SHM_FALLBACK_WRITE "to write into the shared memory"

static void size_help(void)
{
	printf(
"\n"
"Offsets and lengths are decimal, or hexadecimal with 0x, optionally\n"
"followed by K, M, G, T, P or E (powers of 1024: 4K is 4096; KiB, MiB,\n"
"... and B too), as every ivshmem program reads sizes. They are checked\n"
"against the size of the shared memory.\n");
}

static void shm_exit_help(void)
{
	ctl_common_help();
	size_help();
	printf("\n"
"Exit status: 0 on success; 1 on a runtime error (the server cannot be\n"
"reached, or the range is outside the shared memory); 2 on a usage error.\n"
"\n"
"The shared memory's fd comes with the server's reply on its control\n"
"socket. Without one (QEMU's server, or ivshmem-server --no-control) and\n"
"with no -C, it joins the server as a peer instead to get it, and says so\n"
"on standard error.\n");
}

static void dump_help(void)
{
	printf(
"Usage: ivshmem-ctl dump [OPTION]...\n"
"Show the shared memory as hexdump -C does: each line the offset, 16\n"
"bytes in hex in two groups of 8, and the same bytes as ASCII between\n"
"bars ('.' for what is not printable); a run of lines equal to the one\n"
"before is shown as one '*' line; the last line is the offset where the\n"
"dump ends. Offsets are those in the shared memory.\n"
"With --json: {\"offset\":OFFSET,\"length\":LENGTH,\"hex\":\"HEX\"} (at most %u MiB).\n"
"\n"
"      --offset=N         start at byte N (default 0)\n"
"      --length=N         show N bytes (default: up to the end)\n"
"      --all              show every line, no '*'\n",
	       MAX_JSON_LENGTH >> 20);
	shm_exit_help();
}

static void read_help(void)
{
	printf(
"Usage: ivshmem-ctl read [OPTION]...\n"
"Copy bytes of the shared memory to standard output as they are.\n"
"With --json: {\"offset\":OFFSET,\"length\":LENGTH,\"hex\":\"HEX\"} (at most %u MiB).\n"
"\n"
"      --offset=N         start at byte N (default 0)\n"
"      --length=N         copy N bytes (default: up to the end)\n",
	       MAX_JSON_LENGTH >> 20);
	shm_exit_help();
}

static void write_help(void)
{
	printf(
"Usage: ivshmem-ctl write [OPTION]... [HEX]\n"
"Write bytes into the shared memory: those given as HEX, in memory order\n"
"(deadbeef or 0xdeadbeef writes the bytes de ad be ef), or without HEX\n"
"the bytes of standard input up to its end. Nothing is written when they\n"
"do not fit. Prints 'wrote LENGTH bytes at offset OFFSET'.\n"
"With --json: {\"offset\":OFFSET,\"length\":LENGTH}.\n"
"\n"
"      --offset=N         write at byte N (default 0)\n");
	shm_exit_help();
}

static const struct option dump_options[] = {
	CTL_COMMON_LONGOPTS,
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "length", required_argument, NULL, OPT_LENGTH },
	{ "all", no_argument, NULL, OPT_ALL },
	{ NULL, 0, NULL, 0 },
};

/* read takes the first three, write the first two. */
static const struct option read_options[] = {
	CTL_COMMON_LONGOPTS,
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "length", required_argument, NULL, OPT_LENGTH },
	{ NULL, 0, NULL, 0 },
};

static const struct option write_options[] = {
	CTL_COMMON_LONGOPTS,
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ NULL, 0, NULL, 0 },
};

static int bad_number(const char *command, const char *what, const char *s)
{
	return ctl_size_usage_error(command, what, s, UINT64_MAX);
}

/* CTL_EXIT_OK to run, -1 after --help, else the status to exit with. */
static int parse_options(const char *command, const struct option *longopts,
			 void (*help)(void), const struct ctl_global *g,
			 int argc, char **argv, struct shm_opts *s)
{
	int c;

	memset(s, 0, sizeof(*s));
	ctl_opts_init(&s->o, g);
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_COMMON_SHORTOPTS, longopts,
				NULL)) != -1) {
		switch (c) {
		case 'h':
			help();
			return -1;
		case OPT_OFFSET:
			if (ctl_parse_size(optarg, UINT64_MAX, &s->offset) < 0)
				return bad_number(command, "offset", optarg);
			break;
		case OPT_LENGTH:
			if (ctl_parse_size(optarg, UINT64_MAX, &s->length) < 0)
				return bad_number(command, "length", optarg);
			s->length_given = true;
			break;
		case OPT_ALL:
			s->all = true;
			break;
		default:
			if (ctl_common_option(command, c, argv, &s->o) !=
			    CTL_EXIT_OK)
				return CTL_EXIT_USAGE;
		}
	}
	if (strcmp(command, "write") == 0 && optind < argc)
		s->hex = argv[optind++];
	if (optind < argc)
		return ctl_usage_error(command, "unexpected argument '%s'",
				       argv[optind]);
	return ctl_opts_check(command, &s->o);
}

/* ---- the shared memory ------------------------------------------------------ */

/* Ask the server for the shared memory and map it. CTL_EXIT_OK, or an
 * exit status after saying why. */
static int shm_open_map(const struct ctl_opts *o, const char *fallback,
			bool writable, struct shm *m)
{
	struct ctl_conn *c;
	JsonNode *reply;
	JsonObject *r;
	struct stat st;
	gint64 size = -1;
	int fd = -1, status;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (o->pci) {
		const struct ivshmem_peer_config config = { 0 };
		const struct ivshmem_peer_ops ops = { 0 };

		if (ivshmem_peer_new(&config, &ops, NULL, &m->pci) < 0) {
			ctl_error("cannot create a peer: out of memory or fds");
			return CTL_EXIT_FAILURE;
		}
		status = ctl_pci_open(o, m->pci);
		if (status == CTL_EXIT_OK)
			ivshmem_peer_get_shm(m->pci, (void **)&m->addr, &m->size);
		ctl_guard_region(m->addr, (size_t)m->size);
		return status;
	}
	status = ctl_conn_open(o, fallback, &c);
	if (status != CTL_EXIT_OK)
		return status;
	status = ctl_conn_call(c, ctl_request_new("shm"), &reply, &fd);
	/* The fd is all that is needed: a peer leaves at once. */
	ctl_conn_close(c);
	if (status != CTL_EXIT_OK)
		return status;

	r = json_node_get_object(reply);
	if (json_object_has_member(r, "size") &&
	    json_node_get_value_type(json_object_get_member(r, "size")) ==
	    G_TYPE_INT64)
		size = json_object_get_int_member(r, "size");
	json_node_unref(reply);
	if (fd < 0) {
		ctl_error("the server sent no shared-memory fd with its reply");
		return CTL_EXIT_FAILURE;
	}
	/* Check the fd before mapping: a short file would fault (SIGBUS). */
	if (size < 0) {
		ctl_error("the server's reply gives no shared-memory size");
		status = CTL_EXIT_FAILURE;
	} else if (fstat(fd, &st) < 0) {
		ctl_error("cannot look at the shared-memory fd: %s",
			  g_strerror(errno));
		status = CTL_EXIT_FAILURE;
	} else if (!S_ISREG(st.st_mode)) {
		ctl_error("the fd the server sent is not shared memory (not a regular file or memfd)");
		status = CTL_EXIT_FAILURE;
	} else if ((uint64_t)st.st_size < (uint64_t)size) {
		ctl_error("the shared memory is %jd bytes, less than the %" G_GINT64_FORMAT " the server says",
			  (intmax_t)st.st_size, size);
		status = CTL_EXIT_FAILURE;
	} else if (size > 0 && (uint64_t)size > SIZE_MAX) {
		ctl_error("the shared memory (%" G_GINT64_FORMAT " bytes) is too large to map here",
			  size);
		status = CTL_EXIT_FAILURE;
	} else if (size > 0) {
		void *p = mmap(NULL, (size_t)size,
			       PROT_READ | (writable ? PROT_WRITE : 0),
			       MAP_SHARED, fd, 0);

		if (p == MAP_FAILED) {
			ctl_error("cannot map the shared memory (%" G_GINT64_FORMAT " bytes%s): %s",
				  size, writable ? ", read-write" : "",
				  g_strerror(errno));
			status = CTL_EXIT_FAILURE;
		} else {
			m->addr = p;
		}
	}
	if (status == CTL_EXIT_OK) {
		m->fd = fd;
		m->size = (uint64_t)size;
		ctl_guard_region(m->addr, (size_t)m->size);
	} else {
		close(fd);
	}
	return status;
}

static void shm_unmap(struct shm *m)
{
	if (m->pci)
		ivshmem_peer_free(m->pci);
	else if (m->addr)
		munmap(m->addr, (size_t)m->size);
	if (m->fd >= 0)
		close(m->fd);
	ctl_guard_region(NULL, 0);
	m->pci = NULL;
	m->addr = NULL;
	m->fd = -1;
}

/* A copy of length bytes at offset stopped after done: the shared memory
 * shrank (another peer truncated it). Say so, and to what size. */
static int shrank(const struct shm *m, const char *verb, uint64_t offset,
		  uint64_t done, uint64_t length)
{
	struct stat st;
	char now[48] = "";

	if (m->fd >= 0 && fstat(m->fd, &st) == 0)
		snprintf(now, sizeof(now), " to %jd bytes", (intmax_t)st.st_size);
	ctl_error("the shared memory shrank%s while in use: another peer truncated it (ivshmem-server --memfd seals it against that); %" PRIu64 " of the %" PRIu64 " bytes at offset %" PRIu64 " were %s",
		  now, done, length, offset, verb);
	return CTL_EXIT_FAILURE;
}

/* Is [offset, offset + length) inside? Else say so. */
static bool check_range(const struct shm *m, const char *verb,
			uint64_t offset, uint64_t length)
{
	if (offset > m->size) {
		ctl_error("offset %" PRIu64 " is past the end of the shared memory (%" PRIu64 " bytes)",
			  offset, m->size);
		return false;
	}
	if (length > m->size - offset) {
		ctl_error("cannot %s %" PRIu64 " bytes at offset %" PRIu64 ": the shared memory has %" PRIu64 " bytes, %" PRIu64 " from there",
			  verb, length, offset, m->size, m->size - offset);
		return false;
	}
	return true;
}

/* {"offset":..,"length":..,"hex":".."} on stdout. */
static int print_hex_json(const uint8_t *p, uint64_t offset, uint64_t length)
{
	static const char digits[] = "0123456789abcdef";
	JsonBuilder *b;
	JsonNode *n;
	char *hex;
	int r;

	hex = g_malloc(2 * (size_t)length + 1);
	for (uint64_t i = 0; i < length; i++) {
		hex[2 * i] = digits[p[i] >> 4];
		hex[2 * i + 1] = digits[p[i] & 15];
	}
	hex[2 * length] = '\0';
	b = json_builder_new();
	json_builder_begin_object(b);
	jsonl_add_int(b, "offset", (gint64)offset);
	jsonl_add_int(b, "length", (gint64)length);
	jsonl_add_string(b, "hex", hex);
	json_builder_end_object(b);
	g_free(hex);
	n = ctl_json_take(b);
	r = ctl_print_json(n);
	json_node_unref(n);
	return r < 0 ? ctl_stdout_error(r) : CTL_EXIT_OK;
}

/* ---- dump and read ------------------------------------------------------------ */

/* One hexdump -C line of n (1..16) bytes at offset. */
static void dump_line(const uint8_t *p, uint64_t offset, size_t n)
{
	char line[96];
	int len = snprintf(line, sizeof(line), "%08" PRIx64 " ", offset);

	for (size_t i = 0; i < 16; i++) {
		if (i == 8)
			line[len++] = ' ';
		if (i < n)
			len += snprintf(line + len, sizeof(line) - (size_t)len,
					" %02x", p[i]);
		else
			len += snprintf(line + len, sizeof(line) - (size_t)len,
					"   ");
	}
	len += snprintf(line + len, sizeof(line) - (size_t)len, "  |");
	for (size_t i = 0; i < n; i++)
		line[len++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
	line[len++] = '|';
	line[len++] = '\n';
	fwrite(line, 1, (size_t)len, stdout);
}

/* A dump shown a buffer at a time: the line before, for the '*' lines. */
struct dumper {
	bool all, starred, have_prev;
	uint8_t prev[16];
};

/* length bytes at offset, a multiple of 16 but for the last buffer. */
static void dump(struct dumper *d, const uint8_t *p, uint64_t offset,
		 size_t length)
{
	for (size_t i = 0; i < length && !ferror(stdout); i += 16) {
		size_t n = length - i < 16 ? length - i : 16;

		/* As hexdump: a whole line equal to the one before. */
		if (!d->all && d->have_prev && n == 16 &&
		    memcmp(p + i, d->prev, 16) == 0) {
			if (!d->starred)
				fputs("*\n", stdout);
			d->starred = true;
			continue;
		}
		d->starred = false;
		dump_line(p + i, offset + i, n);
		memcpy(d->prev, p + i, n);
		d->have_prev = n == 16;
	}
}

/* The range copied out of the shared memory: written raw or dumped, a
 * buffer at a time, so that a region that shrinks stops the output where
 * it did. */
static int show_stream(const struct shm *m, bool as_dump, bool all,
		       uint64_t offset, uint64_t length)
{
	struct dumper d = { .all = all };
	uint8_t *buf = g_malloc(COPY_CHUNK);
	uint64_t done = 0;
	int status;

	while (done < length && !ferror(stdout)) {
		size_t n = length - done < COPY_CHUNK ?
			   (size_t)(length - done) : COPY_CHUNK;
		size_t got = ctl_guard_copy(buf, m->addr + offset + done, n,
					    false);

		if (as_dump)
			dump(&d, buf, offset + done, got);
		else
			fwrite(buf, 1, got, stdout);
		done += got;
		if (got < n)
			break;
	}
	g_free(buf);
	if (done < length && !ferror(stdout)) {
		fflush(stdout);
		return shrank(m, "shown", offset, done, length);
	}
	if (as_dump)
		printf("%08" PRIx64 "\n", offset + length);
	status = ctl_stdout_status();
	return status;
}

static int show(const char *command, void (*help)(void),
		const struct option *longopts, const struct ctl_global *g,
		int argc, char **argv)
{
	struct shm_opts s;
	struct shm m;
	uint64_t length;
	int status = parse_options(command, longopts, help, g, argc, argv, &s);

	if (status != CTL_EXIT_OK)
		return status < 0 ? CTL_EXIT_OK : status;
	status = shm_open_map(&s.o, SHM_FALLBACK_READ, false, &m);
	if (status != CTL_EXIT_OK)
		return status;
	length = s.length_given ? s.length :
		 s.offset <= m.size ? m.size - s.offset : 0;
	if (!check_range(&m, "read", s.offset, length)) {
		shm_unmap(&m);
		return CTL_EXIT_FAILURE;
	}
	if (s.o.json && length > MAX_JSON_LENGTH) {
		ctl_error("--json shows at most %u MiB, not %" PRIu64 " bytes: give a --length, or read without --json for the raw bytes",
			  MAX_JSON_LENGTH >> 20, length);
		status = CTL_EXIT_FAILURE;
	} else if (s.o.json) {
		/* The length fits a size_t: it is at most MAX_JSON_LENGTH. */
		uint8_t *buf = g_malloc(length ? (size_t)length : 1);
		size_t got = length ? ctl_guard_copy(buf, m.addr + s.offset,
						     (size_t)length, false) : 0;

		if (got < length)
			status = shrank(&m, "shown", s.offset, got, length);
		else
			status = print_hex_json(buf, s.offset, length);
		g_free(buf);
	} else {
		status = show_stream(&m, command[0] == 'd', s.all, s.offset,
				     length);
	}
	shm_unmap(&m);
	return status;
}

int ctl_dump_run(const struct ctl_global *g, int argc, char **argv)
{
	return show("dump", dump_help, dump_options, g, argc, argv);
}

int ctl_read_run(const struct ctl_global *g, int argc, char **argv)
{
	return show("read", read_help, read_options, g, argc, argv);
}

/* ---- write -------------------------------------------------------------------- */

/* HEX (with an optional 0x) as bytes; NULL after a usage error. */
static GByteArray *parse_hex(const char *s)
{
	GByteArray *b = ctl_parse_hex(s);
	char *shown;

	if (b)
		return b;
	shown = ctl_shorten(s);
	ctl_usage_error("write", "'%s' is not hex bytes: give an even number of hex digits, like deadbeef or 0xdeadbeef",
			shown);
	g_free(shown);
	return NULL;
}

/*
 * Standard input up to its end, but no more than room bytes: the whole
 * input is read before anything is written, so that input too long for
 * the shared memory changes nothing. NULL after saying why.
 */
static GByteArray *read_stdin(const struct shm *m, uint64_t offset)
{
	uint64_t room = m->size - offset;
	GByteArray *b = g_byte_array_new();
	uint8_t buf[65536];

	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ctl_error("cannot read standard input: %s; nothing was written",
				  g_strerror(errno));
			break;
		}
		if (n == 0)
			return b;
		if ((uint64_t)n > G_MAXUINT - b->len) {
			ctl_error("the input is longer than %u bytes, the most one write takes; nothing was written",
				  G_MAXUINT);
			break;
		}
		if ((uint64_t)n > room - b->len) {
			ctl_error("the input is longer than the %" PRIu64 " bytes from offset %" PRIu64 " to the end of the shared memory (%" PRIu64 " bytes); nothing was written",
				  room, offset, m->size);
			break;
		}
		g_byte_array_append(b, buf, (guint)n);
	}
	g_byte_array_unref(b);
	return NULL;
}

int ctl_write_run(const struct ctl_global *g, int argc, char **argv)
{
	struct shm_opts s;
	GByteArray *data = NULL;
	struct shm m;
	int status = parse_options("write", write_options, write_help, g,
				   argc, argv, &s);

	if (status != CTL_EXIT_OK)
		return status < 0 ? CTL_EXIT_OK : status;
	/* A bad HEX is a usage error: before asking the server. */
	if (s.hex && !(data = parse_hex(s.hex)))
		return CTL_EXIT_USAGE;
	status = shm_open_map(&s.o, SHM_FALLBACK_WRITE, true, &m);
	if (status != CTL_EXIT_OK)
		goto out;
	if (!check_range(&m, "write", s.offset, data ? data->len : 0)) {
		status = CTL_EXIT_FAILURE;
		goto out;
	}
	if (!data && !(data = read_stdin(&m, s.offset))) {
		status = CTL_EXIT_FAILURE;
		goto out;
	}
	if (data->len) {
		size_t done = ctl_guard_copy(m.addr + s.offset, data->data,
					     data->len, true);

		if (done < data->len) {
			status = shrank(&m, "written", s.offset, done,
					data->len);
			goto out;
		}
	}
	if (s.o.json) {
		JsonBuilder *b = json_builder_new();
		JsonNode *n;
		int r;

		json_builder_begin_object(b);
		jsonl_add_int(b, "offset", (gint64)s.offset);
		jsonl_add_int(b, "length", (gint64)data->len);
		json_builder_end_object(b);
		n = ctl_json_take(b);
		r = ctl_print_json(n);
		json_node_unref(n);
		if (r < 0)
			status = ctl_stdout_error(r);
	} else {
		printf("wrote %u byte%s at offset %" PRIu64 "\n", data->len,
		       data->len == 1 ? "" : "s", s.offset);
		status = ctl_stdout_status();
	}
out:
	shm_unmap(&m);
	if (data)
		g_byte_array_unref(data);
	return status;
}
