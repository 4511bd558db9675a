/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "procfd.h"
#include "socket-private.h"

const char *server_path(void)
{
	const char *env = getenv("IVSHMEM_SERVER");

	return env && *env ? env : IVSHMEM_SERVER_PATH;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copy src to dst with mode, or fail the test. */
static void copy_file(const char *src, const char *dst, mode_t mode)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *data = NULL;
	gsize len;

	ck_assert_msg(g_file_get_contents(src, &data, &len, &error),
		      "cannot read %s: %s", src, error->message);
	ck_assert_msg(g_file_set_contents_full(dst, data, (gssize)len,
					       G_FILE_SET_CONTENTS_NONE,
					       (int)mode, &error),
		      "cannot write %s: %s", dst, error->message);
}

/* The soname of the library file at path: libivshmem.so.0 of
 * .../libivshmem.so.0.2.0. */
static char *soname_of(const char *path)
{
	g_autofree char *base = g_path_get_basename(path);
	char *so = strstr(base, ".so.");
	char *dot = so ? strchr(so + 4, '.') : NULL;

	if (dot)
		*dot = '\0';
	return g_strdup(base);
}

char *tprog_copy(const char *path)
{
	char dir[] = "/tmp/ivshmem-prog-XXXXXX";
	g_autofree char *bin = NULL, *lib = NULL, *base = NULL;
	g_autofree char *soname = soname_of(IVSHMEM_LIB_PATH), *so = NULL;
	char *copy;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	bin = g_build_filename(dir, "bin", NULL);
	lib = g_build_filename(dir, "libivshmem", NULL);
	ck_assert_int_eq(mkdir(bin, 0755), 0);
	ck_assert_int_eq(mkdir(lib, 0755), 0);
	so = g_build_filename(lib, soname, NULL);
	copy_file(IVSHMEM_LIB_PATH, so, 0644);
	base = g_path_get_basename(path);
	copy = g_build_filename(bin, base, NULL);

	copy_file(path, copy, 0755);
	return copy;
}

void tprog_copy_remove(char *copy)
{
	g_autofree char *bin = g_path_get_dirname(copy);
	g_autofree char *dir = g_path_get_dirname(bin);
	g_autofree char *lib = g_build_filename(dir, "libivshmem", NULL);
	g_autofree char *soname = soname_of(IVSHMEM_LIB_PATH);
	g_autofree char *so = g_build_filename(lib, soname, NULL);

	unlink(copy);
	unlink(so);
	rmdir(bin);
	rmdir(lib);
	ck_assert_msg(rmdir(dir) == 0, "cannot remove %s: %s", dir,
		      g_strerror(errno));
	g_free(copy);
}

bool shm_exists(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	return stat(path, &st) == 0;
}

bool path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

bool tserver_log_wait(const struct tserver *s, const char *needle,
		      int timeout_ms)
{
	double deadline = now_seconds() + timeout_ms / 1000.0;

	for (;;) {
		char *log = tserver_log(s);
		bool found = strstr(log, needle) != NULL;

		g_free(log);
		if (found)
			return true;
		if (now_seconds() > deadline)
			return false;
		usleep(5000);
	}
}

bool tserver_log_has(const struct tserver *s, const char *needle)
{
	return tserver_log_wait(s, needle, 0);
}

void tserver_expect_log(const struct tserver *s, const char *needle)
{
	char *log;

	if (tserver_log_wait(s, needle, TWAIT_MS))
		return;
	log = tserver_log(s);
	ck_abort_msg("no '%s' in the server's log; its log:\n%s", needle, log);
	g_free(log);
}

void tserver_expect_one_message(const struct tserver *s, const char *needle)
{
	char *log = tserver_log(s);
	char **lines = g_strsplit(log, "\n", -1);
	unsigned n = 0;

	for (unsigned i = 0; lines[i]; i++) {
		if (!lines[i][0] || g_str_has_prefix(lines[i], "Try "))
			continue;
		n++;
		ck_assert_msg(g_str_has_prefix(lines[i], "ivshmem-server: "),
			      "unexpected line '%s'", lines[i]);
		ck_assert_msg(strstr(lines[i], needle),
			      "'%s' does not say '%s'", lines[i], needle);
	}
	ck_assert_msg(n == 1, "want one message, got:\n%s", log);
	g_strfreev(lines);
	g_free(log);
}

int count_open_fds(void)
{
	return procfd_count(getpid());
}

/* What fd points to, as /proc shows it ("?" if it cannot be read):
 * g_free it. */
static char *fd_target(int fd)
{
	char path[64], target[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return g_strdup("?");
	target[n] = '\0';
	return g_strdup(target);
}

bool fd_is_eventfd(int fd)
{
	g_autofree char *target = fd_target(fd);

	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

ssize_t tsend_fds(int sock, const void *buf, size_t len, const int *fds,
		  unsigned nfds, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	ck_assert_uint_le(nfds, 16);
	memset(&ctl, 0, sizeof(ctl));
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
}

int tconnect_retry(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double deadline = now_seconds() + TWAIT_MS / 1000.0;

	ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

		ck_assert_int_ge(fd, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		e = errno;
		close(fd);
		ck_assert_msg((e == ENOENT || e == ECONNREFUSED) &&
			      now_seconds() < deadline, "connect %s: %s", path,
			      g_strerror(e));
		usleep(2000);
	}
}

void twrite_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "send: %s", g_strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* ---- server process ------------------------------------------------------ */

void tserver_prepare(struct tserver *s)
{
	static unsigned counter;

	memset(s, 0, sizeof(*s));
	s->pid = -1;
	snprintf(s->dir, sizeof(s->dir), "/tmp/ivshmem-test-XXXXXX");
	if (!mkdtemp(s->dir))
		abort();
	snprintf(s->sock, sizeof(s->sock), "%s/sock", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/log", s->dir);
	snprintf(s->shm_name, sizeof(s->shm_name), "ivshmem-test-%ld-%u",
		 (long)getpid(), counter++);
}

static pid_t spawn(struct tserver *s, const char *const *argv)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int devnull = open("/dev/null", O_RDONLY);

		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static const char **build_argv(const char *const *head, const char *const *args)
{
	size_t nh = 0, na = 0;
	const char **argv;

	while (head && head[nh])
		nh++;
	while (args && args[na])
		na++;
	argv = g_new0(const char *, nh + na + 1);
	for (size_t i = 0; i < nh; i++)
		argv[i] = head[i];
	for (size_t i = 0; i < na; i++)
		argv[nh + i] = args[i];
	return argv;
}

int tserver_start(struct tserver *s, const char *const *args)
{
	const char *head[] = { server_path(), "-F", "-S", s->sock, "-M",
			       s->shm_name, NULL };
	const char **argv;
	double deadline;

	tserver_prepare(s);
	head[3] = s->sock;
	head[5] = s->shm_name;
	argv = build_argv(head, args);
	s->pid = spawn(s, argv);
	g_free(argv);
	if (s->pid < 0)
		return -1;

	/* Ready once a socket listens at the path we gave (or at the one a
	 * -S in args gave): the file appears at bind(), a moment before
	 * listen(), and a connect in between would be refused. */
	const char *sock = s->sock;

	for (size_t i = 0; args && args[i]; i++)
		if ((!strcmp(args[i], "-S") || !strcmp(args[i], "--socket")) &&
		    args[i + 1])
			sock = args[i + 1];
	deadline = now_seconds() + 5;
	while (now_seconds() < deadline) {
		struct stat st;

		/* Unreadable /proc/net/unix (< 0): trust the file. */
		if (lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    ivshmem_unix_listening(sock) != 0)
			return 0;
		if (!tserver_alive(s))
			return -1;
		usleep(2000);
	}
	return -1;
}

#define MAX_TRACKED 64

static struct tracked {
	unsigned n;
	struct tserver srv[MAX_TRACKED];
} *tracked;

int tserver_tracking_init(void)
{
	tracked = mmap(NULL, sizeof(*tracked), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tracked == MAP_FAILED) {
		perror("mmap");
		tracked = NULL;
		return -1;
	}
	return 0;
}

struct tserver *tserver_tracked(void)
{
	struct tserver *s;

	if (!tracked || tracked->n >= MAX_TRACKED)
		return NULL;
	s = &tracked->srv[tracked->n++];
	memset(s, 0, sizeof(*s));
	s->pid = -1;
	return s;
}

struct tserver *tserver_start_tracked(const char *const *args)
{
	struct tserver *s = tserver_tracked();

	if (!s) {
		fprintf(stderr, "no free tracked-server slot\n");
		return NULL;
	}
	return tserver_start(s, args) == 0 ? s : NULL;
}

void tserver_reap_tracked(void)
{
	if (!tracked)
		return;
	for (unsigned i = 0; i < tracked->n; i++)
		if (tracked->srv[i].dir[0])
			tserver_cleanup(&tracked->srv[i]);
	tracked->n = 0;
}

/* Wait for pid to exit until deadline (now_seconds()), then SIGKILL it.
 * Returns its wait status. */
static int reap(pid_t pid, double deadline)
{
	int status = 0;

	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (now_seconds() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(1000);
	}
	return status;
}

int tserver_run(struct tserver *s, const char *const *args, int timeout_ms)
{
	const char *head[] = { server_path(), NULL };
	const char **argv = build_argv(head, args);
	double deadline = now_seconds() + timeout_ms / 1000.0;
	int status;

	s->pid = spawn(s, argv);
	g_free(argv);
	if (s->pid < 0)
		return -1;
	status = reap(s->pid, deadline);
	s->pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool tserver_alive(const struct tserver *s)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool alive = false;

	if (s->pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)s->pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		alive = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}

static void unlink_shm(const struct tserver *s)
{
	char name[80];

	snprintf(name, sizeof(name), "/%s", s->shm_name);
	shm_unlink(name);
}

/* The server's default control socket: the socket's path + ".ctl". */
static void ctl_path(const struct tserver *s, char out[sizeof(s->sock) + 4])
{
	snprintf(out, sizeof(s->sock) + 4, "%s.ctl", s->sock);
}

void tserver_cleanup(struct tserver *s)
{
	char ctl[sizeof(s->sock) + 4];

	ctl_path(s, ctl);
	unlink(s->sock);
	unlink(ctl);
	unlink(s->log);
	unlink_shm(s);
	rmdir(s->dir);
}

int tserver_stop(struct tserver *s)
{
	double deadline = now_seconds() + 5;
	char ctl[sizeof(s->sock) + 4];
	int status, ret;
	struct stat st;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	status = reap(s->pid, deadline);
	s->pid = -1;
	ret = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	ctl_path(s, ctl);
	if (ret == 0 && (lstat(s->sock, &st) == 0 || lstat(ctl, &st) == 0))
		ret = -2; /* a socket was left behind */
	tserver_cleanup(s);
	return ret;
}

struct tserver *tserver_start_ok(const char *const *args)
{
	struct tserver *s = tserver_start_tracked(args);

	ck_assert_msg(s, "the server did not start");
	tserver_expect_log(s, "ivshmem-server: listening on ");
	return s;
}

void tserver_stop_ok(struct tserver *s)
{
	char dir[sizeof(s->dir)], name[sizeof(s->shm_name)];
	char *log = tserver_log(s);
	int r;

	g_strlcpy(dir, s->dir, sizeof(dir));
	g_strlcpy(name, s->shm_name, sizeof(name));
	r = tserver_stop(s);
	ck_assert_msg(r == 0, "server stop: %d, want 0 (-1: killed by a signal, -2: it left a socket behind); its log:\n%s",
		      r, log);
	g_free(log);
	ck_assert_msg(!shm_exists(name), "shm object %s left behind", name);
	ck_assert_msg(!path_exists(dir), "%s left behind (not empty)", dir);
}

void tserver_term_ok(struct tserver *s)
{
	char *log;
	int r;

	ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
	r = proc_wait_exit(s->pid, TWAIT_MS);
	s->pid = -1;
	if (r == 0)
		return;
	log = tserver_log(s);
	ck_abort_msg("server exit status %d, want 0; its log:\n%s", r, log);
	g_free(log);
}

void tserver_kill(struct tserver *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = -1;
}

char *tserver_log(const struct tserver *s)
{
	char *text = NULL;

	if (!g_file_get_contents(s->log, &text, NULL, NULL))
		return g_strdup("");
	return text;
}

double proc_cpu_seconds(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long utime, stime;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return -1;
	/* fields 14 and 15 (utime, stime); p points at field 2's end */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

long proc_peak_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ---- test peer ------------------------------------------------------------ */

int tpeer_connect(struct tpeer *p, const char *path, unsigned vectors,
		  bool keep_fds)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double deadline = now_seconds() + 2;
	int fd;

	memset(p, 0, sizeof(*p));
	p->sock = p->shm_fd = -1;
	p->id = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		int e = errno;

		close(fd);
		if ((e != ECONNREFUSED && e != ENOENT && e != EAGAIN) ||
		    now_seconds() > deadline)
			return -e;
		usleep(2000);
	}
	p->sock = fd;
	p->vectors = vectors;
	p->keep_fds = keep_fds;
	p->nvec = g_new0(unsigned short, IVSHMEM_MAX_PEERS);
	p->own = g_new(int, vectors);
	for (unsigned v = 0; v < vectors; v++)
		p->own[v] = -1;
	if (keep_fds)
		p->fds = g_hash_table_new(g_direct_hash, g_direct_equal);
	ivshmem_inbuf_init(&p->in);
	return 0;
}

static void free_fdset(struct tpeer *p, int id)
{
	int *set;

	if (!p->fds)
		return;
	set = g_hash_table_lookup(p->fds, GINT_TO_POINTER(id));
	if (!set)
		return;
	for (unsigned v = 0; v < p->vectors; v++)
		if (set[v] >= 0)
			close(set[v]);
	g_hash_table_remove(p->fds, GINT_TO_POINTER(id));
	g_free(set);
}

#define PROTO(...) do { \
	if (why) \
		*why = g_strdup_printf(__VA_ARGS__); \
	if (fd >= 0) \
		close(fd); \
	return -EPROTO; \
} while (0)

int tpeer_recv(struct tpeer *p, int timeout_ms, struct tmsg *m, char **why)
{
	int64_t value;
	int fd = -1, r;
	double deadline = now_seconds() + timeout_ms / 1000.0;

	if (why)
		*why = NULL;
	for (;;) {
		r = ivshmem_wire_recv(p->sock, &p->in, &value, &fd);
		if (r != -EAGAIN)
			break;
		int left = (int)((deadline - now_seconds()) * 1000);
		struct pollfd pfd = { .fd = p->sock, .events = POLLIN };

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -errno;
	}
	if (r <= 0)
		return r;

	memset(m, 0, sizeof(*m));
	m->value = value;
	m->id = -1;
	m->vector = -1;
	switch (p->nmsgs++) {
	case 0:
		if (value != IVSHMEM_PROTOCOL_VERSION || fd >= 0)
			PROTO("first message: version %lld%s, want 0 without fd",
			      (long long)value, fd >= 0 ? " with an fd" : "");
		m->kind = TMSG_VERSION;
		return 1;
	case 1:
		if (value < 0 || value >= IVSHMEM_MAX_PEERS || fd >= 0)
			PROTO("second message: ID %lld%s", (long long)value,
			      fd >= 0 ? " with an fd" : "");
		p->id = (int)value;
		m->kind = TMSG_ID;
		return 1;
	case 2: {
		struct stat st;

		if (value != -1 || fd < 0)
			PROTO("third message: %lld %s, want -1 with the shm fd",
			      (long long)value, fd >= 0 ? "with an fd" : "without fd");
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
			PROTO("the shm fd is not a regular file or memfd");
		p->shm_fd = fd;
		p->shm_size = (uint64_t)st.st_size;
		m->kind = TMSG_SHM;
		return 1;
	}
	}

	if (value < 0 || value >= IVSHMEM_MAX_PEERS)
		PROTO("message %u: peer ID %lld out of range", p->nmsgs,
		      (long long)value);
	m->id = (int)value;
	if (fd < 0) {
		if (m->id == p->id)
			PROTO("a leave for our own ID %d", p->id);
		if (p->nvec[m->id] == 0)
			PROTO("a leave for unknown peer %d", m->id);
		if (p->nvec[m->id] == p->vectors)
			p->npeers--;
		p->nvec[m->id] = 0;
		free_fdset(p, m->id);
		m->kind = TMSG_LEAVE;
		return 1;
	}
	if (!fd_is_eventfd(fd))
		PROTO("vector fd for peer %d is not an eventfd", m->id);
	if (p->nvec[m->id] >= p->vectors)
		PROTO("peer %d got more than %u vectors", m->id, p->vectors);
	if (p->ready && m->id == p->id)
		PROTO("own ID %d announced again after the greeting", m->id);
	m->vector = p->nvec[m->id]++;
	m->kind = TMSG_VECTOR;
	if (m->id == p->id) {
		p->own[m->vector] = fd;
		if (p->nvec[m->id] == p->vectors)
			p->ready = true;
		return 1;
	}
	if (p->nvec[m->id] == p->vectors)
		p->npeers++;
	if (p->keep_fds) {
		int *set = g_hash_table_lookup(p->fds, GINT_TO_POINTER(m->id));

		if (!set) {
			set = g_new(int, p->vectors);
			for (unsigned v = 0; v < p->vectors; v++)
				set[v] = -1;
			g_hash_table_insert(p->fds, GINT_TO_POINTER(m->id), set);
		}
		set[m->vector] = fd;
	} else {
		close(fd);
	}
	return 1;
}

int tpeer_greet(struct tpeer *p, int timeout_ms)
{
	double deadline = now_seconds() + timeout_ms / 1000.0;
	struct tmsg m;

	while (!p->ready) {
		int left = (int)((deadline - now_seconds()) * 1000);
		int r = tpeer_recv(p, left > 0 ? left : 0, &m, NULL);

		if (r <= 0)
			return r == 0 ? -ECONNRESET : r;
	}
	return 0;
}

int tpeer_wait_peers(struct tpeer *p, unsigned npeers, int timeout_ms)
{
	double deadline = now_seconds() + timeout_ms / 1000.0;
	struct tmsg m;

	while (!p->ready || p->npeers != npeers) {
		int left = (int)((deadline - now_seconds()) * 1000);
		int r = tpeer_recv(p, left > 0 ? left : 0, &m, NULL);

		if (r <= 0)
			return r == 0 ? -ECONNRESET : r;
	}
	return 0;
}

int tpeer_fd(const struct tpeer *p, int id, unsigned vector)
{
	int *set;

	if (vector >= p->vectors)
		return -1;
	if (id == p->id)
		return p->own[vector];
	if (!p->fds)
		return -1;
	set = g_hash_table_lookup(p->fds, GINT_TO_POINTER(id));
	return set ? set[vector] : -1;
}

int tpeer_ring(const struct tpeer *p, int id, unsigned vector)
{
	uint64_t one = 1;
	int fd = tpeer_fd(p, id, vector);

	if (fd < 0)
		return -ENOENT;
	if (write(fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

int64_t tpeer_wait_doorbell(const struct tpeer *p, unsigned vector,
			    int timeout_ms)
{
	struct pollfd pfd;
	uint64_t count;
	int fd = tpeer_fd(p, p->id, vector);

	if (fd < 0)
		return -ENOENT;
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	if (read(fd, &count, sizeof(count)) != sizeof(count))
		return -errno;
	return (int64_t)count;
}

void tpeer_close(struct tpeer *p)
{
	if (p->fds) {
		GHashTableIter it;
		gpointer k, v;

		g_hash_table_iter_init(&it, p->fds);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			int *set = v;

			for (unsigned i = 0; i < p->vectors; i++)
				if (set[i] >= 0)
					close(set[i]);
			g_free(set);
		}
		g_hash_table_destroy(p->fds);
	}
	if (p->own)
		for (unsigned v = 0; v < p->vectors; v++)
			if (p->own[v] >= 0)
				close(p->own[v]);
	if (p->shm_fd >= 0)
		close(p->shm_fd);
	if (p->sock >= 0)
		close(p->sock);
	ivshmem_inbuf_clear(&p->in);
	g_free(p->nvec);
	g_free(p->own);
	memset(p, 0, sizeof(*p));
	p->sock = p->shm_fd = p->id = -1;
}

void tpeer_recv_ok(struct tpeer *p, struct tmsg *m, int timeout_ms)
{
	char *why = NULL;
	int r = tpeer_recv(p, timeout_ms, m, &why);

	ck_assert_msg(r == 1, "peer %d, message %u: %d (%s)", p->id, p->nmsgs,
		      r, why ? why : r ? g_strerror(-r) : "EOF");
	g_free(why);
}

void tpeer_join_ok(struct tpeer *p, const char *sock, unsigned vectors,
		   bool keep_fds)
{
	int r = tpeer_connect(p, sock, vectors, keep_fds);

	ck_assert_msg(r == 0, "connect: %s", g_strerror(-r));
	r = tpeer_greet(p, TWAIT_MS);
	ck_assert_msg(r == 0, "greeting: %s", g_strerror(-r));
}

void tpeer_wait_peers_ok(struct tpeer *p, unsigned npeers)
{
	int r = tpeer_wait_peers(p, npeers, TWAIT_MS);

	ck_assert_msg(r == 0, "peer %d waiting for %u peers (has %u): %s",
		      p->id, npeers, p->npeers, g_strerror(-r));
}

void tpeer_expect_quiet(struct tpeer *p, int ms)
{
	struct tmsg m;
	int r = tpeer_recv(p, ms, &m, NULL);

	ck_assert_msg(r == -ETIMEDOUT,
		      "peer %d: unexpected %d (value %lld) instead of silence",
		      p->id, r, r == 1 ? (long long)m.value : 0LL);
}

void tpeer_expect_leave(struct tpeer *p, int id)
{
	struct tmsg m;

	tpeer_recv_ok(p, &m, TWAIT_MS);
	ck_assert_msg(m.kind == TMSG_LEAVE && m.id == id,
		      "peer %d: want leave of %d, got kind %d id %d", p->id,
		      id, m.kind, m.id);
}

void tpeer_drain(struct tpeer *p, int ms)
{
	struct tmsg m;
	char *why = NULL;
	int r;

	while ((r = tpeer_recv(p, ms, &m, &why)) == 1)
		;
	ck_assert_msg(r == -ETIMEDOUT, "peer %d: %d (%s)", p->id, r,
		      why ? why : r ? g_strerror(-r) : "EOF");
}

/* ---- the fd check -------------------------------------------------------- */

#define MAX_FDS_LISTED 4096

/* The fds open before the test, with their targets. In the test's
 * process (a checked fixture). */
static struct fdlist {
	unsigned n;
	int fd[MAX_FDS_LISTED];
	char *target[MAX_FDS_LISTED];
} fds_before;

static void fdlist_read(struct fdlist *l)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	l->n = 0;
	ck_assert_msg(d, "cannot list /proc/self/fd: %s", g_strerror(errno));
	while ((e = readdir(d)) && l->n < MAX_FDS_LISTED) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		l->fd[l->n] = fd;
		l->target[l->n] = fd_target(fd);
		l->n++;
	}
	closedir(d);
}

static void fdlist_clear(struct fdlist *l)
{
	for (unsigned i = 0; i < l->n; i++)
		g_free(l->target[i]);
	l->n = 0;
}

static bool fd_was_open(int fd, const char *target)
{
	for (unsigned i = 0; i < fds_before.n; i++)
		if (fds_before.fd[i] == fd &&
		    strcmp(fds_before.target[i], target) == 0)
			return true;
	return false;
}

static void fd_check_setup(void)
{
	fdlist_read(&fds_before);
}

static void fd_check_teardown(void)
{
	static struct fdlist after;
	GString *leaked = g_string_new(NULL);

	fdlist_read(&after);
	for (unsigned i = 0; i < after.n; i++)
		if (!fd_was_open(after.fd[i], after.target[i]))
			g_string_append_printf(leaked, " %d (%s)", after.fd[i],
					       after.target[i]);
	fdlist_clear(&after);
	fdlist_clear(&fds_before);
	if (leaked->len)
		ck_abort_msg("the test left fds open:%s", leaked->str);
	g_string_free(leaked, TRUE);
}

TCase *tcase_with(const char *name, double timeout, void (*teardown)(void))
{
	TCase *tc = tcase_create(name);

	if (timeout > 0)
		tcase_set_timeout(tc, timeout);
	/* First, so that its teardown runs last, after the case's own. */
	tcase_add_checked_fixture(tc, fd_check_setup, fd_check_teardown);
	if (teardown)
		tcase_add_unchecked_fixture(tc, NULL, teardown);
	return tc;
}

int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	struct rlimit rl;
	int failed;

	/* A thousand test peers need more fds than a login shell's usual
	 * soft limit of 1024. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int run_tracked_suite(Suite *s)
{
	int ret;

	if (tserver_tracking_init() < 0)
		return EXIT_FAILURE;
	ret = run_suite(s);
	tserver_reap_tracked();
	return ret;
}

unsigned long proc_fd_limit_leaving(pid_t pid, unsigned nfree)
{
	enum { MAXFD = 4096 };
	bool *used = g_new0(bool, MAXFD);
	unsigned long lim = 0;
	char path[64];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		long fd = strtol(e->d_name, NULL, 10);

		if (e->d_name[0] != '.' && fd < MAXFD)
			used[fd] = true;
	}
	closedir(d);
	for (unsigned fd = 0; fd < MAXFD && nfree > 0; fd++) {
		if (!used[fd])
			nfree--;
		lim = fd + 1;
	}
	g_free(used);
	return lim;
}

int proc_wait_exit(pid_t pid, int timeout_ms)
{
	double deadline = now_seconds() + timeout_ms / 1000.0;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (r < 0)
			return -2;
		if (now_seconds() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -3;
		}
		usleep(2000);
	}
}

void proc_wait_mapped(pid_t pid, const char *exe_tail, const char *name)
{
	char maps[64], *want = g_strdup_printf("/dev/shm/%s\n", name);
	char *exe = g_strdup_printf("%s\n", exe_tail);
	double deadline = now_seconds() + TWAIT_MS / 1000.0;

	snprintf(maps, sizeof(maps), "/proc/%ld/maps", (long)pid);
	for (;;) {
		char *text = NULL;
		bool found = g_file_get_contents(maps, &text, NULL, NULL) &&
			     strstr(text, exe) && strstr(text, want);

		g_free(text);
		if (found)
			break;
		ck_assert_msg(now_seconds() < deadline,
			      "process %ld never mapped %s", (long)pid, name);
		usleep(2000);
	}
	g_free(exe);
	g_free(want);
}
