/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "ivshmem.h"
#include "table-private.h"

int ivshmem_table_init(struct ivshmem_table *t, unsigned size)
{
	if (size == 0 || size > IVSHMEM_MAX_PEERS)
		return -EINVAL;
	t->slot = calloc(size, sizeof(*t->slot));
	if (!t->slot)
		return -ENOMEM;
	t->size = size;
	t->next = 0;
	t->used = 0;
	return 0;
}

void ivshmem_table_fini(struct ivshmem_table *t)
{
	free(t->slot);
	t->slot = NULL;
	t->size = t->used = t->next = 0;
}

int ivshmem_table_alloc(struct ivshmem_table *t, void *owner)
{
	assert(owner);
	if (t->used == t->size)
		return -ENOSPC;
	for (unsigned i = 0; i < t->size; i++) {
		unsigned id = (t->next + i) % t->size;

		if (!t->slot[id]) {
			t->slot[id] = owner;
			t->next = (id + 1) % t->size;
			t->used++;
			return (int)id;
		}
	}
	assert(!"table count out of sync");
	return -ENOSPC;
}

void ivshmem_table_release(struct ivshmem_table *t, int id)
{
	if (id < 0 || (unsigned)id >= t->size || !t->slot[id])
		return;
	t->slot[id] = NULL;
	t->used--;
}

void *ivshmem_table_get(const struct ivshmem_table *t, long long id)
{
	if (id < 0 || id >= (long long)t->size)
		return NULL;
	return t->slot[id];
}
