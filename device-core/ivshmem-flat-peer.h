/*
 * ivshmem-flat-peer: an ivshmem-flat device core wired to a libivshmem
 * peer, for hosted emulators.
 *
 * The emulator creates one, connects it to an ivshmem server, maps the
 * shared memory it hands out at the device's shared-memory address, and
 * then only forwards MMIO accesses of the register block to the core
 * (ivshmem_flat_mmio_read/write on ivshmem_flat_peer_device()) and puts
 * ivshmem_flat_peer_get_fd() in its event loop, calling
 * ivshmem_flat_peer_dispatch() when it is readable. The glue does the
 * rest:
 *
 *  - a DOORBELL write goes to ivshmem_peer_ring(), which checks the peer
 *    and the vector (a wrong one is dropped and counted by the core);
 *  - a doorbell on an own vector goes to ivshmem_flat_deliver(), which
 *    drives the emulator's set_irq;
 *  - IVPOSITION is the ID from the server's greeting (0xFFFFFFFF from
 *    a new connect until its greeting is in). The device is connected
 *    from then on: when the server goes away, the library keeps
 *    the peers' eventfds (ivshmem-protocol(7) rule 9), so DOORBELL
 *    writes still ring the peers that were there, as in QEMU, and their
 *    doorbells still arrive; after a protocol violation those fds are
 *    closed and DOORBELL writes are dropped;
 *  - the server's shared memory must have the device's size (QEMU's
 *    shmem-size check): another size is refused with -EFBIG and two log
 *    messages, the library's naming the server's size, the glue's the
 *    device's and the ivshmem-server option that matches it.
 *
 * Threading: as for a libivshmem peer, one thread at a time; the core is
 * called from that thread too (MMIO accesses included), or the emulator
 * serialises them with its device lock.
 */
#ifndef IVSHMEM_FLAT_PEER_H
#define IVSHMEM_FLAT_PEER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "ivshmem-flat.h"
#include "ivshmem.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ivshmem_flat_peer;

/** Configuration. Zero fields take the defaults noted. */
struct ivshmem_flat_peer_config {
	/** Device flags (enum ivshmem_flat_flags); 0 is QEMU's mode. */
	uint32_t flags;
	/** The device's shared-memory size in bytes (QEMU's shmem-size);
	 * 0: IVSHMEM_FLAT_DEFAULT_SHM_SIZE (4 MiB, as QEMU). */
	uint64_t shm_size;
	/** Own vectors to use (ivshmem_peer_config.vectors); 0: as many as
	 * the server has. */
	unsigned vectors;
};

/** Callbacks to the emulator. */
struct ivshmem_flat_peer_ops {
	/** Required: drive the device's IRQ @p line to @p level (see
	 * ivshmem_flat_ops.set_irq). */
	void (*set_irq)(void *user, unsigned line, bool level);
	/** Optional: see ivshmem_flat_ops.trace. */
	void (*trace)(void *user, const struct ivshmem_flat_trace *record);
	/** Optional: the server connection ended with @p error (see
	 * ivshmem_strerror()). */
	void (*disconnected)(void *user, int error);
	/** Optional: log messages from the glue and the library
	 * (enum ivshmem_log_priority). */
	void (*log)(void *user, int priority, const char *fmt, va_list ap)
		IVSHMEM_PRINTF(3, 0);
};

/**
 * Create a device and its peer (not connected).
 * @retval 0 success, *out is set
 * @retval -EINVAL NULL config, ops or out, no set_irq, bad flags (see
 *         ivshmem_flat_init()), vectors above IVSHMEM_MAX_VECTORS
 * @retval -ENOMEM out of memory
 * @retval other negative errno from ivshmem_peer_new()
 */
int ivshmem_flat_peer_new(const struct ivshmem_flat_peer_config *config,
			  const struct ivshmem_flat_peer_ops *ops, void *user,
			  struct ivshmem_flat_peer **out);

/** Free the device and its peer (unmaps the shared memory). Accepts NULL.
 * Not from a callback. */
void ivshmem_flat_peer_free(struct ivshmem_flat_peer *fp);

/**
 * Connect to the server at @p path and wait up to @p timeout_ms (< 0: no
 * limit) for its greeting. On success IVPOSITION shows the own ID and
 * the shared memory is mapped (ivshmem_flat_peer_get_shm()). It blocks,
 * so not from a callback (it would return -EBUSY): to reconnect after
 * ops->disconnected, schedule the call in the emulator's loop.
 * @retval 0 connected and ready
 * @retval -EFBIG the server's shared memory is not config.shm_size bytes
 *         (both sizes are logged); the connection is closed
 * @retval other negative errno from ivshmem_peer_connect() (-ENOENT: no
 *         server at @p path) or ivshmem_peer_wait_ready() (-ETIMEDOUT,
 *         or a protocol error: ivshmem_strerror()); the connection is
 *         closed
 */
int ivshmem_flat_peer_connect(struct ivshmem_flat_peer *fp, const char *path,
			      int timeout_ms);

/** The fd for the emulator's event loop (readable: call
 * ivshmem_flat_peer_dispatch()). @retval -EINVAL NULL fp. */
int ivshmem_flat_peer_get_fd(const struct ivshmem_flat_peer *fp);

/**
 * Take server messages and doorbells without blocking; doorbells reach
 * the core, which drives set_irq.
 * @retval 0 success
 * @retval <0 as ivshmem_peer_dispatch() (the connection ended)
 */
int ivshmem_flat_peer_dispatch(struct ivshmem_flat_peer *fp);

/** The device core, for the emulator's MMIO hooks. Never NULL for a
 * valid @p fp. */
struct ivshmem_flat *ivshmem_flat_peer_device(struct ivshmem_flat_peer *fp);

/** The libivshmem peer (for its queries: peers, vectors, state). */
struct ivshmem_peer *ivshmem_flat_peer_peer(struct ivshmem_flat_peer *fp);

/**
 * The shared memory to map at the device's shared-memory address.
 * @retval 0 success
 * @retval -EINVAL NULL fp
 * @retval -ENODATA not connected yet
 */
int ivshmem_flat_peer_get_shm(const struct ivshmem_flat_peer *fp,
			      void **addr, uint64_t *size);

#ifdef __cplusplus
}
#endif

#endif /* IVSHMEM_FLAT_PEER_H */
