/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <glib.h>

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
"  -S, --socket=PATH      listening socket (default " DEFAULT_SOCKET_PATH ")\n"
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
"  -M, --shm-name=NAME    POSIX shm object NAME (default " DEFAULT_SHM_NAME ");\n"
"                         an existing one of the same size is reused, so\n"
"                         its content survives a restart; one of another\n"
"                         size is refused, never resized\n"
"  -m, --shm-dir=DIR      use an unlinked file in DIR instead (hugetlbfs)\n"
"      --memfd            use an anonymous memfd sealed against resizing\n"
"  -l, --size=SIZE        shared memory size, with K, M, G or T suffix\n"
"                         (default 4M); rounded up to a power of two\n"
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
"                         (default: the socket path with " CONTROL_SUFFIX " appended);\n"
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
	       IVSHMEM_MAX_VECTORS, DEFAULT_VECTORS, IVSHMEM_MAX_PEERS,
	       IVSHMEM_MAX_PEERS, IVSHMEM_DEFAULT_QUEUE_LIMIT);
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !(*s >= '0' && *s <= '9'))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	case 'p': case 'P': shift = 50; break;
	case 'e': case 'E': shift = 60; break;
	default: return -EINVAL;
	}
	if (*end && end[1] != '\0')
		return -EINVAL;
	if (v == 0)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !(*s >= '0' && *s <= '9'))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -ERANGE;
	*out = (unsigned)v;
	return 0;
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

#define fail(...) do { \
	fprintf(stderr, "ivshmem-server: " __VA_ARGS__); \
	fputs("\nTry 'ivshmem-server --help' for more information.\n", stderr); \
	options_free(o); \
	return OPTIONS_EXIT_ERR; \
} while (0)

int options_parse(int argc, char **argv, struct options *o)
{
	const size_t sun_max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	bool no_control = false, mode_given = false;
	int c;

	memset(o, 0, sizeof(*o));
	o->pid_file = g_strdup(DEFAULT_PID_FILE);
	o->socket_path = g_strdup(DEFAULT_SOCKET_PATH);
	o->shm_name = g_strdup(DEFAULT_SHM_NAME);
	o->shm_kind = IVSHMEM_SHM_POSIX;
	o->size_requested = DEFAULT_SHM_SIZE;
	o->vectors = DEFAULT_VECTORS;
	o->max_peers = IVSHMEM_MAX_PEERS;
	o->queue_limit = IVSHMEM_DEFAULT_QUEUE_LIMIT;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hvFp:S:M:m:l:n:", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'h':
			usage();
			options_free(o);
			return OPTIONS_EXIT_OK;
		case OPT_VERSION:
			printf("ivshmem-server (libivshmem) %s\n", IVSHMEM_VERSION);
			options_free(o);
			return OPTIONS_EXIT_OK;
		case 'v':
			o->verbose = true;
			break;
		case 'F':
			o->foreground = true;
			break;
		case 'p':
			if (!*optarg)
				fail("the pid file path (-p) is empty");
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
		case 'l': {
			int r = parse_size(optarg, &o->size_requested);

			if (r == -ERANGE)
				fail("size '%s' is too large", optarg);
			if (r < 0)
				fail("invalid size '%s': give a positive number of bytes, optionally with a K, M, G or T suffix (for example 4M)",
				     optarg);
			break;
		}
		case 'n':
			if (parse_uint(optarg, 1, IVSHMEM_MAX_VECTORS,
				       &o->vectors) < 0)
				fail("invalid vector count '%s': give a number from 1 to %d",
				     optarg, IVSHMEM_MAX_VECTORS);
			break;
		case OPT_EXACT_SIZE:
			o->exact_size = true;
			break;
		case OPT_MAX_PEERS:
			if (parse_uint(optarg, 1, IVSHMEM_MAX_PEERS,
				       &o->max_peers) < 0)
				fail("invalid peer limit '%s': give a number from 1 to %d",
				     optarg, IVSHMEM_MAX_PEERS);
			break;
		case OPT_QUEUE_LIMIT:
			if (parse_uint(optarg, 1, 1u << 24, &o->queue_limit) < 0)
				fail("invalid queue limit '%s': give a number from 1 to %u",
				     optarg, 1u << 24);
			break;
		case OPT_KEEP_SHM:
			o->keep_shm = true;
			break;
		case OPT_CONTROL:
			if (!*optarg)
				fail("the control socket path (--control) is empty");
			replace(&o->control_path, optarg);
			no_control = false;
			break;
		case OPT_NO_CONTROL:
			no_control = true;
			break;
		case OPT_CONTROL_GROUP:
			if (parse_group(optarg, &o->control_gid) < 0)
				fail("unknown group '%s' for --control-group: give a group name from /etc/group or a numeric group ID",
				     optarg);
			replace(&o->control_group, optarg);
			break;
		case OPT_SOCKET_OWNER:
			if (parse_user(optarg, &o->socket_uid) < 0)
				fail("unknown user '%s' for --socket-owner: give a user name from /etc/passwd or a numeric user ID",
				     optarg);
			replace(&o->socket_owner, optarg);
			break;
		case OPT_SOCKET_GROUP:
			if (parse_group(optarg, &o->socket_gid) < 0)
				fail("unknown group '%s' for --socket-group: give a group name from /etc/group or a numeric group ID",
				     optarg);
			replace(&o->socket_group, optarg);
			break;
		case OPT_SOCKET_MODE:
			if (parse_mode(optarg, &o->socket_mode) < 0)
				fail("invalid socket mode '%s' for --socket-mode: give octal permission bits from 0 to 0777 (for example 0660)",
				     optarg);
			mode_given = true;
			break;
		case OPT_ALLOW_UID:
		case OPT_ALLOW_GID: {
			bool groups = c == OPT_ALLOW_GID;
			char *bad = add_allowed(o, optarg, groups);

			if (bad) {
				char msg[512];

				if (!*bad)
					snprintf(msg, sizeof(msg),
						 "an empty entry in '%s' for --allow-%s: give %s names or numbers separated by commas",
						 optarg, groups ? "gid" : "uid",
						 groups ? "group" : "user");
				else
					snprintf(msg, sizeof(msg),
						 "unknown %s '%s' for --allow-%s: give %s",
						 groups ? "group" : "user", bad,
						 groups ? "gid" : "uid",
						 groups ? "a group name from /etc/group or a numeric group ID" :
							  "a user name from /etc/passwd or a numeric user ID");
				g_free(bad);
				fail("%s", msg);
			}
			break;
		}
		default:
			fail("%s", bad_option(c, argv[optind - 1]));
		}
	}
	if (optind < argc)
		fail("unexpected argument '%s'", argv[optind]);

	if (!*o->socket_path)
		fail("the socket path (-S) is empty");
	if (!o->foreground) {
		make_absolute(&o->socket_path);
		make_absolute(&o->pid_file);
	}
	if (strlen(o->socket_path) > sun_max)
		fail("socket path '%s' is too long: it has %zu bytes and a UNIX socket path can have at most %zu",
		     o->socket_path, strlen(o->socket_path), sun_max);

	if (no_control) {
		if (o->control_group)
			fail("--control-group needs a control socket: drop --no-control or --control-group");
		g_free(o->control_path);
		o->control_path = NULL;
	} else if (!o->control_path) {
		/* After -S is known, and absolute when it is. */
		o->control_path = g_strconcat(o->socket_path, CONTROL_SUFFIX,
					      NULL);
		if (strlen(o->control_path) > sun_max)
			fail("the control socket path '%s' (the socket path with " CONTROL_SUFFIX " appended) is too long: it has %zu bytes and a UNIX socket path can have at most %zu; choose a shorter one with --control, or give --no-control",
			     o->control_path, strlen(o->control_path), sun_max);
	} else {
		char *a, *b;
		bool same;

		if (!o->foreground)
			make_absolute(&o->control_path);
		if (strlen(o->control_path) > sun_max)
			fail("control socket path '%s' is too long: it has %zu bytes and a UNIX socket path can have at most %zu",
			     o->control_path, strlen(o->control_path), sun_max);
		a = g_canonicalize_filename(o->control_path, NULL);
		b = g_canonicalize_filename(o->socket_path, NULL);
		same = strcmp(a, b) == 0;
		g_free(a);
		g_free(b);
		if (same)
			fail("the control socket (--control) cannot be the peer socket %s: choose another path",
			     o->socket_path);
	}
	if (o->shm_kind == IVSHMEM_SHM_POSIX &&
	    (!*o->shm_name || strchr(o->shm_name + (o->shm_name[0] == '/'), '/') ||
	     !o->shm_name[o->shm_name[0] == '/']))
		fail("invalid shm name '%s': give a name without '/' (for example ivshmem)",
		     o->shm_name);

	o->size = o->size_requested;
	if (!o->exact_size && (o->size & (o->size - 1))) {
		if (o->size > (UINT64_MAX >> 1) + 1)
			fail("size '%" PRIu64 "' is too large to round up to a power of two",
			     o->size);
		while (o->size & (o->size - 1))
			o->size += o->size & -o->size;
		o->size_rounded = true;
	}
	if (o->size > (uint64_t)INT64_MAX)
		fail("size %" PRIu64 " is too large", o->size);
	o->socket_perm = mode_given || o->socket_owner || o->socket_group;
	if (o->socket_perm && !mode_given) {
		/* A group is given the socket to use it, as with
		 * --control-group; an owner alone changes no bits. */
		mode_t mask = umask(0);

		umask(mask);
		o->socket_mode = o->socket_group ? 0660 : 0777 & ~mask;
	}
	return OPTIONS_RUN;
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
