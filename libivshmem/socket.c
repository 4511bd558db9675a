/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ivshmem.h"

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
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

int ivshmem_listen_unix(const char *path, int *fd_out)
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
