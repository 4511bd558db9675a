/* SPDX-License-Identifier: MIT */
/**
 * @file ivshmem.h
 * libivshmem: the ivshmem wire protocol, server side and peer side.
 *
 * A server listens on an AF_UNIX stream socket and sends each peer its ID,
 * the shared memory and every peer's eventfds; peers ring each other
 * through those eventfds and never send anything. ivshmem-protocol(7) is
 * the protocol, libivshmem(3) the full reference of this header.
 *
 * Conventions:
 *  - functions that return int return >= 0 on success and a negative
 *    errno value on failure. The same bad argument gets the same error in
 *    every call:
 *      -EINVAL  a NULL object, a NULL pointer the call needs, a negative
 *               fd, a config field out of range, unknown flags;
 *      -EBADF   an fd that is not open;
 *      -ENAMETOOLONG  a path or name too long for its use;
 *      -ENOENT  a peer ID that names no peer (any int is accepted: one
 *               outside 0..65535 never names one);
 *      -ERANGE  a vector number the peer does not have;
 *    and for the state of the object: -EISCONN (connected), -ENOTCONN
 *    (not connected), -ENODATA (not received yet), -EBUSY (called from a
 *    callback);
 *  - an fd handed to the library (ivshmem_server_config.listen_fd and
 *    .shm_fd, ivshmem_peer_connect_fd()) becomes the library's only when
 *    the call succeeds; when it fails, the fd is still open, unchanged,
 *    and the caller's. fds the library returns stay its own: dup() them
 *    to keep them;
 *  - ops and config are copied: they may be changed or freed once the
 *    call returns. user is kept as given, never dereferenced, and passed
 *    back to every callback;
 *  - the library never prints and never exits: it reports through the log
 *    callback given in the ops;
 *  - the library never owns an event loop: the caller watches the fds the
 *    library asks for and calls the dispatch function when one is ready;
 *  - every fd the library creates or receives is close-on-exec.
 *
 * Threading: an ivshmem_server or ivshmem_peer object is not thread-safe;
 * call all of its functions from one thread at a time, or lock around
 * them. Different objects are independent. ivshmem_version() and
 * ivshmem_strerror() are thread-safe; for a peer's exceptions see
 * ivshmem_peer_new().
 */
#ifndef LIBIVSHMEM_IVSHMEM_H
#define LIBIVSHMEM_IVSHMEM_H

#include <stdarg.h>
#include <stddef.h>
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
/** Messages that may wait for a peer beyond its greeting, by default
 * (ivshmem_server_config.queue_limit). */
#define IVSHMEM_DEFAULT_QUEUE_LIMIT 65536u

/** Log priorities, the same numbers as syslog's. */
enum ivshmem_log_priority {
	IVSHMEM_LOG_ERR = 3,
	IVSHMEM_LOG_WARNING = 4,
	IVSHMEM_LOG_NOTICE = 5,
	IVSHMEM_LOG_INFO = 6,
	IVSHMEM_LOG_DEBUG = 7,
};

/** The library's version string, e.g. "0.2.0". */
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
 * An existing POSIX object of the right size is kept, content and all.
 *
 * @retval 0 success
 * @retval -EINVAL bad kind, NULL fd_out, NULL name where one is needed,
 *         size 0, or a POSIX name with a '/' after the first character
 * @retval -ENAMETOOLONG the POSIX name is longer than NAME_MAX
 * @retval -EFBIG size larger than the system can represent (off_t)
 * @retval -EEXIST a POSIX object of that name exists with another size
 * @retval other negative errno from shm_open, open, memfd_create,
 *         ftruncate or fcntl (for example -EACCES, -ENOSPC, -EMFILE)
 */
IVSHMEM_EXPORT int ivshmem_shm_open(enum ivshmem_shm_kind kind,
				    const char *name, uint64_t size,
				    int *fd_out, int *created_out);

/**
 * Is the shared memory behind @p fd sealed against shrinking
 * (F_SEAL_SHRINK, as IVSHMEM_SHM_MEMFD makes it)? When it is not, any
 * process holding the fd may ftruncate() it, and every process that then
 * touches its mapping past the new end gets SIGBUS.
 * @retval 1 sealed: no one can shrink it
 * @retval 0 not sealed (a POSIX object, a file, or a memfd without the
 *         seal)
 * @retval -EBADF @p fd is not an open fd
 */
IVSHMEM_EXPORT int ivshmem_shm_sealed(int fd);

/* ------------------------------------------------------------------ */
/* Listening socket                                                    */
/* ------------------------------------------------------------------ */

/**
 * Create a non-blocking, close-on-exec AF_UNIX stream socket listening on
 * @p path. A stale socket file at @p path (nobody accepts on it) is
 * replaced; a live one is left alone.
 *
 * @retval 0 success, *fd_out is the listening socket
 * @retval -EINVAL NULL or empty path, NULL fd_out
 * @retval -ENAMETOOLONG path does not fit in sun_path
 * @retval -EADDRINUSE a server is already listening on path
 * @retval -EEXIST path exists and is not a socket
 * @retval other negative errno from socket, bind or listen
 */
IVSHMEM_EXPORT int ivshmem_socket_listen(const char *path, int *fd_out);

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
	/** A connection was closed before it was sent anything (id is -1);
	 * error is ENOSPC (no ID free), ENOMEM, or what authorize
	 * returned. */
	IVSHMEM_EVENT_REFUSED = 3,
	/** Out of fds (error says which errno): accepting is paused until a
	 * peer leaves or a retry on the timer succeeds. Once when the
	 * shortage starts, not once per retry. */
	IVSHMEM_EVENT_ACCEPT_PAUSED = 4,
	/** The shortage is over: every waiting connection was accepted
	 * (once for each ACCEPT_PAUSED). */
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
	/** Connected peers after the event, as the events tell it: a peer
	 * that failed during this dispatch, whose PEER_LEFT is still to
	 * come, is counted until that event. */
	unsigned peers;
};

/** Callbacks from the server side to its caller. */
struct ivshmem_server_ops {
	/** Required. Watch @p fd for @p events (POLLIN and/or POLLOUT; 0:
	 * keep it but do not report it; < 0: the library is about to close
	 * it, forget it). */
	void (*watch)(void *user, int fd, int events);
	/** Optional (needed to recover from fd exhaustion without a peer
	 * leaving). Arm a one-shot timer of @p ms milliseconds (< 0:
	 * cancel); when it fires, call ivshmem_server_timeout(). */
	void (*timer)(void *user, int ms);
	/** Optional. Connection events, for logging or bookkeeping. */
	void (*event)(void *user, const struct ivshmem_server_event *ev);
	/** Optional. Log a message; priority is enum ivshmem_log_priority. */
	void (*log)(void *user, int priority, const char *fmt, va_list ap)
		IVSHMEM_PRINTF(3, 0);
	/** Optional. May this connection become a peer? Called with its
	 * SO_PEERCRED credentials (-1 when unknown) before it is given an ID
	 * or sent anything. Return >= 0 to accept, or a negative errno (for
	 * example -EPERM) to refuse: the connection is closed at once and
	 * ops->event reports IVSHMEM_EVENT_REFUSED. NULL accepts everyone.
	 * It may call the ivshmem_server_* functions other than dispatch,
	 * timeout and free. */
	int (*authorize)(void *user, pid_t pid, uid_t uid, gid_t gid);
};

/** Server configuration, copied by ivshmem_server_new(). Zero fields take
 * the defaults noted. */
struct ivshmem_server_config {
	/** Listening socket, non-blocking; the server's on success. */
	int listen_fd;
	/** Shared-memory fd sent to every peer; the server's on success. */
	int shm_fd;
	/** Vectors per peer, 1..IVSHMEM_MAX_VECTORS. */
	unsigned vectors;
	/** IDs handed out are 0..max_peers-1; 0 means IVSHMEM_MAX_PEERS. */
	unsigned max_peers;
	/** Messages that may wait for one peer beyond its greeting before it
	 * is disconnected; 0 means IVSHMEM_DEFAULT_QUEUE_LIMIT. */
	unsigned queue_limit;
};

/**
 * Create a server. It copies @p config and @p ops, owns config->listen_fd
 * and config->shm_fd on success (on failure they are still the caller's)
 * and asks ops->watch to watch the listening socket.
 *
 * @retval 0 success, *out is set
 * @retval -EINVAL NULL config, ops or out; no ops->watch; a negative fd;
 *         vectors out of 1..IVSHMEM_MAX_VECTORS; max_peers above
 *         IVSHMEM_MAX_PEERS
 * @retval -EBADF listen_fd or shm_fd is not open
 * @retval -ENOMEM out of memory
 */
IVSHMEM_EXPORT int ivshmem_server_new(const struct ivshmem_server_config *config,
				      const struct ivshmem_server_ops *ops,
				      void *user, struct ivshmem_server **out);

/**
 * Disconnect every peer, close every fd the server owns (listen_fd and
 * shm_fd included) and free the server. Accepts NULL. The socket file is
 * not unlinked: that is the caller's.
 */
IVSHMEM_EXPORT void ivshmem_server_free(struct ivshmem_server *srv);

/**
 * Do the work for an fd that the caller's loop reported ready. Never
 * blocks. fds the server does not watch are ignored.
 *
 * @param revents POLLIN / POLLOUT / POLLERR / POLLHUP as reported
 * @retval 0 success: a failure on one connection drops that peer and is
 *         reported through ops->event
 * @retval -EINVAL NULL srv, negative fd
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

/**
 * The number of connected peers.
 * @retval >=0 the count
 * @retval -EINVAL NULL srv
 */
IVSHMEM_EXPORT int ivshmem_server_get_peer_count(const struct ivshmem_server *srv);

/** What the server knows of one connected peer. */
struct ivshmem_server_peer_info {
	int id;                     /**< peer ID */
	unsigned vectors;           /**< its vector count (the server's) */
	pid_t pid;                  /**< SO_PEERCRED, or -1 */
	uid_t uid;                  /**< SO_PEERCRED, or (uid_t)-1 */
	gid_t gid;                  /**< SO_PEERCRED, or (gid_t)-1 */
	/** Messages waiting in its output queue (a peer that does not read
	 * is disconnected when this passes the queue limit). */
	unsigned queued;
	/** When it was accepted: CLOCK_REALTIME in nanoseconds since the
	 * epoch (a plain integer, so that the header stays ISO C). */
	int64_t connected_ns;
	/** Zero; room for later fields without changing the size. */
	uint64_t reserved[4];
};

/**
 * The IDs of the connected peers, in increasing order.
 * @param ids receives up to @p max IDs (may be NULL when max is 0)
 * @retval >=0 the number of connected peers (may exceed max)
 * @retval -EINVAL NULL srv, or NULL ids with max > 0
 */
IVSHMEM_EXPORT int ivshmem_server_get_peers(const struct ivshmem_server *srv,
					    int *ids, unsigned max);

/**
 * Describe connected peer @p id.
 * @retval 0 success, *info is filled
 * @retval -EINVAL NULL srv or info
 * @retval -ENOENT no connected peer with that ID
 */
IVSHMEM_EXPORT int ivshmem_server_get_peer(const struct ivshmem_server *srv,
					   int id,
					   struct ivshmem_server_peer_info *info);

/**
 * Ring vector @p vector of peer @p id from the server, as another peer
 * ringing it would.
 * @retval 0 success
 * @retval -EINVAL NULL srv
 * @retval -ENOENT no connected peer with that ID
 * @retval -ERANGE vector is not below the server's vector count
 * @retval -EAGAIN the eventfd counter is full (never in practice)
 * @retval other negative errno from write
 */
IVSHMEM_EXPORT int ivshmem_server_ring(struct ivshmem_server *srv, int id,
				       unsigned vector);

/**
 * The shared-memory fd the server sends to its peers, owned by the server.
 * @retval >=0 the fd
 * @retval -EINVAL NULL srv
 */
IVSHMEM_EXPORT int ivshmem_server_get_shm_fd(const struct ivshmem_server *srv);

/**
 * The vector count of every peer.
 * @retval >=1 the count
 * @retval -EINVAL NULL srv
 */
IVSHMEM_EXPORT int ivshmem_server_get_vectors(const struct ivshmem_server *srv);

/* ------------------------------------------------------------------ */
/* Peer side                                                           */
/* ------------------------------------------------------------------ */

/*
 * A peer joins a server: it receives its ID, the shared memory and every
 * peer's eventfds, keeps the peer table up to date from join and leave
 * notices, rings other peers and is told of its own doorbells.
 *
 * An error that ends a connection is a negative errno value, reported to
 * ops->disconnected and returned by ivshmem_peer_dispatch() and
 * ivshmem_peer_wait_ready(); ivshmem_strerror() says what it means, and
 * ERRORS in libivshmem(3) lists them all.
 */

struct ivshmem_peer;

/** Where a peer is in its life. */
enum ivshmem_peer_state {
	/** Never connected. */
	IVSHMEM_PEER_IDLE = 0,
	/** Connected, the greeting is being received. */
	IVSHMEM_PEER_CONNECTING = 1,
	/** Own ID, shared memory and own vectors received. */
	IVSHMEM_PEER_READY = 2,
	/**
	 * The connection ended. When the server went away, what was
	 * received stays usable: the mapping and the eventfds
	 * (ivshmem-protocol(7) rule 9). After a protocol violation only the
	 * mapping stays. ivshmem_peer_connect() again.
	 */
	IVSHMEM_PEER_DISCONNECTED = 3,
};

/** Callbacks from a peer to its caller, all optional. They run inside
 * ivshmem_peer_dispatch() and ivshmem_peer_wait_ready(), and may call any
 * ivshmem_peer_* function but those two (-EBUSY) and ivshmem_peer_free()
 * (not allowed). */
struct ivshmem_peer_ops {
	/** The greeting is complete: own ID, shared memory, own vectors
	 * and the peers already connected (each reported to joined first)
	 * are known. Called once per connection. */
	void (*ready)(void *user, struct ivshmem_peer *peer);
	/** Peer @p id is connected with @p vectors vectors. Peers already
	 * connected are reported during the greeting, before ready. */
	void (*joined)(void *user, struct ivshmem_peer *peer, int id,
		       unsigned vectors);
	/** Peer @p id left; its eventfds are closed. */
	void (*left)(void *user, struct ivshmem_peer *peer, int id);
	/** Own vector @p vector was rung @p count times since last read
	 * (an eventfd counts, it does not queue). */
	void (*doorbell)(void *user, struct ivshmem_peer *peer,
			 unsigned vector, uint64_t count);
	/** The connection ended; @p error is a negative errno value (see
	 * ivshmem_strerror()). */
	void (*disconnected)(void *user, struct ivshmem_peer *peer, int error);
	/** Log a message; priority is enum ivshmem_log_priority. */
	void (*log)(void *user, int priority, const char *fmt, va_list ap)
		IVSHMEM_PRINTF(3, 0);
};

/** Peer configuration flags. */
enum ivshmem_peer_flags {
	/** Do not map the shared memory; use ivshmem_peer_get_shm_fd(). */
	IVSHMEM_PEER_NO_MAP = 1 << 0,
};

/** Peer configuration, copied by ivshmem_peer_new(). Zero fields take the
 * defaults noted. */
struct ivshmem_peer_config {
	/** Vectors this peer uses, 1..IVSHMEM_MAX_VECTORS; more from the
	 * server are closed. 0: as many as the server has. How the peer
	 * tells when the greeting is complete: libivshmem(3). */
	unsigned vectors;
	/** Required shared-memory size in bytes; 0 accepts any size. */
	uint64_t shm_size;
	/** enum ivshmem_peer_flags, or-ed. */
	unsigned flags;
};

/**
 * Create a peer, not connected yet. It copies @p config and @p ops.
 *
 * Threading: besides the peer's own thread, other threads may use the
 * shared memory and the own vector fds (ivshmem_peer_get_vector_fd())
 * while they are valid; libivshmem(3) says until when.
 *
 * @retval 0 success, *out is set
 * @retval -EINVAL NULL config, ops or out; vectors above
 *         IVSHMEM_MAX_VECTORS; unknown flags
 * @retval -ENOMEM out of memory
 * @retval other negative errno from epoll_create1 or timerfd_create
 *         (e.g. -EMFILE)
 */
IVSHMEM_EXPORT int ivshmem_peer_new(const struct ivshmem_peer_config *config,
				    const struct ivshmem_peer_ops *ops,
				    void *user, struct ivshmem_peer **out);

/**
 * Close the connection and every fd the peer holds, unmap the shared
 * memory and free the peer. Accepts NULL. Not from a callback.
 */
IVSHMEM_EXPORT void ivshmem_peer_free(struct ivshmem_peer *peer);

/**
 * Connect to the server listening on @p path, without blocking: the
 * greeting arrives through ivshmem_peer_dispatch() (or wait for it with
 * ivshmem_peer_wait_ready()). A peer that was connected before starts
 * afresh (libivshmem(3) says what is kept).
 *
 * @retval 0 connected; the greeting follows
 * @retval -EINVAL NULL peer or path, empty path
 * @retval -ENAMETOOLONG path does not fit in sun_path
 * @retval -EISCONN the peer is connected (CONNECTING or READY)
 * @retval -ENOENT no socket at path (is the server running?)
 * @retval -ECONNREFUSED a socket file nobody listens on (stale)
 * @retval -EAGAIN the server's backlog is full; try again later
 * @retval other negative errno from socket, connect or epoll_ctl (e.g.
 *         -EACCES, -EMFILE)
 */
IVSHMEM_EXPORT int ivshmem_peer_connect(struct ivshmem_peer *peer,
					const char *path);

/**
 * Like ivshmem_peer_connect() but on a stream socket that is already
 * connected to a server. On success the peer owns @p fd and has made it
 * non-blocking and close-on-exec; on failure @p fd is still the caller's,
 * open and unchanged.
 *
 * @retval 0 success
 * @retval -EINVAL NULL peer, negative fd
 * @retval -EBADF fd is not open
 * @retval -EISCONN the peer is connected
 * @retval other negative errno from fcntl or epoll_ctl (e.g. -EPERM: fd
 *         is a regular file)
 */
IVSHMEM_EXPORT int ivshmem_peer_connect_fd(struct ivshmem_peer *peer, int fd);

/**
 * Close the connection, without calling ops->disconnected. As when the
 * server goes away, the mapping and the eventfds stay usable.
 *
 * @retval 0 success
 * @retval -EINVAL NULL peer
 * @retval -ENOTCONN not connected
 */
IVSHMEM_EXPORT int ivshmem_peer_disconnect(struct ivshmem_peer *peer);

/**
 * The fd to watch for readability in the caller's loop: when it is
 * readable, call ivshmem_peer_dispatch(). Owned by the peer; the same for
 * its whole life, across reconnects.
 * @retval >=0 the fd
 * @retval -EINVAL NULL peer
 */
IVSHMEM_EXPORT int ivshmem_peer_get_fd(const struct ivshmem_peer *peer);

/**
 * Do the work that is ready, without blocking: take server messages (a
 * bounded number per call: the fd stays readable while more wait) and
 * the own doorbells, calling the callbacks.
 *
 * @retval 0 success (also when not connected)
 * @retval -EINVAL NULL peer
 * @retval -EBUSY called from one of the peer's callbacks
 * @retval <0 the connection ended during this call with this error;
 *         ops->disconnected was called with the same value
 */
IVSHMEM_EXPORT int ivshmem_peer_dispatch(struct ivshmem_peer *peer);

/**
 * Dispatch, blocking, until the peer is READY or @p timeout_ms
 * milliseconds have passed (< 0: no limit).
 *
 * @retval 0 the peer is ready
 * @retval -EINVAL NULL peer
 * @retval -ENOTCONN not connected (IDLE, or DISCONNECTED before this call)
 * @retval -EBUSY called from one of the peer's callbacks (and not ready)
 * @retval -ETIMEDOUT not ready in time; the connection stays open
 * @retval <0 the connection ended while waiting with this error
 */
IVSHMEM_EXPORT int ivshmem_peer_wait_ready(struct ivshmem_peer *peer,
					   int timeout_ms);

/**
 * The peer's state.
 * @retval >=0 an enum ivshmem_peer_state
 * @retval -EINVAL NULL peer
 */
IVSHMEM_EXPORT int ivshmem_peer_get_state(const struct ivshmem_peer *peer);

/**
 * The own peer ID, also after a disconnect.
 * @retval 0..65535 the ID
 * @retval -EINVAL NULL peer
 * @retval -ENODATA no ID received yet
 */
IVSHMEM_EXPORT int ivshmem_peer_get_id(const struct ivshmem_peer *peer);

/**
 * The shared memory.
 * @param addr if not NULL, receives its address (NULL with
 *        IVSHMEM_PEER_NO_MAP)
 * @param size if not NULL, receives its size in bytes
 * @retval 0 success
 * @retval -EINVAL NULL peer
 * @retval -ENODATA no shared memory received yet
 */
IVSHMEM_EXPORT int ivshmem_peer_get_shm(const struct ivshmem_peer *peer,
					void **addr, uint64_t *size);

/**
 * The shared-memory fd, owned by the peer (dup() it to keep it).
 * @retval >=0 the fd
 * @retval -EINVAL NULL peer
 * @retval -ENODATA no shared memory received yet
 */
IVSHMEM_EXPORT int ivshmem_peer_get_shm_fd(const struct ivshmem_peer *peer);

/**
 * Can the shared memory shrink under this peer? Without the seal, any
 * peer may ftruncate() it, and touching the mapping past the new end
 * raises SIGBUS in this process: the library does not guard its own
 * accesses (channels included), so a program that must survive such a
 * peer catches SIGBUS around its accesses, or requires a sealed region
 * (ivshmem-server --memfd). A guest's device memory cannot shrink.
 * @retval 1 sealed against shrinking (or a guest's device memory)
 * @retval 0 any peer can shrink it
 * @retval -EINVAL NULL peer
 * @retval -ENODATA no shared memory received yet
 */
IVSHMEM_EXPORT int ivshmem_peer_get_shm_sealed(const struct ivshmem_peer *peer);

/**
 * The last connection error (what ops->disconnected and the return value
 * reported) in one sentence, with what only the peer knows, such as the
 * sizes involved: "Mapping the server's shared memory (4194304 bytes)
 * read-write failed: Permission denied (the server sent it opened
 * read-only)".
 * Otherwise ivshmem_strerror() of the error, and "Success" when there was
 * none since the last connect. Valid until the peer's next call.
 * @return the sentence (NULL only for a NULL peer)
 */
IVSHMEM_EXPORT const char *ivshmem_peer_get_error(const struct ivshmem_peer *peer);

/**
 * The vector count of peer @p id (the own ID included).
 * @retval >=0 its vector count
 * @retval -EINVAL NULL peer
 * @retval -ENOENT no such peer
 */
IVSHMEM_EXPORT int ivshmem_peer_get_vectors(const struct ivshmem_peer *peer,
					    int id);

/**
 * The IDs of the other connected peers, in increasing order.
 * @param ids receives up to @p max IDs (may be NULL when max is 0)
 * @retval >=0 the number of other peers (may exceed max)
 * @retval -EINVAL NULL peer, or NULL ids with max > 0
 */
IVSHMEM_EXPORT int ivshmem_peer_get_peers(const struct ivshmem_peer *peer,
					  int *ids, unsigned max);

/**
 * Ring vector @p vector of peer @p id (the own ID included): add 1 to its
 * eventfd. Works after a disconnect with the eventfds still held.
 * @retval 0 success
 * @retval -EINVAL NULL peer
 * @retval -ENOENT no such peer
 * @retval -ERANGE the peer has no vector @p vector
 * @retval -EAGAIN the eventfd counter is full (never in practice)
 * @retval other negative errno from write
 */
IVSHMEM_EXPORT int ivshmem_peer_ring(struct ivshmem_peer *peer, int id,
				     unsigned vector);

/**
 * The own eventfd of vector @p vector, non-blocking and owned by the peer,
 * for callers who poll it directly (a doorbell read there is not reported
 * to ops->doorbell). libivshmem(3) says how long it stays valid.
 * @retval >=0 the fd
 * @retval -EINVAL NULL peer
 * @retval -ENODATA no own vectors yet
 * @retval -ERANGE no own vector @p vector
 */
IVSHMEM_EXPORT int ivshmem_peer_get_vector_fd(const struct ivshmem_peer *peer,
					      unsigned vector);

/* ------------------------------------------------------------------ */
/* Inside a guest: an ivshmem PCI device as a peer                     */
/* ------------------------------------------------------------------ */

/*
 * In a Linux guest, QEMU's ivshmem-doorbell device (PCI 1af4:1110) is the
 * guest's connection to the server: BAR0 holds its registers (IVPOSITION,
 * DOORBELL, INTRMASK, INTRSTATUS), BAR1 its MSI-X table, BAR2 the shared
 * memory. ivshmem_peer_open_pci() makes a peer of it, so the peer API
 * above and the channels below work on it unchanged: the own ID is
 * IVPOSITION, ring writes DOORBELL, own doorbells arrive on the own
 * vector fds and through ivshmem_peer_dispatch(). What differs (GUEST in
 * libivshmem(3)): the device tells nothing of other peers, so there are
 * no joined or left callbacks, ivshmem_peer_get_peers() is empty, and
 * ring reaches any ID the server may have.
 *
 * Doorbells come as MSI-X interrupts through VFIO (the device bound to
 * vfio-pci, an IOMMU in the guest), or, where VFIO is not set up and no
 * driver holds the device, the sysfs resource files are used and the
 * doorbells are polled (IVSHMEM_PCI_MODE_POLL, every
 * ivshmem_pci_info.poll_us microseconds). ivshmem-plain has no
 * doorbells: shared memory only.
 */

/** PCI IDs of QEMU's ivshmem devices (doorbell and plain alike). */
#define IVSHMEM_PCI_VENDOR 0x1af4
#define IVSHMEM_PCI_DEVICE 0x1110

/** Flags of ivshmem_peer_open_pci(). */
enum ivshmem_pci_flags {
	/** Through VFIO or not at all. */
	IVSHMEM_PCI_VFIO = 1 << 0,
	/** Through the sysfs resource files, never VFIO. */
	IVSHMEM_PCI_SYSFS = 1 << 1,
};

/** How an opened device is reached. */
enum ivshmem_pci_mode {
	/** VFIO: doorbells are MSI-X interrupts on the own vector fds. */
	IVSHMEM_PCI_MODE_VFIO = 1,
	/** sysfs: doorbells are polled (see ivshmem_pci_info.poll_us). */
	IVSHMEM_PCI_MODE_POLL = 2,
	/** ivshmem-plain: shared memory only, no ID, no doorbells. */
	IVSHMEM_PCI_MODE_PLAIN = 3,
};

/** An ivshmem device as ivshmem_pci_list() finds it. */
struct ivshmem_pci_device {
	/** Domain:bus:device.function, e.g. "0000:00:03.0". */
	char address[16];
	/** 1: doorbell registers and an ID (ivshmem-doorbell); 0: plain. */
	int doorbell;
	/** MSI-X vectors, 0 without MSI-X. */
	unsigned vectors;
	/** BAR2, the shared memory, in bytes. */
	uint64_t shm_size;
	/** The driver bound to it, "" when none. */
	char driver[32];
	/** Its IOMMU group, -1 without an IOMMU. */
	int iommu_group;
};

/** What an opened device is. */
struct ivshmem_pci_info {
	char address[16];
	/** enum ivshmem_pci_mode */
	int mode;
	/** Own vectors (the own vector fds). */
	unsigned vectors;
	/** Between two looks for doorbells in IVSHMEM_PCI_MODE_POLL, else 0. */
	unsigned poll_us;
	/** In IVSHMEM_PCI_MODE_POLL: why VFIO was not used. */
	char why[200];
};

/**
 * The ivshmem devices present, in address order, into @p out (up to
 * @p max).
 * @retval >=0 how many there are (may exceed @p max)
 * @retval -EINVAL NULL out with max > 0
 * @retval other negative errno from reading /sys/bus/pci/devices
 */
IVSHMEM_EXPORT int ivshmem_pci_list(struct ivshmem_pci_device *out,
				    unsigned max);

/**
 * Make @p peer the ivshmem PCI device at @p address ("0000:00:03.0", or
 * "00:03.0" for domain 0; NULL: the first one). On success the peer is
 * IVSHMEM_PEER_READY at once (no ready callback). ivshmem_peer_disconnect()
 * or ivshmem_peer_free() gives the device back as it was found.
 * The peer's configured vectors, if not 0, limit the own vectors; its
 * shm_size, if not 0, must be BAR2's size.
 *
 * On failure, @p why (if not NULL) receives one sentence naming what to
 * do, e.g. "0000:00:03.0 is bound to uio_pci_generic, not vfio-pci: ...".
 * @retval 0 success
 * @retval -EINVAL NULL peer, unknown or contradicting flags, a malformed
 *         address
 * @retval -EISCONN the peer is connected or open already
 * @retval -ENODEV no such ivshmem device
 * @retval -ENOENT VFIO is not loaded (with IVSHMEM_PCI_VFIO)
 * @retval -ENXIO the device has no IOMMU group (with IVSHMEM_PCI_VFIO)
 * @retval -EBUSY the device is bound to another driver, or its IOMMU
 *         group is held by another process or not wholly vfio-pci's
 * @retval -EACCES no permission on /dev/vfio or the sysfs files
 * @retval -EPERM the IOMMU refused VFIO (no interrupt remapping)
 * @retval -EFBIG BAR2 is not of the configured shm_size
 * @retval other negative errno of the system calls
 */
IVSHMEM_EXPORT int ivshmem_peer_open_pci(struct ivshmem_peer *peer,
					 const char *address, unsigned flags,
					 char *why, size_t why_len);

/**
 * Bind the ivshmem device at @p address to vfio-pci (root; the vfio-pci
 * module loaded), unbinding it from a driver that holds it. Already bound
 * to vfio-pci: nothing to do. @p why as for ivshmem_peer_open_pci().
 * @retval 0 success
 * @retval -EINVAL a malformed address
 * @retval -ENODEV no such ivshmem device
 * @retval -ENOENT vfio-pci is not loaded
 * @retval -ENXIO vfio-pci refused it (no IOMMU group)
 * @retval other negative errno of writing sysfs (-EACCES: not root)
 */
IVSHMEM_EXPORT int ivshmem_pci_bind(const char *address, char *why,
				    size_t why_len);

/**
 * What the device @p peer opened is.
 * @retval 0 success
 * @retval -EINVAL NULL peer or info
 * @retval -ENODEV the peer is not an opened PCI device
 */
IVSHMEM_EXPORT int ivshmem_peer_get_pci(const struct ivshmem_peer *peer,
					struct ivshmem_pci_info *info);

/* ------------------------------------------------------------------ */
/* Channels                                                            */
/* ------------------------------------------------------------------ */

/*
 * A channel carries messages both ways between two ends through the
 * shared memory, in the format of ivshmem-channel(7): two single-producer
 * single-consumer rings in a layout written at an offset of the region,
 * with a doorbell only when the other end sleeps. Firmware and guests
 * compile the same core (ivchan.c). A channel is used by one thread at a
 * time. The other end is not trusted: a value it writes that breaks the
 * format breaks the channel (-ENOTRECOVERABLE from then on; see
 * ivshmem_channel_get_stats()), never this process.
 */

struct ivshmem_channel;

/** A channel name's longest length. */
#define IVSHMEM_CHANNEL_NAME_MAX 31
/** Ring bytes per direction when a spec gives 0. */
#define IVSHMEM_CHANNEL_DEFAULT_RING (64u * 1024u)

/** One channel of a layout to write. */
struct ivshmem_channel_spec {
	/** 1..IVSHMEM_CHANNEL_NAME_MAX bytes of [A-Za-z0-9._-]. */
	const char *name;
	/** Ring bytes: [0] carries end 0's messages, [1] end 1's. Powers of
	 * two, 64 bytes to 1 GiB; 0 means IVSHMEM_CHANNEL_DEFAULT_RING. */
	uint32_t ring_size[2];
	/** The largest message; 0: the largest the smaller ring allows
	 * (half of it, less 8 bytes). */
	uint32_t max_msg;
};

/**
 * The bytes a layout of these channels takes.
 * @param line  the cache-line separation, a power of two 32..4096; 0: 64
 * @retval 0 success, *size_out set
 * @retval -EINVAL NULL specs or size_out, count 0 or over 64, a bad line,
 *         name, ring size or maximum
 * @retval -ENAMETOOLONG a name over IVSHMEM_CHANNEL_NAME_MAX
 * @retval -EEXIST two channels share a name
 * @retval -ENOSPC over 4 GiB
 */
IVSHMEM_EXPORT int ivshmem_layout_size(const struct ivshmem_channel_spec *specs,
				       unsigned count, unsigned line,
				       uint64_t *size_out);

/**
 * Write a layout of @p count channels at @p offset of the shared memory
 * mapped at @p region (@p region_size bytes): every end detached, every
 * ring empty. Only the layout's bytes are written; nobody may be attached
 * meanwhile (attached ends see it as -ESTALE).
 * @retval 0 success
 * @retval -EINVAL NULL region, an offset not a multiple of 64, or as
 *         ivshmem_layout_size()
 * @retval -ENOSPC the layout does not fit between offset and the end
 */
IVSHMEM_EXPORT int ivshmem_layout_write(void *region, uint64_t region_size,
					uint64_t offset,
					const struct ivshmem_channel_spec *specs,
					unsigned count, unsigned line);

/** What one end of a channel publishes. */
struct ivshmem_channel_end_info {
	int attached;           /**< 1 attached, 0 detached */
	int peer;               /**< its ivshmem peer ID, -1 if none */
	unsigned vector;        /**< the vector it is rung on */
	uint32_t epoch;         /**< changes on each attach; 0: never */
	uint32_t head;          /**< the head of the ring it writes */
	uint32_t tail;          /**< the tail of the ring it reads */
	int sleeping;           /**< it waits for a doorbell (its ring to
				     read is empty and it asked for one) */
	/** What it counts since it attached, modulo 2^32. */
	uint32_t sent, received, rung, suppressed, sleeps;
	uint32_t discarded;     /**< messages it discarded on attach */
};

/** One channel of a layout, as ivshmem_layout_get_channel() reads it. */
struct ivshmem_channel_info {
	char name[IVSHMEM_CHANNEL_NAME_MAX + 1];
	unsigned index;
	uint64_t offset;        /**< of its control lines, in the region */
	uint32_t ring_size[2];
	uint32_t max_msg;
	uint32_t fill[2];       /**< bytes waiting in ring 0 and ring 1 */
	struct ivshmem_channel_end_info end[2];
};

/**
 * Read channel @p index of the layout at @p offset (a live view: values
 * may change while they are read).
 * @retval >=1 the layout's channel count, *info set
 * @retval -EINVAL NULL region or info
 * @retval -EBADMSG no valid layout there, or entry @p index is invalid
 * @retval -EPROTONOSUPPORT a layout of another version
 * @retval -ENOENT index is not below the channel count
 */
IVSHMEM_EXPORT int ivshmem_layout_get_channel(const void *region,
					      uint64_t region_size,
					      uint64_t offset, unsigned index,
					      struct ivshmem_channel_info *info);

/** Attach flags. */
enum ivshmem_channel_flags {
	/** Discard the messages waiting for this end (counted in
	 * ivshmem_channel_stats.discarded) instead of receiving them. */
	IVSHMEM_CHANNEL_RESET = 1 << 0,
};

/** What to attach to, copied by ivshmem_channel_attach(). */
struct ivshmem_channel_config {
	/** The layout's offset in the shared memory. */
	uint64_t offset;
	/** The channel's name. */
	const char *name;
	/** Which end: 0 or 1. */
	unsigned end;
	/** The own vector the other end rings: its doorbells become the
	 * channel's (ivshmem_channel_get_fd()), no longer ops->doorbell's. */
	unsigned vector;
	/** enum ivshmem_channel_flags, or-ed. */
	unsigned flags;
};

/**
 * Attach to an end of a channel, on a READY peer. Messages waiting for
 * the end stay and are received (unless IVSHMEM_CHANNEL_RESET); messages
 * this end sent before, under any owner, stay in the ring.
 * ivshmem-channel(7) says what survives a restart.
 *
 * @retval 0 success, *out is set
 * @retval -EINVAL NULL peer, config, name or out; end above 1; unknown
 *         flags
 * @retval -ENOTCONN the peer is not READY
 * @retval -ENODATA the peer has not mapped the shared memory
 *         (IVSHMEM_PEER_NO_MAP)
 * @retval -ERANGE the peer has no own vector config->vector
 * @retval -EBUSY another channel of this peer uses that vector
 * @retval -EBADMSG no valid layout at config->offset
 * @retval -EPROTONOSUPPORT a layout of another version
 * @retval -ENOENT no channel of that name
 * @retval -EADDRINUSE the end is attached by another connected peer
 * @retval -EUCLEAN the channel's indices are inconsistent: write the
 *         layout anew
 * @retval -ENOMEM, or another negative errno from dup
 */
IVSHMEM_EXPORT int ivshmem_channel_attach(struct ivshmem_peer *peer,
					  const struct ivshmem_channel_config *config,
					  struct ivshmem_channel **out);

/**
 * Mark the end detached, give the vector back to the peer and free the
 * channel. Accepts NULL. Call it before ivshmem_peer_free().
 */
IVSHMEM_EXPORT void ivshmem_channel_detach(struct ivshmem_channel *ch);

/** Commit flags. */
enum ivshmem_channel_commit_flags {
	/** More messages follow: ring the other end (if it sleeps) only at
	 * the next commit without this flag or ivshmem_channel_flush(). */
	IVSHMEM_CHANNEL_MORE = 1 << 0,
};

/**
 * Send a copy of @p len bytes as one message, ringing the other end if
 * it sleeps. Never blocks.
 * @retval 0 sent
 * @retval -EINVAL NULL ch, NULL buf with len > 0
 * @retval -EMSGSIZE len is over the channel's maximum
 * @retval -EAGAIN the ring is full: wait for IVSHMEM_CHANNEL_WRITABLE
 * @retval -EBUSY a reservation is open
 * @retval -ENOTRECOVERABLE the channel is broken
 */
IVSHMEM_EXPORT int ivshmem_channel_send(struct ivshmem_channel *ch,
					const void *buf, size_t len);

/**
 * Reserve room for a message of up to @p len bytes in the ring; write it
 * at *buf (8-byte aligned), then ivshmem_channel_commit(). Errors as
 * ivshmem_channel_send().
 */
IVSHMEM_EXPORT int ivshmem_channel_reserve(struct ivshmem_channel *ch,
					   size_t len, void **buf);

/**
 * Send the reserved message with its first @p len bytes.
 * @param flags 0 or IVSHMEM_CHANNEL_MORE
 * @retval 0 sent
 * @retval -EINVAL NULL ch, nothing reserved, len above the reservation,
 *         unknown flags
 */
IVSHMEM_EXPORT int ivshmem_channel_commit(struct ivshmem_channel *ch,
					  size_t len, unsigned flags);

/**
 * Ring the other end for commits made with IVSHMEM_CHANNEL_MORE, if it
 * sleeps, and for the room released so far, if it waits for room (a
 * release tells it at once only when a quarter of the ring is free; a
 * receive that finds the ring empty, dispatch and detach flush too).
 * @retval 0 success
 * @retval -EINVAL NULL ch
 */
IVSHMEM_EXPORT int ivshmem_channel_flush(struct ivshmem_channel *ch);

/**
 * Receive the next message: copy it into @p buf and consume it. Never
 * blocks.
 * @retval >=0 its length
 * @retval -EINVAL NULL ch, NULL buf with cap > 0
 * @retval -EAGAIN nothing waits: wait for IVSHMEM_CHANNEL_READABLE
 * @retval -EMSGSIZE it is longer than @p cap; it stays (peek shows it)
 * @retval -EBUSY a peek is open
 * @retval -ENOTRECOVERABLE the channel is broken (this call may find it)
 */
IVSHMEM_EXPORT ssize_t ivshmem_channel_recv(struct ivshmem_channel *ch,
					    void *buf, size_t cap);

/**
 * The next message in place, without consuming it: valid until
 * ivshmem_channel_release(). The other end could change its bytes
 * meanwhile (it is not trusted): copy what must not change before
 * checking it. Errors as ivshmem_channel_recv() but -EMSGSIZE.
 */
IVSHMEM_EXPORT int ivshmem_channel_peek(struct ivshmem_channel *ch,
					const void **buf, size_t *len);

/**
 * Consume the peeked message (ringing the other end if it waits for
 * room).
 * @retval 0 success
 * @retval -EINVAL NULL ch, nothing peeked
 */
IVSHMEM_EXPORT int ivshmem_channel_release(struct ivshmem_channel *ch);

/** What ivshmem_channel_dispatch() and ivshmem_channel_wait() report. */
enum ivshmem_channel_events {
	/** A message waits. */
	IVSHMEM_CHANNEL_READABLE = 1 << 0,
	/** A message of the size last refused with -EAGAIN fits (always set
	 * when no send was refused). */
	IVSHMEM_CHANNEL_WRITABLE = 1 << 1,
	/** The other end changed: it attached anew (a new epoch), detached,
	 * or its peer left the server. ivshmem_channel_stats says more. */
	IVSHMEM_CHANNEL_PEER = 1 << 2,
};

/**
 * The fd to watch for readability in the caller's loop: it becomes
 * readable when the other end rings, and when the server sends the peer
 * something (ivshmem_channel_dispatch() then dispatches the peer too).
 * Owned by the channel.
 * @retval >=0 the fd
 * @retval -EINVAL NULL ch
 */
IVSHMEM_EXPORT int ivshmem_channel_get_fd(const struct ivshmem_channel *ch);

/**
 * Take the doorbells, look at the other end, and say what is ready.
 * Never blocks. When woken without a doorbell (by the server), or with a
 * doorbell pending for a peer the table does not know yet, it calls
 * ivshmem_peer_dispatch(), so the peer's callbacks may run in it. When it reports no READABLE (or no WRITABLE after a
 * refused send), it has asked the other end to ring: the fd becomes
 * readable when that changes, so the caller may sleep on it. Call it when
 * the fd is readable and before each sleep.
 * @retval >=0 enum ivshmem_channel_events, or-ed
 * @retval -EINVAL NULL ch
 * @retval -ENOTRECOVERABLE the channel is broken
 * @retval -ESTALE the layout was written anew under the channel
 * @retval -ENOTCONN the peer's connection changed since the attach:
 *         detach and attach again
 */
IVSHMEM_EXPORT int ivshmem_channel_dispatch(struct ivshmem_channel *ch);

/**
 * Dispatch and sleep on the fd until one of @p events is reported or
 * @p timeout_ms milliseconds have passed (< 0: no limit).
 * @retval >0 the events (as dispatch), at least one of @p events
 * @retval -ETIMEDOUT none in time
 * @retval -EINVAL NULL ch, events 0 or unknown
 * @retval other errors of ivshmem_channel_dispatch(), or of poll
 */
IVSHMEM_EXPORT int ivshmem_channel_wait(struct ivshmem_channel *ch,
					unsigned events, int timeout_ms);

/** The counters and state of one channel end. */
struct ivshmem_channel_stats {
	uint64_t sent;                  /**< messages sent */
	uint64_t received;              /**< messages received */
	uint64_t bytes_sent;
	uint64_t bytes_received;
	uint64_t doorbells_rung;        /**< the other end was rung */
	uint64_t doorbells_suppressed;  /**< sends that needed no doorbell */
	uint64_t doorbells_failed;      /**< rings that could not be made (its
					     peer is gone, a bad vector) */
	uint64_t doorbells_received;    /**< the own doorbell's counts */
	uint64_t sleeps;                /**< dispatches that asked for one */
	uint64_t discarded;             /**< waiting messages dropped by
					     IVSHMEM_CHANNEL_RESET */
	uint64_t lost;                  /**< own messages the other end
					     dropped (its RESET attaches) */
	uint64_t peer_restarts;         /**< new epochs of the other end */
	uint32_t rx_fill;               /**< bytes waiting to be received */
	uint32_t tx_fill;               /**< bytes not yet consumed */
	uint32_t max_msg;               /**< the channel's largest message */
	int error;                      /**< 0, or the error that stopped it */
	/** Why it is broken (-ENOTRECOVERABLE): a sentence, else "". */
	const char *broken;
	struct ivshmem_channel_end_info self, other;
	uint64_t reserved[4];
};

/**
 * Fill @p st.
 * @retval 0 success
 * @retval -EINVAL NULL ch or st
 */
IVSHMEM_EXPORT int ivshmem_channel_get_stats(const struct ivshmem_channel *ch,
					     struct ivshmem_channel_stats *st);

/**
 * A sentence describing @p error, a negative errno value that ended a
 * peer's connection, with its protocol meaning (e.g. -EEXIST: "The server
 * sent the shared memory a second time"); other values get strerror's
 * text. For the other functions' errors, use strerror(). Never NULL.
 */
IVSHMEM_EXPORT const char *ivshmem_strerror(int error);

#ifdef __cplusplus
}
#endif

#endif /* LIBIVSHMEM_IVSHMEM_H */
