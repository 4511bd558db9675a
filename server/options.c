/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <glib.h>

#include "cli.h"
#include "config.h"
#include "options.h"

enum {
	OPT_VERSION = 256,
	OPT_MEMFD,
	OPT_EXACT_SIZE,
	OPT_MAX_PEERS,
	OPT_QUEUE_LIMIT,
	OPT_KEEP_SHM,
	OPT_CONTROL,
	OPT_NO_CONTROL,
	OPT_CONTROL_GROUP,
	OPT_SOCKET_OWNER,
	OPT_SOCKET_GROUP,
	OPT_SOCKET_MODE,
	OPT_ALLOW_UID,
	OPT_ALLOW_GID,
};

static const struct option long_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "foreground", no_argument, NULL, 'F' },
	{ "pidfile", required_argument, NULL, 'p' },
	{ "pid-file", required_argument, NULL, 'p' },
	{ "socket", required_argument, NULL, 'S' },
	{ "shm-name", required_argument, NULL, 'M' },
	{ "shm-dir", required_argument, NULL, 'm' },
	{ "memfd", no_argument, NULL, OPT_MEMFD },
	{ "size", required_argument, NULL, 'l' },
	{ "vectors", required_argument, NULL, 'n' },
	{ "exact-size", no_argument, NULL, OPT_EXACT_SIZE },
	{ "max-peers", required_argument, NULL, OPT_MAX_PEERS },
	{ "queue-limit", required_argument, NULL, OPT_QUEUE_LIMIT },
	{ "keep-shm", no_argument, NULL, OPT_KEEP_SHM },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "no-control", no_argument, NULL, OPT_NO_CONTROL },
	{ "control-group", required_argument, NULL, OPT_CONTROL_GROUP },
	{ "socket-owner", required_argument, NULL, OPT_SOCKET_OWNER },
	{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "allow-uid", required_argument, NULL, OPT_ALLOW_UID },
	{ "allow-gid", required_argument, NULL, OPT_ALLOW_GID },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static void usage(void)
{
	printf(
"Usage: ivshmem-server [OPTION]...\n"
"Share memory and doorbells between QEMU ivshmem devices and other peers.\n"
"A drop-in replacement for QEMU's ivshmem-server: same protocol, flags and\n"
"defaults.\n"
"\n"
"  -h, --help             show this help and exit\n"
"      --version          show the version and exit\n"
"  -v, --verbose          log every connect and disconnect\n"
"  -F, --foreground       do not daemonize (log to stderr)\n"
"  -p, --pidfile=PATH     pid file, written in daemon mode only and removed\n"
"                         at exit (default " DEFAULT_PID_FILE ")\n"
"  -S, --socket=PATH      listening socket (default " CLI_DEFAULT_SOCKET ")\n"
"      --socket-owner=USER\n"
"                         give the socket to USER (a name or a number)\n"
"      --socket-group=GROUP\n"
"                         give the socket to GROUP (a name or a number),\n"
"                         with mode 0660 unless --socket-mode is given\n"
"      --socket-mode=MODE socket permissions in octal, 0..0777 (default: as\n"
"                         the umask leaves them); connecting needs write\n"
"                         permission. Never looser while being set up\n"
"      --allow-uid=USER[,USER...]\n"
"      --allow-gid=GROUP[,GROUP...]\n"
"                         accept only peers whose uid, or whose primary\n"
"                         gid, is listed (names or numbers; repeatable;\n"
"                         root too must be listed); others are closed\n"
"                         before they receive anything, with a warning.\n"
"                         Supplementary groups are not seen. Default:\n"
"                         everyone who can connect to the socket\n"
"  -M, --shm-name=NAME    POSIX shm object NAME (default " CLI_DEFAULT_SHM_NAME ");\n"
"                         an existing one of the same size is reused, so\n"
"                         its content survives a restart; one of another\n"
"                         size is refused, never resized\n"
"  -m, --shm-dir=DIR      use an unlinked file in DIR instead (hugetlbfs)\n"
"      --memfd            use an anonymous memfd sealed against resizing\n"
"  -l, --size=SIZE        shared memory size in bytes (or 0x hex), with an\n"
"                         optional K, M, G, T, P or E suffix (powers of\n"
"                         1024; KiB, MiB, ... too; default 4M); rounded\n"
"                         up to a power of two\n"
"      --exact-size       keep SIZE as given (ivshmem-flat takes any size;\n"
"                         ivshmem-doorbell needs a power of two)\n"
"  -n, --vectors=N        interrupt vectors per peer, 1..%d (default %d)\n"
"      --max-peers=N      at most N peers at once, IDs 0..N-1, 1..%d\n"
"                         (default %d); more connections are refused\n"
"      --queue-limit=N    messages that may wait for a peer that does not\n"
"                         read, beyond its greeting, before it is\n"
"                         disconnected (default %u)\n"
"      --keep-shm         do not remove the POSIX shm object at exit\n"
"      --control=PATH     control socket for ivshmem-ctl: server info, the\n"
"                         peer list, ring or disconnect a peer, events\n"
"                         (default: the socket path with " CLI_CONTROL_SUFFIX " appended);\n"
"                         mode 0600, so only the server's user may use it\n"
"      --control-group=GROUP\n"
"                         let GROUP (a name or a number) use the control\n"
"                         socket too: it gets that group and mode 0660\n"
"      --no-control       no control socket (as QEMU's server)\n"
"\n"
"The last of -M, -m and --memfd wins, as does the last of --control and\n"
"--no-control. On SIGTERM or SIGINT the server closes every connection,\n"
"removes its sockets (and pid file) and, unless --keep-shm, the POSIX shm\n"
"object; peers keep what they have mapped.\n"
"\n"
"Exit status: 0 after a clean shutdown (in daemon mode: once the server is\n"
"serving), 1 on any error.\n",
	       IVSHMEM_MAX_VECTORS, CLI_DEFAULT_VECTORS, IVSHMEM_MAX_PEERS,
	       IVSHMEM_MAX_PEERS, IVSHMEM_DEFAULT_QUEUE_LIMIT);
}

/* A numeric user or group ID. 0 or -ENOENT. */
static int parse_id(const char *s, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!(*s >= '0' && *s <= '9'))
		return -ENOENT;
	errno = 0;
	v = strtoul(s, &end, 10);
	/* (uid_t)-1 and (gid_t)-1 mean "no change" to chown(), and
	 * "unknown" in the credentials of a connection. */
	if (errno || *end || v >= (gid_t)-1 || v >= (uid_t)-1)
		return -ENOENT;
	*out = v;
	return 0;
}

/* A group name, or a number when no group has that name. 0 or -ENOENT. */
static int parse_group(const char *s, gid_t *out)
{
	struct group *gr;
	unsigned long v;

	gr = getgrnam(s);
	if (gr) {
		*out = gr->gr_gid;
		return 0;
	}
	if (parse_id(s, &v) < 0)
		return -ENOENT;
	*out = (gid_t)v;
	return 0;
}

/* A user name, or a number when no user has that name. 0 or -ENOENT. */
static int parse_user(const char *s, uid_t *out)
{
	struct passwd *pw;
	unsigned long v;

	pw = getpwnam(s);
	if (pw) {
		*out = pw->pw_uid;
		return 0;
	}
	if (parse_id(s, &v) < 0)
		return -ENOENT;
	*out = (uid_t)v;
	return 0;
}

/* Octal permission bits, 0 to 0777. 0 or -EINVAL. */
static int parse_mode(const char *s, mode_t *out)
{
	char *end;
	unsigned long v;

	if (!(*s >= '0' && *s <= '7'))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || *end || v > 0777)
		return -EINVAL;
	*out = (mode_t)v;
	return 0;
}

/*
 * Append the comma-separated users (--allow-uid) or groups (--allow-gid)
 * of list to o's lists. NULL, or the entry that is empty or names nobody
 * (g_free it).
 */
static char *add_allowed(struct options *o, const char *list, bool groups)
{
	char **items = g_strsplit(list, ",", -1);
	char *bad = items[0] ? NULL : g_strdup(""); /* an empty list */

	for (unsigned i = 0; items[i] && !bad; i++) {
		uid_t uid;
		gid_t gid;

		if (groups ? parse_group(items[i], &gid) < 0 :
			     parse_user(items[i], &uid) < 0) {
			bad = g_strdup(items[i]);
		} else if (groups) {
			o->allow_gids = g_renew(gid_t, o->allow_gids,
						o->n_allow_gids + 1);
			o->allow_gids[o->n_allow_gids++] = gid;
		} else {
			o->allow_uids = g_renew(uid_t, o->allow_uids,
						o->n_allow_uids + 1);
			o->allow_uids[o->n_allow_uids++] = uid;
		}
	}
	g_strfreev(items);
	return bad;
}

static void replace(char **dst, const char *src)
{
	g_free(*dst);
	*dst = g_strdup(src);
}

/* The daemon runs in /, so relative paths are made absolute first (the
 * socket and pid file are removed by path at exit). */
static void make_absolute(char **path)
{
	char *abs;

	if (g_path_is_absolute(*path))
		return;
	abs = g_canonicalize_filename(*path, NULL);
	g_free(*path);
	*path = abs;
}

/*
 * Say which option getopt_long refused (c is ':' or '?'). A long option
 * names itself in arg; a short one may sit in a group ("-vQ"), so only
 * optopt names it. glibc sets optopt to a long option's value when it was
 * given an argument it does not take ("--keep-shm=x").
 */
static const char *bad_option(int c, const char *arg)
{
	static char msg[256];
	const char *eq = strchr(arg, '=');

	if (strncmp(arg, "--", 2) != 0)
		snprintf(msg, sizeof(msg), c == ':' ?
			 "option '-%c' needs an argument" :
			 "unknown option '-%c'", optopt);
	else if (c == ':')
		snprintf(msg, sizeof(msg), "option '%s' needs an argument", arg);
	else if (eq && optopt)
		snprintf(msg, sizeof(msg), "option '%.*s' takes no argument",
			 (int)(eq - arg), arg);
	else
		snprintf(msg, sizeof(msg), "unknown option '%s'", arg);
	return msg;
}

/* Say why the command line is refused, and where to look:
 * OPTIONS_EXIT_ERR. */
static int fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("ivshmem-server: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'ivshmem-server --help' for more information.\n", stderr);
	return OPTIONS_EXIT_ERR;
}

/* What the command line says beyond struct options, for the checks after
 * it has been read. */
struct given {
	bool no_control;        /* the last of --control, --no-control */
	bool mode;              /* --socket-mode */
};

static void set_defaults(struct options *o)
{
	memset(o, 0, sizeof(*o));
	o->pid_file = g_strdup(DEFAULT_PID_FILE);
	o->socket_path = g_strdup(CLI_DEFAULT_SOCKET);
	o->shm_name = g_strdup(CLI_DEFAULT_SHM_NAME);
	o->shm_kind = IVSHMEM_SHM_POSIX;
	o->size_requested = CLI_DEFAULT_SHM_SIZE;
	o->vectors = CLI_DEFAULT_VECTORS;
	o->max_peers = IVSHMEM_MAX_PEERS;
	o->queue_limit = IVSHMEM_DEFAULT_QUEUE_LIMIT;
}

/* -l, -n, --max-peers, --queue-limit: the grammar of cli.h. The size
 * fits an off_t (ftruncate's), checked again after rounding. */
static int take_number(struct options *o, int c, const char *arg)
{
	g_autofree char *error = NULL;
	int r;

	switch (c) {
	case 'l':
		r = cli_parse_size("size", arg, 1, INT64_MAX,
				   &o->size_requested, &error);
		break;
	case 'n':
		r = cli_parse_uint("vector count", arg, 1,
				   IVSHMEM_MAX_VECTORS, &o->vectors, &error);
		break;
	case OPT_MAX_PEERS:
		r = cli_parse_uint("peer limit", arg, 1, IVSHMEM_MAX_PEERS,
				   &o->max_peers, &error);
		break;
	default: /* OPT_QUEUE_LIMIT */
		r = cli_parse_uint("queue limit", arg, 1, 1u << 24,
				   &o->queue_limit, &error);
		break;
	}
	return r < 0 ? fail("%s", error) : OPTIONS_RUN;
}

/* --allow-uid, --allow-gid. */
static int take_allowed(struct options *o, const char *arg, bool groups)
{
	g_autofree char *bad = add_allowed(o, arg, groups);
	const char *opt = groups ? "gid" : "uid";

	if (!bad)
		return OPTIONS_RUN;
	if (!*bad)
		return fail("an empty entry in '%s' for --allow-%s: give %s names or numbers separated by commas",
			    arg, opt, groups ? "group" : "user");
	return fail("unknown %s '%s' for --allow-%s: give %s",
		    groups ? "group" : "user", bad, opt,
		    groups ? "a group name from /etc/group or a numeric group ID" :
			     "a user name from /etc/passwd or a numeric user ID");
}

/* Who may use the sockets: --control-group, --socket-owner,
 * --socket-group, --socket-mode, --allow-uid, --allow-gid. */
static int take_access(struct options *o, struct given *g, int c,
		       const char *arg)
{
	switch (c) {
	case OPT_CONTROL_GROUP:
		if (parse_group(arg, &o->control_gid) < 0)
			return fail("unknown group '%s' for --control-group: give a group name from /etc/group or a numeric group ID",
				    arg);
		replace(&o->control_group, arg);
		break;
	case OPT_SOCKET_OWNER:
		if (parse_user(arg, &o->socket_uid) < 0)
			return fail("unknown user '%s' for --socket-owner: give a user name from /etc/passwd or a numeric user ID",
				    arg);
		replace(&o->socket_owner, arg);
		break;
	case OPT_SOCKET_GROUP:
		if (parse_group(arg, &o->socket_gid) < 0)
			return fail("unknown group '%s' for --socket-group: give a group name from /etc/group or a numeric group ID",
				    arg);
		replace(&o->socket_group, arg);
		break;
	case OPT_SOCKET_MODE:
		if (parse_mode(arg, &o->socket_mode) < 0)
			return fail("invalid socket mode '%s' for --socket-mode: give octal permission bits from 0 to 0777 (for example 0660)",
				    arg);
		g->mode = true;
		break;
	default: /* OPT_ALLOW_UID, OPT_ALLOW_GID */
		return take_allowed(o, arg, c == OPT_ALLOW_GID);
	}
	return OPTIONS_RUN;
}

/* One option from getopt_long: OPTIONS_RUN to go on, else the result. */
static int take_option(struct options *o, struct given *g, int c,
		       char **argv)
{
	switch (c) {
	case 'h':
		usage();
		return OPTIONS_EXIT_OK;
	case OPT_VERSION:
		printf("ivshmem-server (libivshmem) %s\n", IVSHMEM_VERSION);
		return OPTIONS_EXIT_OK;
	case 'v':
		o->verbose = true;
		break;
	case 'F':
		o->foreground = true;
		break;
	case 'p':
		if (!*optarg)
			return fail("the pid file path (-p) is empty");
		replace(&o->pid_file, optarg);
		break;
	case 'S':
		replace(&o->socket_path, optarg);
		break;
	case 'M':
		replace(&o->shm_name, optarg);
		o->shm_kind = IVSHMEM_SHM_POSIX;
		break;
	case 'm':
		replace(&o->shm_dir, optarg);
		o->shm_kind = IVSHMEM_SHM_DIR;
		break;
	case OPT_MEMFD:
		o->shm_kind = IVSHMEM_SHM_MEMFD;
		break;
	case 'l':
	case 'n':
	case OPT_MAX_PEERS:
	case OPT_QUEUE_LIMIT:
		return take_number(o, c, optarg);
	case OPT_EXACT_SIZE:
		o->exact_size = true;
		break;
	case OPT_KEEP_SHM:
		o->keep_shm = true;
		break;
	case OPT_CONTROL:
		if (!*optarg)
			return fail("the control socket path (--control) is empty");
		replace(&o->control_path, optarg);
		g->no_control = false;
		break;
	case OPT_NO_CONTROL:
		g->no_control = true;
		break;
	case OPT_CONTROL_GROUP:
	case OPT_SOCKET_OWNER:
	case OPT_SOCKET_GROUP:
	case OPT_SOCKET_MODE:
	case OPT_ALLOW_UID:
	case OPT_ALLOW_GID:
		return take_access(o, g, c, optarg);
	default:
		return fail("%s", bad_option(c, argv[optind - 1]));
	}
	return OPTIONS_RUN;
}

static int read_options(int argc, char **argv, struct options *o,
			struct given *g)
{
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hvFp:S:M:m:l:n:", long_options,
				NULL)) != -1) {
		r = take_option(o, g, c, argv);
		if (r != OPTIONS_RUN)
			return r;
	}
	if (optind < argc)
		return fail("unexpected argument '%s'", argv[optind]);
	return OPTIONS_RUN;
}

/* -S, made absolute for the daemon, fits a UNIX socket address. */
static int check_socket_path(struct options *o)
{
	const size_t sun_max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

	if (!*o->socket_path)
		return fail("the socket path (-S) is empty");
	if (!o->foreground) {
		make_absolute(&o->socket_path);
		make_absolute(&o->pid_file);
	}
	if (strlen(o->socket_path) > sun_max)
		return fail("socket path '%s' is too long: it has %zu bytes and a UNIX socket path can have at most %zu",
			    o->socket_path, strlen(o->socket_path), sun_max);
	return OPTIONS_RUN;
}

/* The control socket: none, the default after -S is known (absolute when
 * it is), or --control, which must fit and not be the peer socket. */
static int check_control_path(struct options *o, const struct given *g)
{
	const size_t sun_max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	g_autofree char *a = NULL, *b = NULL;

	if (g->no_control) {
		if (o->control_group)
			return fail("--control-group needs a control socket: drop --no-control or --control-group");
		g_free(o->control_path);
		o->control_path = NULL;
		return OPTIONS_RUN;
	}
	if (!o->control_path) {
		o->control_path = g_strconcat(o->socket_path,
					      CLI_CONTROL_SUFFIX, NULL);
		if (strlen(o->control_path) > sun_max)
			return fail("the control socket path '%s' (the socket path with " CLI_CONTROL_SUFFIX " appended) is too long: it has %zu bytes and a UNIX socket path can have at most %zu; choose a shorter one with --control, or give --no-control",
				    o->control_path, strlen(o->control_path),
				    sun_max);
		return OPTIONS_RUN;
	}
	if (!o->foreground)
		make_absolute(&o->control_path);
	if (strlen(o->control_path) > sun_max)
		return fail("control socket path '%s' is too long: it has %zu bytes and a UNIX socket path can have at most %zu",
			    o->control_path, strlen(o->control_path), sun_max);
	a = g_canonicalize_filename(o->control_path, NULL);
	b = g_canonicalize_filename(o->socket_path, NULL);
	if (strcmp(a, b) == 0)
		return fail("the control socket (--control) cannot be the peer socket %s: choose another path",
			    o->socket_path);
	return OPTIONS_RUN;
}

static int check_shm_name(const struct options *o)
{
	const char *n = o->shm_name + (o->shm_name[0] == '/');

	if (o->shm_kind == IVSHMEM_SHM_POSIX &&
	    (!*o->shm_name || strchr(n, '/') || !*n))
		return fail("invalid shm name '%s': give a name without '/' (for example ivshmem)",
			    o->shm_name);
	return OPTIONS_RUN;
}

/* What will be created: the size asked for, rounded up to a power of two
 * unless --exact-size (ivshmem-doorbell needs one). */
static int settle_size(struct options *o)
{
	o->size = o->size_requested;
	/* At most INT64_MAX (the grammar's bound): rounds up to at most
	 * 2^63, refused below. */
	if (!o->exact_size && (o->size & (o->size - 1))) {
		while (o->size & (o->size - 1))
			o->size += o->size & -o->size;
		o->size_rounded = true;
	}
	if (o->size > (uint64_t)INT64_MAX)
		return fail("size %" PRIu64 " is too large", o->size);
	return OPTIONS_RUN;
}

/* The peer socket's mode when any of its permissions is asked for. */
static void settle_socket_mode(struct options *o, const struct given *g)
{
	mode_t mask;

	o->socket_perm = g->mode || o->socket_owner || o->socket_group;
	if (!o->socket_perm || g->mode)
		return;
	/* A group is given the socket to use it, as with --control-group;
	 * an owner alone changes no bits. */
	mask = umask(0);
	umask(mask);
	o->socket_mode = o->socket_group ? 0660 : 0777 & ~mask;
}

int options_parse(int argc, char **argv, struct options *o)
{
	struct given g = { 0 };
	int r;

	set_defaults(o);
	r = read_options(argc, argv, o, &g);
	if (r == OPTIONS_RUN)
		r = check_socket_path(o);
	if (r == OPTIONS_RUN)
		r = check_control_path(o, &g);
	if (r == OPTIONS_RUN)
		r = check_shm_name(o);
	if (r == OPTIONS_RUN)
		r = settle_size(o);
	if (r == OPTIONS_RUN)
		settle_socket_mode(o, &g);
	else
		options_free(o);
	return r;
}

bool options_allowed(const struct options *o, uid_t uid, gid_t gid)
{
	if (!o->n_allow_uids && !o->n_allow_gids)
		return true;
	for (unsigned i = 0; i < o->n_allow_uids; i++)
		if (o->allow_uids[i] == uid)
			return true;
	for (unsigned i = 0; i < o->n_allow_gids; i++)
		if (o->allow_gids[i] == gid)
			return true;
	return false;
}

void options_free(struct options *o)
{
	g_free(o->pid_file);
	g_free(o->shm_name);
	g_free(o->shm_dir);
	g_free(o->socket_path);
	g_free(o->control_path);
	g_free(o->control_group);
	g_free(o->socket_owner);
	g_free(o->socket_group);
	g_free(o->allow_uids);
	g_free(o->allow_gids);
	memset(o, 0, sizeof(*o));
}
