/* SPDX-License-Identifier: MIT */
/**
 * @file ivshmem.h
 * libivshmem: the ivshmem wire protocol, server side.
 *
 * The ivshmem protocol: a server listens on an AF_UNIX stream socket and
 * sends every peer 8-byte little-endian signed integers, each with at most
 * one file descriptor attached (SCM_RIGHTS): the protocol version, the
 * peer's own ID, the shared-memory fd, then one eventfd per vector for every
 * peer already connected and finally its own. Later messages announce peers
 * joining (an ID with an eventfd, once per vector) and leaving (an ID with no
 * fd). Peers never send anything.
 *
 * Conventions:
 *  - functions return >= 0 on success and a negative errno value on failure;
 *  - the library never prints and never exits: it reports through the log
 *    callback given in the ops;
 *  - the library never owns an event loop: the caller watches the fds the
 *    library asks for and calls ivshmem_server_dispatch() when one is ready;
 *  - every fd the library creates is close-on-exec.
 *
 * Threading: an ivshmem_server object is not thread-safe; call all its
 * functions from one thread (the one running the event loop).
 */
#ifndef LIBIVSHMEM_IVSHMEM_H
#define LIBIVSHMEM_IVSHMEM_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define IVSHMEM_EXPORT __attribute__((visibility("default")))
#define IVSHMEM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define IVSHMEM_EXPORT
#define IVSHMEM_PRINTF(f, a)
#endif

/** Protocol version sent as the first message. */
#define IVSHMEM_PROTOCOL_VERSION 0
/** Number of peer IDs the protocol can address: IDs are 0..65535. */
#define IVSHMEM_MAX_PEERS 65536
/** Largest vector count a server accepts (the same as QEMU's server). */
#define IVSHMEM_MAX_VECTORS 64

/** Log priorities, the same numbers as syslog's. */
enum ivshmem_log_priority {
	IVSHMEM_LOG_ERR = 3,
	IVSHMEM_LOG_WARNING = 4,
	IVSHMEM_LOG_NOTICE = 5,
	IVSHMEM_LOG_INFO = 6,
	IVSHMEM_LOG_DEBUG = 7,
};

/** The library's version string, e.g. "0.1.0". */
IVSHMEM_EXPORT const char *ivshmem_version(void);

/* ------------------------------------------------------------------ */
/* Shared memory                                                       */
/* ------------------------------------------------------------------ */

/** Where the shared memory lives. */
enum ivshmem_shm_kind {
	/** A POSIX shm object (shm_open), named. Kept if it exists. */
	IVSHMEM_SHM_POSIX = 0,
	/** An unlinked file in a directory (for example hugetlbfs). */
	IVSHMEM_SHM_DIR = 1,
	/** An anonymous memfd sealed against shrinking and growing. */
	IVSHMEM_SHM_MEMFD = 2,
};

/**
 * Create or open the shared memory.
 *
 * @param kind  where it lives
 * @param name  the POSIX shm name (with or without a leading '/') for
 *              IVSHMEM_SHM_POSIX; the directory for IVSHMEM_SHM_DIR;
 *              ignored (may be NULL) for IVSHMEM_SHM_MEMFD
 * @param size  the size in bytes, > 0
 * @param fd_out receives the fd (close-on-exec) on success
 * @param created_out if not NULL, receives 1 when this call created a named
 *              POSIX object and 0 when it opened an existing one
 *
 * An existing POSIX object of the right size is kept as it is, so its
 * content survives a server restart; one of another size is refused
 * (-EEXIST) and left untouched, since it may be in use.
 *
 * @retval 0 success
 * @retval -EINVAL bad kind, NULL name where one is needed, size 0, or a
 *         POSIX name that contains a '/' after the first character
 * @retval -EFBIG size larger than the system can represent (off_t)
 * @retval -EEXIST a POSIX object of that name exists with another size
 * @retval other negative errno from shm_open, open, memfd_create,
 *         ftruncate or fcntl (for example -EACCES, -ENOSPC, -EMFILE)
 */
IVSHMEM_EXPORT int ivshmem_shm_open(enum ivshmem_shm_kind kind,
				    const char *name, uint64_t size,
				    int *fd_out, int *created_out);

/* ------------------------------------------------------------------ */
/* Listening socket                                                    */
/* ------------------------------------------------------------------ */

/**
 * Create a non-blocking, close-on-exec AF_UNIX stream socket listening on
 * @p path.
 *
 * If a socket file is already at @p path, it is probed with connect(): when
 * someone accepts on it, nothing is touched and -EADDRINUSE is returned;
 * when nobody does (a stale file left by a server that was killed), it is
 * replaced.
 *
 * @retval 0 success, *fd_out is the listening socket
 * @retval -EINVAL NULL or empty path
 * @retval -ENAMETOOLONG path does not fit in sun_path
 * @retval -EADDRINUSE a server is already listening on path
 * @retval -EEXIST path exists and is not a socket
 * @retval other negative errno from socket, bind or listen
 */
IVSHMEM_EXPORT int ivshmem_listen_unix(const char *path, int *fd_out);

/* ------------------------------------------------------------------ */
/* Server side                                                         */
/* ------------------------------------------------------------------ */

struct ivshmem_server;

/** What happened to a connection; see ivshmem_server_ops.event. */
enum ivshmem_server_event_type {
	/** A peer connected and was given an ID. */
	IVSHMEM_EVENT_PEER_JOINED = 1,
	/** A peer left or was disconnected; reason says why. */
	IVSHMEM_EVENT_PEER_LEFT = 2,
	/**
	 * A connection was refused (no ID free, or out of memory). id is
	 * -1. Running out of fds refuses nobody: accepting pauses and the
	 * connection waits in the backlog.
	 */
	IVSHMEM_EVENT_REFUSED = 3,
	/**
	 * Out of fds (error says which errno) for accept() or a peer's
	 * eventfds: accepting is paused until a peer leaves or a retry
	 * succeeds.
	 */
	IVSHMEM_EVENT_ACCEPT_PAUSED = 4,
	/** Accepting resumed after a pause. */
	IVSHMEM_EVENT_ACCEPT_RESUMED = 5,
};

/** Why a peer left (IVSHMEM_EVENT_PEER_LEFT). */
enum ivshmem_leave_reason {
	IVSHMEM_LEAVE_CLOSED = 1,       /**< the peer closed its socket */
	IVSHMEM_LEAVE_PROTOCOL = 2,     /**< the peer sent bytes */
	IVSHMEM_LEAVE_QUEUE_FULL = 3,   /**< its output queue overflowed */
	IVSHMEM_LEAVE_ERROR = 4,        /**< a socket error (errno in error) */
	IVSHMEM_LEAVE_KICKED = 5,       /**< ivshmem_server_kick() */
};

/** An event reported to ivshmem_server_ops.event. */
struct ivshmem_server_event {
	enum ivshmem_server_event_type type;
	int id;           /**< peer ID, or -1 */
	pid_t pid;        /**< SO_PEERCRED of the connection, or -1 */
	uid_t uid;        /**< SO_PEERCRED uid, or (uid_t)-1 */
	gid_t gid;        /**< SO_PEERCRED gid, or (gid_t)-1 */
	int reason;       /**< enum ivshmem_leave_reason for PEER_LEFT */
	int error;        /**< positive errno where one applies, else 0 */
	unsigned peers;   /**< connected peers after the event */
};

/** Callbacks from the server side to its caller. */
struct ivshmem_server_ops {
	/**
	 * Required. Watch @p fd for @p events (POLLIN and/or POLLOUT).
	 * Called whenever the wanted events of an fd change; events may be
	 * 0, which means keep the fd but do not report it. Called with
	 * events < 0 just before the library closes the fd: forget it.
	 */
	void (*watch)(void *user, int fd, int events);
	/**
	 * Optional (but needed to recover from fd exhaustion without a
	 * peer leaving). Arm a one-shot timer of @p ms milliseconds, or
	 * cancel it when ms < 0. When it fires, call
	 * ivshmem_server_timeout().
	 */
	void (*timer)(void *user, int ms);
	/** Optional. Connection events, for logging or bookkeeping. */
	void (*event)(void *user, const struct ivshmem_server_event *ev);
	/** Optional. Log a message; priority is enum ivshmem_log_priority. */
	void (*log)(void *user, int priority, const char *fmt, va_list ap)
		IVSHMEM_PRINTF(3, 0);
};

/** Server configuration. Zero fields take the defaults noted. */
struct ivshmem_server_config {
	/** Listening socket, non-blocking. The server takes ownership. */
	int listen_fd;
	/** Shared-memory fd sent to every peer. The server takes ownership. */
	int shm_fd;
	/** Vectors per peer, 1..IVSHMEM_MAX_VECTORS. */
	unsigned vectors;
	/** IDs handed out are 0..max_peers-1; 0 means IVSHMEM_MAX_PEERS. */
	unsigned max_peers;
	/**
	 * Messages that may wait in one peer's output queue beyond its
	 * greeting before it is disconnected; 0 means the default (65536).
	 */
	unsigned queue_limit;
};

/**
 * Create a server. On success the server owns config->listen_fd and
 * config->shm_fd and has asked (through ops->watch) to watch the
 * listening socket.
 *
 * @retval 0 success, *out is set
 * @retval -EINVAL NULL argument, missing ops->watch, negative fd, vectors
 *         out of range, max_peers above IVSHMEM_MAX_PEERS
 * @retval -ENOMEM out of memory
 * On failure the fds are not closed and still belong to the caller.
 */
IVSHMEM_EXPORT int ivshmem_server_new(const struct ivshmem_server_config *config,
				      const struct ivshmem_server_ops *ops,
				      void *user, struct ivshmem_server **out);

/**
 * Disconnect every peer, close every fd the server owns (the listening
 * socket and the shm fd included) and free the server. Accepts NULL.
 * Peers are not told of each other's leaving (they see their socket
 * close). The socket file is not unlinked: that is the caller's.
 */
IVSHMEM_EXPORT void ivshmem_server_free(struct ivshmem_server *srv);

/**
 * Do the work for an fd that the caller's loop reported ready. Never
 * blocks. Unknown fds are ignored.
 *
 * @param revents POLLIN / POLLOUT / POLLERR / POLLHUP as reported
 * @retval 0 always: failures on one connection are handled there (the
 *         peer is dropped and reported through ops->event)
 * @retval -EINVAL srv is NULL
 */
IVSHMEM_EXPORT int ivshmem_server_dispatch(struct ivshmem_server *srv, int fd,
					   int revents);

/**
 * The timer armed through ops->timer fired.
 * @retval 0 success
 * @retval -EINVAL srv is NULL
 */
IVSHMEM_EXPORT int ivshmem_server_timeout(struct ivshmem_server *srv);

/**
 * Disconnect peer @p id; the others are told it left.
 * @retval 0 success
 * @retval -EINVAL srv is NULL
 * @retval -ENOENT no peer with that ID
 */
IVSHMEM_EXPORT int ivshmem_server_kick(struct ivshmem_server *srv, int id);

/** Number of connected peers; -EINVAL if srv is NULL. */
IVSHMEM_EXPORT int ivshmem_server_peer_count(const struct ivshmem_server *srv);

#ifdef __cplusplus
}
#endif

#endif /* LIBIVSHMEM_IVSHMEM_H */
