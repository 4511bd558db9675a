/* SPDX-License-Identifier: MIT */
/*
 * A child process on pipes (see tproc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "tproc.h"

const char *proc_ctl_path(void)
{
	const char *env = getenv("IVSHMEM_CTL");

	return env && *env ? env : IVSHMEM_CTL_PATH;
}

/* Run PATH ARGS... (NULL-terminated) with pipes on 0, 1 and 2. */
void proc_start(struct proc *p, const char *path,
		       const char *const *args)
{
	int in[2], out[2], err[2];
	size_t n = 0;
	const char **argv;

	while (args[n])
		n++;
	argv = g_new0(const char *, n + 2);
	argv[0] = path;
	memcpy(argv + 1, args, n * sizeof(*args));

	/* CLOEXEC: no other child may hold these ends, or closing stdin
	 * would not be seen as its end. */
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	g_free(argv);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	p->name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	p->in = in[1];
	p->out = out[0];
	p->err = err[0];
	fcntl(p->out, F_SETFL, O_NONBLOCK);
	fcntl(p->err, F_SETFL, O_NONBLOCK);
	p->buf = g_string_new(NULL);
	p->errbuf = g_string_new(NULL);
	p->eof = false;
	p->line = NULL;
}

static void drain(int fd, GString *dst, bool *eof)
{
	char b[4096];
	ssize_t n;

	while ((n = read(fd, b, sizeof(b))) > 0)
		g_string_append_len(dst, b, n);
	if (n == 0 && eof)
		*eof = true;
}

/* Its stderr so far. */
const char *proc_stderr(struct proc *p)
{
	drain(p->err, p->errbuf, NULL);
	return p->errbuf->str;
}

/* Its stdout not yet taken as lines (after it exited: all the rest). */
const char *proc_stdout_rest(struct proc *p)
{
	drain(p->out, p->buf, &p->eof);
	return p->buf->str;
}

/* The next stdout line (owned by p, valid until the next call), or NULL
 * on EOF or timeout. */
const char *proc_next(struct proc *p, int timeout_ms)
{
	double deadline = now_seconds() + timeout_ms / 1000.0;

	g_free(p->line);
	p->line = NULL;
	for (;;) {
		char *nl = memchr(p->buf->str, '\n', p->buf->len);

		if (nl) {
			p->line = g_strndup(p->buf->str,
					    (gsize)(nl - p->buf->str));
			g_string_erase(p->buf, 0, nl - p->buf->str + 1);
			return p->line;
		}
		if (p->eof)
			return NULL;

		int left_ms = (int)((deadline - now_seconds()) * 1000);
		struct pollfd pfd = { .fd = p->out, .events = POLLIN };

		/* With no time left, still look once at what is there. */
		if (poll(&pfd, 1, left_ms > 0 ? left_ms : 0) <= 0)
			return NULL;
		drain(p->out, p->buf, &p->eof);
	}
}

/* No stdout line for a while. */
void proc_expect_quiet(struct proc *p, int ms)
{
	const char *l = proc_next(p, ms);

	ck_assert_msg(!l, "%s %ld: unexpected '%s'", p->name, (long)p->pid, l);
}

void proc_send(struct proc *p, const char *fmt, ...)
{
	va_list ap;
	char *s;
	size_t off = 0, len;

	va_start(ap, fmt);
	s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	len = strlen(s);
	s = g_realloc(s, len + 2);
	s[len++] = '\n';
	while (off < len) {
		ssize_t n = write(p->in, s + off, len - off);

		ck_assert_msg(n > 0, "writing to %s: %s", p->name,
			      g_strerror(errno));
		off += (size_t)n;
	}
	g_free(s);
}

void proc_close_in(struct proc *p)
{
	if (p->in >= 0)
		close(p->in);
	p->in = -1;
}

/* Wait for it to exit; its exit status, or -1 if killed by a signal. The
 * test fails if it does not exit in time. */
int proc_wait(struct proc *p, int timeout_ms)
{
	double deadline = now_seconds() + timeout_ms / 1000.0;
	int status;

	while (waitpid(p->pid, &status, WNOHANG) != p->pid) {
		if (now_seconds() > deadline) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			p->pid = -1;
			ck_abort_msg("%s did not exit (stderr: %s)", p->name,
				     proc_stderr(p));
		}
		usleep(1000);
	}
	p->pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void proc_free(struct proc *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	proc_close_in(p);
	close(p->out);
	close(p->err);
	g_string_free(p->buf, TRUE);
	g_string_free(p->errbuf, TRUE);
	g_free(p->line);
	memset(p, 0, sizeof(*p));
}

void proc_expect_usage(const char *path, const char *prog, const char *try,
		       const char *const *args)
{
	char *args_s = g_strjoinv(" ", (char **)args);
	char *prefix = g_strdup_printf("%s: ", prog);
	struct proc c;
	const char *e, *nl;
	int st;

	proc_start(&c, path, args);
	proc_close_in(&c);
	st = proc_wait(&c, TWAIT_MS);
	e = proc_stderr(&c);
	nl = strchr(e, '\n');
	ck_assert_msg(st == 2, "%s %s: status %d, want 2 (stderr: %s)", prog,
		      args_s, st, e);
	ck_assert_msg(g_str_has_prefix(e, prefix) && nl &&
		      strcmp(nl + 1, try) == 0,
		      "%s %s: stderr: %s", prog, args_s, e);
	ck_assert_msg(proc_stdout_rest(&c)[0] == '\0', "%s %s: stdout: %s",
		      prog, args_s, proc_stdout_rest(&c));
	proc_free(&c);
	g_free(prefix);
	g_free(args_s);
}

void proc_expect_usage_error(const char *command, const char *const *args)
{
	char *try = g_strdup_printf("Try 'ivshmem-ctl %s%s--help' for more information.\n",
				    command ? command : "", command ? " " : "");

	proc_expect_usage(proc_ctl_path(), "ivshmem-ctl", try, args);
	g_free(try);
}
