/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl [GLOBAL OPTION]... COMMAND [ARG]...: the command line tool.
 * This file parses the global options, dispatches to a command and holds
 * what the commands share: error messages, number parsing (in cli.h's
 * grammar), the clock, and the library peer's ID list and log.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "config.h"
#include "ctl.h"
#include "ivshmem.h"

static const struct ctl_command commands[] = {
	{ "info", "show the server: version, sockets, shared memory, vectors",
	  ctl_info_run },
	{ "peers", "list the connected peers", ctl_peers_run },
	{ "ring", "ring a peer's doorbell (one vector or all)", ctl_ring_run },
	{ "kick", "disconnect a peer", ctl_kick_run },
	{ "watch", "print peers joining and leaving as it happens",
	  ctl_watch_run },
	{ "dump", "show the shared memory in hex and ASCII", ctl_dump_run },
	{ "read", "copy shared-memory bytes to standard output",
	  ctl_read_run },
	{ "write", "write bytes (hex, or standard input) into the shared memory",
	  ctl_write_run },
	{ "peer", "join the server as a peer: events out, commands in",
	  ctl_peer_run },
	{ "channel", "channels in the shared memory: init, list, stat, send, recv",
	  ctl_channel_run },
	{ "guest", "inside a Linux guest: list the ivshmem PCI devices, bind one to vfio-pci",
	  ctl_guest_run },
};

enum {
	OPT_VERSION = CTL_OPT_OWN,
};

static const struct option long_options[] = {
	CTL_COMMON_LONGOPTS,
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static void usage(void)
{
	printf(
"Usage: ivshmem-ctl [GLOBAL OPTION]... COMMAND [OPTION]... [ARG]...\n"
"Talk to an ivshmem server: list and watch its peers, ring doorbells, look\n"
"into the shared memory, join it as a peer.\n"
"\n"
"Commands:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	printf(
"  help CMD   show the help of CMD (the same as: ivshmem-ctl CMD --help)\n"
"\n"
"Global options (every command also takes them after its name):\n"
"  -S, --socket=PATH      the server's socket (default " CLI_DEFAULT_SOCKET ")\n"
"  -C, --control=PATH     the server's control socket (default: the socket's\n"
"                         path with .ctl appended), used by every command\n"
"                         but peer; without -C, peers, ring, info, watch,\n"
"                         dump, read and write join the server as a peer\n"
"                         when it has none (QEMU's server)\n"
"      --pci=ADDR         inside a Linux guest: use the ivshmem PCI device\n"
"                         at ADDR (auto: the first) instead of a server\n"
"                         (info, ring, dump, read, write, peer, channel)\n"
"      --json             print one JSON object per line instead of text\n"
"  -v, --verbose          also show the library's informational messages\n"
"  -h, --help             show this help and exit\n"
"      --version          show the version and exit\n"
"\n"
"Exit status:\n"
"  0  success (see each command for when it ends)\n"
"  1  runtime error: cannot connect, the server went away, a timeout;\n"
"     one sentence on standard error says which\n"
"  2  usage error: a bad option, argument or command\n"
"\n"
"Run 'ivshmem-ctl COMMAND --help' for a command's options; see also\n"
"ivshmem-ctl(1).\n");
}

static void verror(const char *fmt, va_list ap) G_GNUC_PRINTF(1, 0);

static void verror(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("ivshmem-ctl: ", stderr);
	vfprintf(stderr, fmt, ap);
}

void ctl_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_usage_error(const char *command, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ivshmem-ctl %s%s--help' for more information.\n",
		command ? command : "", command ? " " : "");
	return CTL_EXIT_USAGE;
}

int ctl_option_error(const char *command, int c, char **argv)
{
	const char *arg = argv[optind - 1], *eq;

	/* A long option has been stepped over; a short one may sit in a
	 * group ("-vx"), so only optopt names it. */
	if (strncmp(arg, "--", 2) == 0) {
		eq = strchr(arg, '=');
		if (c == ':')
			return ctl_usage_error(command, "option '%s' needs an argument",
					       arg);
		/* glibc sets optopt to a known option's val when it was
		 * given an argument it does not take. */
		if (eq && optopt)
			return ctl_usage_error(command, "option '%.*s' takes no argument",
					       (int)(eq - arg), arg);
		return ctl_usage_error(command, "unknown option '%s'", arg);
	}
	if (c == ':')
		return ctl_usage_error(command, "option '-%c' needs an argument",
				       optopt);
	return ctl_usage_error(command, "unknown option '-%c'", optopt);
}

int ctl_connect_error(const char *path, int err, const char *start,
		      bool control)
{
	switch (err) {
	case -ENOENT:
	case -ECONNREFUSED:
		ctl_error("cannot connect to %s: %s; is ivshmem-server running? (start it with: %s)",
			  path, err == -ENOENT ? "no such file" :
			  "nobody is listening on it", start);
		break;
	case -EACCES:
	case -EPERM:
		if (control)
			ctl_error("cannot connect to %s: permission denied; the control socket is only for the server's user, unless the server was started with --control-group=GROUP for a group of yours",
				  path);
		else
			ctl_error("cannot connect to %s: permission denied",
				  path);
		break;
	case -EAGAIN:
		ctl_error("cannot connect to %s: the server's backlog is full (try again later)",
			  path);
		break;
	default:
		ctl_error("cannot connect to %s: %s", path, g_strerror(-err));
	}
	return CTL_EXIT_FAILURE;
}

int ctl_signalfd(void)
{
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		ctl_error("cannot set up signal handling: %s", g_strerror(errno));
		return -1;
	}
	return sfd;
}

int ctl_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	return cli_parse_u64("number", s, 0, max, out, NULL);
}

int ctl_parse_size(const char *s, uint64_t max, uint64_t *out)
{
	return cli_parse_size("size", s, 0, max, out, NULL);
}

int ctl_parse_seconds(const char *s, double *out)
{
	return cli_parse_seconds("time", s, out, NULL);
}

int ctl_u64_usage_error(const char *command, const char *what,
			const char *s, uint64_t max)
{
	g_autofree char *error = NULL;
	uint64_t v;

	if (cli_parse_u64(what, s, 0, max, &v, &error) == 0)
		error = g_strdup_printf("invalid %s", what);
	return ctl_usage_error(command, "%s", error);
}

int ctl_size_usage_error(const char *command, const char *what,
			 const char *s, uint64_t max)
{
	g_autofree char *error = NULL;
	uint64_t v;

	if (cli_parse_size(what, s, 0, max, &v, &error) == 0)
		error = g_strdup_printf("invalid %s", what);
	return ctl_usage_error(command, "%s", error);
}

int ctl_seconds_usage_error(const char *command, const char *what,
			    const char *s)
{
	g_autofree char *error = NULL;
	double v;

	if (cli_parse_seconds(what, s, &v, &error) == 0)
		error = g_strdup_printf("invalid %s", what);
	return ctl_usage_error(command, "%s", error);
}

GByteArray *ctl_parse_hex(const char *s)
{
	GByteArray *b;
	size_t len;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	len = strlen(s);
	for (size_t i = 0; i < len; i++)
		if (g_ascii_xdigit_value(s[i]) < 0)
			return NULL;
	if (!len || len % 2)
		return NULL;
	b = g_byte_array_sized_new((guint)(len / 2));
	for (size_t i = 0; i < len; i += 2) {
		guint8 byte = (guint8)(g_ascii_xdigit_value(s[i]) << 4 |
				       g_ascii_xdigit_value(s[i + 1]));

		g_byte_array_append(b, &byte, 1);
	}
	return b;
}

char *ctl_hex(const void *data, size_t n)
{
	const unsigned char *b = data;
	GString *hex = g_string_sized_new(2 * n + 1);

	for (size_t i = 0; i < n; i++)
		g_string_append_printf(hex, "%02x", b[i]);
	return g_string_free(hex, FALSE);
}

char *ctl_shorten(const char *s)
{
	const size_t max = 40;

	if (strlen(s) <= max)
		return g_strdup(s);
	return g_strdup_printf("%.*s...", (int)max, s);
}

/* ---- time and the library's peer ----------------------------------------- */

double ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ctl_ms_left(double deadline)
{
	double ms = ceil((deadline - ctl_now()) * 1000);

	/* A poll() timeout is an int: a longer wait is taken in turns of
	 * INT_MAX ms, its callers check the deadline again each time. */
	if (ms <= 0)
		return 0;
	return ms >= INT_MAX ? INT_MAX : (int)ms;
}

int ctl_pci_open(const struct ctl_opts *o, struct ivshmem_peer *peer)
{
	struct ivshmem_pci_info info;
	char why[256];
	int r;

	r = ivshmem_peer_open_pci(peer, strcmp(o->pci, "auto") ? o->pci : NULL,
				  0, why, sizeof(why));
	if (r < 0) {
		ctl_error("%s", why[0] ? why : g_strerror(-r));
		return CTL_EXIT_FAILURE;
	}
	if (ivshmem_peer_get_pci(peer, &info) == 0 &&
	    info.mode == IVSHMEM_PCI_MODE_POLL)
		ctl_error("%s through sysfs: its doorbells are polled every %u ms, not interrupts (%s)",
			  info.address, info.poll_us / 1000, info.why);
	return CTL_EXIT_OK;
}

int ctl_pci_no_peers(const char *command)
{
	ctl_error("%s: inside a guest (--pci) the other peers are not known (the device tells nothing of them): run ivshmem-ctl %s on the host, against the server",
		  command, command);
	return CTL_EXIT_FAILURE;
}

int *ctl_peer_ids(struct ivshmem_peer *peer, unsigned *n)
{
	int r = ivshmem_peer_get_peers(peer, NULL, 0);
	int *ids = NULL;

	/* One thread, no dispatch in between: the count holds. */
	if (r > 0) {
		ids = g_new(int, r);
		r = ivshmem_peer_get_peers(peer, ids, (unsigned)r);
	}
	*n = r > 0 ? (unsigned)r : 0;
	return ids;
}

void ctl_log(bool verbose, int priority, const char *fmt, va_list ap)
{
	if (priority > IVSHMEM_LOG_WARNING && !verbose)
		return;
	fflush(stdout);
	fputs("ivshmem-ctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* ---- main ---------------------------------------------------------------- */

static const struct ctl_command *find_command(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static char *command_list(void)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		g_string_append_printf(s, "%s%s", i ? ", " : "",
				       commands[i].name);
	return g_string_free(s, FALSE);
}

static int unknown_command(const char *name)
{
	char *list = command_list(), *shown = ctl_shorten(name);
	int r = ctl_usage_error(NULL, "unknown command '%s' (commands: %s)",
				shown, list);

	g_free(list);
	g_free(shown);
	return r;
}

/* Run cmd with argv[0] its name; optind is reset for its own getopt. */
static int run_command(const struct ctl_command *cmd,
		       const struct ctl_global *g, int argc, char **argv)
{
	optind = 0;     /* glibc: start afresh, argv[0] is skipped */
	return cmd->run(g, argc, argv);
}

/* Make sure fds 0..2 are open, so no fd this process opens becomes its
 * stdin or stdout by accident. */
static void open_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int n = open("/dev/null", O_RDWR);

		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

int main(int argc, char **argv)
{
	struct ctl_global g = { .socket_path = CLI_DEFAULT_SOCKET };
	const struct ctl_command *cmd;
	struct ctl_opts o;
	int c;

	open_std_fds();
	ctl_opts_init(&o, &g);
	opterr = 0;
	/* '+': stop at the command; what follows it is the command's. */
	while ((c = getopt_long(argc, argv, "+:hS:C:v", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'h':
			usage();
			return CTL_EXIT_OK;
		case OPT_VERSION:
			printf("ivshmem-ctl (libivshmem) %s\n", IVSHMEM_VERSION);
			return CTL_EXIT_OK;
		default:
			/* -S, -C, --json, -v and what is wrong. */
			if (ctl_common_option(NULL, c, argv, &o) != CTL_EXIT_OK)
				return CTL_EXIT_USAGE;
		}
	}
	g.socket_path = o.socket_path;
	g.pci = o.pci;
	g.control_path = o.control_given ? o.control_path : NULL;
	g.json = o.json;
	g.verbose = o.verbose;
	if (optind >= argc) {
		char *list = command_list();
		int r = ctl_usage_error(NULL, "no command given (commands: %s)",
					list);

		g_free(list);
		return r;
	}

	if (strcmp(argv[optind], "help") == 0) {
		char *help_argv[] = { NULL, (char *)"--help", NULL };

		if (optind + 1 >= argc) {
			usage();
			return CTL_EXIT_OK;
		}
		if (optind + 2 < argc)
			return ctl_usage_error(NULL, "unexpected argument '%s'",
					       argv[optind + 2]);
		cmd = find_command(argv[optind + 1]);
		if (!cmd)
			return unknown_command(argv[optind + 1]);
		help_argv[0] = (char *)cmd->name;
		return run_command(cmd, &g, 2, help_argv);
	}

	cmd = find_command(argv[optind]);
	if (!cmd)
		return unknown_command(argv[optind]);
	return run_command(cmd, &g, argc - optind, argv + optind);
}
