/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ivshmem.h"

/* Size a new object, or check an existing one: an object that is already
 * there may be in use by another server's peers, and shrinking it under
 * them would be a SIGBUS for each, so it is never resized. */
static int size_to_fd(int fd, uint64_t size, int created)
{
	struct stat st;

	if (!created) {
		if (fstat(fd, &st) < 0)
			return -errno;
		return (uint64_t)st.st_size == size ? 0 : -EEXIST;
	}
	if (ftruncate(fd, (off_t)size) < 0)
		return -errno;
	return 0;
}

static int open_posix(const char *name, uint64_t size, int *fd_out,
		      int *created_out)
{
	char path[NAME_MAX + 2];
	int fd, created = 0, r;

	if (name[0] == '/')
		name++;
	if (!*name || strchr(name, '/'))
		return -EINVAL;
	if (snprintf(path, sizeof(path), "/%s", name) >= (int)sizeof(path))
		return -ENAMETOOLONG;

	/* Create exclusively first, so that we know whether the object is
	 * ours (and may be removed on a failed start) or was there before. */
	fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		created = 1;
	} else if (errno == EEXIST) {
		fd = shm_open(path, O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
	} else {
		return -errno;
	}
	r = size_to_fd(fd, size, created);
	if (r < 0) {
		close(fd);
		if (created)
			shm_unlink(path);
		return r;
	}
	*fd_out = fd;
	if (created_out)
		*created_out = created;
	return 0;
}

static int open_dir(const char *dir, uint64_t size, int *fd_out)
{
	char *tmpl;
	int fd, r;

	if (asprintf(&tmpl, "%s/ivshmem.XXXXXX", dir) < 0)
		return -ENOMEM;
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		free(tmpl);
		return r;
	}
	/* Anonymous from here on: nothing is left in the directory. */
	unlink(tmpl);
	free(tmpl);
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

static int open_memfd(uint64_t size, int *fd_out)
{
	int fd, r;

	fd = memfd_create("ivshmem", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

int ivshmem_shm_open(enum ivshmem_shm_kind kind, const char *name,
		     uint64_t size, int *fd_out, int *created_out)
{
	if (!fd_out || size == 0)
		return -EINVAL;
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (created_out)
		*created_out = 0;

	switch (kind) {
	case IVSHMEM_SHM_POSIX:
		if (!name)
			return -EINVAL;
		return open_posix(name, size, fd_out, created_out);
	case IVSHMEM_SHM_DIR:
		if (!name || !*name)
			return -EINVAL;
		return open_dir(name, size, fd_out);
	case IVSHMEM_SHM_MEMFD:
		return open_memfd(size, fd_out);
	}
	return -EINVAL;
}

int ivshmem_shm_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals >= 0)
		return (seals & F_SEAL_SHRINK) != 0;
	/* Files that cannot be sealed at all (EINVAL) can be shrunk. */
	return errno == EBADF ? -EBADF : 0;
}
