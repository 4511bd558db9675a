/* SPDX-License-Identifier: MIT */
#ifndef IVSHMEM_SERVER_OPTIONS_H
#define IVSHMEM_SERVER_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ivshmem.h"

#define DEFAULT_SOCKET_PATH "/tmp/ivshmem_socket"
#define DEFAULT_SHM_NAME "ivshmem"
#define DEFAULT_PID_FILE "/var/run/ivshmem-server.pid"
#define DEFAULT_SHM_SIZE (4ull << 20)
#define DEFAULT_VECTORS 1
#define DEFAULT_QUEUE_LIMIT 65536
#define CONTROL_SUFFIX ".ctl"

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

/* "4M" -> 4194304. K, M, G, T, P, E suffixes (powers of 1024), either
 * case. Returns 0 or -EINVAL (malformed, zero) / -ERANGE (too large). */
int parse_size(const char *s, uint64_t *out);

#endif
