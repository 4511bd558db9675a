/* SPDX-License-Identifier: MIT */
/*
 * An ivshmem PCI device seen from inside a Linux guest (pci.c), for the
 * peer side (peer.c): its registers, shared memory and doorbells, through
 * VFIO or through the sysfs resource files.
 */
#ifndef LIBIVSHMEM_PCI_PRIVATE_H
#define LIBIVSHMEM_PCI_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "ivshmem.h"

struct pci_dev;

/* Open the device at address (NULL: the first ivshmem device) as flags
 * (enum ivshmem_pci_flags) say. On failure, a sentence that says what to
 * do is in why. fds[0..*nvec) (at most max_vec, 0: all) are eventfds the
 * device's doorbells signal; they become the caller's. */
int pci_dev_open(const char *address, unsigned flags, unsigned max_vec,
		 struct pci_dev **out, int *fds, unsigned *nvec, char *why,
		 size_t why_len);

/* Unmaps everything and gives the device back as it was found. */
void pci_dev_close(struct pci_dev *d);

void pci_dev_info(const struct pci_dev *d, struct ivshmem_pci_info *info);

/* IVPOSITION, or -1 (ivshmem-plain). */
int pci_dev_id(const struct pci_dev *d);

void pci_dev_shm(const struct pci_dev *d, void **addr, uint64_t *size);

int pci_dev_ring(struct pci_dev *d, int id, unsigned vector);

/* Polled doorbells: the microseconds between looks, 0 when the device
 * signals the eventfds itself. */
unsigned pci_dev_poll_us(const struct pci_dev *d);

/* Look for doorbells that arrived; signal the eventfds of those found. */
void pci_dev_poll(struct pci_dev *d, const int *fds, unsigned n);

#endif /* LIBIVSHMEM_PCI_PRIVATE_H */
