/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl channel: channels in the shared memory (ivshmem-channel(7)).
 * init writes a layout, list and stat show it, send and recv attach to an
 * end and move messages. Each joins the server as a peer for its length.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "ctl.h"
#include "ivshmem.h"

#define READY_TIMEOUT_MS 10000

enum {
	OPT_OFFSET = CTL_OPT_OWN,
	OPT_LINE,
	OPT_END,
	OPT_VECTOR,
	OPT_COUNT,
	OPT_TIMEOUT,
	OPT_RESET,
};

struct chan_opts {
	struct ctl_opts o;
	const char *sub;
	uint64_t offset;
	uint64_t line;
	uint64_t end;
	bool end_given;
	uint64_t vector;
	uint64_t count;         /* recv: 0 = no limit */
	double timeout;         /* 0: none */
	bool reset;
	char **args;
	int nargs;
};

static const struct option long_options[] = {
	CTL_COMMON_LONGOPTS,
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "line", required_argument, NULL, OPT_LINE },
	{ "end", required_argument, NULL, OPT_END },
	{ "vector", required_argument, NULL, OPT_VECTOR },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "reset", no_argument, NULL, OPT_RESET },
	{ NULL, 0, NULL, 0 },
};

static void channel_help(void)
{
	printf(
"Usage: ivshmem-ctl channel init [OPTION]... NAME[:RING0[:RING1[:MAX]]]...\n"
"       ivshmem-ctl channel list [OPTION]...\n"
"       ivshmem-ctl channel stat [OPTION]... [NAME]\n"
"       ivshmem-ctl channel send [OPTION]... NAME [FILE]\n"
"       ivshmem-ctl channel recv [OPTION]... NAME\n"
"Channels in the shared memory (ivshmem-channel(7)), through the server\n"
"joined as a peer.\n"
"\n"
"  init   write a layout with these channels: RING0 and RING1 are the\n"
"         bytes of each direction (powers of two, 64 to 1G; default 64K;\n"
"         RING1 defaults to RING0), MAX the largest message (default: half\n"
"         the smaller ring less 8 bytes). Ends attached to the old layout\n"
"         see it written anew\n"
"  list   one line per channel: name, ring sizes, maximum, both ends\n"
"  stat   each channel (or NAME) in full: both ends' peer IDs, epochs,\n"
"         indices, fill, who sleeps, counters\n"
"  send   attach to an end (default 0) and send each line of FILE (default\n"
"         standard input), without its newline, as one message, waiting\n"
"         while the ring is full\n"
"  recv   attach to an end (default 1) and print each message as a line\n"
"         (--json: {\"event\":\"message\",\"length\":N,\"data\":\"...\"})\n"
"\n"
"Options:\n"
"      --offset=BYTES     the layout's offset in the shared memory, a\n"
"                         multiple of 64 (default 0)\n"
"      --line=BYTES       init: the cache-line separation (default 64)\n"
"      --end=0|1          send, recv: the end to attach to\n"
"      --vector=N         send, recv: the own vector the other end rings\n"
"                         (default 0)\n"
"      --reset            send, recv: drop what waits for the end\n"
"      --count=N          recv: stop after N messages\n"
"      --timeout=SECONDS  send, recv: give up when nothing moves for this\n"
"                         long (exit status 1)\n"
CTL_COMMON_HELP
"\n"
"Exit status: 0 on success; 1 on a runtime error (no server, no layout or\n"
"channel, a message over the maximum, the timeout); 2 on a usage error.\n");
}

static int bad_value(const char *what, const char *s)
{
	return ctl_usage_error("channel", "invalid %s '%s'", what, s);
}

static int parse_options(const struct ctl_global *g, int argc, char **argv,
			 struct chan_opts *c)
{
	int ch;

	memset(c, 0, sizeof(*c));
	ctl_opts_init(&c->o, g);
	c->line = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, CTL_COMMON_SHORTOPTS,
				 long_options, NULL)) != -1) {
		switch (ch) {
		case 'h':
			channel_help();
			return -1;
		case OPT_OFFSET:
			if (ctl_parse_size(optarg, UINT64_MAX, &c->offset) < 0)
				return ctl_size_usage_error("channel",
					"--offset", optarg, UINT64_MAX);
			break;
		case OPT_LINE:
			if (ctl_parse_size(optarg, 4096, &c->line) < 0)
				return ctl_size_usage_error("channel",
					"--line", optarg, 4096);
			break;
		case OPT_END:
			if (ctl_parse_u64(optarg, 1, &c->end) < 0)
				return ctl_u64_usage_error("channel", "--end",
							   optarg, 1);
			c->end_given = true;
			break;
		case OPT_VECTOR:
			if (ctl_parse_u64(optarg, IVSHMEM_MAX_VECTORS - 1,
					  &c->vector) < 0)
				return ctl_u64_usage_error("channel",
					"--vector", optarg,
					IVSHMEM_MAX_VECTORS - 1);
			break;
		case OPT_COUNT:
			if (ctl_parse_u64(optarg, UINT64_MAX, &c->count) < 0 ||
			    c->count == 0)
				return bad_value("--count (a number of messages, at least 1)",
						 optarg);
			break;
		case OPT_TIMEOUT:
			if (ctl_parse_seconds(optarg, &c->timeout) < 0 ||
			    c->timeout <= 0)
				return ctl_seconds_usage_error("channel",
					"--timeout", optarg);
			break;
		case OPT_RESET:
			c->reset = true;
			break;
		default:
			if (ctl_common_option("channel", ch, argv, &c->o) !=
			    CTL_EXIT_OK)
				return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return ctl_usage_error("channel",
			"no subcommand: give init, list, stat, send or recv");
	c->sub = argv[optind++];
	c->args = argv + optind;
	c->nargs = argc - optind;
	if (c->offset % 64)
		return ctl_usage_error("channel",
			"invalid --offset '%" PRIu64 "': a layout starts at a multiple of 64",
			c->offset);
	return ctl_opts_check("channel", &c->o);
}

/* ---- the peer --------------------------------------------------------------- */

static bool verbose_log;

static void on_log(void *user, int priority, const char *fmt, va_list ap)
	IVSHMEM_PRINTF(3, 0);

static void on_log(void *user, int priority, const char *fmt, va_list ap)
{
	(void)user;
	ctl_log(verbose_log, priority, fmt, ap);
}

/* The channel code reads the shared memory directly: a fault there
 * says that it shrank (a guest's device memory cannot). */
static void guard(struct ivshmem_peer *p)
{
	void *addr = NULL;
	uint64_t size = 0;

	ivshmem_peer_get_shm(p, &addr, &size);
	ctl_guard_region(addr, (size_t)size);
}

static int join(const struct chan_opts *c, struct ivshmem_peer **out,
		void **mem, uint64_t *size)
{
	const struct ivshmem_peer_config config = { 0 };
	const struct ivshmem_peer_ops ops = { .log = on_log };
	struct ivshmem_peer *p;
	int r;

	verbose_log = c->o.verbose;
	r = ivshmem_peer_new(&config, &ops, NULL, &p);
	if (r < 0) {
		ctl_error("cannot create a peer: %s", g_strerror(-r));
		return CTL_EXIT_FAILURE;
	}
	if (c->o.pci) {
		r = ctl_pci_open(&c->o, p);
		if (r != CTL_EXIT_OK) {
			ivshmem_peer_free(p);
			return r;
		}
		guard(p);
		ivshmem_peer_get_shm(p, mem, size);
		*out = p;
		return CTL_EXIT_OK;
	}
	r = ivshmem_peer_connect(p, c->o.socket_path);
	if (r < 0) {
		ivshmem_peer_free(p);
		return ctl_connect_error(c->o.socket_path, r,
					 "ivshmem-server -S PATH", false);
	}
	r = ivshmem_peer_wait_ready(p, READY_TIMEOUT_MS);
	if (r < 0) {
		ctl_error("joining the server at %s failed: %s",
			  c->o.socket_path, r == -ETIMEDOUT ?
			  "no greeting in time" : ivshmem_peer_get_error(p));
		ivshmem_peer_free(p);
		return CTL_EXIT_FAILURE;
	}
	guard(p);
	ivshmem_peer_get_shm(p, mem, size);
	*out = p;
	return CTL_EXIT_OK;
}

/* Why there is no layout or channel, in one sentence. */
static int layout_error(const struct chan_opts *c, int r, const char *name)
{
	switch (r) {
	case -EBADMSG:
		ctl_error("no channel layout at offset %" PRIu64 " of the shared memory: write one with 'ivshmem-ctl channel init'",
			  c->offset);
		break;
	case -EPROTONOSUPPORT:
		ctl_error("the channel layout at offset %" PRIu64 " is of another version than this ivshmem-ctl reads",
			  c->offset);
		break;
	case -ENOENT:
		ctl_error("no channel named '%s' in the layout at offset %" PRIu64 " ('ivshmem-ctl channel list' shows them)",
			  name, c->offset);
		break;
	case -EINVAL:
		ctl_error("offset %" PRIu64 " is past the end of the shared memory",
			  c->offset);
		break;
	default:
		ctl_error("the channel layout at offset %" PRIu64 ": %s",
			  c->offset, g_strerror(-r));
	}
	return CTL_EXIT_FAILURE;
}

/* ---- init ------------------------------------------------------------------- */

static int parse_spec(const char *arg, struct ivshmem_channel_spec *spec,
		      char **name)
{
	char **parts = g_strsplit(arg, ":", 5);
	uint64_t v[3] = { 0, 0, 0 };
	int n = (int)g_strv_length(parts), r = CTL_EXIT_OK;

	if (n < 1 || n > 4 || !*parts[0]) {
		r = ctl_usage_error("channel",
			"invalid channel '%s': give NAME[:RING0[:RING1[:MAX]]]",
			arg);
		goto out;
	}
	for (int i = 1; i < n; i++) {
		if (ctl_parse_size(parts[i], 1u << 30, &v[i - 1]) < 0) {
			r = ctl_size_usage_error("channel", i == 3 ?
				"maximum message size" : "ring size",
				parts[i], 1u << 30);
			goto out;
		}
	}
	*name = g_strdup(parts[0]);
	spec->name = *name;
	spec->ring_size[0] = (uint32_t)v[0];
	spec->ring_size[1] = (uint32_t)(n > 2 ? v[1] : v[0]);
	spec->max_msg = (uint32_t)v[2];
out:
	g_strfreev(parts);
	return r;
}

static int run_init(const struct chan_opts *c)
{
	struct ivshmem_channel_spec specs[64];
	char *names[64] = { 0 };
	struct ivshmem_peer *p = NULL;
	uint64_t size, need;
	int status = CTL_EXIT_OK, n = c->nargs, r;
	void *mem;

	if (n < 1)
		return ctl_usage_error("channel",
			"init needs at least one channel: NAME[:RING0[:RING1[:MAX]]]");
	if (n > 64)
		return ctl_usage_error("channel",
			"init takes at most 64 channels, not %d", n);
	for (int i = 0; i < n && status == CTL_EXIT_OK; i++)
		status = parse_spec(c->args[i], &specs[i], &names[i]);
	if (status == CTL_EXIT_OK) {
		r = ivshmem_layout_size(specs, (unsigned)n, (unsigned)c->line,
					&need);
		if (r < 0)
			status = ctl_usage_error("channel",
				"invalid channels: %s (names are 1 to 31 of A-Z a-z 0-9 . _ -, each once; rings powers of two from 64 bytes, at least the line; a maximum at most half the smaller ring less 8 bytes)",
				r == -EEXIST ? "a name given twice" :
				r == -ENAMETOOLONG ? "a name over 31 bytes" :
				g_strerror(-r));
	}
	if (status == CTL_EXIT_OK)
		status = join(c, &p, &mem, &size);
	if (status == CTL_EXIT_OK) {
		r = ivshmem_layout_write(mem, size, c->offset, specs,
					 (unsigned)n, (unsigned)c->line);
		if (r < 0) {
			ctl_error("the layout needs %" PRIu64 " bytes at offset %" PRIu64 " and the shared memory has %" PRIu64 ": %s",
				  need, c->offset, size,
				  r == -ENOSPC ? "it does not fit" :
				  g_strerror(-r));
			status = CTL_EXIT_FAILURE;
		} else {
			struct ctl_out o;

			ctl_out_init(&o, c->o.json);
			ctl_out_begin(&o, "layout");
			ctl_out_u64(&o, "offset", c->offset);
			ctl_out_u64(&o, "size", need);
			ctl_out_u64(&o, "channels", (uint64_t)n);
			if (ctl_out_end(&o) < 0)
				status = CTL_EXIT_FAILURE;
			ctl_out_clear(&o);
		}
	}
	for (int i = 0; i < n; i++)
		g_free(names[i]);
	ivshmem_peer_free(p);
	return status;
}

/* ---- list and stat ---------------------------------------------------------- */

static void out_end_info(struct ctl_out *o, const char *prefix,
			 const struct ivshmem_channel_end_info *e, bool full)
{
	char key[32];

#define KEY(k) (snprintf(key, sizeof(key), "%s%s", prefix, k), key)
	ctl_out_token(o, KEY("state"), e->attached ? "attached" : "detached");
	if (e->peer >= 0)
		ctl_out_u64(o, KEY("peer"), (uint64_t)e->peer);
	else
		ctl_out_token(o, KEY("peer"), "none");
	if (!full)
		return;
	ctl_out_u64(o, KEY("vector"), e->vector);
	ctl_out_u64(o, KEY("epoch"), e->epoch);
	ctl_out_u64(o, KEY("head"), e->head);
	ctl_out_u64(o, KEY("tail"), e->tail);
	ctl_out_token(o, KEY("sleeping"), e->sleeping ? "yes" : "no");
	ctl_out_u64(o, KEY("sent"), e->sent);
	ctl_out_u64(o, KEY("received"), e->received);
	ctl_out_u64(o, KEY("rung"), e->rung);
	ctl_out_u64(o, KEY("suppressed"), e->suppressed);
	ctl_out_u64(o, KEY("sleeps"), e->sleeps);
	ctl_out_u64(o, KEY("discarded"), e->discarded);
#undef KEY
}

static int run_show(const struct chan_opts *c, bool full)
{
	struct ivshmem_peer *p;
	const char *only = NULL;
	int status, count, shown = 0;
	uint64_t size;
	void *mem;

	if (c->nargs > (full ? 1 : 0))
		return ctl_usage_error("channel", "unexpected argument '%s'",
				       c->args[full ? 1 : 0]);
	if (full && c->nargs == 1)
		only = c->args[0];
	status = join(c, &p, &mem, &size);
	if (status != CTL_EXIT_OK)
		return status;
	count = 1;
	for (int i = 0; i < count && status == CTL_EXIT_OK; i++) {
		struct ivshmem_channel_info info;
		struct ctl_out o;

		count = ivshmem_layout_get_channel(mem, size, c->offset,
						   (unsigned)i, &info);
		if (count < 0) {
			status = layout_error(c, count, only);
			break;
		}
		if (only && strcmp(only, info.name) != 0)
			continue;
		shown++;
		ctl_out_init(&o, c->o.json);
		ctl_out_begin(&o, "channel");
		ctl_out_str(&o, "name", info.name);
		ctl_out_u64(&o, "ring0", info.ring_size[0]);
		ctl_out_u64(&o, "ring1", info.ring_size[1]);
		ctl_out_u64(&o, "max", info.max_msg);
		if (full) {
			ctl_out_u64(&o, "fill0", info.fill[0]);
			ctl_out_u64(&o, "fill1", info.fill[1]);
		}
		out_end_info(&o, "end0-", &info.end[0], full);
		out_end_info(&o, "end1-", &info.end[1], full);
		if (ctl_out_end(&o) < 0)
			status = CTL_EXIT_FAILURE;
		ctl_out_clear(&o);
	}
	if (status == CTL_EXIT_OK && only && !shown)
		status = layout_error(c, -ENOENT, only);
	ivshmem_peer_free(p);
	return status;
}

/* ---- send and recv ---------------------------------------------------------- */

static int attach(const struct chan_opts *c, struct ivshmem_peer *p,
		  unsigned end, struct ivshmem_channel **ch)
{
	const struct ivshmem_channel_config cfg = {
		.offset = c->offset, .name = c->args[0], .end = end,
		.vector = (unsigned)c->vector,
		.flags = c->reset ? IVSHMEM_CHANNEL_RESET : 0,
	};
	int r = ivshmem_channel_attach(p, &cfg, ch);

	switch (r) {
	case 0:
		return CTL_EXIT_OK;
	case -EBADMSG:
	case -EPROTONOSUPPORT:
	case -ENOENT:
		return layout_error(c, r, c->args[0]);
	case -ERANGE:
		ctl_error("the server gives this peer fewer than %u vectors: choose another --vector",
			  (unsigned)c->vector + 1);
		break;
	case -EADDRINUSE:
		ctl_error("end %u of channel '%s' is attached by a connected peer: choose the other --end",
			  end, c->args[0]);
		break;
	case -EUCLEAN:
		ctl_error("channel '%s' has inconsistent indices: write the layout anew with 'ivshmem-ctl channel init'",
			  c->args[0]);
		break;
	default:
		ctl_error("cannot attach to channel '%s': %s", c->args[0],
			  g_strerror(-r));
	}
	return CTL_EXIT_FAILURE;
}

/* Wait for events on ch until the deadline (0: none): CTL_EXIT_OK, or an
 * exit status after saying why. */
static int wait_for(const struct chan_opts *c, struct ivshmem_channel *ch,
		    unsigned events)
{
	int ms = c->timeout > 0 ? ctl_ms_left(ctl_now() + c->timeout) : -1;
	int r = ivshmem_channel_wait(ch, events, ms);

	if (r > 0)
		return CTL_EXIT_OK;
	if (r == -ETIMEDOUT)
		ctl_error("timed out after %g s: the other end of channel '%s' %s",
			  c->timeout, c->args[0],
			  events & IVSHMEM_CHANNEL_READABLE ?
			  "sent nothing" : "took nothing (the ring stays full)");
	else
		ctl_error("channel '%s': %s", c->args[0], g_strerror(-r));
	return CTL_EXIT_FAILURE;
}

static int run_send(const struct chan_opts *c)
{
	struct ivshmem_channel *ch = NULL;
	struct ivshmem_peer *p = NULL;
	struct ivshmem_channel_stats st;
	FILE *in = stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t sent = 0;
	int status;

	if (c->nargs < 1 || c->nargs > 2)
		return ctl_usage_error("channel",
			"send takes a channel NAME and at most a FILE");
	if (c->nargs == 2 && strcmp(c->args[1], "-") != 0) {
		in = fopen(c->args[1], "r");
		if (!in) {
			ctl_error("cannot open %s: %s", c->args[1],
				  g_strerror(errno));
			return CTL_EXIT_FAILURE;
		}
	}
	status = join(c, &p, NULL, NULL);
	if (status == CTL_EXIT_OK)
		status = attach(c, p, c->end_given ? (unsigned)c->end : 0, &ch);
	while (status == CTL_EXIT_OK && (n = getline(&line, &cap, in)) >= 0) {
		int r;

		if (n > 0 && line[n - 1] == '\n')
			n--;
		while ((r = ivshmem_channel_send(ch, line, (size_t)n)) ==
		       -EAGAIN) {
			status = wait_for(c, ch, IVSHMEM_CHANNEL_WRITABLE);
			if (status != CTL_EXIT_OK)
				break;
		}
		if (status != CTL_EXIT_OK)
			break;
		if (r == -EMSGSIZE) {
			ivshmem_channel_get_stats(ch, &st);
			ctl_error("line %" PRIu64 " is %zd bytes, over the channel's maximum of %u: nothing more was sent",
				  sent + 1, n, st.max_msg);
			status = CTL_EXIT_FAILURE;
		} else if (r < 0) {
			ctl_error("channel '%s': %s", c->args[0],
				  g_strerror(-r));
			status = CTL_EXIT_FAILURE;
		} else {
			sent++;
		}
	}
	if (status == CTL_EXIT_OK && ferror(in)) {
		ctl_error("reading %s: %s", in == stdin ? "standard input" :
			  c->args[1], g_strerror(errno));
		status = CTL_EXIT_FAILURE;
	}
	if (status == CTL_EXIT_OK && c->o.verbose)
		fprintf(stderr, "ivshmem-ctl: sent %" PRIu64 " messages\n",
			sent);
	free(line);
	if (in != stdin)
		fclose(in);
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(p);
	return status;
}

static int run_recv(const struct chan_opts *c)
{
	struct ivshmem_channel *ch = NULL;
	struct ivshmem_peer *p = NULL;
	uint64_t got = 0;
	int status;

	if (c->nargs != 1)
		return ctl_usage_error("channel",
			"recv takes one channel NAME");
	status = join(c, &p, NULL, NULL);
	if (status == CTL_EXIT_OK)
		status = attach(c, p, c->end_given ? (unsigned)c->end : 1, &ch);
	while (status == CTL_EXIT_OK && (!c->count || got < c->count)) {
		const void *buf;
		size_t len;
		int r = ivshmem_channel_peek(ch, &buf, &len);

		if (r == -EAGAIN) {
			fflush(stdout);
			status = wait_for(c, ch, IVSHMEM_CHANNEL_READABLE);
			continue;
		}
		if (r < 0) {
			struct ivshmem_channel_stats st;

			ivshmem_channel_get_stats(ch, &st);
			ctl_error("channel '%s': %s%s%s", c->args[0],
				  g_strerror(-r), *st.broken ? ": " : "",
				  st.broken);
			status = CTL_EXIT_FAILURE;
			break;
		}
		if (c->o.json) {
			/* One copy, read once (the other end could change
			 * the bytes in place): text as "data", else "hex". */
			char *copy = g_malloc(len + 1);
			struct ctl_out o;

			memcpy(copy, buf, len);
			copy[len] = '\0';
			ctl_out_init(&o, true);
			ctl_out_begin(&o, "message");
			ctl_out_u64(&o, "length", len);
			if (strlen(copy) == len &&
			    g_utf8_validate(copy, (gssize)len, NULL)) {
				ctl_out_str(&o, "data", copy);
			} else {
				char *hex = ctl_hex(copy, len);

				ctl_out_token(&o, "hex", hex);
				g_free(hex);
			}
			if (ctl_out_end(&o) < 0)
				status = CTL_EXIT_FAILURE;
			ctl_out_clear(&o);
			g_free(copy);
		} else {
			fwrite(buf, 1, len, stdout);
			putchar('\n');
		}
		ivshmem_channel_release(ch);
		got++;
		if (ferror(stdout)) {
			ctl_error("writing to standard output: %s",
				  g_strerror(errno));
			status = CTL_EXIT_FAILURE;
		}
	}
	if (fflush(stdout) != 0 && status == CTL_EXIT_OK)
		status = CTL_EXIT_FAILURE;
	ivshmem_channel_detach(ch);
	ivshmem_peer_free(p);
	return status;
}

int ctl_channel_run(const struct ctl_global *g, int argc, char **argv)
{
	struct chan_opts c;
	int r = parse_options(g, argc, argv, &c);

	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if (strcmp(c.sub, "init") == 0)
		return run_init(&c);
	if (strcmp(c.sub, "list") == 0)
		return run_show(&c, false);
	if (strcmp(c.sub, "stat") == 0)
		return run_show(&c, true);
	if (strcmp(c.sub, "send") == 0)
		return run_send(&c);
	if (strcmp(c.sub, "recv") == 0)
		return run_recv(&c);
	return ctl_usage_error("channel",
		"unknown subcommand '%s': give init, list, stat, send or recv",
		c.sub);
}
