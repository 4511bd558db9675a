/* SPDX-License-Identifier: MIT */
/*
 * Hostile servers. A scripted server (a child process listening on a UNIX
 * socket in a temp dir) writes the bytes and fds of one case of the table
 * below: wrong versions, truncated and split messages, fds on the wrong
 * messages or several on one, fds of the wrong kind, sizes of zero and
 * sizes that change after mapping, IDs out of range, repeated and unknown
 * IDs, floods, and silence. Each case feeds two receivers:
 *
 *  - the library's peer side, in this process: the error it returns and
 *    the sentence of ivshmem_peer_get_error(), the fds it still holds
 *    (count_open_fds()), and then the same peer object joins a real
 *    ivshmem-server;
 *  - a real `ivshmem-ctl peer` process: its stdout lines, its one
 *    sentence on stderr and its exit status, and, when it stays, the fds
 *    of the stream it holds (/proc/PID/fd).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "tproc.h"

#define SHM_SIZE 65536
#define SEALED_SIZE 4096
#define ODD_SIZE 100
#define HUGE_SIZE (1ull << 40)
#define VAST_SIZE (1ull << 50)

/* ---- the script language ---------------------------------------------- */

/* What fd a step attaches. */
enum fdk {
	F_NONE = 0,
	F_SHM,          /* the case's shared memory: a memfd of SHM_SIZE */
	F_EFD,          /* an eventfd */
	F_PIPE,         /* the write end of a pipe */
	F_SOCK,         /* one end of a socketpair */
	F_DIR,          /* a directory */
	F_FILE,         /* a regular file of SHM_SIZE, read-write */
	F_ROFILE,       /* the same, opened read-only */
	F_SEALED,       /* a memfd of SEALED_SIZE sealed against writing */
	F_EMPTY,        /* a memfd of 0 bytes */
	F_NULL,         /* /dev/null */
	F_ODD,          /* a memfd of ODD_SIZE bytes, not a page multiple */
	F_HUGE,         /* a sparse memfd of HUGE_SIZE */
	F_VAST,         /* a sparse memfd of VAST_SIZE: no room to map it */
};

enum op {
	OP_END = 0,
	OP_MSG,         /* value, with fds fd[0..nfd-1] in one sendmsg */
	OP_PART,        /* the first len bytes of value, with the fds */
	OP_REST,        /* the last 8 - len bytes of value, with the fds */
	OP_SPLIT,       /* value a byte per write (fds on the first) */
	OP_CLOSE,       /* close the connection */
	OP_SYNC,        /* wait until the receiver is ready */
	OP_TRUNC,       /* ftruncate the shared memory to value bytes */
	OP_NOACCEPT,    /* first step: never accept the connection */
	OP_JOINS,       /* n peers from ID value up, one vector each */
	OP_LEAVES,      /* their leaves */
	OP_CHURN,       /* n times: ID value joins (one vector) and leaves */
	OP_EXTRA,       /* n more vectors for ID value */
	OP_ACK,         /* tell the test that the script got here */
	OP_PAIR,        /* value and value2 in one sendmsg, with the fds */
};

struct step {
	enum op op;
	int64_t value, value2;
	enum fdk fd[16];
	unsigned nfd;
	unsigned len;
	unsigned n;
};

#define MSG(v) { .op = OP_MSG, .value = (v) }
#define MSGF(v, k) { .op = OP_MSG, .value = (v), .fd = { k }, .nfd = 1 }
#define HEAD(id) MSG(0), MSG(id), MSGF(-1, F_SHM)
/* A greeting with no other peer: own ID id, one vector. */
#define GREET(id) HEAD(id), MSGF(id, F_EFD)
#define CLOSE { .op = OP_CLOSE }
#define SYNC { .op = OP_SYNC }

/* What the case must end in. */
enum end {
	END_ERROR,      /* the connection ends with err */
	END_READY,      /* the receiver is ready and stays */
	END_SILENT,     /* the greeting never completes: a timeout */
};

struct hcase {
	const char *name;
	struct step s[12];
	enum end end;
	int err;                /* END_ERROR: the error */
	const char *sentence;   /* its sentence; NULL: ivshmem_strerror(err) */
	bool after_ready;       /* END_ERROR: the receiver was ready first */
	unsigned vectors;       /* the receiver's configured vectors (0: 1) */
	/* Fds of the stream the receiver holds at the end (the library
	 * after the error; ivshmem-ctl while it stays). */
	unsigned held;
	/* END_READY: */
	int id;                 /* own ID */
	unsigned own;           /* own vectors (0: 1) */
	const char *peers;      /* the other peers at the end, "3,4" */
	const char *at_ready;   /* ... in the ready line (NULL: peers) */
	unsigned joins, leaves; /* reported after ready */
	uint64_t size;          /* shm size (0: SHM_SIZE) */
	const char *ctl_read;   /* ivshmem-ctl: "read 0 16" answers this */
	/* The receiver has only this many fds left once connected (the
	 * script starts with OP_ACK, SYNC to let the test set the limit). */
	unsigned nofile_free;
};

#define E(...) .end = END_ERROR, .err = (__VA_ARGS__)

static const struct hcase cases[] = {
	/* -- wrong versions -- */
	{ "version 1", { MSG(1), MSG(0) }, E(-EPROTONOSUPPORT) },
	{ "version -1", { MSG(-1), MSG(0) }, E(-EPROTONOSUPPORT) },
	{ "version INT64_MAX", { MSG(INT64_MAX) }, E(-EPROTONOSUPPORT) },
	{ "version INT64_MIN", { MSG(INT64_MIN) }, E(-EPROTONOSUPPORT) },
	{ "version with an fd", { MSGF(0, F_EFD) }, E(-EBADR) },

	/* -- truncated and split messages -- */
	{ "nothing, closed", { CLOSE }, E(-ECONNREFUSED) },
	{ "4 bytes, closed",
	  { { .op = OP_PART, .value = 0, .len = 4 }, CLOSE }, E(-EPROTO) },
	{ "1 byte, closed",
	  { { .op = OP_PART, .value = 0, .len = 1 }, CLOSE }, E(-EPROTO) },
	{ "7 bytes after the version, closed",
	  { MSG(0), { .op = OP_PART, .value = 3, .len = 7 }, CLOSE },
	  E(-EPROTO) },
	{ "half the shm message with its fd, closed",
	  { MSG(0), MSG(0), { .op = OP_PART, .value = -1, .len = 4,
			      .fd = { F_SHM }, .nfd = 1 }, CLOSE },
	  E(-EPROTO) },
	{ "closed after version and ID", { MSG(0), MSG(4), CLOSE },
	  E(-ECONNRESET) },
	{ "closed after the shm, before the own vectors",
	  { HEAD(4), CLOSE }, E(-ECONNRESET), .held = 1 },
	{ "half a message after ready, closed",
	  { GREET(0), SYNC, { .op = OP_PART, .value = 5, .len = 4 }, CLOSE },
	  E(-EPROTO), .after_ready = true },
	{ "closed after ready", { GREET(2), SYNC, CLOSE },
	  E(-ECONNRESET), .after_ready = true, .held = 2 },
	{ "every message a byte per write",
	  { { .op = OP_SPLIT, .value = 0 }, { .op = OP_SPLIT, .value = 6 },
	    { .op = OP_SPLIT, .value = -1, .fd = { F_SHM }, .nfd = 1 },
	    { .op = OP_SPLIT, .value = 6, .fd = { F_EFD }, .nfd = 1 } },
	  .end = END_READY, .id = 6, .held = 2 },
	{ "the shm fd on the last byte of its message",
	  { MSG(0), MSG(0), { .op = OP_PART, .value = -1, .len = 7 },
	    { .op = OP_REST, .value = -1, .len = 7, .fd = { F_SHM },
	      .nfd = 1 }, MSGF(0, F_EFD) },
	  .end = END_READY, .held = 2 },
	/* ivshmem-protocol(7) rule 3: one fd per message, each in its own
	 * sendmsg; a batch gives every fd to its first message. */
	{ "ID and shm in one write, the fd meant for the shm",
	  { MSG(0), { .op = OP_PAIR, .value = 0, .value2 = -1,
		      .fd = { F_SHM }, .nfd = 1 } }, E(-EBADR) },
	{ "shm and own vector in one write with both fds",
	  { MSG(0), MSG(0), { .op = OP_PAIR, .value = -1, .value2 = 0,
			      .fd = { F_SHM, F_EFD }, .nfd = 2 } },
	  E(-EBADMSG) },
	{ "two leaves in one write after ready",
	  { GREET(0), SYNC, MSGF(1, F_EFD), MSGF(2, F_EFD),
	    { .op = OP_PAIR, .value = 1, .value2 = 2 } },
	  .end = END_READY, .joins = 2, .leaves = 2, .held = 2 },
	{ "an fd on each half of one message",
	  { MSG(0), MSG(0),
	    { .op = OP_PART, .value = -1, .len = 4, .fd = { F_SHM },
	      .nfd = 1 },
	    { .op = OP_REST, .value = -1, .len = 4, .fd = { F_EFD },
	      .nfd = 1 } },
	  E(-EBADMSG) },

	/* -- fds on the wrong messages, several on one -- */
	{ "an fd on the ID", { MSG(0), MSGF(3, F_EFD) }, E(-EBADR) },
	{ "the shm message without its fd", { MSG(0), MSG(0), MSG(-1) },
	  E(-ENODATA) },
	{ "a vector in place of the shm", { MSG(0), MSG(0), MSGF(0, F_EFD) },
	  E(-ENODATA) },
	{ "a leave in place of the shm", { MSG(0), MSG(0), MSG(0) },
	  E(-ENODATA) },
	{ "the shm a second time", { GREET(0), SYNC, MSGF(-1, F_SHM) },
	  E(-EEXIST), .after_ready = true },
	{ "the shm a second time within the greeting",
	  { HEAD(0), MSGF(-1, F_SHM) }, E(-EEXIST) },
	{ "two fds on the shm message",
	  { MSG(0), MSG(0), { .op = OP_MSG, .value = -1,
			      .fd = { F_SHM, F_EFD }, .nfd = 2 } },
	  E(-EBADMSG) },
	{ "eight fds on a vector",
	  { HEAD(0), { .op = OP_MSG, .value = 0,
		       .fd = { F_EFD, F_EFD, F_EFD, F_EFD, F_EFD, F_EFD,
			       F_EFD, F_EFD }, .nfd = 8 } },
	  E(-EBADMSG) },
	{ "sixteen fds on a vector",
	  { HEAD(0), { .op = OP_MSG, .value = 0,
		       .fd = { F_EFD, F_EFD, F_EFD, F_EFD, F_EFD, F_EFD,
			       F_EFD, F_EFD, F_EFD, F_EFD, F_EFD, F_EFD,
			       F_EFD, F_EFD, F_EFD, F_EFD }, .nfd = 16 } },
	  E(-EMSGSIZE) },
	{ "two fds on a vector after ready",
	  { GREET(0), SYNC, { .op = OP_MSG, .value = 1,
			      .fd = { F_EFD, F_EFD }, .nfd = 2 } },
	  E(-EBADMSG), .after_ready = true },

	/* -- fds of the wrong kind for the shm -- */
	{ "shm: a pipe", { MSG(0), MSG(0), MSGF(-1, F_PIPE) }, E(-ENODEV) },
	{ "shm: a socket", { MSG(0), MSG(0), MSGF(-1, F_SOCK) }, E(-ENODEV) },
	{ "shm: a directory", { MSG(0), MSG(0), MSGF(-1, F_DIR) },
	  E(-ENODEV) },
	{ "shm: an eventfd", { MSG(0), MSG(0), MSGF(-1, F_EFD) },
	  E(-ENODEV) },
	{ "shm: /dev/null", { MSG(0), MSG(0), MSGF(-1, F_NULL) },
	  E(-ENODEV) },
	{ "shm: a read-only file", { MSG(0), MSG(0), MSGF(-1, F_ROFILE) },
	  E(-EACCES), .sentence = "Mapping the server's shared memory "
	  "(65536 bytes) read-write failed: Permission denied (the server "
	  "sent it opened read-only)" },
	{ "shm: a memfd sealed against writing",
	  { MSG(0), MSG(0), MSGF(-1, F_SEALED) }, E(-EPERM),
	  .sentence = "Mapping the server's shared memory (4096 bytes) "
	  "read-write failed: Operation not permitted (the server sent a "
	  "memfd sealed against writing)" },
	{ "shm: 0 bytes", { MSG(0), MSG(0), MSGF(-1, F_EMPTY) }, E(-EFBIG),
	  .sentence = "The server's shared memory is 0 bytes: empty, or too "
	  "large to map" },
	{ "shm: 100 bytes works", { MSG(0), MSG(0), MSGF(-1, F_ODD),
	  MSGF(0, F_EFD) }, .end = END_READY, .held = 2, .size = ODD_SIZE,
	  .ctl_read = "data offset=0 hex=00000000000000000000000000000000" },
	{ "shm: 1 TiB, sparse, works", { MSG(0), MSG(0), MSGF(-1, F_HUGE),
	  MSGF(0, F_EFD) }, .end = END_READY, .held = 2, .size = HUGE_SIZE,
	  .ctl_read = "data offset=0 hex=00000000000000000000000000000000" },
	{ "shm: 1 PiB, more than the address space",
	  { MSG(0), MSG(0), MSGF(-1, F_VAST) }, E(-ENOMEM),
	  .sentence = "Mapping the server's shared memory (1125899906842624 "
	  "bytes) read-write failed: Cannot allocate memory" },
	{ "shm: a regular file works",
	  { MSG(0), MSG(0), MSGF(-1, F_FILE), MSGF(0, F_EFD) },
	  .end = END_READY, .held = 2 },

	/* -- fds of the wrong kind for the vectors -- */
	{ "vector: a pipe", { HEAD(0), MSGF(0, F_PIPE) }, E(-EBADFD) },
	{ "vector: a socket", { HEAD(0), MSGF(0, F_SOCK) }, E(-EBADFD) },
	{ "vector: a directory", { HEAD(0), MSGF(1, F_DIR) }, E(-EBADFD) },
	{ "vector: a regular file", { HEAD(0), MSGF(1, F_FILE) },
	  E(-EBADFD) },
	{ "vector: a read-only file", { HEAD(0), MSGF(0, F_ROFILE) },
	  E(-EBADFD) },
	{ "vector: a sealed memfd", { HEAD(0), MSGF(0, F_SEALED) },
	  E(-EBADFD) },
	{ "vector: the shm", { HEAD(0), MSGF(0, F_SHM) }, E(-EBADFD) },
	{ "vector: a pipe after ready",
	  { GREET(0), SYNC, MSGF(1, F_EFD), MSGF(2, F_PIPE) }, E(-EBADFD),
	  .after_ready = true, .joins = 1 },

	/* -- sizes that change after mapping -- */
	{ "shm shrinks to 0 after ready", { GREET(0), SYNC,
	  { .op = OP_TRUNC, .value = 0 } },
	  .end = END_READY, .held = 2,
	  .ctl_read = "error message=\"the shared memory shrank to 0 bytes "
	  "while in use: another peer truncated it (ivshmem-server --memfd "
	  "seals it against that); 0 of the 16 bytes at offset 0 were "
	  "read\"" },
	{ "shm shrinks by half after ready", { GREET(0), SYNC,
	  { .op = OP_TRUNC, .value = SHM_SIZE / 2 } },
	  .end = END_READY, .held = 2,
	  .ctl_read = "data offset=0 hex=00000000000000000000000000000000" },
	{ "shm grows after ready", { GREET(0), SYNC,
	  { .op = OP_TRUNC, .value = SHM_SIZE * 4 } },
	  .end = END_READY, .held = 2,
	  .ctl_read = "data offset=0 hex=00000000000000000000000000000000" },

	/* -- IDs out of range -- */
	{ "own ID 65536", { MSG(0), MSG(65536) }, E(-ERANGE) },
	{ "own ID -1", { MSG(0), MSG(-1) }, E(-ERANGE) },
	{ "own ID INT64_MIN", { MSG(0), MSG(INT64_MIN) }, E(-ERANGE) },
	{ "own ID 2^32", { MSG(0), MSG(1ll << 32) }, E(-ERANGE) },
	{ "own ID 65535 works", { GREET(65535) }, .end = END_READY,
	  .id = 65535, .held = 2 },
	{ "vector for ID 65536", { HEAD(0), MSGF(65536, F_EFD) },
	  E(-ERANGE) },
	{ "vector for ID -2", { HEAD(0), MSGF(-2, F_EFD) }, E(-ERANGE) },
	{ "leave of ID -5 after ready", { GREET(0), SYNC, MSG(-5) },
	  E(-ERANGE), .after_ready = true },
	{ "leave of ID 1<<40 after ready", { GREET(0), SYNC, MSG(1ll << 40) },
	  E(-ERANGE), .after_ready = true },

	/* -- repeated and unknown IDs -- */
	{ "leave of an unknown ID", { GREET(0), SYNC, MSG(9) }, E(-ESRCH),
	  .after_ready = true },
	{ "leave of an unknown ID within the greeting", { HEAD(0), MSG(9) },
	  E(-ESRCH) },
	{ "leave of the own ID", { GREET(3), SYNC, MSG(3) }, E(-EIDRM),
	  .after_ready = true },
	{ "a leave twice", { GREET(0), SYNC, MSGF(1, F_EFD), MSG(1), MSG(1) },
	  E(-ESRCH), .after_ready = true, .joins = 1 },
	{ "a peer announced twice",
	  { HEAD(0), MSGF(3, F_EFD), MSGF(4, F_EFD), MSGF(3, F_EFD),
	    MSGF(0, F_EFD) },
	  .end = END_READY, .peers = "3,4", .held = 4 },
	{ "a peer that leaves and comes back",
	  { GREET(0), SYNC, MSGF(5, F_EFD), MSG(5), MSGF(5, F_EFD) },
	  .end = END_READY, .peers = "5", .at_ready = "", .joins = 2,
	  .leaves = 1,
	  .held = 3 },
	{ "extra own vectors are closed",
	  { GREET(0), { .op = OP_EXTRA, .value = 0, .n = 3 } },
	  .end = END_READY, .held = 2 },

	/* -- floods -- */
	{ "1000 peers in the greeting",
	  { HEAD(0), { .op = OP_JOINS, .value = 1, .n = 1000 },
	    MSGF(0, F_EFD) },
	  .end = END_READY, .peers = "1-1000", .held = 1002 },
	{ "1000 peers join and leave after ready",
	  { GREET(0), SYNC, { .op = OP_JOINS, .value = 1, .n = 1000 },
	    { .op = OP_LEAVES, .value = 1, .n = 1000 } },
	  .end = END_READY, .joins = 1000, .leaves = 1000, .held = 2 },
	{ "3000 joins and leaves of one ID",
	  { GREET(0), SYNC, { .op = OP_CHURN, .value = 7, .n = 3000 } },
	  .end = END_READY, .joins = 3000, .leaves = 3000, .held = 2 },
	{ "5000 extra own vectors",
	  { GREET(0), SYNC, { .op = OP_EXTRA, .value = 0, .n = 5000 } },
	  .end = END_READY, .held = 2 },
	{ "1000 peers, then a violation",
	  { HEAD(0), { .op = OP_JOINS, .value = 1, .n = 1000 },
	    MSGF(0, F_EFD), SYNC, MSG(5000) },
	  E(-ESRCH), .after_ready = true },

	/* -- the receiver runs out of fds: its shortage, not the server's
	 *    fault; what arrived is kept -- */
	{ "no fd left for the 5th fd of the greeting",
	  { { .op = OP_ACK }, SYNC, HEAD(0),
	    { .op = OP_JOINS, .value = 1, .n = 8 }, MSGF(0, F_EFD) },
	  E(-EMFILE), .nofile_free = 4, .held = 4, .peers = "1-3" },

	/* -- peers the greeting and the notices leave half-told -- */
	{ "after ready, a peer with fewer vectors than the own count",
	  { HEAD(0), MSGF(0, F_EFD), MSGF(0, F_EFD), SYNC, MSGF(5, F_EFD) },
	  .end = END_READY, .vectors = 2, .own = 2, .peers = "5",
	  .at_ready = "", .joins = 1, .held = 4 },
	{ "after ready, a peer with fewer vectors, then the end",
	  { HEAD(0), MSGF(0, F_EFD), MSGF(0, F_EFD), SYNC, MSGF(5, F_EFD),
	    CLOSE },
	  E(-ECONNRESET), .after_ready = true, .vectors = 2, .peers = "5",
	  .joins = 1, .held = 4 },
	{ "within the greeting, a peer with fewer vectors, then the end",
	  { HEAD(0), MSGF(3, F_EFD), CLOSE }, E(-ECONNRESET), .vectors = 2,
	  .held = 2 },
	{ "-1 without an fd after ready", { GREET(0), SYNC, MSG(-1) },
	  E(-ERANGE), .after_ready = true },
	{ "a peer announced and gone within the greeting",
	  { HEAD(1), MSGF(0, F_EFD), MSG(0), MSGF(1, F_EFD) },
	  .end = END_READY, .id = 1, .held = 2 },

	/* -- a server that goes silent -- */
	{ "silent: never accepts", { { .op = OP_NOACCEPT } },
	  .end = END_SILENT },
	{ "silent: accepts, sends nothing", { { .op = OP_END } },
	  .end = END_SILENT },
	{ "silent: after the version", { MSG(0) }, .end = END_SILENT },
	{ "silent: in the middle of a message",
	  { MSG(0), { .op = OP_PART, .value = 1, .len = 3 } },
	  .end = END_SILENT },
	{ "silent: after the shm", { HEAD(1) }, .end = END_SILENT,
	  .held = 1 },
	{ "silent: before the second of 2 vectors (quiet ends it)",
	  { GREET(0) }, .end = END_READY, .vectors = 2, .held = 2 },
};

/* ---- the scripted server (a child process) ------------------------------ */

/* Every case's dir is in this one, made and removed by main(): what a
 * failed case leaves goes with it. */
static char base[40];

struct hs {
	char dir[64];
	char path[128];
	pid_t pid;
	int sync_w;             /* a byte: the receiver is ready; EOF: end */
	int ack_r;              /* a byte: the script is done */
};

/* The case's fds, made once in the child. */
struct cfds {
	const char *dir;
	int shm;
};

static int make_fd(struct cfds *c, enum fdk k)
{
	char path[160];
	int fd = -1, p[2];

	switch (k) {
	case F_NONE:
		return -1;
	case F_SHM:
		if (c->shm < 0) {
			c->shm = memfd_create("hostile-shm", MFD_CLOEXEC);
			if (c->shm < 0 || ftruncate(c->shm, SHM_SIZE) < 0)
				_exit(10);
		}
		return dup(c->shm);
	case F_EFD:
		return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	case F_PIPE:
		if (pipe2(p, O_CLOEXEC) < 0)
			_exit(11);
		close(p[0]);
		return p[1];
	case F_SOCK:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
			_exit(12);
		close(p[1]);
		return p[0];
	case F_DIR:
		return open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	case F_FILE:
	case F_ROFILE:
		snprintf(path, sizeof(path), "%s/file", c->dir);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, SHM_SIZE) < 0)
			_exit(13);
		if (k == F_ROFILE) {
			close(fd);
			fd = open(path, O_RDONLY | O_CLOEXEC);
		}
		unlink(path);
		return fd;
	case F_SEALED:
		fd = memfd_create("hostile-sealed",
				  MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0 || ftruncate(fd, SEALED_SIZE) < 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0)
			_exit(14);
		return fd;
	case F_EMPTY:
		return memfd_create("hostile-empty", MFD_CLOEXEC);
	case F_NULL:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	case F_ODD:
	case F_HUGE:
	case F_VAST:
		fd = memfd_create("hostile-size", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, k == F_ODD ? ODD_SIZE :
				       k == F_HUGE ? (off_t)HUGE_SIZE :
				       (off_t)VAST_SIZE) < 0)
			_exit(15);
		return fd;
	}
	return -1;
}

/* Send bytes [from, to) of value's encoding with fds; errors are the
 * receiver's business (it may have closed already). */
static void send_part(int sock, int64_t value, unsigned from, unsigned to,
		      const int *fds, unsigned nfds)
{
	uint8_t b[IVSHMEM_MSG_SIZE];

	ivshmem_msg_encode(value, b);
	(void)tsend_fds(sock, b + from, to - from, fds, nfds, 0);
}

/* Two messages in one sendmsg of 16 bytes, with the fds. */
static void send_pair(int sock, int64_t v1, int64_t v2, const int *fds,
		      unsigned nfds)
{
	uint8_t b[2 * IVSHMEM_MSG_SIZE];

	ivshmem_msg_encode(v1, b);
	ivshmem_msg_encode(v2, b + IVSHMEM_MSG_SIZE);
	(void)tsend_fds(sock, b, sizeof(b), fds, nfds, 0);
}

static void send_one(int sock, int64_t value, int fd)
{
	send_part(sock, value, 0, IVSHMEM_MSG_SIZE, &fd, fd >= 0);
}

/* Wait for a byte (or EOF) on fd; false on EOF or after 30 s. */
static bool wait_byte(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	return poll(&p, 1, 30000) == 1 && read(fd, &c, 1) == 1;
}

static void run_step(int sock, struct cfds *c, const struct step *st,
		     int sync_r, int ack_w)
{
	int fds[16];

	for (unsigned i = 0; i < st->nfd; i++)
		fds[i] = make_fd(c, st->fd[i]);
	switch (st->op) {
	case OP_MSG:
		send_part(sock, st->value, 0, IVSHMEM_MSG_SIZE, fds, st->nfd);
		break;
	case OP_PART:
		send_part(sock, st->value, 0, st->len, fds, st->nfd);
		break;
	case OP_REST:
		send_part(sock, st->value, st->len, IVSHMEM_MSG_SIZE, fds,
			  st->nfd);
		break;
	case OP_SPLIT:
		for (unsigned i = 0; i < IVSHMEM_MSG_SIZE; i++) {
			send_part(sock, st->value, i, i + 1, fds,
				  i ? 0 : st->nfd);
			usleep(2000);
		}
		break;
	case OP_CLOSE:
		close(sock);
		break;
	case OP_SYNC:
		if (!wait_byte(sync_r))
			_exit(20);
		break;
	case OP_TRUNC:
		if (ftruncate(c->shm, (off_t)st->value) < 0)
			_exit(21);
		break;
	case OP_JOINS:
	case OP_LEAVES:
	case OP_CHURN:
	case OP_EXTRA: {
		int e = make_fd(c, F_EFD);

		for (unsigned i = 0; i < st->n; i++) {
			int64_t id = st->value +
				(st->op == OP_JOINS || st->op == OP_LEAVES ?
				 i : 0);

			if (st->op != OP_LEAVES)
				send_one(sock, id, e);
			if (st->op == OP_LEAVES || st->op == OP_CHURN)
				send_one(sock, id, -1);
		}
		close(e);
		break;
	}
	case OP_ACK:
		(void)!write(ack_w, "a", 1);
		break;
	case OP_PAIR:
		send_pair(sock, st->value, st->value2, fds, st->nfd);
		break;
	case OP_END:
	case OP_NOACCEPT:
		break;
	}
	for (unsigned i = 0; i < st->nfd; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* The child: accept one connection, play the script, say so on ack_w,
 * then hold everything open until sync_r ends. */
static void child_main(const struct hcase *hc, const char *dir, int ls,
		       int sync_r, int ack_w)
{
	struct cfds c = { .dir = dir, .shm = -1 };
	struct pollfd p = { .fd = ls, .events = POLLIN };
	int sock = -1;
	bool closed = false;

	/* The receiver may be gone before the script ends. */
	signal(SIGPIPE, SIG_IGN);
	if (hc->s[0].op != OP_NOACCEPT) {
		if (poll(&p, 1, 30000) != 1)
			_exit(2);
		sock = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (sock < 0)
			_exit(3);
	}
	for (const struct step *st = hc->s;
	     st < hc->s + G_N_ELEMENTS(hc->s) && st->op != OP_END; st++) {
		run_step(sock, &c, st, sync_r, ack_w);
		if (st->op == OP_CLOSE)
			closed = true;
	}
	(void)!write(ack_w, "d", 1);
	while (wait_byte(sync_r))
		;
	if (sock >= 0 && !closed)
		close(sock);
	_exit(0);
}

static void hs_start(struct hs *h, const struct hcase *hc)
{
	int ls, sp[2], ap[2];

	snprintf(h->dir, sizeof(h->dir), "%s/case-XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(h->dir));
	snprintf(h->path, sizeof(h->path), "%s/sock", h->dir);
	ck_assert_int_eq(ivshmem_socket_listen(h->path, &ls), 0);
	ck_assert_int_eq(pipe2(sp, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(ap, O_CLOEXEC), 0);
	h->pid = fork();
	ck_assert_int_ge(h->pid, 0);
	if (h->pid == 0) {
		close(sp[1]);
		close(ap[0]);
		child_main(hc, h->dir, ls, sp[0], ap[1]);
	}
	close(ls);
	close(sp[0]);
	close(ap[1]);
	h->sync_w = sp[1];
	h->ack_r = ap[0];
}

/* The receiver is ready: the script goes on past its SYNC. */
static void hs_sync(struct hs *h)
{
	ck_assert_int_eq(write(h->sync_w, "s", 1), 1);
}

/* The script says it got to its OP_ACK. */
static void hs_wait_ack(struct hs *h)
{
	ck_assert_msg(wait_byte(h->ack_r), "the script did not get there");
}

/* Leave pid (0: this process) only nfree free fds; the old limit. */
static struct rlimit fd_room(pid_t pid, unsigned nfree)
{
	struct rlimit old, lim;

	ck_assert_int_eq(prlimit(pid, RLIMIT_NOFILE, NULL, &old), 0);
	lim = old;
	/* Its scan of /proc/self/fd holds the lowest free fd itself. */
	lim.rlim_cur = proc_fd_limit_leaving(pid ? pid : getpid(),
					     pid ? nfree : nfree - 1);
	ck_assert_int_eq(prlimit(pid, RLIMIT_NOFILE, &lim, NULL), 0);
	return old;
}

/* Has the script played to its end? */
static bool hs_done(struct hs *h)
{
	struct pollfd p = { .fd = h->ack_r, .events = POLLIN };
	char c;

	return poll(&p, 1, 0) == 1 && read(h->ack_r, &c, 1) == 1;
}

/* End the script: it exits 0, and nothing is left in the dir. */
static void hs_finish(struct hs *h)
{
	int st;

	close(h->sync_w);
	st = proc_wait_exit(h->pid, TWAIT_MS);
	close(h->ack_r);
	ck_assert_msg(st == 0, "the scripted server exited with %d", st);
	unlink(h->path);
	ck_assert_int_eq(rmdir(h->dir), 0);
}

/* ---- expectations shared by both receivers ------------------------------ */

static const char *sentence_of(const struct hcase *hc)
{
	return hc->sentence ? hc->sentence : ivshmem_strerror(hc->err);
}

static unsigned vectors_of(const struct hcase *hc)
{
	return hc->vectors ? hc->vectors : 1;
}

/* The peer list as ivshmem-ctl prints it ("1-1000" expands). */
static char *peer_list(const char *peers)
{
	unsigned a, b;
	GString *s;

	if (!peers)
		return g_strdup("");
	if (sscanf(peers, "%u-%u", &a, &b) != 2)
		return g_strdup(peers);
	s = g_string_new(NULL);
	for (unsigned i = a; i <= b; i++)
		g_string_append_printf(s, "%s%u", i > a ? "," : "", i);
	return g_string_free(s, FALSE);
}

/* ---- the library's peer side -------------------------------------------- */

struct counts {
	bool ready;
	unsigned joins, leaves, disconnects, logs, doorbells;
	int error;
};

static void c_ready(void *user, struct ivshmem_peer *p)
{
	(void)p;
	((struct counts *)user)->ready = true;
}

static void c_joined(void *user, struct ivshmem_peer *p, int id, unsigned v)
{
	struct counts *c = user;

	(void)p;
	(void)id;
	(void)v;
	if (c->ready)
		c->joins++;
}

static void c_left(void *user, struct ivshmem_peer *p, int id)
{
	struct counts *c = user;

	(void)p;
	(void)id;
	if (c->ready)
		c->leaves++;
}

static void c_doorbell(void *user, struct ivshmem_peer *p, unsigned v,
		       uint64_t count)
{
	(void)p;
	(void)v;
	((struct counts *)user)->doorbells += (unsigned)count;
}

static void c_disconnected(void *user, struct ivshmem_peer *p, int error)
{
	struct counts *c = user;

	(void)p;
	c->disconnects++;
	c->error = error;
}

static void c_log(void *user, int prio, const char *fmt, va_list ap)
{
	(void)prio;
	(void)fmt;
	(void)ap;
	((struct counts *)user)->logs++;
}

static const struct ivshmem_peer_ops counting_ops = {
	.ready = c_ready,
	.joined = c_joined,
	.left = c_left,
	.doorbell = c_doorbell,
	.disconnected = c_disconnected,
	.log = c_log,
};

/* Dispatch until the connection ends (its error), or, with quiet_ms > 0,
 * until nothing arrives for quiet_ms (0). */
static int lib_pump(struct ivshmem_peer *peer, int quiet_ms)
{
	struct pollfd p = { .fd = ivshmem_peer_get_fd(peer),
			    .events = POLLIN };

	for (;;) {
		int n = poll(&p, 1, quiet_ms > 0 ? quiet_ms : TWAIT_MS), r;

		if (n == 0) {
			ck_assert_msg(quiet_ms > 0,
				      "the connection did not end");
			return 0;
		}
		ck_assert_int_eq(n, 1);
		r = ivshmem_peer_dispatch(peer);
		if (r < 0)
			return r;
	}
}

/* Dispatch while the script plays (it may fill the socket) and until
 * what it announced was reported, then until the stream is quiet. The
 * connection must stay. */
static void lib_pump_script(struct ivshmem_peer *peer, struct hs *h,
			    const struct counts *cnt, const struct hcase *hc)
{
	double end = now_seconds() + 3 * TWAIT_MS / 1000.0;
	struct pollfd p = { .fd = ivshmem_peer_get_fd(peer), .events = POLLIN };
	bool done = false;

	while (!done || cnt->joins < hc->joins || cnt->leaves < hc->leaves) {
		ck_assert_msg(now_seconds() < end, "the script did not "
			      "finish, or what it announced was not told");
		done = done || hs_done(h);
		if (poll(&p, 1, 20) > 0)
			ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
	}
	ck_assert_int_eq(lib_pump(peer, 50), 0);
}

static char *lib_peers(struct ivshmem_peer *peer)
{
	int n = ivshmem_peer_get_peers(peer, NULL, 0);
	int *ids = g_new(int, n > 0 ? n : 1);
	GString *s = g_string_new(NULL);

	ck_assert_int_eq(ivshmem_peer_get_peers(peer, ids, (unsigned)n), n);
	for (int i = 0; i < n; i++)
		g_string_append_printf(s, "%s%d", i ? "," : "", ids[i]);
	g_free(ids);
	return g_string_free(s, FALSE);
}

/* The real server each case's peer joins afterwards: one per TCase,
 * started and stopped in the runner process. */
static struct tserver *real;

static void real_start(void)
{
	real = START(NULL);
}

static void real_stop(void)
{
	if (real)
		tserver_stop_ok(real);
	real = NULL;
	tserver_reap_tracked();
}

static void lib_case(const struct hcase *hc)
{
	const struct ivshmem_peer_config cfg = { .vectors = vectors_of(hc) };
	struct counts cnt = { 0 };
	struct ivshmem_peer *peer;
	struct hs h;
	int n0 = count_open_fds(), n1, r;

	hs_start(&h, hc);
	ck_assert_int_eq(ivshmem_peer_new(&cfg, &counting_ops, &cnt, &peer), 0);
	n1 = count_open_fds();
	ck_assert_int_eq(ivshmem_peer_connect(peer, h.path), 0);

	switch (hc->end) {
	case END_SILENT:
		/* ivshmem_peer_wait_ready(): -ETIMEDOUT, the connection
		 * stays open; the caller decides how long to wait. */
		ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 300),
				 -ETIMEDOUT);
		ck_assert_int_eq(ivshmem_peer_get_state(peer),
				 IVSHMEM_PEER_CONNECTING);
		ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
		ck_assert_str_eq(ivshmem_peer_get_error(peer), "Success");
		ck_assert_uint_eq(cnt.disconnects, 0);
		ck_assert_int_eq(ivshmem_peer_disconnect(peer), 0);
		ck_assert_int_eq(count_open_fds(), n1 + (int)hc->held);
		break;
	case END_ERROR:
		if (hc->nofile_free) {
			struct rlimit old;

			hs_wait_ack(&h);
			old = fd_room(0, hc->nofile_free);
			hs_sync(&h);
			r = ivshmem_peer_wait_ready(peer, TWAIT_MS);
			ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
		} else {
			r = ivshmem_peer_wait_ready(peer, TWAIT_MS);
		}
		if (hc->after_ready) {
			ck_assert_msg(r == 0, "not ready: %d (%s)", r,
				      ivshmem_peer_get_error(peer));
			hs_sync(&h);
			r = lib_pump(peer, 0);
		}
		ck_assert_msg(r == hc->err, "error %d (%s), want %d (%s)", r,
			      ivshmem_peer_get_error(peer), hc->err,
			      sentence_of(hc));
		ck_assert_str_eq(ivshmem_peer_get_error(peer),
				 sentence_of(hc));
		ck_assert_int_eq(ivshmem_peer_get_state(peer),
				 IVSHMEM_PEER_DISCONNECTED);
		ck_assert_uint_eq(cnt.disconnects, 1);
		ck_assert_int_eq(cnt.error, hc->err);
		ck_assert(cnt.ready == hc->after_ready);
		ck_assert_int_eq(ivshmem_peer_dispatch(peer), 0);
		ck_assert_int_eq(ivshmem_peer_wait_ready(peer, 0), -ENOTCONN);
		/* Who is known is who was reported. */
		{
			g_autofree char *got = lib_peers(peer);
			g_autofree char *want = peer_list(hc->peers);

			ck_assert_str_eq(got, want);
			ck_assert_uint_eq(cnt.joins, hc->joins);
		}
		/* Nothing of the stream is kept after a violation; after
		 * the server went away, what it sent stays usable. */
		ck_assert_int_eq(count_open_fds(), n1 + (int)hc->held);
		break;
	case END_READY: {
		g_autofree char *want = peer_list(hc->peers), *got = NULL;
		uint64_t size = 0;

		r = ivshmem_peer_wait_ready(peer, TWAIT_MS);
		ck_assert_msg(r == 0, "not ready: %d (%s)", r,
			      ivshmem_peer_get_error(peer));
		hs_sync(&h);
		lib_pump_script(peer, &h, &cnt, hc);
		ck_assert_int_eq(ivshmem_peer_get_state(peer),
				 IVSHMEM_PEER_READY);
		ck_assert_uint_eq(cnt.disconnects, 0);
		ck_assert_int_eq(ivshmem_peer_get_id(peer), hc->id);
		ck_assert_int_eq(ivshmem_peer_get_vectors(peer, hc->id),
				 hc->own ? (int)hc->own : 1);
		got = lib_peers(peer);
		ck_assert_str_eq(got, want);
		ck_assert_uint_eq(cnt.joins, hc->joins);
		ck_assert_uint_eq(cnt.leaves, hc->leaves);
		ck_assert_int_eq(ivshmem_peer_get_shm(peer, NULL, &size), 0);
		ck_assert_uint_eq(size, hc->size ? hc->size : SHM_SIZE);
		ck_assert_int_eq(ivshmem_peer_ring(peer, hc->id, 0), 0);
		{
			struct pollfd p = { .fd = ivshmem_peer_get_fd(peer),
					    .events = POLLIN };

			while (!cnt.doorbells) {
				ck_assert_int_eq(poll(&p, 1, TWAIT_MS), 1);
				ck_assert_int_eq(ivshmem_peer_dispatch(peer),
						 0);
			}
			ck_assert_uint_eq(cnt.doorbells, 1);
		}
		/* The socket, and what the stream left. */
		ck_assert_int_eq(count_open_fds(), n1 + 1 + (int)hc->held);
		break;
	}
	}

	/* Still usable: the same peer joins a real server. */
	if (hc->end == END_READY)
		ck_assert_int_eq(ivshmem_peer_disconnect(peer), 0);
	ck_assert_ptr_nonnull(real);
	ck_assert_int_eq(ivshmem_peer_connect(peer, real->sock), 0);
	r = ivshmem_peer_wait_ready(peer, TWAIT_MS);
	ck_assert_msg(r == 0, "a real server after '%s': %d (%s)", hc->name, r,
		      ivshmem_peer_get_error(peer));
	ck_assert_str_eq(ivshmem_peer_get_error(peer), "Success");
	ivshmem_peer_free(peer);
	hs_finish(&h);
	ck_assert_int_eq(count_open_fds(), n0);
}

START_TEST(library)
{
	lib_case(&cases[_i]);
}
END_TEST

/* ---- ivshmem-ctl peer ------------------------------------------------------ */

/* The fds of the stream that pid holds: eventfds, memfds, regular files
 * in dir. */
static unsigned stream_fds(pid_t pid, const char *dir)
{
	char path[64], target[PATH_MAX];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		len = readlinkat(dirfd(d), e->d_name, target,
				 sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strcmp(target, "anon_inode:[eventfd]") == 0 ||
		    g_str_has_prefix(target, "/memfd:") ||
		    g_str_has_prefix(target, dir))
			n++;
	}
	closedir(d);
	return n;
}

static void ctl_case(const struct hcase *hc)
{
	g_autofree char *vec = g_strdup_printf("%u", vectors_of(hc));
	const char *l;
	struct proc a;
	struct hs h;

	hs_start(&h, hc);
	{
		const char *const args[] = {
			"peer", "-S", h.path, "--vectors", vec, "--timeout",
			hc->end == END_SILENT ? "0.3" : "30", NULL };

		proc_start(&a, proc_ctl_path(), args);
	}

	switch (hc->end) {
	case END_SILENT:
		/* --timeout ends it, in one sentence. */
		EXPECT_EXIT(&a, 1);
		ck_assert_str_eq(proc_stderr(&a),
				 "ivshmem-ctl: timed out after 0.3 s waiting "
				 "for the server's greeting\n");
		ck_assert_str_eq(proc_stdout_rest(&a), "");
		break;
	case END_ERROR: {
		g_autofree char *line = g_strdup_printf(
			"disconnected error=\"%s\"", sentence_of(hc));
		g_autofree char *err = g_strdup_printf(
			"ivshmem-ctl: disconnected from %s: %s\n", h.path,
			sentence_of(hc));

		if (hc->nofile_free) {
			hs_wait_ack(&h);
			fd_room(a.pid, hc->nofile_free);
			hs_sync(&h);
		}
		if (hc->after_ready) {
			EXPECT_PREFIX(&a, "ready id=");
			hs_sync(&h);
		}
		unsigned joins = 0;

		/* Joins and leaves before the end come first. */
		while ((l = proc_next(&a, TWAIT_MS)) &&
		       (g_str_has_prefix(l, "join ") ||
			g_str_has_prefix(l, "leave ")))
			joins += l[0] == 'j';
		ck_assert_msg(l && strcmp(l, line) == 0,
			      "want '%s', got '%s' (stderr: %s)", line,
			      l ? l : "(nothing)", proc_stderr(&a));
		ck_assert_uint_eq(joins, hc->joins);
		EXPECT_EXIT(&a, 1);
		ck_assert_str_eq(proc_stderr(&a), err);
		ck_assert_str_eq(proc_stdout_rest(&a), "");
		break;
	}
	case END_READY: {
		g_autofree char *peers = peer_list(hc->peers);
		g_autofree char *first = peer_list(hc->at_ready ?
						   hc->at_ready : hc->peers);
		g_autofree char *want = g_strdup_printf("peers%s%s",
			*peers ? " " : "", peers);
		unsigned joins = 0, leaves = 0;
		bool ok = false, bell = false;
		double end = now_seconds() + 3 * TWAIT_MS / 1000.0;

		EXPECT(&a, "ready id=%d vectors=%u peers=%s shm-size=%llu",
		       hc->id, hc->own ? hc->own : 1, first,
		       (unsigned long long)(hc->size ? hc->size : SHM_SIZE));
		hs_sync(&h);
		/* Its lines are read while the script plays: it must not
		 * block on a full stdout. */
		for (bool sent = false;;) {
			ck_assert_msg(now_seconds() < end,
				      "the script did not finish");
			if (!sent && joins >= hc->joins &&
			    leaves >= hc->leaves && hs_done(&h)) {
				proc_send(&a, "peers");
				sent = true;
			}
			l = proc_next(&a, sent ? TWAIT_MS : 100);
			if (!l) {
				ck_assert_msg(!sent && !a.eof,
					      "no answer to peers (stderr: %s)",
					      proc_stderr(&a));
				continue;
			}
			if (g_str_has_prefix(l, "join "))
				joins++;
			else if (g_str_has_prefix(l, "leave "))
				leaves++;
			else
				break;
		}
		ck_assert_msg(l && strcmp(l, want) == 0, "want '%s', got '%s'",
			      want, l ? l : "(nothing)");
		ck_assert_uint_eq(joins, hc->joins);
		ck_assert_uint_eq(leaves, hc->leaves);
		ck_assert_uint_eq(stream_fds(a.pid, h.dir), hc->held);
		if (hc->ctl_read) {
			proc_send(&a, "read 0 16");
			EXPECT(&a, "%s", hc->ctl_read);
		}
		/* Its own doorbell, in either order with the answer. */
		proc_send(&a, "ring %d 0", hc->id);
		for (int i = 0; i < 2; i++) {
			l = proc_next(&a, TWAIT_MS);
			ck_assert_ptr_nonnull(l);
			if (!ok && strcmp(l, "ok ring doorbells=1") == 0)
				ok = true;
			else if (!bell &&
				 strcmp(l, "doorbell vector=0 count=1") == 0)
				bell = true;
			else
				ck_abort_msg("after ring: '%s'", l);
		}
		proc_close_in(&a);
		EXPECT_EXIT(&a, 0);
		ck_assert_str_eq(proc_stderr(&a), "");
		break;
	}
	}
	proc_free(&a);
	hs_finish(&h);
}

START_TEST(ctl)
{
	ctl_case(&cases[_i]);
}
END_TEST

/* ---- runner -------------------------------------------------------------- */

static Suite *hostile_suite(void)
{
	Suite *s = suite_create("hostile-server");
	TCase *tc;

	tc = tcase_with("library", 120, NULL);
	tcase_add_unchecked_fixture(tc, real_start, real_stop);
	tcase_add_loop_test(tc, library, 0, G_N_ELEMENTS(cases));
	suite_add_tcase(s, tc);
	tc = tcase_with("ctl", 60, NULL);
	tcase_add_loop_test(tc, ctl, 0, G_N_ELEMENTS(cases));
	suite_add_tcase(s, tc);
	return s;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	int r;

	snprintf(base, sizeof(base), "/tmp/ivshmem-hostile-XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	r = run_tracked_suite(hostile_suite());
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return r;
}
