/* SPDX-License-Identifier: MIT */
/**
 * @file ivshmem.h
 * libivshmem: the ivshmem wire protocol, server side and peer side.
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
 * Threading: an ivshmem_server or ivshmem_peer object is not thread-safe;
 * call all of its functions from one thread at a time (the one running the
 * event loop), or lock around them. Different objects are independent.
 * The exceptions for a peer are noted at ivshmem_peer_new().
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
	/**
	 * A connection was closed before it was sent anything. id is -1;
	 * pid, uid and gid are its credentials; error says why: ENOSPC no
	 * ID free, ENOMEM out of memory, or the errno that
	 * ivshmem_server_ops.authorize returned (for example EPERM or
	 * EACCES). Running out of fds refuses nobody: accepting pauses and
	 * the connection waits in the backlog.
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
	/**
	 * Optional. May this connection become a peer? Called once for
	 * every accepted connection, before it is given an ID or sent
	 * anything, with the credentials SO_PEERCRED reports: those of the
	 * process that called connect(), as they were at that moment (its
	 * effective uid and gid; supplementary groups are not known). When
	 * SO_PEERCRED fails they are -1, (uid_t)-1 and (gid_t)-1.
	 *
	 * Return 0 (or any value >= 0) to accept. Return a negative errno,
	 * for example -EPERM or -EACCES, to refuse: the connection is closed
	 * at once, so the client reads end-of-file without a single byte or
	 * fd; no ID is used up (the next peer gets the ID it would have
	 * got); the peers see nothing; and ops->event reports
	 * IVSHMEM_EVENT_REFUSED with that errno (positive) in error.
	 * Values below -4095 are taken as -EPERM.
	 *
	 * NULL accepts everyone who can connect to the socket. Runs inside
	 * ivshmem_server_dispatch() or ivshmem_server_timeout(); it may call
	 * the other ivshmem_server_* functions except those two and
	 * ivshmem_server_free().
	 */
	int (*authorize)(void *user, pid_t pid, uid_t uid, gid_t gid);
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
	 * greeting before it is disconnected; 0 means
	 * IVSHMEM_DEFAULT_QUEUE_LIMIT.
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
 * Ring vector @p vector of peer @p id from the server: add 1 to the
 * eventfd the server made for it, as another peer ringing it would.
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
 * The shared-memory fd the server sends to its peers. Owned by the server:
 * dup() it to keep it past ivshmem_server_free().
 * @retval >=0 the fd
 * @retval -EINVAL NULL srv
 */
IVSHMEM_EXPORT int ivshmem_server_get_shm_fd(const struct ivshmem_server *srv);

/** The vector count of every peer; -EINVAL if srv is NULL. */
IVSHMEM_EXPORT int ivshmem_server_get_vectors(const struct ivshmem_server *srv);

/* ------------------------------------------------------------------ */
/* Peer side                                                           */
/* ------------------------------------------------------------------ */

/*
 * A peer joins a server: it receives its ID, the shared memory and every
 * peer's eventfds, keeps the peer table up to date from join and leave
 * notices, rings other peers and is told of its own doorbells.
 *
 * Errors that end a connection are reported to ops->disconnected (and
 * returned by ivshmem_peer_dispatch()) as one of these negative errno
 * values; ivshmem_strerror() describes each in a sentence:
 *
 *  -ECONNREFUSED     the server closed the connection before sending
 *                    anything (it is full: no peer ID free; or it does
 *                    not allow this peer's uid and gid)
 *  -ECONNRESET       the server closed the connection (server gone)
 *  -EPROTO           the stream ended in the middle of a message
 *  -EPROTONOSUPPORT  the first message is not protocol version 0
 *  -ERANGE           a value that is not a peer ID (below -1 or above
 *                    65535), or -1 where the own ID was due
 *  -ENODATA          the third message is not the shared memory (-1 with
 *                    an fd)
 *  -ENODEV           the shared-memory fd is not a regular file or memfd
 *                    (a pipe, a socket, ...), so it cannot be mapped
 *  -EFBIG            the shared memory is empty, not of the size given in
 *                    ivshmem_peer_config.shm_size, or too large to map
 *  -EBADR            an fd came with a message that must carry none (the
 *                    version or the ID)
 *  -EBADMSG          a message came with more than one fd, or with
 *                    control data that is not SCM_RIGHTS
 *  -EMSGSIZE         the control data was truncated (fds were lost)
 *  -EBADFD           a vector fd is not an eventfd
 *  -EEXIST           a second shared-memory message
 *  -EIDRM            a leave notice for the peer's own ID
 *  -ESRCH            a leave notice for a peer that is not known
 *  other             a socket error from recvmsg, or a lack of local
 *                    resources: memory or fds (-ENOMEM, -EMFILE, -ENOSPC
 *                    from epoll_ctl), or an error mapping the shared
 *                    memory
 *
 * The connection is closed in every case. When the server went away
 * (-ECONNRESET, a socket error, a local resource error: the "other"
 * values) the peer keeps what it received, as PROTOCOL rule 9 says: the
 * mapping, the own eventfds (their doorbells are still reported) and the
 * other peers' eventfds (ringing them still works). After a protocol
 * violation (every value named above except -ECONNREFUSED and
 * -ECONNRESET) the peer closes every fd received on the connection, the
 * peer table's eventfds and the shared-memory fd, once ops->disconnected
 * has returned (so that it can first stop other threads that read the own
 * eventfds); only the mapping stays, until the next connect or free, so
 * that pointers into it do not fault.
 *
 * More vectors than configured are not an error (as with QEMU's device):
 * the extra fds are closed, and logged once per peer ID.
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
	 * received stays usable: the mapping, the own eventfds and the
	 * other peers' eventfds (they get no more join or leave notices).
	 * After a protocol violation only the mapping stays (see the error
	 * list above). ivshmem_peer_connect() again.
	 */
	IVSHMEM_PEER_DISCONNECTED = 3,
};

/** Callbacks from a peer to its caller. All optional. They run inside
 * ivshmem_peer_dispatch() / ivshmem_peer_wait_ready(); they may call any
 * ivshmem_peer_* function except ivshmem_peer_free() (not allowed) and
 * ivshmem_peer_dispatch() / ivshmem_peer_wait_ready() (-EBUSY). A callback
 * may disconnect or reconnect: the message being taken then belongs to
 * the old connection and is dropped with it. */
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
	/** The connection ended; @p error is one of the values listed
	 * above (never 0). */
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

/** Peer configuration. Zero fields take the defaults noted. */
struct ivshmem_peer_config {
	/**
	 * Vectors this peer uses, 1..IVSHMEM_MAX_VECTORS; more from the
	 * server are closed, fewer leave the rest unconnected. 0: as many
	 * as the server has (at most IVSHMEM_MAX_VECTORS).
	 *
	 * The protocol does not announce the server's vector count; the
	 * greeting ends with the own ID's vectors. The peer is ready as
	 * soon as it holds as many own vectors as each peer already
	 * connected has, or else this many; or when the own vectors are
	 * followed by another message. When fewer arrive (the server has
	 * fewer vectors), it is ready once the stream has been quiet for
	 * 250 ms. With 0 and no other peer connected nothing tells the
	 * count: it is ready after 50 ms of quiet, and an own vector that
	 * arrives later still is added (ivshmem_peer_get_vectors() grows).
	 */
	unsigned vectors;
	/** Required shared-memory size in bytes; 0 accepts any size. */
	uint64_t shm_size;
	/** enum ivshmem_peer_flags, or-ed. */
	unsigned flags;
};

/**
 * Create a peer (not connected yet).
 *
 * The peer has one fd for the caller's event loop (ivshmem_peer_get_fd())
 * that is readable whenever ivshmem_peer_dispatch() has work: a server
 * message, a doorbell on an own vector, or the end of a quiet period that
 * completes the greeting. It stays the same for the
 * peer's whole life, across reconnects.
 *
 * Threading: one thread at a time calls the functions of a peer. Two
 * things may be used from other threads without locking, while they are
 * valid: the shared memory (until free, or a reconnect to shared memory of
 * another size), and the own vector fds from ivshmem_peer_get_vector_fd()
 * (read them to take doorbells; a doorbell read that way is not reported
 * to ops->doorbell). The peer's own thread learns of their end first, in
 * ops->disconnected or before it calls connect or free.
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
 * ivshmem_peer_wait_ready()).
 *
 * A peer that was connected before (state DISCONNECTED) starts afresh:
 * the peer table and the own eventfds of the last connection are closed.
 * The mapping is kept until the new shared memory arrives; when that is of
 * the same size it is mapped at the same address, so pointers into it
 * stay valid.
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
 * connected to a server (inherited, or one end of a socketpair). The peer
 * takes ownership of @p fd, also on failure, and makes it non-blocking and
 * close-on-exec.
 *
 * @retval 0 success
 * @retval -EINVAL NULL peer, negative fd (not closed)
 * @retval -EISCONN the peer is connected
 * @retval other negative errno from fcntl or epoll_ctl
 */
IVSHMEM_EXPORT int ivshmem_peer_connect_fd(struct ivshmem_peer *peer, int fd);

/**
 * Close the connection. Like a server going away, the mapping and the
 * eventfds received stay usable until the next connect or free. Does not
 * call ops->disconnected.
 *
 * @retval 0 success
 * @retval -EINVAL NULL peer
 * @retval -ENOTCONN not connected
 */
IVSHMEM_EXPORT int ivshmem_peer_disconnect(struct ivshmem_peer *peer);

/**
 * The fd to watch for readability (POLLIN / EPOLLIN) in the caller's loop;
 * when it is readable, call ivshmem_peer_dispatch(). Owned by the peer.
 * @retval >=0 the fd
 * @retval -EINVAL NULL peer
 */
IVSHMEM_EXPORT int ivshmem_peer_get_fd(const struct ivshmem_peer *peer);

/**
 * Do the work that is ready, without blocking: receive server messages
 * (up to 4096 per call; the fd stays readable while more wait) and read
 * the own eventfds, calling the callbacks.
 *
 * @retval 0 success (also when not connected)
 * @retval -EINVAL NULL peer
 * @retval -EBUSY called from one of the peer's callbacks
 * @retval <0 the connection ended during this call with this error (the
 *         list above); ops->disconnected was called with the same value
 */
IVSHMEM_EXPORT int ivshmem_peer_dispatch(struct ivshmem_peer *peer);

/**
 * Dispatch, blocking, until the peer is READY or @p timeout_ms
 * milliseconds have passed (< 0: no limit). Callbacks run as usual.
 *
 * @retval 0 the peer is ready
 * @retval -EINVAL NULL peer
 * @retval -ENOTCONN not connected (IDLE, or DISCONNECTED before this call)
 * @retval -EBUSY called from one of the peer's callbacks (and not ready)
 * @retval -ETIMEDOUT not ready in time; the connection stays open
 * @retval <0 the connection ended while waiting (the list above)
 */
IVSHMEM_EXPORT int ivshmem_peer_wait_ready(struct ivshmem_peer *peer,
					   int timeout_ms);

/** The peer's state (enum ivshmem_peer_state), or -EINVAL for NULL. */
IVSHMEM_EXPORT int ivshmem_peer_get_state(const struct ivshmem_peer *peer);

/**
 * The own peer ID.
 * @retval 0..65535 the ID (also after a disconnect)
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
 * The vector count of peer @p id (the own ID included).
 * @retval >=0 its vector count
 * @retval -EINVAL NULL peer, id outside 0..65535
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
 * @retval -ENOENT no such peer (or id outside 0..65535)
 * @retval -ERANGE the peer has no vector @p vector
 * @retval -EAGAIN the eventfd counter is full (never in practice; checked
 *         without blocking also for an eventfd that is not non-blocking)
 * @retval other negative errno from write
 */
IVSHMEM_EXPORT int ivshmem_peer_ring(struct ivshmem_peer *peer, int id,
				     unsigned vector);

/**
 * The own eventfd of vector @p vector, for callers who poll it directly on
 * a hot path. Non-blocking; owned by the peer; valid until the next
 * connect or free, or until ops->disconnected returns after a protocol
 * violation. Reading it takes the doorbell (ops->doorbell is then not
 * called for it).
 * @retval >=0 the fd
 * @retval -EINVAL NULL peer
 * @retval -ENODATA no own vectors yet
 * @retval -ERANGE no own vector @p vector
 */
IVSHMEM_EXPORT int ivshmem_peer_get_vector_fd(const struct ivshmem_peer *peer,
					  unsigned vector);

/**
 * A sentence describing @p error, a negative errno value that ended a
 * peer's connection (ops->disconnected, or the return value of
 * ivshmem_peer_dispatch() or ivshmem_peer_wait_ready()), with the protocol
 * meaning of the values listed above, e.g. "The server sent the shared
 * memory a second time"; other values get strerror's text. For the other
 * functions' errors, use strerror(). Never NULL; thread-safe.
 */
IVSHMEM_EXPORT const char *ivshmem_strerror(int error);

#ifdef __cplusplus
}
#endif

#endif /* LIBIVSHMEM_IVSHMEM_H */
