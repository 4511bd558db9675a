/*
 * ivshmem-flat: the register and doorbell core of the ivshmem-flat device.
 *
 * An emulator links this core, gives it callbacks (ring a peer, drive an
 * IRQ line, optionally trace) and calls it on MMIO accesses to the
 * device's register block and on incoming doorbell events. The core
 * depends on the C library's headers stdbool.h, stddef.h and stdint.h
 * only: it compiles with -ffreestanding, allocates nothing and calls no
 * library function, so it also builds for the firmware side of a board
 * or for a bare-metal test rig.
 *
 * Registers (32-bit, little-endian, in a block of IVSHMEM_FLAT_MMIO_SIZE
 * bytes; an emulator converts the guest's byte order before calling):
 *
 *   0x00 INTRMASK    latched mode: bit v enables vector v's interrupt
 *   0x04 INTRSTATUS  latched mode: bit v is set by an event on vector v;
 *                    a read returns the bits and clears them; a write
 *                    sets the register to the value written
 *   0x08 IVPOSITION  own peer ID (0..65535), 0xFFFFFFFF before one is set
 *   0x0C DOORBELL    write (peer << 16) | vector to ring that vector of
 *                    that peer; reads 0
 *
 * Default mode is QEMU's ivshmem-flat: INTRMASK and INTRSTATUS read 0 and
 * ignore writes, and every incoming event pulses IRQ line 0 (high, then
 * low). Latched mode (IVSHMEM_FLAT_LATCHED) latches vectors 0..31 in
 * INTRSTATUS and drives the IRQ line as a level, high while
 * (INTRSTATUS & INTRMASK) != 0; with IVSHMEM_FLAT_IRQ_PER_VECTOR there
 * are 32 lines, line v high while bit v of both is set.
 *
 * Every access is defined: an aligned 32-bit access to 0x00..0x0C does
 * the above; any other width or alignment, and offsets 0x10 and above,
 * read 0 and ignore writes (counted in the stats, seen by the trace hook).
 * QEMU differs here: its memory core widens a narrower access to the
 * 32-bit register, so a 16-bit read of IVPOSITION gives the ID there and
 * 0 here (a valid ID): firmware must use 32-bit accesses.
 *
 * Latched mode acknowledges by reading INTRSTATUS, which returns and
 * clears every bit (PCI ivshmem's revision 0 semantics); a write sets the
 * register to the value written, it does not clear the bits that are 1.
 * With one line per vector, the handler that reads INTRSTATUS takes every
 * pending vector, so it must handle every bit it read.
 *
 * Threading: none inside. The caller serialises all calls on one device
 * (the emulator's device lock or its single thread); callbacks run
 * synchronously inside the call that caused them.
 *
 * Arguments: the functions that return an int check their pointers; the
 * others (the MMIO and event paths among them) take a device initialised
 * by ivshmem_flat_init() and do not check it.
 */
#ifndef IVSHMEM_FLAT_H
#define IVSHMEM_FLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Size of the register block (the rest after 0x10 is reserved). */
#define IVSHMEM_FLAT_MMIO_SIZE 0x100u

/** Register offsets. */
#define IVSHMEM_FLAT_INTRMASK 0x00u
#define IVSHMEM_FLAT_INTRSTATUS 0x04u
#define IVSHMEM_FLAT_IVPOSITION 0x08u
#define IVSHMEM_FLAT_DOORBELL 0x0Cu

/** The addresses QEMU's ivshmem-flat documentation and tests use on its
 * Cortex-M boards (the device itself has none), and its default
 * shmem-size. */
#define IVSHMEM_FLAT_DEFAULT_MMIO_BASE 0x400FF000u
#define IVSHMEM_FLAT_DEFAULT_SHM_BASE 0x40100000u
#define IVSHMEM_FLAT_DEFAULT_SHM_SIZE (4u * 1024u * 1024u)

/** IVPOSITION before the device has a peer ID. */
#define IVSHMEM_FLAT_NO_ID 0xFFFFFFFFu

/** Vectors that latched mode can latch (one INTRSTATUS bit each). */
#define IVSHMEM_FLAT_LATCHED_VECTORS 32u

/** Largest number of IRQ lines a device drives. */
#define IVSHMEM_FLAT_MAX_IRQ_LINES 32u

/** Version of struct ivshmem_flat_state written by this core. */
#define IVSHMEM_FLAT_STATE_VERSION 1u

/** Device flags, or-ed, given to ivshmem_flat_init(). */
enum ivshmem_flat_flags {
	/** Latch vectors 0..31 in INTRSTATUS, gate them with INTRMASK and
	 * drive a level IRQ (instead of QEMU's pulse for any vector). */
	IVSHMEM_FLAT_LATCHED = 1u << 0,
	/** With IVSHMEM_FLAT_LATCHED: one IRQ line per vector (0..31)
	 * instead of one line for all. */
	IVSHMEM_FLAT_IRQ_PER_VECTOR = 1u << 1,
};

/**
 * Error values returned by the core. The core does not use errno.h, which
 * freestanding builds lack; the values lie below -1000, outside the errno
 * range, so that a trace result never confuses them with the negative
 * errno values notify may return.
 */
enum ivshmem_flat_error {
	/** A NULL pointer, a required callback missing, unknown or
	 * conflicting flags, or a peer ID above 65535. */
	IVSHMEM_FLAT_EINVAL = -1001,
	/** A state struct of a version or size this core does not know. */
	IVSHMEM_FLAT_EVERSION = -1002,
	/** A state struct from a device in another mode, or with register
	 * bits that mode cannot hold. */
	IVSHMEM_FLAT_EMODE = -1003,
	/** Trace result of a doorbell written while the device has no ID
	 * or is not connected: nothing was rung. */
	IVSHMEM_FLAT_ENOTCONN = -1004,
};

/** What a trace record reports. */
enum ivshmem_flat_trace_kind {
	/** A register was read (offset, size, value returned). */
	IVSHMEM_FLAT_TRACE_READ = 0,
	/** A register was written (offset, size, value). */
	IVSHMEM_FLAT_TRACE_WRITE = 1,
	/** An access of another width or alignment, or to a reserved or
	 * out-of-block offset (offset, size, value, write): read 0 or
	 * ignored. */
	IVSHMEM_FLAT_TRACE_BAD_ACCESS = 2,
	/** A doorbell was rung (peer, vector). */
	IVSHMEM_FLAT_TRACE_DOORBELL = 3,
	/** A doorbell write rang nothing (peer, vector, result: the
	 * negative value notify returned, or IVSHMEM_FLAT_ENOTCONN). */
	IVSHMEM_FLAT_TRACE_DOORBELL_DROPPED = 4,
	/** An incoming event on own vector (vector). */
	IVSHMEM_FLAT_TRACE_EVENT = 5,
	/** An incoming event latched mode cannot latch, vector 32 or
	 * above (vector): no interrupt. */
	IVSHMEM_FLAT_TRACE_EVENT_DROPPED = 6,
	/** An IRQ line changed level (line, level). */
	IVSHMEM_FLAT_TRACE_IRQ = 7,
};

/** One trace record; fields not named for its kind are 0 (padding bytes
 * are unspecified: copy fields, not the raw bytes). */
struct ivshmem_flat_trace {
	enum ivshmem_flat_trace_kind kind;
	/** Offset into the register block, as given by the emulator. */
	uint64_t offset;
	/** Access width in bytes, as given by the emulator. */
	unsigned size;
	/** True for a write (BAD_ACCESS). */
	bool write;
	/** The value read or written (low 32 bits). */
	uint32_t value;
	/** Destination peer ID of a doorbell. */
	uint16_t peer;
	/** Vector of a doorbell or an event. */
	uint32_t vector;
	/** IRQ line and its new level. */
	unsigned line;
	bool level;
	/** Result of a dropped doorbell. */
	int result;
};

/**
 * Callbacks from the core to the emulator. They run inside the core call
 * that caused them. set_irq may access the device's registers (an
 * emulator that runs the guest's interrupt handler at once, inside the
 * call): the lines then follow what that access changed. notify and
 * trace must not call back into the same device.
 */
struct ivshmem_flat_ops {
	/**
	 * Required. Ring @p vector of peer @p peer: the guest wrote
	 * (peer << 16) | vector to DOORBELL while the device had an ID and
	 * was connected. Both values are the guest's, all 16 bits of each,
	 * unchecked: notify must check them against the peers it knows
	 * (the libivshmem glue does, through ivshmem_peer_ring()). Return
	 * 0 when rung, a negative value (e.g. -ENOENT, -ERANGE) when the
	 * peer or vector does not exist; the core then counts the doorbell
	 * as dropped.
	 */
	int (*notify)(void *opaque, uint16_t peer, uint16_t vector);
	/** Required. Drive IRQ @p line (0 unless IVSHMEM_FLAT_IRQ_PER_VECTOR)
	 * to @p level. Called only when the level changes, except in
	 * default mode where each event pulses line 0: true, then false. */
	void (*set_irq)(void *opaque, unsigned line, bool level);
	/** Optional. See every access and event, e.g. for a trace log. */
	void (*trace)(void *opaque, const struct ivshmem_flat_trace *record);
};

/** Counters since ivshmem_flat_init() (reset does not clear them). */
struct ivshmem_flat_stats {
	/** Register reads and writes (aligned 32-bit, 0x00..0x0C). */
	uint64_t reads;
	uint64_t writes;
	/** Accesses of other widths, alignments or offsets. */
	uint64_t bad_accesses;
	/** Doorbells notify accepted. */
	uint64_t doorbells;
	/** Doorbell writes that rang nothing: no ID, not connected, or
	 * notify refused (unknown peer, vector out of range). */
	uint64_t doorbells_dropped;
	/** Incoming events delivered: pulsed (default mode) or latched. */
	uint64_t events;
	/** Incoming events latched mode could not latch (vector >= 32). */
	uint64_t events_dropped;
};

/**
 * Guest-visible state, for snapshot and restore. Plain uint32_t fields in
 * host byte order, no padding; an emulator saves them as it saves its
 * other devices' fields. The peer ID and connected state are not part
 * of it: they come from the connection to the server, which a restored
 * machine makes anew.
 */
struct ivshmem_flat_state {
	/** IVSHMEM_FLAT_STATE_VERSION when written by this core. */
	uint32_t version;
	/** sizeof(struct ivshmem_flat_state) when written by this core. */
	uint32_t size;
	/** The device flags (enum ivshmem_flat_flags). */
	uint32_t flags;
	/** INTRMASK and INTRSTATUS (0 in default mode). */
	uint32_t intrmask;
	uint32_t intrstatus;
};

/**
 * The device. Its fields are private (the layout is public only so that
 * the caller can place it without allocation): use the functions below.
 */
struct ivshmem_flat {
	const struct ivshmem_flat_ops *priv_ops;
	void *priv_opaque;
	uint32_t priv_flags;
	uint32_t priv_id;
	bool priv_connected;
	uint32_t priv_intrmask;
	uint32_t priv_intrstatus;
	uint32_t priv_levels;
	struct ivshmem_flat_stats priv_stats;
};

/**
 * Initialise @p dev: no peer ID (IVPOSITION reads 0xFFFFFFFF), not
 * connected, INTRMASK and INTRSTATUS 0, every IRQ line low (set_irq is not
 * called), stats 0. @p ops must stay valid while the device is used.
 *
 * @retval 0 success
 * @retval IVSHMEM_FLAT_EINVAL NULL dev or ops, no notify or set_irq,
 *         unknown flags, IVSHMEM_FLAT_IRQ_PER_VECTOR without
 *         IVSHMEM_FLAT_LATCHED (dev is left untouched)
 */
int ivshmem_flat_init(struct ivshmem_flat *dev, uint32_t flags,
		      const struct ivshmem_flat_ops *ops, void *opaque);

/** The number of IRQ lines @p dev drives: 1, or 32 with
 * IVSHMEM_FLAT_IRQ_PER_VECTOR. */
unsigned ivshmem_flat_irq_lines(const struct ivshmem_flat *dev);

/**
 * A guest read of @p size bytes at @p offset into the register block.
 * Returns the value (0 for anything but an aligned 32-bit register read).
 * Reading INTRSTATUS in latched mode clears it.
 */
uint32_t ivshmem_flat_mmio_read(struct ivshmem_flat *dev, uint64_t offset,
				unsigned size);

/**
 * A guest write of @p size bytes of @p value at @p offset into the
 * register block. Only aligned 32-bit writes to INTRMASK, INTRSTATUS
 * (latched mode) and DOORBELL have an effect.
 */
void ivshmem_flat_mmio_write(struct ivshmem_flat *dev, uint64_t offset,
			     uint64_t value, unsigned size);

/**
 * An event arrived on own vector @p vector (another peer rang it; one
 * call per wakeup, however many rings an eventfd coalesced, as QEMU's
 * device does). Default mode pulses line 0; latched mode sets
 * INTRSTATUS bit @p vector (vectors 32 and above are dropped and
 * counted) and updates the IRQ level.
 */
void ivshmem_flat_deliver(struct ivshmem_flat *dev, uint32_t vector);

/**
 * Set the own peer ID shown in IVPOSITION: 0..65535, or IVSHMEM_FLAT_NO_ID
 * to show none.
 * @retval 0 success
 * @retval IVSHMEM_FLAT_EINVAL NULL dev, or an ID above 65535 that is not
 *         IVSHMEM_FLAT_NO_ID (the ID is unchanged)
 */
int ivshmem_flat_set_id(struct ivshmem_flat *dev, uint32_t id);

/** Whether the device is connected to a server; DOORBELL writes ring only
 * while it is connected and has an ID. */
void ivshmem_flat_set_connected(struct ivshmem_flat *dev, bool connected);

/**
 * Device reset (the machine's reset): INTRMASK and INTRSTATUS 0, every
 * IRQ line that is high goes low. The peer ID, the connected state and
 * the stats are kept: they belong to the connection, which a machine
 * reset does not end.
 */
void ivshmem_flat_reset(struct ivshmem_flat *dev);

/** Write the guest-visible state of @p dev into @p state (version
 * IVSHMEM_FLAT_STATE_VERSION). */
void ivshmem_flat_get_state(const struct ivshmem_flat *dev,
			    struct ivshmem_flat_state *state);

/**
 * Restore the guest-visible state. The IRQ levels follow from it: a line
 * whose level differs from the device's current one is set through
 * set_irq. On error nothing changes.
 *
 * @retval 0 success
 * @retval IVSHMEM_FLAT_EINVAL NULL dev or state
 * @retval IVSHMEM_FLAT_EVERSION unknown version, or a size that does not
 *         match it
 * @retval IVSHMEM_FLAT_EMODE the state's flags are not the device's, or
 *         a default-mode state with INTRMASK or INTRSTATUS not 0
 */
int ivshmem_flat_set_state(struct ivshmem_flat *dev,
			   const struct ivshmem_flat_state *state);

/** Copy the counters of @p dev into @p stats. */
void ivshmem_flat_get_stats(const struct ivshmem_flat *dev,
			    struct ivshmem_flat_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* IVSHMEM_FLAT_H */
