/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl watch: the peers now, then each join, leave and refusal as
 * the server tells them (or as a peer sees them, without a control socket).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "ctl.h"

#define WATCH_FALLBACK "to watch the others join and leave"

static void watch_help(void)
{
	printf(
"Usage: ivshmem-ctl watch [OPTION]...\n"
"Print the peers connected now, then one line per event as it happens:\n"
"  watching peers=ID,ID...\n"
"  join id=ID vectors=V pid=PID uid=UID gid=GID peers=N\n"
"  leave id=ID pid=PID uid=UID gid=GID reason=REASON peers=N\n"
"  refused pid=PID uid=UID gid=GID reason=REASON message=\"SENTENCE\"\n"
"N is the number of peers connected after the event; REASON of a leave is\n"
"closed, protocol, queue-full, error or kicked (a socket error adds\n"
"error=\"SENTENCE\" before peers=), of a refusal full, denied or error. What is\n"
"not known is left out.\n"
"With --json: the server's reply, then each event object as it sent it.\n"
"\n"
"      --count=N          exit (status 0) after N events\n"
"      --timeout=SECONDS  stop after SECONDS (decimals allowed): status 0,\n"
"                         or 1 when --count events had not come by then\n");
	ctl_common_help();
	printf("\n"
"It runs until SIGINT, SIGTERM or SIGHUP (status 0), --count events\n"
"(status 0), --timeout, or the server closing the connection (status 1).\n");
	ctl_exit_help(true);
}

enum {
	OPT_COUNT = CTL_OPT_OWN,
	OPT_TIMEOUT,
};

static const struct option watch_options[] = {
	CTL_COMMON_LONGOPTS,
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ NULL, 0, NULL, 0 },
};

/* A word the text output needs no quotes for. */
static bool is_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!g_ascii_isalnum(*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

static void out_int(struct ctl_out *out, JsonObject *o, const char *name)
{
	gint64 v;

	if (ctl_json_int(o, name, &v) && v >= 0)
		ctl_out_u64(out, name, (uint64_t)v);
}

static void out_string(struct ctl_out *out, JsonObject *o, const char *name)
{
	const char *s = ctl_json_str(o, name);

	if (!s)
		return;
	if (is_word(s))
		ctl_out_token(out, name, s);
	else
		ctl_out_str(out, name, s);
}

static void event_text(struct ctl_out *out, JsonObject *ev)
{
	const char *name = ctl_json_str(ev, "event");
	JsonObject *peer = ctl_json_obj(ev, "peer");

	if (!name)
		return;
	ctl_out_begin(out, is_word(name) ? name : "event");
	if (strcmp(name, "join") == 0 || strcmp(name, "leave") == 0) {
		out_int(out, peer, "id");
		out_int(out, peer, "vectors");
		out_int(out, peer, "pid");
		out_int(out, peer, "uid");
		out_int(out, peer, "gid");
		out_string(out, ev, "reason");
		out_string(out, ev, "error");
		out_int(out, ev, "peers");
	} else if (strcmp(name, "refused") == 0) {
		out_int(out, ev, "pid");
		out_int(out, ev, "uid");
		out_int(out, ev, "gid");
		out_string(out, ev, "reason");
		out_string(out, ev, "message");
	} else {
		/* A later kind: its numbers and strings as they come. */
		JsonObjectIter it;
		const char *k;
		JsonNode *v;

		json_object_iter_init(&it, ev);
		while (json_object_iter_next(&it, &k, &v)) {
			if (strcmp(k, "event") == 0 || strcmp(k, "time") == 0)
				continue;
			out_int(out, ev, k);
			out_string(out, ev, k);
		}
	}
}

static void watching_text(struct ctl_out *out, JsonObject *reply)
{
	JsonArray *list = ctl_json_array(reply, "peers");
	guint n = list ? json_array_get_length(list) : 0;
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int));

	for (guint i = 0; i < n; i++) {
		JsonNode *pn = json_array_get_element(list, i);
		gint64 id;

		if (JSON_NODE_HOLDS_OBJECT(pn) &&
		    ctl_json_int(json_node_get_object(pn), "id", &id)) {
			int v = (int)id;

			g_array_append_val(ids, v);
		}
	}
	ctl_out_begin(out, "watching");
	ctl_out_ids(out, "peers", (int *)(void *)ids->data, ids->len, false);
	g_array_unref(ids);
}

struct watch {
	const struct ctl_opts *o;
	struct ctl_conn *c;
	struct ctl_out out;
	uint64_t count;         /* --count, or 0 */
	bool counted;           /* --count given */
	uint64_t seen;          /* events printed */
	double timeout;         /* --timeout, or 0 */
	int status;             /* once decided, else -1 */
};

/* Print a reply or event; false when stdout failed. */
static bool watch_print(struct watch *w, JsonNode *node, bool reply)
{
	int r;

	if (w->o->json) {
		r = ctl_print_json(node);
	} else {
		if (reply)
			watching_text(&w->out, json_node_get_object(node));
		else
			event_text(&w->out, json_node_get_object(node));
		r = ctl_out_end(&w->out);
	}
	if (r < 0) {
		w->status = ctl_stdout_error(r);
		return false;
	}
	return true;
}

/* Take every event there is. */
static void watch_events(struct watch *w)
{
	while (w->status < 0) {
		JsonNode *ev = NULL;
		int r = ctl_conn_next_event(w->c, &ev);

		if (r == 0)
			return;
		if (r < 0) {
			w->status = CTL_EXIT_FAILURE;
			return;
		}
		/* Replies to nothing (none are asked) are not events. */
		if (ctl_json_str(json_node_get_object(ev), "event") &&
		    watch_print(w, ev, false)) {
			w->seen++;
			if (w->counted && w->seen >= w->count)
				w->status = CTL_EXIT_OK;
		}
		json_node_unref(ev);
	}
}

static void watch_loop(struct watch *w, int sfd)
{
	double deadline = w->timeout > 0 ? ctl_now() + w->timeout : 0;
	int fd = ctl_conn_get_fd(w->c);

	/* Events may have come with the reply. */
	watch_events(w);
	while (w->status < 0) {
		struct pollfd p[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};
		int r;

		if (deadline > 0 && ctl_ms_left(deadline) == 0) {
			if (w->counted) {
				ctl_error("timed out after %g s with %" PRIu64
					  " of %" PRIu64 " events", w->timeout,
					  w->seen, w->count);
				w->status = CTL_EXIT_FAILURE;
			} else {
				w->status = CTL_EXIT_OK;
			}
			break;
		}
		r = poll(p, 2, deadline > 0 ? ctl_ms_left(deadline) : -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ctl_error("poll: %s", g_strerror(errno));
			w->status = CTL_EXIT_FAILURE;
			break;
		}
		if (p[1].revents) {
			/* SIGINT, SIGTERM, SIGHUP: a requested, clean end. */
			w->status = CTL_EXIT_OK;
			break;
		}
		if (p[0].revents) {
			ctl_conn_dispatch(w->c);
			watch_events(w);
		}
	}
}

int ctl_watch_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	struct watch w = { .o = &o, .status = -1 };
	JsonNode *reply;
	uint64_t v;
	int c, r, sfd = -1;

	ctl_opts_init(&o, g);
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_COMMON_SHORTOPTS,
				watch_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			watch_help();
			return CTL_EXIT_OK;
		case OPT_COUNT:
			if (ctl_parse_u64(optarg, UINT64_MAX, &v) < 0)
				return ctl_u64_usage_error("watch",
					"event count", optarg, UINT64_MAX);
			w.count = v;
			w.counted = true;
			break;
		case OPT_TIMEOUT:
			if (ctl_parse_seconds(optarg, &w.timeout) < 0)
				return ctl_seconds_usage_error("watch",
					"timeout", optarg);
			break;
		default:
			if (ctl_common_option("watch", c, argv, &o) !=
			    CTL_EXIT_OK)
				return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return ctl_usage_error("watch", "unexpected argument '%s'",
				       argv[optind]);
	r = ctl_opts_check("watch", &o);
	if (r != CTL_EXIT_OK)
		return r;

	/* Signals become readable on a signalfd, so poll() sees them; one
	 * that comes before the loop waits there. */
	sfd = ctl_signalfd();
	if (sfd < 0)
		return CTL_EXIT_FAILURE;
	if (o.pci)
		return ctl_pci_no_peers("watch");
	r = ctl_conn_open(&o, WATCH_FALLBACK, &w.c);
	if (r != CTL_EXIT_OK) {
		close(sfd);
		return r;
	}
	ctl_out_init(&w.out, false);
	r = ctl_conn_call(w.c, ctl_request_new("watch"), &reply, NULL);
	if (r != CTL_EXIT_OK) {
		w.status = r;
	} else {
		if (watch_print(&w, reply, true) && w.counted && !w.count)
			w.status = CTL_EXIT_OK;
		json_node_unref(reply);
		watch_loop(&w, sfd);
	}
	ctl_out_clear(&w.out);
	ctl_conn_close(w.c);
	close(sfd);
	return w.status;
}
