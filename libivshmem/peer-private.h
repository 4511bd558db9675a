/* SPDX-License-Identifier: MIT */
/* What the channels (channel.c) take from the peer side. */
#ifndef LIBIVSHMEM_PEER_PRIVATE_H
#define LIBIVSHMEM_PEER_PRIVATE_H

#include <stdbool.h>

#include "ivshmem.h"

/* Take own vector @p vector from the peer's epoll (its doorbells are then
 * the channel's to read) or give it back. -EBUSY: already taken. Kept
 * across reconnects. */
int peer_claim_vector(struct ivshmem_peer *p, unsigned vector, bool claim);

/* Changes with every connect and disconnect. */
unsigned peer_generation(const struct ivshmem_peer *p);

/* The timerfd of the greeting's quiet period (and of a PCI device's
 * polling), in the peer's epoll: the fuzz target makes the quiet period
 * end at once by setting it. */
int peer_timer_fd(const struct ivshmem_peer *p);

#endif /* LIBIVSHMEM_PEER_PRIVATE_H */
