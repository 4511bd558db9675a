/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ivshmem.h"
#include "socket-private.h"

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* __SO_ACCEPTCON in /proc/net/unix: the socket is listening. */
#define UNIX_FLAG_LISTENING 0x10000

int ivshmem_unix_listening(const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int found = 0;
	FILE *f = fopen("/proc/net/unix", "re");

	if (!f)
		return -errno;
	while (!found && (n = getline(&line, &cap, f)) > 0) {
		unsigned flags;
		int off = -1;

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		/* Num RefCount Protocol Flags Type St Inode Path */
		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %n", &flags,
			   &off) != 1 || off < 0)
			continue;
		found = (flags & UNIX_FLAG_LISTENING) &&
			strcmp(line + off, path) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

/* Is someone accepting on the socket file at sa? 1 yes, 0 no (stale). */
static int probe_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int r, live;

	if (fd < 0)
		return -errno;
	do {
		r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	} while (r < 0 && errno == EINTR);
	/* EAGAIN: a listener whose backlog is full is still alive. */
	live = r == 0 || errno == EAGAIN;
	close(fd);
	return live;
}

int ivshmem_socket_listen(const char *path, int *fd_out)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, r;

	if (!path || !*path || !fd_out)
		return -EINVAL;
	r = fill_addr(path, &sa);
	if (r < 0)
		return r;

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		r = ivshmem_unix_listening(path);
		/* Not listed under this spelling of the path (it may have
		 * been bound as a relative path): ask the socket itself. */
		if (r <= 0)
			r = probe_live(&sa);
		if (r < 0)
			return r;
		if (r)
			return -EADDRINUSE;
		/* Stale: left by a server that did not exit cleanly. */
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		close(fd);
		unlink(path);
		return r;
	}
	*fd_out = fd;
	return 0;
}
