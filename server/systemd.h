/* SPDX-License-Identifier: MIT */
/*
 * systemd integration of ivshmem-server: socket activation (LISTEN_FDS) and
 * readiness notification (NOTIFY_SOCKET) through libsystemd. Built without
 * it, neither is supported: a passed socket is refused with a clear message
 * and a NOTIFY_SOCKET draws a warning.
 */
#ifndef IVSHMEM_SERVER_SYSTEMD_H
#define IVSHMEM_SERVER_SYSTEMD_H

/*
 * The listening socket systemd (or systemd-socket-activate) passed: it must
 * be exactly one, a listening AF_UNIX SOCK_STREAM socket bound to a path. It
 * is made non-blocking and close-on-exec. Returns 1 with *fd and *path (made
 * absolute; g_free it), 0 when the server was not socket-activated, or -1
 * after logging why the socket cannot be used (every passed fd is closed).
 */
int systemd_listen_socket(int *fd, char **path);

/* READY=1 with MAINPID and STATUS=status: the server accepts peers. */
void systemd_notify_ready(const char *status);
/* STOPPING=1 with STATUS=status: the server is shutting down. */
void systemd_notify_stopping(const char *status);
/* STATUS=status only (say why start-up failed; never READY=1). */
void systemd_notify_status(const char *status);

#endif
