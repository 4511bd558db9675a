/* SPDX-License-Identifier: MIT */
/*
 * systemd integration of ivshmem-server, with real processes: socket
 * activation (systemd-socket-activate passes the socket), readiness
 * (NOTIFY_SOCKET: a datagram socket of the test's own), logging to journald
 * (a journal socket of the test's own, seen by the server through a private
 * mount namespace) and the unit files (systemd-analyze verify).
 *
 * Built without libsystemd (-Dsystemd=disabled), the server refuses a
 * passed socket and warns about NOTIFY_SOCKET; the activation and
 * readiness tests are then replaced by tests of exactly that.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "tproc.h"

#define TCASE_TIMEOUT 120
#define SHM_SIZE 4194304

/* ---- cleanup after a failed test ------------------------------------ */

/*
 * Files the tests add to a tracked server's directory (notify and journal
 * sockets, sockets systemd-socket-activate made), removed last first before
 * the servers' own cleanup, in memory shared with the runner.
 */
#define MAX_EXTRA 64

static struct leftovers {
	unsigned n;
	char path[MAX_EXTRA][160];
} *left;

static void extra_add(const char *path)
{
	ck_assert_uint_lt(left->n, MAX_EXTRA);
	g_strlcpy(left->path[left->n++], path, sizeof(left->path[0]));
}

static void remove_leftovers(void)
{
	while (left->n > 0)
		remove(left->path[--left->n]);
	tserver_reap_tracked();
}

static struct tserver *srv_prepare(void)
{
	struct tserver *s = tserver_tracked();

	ck_assert_ptr_nonnull(s);
	tserver_prepare(s);
	return s;
}

/* ---- processes ---------------------------------------------------------- */

/*
 * Run argv with stderr on err (-1: appended to s->log) and stdin on
 * /dev/null; env lists NAME=VALUE to set and NAME to unset
 * (NULL-terminated, may be NULL). The pid is kept in s->pid.
 */
static pid_t spawn(struct tserver *s, const char *const *argv,
		   const char *const *env, int err)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = err >= 0 ? err :
			open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int devnull = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		for (size_t i = 0; env && env[i]; i++) {
			const char *eq = strchr(env[i], '=');

			if (!eq) {
				unsetenv(env[i]);
				continue;
			}
			char *name = g_strndup(env[i], (gsize)(eq - env[i]));

			setenv(name, eq + 1, 1);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	s->pid = pid;
	return pid;
}

/* Wait for the server to exit: its status (see proc_wait_exit). */
static int wait_exit(struct tserver *s)
{
	int r = proc_wait_exit(s->pid, TWAIT_MS);

	s->pid = -1;
	return r;
}

/* A connection to path ("@name": abstract), or -errno. */
static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = sizeof(sa);
	int fd, r = 0;

	ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
	if (path[0] == '@') {
		memcpy(sa.sun_path + 1, path + 1, strlen(path) - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				  strlen(path));
	} else {
		strcpy(sa.sun_path, path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Is a stream socket bound to path listening (or is it a socket of
 * another type)? /proc/net/unix says, without a connection (which would
 * make the activated server start, and join). */
static bool listening(const char *path)
{
	FILE *f = fopen("/proc/net/unix", "r");
	char line[512];
	bool found = false;

	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long flags;
		unsigned type;
		char *nl = strchr(line, '\n'), *sp = strrchr(line, ' ');

		if (nl)
			*nl = '\0';
		/* Num RefCount Protocol Flags Type St Inode Path;
		 * __SO_ACCEPTCON (0x10000): listen() was called. */
		if (sp && strcmp(sp + 1, path) == 0 &&
		    sscanf(line, "%*s %*s %*s %lx %x", &flags, &type) == 2 &&
		    (type != SOCK_STREAM || (flags & 0x10000)))
			found = true;
	}
	fclose(f);
	return found;
}

/* Wait until a socket file is at path and listening
 * (systemd-socket-activate binds it, then listens). */
static void wait_socket_file(const char *path)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;
	struct stat st;

	while (!(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		 listening(path))) {
		ck_assert_msg(now_seconds() < deadline,
			      "no socket listening at %s", path);
		usleep(2000);
	}
}

/* Connect to the socket systemd-socket-activate holds at path, which
 * starts the server: it must exit 1. */
static void expect_start_failure(struct tserver *s, const char *path)
{
	int fd;

	wait_socket_file(path);
	fd = raw_connect(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(wait_exit(s), 1);
	close(fd);
}

#if HAVE_LIBSYSTEMD
static ino_t inode_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	return st.st_ino;
}
#endif

/* ---- a notify socket ------------------------------------------------- */

struct notify {
	int fd;
	char path[128];
	char env[160];          /* NOTIFY_SOCKET=path */
};

static void notify_open(struct notify *n, const struct tserver *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int one = 1;

	snprintf(n->path, sizeof(n->path), "%s/notify", s->dir);
	snprintf(n->env, sizeof(n->env), "NOTIFY_SOCKET=%s", n->path);
	strcpy(sa.sun_path, n->path);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(n->fd, 0);
	ck_assert_int_eq(bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	extra_add(n->path);
	/* The sender's pid comes with each datagram. */
	ck_assert_int_eq(setsockopt(n->fd, SOL_SOCKET, SO_PASSCRED, &one,
				    sizeof(one)), 0);
}

static void notify_close(struct notify *n)
{
	close(n->fd);
	unlink(n->path);
}

/* The next datagram (g_free it) and its sender's pid, or NULL when none
 * comes within timeout_ms. */
static char *dgram_recv(int fd, int timeout_ms, pid_t *pid)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[8192];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(struct ucred))];
	} c;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = &c, .msg_controllen = sizeof(c),
	};
	ssize_t len;
	int r;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	ck_assert_int_ge(r, 0);
	if (r == 0)
		return NULL;
	len = recvmsg(fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	ck_assert_int_ge(len, 0);
	buf[len] = '\0';
	if (pid)
		*pid = -1;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h;
	     h = CMSG_NXTHDR(&m, h))
		if (pid && h->cmsg_level == SOL_SOCKET &&
		    h->cmsg_type == SCM_CREDENTIALS) {
			struct ucred u;

			memcpy(&u, CMSG_DATA(h), sizeof(u));
			*pid = u.pid;
		}
	return g_strndup(buf, (gsize)len);
}

/* The value of KEY=value among msg's lines (g_free it), or NULL. */
static char *field(const char *msg, const char *key)
{
	char **lines = g_strsplit(msg, "\n", -1);
	size_t kl = strlen(key);
	char *v = NULL;

	for (char **l = lines; *l && !v; l++)
		if (strncmp(*l, key, kl) == 0 && (*l)[kl] == '=')
			v = g_strdup(*l + kl + 1);
	g_strfreev(lines);
	return v;
}

static bool has_line(const char *msg, const char *line)
{
	char **lines = g_strsplit(msg, "\n", -1);
	bool found = false;

	for (char **l = lines; *l; l++)
		found |= strcmp(*l, line) == 0;
	g_strfreev(lines);
	return found;
}

#if HAVE_LIBSYSTEMD
/* The next notification: it comes from pid and has the line `want`. */
static char *notify_expect(struct notify *n, pid_t pid, const char *want)
{
	pid_t from;
	char *msg = dgram_recv(n->fd, TWAIT_MS, &from);

	ck_assert_msg(msg, "no notification (want %s)", want);
	ck_assert_msg(has_line(msg, want), "want %s, got '%s'", want, msg);
	ck_assert_msg(from == pid, "'%s' from pid %ld, not the server's %ld",
		      msg, (long)from, (long)pid);
	return msg;
}

/*
 * After a failed start: the server sent no READY=1, at most a STATUS= that
 * says it failed, with `why` in it.
 */
static void notify_expect_failed(struct notify *n, const char *why)
{
	char *msg, *status;
	unsigned nstatus = 0;

	while ((msg = dgram_recv(n->fd, 200, NULL))) {
		ck_assert_msg(!has_line(msg, "READY=1"),
			      "READY=1 from a server that failed: '%s'", msg);
		status = field(msg, "STATUS");
		ck_assert_msg(status && g_str_has_prefix(status,
							 "Failed to start: ") &&
			      strstr(status, why),
			      "want STATUS=Failed to start: ...%s..., got '%s'",
			      why, msg);
		nstatus++;
		g_free(status);
		g_free(msg);
	}
	ck_assert_uint_eq(nstatus, 1);
}
#endif

/* ---- ivshmem-ctl ------------------------------------------------------ */

#if HAVE_LIBSYSTEMD

/* `ivshmem-ctl info -S sock` (or -C ctl when not NULL): it exits 0; the
 * value of its line `key` (g_free it). */
static char *ctl_info(const char *sock, const char *ctl, const char *key)
{
	struct proc c;
	const char *l;
	char *v = NULL;
	size_t kl = strlen(key);

	proc_start(&c, proc_ctl_path(),
		   (const char *const[]){ "info", ctl ? "-C" : "-S",
					  ctl ? ctl : sock, NULL });
	while ((l = proc_next(&c, TWAIT_MS)))
		if (!v && strncmp(l, key, kl) == 0 && l[kl] == ' ')
			v = g_strdup(g_strchug((char *)l + kl));
	EXPECT_EXIT(&c, 0);
	proc_free(&c);
	ck_assert_msg(v, "no '%s' line from ivshmem-ctl info", key);
	return v;
}

#define CHECK_INFO(sock, ctl, key, ...) do { \
	char *w_ = g_strdup_printf(__VA_ARGS__), *v_ = ctl_info(sock, ctl, key); \
	ck_assert_msg(strcmp(v_, w_) == 0, "ivshmem-ctl info: %s '%s', want '%s'", \
		      key, v_, w_); \
	g_free(w_); \
	g_free(v_); \
} while (0)
#endif

/* ---- socket activation ------------------------------------------------ */

static bool have_socket_activate(void)
{
	if (*SOCKET_ACTIVATE_PATH && access(SOCKET_ACTIVATE_PATH, X_OK) == 0)
		return true;
	printf("SKIP: systemd-socket-activate is not installed (apt-get install systemd): no socket activation test\n");
	return false;
}

/*
 * Start `systemd-socket-activate -l SOCK [-l EXTRA] [--datagram]
 * -E NOTIFY_SOCKET=... ivshmem-server -F -M SHM ARGS...`: it binds SOCK
 * and execs the server (same pid) on the first connection.
 */
static void start_activated(struct tserver *s, struct notify *n,
			    const char *listen, const char *extra,
			    bool datagram, const char *const *args)
{
	GPtrArray *a = g_ptr_array_new();

	g_ptr_array_add(a, (char *)SOCKET_ACTIVATE_PATH);
	if (datagram)
		g_ptr_array_add(a, (char *)"--datagram");
	g_ptr_array_add(a, (char *)"-l");
	g_ptr_array_add(a, (char *)listen);
	if (extra) {
		g_ptr_array_add(a, (char *)"-l");
		g_ptr_array_add(a, (char *)extra);
	}
	if (n) {
		g_ptr_array_add(a, (char *)"-E");
		g_ptr_array_add(a, n->env);
	}
	g_ptr_array_add(a, (char *)server_path());
	g_ptr_array_add(a, (char *)"-F");
	g_ptr_array_add(a, (char *)"-M");
	g_ptr_array_add(a, s->shm_name);
	for (size_t i = 0; args && args[i]; i++)
		g_ptr_array_add(a, (char *)args[i]);
	g_ptr_array_add(a, NULL);
	spawn(s, (const char *const *)a->pdata, NULL, -1);
	g_ptr_array_free(a, TRUE);
}

#if HAVE_LIBSYSTEMD

/*
 * The server serves the socket it was given: a peer's connection starts
 * it and gets the greeting, others join, ivshmem-ctl finds it at the
 * socket's path + .ctl. At exit the socket file stays (systemd's, the same
 * inode), the control socket and the shm object go.
 */
START_TEST(test_activation_serves)
{
	struct tserver *s = srv_prepare();
	struct notify n;
	struct tpeer a, b;
	char ctl[160], *msg, *want;
	ino_t ino;
	pid_t pid;

	if (!have_socket_activate())
		return;
	notify_open(&n, s);
	start_activated(s, &n, s->sock, NULL, false,
			(const char *const[]){ "-v", "-n", "2", NULL });
	wait_socket_file(s->sock);
	ino = inode_of(s->sock);
	snprintf(ctl, sizeof(ctl), "%s.ctl", s->sock);

	/* This connection starts the server. */
	tpeer_join_ok(&a, s->sock, 2, false);
	ck_assert_uint_eq(a.shm_size, SHM_SIZE);
	msg = notify_expect(&n, s->pid, "READY=1");
	want = g_strdup_printf("STATUS=Serving %s: POSIX shm %s, %d bytes, 2 vectors; control socket %s",
			       s->sock, s->shm_name, SHM_SIZE, ctl);
	ck_assert_msg(has_line(msg, want), "want %s, got '%s'", want, msg);
	g_free(want);
	g_free(msg);

	tpeer_join_ok(&b, s->sock, 2, false);
	tpeer_wait_peers_ok(&a, 1);
	CHECK_INFO(s->sock, NULL, "socket", "%s", s->sock);
	CHECK_INFO(s->sock, NULL, "control", "%s", ctl);
	CHECK_INFO(s->sock, NULL, "pid", "%ld", (long)s->pid);
	CHECK_INFO(s->sock, NULL, "peers", "2");
	tserver_expect_log(s, "ivshmem-server: listening on ");
	tserver_expect_log(s, s->sock);
	tpeer_close(&a);
	tpeer_close(&b);

	pid = s->pid;
	tserver_term_ok(s);
	msg = notify_expect(&n, pid, "STOPPING=1");
	g_free(msg);
	ck_assert_msg(path_exists(s->sock),
		      "the server removed systemd's socket");
	ck_assert_msg(inode_of(s->sock) == ino,
		      "the server replaced systemd's socket");
	ck_assert_msg(!path_exists(ctl), "control socket %s left", ctl);
	ck_assert_msg(!shm_exists(s->shm_name), "shm object left");
	notify_close(&n);
	tserver_cleanup(s);
}
END_TEST

/*
 * A -S other than the passed socket is not created; the default control
 * socket follows the passed socket, an explicit --control stays.
 */
START_TEST(test_activation_paths)
{
	struct tserver *s = srv_prepare();
	char other[160], other_ctl[170], ctl[160], *msg;
	struct notify n;
	struct tpeer p;
	pid_t pid;

	if (!have_socket_activate())
		return;
	notify_open(&n, s);
	snprintf(other, sizeof(other), "%s/other", s->dir);
	snprintf(other_ctl, sizeof(other_ctl), "%s.ctl", other);
	snprintf(ctl, sizeof(ctl), "%s.ctl", s->sock);
	start_activated(s, &n, s->sock, NULL, false,
			(const char *const[]){ "-S", other, NULL });
	wait_socket_file(s->sock);
	tpeer_join_ok(&p, s->sock, 1, false);
	g_free(notify_expect(&n, s->pid, "READY=1"));
	CHECK_INFO(s->sock, NULL, "socket", "%s", s->sock);
	CHECK_INFO(s->sock, NULL, "control", "%s", ctl);
	ck_assert(!path_exists(other));
	ck_assert(!path_exists(other_ctl));
	msg = g_strdup_printf("ivshmem-server: serving the socket systemd passed, %s, instead of %s (-S)\n",
			      s->sock, other);
	tserver_expect_log(s, msg);
	g_free(msg);
	tpeer_close(&p);
	pid = s->pid;
	tserver_term_ok(s);
	g_free(notify_expect(&n, pid, "STOPPING=1"));
	ck_assert(path_exists(s->sock));
	ck_assert(!path_exists(ctl));
	unlink(s->sock);
	unlink(s->log);

	/* --control elsewhere: kept. */
	snprintf(ctl, sizeof(ctl), "%s/elsewhere.ctl", s->dir);
	extra_add(ctl);
	start_activated(s, &n, s->sock, NULL, false,
			(const char *const[]){ "--control", ctl, NULL });
	wait_socket_file(s->sock);
	tpeer_join_ok(&p, s->sock, 1, false);
	g_free(notify_expect(&n, s->pid, "READY=1"));
	CHECK_INFO(s->sock, ctl, "control", "%s", ctl);
	CHECK_INFO(s->sock, ctl, "socket", "%s", s->sock);
	tpeer_close(&p);
	pid = s->pid;
	tserver_term_ok(s);
	g_free(notify_expect(&n, pid, "STOPPING=1"));
	ck_assert(path_exists(s->sock));
	ck_assert(!path_exists(ctl));
	notify_close(&n);
	tserver_cleanup(s);
}
END_TEST

/*
 * A passed socket that is not one listening UNIX stream socket bound to a
 * path is refused: exit 1, one sentence, no READY=1; the socket file stays.
 */
START_TEST(test_activation_refused)
{
	struct tserver *s = srv_prepare();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char second[160], abstract[80];
	struct notify n;
	int fd;

	if (!have_socket_activate())
		return;
	notify_open(&n, s);

	/* A datagram socket: a datagram starts the server. */
	start_activated(s, &n, s->sock, NULL, true, NULL);
	extra_add(s->sock);
	wait_socket_file(s->sock);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	strcpy(sa.sun_path, s->sock);
	ck_assert_int_eq(sendto(fd, "x", 1, 0, (struct sockaddr *)&sa,
				sizeof(sa)), 1);
	close(fd);
	ck_assert_int_eq(wait_exit(s), 1);
	tserver_expect_log(s, "ivshmem-server: the socket systemd passed (fd 3) is not a listening UNIX stream socket: give its .socket unit ListenStream= with a path (not Accept=yes)\n");
	notify_expect_failed(&n, "is not a listening UNIX stream socket");
	ck_assert(path_exists(s->sock));
	unlink(s->sock);

	/* Two sockets. */
	snprintf(second, sizeof(second), "%s/second", s->dir);
	extra_add(second);
	start_activated(s, &n, s->sock, second, false, NULL);
	wait_socket_file(second);
	expect_start_failure(s, s->sock);
	tserver_expect_log(s, "ivshmem-server: systemd passed 2 sockets, and ivshmem-server serves one: give its .socket unit a single ListenStream= with a path\n");
	notify_expect_failed(&n, "2 sockets");
	ck_assert(path_exists(s->sock));
	ck_assert(path_exists(second));
	unlink(s->sock);
	unlink(second);

	/* An abstract socket: no path for the control socket to follow. */
	snprintf(abstract, sizeof(abstract), "@%s", s->shm_name);
	start_activated(s, &n, abstract, NULL, false, NULL);
	for (double end = now_seconds() + TWAIT_MS / 1000.0;
	     (fd = raw_connect(abstract)) < 0; usleep(2000))
		ck_assert_msg(now_seconds() < end, "no socket at %s: %s",
			      abstract, g_strerror(-fd));
	ck_assert_int_eq(wait_exit(s), 1);
	close(fd);
	tserver_expect_log(s, "ivshmem-server: the socket systemd passed (fd 3) is not bound to a path (abstract or unnamed): give its .socket unit ListenStream= with a path\n");
	notify_expect_failed(&n, "not bound to a path");

	notify_close(&n);
	tserver_cleanup(s);
}
END_TEST

/*
 * A start-up failure after the socket was taken (the shm object has
 * another size) leaves systemd's socket, removes the control socket the
 * server made, never says READY=1.
 */
START_TEST(test_activation_startup_failure)
{
	struct tserver *s = srv_prepare();
	char name[80], ctl[160];
	struct notify n;
	int shm;

	if (!have_socket_activate())
		return;
	notify_open(&n, s);
	snprintf(name, sizeof(name), "/%s", s->shm_name);
	snprintf(ctl, sizeof(ctl), "%s.ctl", s->sock);
	shm = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(shm, 0);
	ck_assert_int_eq(ftruncate(shm, 1 << 20), 0);
	close(shm);

	start_activated(s, &n, s->sock, NULL, false, NULL);
	extra_add(s->sock);
	expect_start_failure(s, s->sock);
	tserver_expect_log(s, "already exists with a size other than");
	notify_expect_failed(&n, "already exists with a size other than");
	ck_assert(path_exists(s->sock));
	ck_assert(!path_exists(ctl));
	ck_assert(shm_exists(s->shm_name));
	notify_close(&n);
	tserver_cleanup(s);
}
END_TEST

/*
 * Access control under activation: --socket-mode (which cannot apply to
 * systemd's socket) makes the server refuse to start, and --allow-uid is
 * checked on the passed socket as on its own: root, not listed, gets EOF
 * with nothing.
 */
START_TEST(test_activation_access)
{
	struct tserver *s = srv_prepare();
	char buf[8];
	int fd;

	if (!have_socket_activate())
		return;
	start_activated(s, NULL, s->sock, NULL, false,
			(const char *const[]){ "--socket-mode", "0600", NULL });
	extra_add(s->sock);
	expect_start_failure(s, s->sock);
	tserver_expect_log(s, "cannot apply to the socket systemd passed");
	tserver_cleanup(s);

	s = srv_prepare();
	start_activated(s, NULL, s->sock, NULL, false,
			(const char *const[]){ "--allow-uid", "4242", NULL });
	extra_add(s->sock);
	wait_socket_file(s->sock);
	fd = raw_connect(s->sock);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	tserver_expect_log(s, "neither its uid nor its gid is allowed");
	tserver_term_ok(s);
	tserver_cleanup(s);
}
END_TEST

/* ---- readiness -------------------------------------------------------- */

/* Start `ivshmem-server -F -S SOCK -M SHM ARGS...` with NOTIFY_SOCKET. */
static void start_notifying(struct tserver *s, struct notify *n,
			    const char *const *args)
{
	GPtrArray *a = g_ptr_array_new();

	g_ptr_array_add(a, (char *)server_path());
	g_ptr_array_add(a, (char *)"-F");
	g_ptr_array_add(a, (char *)"-S");
	g_ptr_array_add(a, s->sock);
	g_ptr_array_add(a, (char *)"-M");
	g_ptr_array_add(a, s->shm_name);
	for (size_t i = 0; args && args[i]; i++)
		g_ptr_array_add(a, (char *)args[i]);
	g_ptr_array_add(a, NULL);
	spawn(s, (const char *const *)a->pdata,
	      (const char *const[]){ n->env, NULL }, -1);
	g_ptr_array_free(a, TRUE);
}

/*
 * READY=1 comes first and once both sockets accept connections: a connect
 * right after it succeeds (no retry); with MAINPID and a STATUS that says
 * what is served. STOPPING=1 on SIGTERM.
 */
START_TEST(test_notify_ready)
{
	struct tserver *s = srv_prepare();
	char ctl[160], *msg, *v, *want;
	struct notify n;
	struct tpeer p;
	pid_t pid;
	int fd;

	notify_open(&n, s);
	snprintf(ctl, sizeof(ctl), "%s.ctl", s->sock);
	start_notifying(s, &n, NULL);
	msg = notify_expect(&n, s->pid, "READY=1");
	fd = raw_connect(s->sock);
	ck_assert_msg(fd >= 0, "connect right after READY=1: %s",
		      g_strerror(-fd));
	close(fd);
	fd = raw_connect(ctl);
	ck_assert_msg(fd >= 0, "control connect right after READY=1: %s",
		      g_strerror(-fd));
	close(fd);
	v = field(msg, "MAINPID");
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(atol(v), s->pid);
	g_free(v);
	want = g_strdup_printf("Serving %s: POSIX shm %s, %d bytes, 1 vector; control socket %s",
			       s->sock, s->shm_name, SHM_SIZE, ctl);
	v = field(msg, "STATUS");
	ck_assert_msg(v && strcmp(v, want) == 0, "STATUS '%s', want '%s'", v,
		      want);
	g_free(v);
	g_free(want);
	g_free(msg);

	tpeer_join_ok(&p, s->sock, 1, false);
	tpeer_close(&p);
	/* Nothing else until it stops. */
	msg = dgram_recv(n.fd, 200, NULL);
	ck_assert_msg(!msg, "unexpected notification '%s'", msg);
	pid = s->pid;
	/* Not tserver_stop_ok(): its dir still holds the notify socket. */
	ck_assert_int_eq(tserver_stop(s), 0);
	msg = notify_expect(&n, pid, "STOPPING=1");
	g_free(msg);
	notify_close(&n);
	tserver_cleanup(s);
}
END_TEST

/* The STATUS of other kinds of shared memory, without a control socket. */
START_TEST(test_notify_status)
{
	struct tserver *s = srv_prepare();
	struct notify n;
	char *msg, *v, *want;

	notify_open(&n, s);
	start_notifying(s, &n, (const char *const[]){ "--memfd", "-n", "3",
						      "-l", "1M",
						      "--no-control", NULL });
	msg = notify_expect(&n, s->pid, "READY=1");
	want = g_strdup_printf("Serving %s: sealed memfd, 1048576 bytes, 3 vectors",
			       s->sock);
	v = field(msg, "STATUS");
	ck_assert_msg(v && strcmp(v, want) == 0, "STATUS '%s', want '%s'", v,
		      want);
	g_free(v);
	g_free(want);
	g_free(msg);
	/* Not tserver_stop_ok(): its dir still holds the notify socket. */
	ck_assert_int_eq(tserver_stop(s), 0);
	notify_close(&n);
	tserver_cleanup(s);
}
END_TEST

/* A server that fails to start says no READY=1, only why in STATUS. */
START_TEST(test_notify_failure)
{
	struct tserver *s = srv_prepare();
	struct tserver *other;
	char name[80];
	struct notify n;
	int shm;

	notify_open(&n, s);

	/* The socket path is in use. */
	other = tserver_start_tracked(NULL);
	ck_assert_ptr_nonnull(other);
	start_notifying(s, &n, (const char *const[]){ "-S", other->sock,
						      NULL });
	ck_assert_int_eq(wait_exit(s), 1);
	notify_expect_failed(&n, "another server is already listening on");
	tserver_stop_ok(other);

	/* The shm object exists with another size. */
	snprintf(name, sizeof(name), "/%s", s->shm_name);
	shm = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(shm, 0);
	ck_assert_int_eq(ftruncate(shm, 1 << 20), 0);
	close(shm);
	start_notifying(s, &n, NULL);
	ck_assert_int_eq(wait_exit(s), 1);
	notify_expect_failed(&n, "already exists with a size other than");
	ck_assert(!path_exists(s->sock));
	ck_assert(shm_exists(s->shm_name));
	notify_close(&n);
	tserver_cleanup(s);
}
END_TEST

#else /* !HAVE_LIBSYSTEMD */

/* Without libsystemd, a passed socket is refused with a clear sentence
 * (and left alone). */
START_TEST(test_no_libsystemd_activation)
{
	struct tserver *s = srv_prepare();

	if (!have_socket_activate())
		return;
	start_activated(s, NULL, s->sock, NULL, false, NULL);
	extra_add(s->sock);
	expect_start_failure(s, s->sock);
	tserver_expect_log(s, "ivshmem-server: started with a socket from systemd (LISTEN_FDS), but this ivshmem-server was built without libsystemd: rebuild it with -Dsystemd=enabled, or start ivshmem-server.service without its .socket unit\n");
	ck_assert(path_exists(s->sock));
	tserver_cleanup(s);
}
END_TEST

/* Without libsystemd, NOTIFY_SOCKET draws a warning, no datagram; the
 * server serves as usual. */
START_TEST(test_no_libsystemd_notify)
{
	struct tserver *s = srv_prepare();
	struct notify n;
	struct tpeer p;
	char *msg;

	notify_open(&n, s);
	spawn(s, (const char *const[]){ server_path(), "-F", "-S", s->sock,
					"-M", s->shm_name, NULL },
	      (const char *const[]){ n.env, NULL }, -1);
	tserver_expect_log(s, "ivshmem-server: NOTIFY_SOCKET is set, but this ivshmem-server was built without libsystemd and cannot say it is ready: rebuild it with -Dsystemd=enabled, or run it as Type=simple\n");
	tpeer_join_ok(&p, s->sock, 1, false);
	tpeer_close(&p);
	msg = dgram_recv(n.fd, 500, NULL);
	ck_assert_msg(!msg, "notification '%s' without libsystemd", msg);
	tserver_term_ok(s);
	notify_close(&n);
	tserver_cleanup(s);
}
END_TEST

#endif

/* ---- logging ---------------------------------------------------------- */

/*
 * Without JOURNAL_STREAM, the messages go to stderr as they always did.
 */
START_TEST(test_log_stderr)
{
	struct tserver *s = srv_prepare();
	char *log, *want, **lines;
	struct tpeer p;

	unsetenv("JOURNAL_STREAM");
	spawn(s, (const char *const[]){ server_path(), "-F", "-v", "-S",
					s->sock, "-M", s->shm_name, NULL },
	      NULL, -1);
	tserver_expect_log(s, "ivshmem-server: control socket");
	tpeer_join_ok(&p, s->sock, 1, false);
	tpeer_close(&p);
	tserver_expect_log(s, "closed its connection, 0 peers\n");
	tserver_term_ok(s);

	log = tserver_log(s);
	lines = g_strsplit(log, "\n", -1);
	ck_assert_msg(g_strv_length(lines) == 8 && !*lines[7], "%s", log);
	want = g_strdup_printf("ivshmem-server: listening on %s (POSIX shm %s, %d bytes, 1 vector)",
			       s->sock, s->shm_name, SHM_SIZE);
	ck_assert_str_eq(lines[0], want);
	g_free(want);
	ck_assert_str_eq(lines[1], "ivshmem-server: attach QEMU with:");
	want = g_strdup_printf("  -chardev socket,path=%s,id=ivshmem0 -device ivshmem-doorbell,chardev=ivshmem0,vectors=1",
			       s->sock);
	ck_assert_str_eq(lines[2], want);
	g_free(want);
	want = g_strdup_printf("ivshmem-server: control socket %s.ctl (mode 0600; ivshmem-ctl uses it)",
			       s->sock);
	ck_assert_str_eq(lines[3], want);
	g_free(want);
	want = g_strdup_printf("ivshmem-server: peer 0 connected (pid %ld, uid %ld",
			       (long)getpid(), (long)getuid());
	ck_assert_msg(g_str_has_prefix(lines[4], want), "%s", lines[4]);
	g_free(want);
	want = g_strdup_printf("ivshmem-server: peer 0 disconnected (pid %ld, uid %ld",
			       (long)getpid(), (long)getuid());
	ck_assert_msg(g_str_has_prefix(lines[5], want), "%s", lines[5]);
	g_free(want);
	ck_assert_str_eq(lines[6], "ivshmem-server: signal 15: exiting");
	g_strfreev(lines);
	g_free(log);
	tserver_cleanup(s);
}
END_TEST

/*
 * A journal of the test's own. The test process takes a private mount
 * namespace with DIR/run-systemd over /run/systemd, binds journald's
 * sockets there (/run/systemd/journal/socket for records,
 * /run/systemd/journal/stdout for streams) and starts the server with its
 * stderr on a stream, as systemd starts a service with
 * StandardError=journal. GLib recognises the stream by its peer's path
 * (or JOURNAL_STREAM, which is set too, in newer versions).
 */
struct journal {
	int records;            /* -1: no journald to reach */
	int in;                 /* our end of the server's stderr stream */
	int out;                /* its end, -1 once the server has it */
	GString *text;          /* read from in */
	char env[64];           /* JOURNAL_STREAM=dev:ino of out */
};

static int bind_unix(int type, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		      "bind %s: %s", path, g_strerror(errno));
	return fd;
}

/* A fresh stream to /run/systemd/journal/stdout for the next server. */
static void journal_stream(struct journal *j)
{
	struct stat st;
	int listener;

	unlink("/run/systemd/journal/stdout");
	listener = bind_unix(SOCK_STREAM, "/run/systemd/journal/stdout");
	ck_assert_int_eq(listen(listener, 1), 0);
	j->out = raw_connect("/run/systemd/journal/stdout");
	ck_assert_int_ge(j->out, 0);
	j->in = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	ck_assert_int_ge(j->in, 0);
	close(listener);
	ck_assert_int_eq(fstat(j->out, &st), 0);
	snprintf(j->env, sizeof(j->env), "JOURNAL_STREAM=%lu:%lu",
		 (unsigned long)st.st_dev, (unsigned long)st.st_ino);
}

/* false (with a note) when this machine gives the test no private
 * /run/systemd. */
static bool journal_open(struct journal *j, struct tserver *s,
			 bool reachable)
{
	char run[160], path[200];

	memset(j, 0, sizeof(*j));
	j->records = j->in = j->out = -1;
	snprintf(run, sizeof(run), "%s/run-systemd", s->dir);
	ck_assert_int_eq(mkdir(run, 0700), 0);
	extra_add(run);
	snprintf(path, sizeof(path), "%s/journal", run);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	extra_add(path);
	if (!path_exists("/run/systemd") || unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(run, "/run/systemd", NULL, MS_BIND, NULL) < 0) {
		printf("SKIP: no private /run/systemd for the test here (%s): journald not tested\n",
		       g_strerror(errno));
		return false;
	}

	if (reachable) {
		j->records = bind_unix(SOCK_DGRAM,
				       "/run/systemd/journal/socket");
		snprintf(path, sizeof(path), "%s/journal/socket", run);
		extra_add(path);
	}
	snprintf(path, sizeof(path), "%s/journal/stdout", run);
	extra_add(path);
	journal_stream(j);
	j->text = g_string_new(NULL);
	return true;
}

/* Start the server with its stderr on the stream. */
static void journal_spawn(struct journal *j, struct tserver *s,
			  const char *const *argv)
{
	ck_assert_int_ge(j->out, 0);
	spawn(s, argv, (const char *const[]){ j->env, NULL }, j->out);
	close(j->out);
	j->out = -1;
}

/* What the server wrote to stderr so far. */
static const char *journal_stderr(struct journal *j)
{
	char b[4096];
	ssize_t n;

	while ((n = read(j->in, b, sizeof(b))) > 0)
		g_string_append_len(j->text, b, n);
	return j->text->str;
}

static void journal_expect_stderr(struct journal *j, const char *needle)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;

	while (!strstr(journal_stderr(j), needle)) {
		ck_assert_msg(now_seconds() < deadline,
			      "want '%s' on stderr, got: %s", needle,
			      j->text->str);
		usleep(5000);
	}
}

/* Back to a fresh stream for the next server. */
static void journal_reset(struct journal *j)
{
	close(j->in);
	journal_stream(j);
	g_string_truncate(j->text, 0);
}

static void journal_close(struct journal *j)
{
	if (j->records >= 0)
		close(j->records);
	if (j->out >= 0)
		close(j->out);
	close(j->in);
	g_string_free(j->text, TRUE);
	unlink("/run/systemd/journal/socket");
	unlink("/run/systemd/journal/stdout");
}

/* The next journal record with MESSAGE starting with `msg`: it has
 * PRIORITY=prio and SYSLOG_IDENTIFIER=ivshmem-server. Records before it
 * are skipped. */
static void journal_expect(struct journal *j, const char *msg, int prio)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;
	char want_prio[4];

	snprintf(want_prio, sizeof(want_prio), "%d", prio);
	for (;;) {
		int left_ms = (int)((deadline - now_seconds()) * 1000);
		char *rec = dgram_recv(j->records, left_ms > 0 ? left_ms : 0,
				       NULL);
		char *m, *p, *id;

		ck_assert_msg(rec, "no journal record '%s...' (stderr: %s)",
			      msg, journal_stderr(j));
		m = field(rec, "MESSAGE");
		if (!m || !g_str_has_prefix(m, msg)) {
			g_free(m);
			g_free(rec);
			continue;
		}
		p = field(rec, "PRIORITY");
		id = field(rec, "SYSLOG_IDENTIFIER");
		ck_assert_msg(p && strcmp(p, want_prio) == 0 && id &&
			      strcmp(id, "ivshmem-server") == 0,
			      "journal record '%s': want PRIORITY=%d and SYSLOG_IDENTIFIER=ivshmem-server",
			      rec, prio);
		g_free(p);
		g_free(id);
		g_free(m);
		g_free(rec);
		return;
	}
}

/*
 * Under journald, messages go to it with their priorities (error 3,
 * notice 5, info 6; -v still decides about info), not to stderr; the
 * start-up lines stay on stderr (the journal takes them from the stream).
 */
START_TEST(test_log_journald)
{
	struct tserver *s = srv_prepare();
	char notsock[200], *msg;
	const char *err;
	struct journal j;
	struct tpeer p;

	if (!journal_open(&j, s, true))
		return;
	journal_spawn(&j, s, (const char *const[]){ server_path(), "-F", "-v",
						    "-l", "3M", "-S", s->sock,
						    "-M", s->shm_name, NULL });
	journal_expect_stderr(&j, "ivshmem-server: control socket");
	journal_expect(&j, "shared memory size 3145728 rounded up to 4194304", 5);
	tpeer_join_ok(&p, s->sock, 1, false);
	journal_expect(&j, "peer 0 connected (pid ", 6);
	tpeer_close(&p);
	journal_expect(&j, "peer 0 disconnected (pid ", 6);
	tserver_term_ok(s);
	journal_expect(&j, "signal 15: exiting", 6);
	err = journal_stderr(&j);
	ck_assert_msg(g_str_has_prefix(err, "ivshmem-server: listening on ") &&
		      !strstr(err, "peer 0") && !strstr(err, "rounded up") &&
		      !strstr(err, "signal 15"),
		      "stderr: %s", err);

	/* An error: priority 3. */
	journal_reset(&j);
	snprintf(notsock, sizeof(notsock), "%s/notsock", s->dir);
	ck_assert(g_file_set_contents(notsock, "", 0, NULL));
	extra_add(notsock);
	journal_spawn(&j, s, (const char *const[]){ server_path(), "-F", "-S",
						    notsock, "-M", s->shm_name,
						    NULL });
	ck_assert_int_eq(wait_exit(s), 1);
	msg = g_strdup_printf("%s exists and is not a socket", notsock);
	journal_expect(&j, msg, 3);
	ck_assert_msg(!strstr(journal_stderr(&j), msg), "stderr: %s",
		      j.text->str);
	g_free(msg);
	unlink(notsock);
	journal_close(&j);
	tserver_cleanup(s);
}
END_TEST

/* With stderr on a journal stream but no journald to take records, the
 * messages go to stderr as they always did. */
START_TEST(test_log_journald_unreachable)
{
	struct tserver *s = srv_prepare();
	struct journal j;
	struct tpeer p;

	if (!journal_open(&j, s, false))
		return;
	journal_spawn(&j, s, (const char *const[]){ server_path(), "-F", "-v",
						    "-S", s->sock, "-M",
						    s->shm_name, NULL });
	journal_expect_stderr(&j, "ivshmem-server: control socket");
	tpeer_join_ok(&p, s->sock, 1, false);
	tpeer_close(&p);
	journal_expect_stderr(&j, "ivshmem-server: peer 0 connected (pid ");
	journal_expect_stderr(&j, "closed its connection, 0 peers\n");
	tserver_term_ok(s);
	journal_expect_stderr(&j, "ivshmem-server: signal 15: exiting\n");
	journal_close(&j);
	tserver_cleanup(s);
}
END_TEST

/* ---- the unit files --------------------------------------------------- */

/*
 * The units agree (the service's -S is the socket's ListenStream=, which
 * the server then serves without a notice) and systemd-analyze verify
 * finds nothing to say about them (with ExecStart pointing at the built
 * server, as the installed one is not there yet).
 */
START_TEST(test_units_verify)
{
	char *service, *socket, *exec, *listen, *want, *dir, *path, *text;
	char *service_copy, *socket_copy, **lines, *out = NULL, *err = NULL;
	const char *stamp = "/run/systemd/systemd-units-load";
	bool had_stamp = path_exists(stamp);
	GError *error = NULL;
	int status;
	bool ok;

	if (!*UNIT_DIR) {
		printf("SKIP: built without libsystemd: no unit files to verify\n");
		return;
	}
	path = g_build_filename(UNIT_DIR, "ivshmem-server.service", NULL);
	ck_assert(g_file_get_contents(path, &service, NULL, NULL));
	g_free(path);
	path = g_build_filename(UNIT_DIR, "ivshmem-server.socket", NULL);
	ck_assert(g_file_get_contents(path, &socket, NULL, NULL));
	g_free(path);

	exec = field(service, "ExecStart");
	listen = field(socket, "ListenStream");
	ck_assert_ptr_nonnull(exec);
	ck_assert_ptr_nonnull(listen);
	ck_assert_msg(exec[0] == '/' && !strchr(exec, '@'), "%s", exec);
	want = g_strdup_printf("/ivshmem-server -F -S %s $IVSHMEM_SERVER_OPTS",
			       listen);
	ck_assert_msg(g_str_has_suffix(exec, want), "ExecStart=%s, want ...%s",
		      exec, want);
	g_free(want);
	ck_assert(has_line(service, "Type=notify"));

	if (!*SYSTEMD_ANALYZE_PATH) {
		printf("SKIP: systemd-analyze is not installed: units not verified\n");
		goto out;
	}
	dir = g_strdup("/tmp/ivshmem-test-XXXXXX");
	ck_assert_ptr_nonnull(g_mkdtemp(dir));
	/* The same units, the service starting the built server. */
	lines = g_strsplit(service, "\n", -1);
	for (char **l = lines; *l; l++) {
		if (!g_str_has_prefix(*l, "ExecStart="))
			continue;
		char *fixed = g_strdup_printf("ExecStart=%s%s", server_path(),
					      *l + strlen("ExecStart=") +
					      strcspn(exec, " "));

		g_free(*l);
		*l = fixed;
	}
	text = g_strjoinv("\n", lines);
	g_strfreev(lines);
	service_copy = g_build_filename(dir, "ivshmem-server.service", NULL);
	socket_copy = g_build_filename(dir, "ivshmem-server.socket", NULL);
	ck_assert(g_file_set_contents(service_copy, text, -1, NULL));
	ck_assert(g_file_set_contents(socket_copy, socket, -1, NULL));
	g_free(text);
	ck_assert(g_spawn_sync(dir, (char *[]){ (char *)SYSTEMD_ANALYZE_PATH,
						"verify", "--man=no",
						"./ivshmem-server.service",
						"./ivshmem-server.socket",
						NULL },
			       NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
			       &status, &error));
	/* Loading units as root leaves this stamp where no systemd runs. */
	if (!had_stamp)
		unlink(stamp);
	unlink(service_copy);
	unlink(socket_copy);
	rmdir(dir);
	g_free(service_copy);
	g_free(socket_copy);
	ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!ok && strstr(err, "Failed to initialize manager"))
		printf("SKIP: systemd-analyze cannot run here (%s): units not verified\n",
		       g_strchomp(err));
	else
		ck_assert_msg(ok && !*err, "systemd-analyze verify: %s%s", out,
			      err);
	g_free(out);
	g_free(err);
	g_free(dir);
out:
	g_free(exec);
	g_free(listen);
	g_free(service);
	g_free(socket);
}
END_TEST

static Suite *systemd_suite(void)
{
	Suite *s = suite_create("systemd");
	TCase *tc;

#if HAVE_LIBSYSTEMD
	tc = tcase_with("activation", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_activation_serves);
	tcase_add_test(tc, test_activation_paths);
	tcase_add_test(tc, test_activation_refused);
	tcase_add_test(tc, test_activation_startup_failure);
	tcase_add_test(tc, test_activation_access);
	suite_add_tcase(s, tc);

	tc = tcase_with("notify", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_notify_ready);
	tcase_add_test(tc, test_notify_status);
	tcase_add_test(tc, test_notify_failure);
	suite_add_tcase(s, tc);
#else
	printf("SKIP: built without libsystemd (-Dsystemd=disabled): socket activation and readiness are not supported; testing that they are refused instead\n");
	tc = tcase_with("no-libsystemd", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_no_libsystemd_activation);
	tcase_add_test(tc, test_no_libsystemd_notify);
	suite_add_tcase(s, tc);
#endif

	tc = tcase_with("log", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_log_stderr);
	tcase_add_test(tc, test_log_journald);
	tcase_add_test(tc, test_log_journald_unreachable);
	suite_add_tcase(s, tc);

	tc = tcase_with("units", TCASE_TIMEOUT, remove_leftovers);
	tcase_add_test(tc, test_units_verify);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int ret;

	left = mmap(NULL, sizeof(*left), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (left == MAP_FAILED || tserver_tracking_init() < 0) {
		perror("mmap");
		return EXIT_FAILURE;
	}
	left->n = 0;
	ret = run_suite(systemd_suite());
	remove_leftovers();
	munmap(left, sizeof(*left));
	return ret;
}
