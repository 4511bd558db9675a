/* SPDX-License-Identifier: MIT */
/*
 * Socket helpers shared inside the project (the library and its tests).
 * Internal: not installed.
 */
#ifndef LIBIVSHMEM_SOCKET_PRIVATE_H
#define LIBIVSHMEM_SOCKET_PRIVATE_H

/*
 * Is a socket listening under exactly this path in this network namespace?
 * Read from /proc/net/unix, so that asking does not connect (a server
 * would count a connection as a peer, and everyone would see it join and
 * leave). 1 yes, 0 not listed, -errno when the table cannot be read.
 */
int ivshmem_unix_listening(const char *path);

#endif
