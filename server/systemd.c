/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "systemd.h"

#ifdef HAVE_LIBSYSTEMD

static void close_passed(int n)
{
	for (int i = 0; i < n; i++)
		close(SD_LISTEN_FDS_START + i);
}

/* The path fd is bound to, absolute; NULL for an abstract or unnamed
 * socket. */
static char *bound_path(int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	size_t n;
	char *path;

	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    len <= offsetof(struct sockaddr_un, sun_path) ||
	    sa.sun_path[0] == '\0')
		return NULL;
	n = len - offsetof(struct sockaddr_un, sun_path);
	if (n > sizeof(sa.sun_path))
		n = sizeof(sa.sun_path);
	path = g_strndup(sa.sun_path, n);
	/* systemd binds the absolute path of ListenStream=;
	 * systemd-socket-activate binds -l as given, relative to the
	 * directory we inherited. */
	if (!g_path_is_absolute(path)) {
		char *abs = g_canonicalize_filename(path, NULL);

		g_free(path);
		path = abs;
	}
	return path;
}

int systemd_listen_socket(int *fd_out, char **path_out)
{
	int n, fd, r, fl;
	char *path;

	/* Unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES: nothing we
	 * start could take them for its own. */
	n = sd_listen_fds(1);
	if (n < 0) {
		g_critical("cannot take the socket systemd passed (LISTEN_FDS): %s",
			   g_strerror(-n));
		return -1;
	}
	if (n == 0)
		return 0;
	if (n > 1) {
		close_passed(n);
		g_critical("systemd passed %d sockets, and ivshmem-server serves one: give its .socket unit a single ListenStream= with a path",
			   n);
		return -1;
	}
	fd = SD_LISTEN_FDS_START;
	r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
	if (r <= 0) {
		close_passed(n);
		if (r < 0)
			g_critical("cannot check the socket systemd passed (fd %d): %s",
				   fd, g_strerror(-r));
		else
			g_critical("the socket systemd passed (fd %d) is not a listening UNIX stream socket: give its .socket unit ListenStream= with a path (not Accept=yes)",
				   fd);
		return -1;
	}
	path = bound_path(fd);
	if (!path) {
		close_passed(n);
		g_critical("the socket systemd passed (fd %d) is not bound to a path (abstract or unnamed): give its .socket unit ListenStream= with a path",
			   fd);
		return -1;
	}
	/* Peers are accepted without blocking the loop, and nothing we may
	 * ever start inherits the socket. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    (fl = fcntl(fd, F_GETFD)) < 0 ||
	    fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
		g_critical("cannot make the socket systemd passed (%s) non-blocking and close-on-exec: %s",
			   path, g_strerror(errno));
		close_passed(n);
		g_free(path);
		return -1;
	}
	*fd_out = fd;
	*path_out = path;
	return 1;
}

static void notify(const char *what, const char *state)
{
	int r = sd_notify(0, state);

	if (r < 0)
		g_warning("cannot tell systemd (NOTIFY_SOCKET) %s: %s", what,
			  g_strerror(-r));
}

void systemd_notify_ready(const char *status)
{
	char *s = g_strdup_printf("READY=1\nMAINPID=%ld\nSTATUS=%s",
				  (long)getpid(), status);

	notify("that the server is ready", s);
	g_free(s);
}

void systemd_notify_stopping(const char *status)
{
	char *s = g_strdup_printf("STOPPING=1\nSTATUS=%s", status);

	notify("that the server is stopping", s);
	g_free(s);
}

void systemd_notify_status(const char *status)
{
	char *s = g_strdup_printf("STATUS=%s", status);

	notify("the server's status", s);
	g_free(s);
}

#else /* !HAVE_LIBSYSTEMD */

/* Is the environment variable LISTEN_PID our pid? */
static bool listen_pid_is_ours(void)
{
	const char *s = getenv("LISTEN_PID");
	char *end;
	long pid;

	if (!s || !*s)
		return false;
	errno = 0;
	pid = strtol(s, &end, 10);
	return !errno && !*end && pid == (long)getpid();
}

int systemd_listen_socket(int *fd, char **path)
{
	if (!getenv("LISTEN_FDS") || !listen_pid_is_ours())
		return 0;
	/* Listening on -S instead would fail on systemd's live socket, or
	 * leave it without a server. */
	g_critical("started with a socket from systemd (LISTEN_FDS), but this ivshmem-server was built without libsystemd: rebuild it with -Dsystemd=enabled, or start ivshmem-server.service without its .socket unit");
	return -1;
}

void systemd_notify_ready(const char *status)
{
	const char *s = getenv("NOTIFY_SOCKET");

	if (s && *s)
		g_warning("NOTIFY_SOCKET is set, but this ivshmem-server was built without libsystemd and cannot say it is ready: rebuild it with -Dsystemd=enabled, or run it as Type=simple");
}

void systemd_notify_stopping(const char *status)
{
}

void systemd_notify_status(const char *status)
{
}

#endif
