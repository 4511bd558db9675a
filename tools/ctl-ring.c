/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl ring: ring one vector or every vector of a peer.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "ctl.h"

static void ring_text(JsonObject *r)
{
	JsonArray *v = ctl_json_array(r, "vectors");
	char *peer = ctl_text_of(r, "peer"), *list = ctl_int_list(v);

	printf("rang peer %s vector%s %s\n", peer,
	       v && json_array_get_length(v) == 1 ? "" : "s", list);
	g_free(peer);
	g_free(list);
}

#define RING_FALLBACK "to ring"

static void ring_help(void)
{
	printf(
"Usage: ivshmem-ctl ring [OPTION]... PEER [VECTOR|all]\n"
"Ring vector VECTOR of peer PEER, as another peer would; without VECTOR,\n"
"or with 'all', every vector of PEER. Prints 'rang peer PEER vector V'\n"
"(or 'vectors V,V...'). A peer that is not connected or a vector it does\n"
"not have is a runtime error, said in the server's words.\n");
	ctl_common_help();
	ctl_exit_help(true);
}

int ctl_ring_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	char *args[2];
	JsonNode *req;
	gint64 id;
	uint64_t v = 0;
	bool all;
	int r = ctl_parse_simple("ring", "ring PEER [VECTOR|all]", ring_help, g,
				 argc, argv, &o, 1, 2, args);

	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if (ctl_parse_peer("ring", args[0], &id) != CTL_EXIT_OK)
		return CTL_EXIT_USAGE;
	all = !args[1] || strcmp(args[1], "all") == 0;
	if (!all && ctl_parse_u64(args[1], UINT16_MAX, &v) < 0) {
		char *shown = ctl_shorten(args[1]);

		ctl_usage_error("ring", "'%s' is not a vector: give a number (0 is the first) or 'all'",
				shown);
		g_free(shown);
		return CTL_EXIT_USAGE;
	}
	req = ctl_request_new("ring");
	json_object_set_int_member(json_node_get_object(req), "peer", id);
	if (all)
		json_object_set_string_member(json_node_get_object(req),
					      "vector", "all");
	else
		json_object_set_int_member(json_node_get_object(req),
					   "vector", (gint64)v);
	return ctl_request(&o, RING_FALLBACK, req, ring_text);
}

