/* SPDX-License-Identifier: MIT */
/*
 * The daemon's control socket: JSON lines (protocol 1, see ivshmem-ctl) on
 * an AF_UNIX stream socket, driven by the daemon's libev loop.
 */
#ifndef IVSHMEM_SERVER_CONTROL_H
#define IVSHMEM_SERVER_CONTROL_H

#include <stdint.h>
#include <time.h>

#include <ev.h>

#include "ivshmem.h"

/* Protocol version announced by "info". */
#define CONTROL_PROTOCOL 1

/* What "info" and "shm" report that the library does not know. The
 * strings are copied. */
struct control_info {
	const char *socket_path;
	const char *control_path;
	enum ivshmem_shm_kind shm_kind;
	const char *shm_name;       /* POSIX name or dir; NULL for memfd */
	uint64_t shm_size;
	unsigned max_peers;
	unsigned queue_limit;
	struct timespec started;    /* CLOCK_REALTIME at start-up */
	struct timespec started_mono; /* CLOCK_MONOTONIC at the same moment */
};

struct control;

/*
 * Serve the control socket listen_fd (non-blocking, listening) on loop for
 * srv. Takes ownership of listen_fd on success. srv must outlive the
 * control (control_free() first). 0, or -ENOMEM / -EINVAL.
 */
int control_new(struct ev_loop *loop, struct ivshmem_server *srv,
		const struct control_info *info, int listen_fd,
		struct control **out);

/* A library event (join, leave, refused): tell the watchers. */
void control_event(struct control *ctl, const struct ivshmem_server_event *ev);

/* Close every client and the listening socket. Accepts NULL. The socket
 * file is not unlinked: that is the caller's. */
void control_free(struct control *ctl);

#endif
