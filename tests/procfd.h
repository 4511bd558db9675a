/* SPDX-License-Identifier: MIT */
/*
 * The open fds of a process, as /proc/PID/fd lists them: how many, and
 * what each points to. Without Check, so that the soak (tests/soak/)
 * uses it as the tests do.
 */
#ifndef IVSHMEM_TESTS_PROCFD_H
#define IVSHMEM_TESTS_PROCFD_H

#include <sys/types.h>

/* How many fds pid has open (for this process, less the one that lists
 * them); -1 if /proc/PID/fd cannot be read. */
int procfd_count(pid_t pid);

/* One line per open fd of pid, "INDENT FD -> TARGET\n" (empty if
 * /proc/PID/fd cannot be read): g_free it. */
char *procfd_list(pid_t pid, const char *indent);

#endif
