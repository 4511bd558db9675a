/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl info: the server in 'key  value' lines (ivshmem-ctl(1)).
 */
#include <stdio.h>

#include <glib.h>

#include "ctl.h"

/* One "key  value" line of info. */
static void info_line(const char *key, const char *value)
{
	printf("%-12s %s\n", key, value);
}

static void info_take(const char *key, char *value)
{
	info_line(key, value);
	g_free(value);
}

/* Can a peer shrink the shared memory under the others? */
static void sealed_line(JsonObject *shm)
{
	JsonNode *n = shm ? json_object_get_member(shm, "sealed") : NULL;

	if (n && JSON_NODE_HOLDS_VALUE(n) &&
	    json_node_get_value_type(n) == G_TYPE_BOOLEAN)
		info_line("shm-sealed", json_node_get_boolean(n) ?
			  "yes" : "no: any peer can shrink it");
	else
		info_line("shm-sealed", "-");
}

/* Inside a guest (--pci): the device. */
static void info_pci(JsonObject *r)
{
	const char *why = ctl_json_str(r, "why");
	gint64 v;

	info_take("device", ctl_text_of(r, "device"));
	info_take("mode", ctl_text_of(r, "mode"));
	info_take("id", ctl_text_of(r, "id"));
	info_take("vectors", ctl_text_of(r, "vectors"));
	if (ctl_json_int(ctl_json_obj(r, "shm"), "size", &v) && v >= 0)
		info_take("shm-size", ctl_human_size((uint64_t)v));
	if (ctl_json_int(r, "poll_us", &v) && v > 0)
		info_take("poll", g_strdup_printf("every %" G_GINT64_FORMAT " us", v));
	if (why)
		info_line("not-vfio", why);
}

static void info_text(JsonObject *r)
{
	JsonObject *shm = ctl_json_obj(r, "shm");
	const char *kind = ctl_json_str(shm, "kind");
	const char *name = ctl_json_str(shm, "name");
	const char *started = ctl_json_str(r, "started_at");
	gint64 v;
	double d;

	if (ctl_json_str(r, "device")) {
		info_pci(r);
		return;
	}
	info_take("server", ctl_text_of(r, "server"));
	info_take("version", ctl_text_of(r, "version"));
	info_take("protocol", ctl_text_of(r, "protocol"));
	info_take("pid", ctl_text_of(r, "pid"));
	info_take("socket", ctl_text_of(r, "socket"));
	info_take("control", ctl_text_of(r, "control"));
	if (kind && name)
		info_take("shm", g_strdup_printf("%s %s", kind, name));
	else
		info_line("shm", kind ? kind : "-");
	if (ctl_json_int(shm, "size", &v) && v >= 0)
		info_take("shm-size", ctl_human_size((uint64_t)v));
	else
		info_line("shm-size", "-");
	sealed_line(shm);
	info_take("vectors", ctl_text_of(r, "vectors"));
	info_take("peers", ctl_text_of(r, "peers"));
	info_take("max-peers", ctl_text_of(r, "max_peers"));
	info_take("queue-limit", ctl_text_of(r, "queue_limit"));
	if (started)
		info_take("started", ctl_local_time(started,
						     "%Y-%m-%d %H:%M:%S %Z"));
	else
		info_line("started", "-");
	if (ctl_json_number(r, "uptime", &d))
		info_take("uptime", ctl_human_duration(d));
	else
		info_line("uptime", "-");
}

#define INFO_FALLBACK "to see what a peer sees"

static void info_help(void)
{
	printf(
"Usage: ivshmem-ctl info [OPTION]...\n"
"Show the server: its version and pid, its sockets, the shared memory\n"
"(kind, name, size, whether it is sealed against shrinking), the vector count, the peer count and limits, when it\n"
"started. One 'key  value' line each (a JSON object with --json).\n");
	ctl_common_help();
	ctl_exit_help(true);
}

int ctl_info_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	int r = ctl_parse_simple("info", NULL, info_help, g, argc, argv, &o,
				 0, 0, NULL);

	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	return ctl_request(&o, INFO_FALLBACK, ctl_request_new("info"),
			   info_text);
}

