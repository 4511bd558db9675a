/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-server: hands every peer the shared-memory fd and everyone's
 * eventfds. A drop-in replacement for QEMU's contrib/ivshmem-server: the same
 * protocol, flags and defaults.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <glib.h>

#include "config.h"
#include "control.h"
#include "ivshmem.h"
#include "options.h"
#include "systemd.h"

struct state {
	struct options opt;
	struct ev_loop *loop;
	struct ivshmem_server *srv;
	struct control *ctl;
	ev_io **io;             /* fd -> watcher */
	unsigned io_cap;
	ev_timer timer;
	ev_signal sigterm, sigint;
	bool daemon;
	bool socket_created;
	bool control_created;
	bool shm_created;
	bool pidfile_written;

	/* Start-up's, until the server and the control take them. */
	int listen_fd, ctl_fd, shm_fd;
	int notify_fd;          /* daemon mode: tells the launcher it serves */
	const char *shm_arg;    /* the shm name or dir, from opt */
	struct timespec started, started_mono;
};

/* ---- logging ---------------------------------------------------------- */

static bool log_verbose;
static bool log_syslog;
/* The last error logged: why start-up failed, for systemd's STATUS=. */
static char *log_last_error;

/*
 * Hand a record to journald with our priority (GLib's would make a
 * critical a warning) and our name. G_LOG_WRITER_UNHANDLED when journald
 * cannot be reached: the caller writes to stderr then.
 */
static GLogWriterOutput log_journald(GLogLevelFlags level, int prio,
				     const GLogField *fields, gsize n_fields)
{
	char prio_s[2] = { (char)('0' + prio), '\0' };
	GLogField *f = g_new(GLogField, n_fields + 2);
	bool has_prio = false, has_ident = false;
	GLogWriterOutput r;
	gsize n = 0;

	for (gsize i = 0; i < n_fields; i++) {
		f[n] = fields[i];
		if (g_strcmp0(f[n].key, "PRIORITY") == 0) {
			f[n].value = prio_s;
			f[n].length = -1;
			has_prio = true;
		}
		has_ident |= g_strcmp0(f[n].key, "SYSLOG_IDENTIFIER") == 0;
		n++;
	}
	if (!has_prio)
		f[n++] = (GLogField){ "PRIORITY", prio_s, -1 };
	if (!has_ident)
		f[n++] = (GLogField){ "SYSLOG_IDENTIFIER", "ivshmem-server", -1 };
	r = g_log_writer_journald(level, f, n, NULL);
	g_free(f);
	return r;
}

static GLogWriterOutput log_writer(GLogLevelFlags level, const GLogField *fields,
				   gsize n_fields, gpointer data)
{
	const char *msg = NULL;
	int prio;

	for (gsize i = 0; i < n_fields; i++)
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
			msg = fields[i].value;
	if (!msg)
		return G_LOG_WRITER_UNHANDLED;

	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		prio = LOG_ERR;
	else if (level & G_LOG_LEVEL_WARNING)
		prio = LOG_WARNING;
	else if (level & G_LOG_LEVEL_MESSAGE)
		prio = LOG_NOTICE;
	else if (level & G_LOG_LEVEL_INFO)
		prio = LOG_INFO;
	else
		prio = LOG_DEBUG;
	if (prio >= LOG_INFO && !log_verbose)
		return G_LOG_WRITER_HANDLED;
	if (prio <= LOG_ERR) {
		g_free(log_last_error);
		log_last_error = g_strdup(msg);
	}

	/* Under systemd, stderr is a stream to journald (GLib knows it by
	 * its peer, or JOURNAL_STREAM): send it the record with its fields
	 * and priority instead of a line. */
	if (!log_syslog && g_log_writer_is_journald(fileno(stderr)) &&
	    log_journald(level, prio, fields, n_fields) == G_LOG_WRITER_HANDLED)
		return G_LOG_WRITER_HANDLED;
	if (log_syslog)
		syslog(prio, "%s", msg);
	else
		fprintf(stderr, "ivshmem-server: %s\n", msg);
	return G_LOG_WRITER_HANDLED;
}

static void lib_log(void *user, int prio, const char *fmt, va_list ap)
	IVSHMEM_PRINTF(3, 0);

static void lib_log(void *user, int prio, const char *fmt, va_list ap)
{
	char *msg = g_strdup_vprintf(fmt, ap);

	if (prio <= IVSHMEM_LOG_ERR)
		g_critical("%s", msg);
	else if (prio == IVSHMEM_LOG_WARNING)
		g_warning("%s", msg);
	else if (prio == IVSHMEM_LOG_NOTICE)
		g_message("%s", msg);
	else if (prio == IVSHMEM_LOG_INFO)
		g_info("%s", msg);
	else
		g_debug("%s", msg);
	g_free(msg);
}

static const char *leave_reason(int reason)
{
	switch (reason) {
	case IVSHMEM_LEAVE_CLOSED: return "closed its connection";
	case IVSHMEM_LEAVE_PROTOCOL: return "sent data (peers must not write)";
	case IVSHMEM_LEAVE_QUEUE_FULL: return "did not read: its queue is full";
	case IVSHMEM_LEAVE_ERROR: return "socket error";
	case IVSHMEM_LEAVE_KICKED: return "disconnected on request";
	}
	return "unknown reason";
}

static void lib_event(void *user, const struct ivshmem_server_event *ev)
{
	struct state *st = user;

	switch (ev->type) {
	case IVSHMEM_EVENT_PEER_JOINED:
		g_info("peer %d connected (pid %ld, uid %ld), %u peers",
		       ev->id, (long)ev->pid, (long)ev->uid, ev->peers);
		break;
	case IVSHMEM_EVENT_PEER_LEFT:
		if (ev->reason == IVSHMEM_LEAVE_CLOSED ||
		    ev->reason == IVSHMEM_LEAVE_KICKED)
			g_info("peer %d disconnected (pid %ld, uid %ld): %s%s%s, %u peers",
			       ev->id, (long)ev->pid, (long)ev->uid,
			       leave_reason(ev->reason), ev->error ? ": " : "",
			       ev->error ? g_strerror(ev->error) : "", ev->peers);
		else
			g_warning("peer %d disconnected (pid %ld, uid %ld): %s%s%s, %u peers",
				  ev->id, (long)ev->pid, (long)ev->uid,
				  leave_reason(ev->reason), ev->error ? ": " : "",
				  ev->error ? g_strerror(ev->error) : "", ev->peers);
		break;
	case IVSHMEM_EVENT_REFUSED:
		g_warning("connection refused (pid %ld, uid %ld, gid %ld): %s",
			  (long)ev->pid, (long)ev->uid, (long)ev->gid,
			  ev->error == ENOSPC ? "every peer ID is in use" :
			  ev->error == EPERM ? "neither its uid nor its gid is allowed (--allow-uid, --allow-gid)" :
			  g_strerror(ev->error));
		break;
	case IVSHMEM_EVENT_ACCEPT_PAUSED:
		g_warning("cannot accept new peers (%s): paused until resources are freed",
			  g_strerror(ev->error));
		break;
	case IVSHMEM_EVENT_ACCEPT_RESUMED:
		g_message("accepting new peers again");
		break;
	}
	control_event(st->ctl, ev);
}

static int lib_authorize(void *user, pid_t pid, uid_t uid, gid_t gid)
{
	struct state *st = user;

	return options_allowed(&st->opt, uid, gid) ? 0 : -EPERM;
}

/* ---- libev glue ------------------------------------------------------- */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct state *st = ev_userdata(loop);
	int ev = 0;

	if (revents & EV_READ)
		ev |= POLLIN;
	if (revents & EV_WRITE)
		ev |= POLLOUT;
	ivshmem_server_dispatch(st->srv, w->fd, ev);
}

static void lib_watch(void *user, int fd, int events)
{
	struct state *st = user;
	ev_io *w;

	if ((unsigned)fd >= st->io_cap) {
		unsigned ncap = st->io_cap ? st->io_cap : 64;

		if (events < 0)
			return;
		while (ncap <= (unsigned)fd)
			ncap *= 2;
		st->io = g_renew(ev_io *, st->io, ncap);
		memset(st->io + st->io_cap, 0,
		       (ncap - st->io_cap) * sizeof(*st->io));
		st->io_cap = ncap;
	}
	w = st->io[fd];
	if (events < 0) {
		if (w) {
			ev_io_stop(st->loop, w);
			g_free(w);
			st->io[fd] = NULL;
		}
		return;
	}
	if (!w) {
		w = g_new0(ev_io, 1);
		st->io[fd] = w;
		ev_init(w, io_cb);
	} else {
		ev_io_stop(st->loop, w);
	}
	if (events == 0)
		return;
	ev_io_set(w, fd, ((events & POLLIN) ? EV_READ : 0) |
			 ((events & POLLOUT) ? EV_WRITE : 0));
	ev_io_start(st->loop, w);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct state *st = ev_userdata(loop);

	ivshmem_server_timeout(st->srv);
}

static void lib_timer(void *user, int ms)
{
	struct state *st = user;

	ev_timer_stop(st->loop, &st->timer);
	if (ms >= 0) {
		ev_timer_set(&st->timer, ms / 1000.0, 0.);
		ev_timer_start(st->loop, &st->timer);
	}
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	g_info("signal %d: exiting", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/* ---- start-up ---------------------------------------------------------- */

static void raise_nofile(void)
{
	struct rlimit rl;

	/* One socket and V eventfds per peer: take all the fds we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static char *shm_posix_name(const char *name)
{
	return g_strdup_printf("/%s", name[0] == '/' ? name + 1 : name);
}

static void cleanup_files(struct state *st)
{
	if (st->socket_created)
		unlink(st->opt.socket_path);
	st->socket_created = false;
	if (st->control_created)
		unlink(st->opt.control_path);
	st->control_created = false;
	if (st->shm_created) {
		char *n = shm_posix_name(st->opt.shm_name);

		shm_unlink(n);
		g_free(n);
	}
	st->shm_created = false;
}

static int write_pidfile(const char *path)
{
	char buf[32];
	int fd, len, r = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	ssize_t n = write(fd, buf, (size_t)len);

	if (n != len)
		r = n < 0 ? -errno : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlink(path);
	return r;
}

/* Fork. The parent waits until the child is serving (socket listening,
 * pidfile written) and exits 0, or exits 1 if the child failed. Returns in
 * the child, with the write end of the status pipe in *notify_fd. */
static void daemonize(int *notify_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		fprintf(stderr, "ivshmem-server: cannot create a pipe: %s\n",
			g_strerror(errno));
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "ivshmem-server: cannot fork: %s\n",
			g_strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		char c = 1;
		ssize_t n;

		close(p[1]);
		do {
			n = read(p[0], &c, 1);
		} while (n < 0 && errno == EINTR);
		/* The child reports 0 on success; EOF means it died. */
		_exit(n == 1 && c == 0 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0) {
		/* cannot happen; stay where we are */
	}
	*notify_fd = p[1];
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/* Say why listening on `what` at path failed (r from ivshmem_socket_listen)
 * and that `option` chooses another path. */
static void listen_failed(const char *what, const char *path, int r,
			  const char *option)
{
	if (r == -EADDRINUSE)
		g_critical("another server is already listening on %s: stop it, or choose another path with %s",
			   path, option);
	else if (r == -EEXIST)
		g_critical("%s exists and is not a socket: remove it, or choose another path with %s",
			   path, option);
	else
		g_critical("cannot listen on %s %s: %s; choose another path with %s",
			   what, path, g_strerror(-r), option);
}

/*
 * Listen on path with the owner's bits of `mode` only (umask around bind),
 * for set_socket_perm() to open up once owner and group are right: nobody
 * whom the final owner, group and mode keep out can connect in between.
 * 0 or the negative errno of ivshmem_socket_listen().
 */
static int listen_private(const char *path, mode_t mode, int *fd)
{
	mode_t old = umask(0777 & ~(mode & 0700));
	int r = ivshmem_socket_listen(path, fd);

	umask(old);
	return r;
}

/*
 * Give the socket file that listen_private() made to user uid (owner names
 * it; NULL: keep the owner) and group gid (likewise), then set `mode`.
 * `what` names the socket in messages. 0, or -1 after saying why.
 */
static int set_socket_perm(const char *path, const char *what, mode_t mode,
			   const char *owner, uid_t uid, const char *group,
			   gid_t gid)
{
	char proc[40];
	struct stat st;
	int fd, ret = -1;

	if (!owner && !group && !(mode & ~0700))
		return 0;
	/*
	 * Through a descriptor of the socket file just bound, never by
	 * path: in a directory that others may write, the path could be
	 * swapped for a symlink between bind() and here, and root would
	 * give away whatever it points to.
	 */
	fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_uid != geteuid()) {
		g_critical("%s %s was replaced before its owner and mode were set: is its directory writable by others?",
			   what, path);
		goto out;
	}
	if (owner && fchownat(fd, "", uid, (gid_t)-1, AT_EMPTY_PATH) < 0) {
		g_critical("cannot give %s %s to user %s: %s (only root can give a file to another user)",
			   what, path, owner, g_strerror(errno));
		goto out;
	}
	if (group && fchownat(fd, "", (uid_t)-1, gid, AT_EMPTY_PATH) < 0) {
		g_critical("cannot give %s %s to group %s: %s (the server's user must belong to the group, or run as root)",
			   what, path, group, g_strerror(errno));
		goto out;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((mode & ~0700) && chmod(proc, mode) < 0) {
		g_critical("cannot set the mode of %s %s to %04o: %s", what,
			   path, (unsigned)mode, g_strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * The control socket, 0600 from the start, then given to --control-group
 * with mode 0660. 0, or -1 after saying why.
 */
static int listen_control(struct state *st, int *fd)
{
	const char *path = st->opt.control_path;
	mode_t mode = st->opt.control_group ? 0660 : 0600;
	int r = listen_private(path, mode, fd);

	if (r < 0) {
		listen_failed("the control socket", path, r,
			      "--control (or none with --no-control)");
		return -1;
	}
	st->control_created = true;
	return set_socket_perm(path, "the control socket", mode, NULL, 0,
			       st->opt.control_group, st->opt.control_gid);
}

static const char *shm_kind_name(enum ivshmem_shm_kind k)
{
	switch (k) {
	case IVSHMEM_SHM_POSIX: return "POSIX shm";
	case IVSHMEM_SHM_DIR: return "file in";
	case IVSHMEM_SHM_MEMFD: return "sealed memfd";
	}
	return "?";
}

/*
 * Serve the socket systemd passed, bound at path (taken). It is systemd's:
 * never unlinked here, its owner and mode set by the .socket unit. The
 * default control socket follows it (PATH.ctl, where ivshmem-ctl -S PATH
 * looks); a --control of another path stays.
 */
static int use_activated_socket(struct state *st, char *path)
{
	char *given = g_canonicalize_filename(st->opt.socket_path, NULL);
	char *dflt_ctl = g_strconcat(st->opt.socket_path, CLI_CONTROL_SUFFIX,
				     NULL);

	if (strcmp(given, path) != 0 &&
	    strcmp(st->opt.socket_path, CLI_DEFAULT_SOCKET) != 0)
		g_message("serving the socket systemd passed, %s, instead of %s (-S)",
			  path, st->opt.socket_path);
	if (st->opt.control_path &&
	    strcmp(st->opt.control_path, dflt_ctl) == 0) {
		g_free(st->opt.control_path);
		st->opt.control_path = g_strconcat(path, CLI_CONTROL_SUFFIX,
						   NULL);
	}
	g_free(st->opt.socket_path);
	st->opt.socket_path = path;
	g_free(given);
	g_free(dflt_ctl);
	/* Fail closed: the socket may be looser than the operator asked. */
	if (st->opt.socket_perm) {
		g_critical("--socket-owner, --socket-group and --socket-mode cannot apply to the socket systemd passed (%s): set SocketUser=, SocketGroup= and SocketMode= in its .socket unit instead",
			   path);
		return -1;
	}
	return 0;
}

/* What the server serves, for systemd's STATUS=. */
static char *describe(const struct state *st, const char *shm_arg)
{
	const struct options *o = &st->opt;
	char *ctl = o->control_path ?
		g_strdup_printf("; control socket %s", o->control_path) :
		g_strdup("");
	char *s = g_strdup_printf("Serving %s: %s%s%s, %" PRIu64 " bytes, %u vector%s%s",
				  o->socket_path, shm_kind_name(o->shm_kind),
				  o->shm_kind != IVSHMEM_SHM_MEMFD ? " " : "",
				  o->shm_kind != IVSHMEM_SHM_MEMFD ? shm_arg : "",
				  o->size, o->vectors, o->vectors == 1 ? "" : "s",
				  ctl);

	g_free(ctl);
	return s;
}

/* ---- the steps of main ------------------------------------------------ */

static void prepare_process(struct state *st)
{
	clock_gettime(CLOCK_REALTIME, &st->started);
	clock_gettime(CLOCK_MONOTONIC, &st->started_mono);
	log_verbose = st->opt.verbose;
	g_log_set_writer_func(log_writer, NULL, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (st->opt.size_rounded)
		g_message("shared memory size %" PRIu64 " rounded up to %" PRIu64
			  " (a power of two, as ivshmem-doorbell needs; --exact-size keeps it)",
			  st->opt.size_requested, st->opt.size);
}

/* The peer socket, made here: 0, or -1 after saying why. */
static int listen_socket(struct state *st)
{
	const struct options *o = &st->opt;
	int r;

	if (o->socket_perm)
		r = listen_private(o->socket_path, o->socket_mode,
				   &st->listen_fd);
	else
		r = ivshmem_socket_listen(o->socket_path, &st->listen_fd);
	if (r < 0) {
		listen_failed("the socket", o->socket_path, r, "-S");
		return -1;
	}
	st->socket_created = true;
	if (o->socket_perm &&
	    set_socket_perm(o->socket_path, "the socket", o->socket_mode,
			    o->socket_owner, o->socket_uid, o->socket_group,
			    o->socket_gid) < 0)
		return -1;
	return 0;
}

/*
 * The socket first: if another server owns it, touch nothing. One that
 * systemd passed is systemd's: used as it is, never removed. Then the
 * control socket. 0, or -1 after saying why.
 */
static int open_sockets(struct state *st)
{
	char *activated_path = NULL;
	int activated;

	activated = systemd_listen_socket(&st->listen_fd, &activated_path);
	if (activated < 0)
		return -1;
	if (activated) {
		if (use_activated_socket(st, activated_path) < 0)
			return -1;
	} else if (listen_socket(st) < 0) {
		return -1;
	}
	if (st->opt.control_path && listen_control(st, &st->ctl_fd) < 0)
		return -1;
	return 0;
}

/* 0, or -1 after saying why. */
static int open_shm(struct state *st)
{
	const struct options *o = &st->opt;
	int created = 0, r;

	st->shm_arg = o->shm_kind == IVSHMEM_SHM_DIR ? o->shm_dir :
						       o->shm_name;
	r = ivshmem_shm_open(o->shm_kind, st->shm_arg, o->size, &st->shm_fd,
			     &created);
	if (r == -EEXIST && o->shm_kind == IVSHMEM_SHM_POSIX) {
		g_critical("the shm object %s already exists with a size other than %" PRIu64
			   " bytes and may be in use: give its size with -l, or remove /dev/shm/%s if nothing uses it",
			   o->shm_name, o->size,
			   o->shm_name + (o->shm_name[0] == '/'));
		return -1;
	}
	if (r < 0) {
		g_critical("cannot create the shared memory (%s%s%s, %" PRIu64
			   " bytes): %s", shm_kind_name(o->shm_kind),
			   st->shm_arg && o->shm_kind != IVSHMEM_SHM_MEMFD ? " " : "",
			   o->shm_kind != IVSHMEM_SHM_MEMFD ? st->shm_arg : "",
			   o->size, g_strerror(-r));
		return -1;
	}
	/* A named object is removed at exit (as QEMU's server does) unless
	 * --keep-shm; one that failed start-up is removed only if ours. */
	st->shm_created = o->shm_kind == IVSHMEM_SHM_POSIX && created;
	return 0;
}

/* Daemon mode: fork and write the pid file. 0, or -1 after saying why
 * (the launcher then sees the pipe close and exits 1). */
static int become_daemon(struct state *st)
{
	int r;

	if (st->opt.foreground)
		return 0;
	daemonize(&st->notify_fd);
	r = write_pidfile(st->opt.pid_file);
	if (r < 0) {
		g_critical("cannot write the pid file %s: %s (choose another path with -p)",
			   st->opt.pid_file, g_strerror(-r));
		return -1;
	}
	st->pidfile_written = true;
	return 0;
}

/* After the fork: libev's default loop must be made in the child. */
static int start_loop(struct state *st)
{
	st->loop = ev_default_loop(EVFLAG_AUTO);
	if (!st->loop) {
		g_critical("cannot initialise the event loop");
		return -1;
	}
	ev_set_userdata(st->loop, st);
	ev_init(&st->timer, timer_cb);
	ev_signal_init(&st->sigterm, signal_cb, SIGTERM);
	ev_signal_init(&st->sigint, signal_cb, SIGINT);
	ev_signal_start(st->loop, &st->sigterm);
	ev_signal_start(st->loop, &st->sigint);
	return 0;
}

/* The library's server takes the socket and the shared memory. */
static int start_server(struct state *st)
{
	static const struct ivshmem_server_ops ops = {
		.watch = lib_watch,
		.timer = lib_timer,
		.event = lib_event,
		.log = lib_log,
		.authorize = lib_authorize,
	};
	struct ivshmem_server_config cfg = {
		.listen_fd = st->listen_fd,
		.shm_fd = st->shm_fd,
		.vectors = st->opt.vectors,
		.max_peers = st->opt.max_peers,
		.queue_limit = st->opt.queue_limit,
	};
	int r = ivshmem_server_new(&cfg, &ops, st, &st->srv);

	if (r < 0) {
		g_critical("cannot start the server: %s", g_strerror(-r));
		return -1;
	}
	st->listen_fd = st->shm_fd = -1;
	return 0;
}

/* The control socket's server, when there is one. */
static int start_control(struct state *st)
{
	const struct options *o = &st->opt;
	struct control_info ci = {
		.socket_path = o->socket_path,
		.control_path = o->control_path,
		.shm_kind = o->shm_kind,
		.shm_name = st->shm_arg,
		.shm_size = o->size,
		.max_peers = o->max_peers,
		.queue_limit = o->queue_limit,
		.started = st->started,
		.started_mono = st->started_mono,
	};
	int r;

	if (st->ctl_fd < 0)
		return 0;
	r = control_new(st->loop, st->srv, &ci, st->ctl_fd, &st->ctl);
	if (r < 0) {
		g_critical("cannot start the control socket: %s",
			   g_strerror(-r));
		return -1;
	}
	st->ctl_fd = -1;
	return 0;
}

/* In the foreground: what is served and how QEMU attaches. */
static void print_banner(const struct state *st)
{
	const struct options *o = &st->opt;

	fprintf(stderr,
		"ivshmem-server: listening on %s (%s%s%s, %" PRIu64 " bytes, %u vector%s)\n"
		"ivshmem-server: attach QEMU with:\n"
		"  -chardev socket,path=%s,id=ivshmem0 -device ivshmem-doorbell,chardev=ivshmem0,vectors=%u\n",
		o->socket_path, shm_kind_name(o->shm_kind),
		o->shm_kind != IVSHMEM_SHM_MEMFD ? " " : "",
		o->shm_kind != IVSHMEM_SHM_MEMFD ? st->shm_arg : "",
		o->size, o->vectors, o->vectors == 1 ? "" : "s",
		o->socket_path, o->vectors);
	if (o->control_path)
		fprintf(stderr,
			"ivshmem-server: control socket %s (mode %s; ivshmem-ctl uses it)\n",
			o->control_path, o->control_group ? "0660" : "0600");
}

/* Every socket listens: peers and ivshmem-ctl can connect. Tell systemd,
 * and the user (foreground) or the launcher (daemon mode). */
static void announce(struct state *st)
{
	char *status_text = describe(st, st->shm_arg);
	char ok = 0;

	systemd_notify_ready(status_text);
	g_free(status_text);
	if (st->opt.foreground) {
		print_banner(st);
		return;
	}
	log_syslog = true;
	openlog("ivshmem-server", LOG_PID, LOG_DAEMON);
	detach_stdio();
	if (write(st->notify_fd, &ok, 1) != 1) {
		/* the launcher is gone: keep serving */
	}
	close(st->notify_fd);
	st->notify_fd = -1;
}

/* Until SIGTERM or SIGINT. */
static void serve(struct state *st)
{
	ev_run(st->loop, 0);
	systemd_notify_stopping("Stopping: closing every connection");
	if (st->opt.keep_shm)
		st->shm_created = false;
	else if (st->opt.shm_kind == IVSHMEM_SHM_POSIX)
		st->shm_created = true; /* remove it at a clean exit */
}

/* Close and remove what start-up made; status 0 after serving. */
static void teardown(struct state *st, int status)
{
	if (status != 0) {
		char *status_text = g_strdup_printf("Failed to start: %s",
						    log_last_error ?
						    log_last_error :
						    "see the log");

		systemd_notify_status(status_text);
		g_free(status_text);
	}
	/* Before the server: it sends the server's shm fd. */
	control_free(st->ctl);
	st->ctl = NULL;
	ivshmem_server_free(st->srv);
	if (st->listen_fd >= 0)
		close(st->listen_fd);
	if (st->ctl_fd >= 0)
		close(st->ctl_fd);
	if (st->shm_fd >= 0)
		close(st->shm_fd);
	cleanup_files(st);
	if (st->pidfile_written)
		unlink(st->opt.pid_file);
	for (unsigned i = 0; i < st->io_cap; i++)
		g_free(st->io[i]);
	g_free(st->io);
	if (st->loop)
		ev_loop_destroy(st->loop);
	options_free(&st->opt);
	g_free(log_last_error);
	log_last_error = NULL;
}

int main(int argc, char **argv)
{
	struct state st = {
		.listen_fd = -1, .ctl_fd = -1, .shm_fd = -1, .notify_fd = -1,
	};
	int status = 1, r;

	r = options_parse(argc, argv, &st.opt);
	if (r != OPTIONS_RUN)
		return r == OPTIONS_EXIT_OK ? 0 : 1;
	prepare_process(&st);
	if (open_sockets(&st) == 0 && open_shm(&st) == 0 &&
	    become_daemon(&st) == 0 && start_loop(&st) == 0 &&
	    start_server(&st) == 0 && start_control(&st) == 0) {
		announce(&st);
		serve(&st);
		status = 0;
	}
	teardown(&st, status);
	return status;
}
