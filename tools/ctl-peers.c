/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl peers: the connected peers, one line each under a header.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "ctl.h"

enum { COL_ID, COL_VECTORS, COL_PID, COL_UID, COL_GID, COL_QUEUED,
       COL_CONNECTED, NCOLS };

static void peers_text(JsonObject *r)
{
	static const char *const head[NCOLS] = {
		"ID", "VECTORS", "PID", "UID", "GID", "QUEUED", "CONNECTED",
	};
	static const char *const key[NCOLS - 1] = {
		"id", "vectors", "pid", "uid", "gid", "queued",
	};
	JsonArray *list = ctl_json_array(r, "peers");
	guint n = list ? json_array_get_length(list) : 0;
	GPtrArray *cells = g_ptr_array_new_with_free_func(g_free);
	int width[NCOLS];

	for (int k = 0; k < NCOLS; k++) {
		width[k] = (int)strlen(head[k]);
		g_ptr_array_add(cells, g_strdup(head[k]));
	}
	for (guint i = 0; i < n; i++) {
		JsonNode *pn = json_array_get_element(list, i);
		JsonObject *p = JSON_NODE_HOLDS_OBJECT(pn) ?
				json_node_get_object(pn) : NULL;
		const char *at = ctl_json_str(p, "connected_at");
		double d;
		char *s;

		for (int k = 0; k < NCOLS - 1; k++)
			g_ptr_array_add(cells, ctl_text_of(p, key[k]));
		if (at) {
			char *t = ctl_local_time(at, "%Y-%m-%d %H:%M:%S");

			if (ctl_json_number(p, "connected_for", &d)) {
				char *age = ctl_human_duration(d);

				s = g_strdup_printf("%s (%s ago)", t, age);
				g_free(age);
				g_free(t);
			} else {
				s = t;
			}
		} else {
			s = g_strdup("-");
		}
		g_ptr_array_add(cells, s);
	}
	for (guint i = 0; i < cells->len; i++) {
		int len = (int)g_utf8_strlen(cells->pdata[i], -1);

		if (len > width[i % NCOLS])
			width[i % NCOLS] = len;
	}
	for (guint i = 0; i < cells->len; i++) {
		int k = (int)(i % NCOLS);

		/* Numbers right-aligned, the time as it is. */
		if (k == COL_CONNECTED)
			printf("%s\n", (char *)cells->pdata[i]);
		else
			printf("%*s  ", width[k], (char *)cells->pdata[i]);
	}
	g_ptr_array_unref(cells);
}

#define PEERS_FALLBACK "to list the peers"

static void peers_help(void)
{
	printf(
"Usage: ivshmem-ctl peers [OPTION]...\n"
"List the connected peers, one line each under a header:\n"
"  ID VECTORS PID UID GID QUEUED CONNECTED\n"
"PID, UID and GID are the peer process's credentials; QUEUED the messages\n"
"waiting for it in the server; CONNECTED the local time it connected and\n"
"how long ago. With --json: the server's reply, one object.\n"
"Joined as a peer (see below), it leaves its own ID out.\n");
	ctl_common_help();
	ctl_exit_help(true);
}

int ctl_peers_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	int r = ctl_parse_simple("peers", NULL, peers_help, g, argc, argv, &o,
				 0, 0, NULL);

	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if (o.pci)
		return ctl_pci_no_peers("peers");
	return ctl_request(&o, PEERS_FALLBACK, ctl_request_new("peers"),
			   peers_text);
}

