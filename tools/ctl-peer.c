/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl peer: join a server as a peer (like QEMU's ivshmem-client),
 * print one line per event on stdout and take commands on stdin, one per
 * line. One thread, one poll() over the peer's fd, stdin and a signalfd.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>

#include "ctl.h"
#include "ivshmem.h"

/* At most this much data per read or write command (and so a bound on
 * the length of an input line: twice this in hex, plus the command). */
#define MAX_IO (1u << 20)
#define MAX_LINE (2 * MAX_IO + 256)

/* A --ring target; -1 means all. */
struct ring_target {
	int id;
	int vector;
};

struct peer_opts {
	struct ctl_opts common; /* -S, --json, -v; no -C, no control path */
	bool stay;
	unsigned vectors;
	GArray *rings;          /* struct ring_target */
	long wait_peers;        /* -1: not given */
	uint64_t exit_after;    /* doorbells; 0: not given */
	double timeout;         /* seconds; 0: none */
};

struct ctl_peer {
	struct peer_opts opt;
	struct ivshmem_peer *peer;
	struct ctl_out out;
	int status;             /* exit status once decided, else -1 */

	bool ready;
	bool oneshot;           /* --ring, --wait-peers or --exit-after-... */
	bool rings_done;        /* the --ring list is done (after the wait) */
	uint64_t doorbells;     /* sum of the counts received */

	GString *in;            /* stdin bytes not yet ending a line */
	bool in_eof;
	bool in_discard;        /* dropping an overlong line */
};

/* ---- help and options ---------------------------------------------------- */

static void usage(void)
{
	printf(
"Usage: ivshmem-ctl peer [OPTION]...\n"
"Join the server as a peer (like QEMU's ivshmem-client): print one line\n"
"per event on standard output and, once ready, take commands on standard\n"
"input, one per line.\n"
"\n"
"  -S, --socket=PATH       the server's socket (default " CLI_DEFAULT_SOCKET ")\n"
"      --pci=ADDR          inside a guest: be the ivshmem PCI device at ADDR\n"
"                          (auto: the first); no other peers are seen\n"
"      --json              print one JSON object per line instead of text\n"
"      --vectors=N         take N vectors per peer, 0..%d; 0 (the default)\n"
"                          takes as many as the server gives\n"
"      --stay              keep running when standard input ends\n"
"      --ring=PEER:VECTOR  once ready (and after --wait-peers), ring VECTOR\n"
"                          of PEER; PEER 'all' is every other peer, VECTOR\n"
"                          'all' every vector; repeatable, done in order\n"
"      --wait-peers=N      wait until N other peers are connected before\n"
"                          the --ring list (N may be 0)\n"
"      --exit-after-doorbells=N\n"
"                          exit once N doorbells were received (the counts\n"
"                          of the doorbell lines add up to N)\n"
"      --timeout=SECONDS   exit with status 1 if still running after SECONDS\n"
"                          (decimals allowed, e.g. 0.5)\n"
"  -v, --verbose           also show the library's informational messages\n"
"  -h, --help              show this help and exit\n"
"\n"
"Output lines (--json: the same fields in an object with an \"event\" key;\n"
"strings are double-quoted and escaped as in JSON in both forms):\n"
"  ready id=ID vectors=V peers=ID,ID shm-size=BYTES\n"
"  join id=ID vectors=V\n"
"  leave id=ID\n"
"  doorbell vector=V count=C\n"
"  disconnected error=\"SENTENCE\"\n"
"  peers ID,ID                      answers 'peers'   {\"event\":\"peers\",\"ids\":[..]}\n"
"  data offset=OFFSET hex=HEX       answers 'read'\n"
"  ok ring doorbells=N              answers 'ring'    {\"event\":\"ok\",\"command\":\"ring\",..}\n"
"  ok write offset=OFFSET length=N  answers 'write'\n"
"  error message=\"SENTENCE\"         answers a bad command; nothing was changed\n"
"\n"
"Commands on standard input (each answered by one line, quit excepted):\n"
"  peers                   list the other peers\n"
"  ring PEER VECTOR        ring a doorbell of PEER (VECTOR may be 'all')\n"
"  ring all [VECTOR]       ring every vector (or VECTOR) of every other peer\n"
"  write OFFSET HEX        write bytes in memory order: deadbeef or 0xdeadbeef\n"
"  write OFFSET \"TEXT\"     write text; escapes \\\" \\\\ \\n \\r \\t \\0 \\xHH\n"
"  read OFFSET LENGTH      print LENGTH bytes\n"
"  quit                    exit with status 0\n"
"Numbers are decimal or hexadecimal with 0x; reads and writes are checked\n"
"against the shared-memory size and take at most %u bytes. Empty lines\n"
"and lines starting with '#' are ignored.\n"
"\n"
"When it exits, and with which status:\n"
"  - 'quit': 0.\n"
"  - end of standard input: 0, unless --stay or a one-shot option is given.\n"
"  - one-shot mode (--ring, --wait-peers or --exit-after-doorbells): 0 as\n"
"    soon as it is ready, --wait-peers N other peers were connected, every\n"
"    --ring is done and --exit-after-doorbells N doorbells were received\n"
"    (each only if given); with --wait-peers alone, once the peers are there.\n"
"  - SIGINT, SIGTERM or SIGHUP: 0.\n"
"  - the server closes the connection: the disconnected line, then 1\n"
"    (also with --stay: the peer table is frozen from then on).\n"
"  - --timeout expired first: 1.\n"
"\n"
"Exit status: 0 as above; 1 on a runtime error (cannot connect, the server\n"
"went away, a --ring failed, timeout), said in one sentence on standard\n"
"error; 2 on a usage error.\n",
	       IVSHMEM_MAX_VECTORS, MAX_IO);
}

enum {
	OPT_VECTORS = CTL_OPT_OWN,
	OPT_STAY,
	OPT_RING,
	OPT_WAIT_PEERS,
	OPT_EXIT_AFTER,
	OPT_TIMEOUT,
};

static const struct option long_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "socket", required_argument, NULL, 'S' },
	{ "json", no_argument, NULL, CTL_OPT_JSON },
	{ "pci", required_argument, NULL, CTL_OPT_PCI },
	{ "verbose", no_argument, NULL, 'v' },
	{ "vectors", required_argument, NULL, OPT_VECTORS },
	{ "stay", no_argument, NULL, OPT_STAY },
	{ "ring", required_argument, NULL, OPT_RING },
	{ "wait-peers", required_argument, NULL, OPT_WAIT_PEERS },
	{ "exit-after-doorbells", required_argument, NULL, OPT_EXIT_AFTER },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ NULL, 0, NULL, 0 },
};

/* "all" (-1) or a number up to max. */
static int parse_all_or(const char *s, uint64_t max, int *out)
{
	uint64_t v;
	int r;

	if (strcmp(s, "all") == 0) {
		*out = -1;
		return 0;
	}
	r = ctl_parse_u64(s, max, &v);
	if (r == 0)
		*out = (int)v;
	return r;
}

static int parse_ring_arg(const char *arg, struct ring_target *t)
{
	char *peer = g_strdup(arg), *vec = strchr(peer, ':');
	int r = -EINVAL;

	if (vec) {
		*vec++ = '\0';
		if (parse_all_or(peer, IVSHMEM_MAX_PEERS - 1, &t->id) == 0 &&
		    parse_all_or(vec, IVSHMEM_MAX_VECTORS - 1, &t->vector) == 0)
			r = 0;
	}
	g_free(peer);
	return r;
}

#define USAGE(...) ctl_usage_error("peer", __VA_ARGS__)

/* CTL_EXIT_OK to run, -1 after --help, else the status to exit with. */
static int parse_options(const struct ctl_global *g, int argc, char **argv,
			 struct peer_opts *o)
{
	uint64_t v;
	int c;

	ctl_opts_init(&o->common, g);
	o->wait_peers = -1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hS:v", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'h':
			usage();
			return -1;
		case OPT_VECTORS:
			/* 0: as many as the server has. */
			if (ctl_parse_u64(optarg, IVSHMEM_MAX_VECTORS, &v) < 0)
				return ctl_u64_usage_error("peer",
					"vector count", optarg,
					IVSHMEM_MAX_VECTORS);
			o->vectors = (unsigned)v;
			break;
		case OPT_STAY:
			o->stay = true;
			break;
		case OPT_RING: {
			struct ring_target t;

			if (parse_ring_arg(optarg, &t) < 0)
				return USAGE("invalid --ring '%s': give PEER:VECTOR, PEER a peer ID (0..%d) or 'all', VECTOR a vector (0..%d) or 'all'",
					     optarg, IVSHMEM_MAX_PEERS - 1,
					     IVSHMEM_MAX_VECTORS - 1);
			g_array_append_val(o->rings, t);
			break;
		}
		case OPT_WAIT_PEERS:
			if (ctl_parse_u64(optarg, IVSHMEM_MAX_PEERS - 1,
					  &v) < 0)
				return ctl_u64_usage_error("peer",
					"peer count", optarg,
					IVSHMEM_MAX_PEERS - 1);
			o->wait_peers = (long)v;
			break;
		case OPT_EXIT_AFTER:
			if (ctl_parse_u64(optarg, INT64_MAX, &v) < 0 || !v)
				return USAGE("invalid doorbell count '%s': give a positive number",
					     optarg);
			o->exit_after = v;
			break;
		case OPT_TIMEOUT:
			if (ctl_parse_seconds(optarg, &o->timeout) < 0)
				return ctl_seconds_usage_error("peer",
					"timeout", optarg);
			break;
		default:
			/* -S, --json, -v and what is wrong. */
			if (ctl_common_option("peer", c, argv, &o->common) !=
			    CTL_EXIT_OK)
				return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return USAGE("unexpected argument '%s' (commands go to standard input)",
			     argv[optind]);
	if (strlen(o->common.socket_path) >=
	    sizeof(((struct sockaddr_un *)0)->sun_path))
		return USAGE("socket path '%s' is too long: a UNIX socket path can have at most %zu bytes",
			     o->common.socket_path,
			     sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return CTL_EXIT_OK;
}

/* ---- output -------------------------------------------------------------- */

static void finish(struct ctl_peer *cp, int status)
{
	if (cp->status < 0)
		cp->status = status;
}

static void emit(struct ctl_peer *cp)
{
	int r = ctl_out_end(&cp->out);

	if (r < 0 && cp->status != CTL_EXIT_FAILURE)
		cp->status = ctl_stdout_error(r);
}

static void reply_error(struct ctl_peer *cp, const char *fmt, ...)
	G_GNUC_PRINTF(2, 3);

static void reply_error(struct ctl_peer *cp, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	ctl_out_begin(&cp->out, "error");
	ctl_out_str(&cp->out, "message", msg);
	emit(cp);
	g_free(msg);
}

/* ---- library callbacks --------------------------------------------------- */

static void on_ready(void *user, struct ivshmem_peer *peer)
{
	struct ctl_peer *cp = user;
	uint64_t size = 0;
	unsigned n;
	int *ids = ctl_peer_ids(cp->peer, &n);
	int id = ivshmem_peer_get_id(peer);
	int vectors = ivshmem_peer_get_vectors(peer, id);
	void *shm = NULL;

	ivshmem_peer_get_shm(peer, &shm, &size);
	/* read and write copy through the guard; a fault anywhere else
	 * in it says that it shrank. */
	ctl_guard_region(shm, (size_t)size);
	cp->ready = true;
	ctl_out_begin(&cp->out, "ready");
	ctl_out_u64(&cp->out, "id", (uint64_t)id);
	ctl_out_u64(&cp->out, "vectors", vectors > 0 ? (uint64_t)vectors : 0);
	ctl_out_ids(&cp->out, "peers", ids, n, false);
	ctl_out_u64(&cp->out, "shm-size", size);
	emit(cp);
	g_free(ids);
}

static void on_joined(void *user, struct ivshmem_peer *peer, int id,
		      unsigned vectors)
{
	struct ctl_peer *cp = user;

	/* Those already there are listed by the ready line. */
	if (!cp->ready)
		return;
	ctl_out_begin(&cp->out, "join");
	ctl_out_u64(&cp->out, "id", (uint64_t)id);
	ctl_out_u64(&cp->out, "vectors", vectors);
	emit(cp);
}

static void on_left(void *user, struct ivshmem_peer *peer, int id)
{
	struct ctl_peer *cp = user;

	/* Gone within the greeting: never shown (the ready line lists who
	 * is there), so not shown leaving either. */
	if (!cp->ready)
		return;
	ctl_out_begin(&cp->out, "leave");
	ctl_out_u64(&cp->out, "id", (uint64_t)id);
	emit(cp);
}

static void on_doorbell(void *user, struct ivshmem_peer *peer,
			unsigned vector, uint64_t count)
{
	struct ctl_peer *cp = user;

	cp->doorbells = count > UINT64_MAX - cp->doorbells ? UINT64_MAX :
			cp->doorbells + count;
	ctl_out_begin(&cp->out, "doorbell");
	ctl_out_u64(&cp->out, "vector", vector);
	ctl_out_u64(&cp->out, "count", count);
	emit(cp);
}

static void on_disconnected(void *user, struct ivshmem_peer *peer, int error)
{
	struct ctl_peer *cp = user;

	ctl_out_begin(&cp->out, "disconnected");
	(void)error;    /* the sentence says it, with what the peer knew */
	ctl_out_str(&cp->out, "error", ivshmem_peer_get_error(peer));
	emit(cp);
	ctl_error("disconnected from %s: %s", cp->opt.common.socket_path,
		  ivshmem_peer_get_error(peer));
	finish(cp, CTL_EXIT_FAILURE);
}

static void on_log(void *user, int priority, const char *fmt, va_list ap)
	IVSHMEM_PRINTF(3, 0);

static void on_log(void *user, int priority, const char *fmt, va_list ap)
{
	struct ctl_peer *cp = user;

	ctl_log(cp->opt.common.verbose, priority, fmt, ap);
}

/* ---- ringing ------------------------------------------------------------- */

static char *ring_error(int id, unsigned vector, int vectors, int err)
{
	if (err == -ENOENT)
		return g_strdup_printf("no peer %d is connected", id);
	if (err == -ERANGE)
		return g_strdup_printf("peer %d has no vector %u (it has %d)",
				       id, vector, vectors);
	return g_strdup_printf("cannot ring peer %d vector %u: %s", id,
			       vector, g_strerror(-err));
}

/*
 * Ring vector (-1: every vector) of peer id (-1: every other peer). All
 * targets are checked before any is rung. Returns the number of doorbells
 * rung, or a negative errno with *why set (g_free it).
 */
static int ring(struct ctl_peer *cp, int id, int vector, char **why)
{
	unsigned n, count = 0;
	int *ids, r = 0;

	if (id < 0) {
		ids = ctl_peer_ids(cp->peer, &n);
	} else {
		ids = g_new(int, 1);
		ids[0] = id;
		n = 1;
	}
	for (unsigned i = 0; i < n && r == 0; i++) {
		int nv = ivshmem_peer_get_vectors(cp->peer, ids[i]);

		if (nv < 0)
			r = -ENOENT;
		else if (vector >= nv)
			r = -ERANGE;
		if (r < 0)
			*why = ring_error(ids[i], (unsigned)vector, nv, r);
	}
	for (unsigned i = 0; i < n && r == 0; i++) {
		int nv = ivshmem_peer_get_vectors(cp->peer, ids[i]);
		int first = vector < 0 ? 0 : vector;
		int last = vector < 0 ? nv - 1 : vector;

		for (int v = first; v <= last && r == 0; v++) {
			r = ivshmem_peer_ring(cp->peer, ids[i], (unsigned)v);
			if (r < 0)
				*why = ring_error(ids[i], (unsigned)v, nv, r);
			else
				count++;
		}
	}
	g_free(ids);
	return r < 0 ? r : (int)count;
}

/* ---- stdin commands ------------------------------------------------------ */

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* The next space-separated word of *p, NUL-terminated in place; NULL at
 * the end of the line. */
static char *next_word(char **p)
{
	char *s = *p, *w;

	while (is_space(*s))
		s++;
	if (!*s) {
		*p = s;
		return NULL;
	}
	w = s;
	while (*s && !is_space(*s))
		s++;
	if (*s)
		*s++ = '\0';
	*p = s;
	return w;
}

static bool at_end(char *p)
{
	return next_word(&p) == NULL;
}

static void cmd_peers(struct ctl_peer *cp, char *args)
{
	unsigned n;
	int *ids;

	if (!at_end(args)) {
		reply_error(cp, "'peers' takes no arguments");
		return;
	}
	ids = ctl_peer_ids(cp->peer, &n);
	ctl_out_begin(&cp->out, "peers");
	ctl_out_ids(&cp->out, "ids", ids, n, true);
	emit(cp);
	g_free(ids);
}

#define RING_USAGE "give 'ring PEER VECTOR', 'ring PEER all' or 'ring all [VECTOR]'"

static void cmd_ring(struct ctl_peer *cp, char *args)
{
	char *peer = next_word(&args), *vec = next_word(&args);
	char *why = NULL, *shown;
	int id = -1, vector = -1, r;

	if (!peer || (!vec && strcmp(peer, "all") != 0) || !at_end(args)) {
		reply_error(cp, RING_USAGE);
		return;
	}
	if (parse_all_or(peer, IVSHMEM_MAX_PEERS - 1, &id) < 0) {
		shown = ctl_shorten(peer);
		reply_error(cp, "'%s' is not a peer ID (0..%d) or 'all': "
			    RING_USAGE, shown, IVSHMEM_MAX_PEERS - 1);
		g_free(shown);
		return;
	}
	if (vec && parse_all_or(vec, UINT16_MAX, &vector) < 0) {
		shown = ctl_shorten(vec);
		reply_error(cp, "'%s' is not a vector number or 'all': "
			    RING_USAGE, shown);
		g_free(shown);
		return;
	}
	r = ring(cp, id, vector, &why);
	if (r < 0) {
		reply_error(cp, "%s", why);
		g_free(why);
		return;
	}
	ctl_out_begin(&cp->out, "ok");
	ctl_out_word(&cp->out, "command", "ring");
	ctl_out_u64(&cp->out, "doorbells", (uint64_t)r);
	emit(cp);
}

/* On failure reply and return false. */
static bool parse_offset(struct ctl_peer *cp, const char *off_s,
			 uint64_t *off)
{
	char *shown;

	if (ctl_parse_u64(off_s, UINT64_MAX, off) < 0) {
		shown = ctl_shorten(off_s);
		reply_error(cp, "'%s' is not an offset: give a number (decimal, or hexadecimal with 0x)",
			    shown);
		g_free(shown);
		return false;
	}
	return true;
}

static bool check_range(struct ctl_peer *cp, const char *what, uint64_t off,
			uint64_t len, uint64_t size)
{
	if (off > size || len > size - off) {
		reply_error(cp, "%s of %" PRIu64 " bytes at offset %" PRIu64
			    " is past the end of the shared memory (%" PRIu64
			    " bytes)", what, len, off, size);
		return false;
	}
	return true;
}

/* Hex bytes, with an optional 0x, in memory order. NULL on error (after
 * replying). */
static GByteArray *parse_hex(struct ctl_peer *cp, const char *s)
{
	GByteArray *b = ctl_parse_hex(s);
	char *shown;

	if (b)
		return b;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	shown = ctl_shorten(s);
	reply_error(cp, "'%s' is not hex bytes: give an even number of hex digits (deadbeef or 0xdeadbeef) or \"TEXT\"",
		    shown);
	g_free(shown);
	return NULL;
}

/* "TEXT" with escapes, then only spaces. NULL on error (after replying). */
static GByteArray *parse_text(struct ctl_peer *cp, const char *s)
{
	GByteArray *b = g_byte_array_new();
	const char *bad = NULL;

	for (s++; *s && *s != '"' && !bad; s++) {
		guint8 c = (guint8)*s;

		if (*s == '\\') {
			s++;
			switch (*s) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case '0': c = '\0'; break;
			case 'x':
				if (g_ascii_xdigit_value(s[1]) < 0 ||
				    g_ascii_xdigit_value(s[2]) < 0) {
					bad = "\\x needs two hex digits";
					continue;
				}
				c = (guint8)(g_ascii_xdigit_value(s[1]) << 4 |
					     g_ascii_xdigit_value(s[2]));
				s += 2;
				break;
			default:
				bad = "unknown escape: use \\\" \\\\ \\n \\r \\t \\0 or \\xHH";
				continue;
			}
		}
		g_byte_array_append(b, &c, 1);
	}
	if (!bad && *s != '"')
		bad = "the text has no closing '\"'";
	else if (!bad && !at_end((char *)s + 1))
		bad = "unexpected characters after the closing '\"'";
	else if (!bad && b->len == 0)
		bad = "the text is empty: nothing to write";
	else if (!bad && b->len > MAX_IO)
		bad = "the text is too long";
	if (bad) {
		reply_error(cp, "%s", bad);
		g_byte_array_unref(b);
		return NULL;
	}
	return b;
}

/* A copy of length bytes at offset stopped after done: the shared memory
 * shrank under us. Say so, with the size it has now; the peer goes on. */
static void shrank(struct ctl_peer *cp, const char *verb, uint64_t offset,
		   size_t done, size_t length)
{
	struct stat st;
	char now[48] = "";

	if (fstat(ivshmem_peer_get_shm_fd(cp->peer), &st) == 0)
		snprintf(now, sizeof(now), " to %jd bytes", (intmax_t)st.st_size);
	reply_error(cp, "the shared memory shrank%s while in use: another peer truncated it (ivshmem-server --memfd seals it against that); %zu of the %zu bytes at offset %" PRIu64 " were %s",
		    now, done, length, offset, verb);
}

static void cmd_write(struct ctl_peer *cp, char *args)
{
	char *off_s = next_word(&args), *data_s;
	GByteArray *data;
	uint64_t off, size;
	void *shm;

	while (is_space(*args))
		args++;
	if (!off_s || !*args) {
		reply_error(cp, "give 'write OFFSET HEX' or 'write OFFSET \"TEXT\"'");
		return;
	}
	if (!parse_offset(cp, off_s, &off))
		return;
	if (*args == '"') {
		data = parse_text(cp, args);
	} else {
		data_s = next_word(&args);
		if (!at_end(args)) {
			reply_error(cp, "give 'write OFFSET HEX' or 'write OFFSET \"TEXT\"' (quote text with spaces)");
			return;
		}
		data = parse_hex(cp, data_s);
	}
	if (!data)
		return;
	if (data->len > MAX_IO) {
		reply_error(cp, "at most %u bytes per write", MAX_IO);
	} else if (ivshmem_peer_get_shm(cp->peer, &shm, &size) < 0 || !shm) {
		reply_error(cp, "no shared memory is mapped");
	} else if (check_range(cp, "a write", off, data->len, size)) {
		size_t done = ctl_guard_copy((char *)shm + off, data->data,
					     data->len, true);

		if (done < data->len) {
			shrank(cp, "written", off, done, data->len);
			g_byte_array_unref(data);
			return;
		}
		ctl_out_begin(&cp->out, "ok");
		ctl_out_word(&cp->out, "command", "write");
		ctl_out_u64(&cp->out, "offset", off);
		ctl_out_u64(&cp->out, "length", data->len);
		emit(cp);
	}
	g_byte_array_unref(data);
}

static void cmd_read(struct ctl_peer *cp, char *args)
{
	char *off_s = next_word(&args), *len_s = next_word(&args), *shown;
	uint64_t off, len, size;
	unsigned char *buf;
	size_t done;
	char *hex;
	void *shm;

	if (!off_s || !len_s || !at_end(args)) {
		reply_error(cp, "give 'read OFFSET LENGTH'");
		return;
	}
	if (!parse_offset(cp, off_s, &off))
		return;
	if (ctl_parse_u64(len_s, UINT64_MAX, &len) < 0) {
		shown = ctl_shorten(len_s);
		reply_error(cp, "'%s' is not a length: give a number (decimal, or hexadecimal with 0x)",
			    shown);
		g_free(shown);
		return;
	}
	if (len > MAX_IO) {
		reply_error(cp, "at most %u bytes per read", MAX_IO);
		return;
	}
	if (ivshmem_peer_get_shm(cp->peer, &shm, &size) < 0 || !shm) {
		reply_error(cp, "no shared memory is mapped");
		return;
	}
	if (!check_range(cp, "a read", off, len, size))
		return;
	buf = g_malloc(len ? len : 1);
	done = ctl_guard_copy(buf, (const unsigned char *)shm + off, len,
			      false);
	if (done < len) {
		shrank(cp, "read", off, done, len);
		g_free(buf);
		return;
	}
	hex = ctl_hex(buf, len);
	g_free(buf);
	ctl_out_begin(&cp->out, "data");
	ctl_out_u64(&cp->out, "offset", off);
	ctl_out_token(&cp->out, "hex", hex);
	emit(cp);
	g_free(hex);
}

static void command(struct ctl_peer *cp, char *line)
{
	size_t len = strlen(line);
	char *word, *shown;

	if (len && line[len - 1] == '\r')
		line[len - 1] = '\0';
	word = next_word(&line);
	if (!word || word[0] == '#')
		return;
	if (strcmp(word, "peers") == 0) {
		cmd_peers(cp, line);
	} else if (strcmp(word, "ring") == 0) {
		cmd_ring(cp, line);
	} else if (strcmp(word, "write") == 0) {
		cmd_write(cp, line);
	} else if (strcmp(word, "read") == 0) {
		cmd_read(cp, line);
	} else if (strcmp(word, "quit") == 0) {
		if (at_end(line))
			finish(cp, CTL_EXIT_OK);
		else
			reply_error(cp, "'quit' takes no arguments");
	} else {
		shown = ctl_shorten(word);
		reply_error(cp, "unknown command '%s' (commands: peers, ring, write, read, quit)",
			    shown);
		g_free(shown);
	}
}

static void line_too_long(struct ctl_peer *cp)
{
	reply_error(cp, "the line is longer than %u bytes: ignored", MAX_LINE);
}

/* Stdin is readable: one read() (so a terminal or pipe never blocks us),
 * then run every whole line. */
static void read_stdin(struct ctl_peer *cp)
{
	char buf[65536];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	size_t start = 0;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (n < 0)
			ctl_error("cannot read standard input: %s; treating it as ended",
				  g_strerror(errno));
		/* A last line without a newline still counts. */
		if (cp->in->len && !cp->in_discard)
			command(cp, cp->in->str);
		g_string_truncate(cp->in, 0);
		cp->in_eof = true;
		if (!cp->opt.stay && !cp->oneshot)
			finish(cp, CTL_EXIT_OK);
		return;
	}
	g_string_append_len(cp->in, buf, n);
	for (;;) {
		char *nl = memchr(cp->in->str + start, '\n',
				  cp->in->len - start);

		size_t len;

		if (!nl || cp->status >= 0)
			break;
		*nl = '\0';
		len = (size_t)(nl - cp->in->str) - start;
		if (cp->in_discard)
			cp->in_discard = false; /* its error was given */
		else if (len > MAX_LINE)
			line_too_long(cp);
		else if (memchr(cp->in->str + start, '\0', len))
			reply_error(cp, "the line contains a NUL byte");
		else
			command(cp, cp->in->str + start);
		start = (size_t)(nl - cp->in->str) + 1;
	}
	g_string_erase(cp->in, 0, (gssize)start);
	/* Do not keep an endless line: say so now, drop it as it comes. */
	if (cp->in->len > MAX_LINE) {
		if (!cp->in_discard)
			line_too_long(cp);
		cp->in_discard = true;
		g_string_truncate(cp->in, 0);
	}
}

/* ---- one-shot mode and the loop ------------------------------------------ */

/* Do what the one-shot options ask once they can be done; decide the exit
 * when all are. */
static void progress(struct ctl_peer *cp)
{
	unsigned n;

	if (!cp->ready || !cp->oneshot || cp->status >= 0)
		return;
	if (!cp->rings_done) {
		g_free(ctl_peer_ids(cp->peer, &n));
		if (cp->opt.wait_peers >= 0 &&
		    n < (unsigned long)cp->opt.wait_peers)
			return;
		for (guint i = 0; i < cp->opt.rings->len; i++) {
			struct ring_target *t = &g_array_index(
				cp->opt.rings, struct ring_target, i);
			char *why = NULL;

			if (ring(cp, t->id, t->vector, &why) < 0) {
				char peer[16] = "all", vec[16] = "all";

				if (t->id >= 0)
					snprintf(peer, sizeof(peer), "%d", t->id);
				if (t->vector >= 0)
					snprintf(vec, sizeof(vec), "%d", t->vector);
				ctl_error("--ring %s:%s failed: %s", peer, vec, why);
				g_free(why);
				finish(cp, CTL_EXIT_FAILURE);
				return;
			}
		}
		cp->rings_done = true;
	}
	if (cp->doorbells >= cp->opt.exit_after)
		finish(cp, CTL_EXIT_OK);
}

static void timed_out(struct ctl_peer *cp)
{
	char *what;
	unsigned n;

	g_free(ctl_peer_ids(cp->peer, &n));
	if (!cp->ready)
		what = g_strdup("for the server's greeting");
	else if (!cp->oneshot)
		what = g_strdup("with standard input still open (send 'quit' or close it)");
	else if (!cp->rings_done)
		what = g_strdup_printf("for %ld other peer%s (%u connected)",
				       cp->opt.wait_peers,
				       cp->opt.wait_peers == 1 ? "" : "s", n);
	else
		what = g_strdup_printf("for %" PRIu64 " doorbell%s (%" PRIu64
				       " received)", cp->opt.exit_after,
				       cp->opt.exit_after == 1 ? "" : "s",
				       cp->doorbells);
	ctl_error("timed out after %g s waiting %s", cp->opt.timeout, what);
	g_free(what);
	finish(cp, CTL_EXIT_FAILURE);
}

static void loop(struct ctl_peer *cp, int sfd, double deadline)
{
	int peer_fd = ivshmem_peer_get_fd(cp->peer);

	while (cp->status < 0) {
		struct pollfd pfd[3] = {
			{ .fd = peer_fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			/* Commands wait in the pipe until the peer is ready. */
			{ .fd = cp->ready && !cp->in_eof ? STDIN_FILENO : -1,
			  .events = POLLIN },
		};
		int wait = -1;

		if (deadline > 0) {
			wait = ctl_ms_left(deadline);
			if (wait == 0) {
				timed_out(cp);
				break;
			}
		}
		if (poll(pfd, 3, wait) < 0) {
			if (errno == EINTR)
				continue;
			ctl_error("poll: %s", g_strerror(errno));
			finish(cp, CTL_EXIT_FAILURE);
			break;
		}
		if (pfd[1].revents) {
			/* SIGINT, SIGTERM, SIGHUP: a requested, clean end. */
			finish(cp, CTL_EXIT_OK);
			break;
		}
		/* Events first: they may end a one-shot run before any
		 * further command is taken. Commands cannot move it on. */
		if (pfd[0].revents) {
			ivshmem_peer_dispatch(cp->peer);
			progress(cp);
		}
		if (cp->status < 0 && pfd[2].revents)
			read_stdin(cp);
	}
}

int ctl_peer_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_peer cp = { .status = -1 };
	struct ivshmem_peer_config config = { 0 };
	const struct ivshmem_peer_ops ops = {
		.ready = on_ready,
		.joined = on_joined,
		.left = on_left,
		.doorbell = on_doorbell,
		.disconnected = on_disconnected,
		.log = on_log,
	};
	double deadline = 0;
	int sfd = -1, r;

	cp.opt.rings = g_array_new(FALSE, FALSE, sizeof(struct ring_target));
	r = parse_options(g, argc, argv, &cp.opt);
	if (r != CTL_EXIT_OK) {
		g_array_unref(cp.opt.rings);
		return r < 0 ? CTL_EXIT_OK : r;
	}
	cp.oneshot = cp.opt.rings->len || cp.opt.wait_peers >= 0 ||
		     cp.opt.exit_after;
	if (cp.opt.timeout > 0)
		deadline = ctl_now() + cp.opt.timeout;
	ctl_out_init(&cp.out, cp.opt.common.json);
	cp.in = g_string_new(NULL);

	/* Signals become readable on a signalfd, so poll() sees them. */
	sfd = ctl_signalfd();
	if (sfd < 0) {
		cp.status = CTL_EXIT_FAILURE;
		goto out;
	}

	config.vectors = cp.opt.vectors;
	r = ivshmem_peer_new(&config, &ops, &cp, &cp.peer);
	if (r < 0) {
		ctl_error("cannot create the peer: %s", g_strerror(-r));
		cp.status = CTL_EXIT_FAILURE;
		goto out;
	}
	if (cp.opt.common.pci) {
		/* A device is ready at once: there is no greeting. */
		if (ctl_pci_open(&cp.opt.common, cp.peer) != CTL_EXIT_OK) {
			cp.status = CTL_EXIT_FAILURE;
			goto out;
		}
		on_ready(&cp, cp.peer);
		r = 0;
	} else {
		r = ivshmem_peer_connect(cp.peer, cp.opt.common.socket_path);
	}
	if (r < 0) {
		char *start = g_strdup_printf("ivshmem-server -S %s",
					      cp.opt.common.socket_path);

		cp.status = ctl_connect_error(cp.opt.common.socket_path, r, start,
					      false);
		g_free(start);
		goto out;
	}
	loop(&cp, sfd, deadline);

out:
	ivshmem_peer_free(cp.peer);
	if (sfd >= 0)
		close(sfd);
	ctl_out_clear(&cp.out);
	g_string_free(cp.in, TRUE);
	g_array_unref(cp.opt.rings);
	return cp.status;
}
