/* SPDX-License-Identifier: MIT */
/*
 * A child process on pipes, for tests that drive a program through its
 * stdin and read its stdout line by line (ivshmem-ctl peer, the Unicorn
 * example). Failures end the test through Check's assertions.
 */
#ifndef IVSHMEM_TESTS_TPROC_H
#define IVSHMEM_TESTS_TPROC_H

#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#include <check.h>
#include <glib.h>

#include "common.h"

struct proc {
	const char *name;       /* for messages */
	pid_t pid;
	int in;                 /* its stdin (write end), -1 once closed */
	int out;                /* its stdout (read end) */
	int err;                /* its stderr (read end) */
	GString *buf;           /* stdout read, not yet taken as lines */
	GString *errbuf;
	bool eof;
	char *line;             /* the last line taken */
};

/* The ivshmem-ctl to test: $IVSHMEM_CTL, or the one built. */
const char *proc_ctl_path(void);
/* Run PATH ARGS... (NULL-terminated) with pipes on 0, 1 and 2. */
void proc_start(struct proc *p, const char *path, const char *const *args);
/* Its stderr so far. */
const char *proc_stderr(struct proc *p);
/* Its stdout not yet taken as lines (after it exited: all the rest). */
const char *proc_stdout_rest(struct proc *p);
/* The next stdout line (owned by p, valid until the next call), or NULL
 * on EOF or timeout. */
const char *proc_next(struct proc *p, int timeout_ms);
/* No stdout line for ms milliseconds. */
void proc_expect_quiet(struct proc *p, int ms);
/* Write one line (a newline is added) to its stdin. */
void proc_send(struct proc *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void proc_close_in(struct proc *p);
/* Wait for it to exit; its exit status, or -1 if killed by a signal. The
 * test fails if it does not exit in time. */
int proc_wait(struct proc *p, int timeout_ms);
/* Kill it if still running, close the pipes, free the buffers. */
void proc_free(struct proc *p);

/*
 * Run PATH ARGS... (NULL-terminated, stdin closed) and check that it is a
 * usage error: exit status 2, nothing on stdout, and on stderr one
 * sentence that starts with "PROG: " and then the line `try` (with its
 * newline).
 */
void proc_expect_usage(const char *path, const char *prog, const char *try,
		       const char *const *args);
/* The same for ivshmem-ctl, whose hint is "Try 'ivshmem-ctl [COMMAND
 * ]--help' for more information." (command NULL: none). */
void proc_expect_usage_error(const char *command, const char *const *args);
#define USAGE_ERROR(command, ...) \
	proc_expect_usage_error(command, (const char *const[]){ __VA_ARGS__, NULL })

/* The next line is exactly `want` (printf-style). */
#define EXPECT(p, ...) do { \
	char *w_ = g_strdup_printf(__VA_ARGS__); \
	const char *l_ = proc_next(p, TWAIT_MS); \
	ck_assert_msg(l_ && strcmp(l_, w_) == 0, \
		      "%s %ld: want '%s', got '%s' (stderr: %s)", \
		      (p)->name, (long)(p)->pid, w_, l_ ? l_ : "(nothing)", \
		      proc_stderr(p)); \
	g_free(w_); \
} while (0)

/* The next line starts with `want` (printf-style). */
#define EXPECT_PREFIX(p, ...) do { \
	char *w_ = g_strdup_printf(__VA_ARGS__); \
	const char *l_ = proc_next(p, TWAIT_MS); \
	ck_assert_msg(l_ && g_str_has_prefix(l_, w_), \
		      "%s %ld: want '%s...', got '%s' (stderr: %s)", \
		      (p)->name, (long)(p)->pid, w_, l_ ? l_ : "(nothing)", \
		      proc_stderr(p)); \
	g_free(w_); \
} while (0)

/* It exits with `status`. */
#define EXPECT_EXIT(p, status) do { \
	int st_ = proc_wait(p, TWAIT_MS); \
	ck_assert_msg(st_ == (status), \
		      "%s: exit status %d, want %d (stderr: %s)", \
		      (p)->name, st_, (status), proc_stderr(p)); \
} while (0)

#endif
