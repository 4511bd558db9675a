/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: the common options (the global ones, which every command
 * takes again after its name), the parsing of a command with none of its
 * own, a peer ID argument, and the lines the commands' --help share.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <glib.h>

#include "ctl.h"
#include "ivshmem.h"

void ctl_opts_init(struct ctl_opts *o, const struct ctl_global *g)
{
	memset(o, 0, sizeof(*o));
	o->socket_path = g->socket_path;
	o->pci = g->pci;
	o->control_path = g->control_path;
	o->control_given = g->control_path != NULL;
	o->json = g->json;
	o->verbose = g->verbose;
}

int ctl_common_option(const char *command, int c, char **argv,
		      struct ctl_opts *o)
{
	switch (c) {
	case 'S':
		if (!*optarg)
			return ctl_usage_error(command, "the socket path (-S) is empty");
		o->socket_path = optarg;
		return CTL_EXIT_OK;
	case 'C':
		if (!*optarg)
			return ctl_usage_error(command, "the control socket path (-C) is empty");
		o->control_path = optarg;
		o->control_given = true;
		return CTL_EXIT_OK;
	case CTL_OPT_JSON:
		o->json = true;
		return CTL_EXIT_OK;
	case CTL_OPT_PCI:
		if (!*optarg)
			return ctl_usage_error(command, "the PCI address (--pci) is empty: give one like 0000:00:03.0, or auto");
		o->pci = optarg;
		return CTL_EXIT_OK;
	case 'v':
		o->verbose = true;
		return CTL_EXIT_OK;
	case ':':
	case '?':
		return ctl_option_error(command, c, argv);
	default:
		return -1;
	}
}

int ctl_opts_check(const char *command, struct ctl_opts *o)
{
	const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

	if (strlen(o->socket_path) > max)
		return ctl_usage_error(command, "socket path '%s' is too long: a UNIX socket path can have at most %zu bytes",
				       o->socket_path, max);
	if (!o->control_path) {
		/* Fits: max + 4 < sizeof(control_buf). */
		snprintf(o->control_buf, sizeof(o->control_buf), "%s.ctl",
			 o->socket_path);
		o->control_path = o->control_buf;
	}
	if (strlen(o->control_path) > max)
		return ctl_usage_error(command, "control socket path '%s' is too long: a UNIX socket path can have at most %zu bytes%s",
				       o->control_path, max,
				       o->control_given ? "" :
				       " (give a shorter one with -C)");
	return CTL_EXIT_OK;
}

void ctl_common_help(void)
{
	printf("\n" CTL_COMMON_HELP);
}

void ctl_exit_help(bool fallback)
{
	printf("\n"
"Exit status: 0 on success; 1 on a runtime error (the server cannot be\n"
"reached, or refused the request: its sentence is shown on standard error);\n"
"2 on a usage error.\n");
	if (fallback)
		printf("\n"
"Without a control socket (QEMU's server, or ivshmem-server --no-control)\n"
"and with no -C, it joins the server as a peer instead, and says so on\n"
"standard error; what a peer cannot know is shown as '-' (null in JSON,\n"
"with \"via\":\"peer\").\n");
}

static const struct option common_long_options[] = {
	CTL_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 },
};

int ctl_parse_simple(const char *command, const char *synopsis,
		     void (*help)(void), const struct ctl_global *g,
		     int argc, char **argv, struct ctl_opts *o, int min,
		     int max, char **args)
{
	int c, r;

	ctl_opts_init(o, g);
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_COMMON_SHORTOPTS,
				common_long_options, NULL)) != -1) {
		if (c == 'h') {
			help();
			return -1;
		}
		r = ctl_common_option(command, c, argv, o);
		if (r != CTL_EXIT_OK)
			return CTL_EXIT_USAGE;
	}
	if (argc - optind > max)
		return ctl_usage_error(command, "unexpected argument '%s'%s%s%s",
				       argv[optind + max],
				       synopsis ? ": give '" : "",
				       synopsis ? synopsis : "",
				       synopsis ? "'" : "");
	if (argc - optind < min)
		return ctl_usage_error(command, "missing argument: give '%s'",
				       synopsis);
	for (int i = 0; i < max; i++)
		args[i] = optind + i < argc ? argv[optind + i] : NULL;
	return ctl_opts_check(command, o);
}

int ctl_parse_peer(const char *command, const char *s, gint64 *id)
{
	uint64_t v;
	char *shown;

	if (ctl_parse_u64(s, IVSHMEM_MAX_PEERS - 1, &v) == 0) {
		*id = (gint64)v;
		return CTL_EXIT_OK;
	}
	shown = ctl_shorten(s);
	ctl_usage_error(command, "'%s' is not a peer ID: give a number from 0 to %d",
			shown, IVSHMEM_MAX_PEERS - 1);
	g_free(shown);
	return CTL_EXIT_USAGE;
}
