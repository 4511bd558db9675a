/* SPDX-License-Identifier: MIT */
/**
 * @file ivchan.h
 * The channel core: message rings in an ivshmem region, in the format of
 * ivshmem-channel(7). Freestanding C99 (the compiler's stdint.h and
 * stddef.h only, no C library, no allocation), so that Cortex-M firmware
 * compiles ivchan.c as it is and libivshmem links the same file; its host
 * API (ivshmem_channel_* in ivshmem.h, libivshmem(3)) is built on this.
 *
 * One struct ivchan is one attached end of one channel. It is not
 * thread-safe: one thread sends and receives on it (or lock around it).
 * The other end is another process, VM or CPU; nothing it writes is
 * trusted. Every index and length read from the shared memory is read
 * once and checked; a value that breaks ivshmem-channel(7) puts the end
 * in a broken state: every later call returns IVCHAN_EBROKEN and
 * ivchan_broken() says which check failed.
 *
 * Errors are negative values equal to Linux's errno numbers (the core
 * cannot include errno.h): IVCHAN_EAGAIN is -EAGAIN, and so on.
 *
 * Doorbells are the caller's: ivchan_commit(), ivchan_send(),
 * ivchan_flush(), ivchan_release(), ivchan_recv() and ivchan_flush_rx()
 * return 1 when the other end asked to be woken (ring it: ivchan_get_end()
 * says on which peer ID and vector) and 0 when it did not. Both
 * directions batch that check: commits with IVCHAN_COMMIT_MORE until
 * ivchan_flush(), releases until a quarter of the ring is free or
 * ivchan_flush_rx(). Before sleeping on its own doorbell, a caller calls
 * ivchan_flush_rx(), then ivchan_sleep_rx() (or ivchan_sleep_tx() when
 * the ring is full) and sleeps only when that returns 0.
 */
#ifndef LIBIVSHMEM_IVCHAN_H
#define LIBIVSHMEM_IVCHAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the format (ivshmem-channel(7)) ------------------------------------ */

/** The header's first word: the bytes "IVCL". */
#define IVCHAN_MAGIC 0x4C435649u
/** The format version this core reads and writes. */
#define IVCHAN_VERSION 1u
/** Feature bits this core knows: none yet. A layout with another bit set
 * is refused (IVCHAN_EPROTONOSUPPORT). */
#define IVCHAN_FEATURES 0u
/** Bytes of the header and of one channel table entry. */
#define IVCHAN_HEADER_SIZE 64u
#define IVCHAN_ENTRY_SIZE 64u
/** A channel name: 1..IVCHAN_NAME_MAX bytes of [A-Za-z0-9._-]. */
#define IVCHAN_NAME_MAX 31u
/** Channels in one layout: 1..IVCHAN_MAX_CHANNELS. */
#define IVCHAN_MAX_CHANNELS 64u
/** Cache-line separation: a power of two in this range; 64 by default. */
#define IVCHAN_MIN_LINE 32u
#define IVCHAN_MAX_LINE 4096u
#define IVCHAN_DEFAULT_LINE 64u
/** Ring sizes: powers of two, at least the line and IVCHAN_MIN_RING. */
#define IVCHAN_MIN_RING 64u
#define IVCHAN_MAX_RING (1u << 30)
/** Each record: an 8-byte header (length, then a reserved word), the
 * payload, padding to 8 bytes. */
#define IVCHAN_RECORD_HEADER 8u
/** The length word of a padding record (skip to the ring's end). */
#define IVCHAN_PAD 0xFFFFFFFFu
/** The control lines of one channel before its ring data: five per end
 * (identity, producer, consumer, wait, counters), end 0's first. */
#define IVCHAN_CONTROL_LINES 10u
#define IVCHAN_LINE_ID 0u
#define IVCHAN_LINE_PROD 1u
#define IVCHAN_LINE_CONS 2u
#define IVCHAN_LINE_WAIT 3u
#define IVCHAN_LINE_COUNT 4u
#define IVCHAN_LINES_PER_END 5u
/** The largest payload a ring of @p size bytes can carry: a record may
 * take at most half the ring, so that it always fits once the ring is
 * empty. */
#define IVCHAN_MAX_MSG(size) ((size) / 2u - IVCHAN_RECORD_HEADER)

/* Word indices in the header. */
#define IVCHAN_HDR_MAGIC 0
#define IVCHAN_HDR_VERSION 1
#define IVCHAN_HDR_FEATURES 2
#define IVCHAN_HDR_SIZE 3
#define IVCHAN_HDR_LINE 4
#define IVCHAN_HDR_COUNT 5
#define IVCHAN_HDR_NONCE 6
/* Word indices in a table entry (after the 32 name bytes). */
#define IVCHAN_ENT_OFFSET 8
#define IVCHAN_ENT_RING0 9
#define IVCHAN_ENT_RING1 10
#define IVCHAN_ENT_MAX_MSG 11
/* Word indices in an end's lines. */
#define IVCHAN_ID_STATE 0
#define IVCHAN_ID_EPOCH 1
#define IVCHAN_ID_PEER 2
#define IVCHAN_ID_VECTOR 3
#define IVCHAN_ID_DISCARDED 4
#define IVCHAN_PROD_HEAD 0
#define IVCHAN_CONS_TAIL 0
#define IVCHAN_WAIT_EVENT 0
#define IVCHAN_WAIT_SPACE 1
#define IVCHAN_COUNT_SENT 0
#define IVCHAN_COUNT_RECEIVED 1
#define IVCHAN_COUNT_RUNG 2
#define IVCHAN_COUNT_SUPPRESSED 3
#define IVCHAN_COUNT_SLEEPS 4

/** An end's state word. */
#define IVCHAN_DETACHED 0u
#define IVCHAN_ATTACHED 1u
/** The peer word of an end that never attached (or has no ivshmem ID). */
#define IVCHAN_NO_PEER 0xFFFFFFFFu

/* ---- errors -------------------------------------------------------------- */

#define IVCHAN_ENOENT (-2)              /**< no channel of that name */
#define IVCHAN_EAGAIN (-11)             /**< empty, or full */
#define IVCHAN_EBUSY (-16)              /**< a reserve or peek is open */
#define IVCHAN_EEXIST (-17)             /**< two channels of one name */
#define IVCHAN_EINVAL (-22)             /**< a bad argument */
#define IVCHAN_ENOSPC (-28)             /**< the layout does not fit */
#define IVCHAN_ENAMETOOLONG (-36)       /**< a name over IVCHAN_NAME_MAX */
#define IVCHAN_EBROKEN (-131)           /**< the end is broken (ENOTRECOVERABLE) */
#define IVCHAN_EBADMSG (-74)            /**< not a valid layout */
#define IVCHAN_EMSGSIZE (-90)           /**< over the maximum, or the
					     buffer is too small */
#define IVCHAN_EPROTONOSUPPORT (-93)    /**< another version or features */
#define IVCHAN_ENOTCONN (-107)          /**< the end is not attached */
#define IVCHAN_ESTALE (-116)            /**< the layout was written anew */
#define IVCHAN_EUCLEAN (-117)           /**< the channel's indices are
					     inconsistent */

/** Which check broke an end (ivchan_broken()). */
enum ivchan_broken_reason {
	IVCHAN_OK = 0,
	/** The other end's head is not within a ring of its tail, went
	 * back, or is not a multiple of 8. */
	IVCHAN_BROKEN_HEAD = 1,
	/** The other end's tail is not within a ring of the head, went back,
	 * or is not a multiple of 8. */
	IVCHAN_BROKEN_TAIL = 2,
	/** A record's length is over the maximum, or the record crosses the
	 * ring's end or the head. */
	IVCHAN_BROKEN_LENGTH = 3,
	/** A padding record at the ring's start, or past the head. */
	IVCHAN_BROKEN_PAD = 4,
};

/* ---- layouts ------------------------------------------------------------- */

/** One channel to write into a layout. */
struct ivchan_spec {
	/** 1..IVCHAN_NAME_MAX bytes of [A-Za-z0-9._-], NUL-terminated. */
	const char *name;
	/** Ring bytes per direction: ring_size[0] carries end 0's messages
	 * to end 1, ring_size[1] the other way. Powers of two,
	 * IVCHAN_MIN_RING..IVCHAN_MAX_RING, at least the line. */
	uint32_t ring_size[2];
	/** The largest payload, 0..IVCHAN_MAX_MSG() of the smaller ring;
	 * 0 takes that largest value. */
	uint32_t max_msg;
};

/** A layout's header, as checked by ivchan_layout_read(). */
struct ivchan_layout {
	uint32_t size;          /**< bytes of the layout */
	uint32_t line;          /**< the cache-line separation */
	uint32_t count;         /**< channels */
	uint32_t nonce;         /**< changes each time the layout is written */
	uint32_t features;
};

/** One channel's table entry, as checked by ivchan_layout_entry(). */
struct ivchan_info {
	char name[IVCHAN_NAME_MAX + 1];
	uint32_t index;         /**< its place in the table */
	uint32_t offset;        /**< its control lines, from the layout */
	uint32_t ring_size[2];
	uint32_t max_msg;
};

/**
 * The bytes a layout of these channels needs (header, table, and each
 * channel's control lines and rings).
 * @retval 0 success, *size_out set
 * @retval IVCHAN_EINVAL a bad line, count, ring size or maximum
 * @retval IVCHAN_ENAMETOOLONG / IVCHAN_EINVAL a bad name
 * @retval IVCHAN_EEXIST two channels share a name
 * @retval IVCHAN_ENOSPC the total does not fit in 32 bits
 */
int ivchan_layout_size(const struct ivchan_spec *specs, unsigned count,
		       uint32_t line, uint32_t *size_out);

/**
 * Write a layout of @p count channels at @p base (@p size bytes, aligned
 * to 8): the header, the table, every end detached and every ring empty.
 * Ring data is not cleared. Nobody may be attached meanwhile; the magic
 * is written last. @p nonce should differ from the previous layout's
 * (a random or time-based value): attached ends see that it changed.
 * @retval 0 success
 * @retval IVCHAN_ENOSPC @p size is smaller than ivchan_layout_size()
 * @retval other errors as ivchan_layout_size()
 */
int ivchan_layout_init(void *base, uint32_t size,
		       const struct ivchan_spec *specs, unsigned count,
		       uint32_t line, uint32_t nonce);

/**
 * Read and check the header of the layout at @p base, which may hold up
 * to @p avail bytes (the rest of the region).
 * @retval 0 success, *out set
 * @retval IVCHAN_EBADMSG no magic, or a size, line or count out of range
 *         or beyond @p avail
 * @retval IVCHAN_EPROTONOSUPPORT another version, or unknown features
 */
int ivchan_layout_read(const void *base, uint32_t avail,
		       struct ivchan_layout *out);

/**
 * Read and check entry @p index of a layout read by ivchan_layout_read().
 * @retval 0 success, *out set
 * @retval IVCHAN_EINVAL index out of range
 * @retval IVCHAN_EBADMSG the entry breaks ivshmem-channel(7): a bad
 *         name, offset, ring size or maximum
 */
int ivchan_layout_entry(const void *base, const struct ivchan_layout *lay,
			unsigned index, struct ivchan_info *out);

/**
 * Find the channel named @p name.
 * @retval 0 success, *out set
 * @retval IVCHAN_ENOENT no valid entry of that name
 */
int ivchan_layout_find(const void *base, const struct ivchan_layout *lay,
		       const char *name, struct ivchan_info *out);

/* ---- ends ---------------------------------------------------------------- */

/** Attach flags. */
enum ivchan_attach_flags {
	/** Discard what waits for this end (counted in *lost and in the
	 * end's discarded word), instead of receiving it. */
	IVCHAN_ATTACH_RESET = 1u << 0,
};

/** Commit flags. */
enum ivchan_commit_flags {
	/** More follow: do not check whether to ring yet; ivchan_flush()
	 * (or a later commit without this flag) does. */
	IVCHAN_COMMIT_MORE = 1u << 0,
};

/** What an end publishes, as read (once) by ivchan_get_end(). */
struct ivchan_end {
	uint32_t state;         /**< IVCHAN_ATTACHED or IVCHAN_DETACHED */
	uint32_t epoch;         /**< changes on each attach; 0: never */
	uint32_t peer;          /**< its ivshmem peer ID, IVCHAN_NO_PEER */
	uint32_t vector;        /**< the vector to ring it on */
	uint32_t discarded;     /**< messages it discarded on attach */
	uint32_t sent, received, rung, suppressed, sleeps;
	uint32_t head;          /**< the head of the ring it writes */
	uint32_t tail;          /**< the tail of the ring it reads */
	uint32_t event;         /**< its event index (ring me past this) */
	uint32_t space_event;   /**< its space event index */
	uint32_t peer_head;     /**< the head of the ring it reads */
};

/** Counters of one attachment. */
struct ivchan_counters {
	uint64_t sent;          /**< messages committed */
	uint64_t received;      /**< messages released */
	uint64_t bytes_sent;    /**< payload bytes committed */
	uint64_t bytes_received;
	uint64_t rung;          /**< doorbells the other end asked for */
	uint64_t suppressed;    /**< commits and releases that needed none */
	uint64_t sleeps;        /**< doorbells asked for: ivchan_sleep_rx/tx()
				     calls that published an event index */
};

/** One attached end. Fields are private: use the functions. */
struct ivchan {
	volatile uint32_t *me;          /* own identity line */
	volatile uint32_t *other;       /* the other end's identity line */
	volatile uint32_t *me_wait;     /* own wait line */
	volatile uint32_t *other_wait;  /* the other end's wait line */
	volatile uint32_t *me_count;    /* own counters line */
	volatile uint32_t *other_count;
	volatile uint32_t *tx_prod;     /* own producer line */
	volatile uint32_t *tx_cons;     /* the other end's consumer line */
	volatile uint32_t *rx_prod;     /* the other end's producer line */
	volatile uint32_t *rx_cons;     /* own consumer line */
	volatile uint8_t *tx_data;
	volatile uint8_t *rx_data;
	const volatile uint32_t *header;
	uint32_t tx_size, rx_size;
	uint32_t max_msg;
	uint32_t tx_head;               /* own head */
	uint32_t tx_tail;               /* the other's tail, last read */
	uint32_t tx_checked;            /* head at the last ring check */
	uint32_t tx_open;               /* reserved length + 1, 0: none */
	uint32_t tx_pad;                /* padding before the reservation */
	uint32_t rx_tail;               /* own tail */
	uint32_t rx_head;               /* the other's head, last read */
	uint32_t rx_open;               /* peeked record bytes, 0: none */
	uint32_t rx_len;                /* peeked length */
	uint32_t rx_released;           /* tail at the last space check */
	uint32_t nonce;
	uint32_t end;
	uint32_t epoch;
	int error;                      /* 0, IVCHAN_EBROKEN, IVCHAN_ENOTCONN */
	enum ivchan_broken_reason broken;
	struct ivchan_counters n;
};

/**
 * Attach to end @p end (0 or 1) of a channel found by
 * ivchan_layout_find() or ivchan_layout_entry(): record @p peer (the own
 * ivshmem peer ID) and @p vector (the own vector the other end rings), a
 * new epoch, and mark the end attached. What waits in the rings stays
 * and is received (unless IVCHAN_ATTACH_RESET); the own head continues
 * where the end's previous owner left it.
 *
 * @param lost if not NULL, receives the messages IVCHAN_ATTACH_RESET
 *        discarded
 * @retval 0 success
 * @retval IVCHAN_EINVAL a NULL pointer, end above 1, unknown flags
 * @retval IVCHAN_EUCLEAN the channel's indices are inconsistent (a head
 *         and tail more than a ring apart): nothing was written; write
 *         the layout anew
 */
int ivchan_attach(struct ivchan *ch, void *base,
		  const struct ivchan_layout *lay,
		  const struct ivchan_info *info, unsigned end,
		  uint32_t peer, uint32_t vector, unsigned flags,
		  uint32_t *lost);

/** Mark the end detached. The rings keep their messages. */
void ivchan_detach(struct ivchan *ch);

/**
 * Reserve room for a message of @p len bytes; *buf points at it, in the
 * ring, 8-byte aligned. ivchan_commit() sends it.
 * @retval 0 success
 * @retval IVCHAN_EAGAIN no room yet (see ivchan_sleep_tx())
 * @retval IVCHAN_EMSGSIZE len is above the channel's maximum
 * @retval IVCHAN_EBUSY a reservation is open
 * @retval IVCHAN_EBROKEN, IVCHAN_ENOTCONN broken, detached
 */
int ivchan_reserve(struct ivchan *ch, uint32_t len, void **buf);

/**
 * Send the reserved message with its first @p len bytes (at most what was
 * reserved).
 * @retval 1 ring the other end
 * @retval 0 no doorbell needed (or IVCHAN_COMMIT_MORE)
 * @retval IVCHAN_EINVAL nothing reserved, or len above the reservation
 */
int ivchan_commit(struct ivchan *ch, uint32_t len, unsigned flags);

/** After commits with IVCHAN_COMMIT_MORE: 1 to ring the other end, 0 not. */
int ivchan_flush(struct ivchan *ch);

/** Copy @p len bytes out as one message: reserve, copy, commit. Returns
 * as ivchan_commit(), or an error of ivchan_reserve(). */
int ivchan_send(struct ivchan *ch, const void *buf, uint32_t len);

/**
 * The next message, in place: *buf and *len (8-byte aligned, valid until
 * ivchan_release()). A hostile producer may change the bytes meanwhile:
 * copy what must not change before checking it.
 * @retval 0 success
 * @retval IVCHAN_EAGAIN nothing waits (see ivchan_sleep_rx())
 * @retval IVCHAN_EBUSY a peek is open
 * @retval IVCHAN_EBROKEN, IVCHAN_ENOTCONN broken (this call may break it),
 *         detached
 */
int ivchan_peek(struct ivchan *ch, const void **buf, uint32_t *len);

/**
 * Consume the peeked message. The producer, if it waits for room, is
 * told once a quarter of the ring has been released since it was last
 * looked at, or at ivchan_flush_rx(): call that when the ring is empty
 * (ivchan_peek() returned IVCHAN_EAGAIN), before sleeping, and before
 * leaving the channel alone for long.
 * @retval 1 ring the other end (it waits for room)
 * @retval 0 no doorbell needed (yet)
 * @retval IVCHAN_EINVAL nothing peeked
 */
int ivchan_release(struct ivchan *ch);

/** Look whether the producer waits for the room released so far: 1 to
 * ring it, 0 not. */
int ivchan_flush_rx(struct ivchan *ch);

/**
 * Copy the next message into @p buf (@p cap bytes) and consume it; *len is
 * its length.
 * @retval 1, 0 as ivchan_release()
 * @retval IVCHAN_EMSGSIZE it is longer than cap (*len says how long); it
 *         stays in the ring
 * @retval other errors of ivchan_peek()
 */
int ivchan_recv(struct ivchan *ch, void *buf, uint32_t cap, uint32_t *len);

/**
 * About to sleep until a message comes: ask the other end for a doorbell
 * at its next message, then look again.
 * @retval 0 still empty: sleep on the own doorbell
 * @retval 1 a message is there: do not sleep
 * @retval IVCHAN_EBROKEN, IVCHAN_ENOTCONN broken, detached
 */
int ivchan_sleep_rx(struct ivchan *ch);

/**
 * About to sleep until there is room for a message of @p len bytes: ask
 * the other end for a doorbell when it consumes, then look again.
 * @retval 0 still no room: sleep on the own doorbell
 * @retval 1 there is room
 * @retval IVCHAN_EMSGSIZE, IVCHAN_EBROKEN, IVCHAN_ENOTCONN
 */
int ivchan_sleep_tx(struct ivchan *ch, uint32_t len);

/** Without asking for a doorbell: 1 when a message waits (or, for tx,
 * when a message of @p len bytes fits), 0 when not, or an error. For
 * polling a little before sleeping. */
int ivchan_poll_rx(struct ivchan *ch);
int ivchan_poll_tx(struct ivchan *ch, uint32_t len);

/** Read what the other end (@p which 1) or this end (0) publishes. */
void ivchan_get_end(const struct ivchan *ch, unsigned which,
		    struct ivchan_end *out);

/** Read what end @p end of a channel publishes, without attaching (each
 * word once; a live view). */
void ivchan_read_end(const void *base, const struct ivchan_layout *lay,
		     const struct ivchan_info *info, unsigned end,
		     struct ivchan_end *out);

/** Drop the open peek: the message stays, for a later peek. */
void ivchan_unpeek(struct ivchan *ch);

/** Bytes waiting to be received, and waiting in the other direction to be
 * consumed by the other end (from the last values read). */
uint32_t ivchan_rx_fill(const struct ivchan *ch);
uint32_t ivchan_tx_fill(const struct ivchan *ch);

/** 0, or IVCHAN_EBROKEN (broken) or IVCHAN_ENOTCONN (detached). */
int ivchan_error(const struct ivchan *ch);

/** Why the end is broken: an enum ivchan_broken_reason. */
enum ivchan_broken_reason ivchan_broken(const struct ivchan *ch);

/** A short phrase for a broken reason, e.g. "the head went out of the
 * ring". Never NULL. */
const char *ivchan_broken_str(enum ivchan_broken_reason reason);

/** 0 while the layout is the one attached to, IVCHAN_ESTALE when it was
 * written anew (the nonce or magic changed). */
int ivchan_check_layout(const struct ivchan *ch);

/** The counters of this attachment. */
const struct ivchan_counters *ivchan_counters(const struct ivchan *ch);

#ifdef IVCHAN_FULL_BARRIER_HOOK
/** Built with IVCHAN_FULL_BARRIER_HOOK: the platform's full barrier,
 * which the core calls where ivshmem-channel(7) puts one (a store that
 * must be seen before a later load). */
void ivchan_full_barrier(void);
#endif

/**
 * The notification rule of ivshmem-channel(7): with the other side's
 * event index @p event, does moving an index from @p old to @p new cross
 * it (old <= event < new, modulo 2^32)?
 */
static inline int ivchan_need_event(uint32_t event, uint32_t new_idx,
				    uint32_t old_idx)
{
	return (uint32_t)(new_idx - event - 1u) < (uint32_t)(new_idx - old_idx);
}

#ifdef __cplusplus
}
#endif

#endif /* LIBIVSHMEM_IVCHAN_H */
