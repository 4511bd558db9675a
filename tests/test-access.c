/* SPDX-License-Identifier: MIT */
/*
 * Access control of ivshmem-server, with real server processes, as root:
 * the peer socket's owner, group and mode (--socket-owner, --socket-group,
 * --socket-mode), never looser while they are being set, and the uid and
 * gid lists (--allow-uid, --allow-gid) checked against SO_PEERCRED of
 * peers that run as nobody.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "common.h"
#include "tproc.h"

#define TCASE_TIMEOUT 120

/* Child exit statuses. */
enum {
	CHILD_REFUSED = 10,     /* EOF before a single byte or fd */
	CHILD_ACCEPTED = 11,    /* greeted (and, when held, heard nothing) */
};

/* nobody and nogroup, looked up in main(). */
static uid_t nobody;
static gid_t nogroup;

static void expect_socket(const char *path, uid_t uid, gid_t gid,
			  mode_t mode)
{
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_msg(st.st_uid == uid && st.st_gid == gid &&
		      (st.st_mode & 07777) == mode,
		      "%s is %u:%u %04o, want %u:%u %04o", path,
		      (unsigned)st.st_uid, (unsigned)st.st_gid,
		      (unsigned)(st.st_mode & 07777), (unsigned)uid,
		      (unsigned)gid, (unsigned)mode);
}

/* ---- the socket file ----------------------------------------------------- */

START_TEST(socket_owner_group_mode)
{
	mode_t old = umask(022);
	struct tserver *s;
	struct tpeer p;
	char *ctl;

	s = START("--socket-owner", "nobody", "--socket-group", "nogroup",
		  "--socket-mode", "0640", NULL);
	expect_socket(s->sock, nobody, nogroup, 0640);
	/* The control socket keeps its own: the server's, 0600. */
	ctl = g_strdup_printf("%s.ctl", s->sock);
	expect_socket(ctl, 0, 0, 0600);
	g_free(ctl);
	/* Root connects whatever the mode. */
	tpeer_join_ok(&p, s->sock, 1, false);
	tpeer_close(&p);
	tserver_stop_ok(s);

	/* Numbers that name nobody are IDs all the same. */
	s = START("--socket-owner", "4242", "--socket-group", "4343",
		  "--socket-mode", "600", NULL);
	expect_socket(s->sock, 4242, 4343, 0600);
	tserver_stop_ok(s);

	/* A group alone gets the socket to use it: 0660. */
	s = START("--socket-group", "nogroup", NULL);
	expect_socket(s->sock, 0, nogroup, 0660);
	tserver_stop_ok(s);

	/* An owner alone changes no bits: what the umask leaves. */
	s = START("--socket-owner", "nobody", NULL);
	expect_socket(s->sock, nobody, 0, 0755);
	tserver_stop_ok(s);

	/* A mode alone, looser or stricter than the umask. */
	s = START("--socket-mode", "0666", NULL);
	expect_socket(s->sock, 0, 0, 0666);
	tserver_stop_ok(s);
	s = START("--socket-mode", "0", NULL);
	expect_socket(s->sock, 0, 0, 0);
	tserver_stop_ok(s);

	/* None: as before, what the umask leaves. */
	s = START(NULL);
	expect_socket(s->sock, 0, 0, 0755);
	tserver_stop_ok(s);
	umask(007);
	s = START(NULL);
	expect_socket(s->sock, 0, 0, 0770);
	tserver_stop_ok(s);
	umask(old);
}
END_TEST

/* The pid of `parent`'s only child, or -1. */
static pid_t child_of(pid_t parent)
{
	char path[64], *text = NULL;
	pid_t pid = -1;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children",
		 (long)parent, (long)parent);
	if (g_file_get_contents(path, &text, NULL, NULL) && *text)
		pid = (pid_t)strtol(text, NULL, 10);
	g_free(text);
	return pid;
}

/* Could a process of uid/gid (not root) connect to a socket of this
 * owner, group and mode? Connecting needs write permission. */
static bool can_connect(uid_t uid, gid_t gid, const struct stat *st)
{
	if (uid == st->st_uid)
		return st->st_mode & S_IWUSR;
	if (gid == st->st_gid)
		return st->st_mode & S_IWGRP;
	return st->st_mode & S_IWOTH;
}

/*
 * While the server sets the socket's owner, group and mode, nobody whom
 * the final ones keep out may connect. strace delays every bind, chown
 * and chmod by 200 ms so that each state in between can be seen.
 */
START_TEST(socket_never_looser)
{
	/* Who might try: the final owner, a member of the final group,
	 * anyone else, a member of root's group. */
	const struct { uid_t uid; gid_t gid; } who[] = {
		{ nobody, 4000 }, { 4001, nogroup }, { 4002, 4002 }, { 4003, 0 },
	};
	const char *strace = "/usr/bin/strace";
	struct stat seen[16], st;
	unsigned nseen = 0;
	struct tserver *s;
	double deadline;
	pid_t pid, server;
	int status;

	if (access(strace, X_OK) < 0) {
		fprintf(stderr, "socket_never_looser: no %s, not checked\n",
			strace);
		return;
	}
	s = tserver_tracked();
	ck_assert_ptr_nonnull(s);
	tserver_prepare(s);

	const char *argv[] = {
		strace, "-o", "/dev/null",
		"-e", "trace=bind,?chown,fchownat,?lchown,?chmod,fchmodat",
		"-e", "inject=bind,?chown,fchownat,?lchown,?chmod,fchmodat:delay_exit=200000",
		server_path(), "-F", "-S", s->sock, "-M", s->shm_name,
		"--socket-owner", "nobody", "--socket-group", "nogroup",
		"--socket-mode", "0660", NULL,
	};

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		const char *asan = getenv("ASAN_OPTIONS");
		char *opts = g_strdup_printf("%s%sdetect_leaks=0",
					     asan ? asan : "",
					     asan && *asan ? ":" : "");

		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		/* LeakSanitizer does not work under ptrace. */
		setenv("ASAN_OPTIONS", opts, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	deadline = now_seconds() + TWAIT_MS / 1000.0;
	for (;;) {
		bool final = false;

		if (lstat(s->sock, &st) == 0) {
			if (nseen == 0 ||
			    st.st_uid != seen[nseen - 1].st_uid ||
			    st.st_gid != seen[nseen - 1].st_gid ||
			    st.st_mode != seen[nseen - 1].st_mode) {
				ck_assert_uint_lt(nseen, G_N_ELEMENTS(seen));
				seen[nseen++] = st;
			}
			final = st.st_uid == nobody && st.st_gid == nogroup &&
				(st.st_mode & 0777) == 0660;
		}
		if (final)
			break;
		ck_assert_msg(now_seconds() < deadline,
			      "the socket did not become nobody:nogroup 0660");
		usleep(1000);
	}
	/* Created private to the server's user, then given away, then
	 * opened to the group; each step seen. */
	ck_assert_msg(nseen >= 3, "only %u states seen", nseen);
	ck_assert_uint_eq(seen[0].st_uid, 0);
	ck_assert_uint_eq(seen[0].st_mode & 0777, 0600);
	for (unsigned i = 0; i < nseen; i++)
		for (unsigned k = 0; k < G_N_ELEMENTS(who); k++)
			ck_assert_msg(!can_connect(who[k].uid, who[k].gid,
						   &seen[i]) ||
				      can_connect(who[k].uid, who[k].gid, &st),
				      "state %u (%u:%u %04o) lets %u:%u in",
				      i, (unsigned)seen[i].st_uid,
				      (unsigned)seen[i].st_gid,
				      (unsigned)(seen[i].st_mode & 07777),
				      (unsigned)who[k].uid,
				      (unsigned)who[k].gid);

	tserver_expect_log(s, "ivshmem-server: listening on ");
	server = child_of(pid);
	ck_assert_int_gt(server, 0);
	kill(server, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert(!path_exists(s->sock));
	tserver_cleanup(s);
	ck_assert(!path_exists(s->dir));
}
END_TEST

/*
 * Run a server with `-F -S sock -M name EXTRA...` (as nobody when
 * as_nobody) that must refuse to start: exit 1, one message saying
 * `needle`, and nothing left: neither socket nor the shm object.
 */
static void refused_start(const char *const *extra, bool as_nobody,
			  const char *needle)
{
	struct tserver *s = tserver_tracked();
	const char *args[24];
	char *log, *ctl, *copy = NULL;
	unsigned n = 0;
	int status;

	ck_assert_ptr_nonnull(s);
	tserver_prepare(s);
	ctl = g_strdup_printf("%s.ctl", s->sock);
	/* nobody runs a copy it can reach wherever the build is. */
	if (as_nobody)
		copy = tprog_copy(server_path());
	args[n++] = copy ? copy : server_path();
	args[n++] = "-F";
	args[n++] = "-S";
	args[n++] = s->sock;
	args[n++] = "-M";
	args[n++] = s->shm_name;
	while (extra && *extra)
		args[n++] = *extra++;
	args[n] = NULL;
	if (as_nobody)
		ck_assert_int_eq(chown(s->dir, nobody, nogroup), 0);

	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		if (as_nobody && (setgroups(0, NULL) < 0 ||
				  setgid(nogroup) < 0 || setuid(nobody) < 0))
			_exit(126);
		execv(args[0], (char *const *)args);
		_exit(127);
	}
	status = proc_wait_exit(pid, TWAIT_MS);
	if (copy)
		tprog_copy_remove(copy);
	log = tserver_log(s);
	ck_assert_msg(status == 1, "exit status %d, want 1:\n%s", status, log);
	tserver_expect_one_message(s, needle);
	ck_assert_msg(!path_exists(s->sock), "%s left behind", s->sock);
	ck_assert_msg(!path_exists(ctl), "%s left behind", ctl);
	ck_assert(!shm_exists(s->shm_name));
	g_free(log);
	g_free(ctl);
	tserver_cleanup(s);
	ck_assert(!path_exists(s->dir));
}

#define REFUSED(needle, ...) \
	refused_start((const char *const[]){ __VA_ARGS__, NULL }, false, needle)

START_TEST(bad_options)
{
	REFUSED("unknown user 'no-such-user-xyz' for --socket-owner",
		"--socket-owner", "no-such-user-xyz");
	REFUSED("unknown user '4294967295' for --socket-owner",
		"--socket-owner", "4294967295");
	REFUSED("unknown group 'no-such-group-xyz' for --socket-group",
		"--socket-group", "no-such-group-xyz");
	REFUSED("invalid socket mode '0800' for --socket-mode",
		"--socket-mode", "0800");
	REFUSED("invalid socket mode '1777'", "--socket-mode", "1777");
	REFUSED("invalid socket mode 'rw-rw----'", "--socket-mode", "rw-rw----");
	REFUSED("invalid socket mode '-1'", "--socket-mode", "-1");
	REFUSED("invalid socket mode ''", "--socket-mode", "");
	REFUSED("unknown user 'no-such-user-xyz' for --allow-uid",
		"--allow-uid", "nobody,no-such-user-xyz");
	REFUSED("unknown group 'no-such-group-xyz' for --allow-gid",
		"--allow-gid", "no-such-group-xyz");
	REFUSED("unknown group '-5' for --allow-gid", "--allow-gid", "-5");
	REFUSED("an empty entry in 'nobody,,root' for --allow-uid",
		"--allow-uid", "nobody,,root");
	REFUSED("an empty entry in '' for --allow-gid", "--allow-gid", "");
	REFUSED("option '--allow-uid' needs an argument", "--allow-uid");

	/* Only root gives a file away: a server run as nobody stops, and
	 * removes its socket. */
	refused_start((const char *const[]){ "--socket-owner", "root", NULL },
		      true, "cannot give the socket");
	refused_start((const char *const[]){ "--socket-group", "root", NULL },
		      true, "cannot give the socket");
}
END_TEST

/* ---- peers that run as another user -------------------------------------- */

struct child {
	pid_t pid;
	int ready;      /* read end: the child's peer ID once greeted */
	int go;         /* write end, when held: check that nothing came,
			 * and exit; else -1 */
};

/* Connect and read with room for fds: EOF before any byte or fd? */
static int child_expect_eof(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[64], cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct pollfd pfd = { .events = POLLIN };
	ssize_t n;
	int fd;

	g_strlcpy(sa.sun_path, sock, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "child: connect: %s\n", g_strerror(errno));
		return 3;
	}
	pfd.fd = fd;
	if (poll(&pfd, 1, TWAIT_MS) != 1) {
		fprintf(stderr, "child: neither data nor EOF\n");
		return 4;
	}
	do {
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		fprintf(stderr, "child: recvmsg: %s\n", g_strerror(errno));
		return 5;
	}
	if (n > 0 || mh.msg_controllen > 0 || (mh.msg_flags & MSG_CTRUNC)) {
		fprintf(stderr, "child: got %zd bytes and %zu of control data\n",
			n, (size_t)mh.msg_controllen);
		return 6;
	}
	return CHILD_REFUSED;
}

/* Join as a peer, tell the parent its ID; when held (go >= 0), wait for
 * the parent's word and check that nothing came meanwhile. */
static int child_join(const char *sock, int ready, int go)
{
	struct tpeer p;
	struct tmsg m;
	char c;
	int r = tpeer_connect(&p, sock, 1, false);

	if (r == 0)
		r = tpeer_greet(&p, TWAIT_MS);
	if (r < 0) {
		fprintf(stderr, "child: joining: %s\n", g_strerror(-r));
		return 7;
	}
	if (write(ready, &p.id, sizeof(p.id)) != sizeof(p.id))
		return 8;
	if (go < 0)
		return CHILD_ACCEPTED;
	if (read(go, &c, 1) < 0)
		return 8;
	r = tpeer_recv(&p, TQUIET_MS, &m, NULL);
	if (r != -ETIMEDOUT) {
		fprintf(stderr, "child: peer %d: %d (value %lld) instead of silence\n",
			p.id, r, r == 1 ? (long long)m.value : 0LL);
		return 9;
	}
	tpeer_close(&p);
	return CHILD_ACCEPTED;
}

/*
 * A child as uid/gid with the supplementary groups `groups` (n of them)
 * that joins (join; held until child_end() when hold) or expects to be
 * refused.
 */
static void child_start(struct child *c, const char *sock, uid_t uid,
			gid_t gid, const gid_t *groups, size_t n, bool join,
			bool hold)
{
	int ready[2], go[2];

	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		close(ready[0]);
		close(go[1]);
		if (setgroups(n, groups) < 0 || setgid(gid) < 0 ||
		    setuid(uid) < 0) {
			perror("child: dropping privileges");
			_exit(2);
		}
		_exit(join ? child_join(sock, ready[1], hold ? go[0] : -1) :
			     child_expect_eof(sock));
	}
	close(ready[1]);
	close(go[0]);
	c->ready = ready[0];
	c->go = go[1];
	if (!(join && hold)) {
		close(go[1]);
		c->go = -1;
	}
}

/* The ID the child was given. */
static int child_id(struct child *c)
{
	struct pollfd pfd = { .fd = c->ready, .events = POLLIN };
	int id = -1;

	ck_assert_int_eq(poll(&pfd, 1, TWAIT_MS), 1);
	ck_assert_int_eq(read(c->ready, &id, sizeof(id)), sizeof(id));
	return id;
}

/* Let it finish; it must exit with `want`. */
static void child_end(struct child *c, int want)
{
	int status;

	if (c->go >= 0) {
		ck_assert_int_eq(write(c->go, "q", 1), 1);
		close(c->go);
	}
	status = proc_wait_exit(c->pid, TWAIT_MS);
	ck_assert_msg(status == want, "child %ld: exit status %d, want %d",
		      (long)c->pid, status, want);
	close(c->ready);
}

/* nobody:nogroup, no supplementary groups. */
#define NOBODY(c, s, join, hold) \
	child_start(c, (s)->sock, nobody, nogroup, NULL, 0, join, hold)

/* The server's log names the refused connection. */
static void expect_refused_logged(const struct tserver *s, pid_t pid,
				  uid_t uid, gid_t gid)
{
	char *want = g_strdup_printf("connection refused (pid %ld, uid %u, gid %u): neither its uid nor its gid is allowed",
				     (long)pid, (unsigned)uid, (unsigned)gid);

	tserver_expect_log(s, want);
	g_free(want);
}

/* The socket reachable for nobody: the temp dir searchable, the socket
 * writable by everyone, so that SO_PEERCRED is what decides. */
static void open_dir(const struct tserver *s)
{
	ck_assert_int_eq(chmod(s->dir, 0711), 0);
}

/* A root test peer that must be refused. */
static void root_refused(const struct tserver *s)
{
	struct tpeer p;
	struct tmsg m;

	ck_assert_int_eq(tpeer_connect(&p, s->sock, 1, false), 0);
	ck_assert_int_eq(tpeer_recv(&p, TWAIT_MS, &m, NULL), 0);
	ck_assert_uint_eq(p.nmsgs, 0);
	tpeer_close(&p);
	expect_refused_logged(s, getpid(), 0, 0);
}

/* ---- a control client ---------------------------------------------------- */

struct cc {
	int fd;
	GString *buf;
};

static void cc_open(struct cc *c, const struct tserver *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	ck_assert_int_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.ctl",
				  s->sock), (int)sizeof(sa.sun_path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(c->fd, 0);
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	c->buf = g_string_new(NULL);
}

/* The next line as a JSON object (unref it). */
static JsonObject *cc_next(struct cc *c)
{
	double deadline = now_seconds() + TWAIT_MS / 1000.0;
	char *nl;

	while (!(nl = memchr(c->buf->str, '\n', c->buf->len))) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		char chunk[4096];
		ssize_t n;
		int left = (int)((deadline - now_seconds()) * 1000);

		ck_assert_msg(left > 0 && poll(&pfd, 1, left) == 1,
			      "no line from the control socket");
		n = read(c->fd, chunk, sizeof(chunk));
		ck_assert_int_gt(n, 0);
		g_string_append_len(c->buf, chunk, n);
	}

	char *line = g_strndup(c->buf->str, (gsize)(nl - c->buf->str));
	JsonNode *node = json_from_string(line, NULL);
	JsonObject *o;

	g_string_erase(c->buf, 0, nl - c->buf->str + 1);
	ck_assert_msg(node && JSON_NODE_HOLDS_OBJECT(node), "not an object: %s",
		      line);
	o = json_object_ref(json_node_get_object(node));
	json_node_unref(node);
	g_free(line);
	return o;
}

static void cc_close(struct cc *c)
{
	close(c->fd);
	g_string_free(c->buf, TRUE);
}

/* ---- --allow-uid, --allow-gid ------------------------------------------- */

START_TEST(allow_uid_refuses_others)
{
	struct tserver *s = START("--socket-mode", "0666", "--allow-uid",
				  "root", NULL);
	struct tpeer a, b, d;
	struct child c;
	struct cc w;
	struct proc ctl;
	JsonObject *o;

	open_dir(s);
	tpeer_join_ok(&a, s->sock, 1, false);
	tpeer_join_ok(&b, s->sock, 1, false);
	tpeer_wait_peers_ok(&a, 1);
	cc_open(&w, s);
	ck_assert_int_eq(write(w.fd, "{\"command\":\"watch\"}\n", 20), 20);
	o = cc_next(&w);
	ck_assert(json_object_get_boolean_member(o, "ok"));
	json_object_unref(o);

	/* nobody is closed before it gets a byte or an fd. */
	NOBODY(&c, s, false, false);
	child_end(&c, CHILD_REFUSED);
	expect_refused_logged(s, c.pid, nobody, nogroup);
	o = cc_next(&w);
	ck_assert_str_eq(json_object_get_string_member(o, "event"), "refused");
	ck_assert_str_eq(json_object_get_string_member(o, "reason"), "denied");
	ck_assert_int_eq(json_object_get_int_member(o, "pid"), c.pid);
	ck_assert_int_eq(json_object_get_int_member(o, "uid"), nobody);
	ck_assert_int_eq(json_object_get_int_member(o, "gid"), nogroup);
	ck_assert_int_eq(json_object_get_int_member(o, "peers"), 2);
	json_object_unref(o);

	/* The peers saw nothing: no join, no leave. */
	tpeer_expect_quiet(&a, TQUIET_MS);
	tpeer_expect_quiet(&b, TQUIET_MS);

	/* It used up no ID; root still joins, and so does ivshmem-ctl. */
	tpeer_join_ok(&d, s->sock, 1, false);
	ck_assert_int_eq(d.id, 2);
	tpeer_wait_peers_ok(&a, 2);
	o = cc_next(&w);
	ck_assert_str_eq(json_object_get_string_member(o, "event"), "join");
	json_object_unref(o);
	proc_start(&ctl, proc_ctl_path(),
		   (const char *const[]){ "peer", "-S", s->sock, NULL });
	EXPECT(&ctl, "ready id=3 vectors=1 peers=0,1,2 shm-size=4194304");
	proc_close_in(&ctl);
	EXPECT_EXIT(&ctl, 0);
	proc_free(&ctl);

	cc_close(&w);
	tpeer_close(&a);
	tpeer_close(&b);
	tpeer_close(&d);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(allow_uid_accepts_listed)
{
	/* Repeated, names and numbers: the lists add up. */
	struct tserver *s = START("--socket-mode", "0666", "--allow-uid",
				  "4242,4243", "--allow-uid", "nobody", NULL);
	struct child c, c2;
	struct proc ctl;

	open_dir(s);
	NOBODY(&c, s, true, true);
	ck_assert_int_eq(child_id(&c), 0);

	/* Root is no exception: refused when only nobody is allowed,
	 * and ivshmem-ctl peer too; the peer held by the child hears
	 * nothing of either. */
	root_refused(s);
	proc_start(&ctl, proc_ctl_path(),
		   (const char *const[]){ "peer", "-S", s->sock, NULL });
	EXPECT_PREFIX(&ctl, "disconnected error=");
	EXPECT_EXIT(&ctl, 1);
	proc_free(&ctl);
	child_end(&c, CHILD_ACCEPTED);

	/* Next-fit: the refused ones took no ID. */
	NOBODY(&c2, s, true, false);
	ck_assert_int_eq(child_id(&c2), 1);
	child_end(&c2, CHILD_ACCEPTED);
	tserver_stop_ok(s);
}
END_TEST

START_TEST(allow_gid)
{
	/* The primary gid is enough, by name or number. */
	struct tserver *s = START("--socket-mode", "0666", "--allow-gid",
				  "nogroup", NULL);
	gid_t groups[] = { nogroup };
	struct child c;
	char *gid;

	open_dir(s);
	NOBODY(&c, s, true, false);
	ck_assert_int_eq(child_id(&c), 0);
	child_end(&c, CHILD_ACCEPTED);
	root_refused(s);

	/* Another uid in the group: in. Another primary group: out, even
	 * with the allowed one as a supplementary group (SO_PEERCRED does
	 * not carry those). */
	child_start(&c, s->sock, 4242, nogroup, NULL, 0, true, false);
	ck_assert_int_eq(child_id(&c), 1);
	child_end(&c, CHILD_ACCEPTED);
	child_start(&c, s->sock, nobody, 4242, groups, 1, false, false);
	child_end(&c, CHILD_REFUSED);
	expect_refused_logged(s, c.pid, nobody, 4242);
	tserver_stop_ok(s);

	/* Both lists: either one lets in. */
	gid = g_strdup_printf("%u", (unsigned)nogroup);
	s = START("--socket-mode", "0666", "--allow-uid", "4242",
		  "--allow-gid", gid, NULL);
	open_dir(s);
	NOBODY(&c, s, true, false);
	ck_assert_int_eq(child_id(&c), 0);
	child_end(&c, CHILD_ACCEPTED);
	child_start(&c, s->sock, 4242, 4242, NULL, 0, true, false);
	ck_assert_int_eq(child_id(&c), 1);
	child_end(&c, CHILD_ACCEPTED);
	child_start(&c, s->sock, 4243, 4243, NULL, 0, false, false);
	child_end(&c, CHILD_REFUSED);
	expect_refused_logged(s, c.pid, 4243, 4243);
	root_refused(s);
	tserver_stop_ok(s);
	g_free(gid);
}
END_TEST

/* Without a list, everyone who can reach the socket is in (as before). */
START_TEST(no_list_accepts_everyone)
{
	struct tserver *s = START("--socket-mode", "0666", NULL);
	struct tpeer p;
	struct child c;
	char *log;

	open_dir(s);
	tpeer_join_ok(&p, s->sock, 1, false);
	NOBODY(&c, s, true, false);
	ck_assert_int_eq(child_id(&c), 1);
	child_end(&c, CHILD_ACCEPTED);
	tpeer_close(&p);
	log = tserver_log(s);
	ck_assert_msg(!strstr(log, "refused"), "%s", log);
	g_free(log);
	tserver_stop_ok(s);
}
END_TEST

int main(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");
	Suite *s = suite_create("access");
	TCase *tc;

	if (geteuid() != 0) {
		fprintf(stderr, "test-access: skipped: needs root (to give sockets away and to run peers as another user)\n");
		return 77;
	}
	if (!pw || !gr) {
		fprintf(stderr, "test-access: skipped: no user nobody or group nogroup\n");
		return 77;
	}
	nobody = pw->pw_uid;
	nogroup = gr->gr_gid;

	tc = tcase_with("socket", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, socket_owner_group_mode);
	tcase_add_test(tc, socket_never_looser);
	tcase_add_test(tc, bad_options);
	suite_add_tcase(s, tc);
	tc = tcase_with("allow", TCASE_TIMEOUT, tserver_reap_tracked);
	tcase_add_test(tc, allow_uid_refuses_others);
	tcase_add_test(tc, allow_uid_accepts_listed);
	tcase_add_test(tc, allow_gid);
	tcase_add_test(tc, no_list_accepts_everyone);
	suite_add_tcase(s, tc);
	return run_tracked_suite(s);
}
