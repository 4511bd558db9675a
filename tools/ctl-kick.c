/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl kick: disconnect a peer (the control socket only).
 */
#include <stdio.h>

#include <glib.h>

#include "ctl.h"

static void kick_text(JsonObject *r)
{
	char *peer = ctl_text_of(r, "peer");

	printf("disconnected peer %s\n", peer);
	g_free(peer);
}

static void kick_help(void)
{
	printf(
"Usage: ivshmem-ctl kick [OPTION]... PEER\n"
"Disconnect peer PEER; the other peers are told it left. Prints\n"
"'disconnected peer PEER'. Needs the server's control socket (a peer\n"
"cannot do this).\n");
	ctl_common_help();
	ctl_exit_help(false);
}

int ctl_kick_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	char *args[1];
	JsonNode *req;
	gint64 id;
	int r = ctl_parse_simple("kick", "kick PEER", kick_help, g, argc, argv,
				 &o, 1, 1, args);

	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if (ctl_parse_peer("kick", args[0], &id) != CTL_EXIT_OK)
		return CTL_EXIT_USAGE;
	req = ctl_request_new("kick");
	json_object_set_int_member(json_node_get_object(req), "peer", id);
	return ctl_request(&o, NULL, req, kick_text);
}

