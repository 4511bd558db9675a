/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the tests: run a real ivshmem-server process, and a blocking
 * test peer that reads and checks the protocol stream message by message.
 */
#ifndef IVSHMEM_TESTS_COMMON_H
#define IVSHMEM_TESTS_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>

#include "ivshmem.h"
#include "wire-private.h"

/* ---- the server process ------------------------------------------------ */

struct tserver {
	pid_t pid;
	char dir[64];           /* private temp dir, removed by stop */
	char sock[108];         /* dir/sock */
	char shm_name[64];      /* unique POSIX shm name, without '/' */
	char log[128];          /* dir/log: the server's stderr */
};

/*
 * Start `ivshmem-server -F -S <dir>/sock -M <unique name> ARGS...` (ARGS is
 * a NULL-terminated list, may be NULL) and wait until its socket exists.
 * Later arguments override the defaults (e.g. "--memfd", "-S", path).
 * Returns 0, or -1 if the server exited or did not listen within 5 s.
 */
int tserver_start(struct tserver *s, const char *const *args);
/* Like tserver_start but with the server's argv given completely (the
 * server path is prepended) and no waiting: for start-up failure tests.
 * The server's stderr goes to s->log. Returns the exit status, or -1 if
 * it was killed by a signal, after waiting up to timeout_ms (then killed). */
int tserver_run(struct tserver *s, const char *const *args, int timeout_ms);
/* Create s->dir, s->sock, s->shm_name, s->log without starting anything. */
void tserver_prepare(struct tserver *s);
/* SIGTERM, wait up to 5 s (then SIGKILL). Returns the exit status, -1
 * when it died by a signal, or -2 when it exited 0 but left its socket or
 * its default control socket (SOCK.ctl) behind. Removes both sockets, the
 * log, the dir and the shm name. */
int tserver_stop(struct tserver *s);
/* SIGKILL and reap; keeps dir, socket and shm (for restart tests). */
void tserver_kill(struct tserver *s);
/* Remove what a killed server left behind: socket, shm, log, dir. */
void tserver_cleanup(struct tserver *s);
/* Is the process still running (not a zombie)? */
bool tserver_alive(const struct tserver *s);
/* The server's stderr so far (g_free the result). */
char *tserver_log(const struct tserver *s);
/* Does the server's stderr hold `needle`, now or within timeout_ms? */
bool tserver_log_wait(const struct tserver *s, const char *needle,
		      int timeout_ms);
/* Does it hold `needle` now? */
bool tserver_log_has(const struct tserver *s, const char *needle);
/* Fail the test, showing the log, unless `needle` is in it within
 * TWAIT_MS. */
void tserver_expect_log(const struct tserver *s, const char *needle);
/* Its stderr is one "ivshmem-server: " sentence that says `needle`
 * (a "Try ..." hint line aside): what a refused start must print. */
void tserver_expect_one_message(const struct tserver *s, const char *needle);
/* CPU seconds (user + system) the process used so far. */
double proc_cpu_seconds(pid_t pid);
/* Peak resident set size in KiB (VmHWM). */
long proc_peak_rss_kib(pid_t pid);
/*
 * The fd limit (RLIMIT_NOFILE) at which `pid` has exactly `nfree` fds
 * left. The limit bounds fd numbers, not their count, and a process may
 * have inherited fds with high numbers: the free numbers are counted from
 * 0 up (below 4096).
 */
unsigned long proc_fd_limit_leaving(pid_t pid, unsigned nfree);
/* Wait up to timeout_ms for child pid to exit: its exit status, -1 if a
 * signal killed it, -2 if it is not our child, -3 if it was still
 * running (it is then killed and reaped). */
int proc_wait_exit(pid_t pid, int timeout_ms);
/* Wait (up to TWAIT_MS, else fail) until pid, running the program whose
 * path ends in exe_tail ("/ivshmem-ctl": not the child before its exec,
 * which has the test's mappings), has the POSIX shm object name mapped. */
void proc_wait_mapped(pid_t pid, const char *exe_tail, const char *name);

/*
 * Servers cleaned up after a failed test. A failing assertion ends the
 * test process with _exit() (CK_FORK) and Check kills its process group:
 * the server dies, but its socket, log, shm object and temp dir stay. The
 * structs tserver_tracked() hands out live in memory shared with the
 * runner process, where tserver_reap_tracked() (an unchecked fixture's
 * teardown, and once more at the end) removes what is left.
 */
/* Call once in main() before running; -1 (with a message) on failure. */
int tserver_tracking_init(void);
/* A zeroed tserver (pid -1), or NULL when all 64 are in use. */
struct tserver *tserver_tracked(void);
void tserver_reap_tracked(void);
/* tserver_tracked() + tserver_start(): the started server, or NULL. */
struct tserver *tserver_start_tracked(const char *const *args);

/*
 * The start/stop family every suite uses. START(ARGS...) starts a
 * tracked server with ARGS (a NULL at the end is optional) and waits for
 * its banner: a socket listens before its owner, group and mode are set
 * and before the control socket listens, the banner comes once all is
 * done and the loop is about to run. It fails the test if the server does
 * not get there.
 */
#define START(...) ({ \
	const char *const start_args_[] = { __VA_ARGS__, NULL }; \
	tserver_start_ok(start_args_); \
})
struct tserver *tserver_start_ok(const char *const *args);
/* Stop cleanly or fail the test, showing the log: exit status 0, and no
 * socket, control socket, POSIX shm object or file in its dir left. */
void tserver_stop_ok(struct tserver *s);

/* SIGTERM, and it exits 0 within TWAIT_MS, or fail the test showing the
 * log. Checks and removes no file: for a server whose socket is another
 * program's (a socket-activated one's belongs to its launcher). */
void tserver_term_ok(struct tserver *s);

/* Path of the built ivshmem-server binary. */
const char *server_path(void);

/* ---- the test peer ----------------------------------------------------- */

enum tmsg_kind {
	TMSG_VERSION = 1,   /* value: the version */
	TMSG_ID,            /* value: own ID */
	TMSG_SHM,           /* fd: the shm fd (kept in p->shm_fd) */
	TMSG_VECTOR,        /* id gained vector number `vector` */
	TMSG_LEAVE,         /* id left */
};

struct tmsg {
	enum tmsg_kind kind;
	int64_t value;      /* raw value */
	int id;             /* peer ID for VECTOR and LEAVE */
	int vector;         /* for VECTOR */
};

struct tpeer {
	int sock;
	int id;             /* own ID, -1 until received */
	int shm_fd;         /* -1 until received */
	uint64_t shm_size;
	unsigned vectors;   /* the server's vector count */
	bool keep_fds;      /* keep every eventfd (for ringing) */
	unsigned nmsgs;     /* messages received */
	unsigned short *nvec;   /* [65536] vectors received per peer ID */
	int *own;           /* [vectors] own eventfds */
	GHashTable *fds;    /* keep_fds: id -> int[vectors] */
	unsigned npeers;    /* other peers currently known (all vectors) */
	bool ready;         /* own ID has all its vectors */
	struct ivshmem_inbuf in;
};

/* Connect (retrying while the listener is not up yet, up to 2 s).
 * Returns 0 or a negative errno. Reads nothing. */
int tpeer_connect(struct tpeer *p, const char *sock, unsigned vectors,
		  bool keep_fds);
/*
 * Receive one message and check it against the protocol and the state so
 * far: version first (0), ID second (0..65535), shm third (-1 with an fd
 * that is a regular file or memfd), then vectors (an eventfd each) and
 * leaves (no fd, for a known peer). Every fd is closed at once unless
 * needed (shm, own eventfds, or keep_fds).
 * Returns 1 with *m filled; 0 on EOF; -ETIMEDOUT; -EPROTO (with a
 * description in *why, g_free it) when the stream breaks the protocol;
 * other negative errno.
 */
int tpeer_recv(struct tpeer *p, int timeout_ms, struct tmsg *m, char **why);
/* Receive until the own ID has all its vectors. 0, or as tpeer_recv. */
int tpeer_greet(struct tpeer *p, int timeout_ms);
/* Receive until `npeers` other peers are fully known. */
int tpeer_wait_peers(struct tpeer *p, unsigned npeers, int timeout_ms);
/* The eventfd for (id, vector) when keep_fds, or own; -1 if unknown. */
int tpeer_fd(const struct tpeer *p, int id, unsigned vector);
/* Ring (id, vector): write 1 to its eventfd. 0 or negative errno. */
int tpeer_ring(const struct tpeer *p, int id, unsigned vector);
/* Wait for an own vector's eventfd; returns the count read (> 0), or
 * -ETIMEDOUT. */
int64_t tpeer_wait_doorbell(const struct tpeer *p, unsigned vector,
			    int timeout_ms);
/* Close everything. */
void tpeer_close(struct tpeer *p);

/*
 * Checked versions, which fail the test (ck_assert) with the peer, the
 * message count and the reason. Those without a timeout parameter wait up
 * to TWAIT_MS for what must come.
 */
/* Generous bounds: CI machines are shared and slow. TWAIT_MS bounds the
 * wait for what must come, TQUIET_MS how long "nothing (more) arrives" is
 * watched. */
#define TWAIT_MS 10000
#define TQUIET_MS 300
/* tpeer_recv() returns a message. */
void tpeer_recv_ok(struct tpeer *p, struct tmsg *m, int timeout_ms);
/* tpeer_connect() and tpeer_greet() succeed. */
void tpeer_join_ok(struct tpeer *p, const char *sock, unsigned vectors,
		   bool keep_fds);
/* tpeer_wait_peers() succeeds. */
void tpeer_wait_peers_ok(struct tpeer *p, unsigned npeers);
/* Nothing more arrives within ms. */
void tpeer_expect_quiet(struct tpeer *p, int ms);
/* The next message is a leave of `id`. */
void tpeer_expect_leave(struct tpeer *p, int id);
/* Read every message that arrives until ms pass without one; each must
 * keep to the protocol. */
void tpeer_drain(struct tpeer *p, int ms);

/* ---- misc -------------------------------------------------------------- */

/* Does the POSIX shm object `name` (without the '/') exist? */
bool shm_exists(const char *name);
/* Is there a file (of any kind, a dangling symlink too) at path? */
bool path_exists(const char *path);
/* Number of open fds of this process. */
int count_open_fds(void);
/* Monotonic time in seconds. */
double now_seconds(void);
/* 0 under AddressSanitizer, which keeps freed memory in quarantine: a
 * process's RSS then says nothing of what it holds. */
#ifdef __SANITIZE_ADDRESS__
#define TRSS_MEANINGFUL 0
#else
#define TRSS_MEANINGFUL 1
#endif
/* Is fd an eventfd? */
bool fd_is_eventfd(int fd);
/* One sendmsg of len bytes with nfds (at most 16) fds in one SCM_RIGHTS
 * cmsg, flags | MSG_NOSIGNAL: what sendmsg returns. */
ssize_t tsend_fds(int sock, const void *buf, size_t len, const int *fds,
		  unsigned nfds, int flags);
/* Connect to the UNIX socket at path (blocking, close-on-exec),
 * retrying while it is not there yet or not listening (a server makes
 * its control socket a moment after its peer socket): the fd, or the
 * test fails after TWAIT_MS. */
int tconnect_retry(const char *path);
/* Write all len bytes to fd (blocking, no SIGPIPE), or fail the test. */
void twrite_all(int fd, const void *data, size_t len);
/*
 * For running a program as another user wherever the checkout lives
 * (a build under a 0700 home is out of that user's reach): a copy of
 * the program at path in a new directory under /tmp that every user
 * may enter, with the build's libivshmem beside it where the program's
 * RUNPATH ($ORIGIN/../libivshmem) finds it. The copy's path (g_free
 * it), or the test fails; tprog_copy_remove() removes it all.
 */
char *tprog_copy(const char *path);
void tprog_copy_remove(char *copy);
/* Run every test of s, each in its own process; EXIT_SUCCESS or
 * EXIT_FAILURE. */
struct Suite;
int run_suite(struct Suite *s);
/* run_suite() for suites whose servers are tracked: tracking set up
 * first, every tracked server reaped after. */
int run_tracked_suite(struct Suite *s);
/*
 * The one way to make a test case. Its timeout is `timeout` seconds (0:
 * Check's default), and `teardown` (may be NULL) is the teardown of an
 * unchecked fixture, run in the runner process after the case's tests:
 * for cleaning up after a failed test. Every case gets the fd check, a
 * checked fixture run in the test's own process: the open fds are listed
 * before the test and after it, and the test fails naming every fd it
 * left open and what the fd points to.
 */
struct TCase;
struct TCase *tcase_with(const char *name, double timeout,
			 void (*teardown)(void));

#endif
