/* SPDX-License-Identifier: MIT */
#ifndef IVSHMEM_SERVER_OPTIONS_H
#define IVSHMEM_SERVER_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"
#include "ivshmem.h"

/* The other defaults are the ones every program shares (cli.h). */
#define DEFAULT_PID_FILE "/var/run/ivshmem-server.pid"

struct options {
	bool verbose;
	bool foreground;
	bool exact_size;
	bool keep_shm;
	char *pid_file;
	char *socket_path;
	char *shm_name;
	char *shm_dir;
	enum ivshmem_shm_kind shm_kind;
	uint64_t size;            /* what will be created */
	uint64_t size_requested;  /* what was asked for */
	bool size_rounded;
	unsigned vectors;
	unsigned max_peers;
	unsigned queue_limit;
	char *control_path;       /* NULL: --no-control */
	char *control_group;      /* as given, NULL when not asked for */
	gid_t control_gid;        /* resolved control_group */
	char *socket_owner;       /* as given, NULL when not asked for */
	uid_t socket_uid;         /* resolved socket_owner */
	char *socket_group;       /* as given, NULL when not asked for */
	gid_t socket_gid;         /* resolved socket_group */
	bool socket_perm;         /* --socket-owner, -group or -mode given */
	mode_t socket_mode;       /* then the socket's mode: --socket-mode,
				   * else 0660 with --socket-group, else
				   * what the umask leaves */
	uid_t *allow_uids;        /* --allow-uid, resolved */
	unsigned n_allow_uids;
	gid_t *allow_gids;        /* --allow-gid, resolved */
	unsigned n_allow_gids;
};

enum {
	OPTIONS_RUN,
	OPTIONS_EXIT_OK,
	OPTIONS_EXIT_ERR,
};

/* Parse and validate the command line. Prints help, version or one clear
 * error sentence itself; creates nothing. */
int options_parse(int argc, char **argv, struct options *o);
void options_free(struct options *o);

/* Is a peer socket connection from uid/gid (SO_PEERCRED) let in? Everyone
 * is without --allow-uid and --allow-gid; with either, only a listed uid
 * or a listed gid (root too). */
bool options_allowed(const struct options *o, uid_t uid, gid_t gid);

#endif
