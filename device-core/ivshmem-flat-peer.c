/*
 * ivshmem-flat-peer: the ivshmem-flat core wired to a libivshmem peer
 * (see ivshmem-flat-peer.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "ivshmem-flat-peer.h"

struct ivshmem_flat_peer {
	struct ivshmem_flat dev;
	struct ivshmem_flat_ops dev_ops;
	struct ivshmem_peer *peer;
	struct ivshmem_flat_peer_ops ops;
	void *user;
	uint64_t shm_size;
};

static void glue_log(struct ivshmem_flat_peer *fp, int prio, const char *fmt,
		     ...) IVSHMEM_PRINTF(3, 4);

static void glue_log(struct ivshmem_flat_peer *fp, int prio, const char *fmt,
		     ...)
{
	va_list ap;

	if (!fp->ops.log)
		return;
	va_start(ap, fmt);
	fp->ops.log(fp->user, prio, fmt, ap);
	va_end(ap);
}

/* ---- core -> emulator / library ----------------------------------------- */

static int dev_notify(void *opaque, uint16_t peer, uint16_t vector)
{
	struct ivshmem_flat_peer *fp = opaque;

	/* The library checks both values against its peer table. */
	return ivshmem_peer_ring(fp->peer, peer, vector);
}

static void dev_set_irq(void *opaque, unsigned line, bool level)
{
	struct ivshmem_flat_peer *fp = opaque;

	fp->ops.set_irq(fp->user, line, level);
}

static void dev_trace(void *opaque, const struct ivshmem_flat_trace *t)
{
	struct ivshmem_flat_peer *fp = opaque;

	fp->ops.trace(fp->user, t);
}

/* ---- library -> core ------------------------------------------------------ */

static void on_ready(void *user, struct ivshmem_peer *peer)
{
	struct ivshmem_flat_peer *fp = user;

	ivshmem_flat_set_id(&fp->dev, (uint32_t)ivshmem_peer_get_id(peer));
	ivshmem_flat_set_connected(&fp->dev, true);
}

static void on_doorbell(void *user, struct ivshmem_peer *peer,
			unsigned vector, uint64_t count)
{
	struct ivshmem_flat_peer *fp = user;

	/* One interrupt per wakeup, however many rings the eventfd
	 * coalesced: what QEMU's device does. */
	ivshmem_flat_deliver(&fp->dev, vector);
}

static void on_disconnected(void *user, struct ivshmem_peer *peer, int error)
{
	struct ivshmem_flat_peer *fp = user;

	/* The device stays connected: the library keeps the peers'
	 * eventfds when the server goes away (ivshmem-protocol(7) rule 9),
	 * so DOORBELL writes still reach the peers that were there, as in
	 * QEMU; after a protocol violation it closed them and ring refuses
	 * (-ENOENT). */
	if (fp->ops.disconnected)
		fp->ops.disconnected(fp->user, error);
}

static void on_log(void *user, int priority, const char *fmt, va_list ap)
	IVSHMEM_PRINTF(3, 0);

static void on_log(void *user, int priority, const char *fmt, va_list ap)
{
	struct ivshmem_flat_peer *fp = user;

	if (fp->ops.log)
		fp->ops.log(fp->user, priority, fmt, ap);
}

static const struct ivshmem_peer_ops peer_ops = {
	.ready = on_ready,
	.doorbell = on_doorbell,
	.disconnected = on_disconnected,
	.log = on_log,
};

/* ---- API ------------------------------------------------------------------ */

int ivshmem_flat_peer_new(const struct ivshmem_flat_peer_config *config,
			  const struct ivshmem_flat_peer_ops *ops, void *user,
			  struct ivshmem_flat_peer **out)
{
	struct ivshmem_peer_config pcfg = { 0 };
	struct ivshmem_flat_peer *fp;
	int r;

	if (!config || !ops || !ops->set_irq || !out)
		return -EINVAL;
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return -ENOMEM;
	fp->ops = *ops;
	fp->user = user;
	fp->shm_size = config->shm_size ? config->shm_size :
					  IVSHMEM_FLAT_DEFAULT_SHM_SIZE;
	fp->dev_ops.notify = dev_notify;
	fp->dev_ops.set_irq = dev_set_irq;
	fp->dev_ops.trace = ops->trace ? dev_trace : NULL;
	if (ivshmem_flat_init(&fp->dev, config->flags, &fp->dev_ops, fp) < 0) {
		free(fp);
		return -EINVAL;
	}
	pcfg.vectors = config->vectors;
	pcfg.shm_size = fp->shm_size;
	r = ivshmem_peer_new(&pcfg, &peer_ops, fp, &fp->peer);
	if (r < 0) {
		free(fp);
		return r;
	}
	*out = fp;
	return 0;
}

void ivshmem_flat_peer_free(struct ivshmem_flat_peer *fp)
{
	if (!fp)
		return;
	ivshmem_peer_free(fp->peer);
	free(fp);
}

int ivshmem_flat_peer_connect(struct ivshmem_flat_peer *fp, const char *path,
			      int timeout_ms)
{
	int r;

	if (!fp)
		return -EINVAL;
	r = ivshmem_peer_connect(fp->peer, path);
	if (r < 0)
		return r;
	/* The last connection's ID may belong to another peer by now:
	 * none until the new greeting's arrives (on_ready). */
	ivshmem_flat_set_id(&fp->dev, IVSHMEM_FLAT_NO_ID);
	ivshmem_flat_set_connected(&fp->dev, false);
	r = ivshmem_peer_wait_ready(fp->peer, timeout_ms);
	if (r == -EFBIG)
		/* The library's sentence names the server's size; the rest
		 * says what to change. */
		glue_log(fp, IVSHMEM_LOG_ERR,
			 "ivshmem-flat: %s; the device's shmem-size is %" PRIu64
			 " bytes: start ivshmem-server with -l %" PRIu64
			 ", or give the device the server's size",
			 ivshmem_peer_get_error(fp->peer), fp->shm_size,
			 fp->shm_size);
	if (r < 0 && ivshmem_peer_get_state(fp->peer) != IVSHMEM_PEER_DISCONNECTED)
		ivshmem_peer_disconnect(fp->peer);
	return r;
}

int ivshmem_flat_peer_get_fd(const struct ivshmem_flat_peer *fp)
{
	return fp ? ivshmem_peer_get_fd(fp->peer) : -EINVAL;
}

int ivshmem_flat_peer_dispatch(struct ivshmem_flat_peer *fp)
{
	return fp ? ivshmem_peer_dispatch(fp->peer) : -EINVAL;
}

struct ivshmem_flat *ivshmem_flat_peer_device(struct ivshmem_flat_peer *fp)
{
	return fp ? &fp->dev : NULL;
}

struct ivshmem_peer *ivshmem_flat_peer_peer(struct ivshmem_flat_peer *fp)
{
	return fp ? fp->peer : NULL;
}

int ivshmem_flat_peer_get_shm(const struct ivshmem_flat_peer *fp,
			      void **addr, uint64_t *size)
{
	return fp ? ivshmem_peer_get_shm(fp->peer, addr, size) : -EINVAL;
}
