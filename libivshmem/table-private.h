/* SPDX-License-Identifier: MIT */
/*
 * The peer ID table: IDs 0..size-1 handed out next-fit, as QEMU's server
 * does (a freed ID is not reused until the counter wraps), each mapped to
 * its owner. Internal: not installed.
 */
#ifndef LIBIVSHMEM_TABLE_PRIVATE_H
#define LIBIVSHMEM_TABLE_PRIVATE_H

#include <stddef.h>

struct ivshmem_table {
	void **slot;     /* slot[id]: owner, or NULL when free */
	unsigned size;   /* number of IDs */
	unsigned next;   /* where the next search starts */
	unsigned used;
};

/* size: 1..65536. Returns 0 or -EINVAL / -ENOMEM. */
int ivshmem_table_init(struct ivshmem_table *t, unsigned size);
void ivshmem_table_fini(struct ivshmem_table *t);
/* Take the next free ID for owner (not NULL). Returns the ID, or -ENOSPC
 * when every ID is in use. */
int ivshmem_table_alloc(struct ivshmem_table *t, void *owner);
/* Release id; a free or out-of-range id is ignored. */
void ivshmem_table_release(struct ivshmem_table *t, int id);
/* The owner of id, or NULL (also for out-of-range values). */
void *ivshmem_table_get(const struct ivshmem_table *t, long long id);

#endif
