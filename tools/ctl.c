/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl [GLOBAL OPTION]... COMMAND [ARG]...: the command line tool.
 * This file parses the global options, dispatches to a command and holds
 * what the commands share: error messages, number parsing (in cli.h's
 * grammar) and the text/JSON output lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>

#include "config.h"
#include "ctl.h"

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
"  -S, --socket=PATH      the server's socket (default " CTL_DEFAULT_SOCKET ")\n"
"  -C, --control=PATH     the server's control socket (default: the socket's\n"
"                         path with .ctl appended), used by every command\n"
"                         but peer; without -C, peers, ring, info, watch,\n"
"                         dump, read and write join the server as a peer\n"
"                         when it has none (QEMU's server)\n"
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

void ctl_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("ivshmem-ctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_usage_error(const char *command, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("ivshmem-ctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
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

char *ctl_shorten(const char *s)
{
	const size_t max = 40;

	if (strlen(s) <= max)
		return g_strdup(s);
	return g_strdup_printf("%.*s...", (int)max, s);
}

/* ---- output lines -------------------------------------------------------- */

void ctl_json_string(GString *dst, const char *s)
{
	char *valid = g_utf8_make_valid(s, -1);

	g_string_append_c(dst, '"');
	for (const unsigned char *p = (const unsigned char *)valid; *p; p++) {
		switch (*p) {
		case '"':
			g_string_append(dst, "\\\"");
			break;
		case '\\':
			g_string_append(dst, "\\\\");
			break;
		case '\n':
			g_string_append(dst, "\\n");
			break;
		case '\r':
			g_string_append(dst, "\\r");
			break;
		case '\t':
			g_string_append(dst, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				g_string_append_printf(dst, "\\u%04x", *p);
			else
				g_string_append_c(dst, (char)*p);
		}
	}
	g_string_append_c(dst, '"');
	g_free(valid);
}

void ctl_out_init(struct ctl_out *o, bool json)
{
	o->json = json;
	o->buf = g_string_new(NULL);
}

void ctl_out_clear(struct ctl_out *o)
{
	if (o->buf)
		g_string_free(o->buf, TRUE);
	o->buf = NULL;
}

void ctl_out_begin(struct ctl_out *o, const char *event)
{
	g_string_truncate(o->buf, 0);
	if (o->json)
		g_string_append_printf(o->buf, "{\"event\":\"%s\"", event);
	else
		g_string_append(o->buf, event);
}

static void key(struct ctl_out *o, const char *k)
{
	if (o->json)
		g_string_append_printf(o->buf, ",\"%s\":", k);
	else
		g_string_append_printf(o->buf, " %s=", k);
}

void ctl_out_word(struct ctl_out *o, const char *k, const char *word)
{
	if (o->json)
		g_string_append_printf(o->buf, ",\"%s\":\"%s\"", k, word);
	else
		g_string_append_printf(o->buf, " %s", word);
}

void ctl_out_token(struct ctl_out *o, const char *k, const char *token)
{
	key(o, k);
	g_string_append_printf(o->buf, o->json ? "\"%s\"" : "%s", token);
}

void ctl_out_u64(struct ctl_out *o, const char *k, uint64_t v)
{
	key(o, k);
	g_string_append_printf(o->buf, "%" PRIu64, v);
}

void ctl_out_str(struct ctl_out *o, const char *k, const char *s)
{
	key(o, k);
	ctl_json_string(o->buf, s);
}

void ctl_out_ids(struct ctl_out *o, const char *k, const int *ids,
		 unsigned n, bool bare)
{
	if (o->json || !bare)
		key(o, k);
	else if (n)
		g_string_append_c(o->buf, ' ');
	if (o->json)
		g_string_append_c(o->buf, '[');
	for (unsigned i = 0; i < n; i++)
		g_string_append_printf(o->buf, "%s%d", i ? "," : "", ids[i]);
	if (o->json)
		g_string_append_c(o->buf, ']');
}

int ctl_out_end(struct ctl_out *o)
{
	if (o->json)
		g_string_append_c(o->buf, '}');
	g_string_append_c(o->buf, '\n');
	if (fwrite(o->buf->str, 1, o->buf->len, stdout) != o->buf->len ||
	    fflush(stdout) != 0)
		return errno ? -errno : -EIO;
	return 0;
}

int ctl_stdout_status(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_error("cannot write to standard output: %s",
			  g_strerror(errno ? errno : EIO));
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

int ctl_print_json(JsonNode *node)
{
	size_t len;
	char *s = jsonl_line(node, &len);
	int r = 0;

	if (fwrite(s, 1, len, stdout) != len || fflush(stdout) != 0)
		r = errno ? -errno : -EIO;
	g_free(s);
	return r;
}

/* ---- options of the commands that talk to the server --------------------- */

void ctl_opts_init(struct ctl_opts *o, const struct ctl_global *g)
{
	memset(o, 0, sizeof(*o));
	o->socket_path = g->socket_path;
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
	struct ctl_global g = { .socket_path = CTL_DEFAULT_SOCKET };
	const struct ctl_command *cmd;
	int c;

	open_std_fds();
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
		case 'S':
			if (!*optarg)
				return ctl_usage_error(NULL, "the socket path (-S) is empty");
			g.socket_path = optarg;
			break;
		case 'C':
			if (!*optarg)
				return ctl_usage_error(NULL, "the control socket path (-C) is empty");
			g.control_path = optarg;
			break;
		case CTL_OPT_JSON:
			g.json = true;
			break;
		case 'v':
			g.verbose = true;
			break;
		default:
			return ctl_option_error(NULL, c, argv);
		}
	}
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
