/* SPDX-License-Identifier: MIT */
/*
 * The test program inside the test guest (tests/guest/image.sh puts it in
 * the initramfs, statically linked): it reads one command per line on the
 * console and answers with one line, "ok ..." or "err ...", so the host
 * test drives the guest side of libivshmem step by step.
 *
 *   open ADDR vfio|sysfs|auto    -> ok DEV ID MODE VECTORS POLL_US ADDR [WHY]
 *   bind ADDR                    -> ok
 *   list                         -> ok N ADDR,DOORBELL,VECTORS,SIZE,DRIVER,GROUP ...
 *   fill DEV OFF LEN SEED        -> ok (writes a pattern)
 *   check DEV OFF LEN SEED       -> ok | err byte N differs
 *   ring DEV ID VECTOR           -> ok
 *   wait DEV VECTOR MS           -> ok COUNT | err timeout
 *   echo DEV VECTOR ID N         -> ok (N times: wait for VECTOR, ring ID)
 *   layout DEV OFF NAME RING     -> ok (writes a layout with one channel)
 *   serve DEV OFF NAME END VEC   -> ok N (echoes messages until an empty one)
 *   talk DEV OFF NAME END VEC N  -> ok SENT RUNG SUPPRESSED (sends N, checks
 *                                   each echo, then sends an empty one;
 *                                   stays attached)
 *   detach DEV                   -> ok (the channel talk left attached)
 *   sh COMMAND                   -> "| LINE" per line of its output (stderr
 *                                   too), then ok STATUS
 *   drop                         -> ok (no longer root, but for quit)
 *   close DEV                    -> ok
 *   quit                         -> (powers the guest off)
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ivshmem.h"

#define MAXDEV 4

static struct ivshmem_peer *dev[MAXDEV];
static uint64_t rung[MAXDEV][IVSHMEM_MAX_VECTORS];
/* A channel talk left attached, for the host to look at. */
static struct ivshmem_channel *kept[MAXDEV];

static void on_doorbell(void *user, struct ivshmem_peer *peer,
			unsigned vector, uint64_t count)
{
	(void)peer;
	rung[(intptr_t)user][vector] += count;
}

static const struct ivshmem_peer_ops ops = { .doorbell = on_doorbell };

static struct ivshmem_peer *get_dev(int i)
{
	return i >= 0 && i < MAXDEV ? dev[i] : NULL;
}

static uint8_t pattern(unsigned seed, uint64_t i)
{
	return (uint8_t)(seed * 131u + i * 7u + (i >> 8));
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until vector has been rung: 1, or 0 on timeout. */
static int wait_rung(int d, unsigned vector, int ms, uint64_t *count)
{
	int64_t end = now_ms() + ms;

	for (;;) {
		struct pollfd pfd = { .fd = ivshmem_peer_get_fd(dev[d]),
				      .events = POLLIN };
		int64_t left;

		ivshmem_peer_dispatch(dev[d]);
		if (rung[d][vector]) {
			*count = rung[d][vector];
			rung[d][vector] = 0;
			return 1;
		}
		left = end - now_ms();
		if (left <= 0)
			return 0;
		poll(&pfd, 1, (int)left);
	}
}

static const char *mode_name(int mode)
{
	return mode == IVSHMEM_PCI_MODE_VFIO ? "vfio" :
	       mode == IVSHMEM_PCI_MODE_POLL ? "poll" : "plain";
}

static void cmd_open(const char *addr, const char *how)
{
	struct ivshmem_peer_config cfg = { 0 };
	struct ivshmem_pci_info info;
	char why[256];
	unsigned flags = strcmp(how, "vfio") == 0 ? IVSHMEM_PCI_VFIO :
			 strcmp(how, "sysfs") == 0 ? IVSHMEM_PCI_SYSFS : 0;
	int d, r;

	for (d = 0; d < MAXDEV && dev[d]; d++)
		;
	if (d == MAXDEV) {
		printf("err too many devices\n");
		return;
	}
	r = ivshmem_peer_new(&cfg, &ops, (void *)(intptr_t)d, &dev[d]);
	if (!r)
		r = ivshmem_peer_open_pci(dev[d], strcmp(addr, "-") ? addr : NULL,
					  flags, why, sizeof(why));
	if (r) {
		printf("err %d %s\n", r, why);
		ivshmem_peer_free(dev[d]);
		dev[d] = NULL;
		return;
	}
	ivshmem_peer_get_pci(dev[d], &info);
	printf("ok %d %d %s %u %u %s%s%s\n", d, ivshmem_peer_get_id(dev[d]),
	       mode_name(info.mode), info.vectors, info.poll_us,
	       info.address, info.why[0] ? " " : "", info.why);
}

static void cmd_list(void)
{
	struct ivshmem_pci_device v[8];
	int n = ivshmem_pci_list(v, 8);

	if (n < 0) {
		printf("err %s\n", strerror(-n));
		return;
	}
	printf("ok %d", n);
	for (int i = 0; i < n && i < 8; i++)
		printf(" %s,%d,%u,%" PRIu64 ",%s,%d", v[i].address, v[i].doorbell,
		       v[i].vectors, v[i].shm_size,
		       v[i].driver[0] ? v[i].driver : "-", v[i].iommu_group);
	printf("\n");
}

static void cmd_pattern(int d, uint64_t off, uint64_t len, unsigned seed,
			bool fill)
{
	uint8_t *mem;
	uint64_t size;

	if (ivshmem_peer_get_shm(dev[d], (void **)&mem, &size) < 0 ||
	    off > size || len > size - off) {
		printf("err outside the shared memory\n");
		return;
	}
	for (uint64_t i = 0; i < len; i++) {
		if (fill) {
			mem[off + i] = pattern(seed, i);
		} else if (mem[off + i] != pattern(seed, i)) {
			printf("err byte %" PRIu64 " differs\n", i);
			return;
		}
	}
	printf("ok\n");
}

static struct ivshmem_channel *attach(int d, uint64_t off, const char *name,
				      unsigned end, unsigned vector)
{
	struct ivshmem_channel_config cfg = {
		.offset = off, .name = name, .end = end, .vector = vector,
	};
	struct ivshmem_channel *ch;
	int64_t until = now_ms() + 20000;
	int r;

	/* The layout may not be written yet. */
	while ((r = ivshmem_channel_attach(dev[d], &cfg, &ch)) == -ENOENT ||
	       r == -EPROTONOSUPPORT || r == -EBADMSG) {
		if (now_ms() > until)
			break;
		usleep(10000);
	}
	if (r) {
		printf("err attach: %s\n", strerror(-r));
		return NULL;
	}
	return ch;
}

static void cmd_serve(int d, uint64_t off, const char *name, unsigned end,
		      unsigned vector)
{
	static uint8_t buf[65536];
	struct ivshmem_channel *ch = attach(d, off, name, end, vector);
	unsigned n = 0;

	if (!ch)
		return;
	for (;;) {
		ssize_t k = ivshmem_channel_recv(ch, buf, sizeof(buf));
		int r;

		if (k == -EAGAIN) {
			r = ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_READABLE,
						 30000);
			if (r <= 0) {
				printf("err serve: %s after %u\n",
				       r ? strerror(-r) : "timeout", n);
				break;
			}
			continue;
		}
		if (k < 0) {
			printf("err serve: %s after %u\n", strerror((int)-k), n);
			break;
		}
		if (k == 0) {
			printf("ok %u\n", n);
			break;
		}
		while ((r = ivshmem_channel_send(ch, buf, (size_t)k)) == -EAGAIN)
			ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_WRITABLE, 30000);
		if (r) {
			printf("err serve send: %s after %u\n", strerror(-r), n);
			break;
		}
		n++;
	}
	ivshmem_channel_detach(ch);
}

static void cmd_talk(int d, uint64_t off, const char *name, unsigned end,
		     unsigned vector, unsigned n)
{
	static uint8_t out[2048], in[2048];
	struct ivshmem_channel *ch = attach(d, off, name, end, vector);
	struct ivshmem_channel_stats st;
	unsigned seed = 7, sent = 0, got = 0, burst = 8;
	size_t lens[8], max;

	if (!ch)
		return;
	ivshmem_channel_get_stats(ch, &st);
	max = st.max_msg < sizeof(out) ? st.max_msg : sizeof(out);
	while (got < n) {
		while (sent < n && sent - got < burst) {
			size_t len = 1 + (size_t)rand_r(&seed) % max;
			int r;

			for (size_t i = 0; i < len; i++)
				out[i] = (uint8_t)(sent * 7u + i * 13u);
			r = ivshmem_channel_send(ch, out, len);
			if (r == -EAGAIN)
				break;
			if (r) {
				printf("err talk send %u: %s\n", sent, strerror(-r));
				goto out;
			}
			lens[sent % burst] = len;
			sent++;
		}
		ssize_t k = ivshmem_channel_recv(ch, in, sizeof(in));

		if (k == -EAGAIN) {
			int r = ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_READABLE |
						     IVSHMEM_CHANNEL_WRITABLE,
						     30000);
			if (r <= 0) {
				printf("err talk wait at %u: %s\n", got,
				       r ? strerror(-r) : "timeout");
				goto out;
			}
			continue;
		}
		if (k < 0 || (size_t)k != lens[got % burst]) {
			printf("err talk echo %u: %zd bytes\n", got, k);
			goto out;
		}
		for (ssize_t i = 0; i < k; i++) {
			if (in[i] != (uint8_t)(got * 7u + i * 13u)) {
				printf("err talk echo %u: byte %zd differs\n", got, i);
				goto out;
			}
		}
		got++;
	}
	while (ivshmem_channel_send(ch, "", 0) == -EAGAIN)
		ivshmem_channel_wait(ch, IVSHMEM_CHANNEL_WRITABLE, 30000);
	ivshmem_channel_get_stats(ch, &st);
	printf("ok %u %" PRIu64 " %" PRIu64 "\n", got, st.doorbells_rung,
	       st.doorbells_suppressed);
	ivshmem_channel_detach(kept[d]);
	kept[d] = ch;
	return;
out:
	ivshmem_channel_detach(ch);
}

static void run(char *line)
{
	char a[64], b[64];
	unsigned long long x, y;
	unsigned u, v, w;
	int d = -1, n;

	if (sscanf(line, "open %63s %63s", a, b) == 2)
		return cmd_open(a, b);
	if (strcmp(line, "list") == 0)
		return cmd_list();
	if (sscanf(line, "bind %63s", a) == 1) {
		char why[256];
		int r = ivshmem_pci_bind(a, why, sizeof(why));

		r ? printf("err %s\n", why) : printf("ok\n");
		return;
	}
	if (strcmp(line, "drop") == 0) {
		/* The effective IDs only: quit takes root back to power
		 * off. */
		if (setegid(65534) < 0 || seteuid(65534) < 0)
			printf("err %s\n", strerror(errno));
		else
			printf("ok\n");
		return;
	}
	if (strncmp(line, "sh ", 3) == 0) {
		char *cmd = malloc(strlen(line) + 8), out[1024];
		FILE *f;
		int st;

		sprintf(cmd, "%s 2>&1", line + 3);
		f = popen(cmd, "r");
		free(cmd);
		if (!f) {
			printf("err %s\n", strerror(errno));
			return;
		}
		while (fgets(out, sizeof(out), f)) {
			out[strcspn(out, "\n")] = '\0';
			printf("| %s\n", out);
		}
		st = pclose(f);
		printf("ok %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return;
	}
	if (sscanf(line, "%63s %d%n", a, &d, &n) < 2 || !get_dev(d)) {
		printf("err unknown command or device: %s\n", line);
		return;
	}
	line += n;
	if (strcmp(a, "fill") == 0 && sscanf(line, "%llu %llu %u", &x, &y, &u) == 3)
		return cmd_pattern(d, x, y, u, true);
	if (strcmp(a, "check") == 0 && sscanf(line, "%llu %llu %u", &x, &y, &u) == 3)
		return cmd_pattern(d, x, y, u, false);
	if (strcmp(a, "ring") == 0 && sscanf(line, "%u %u", &u, &v) == 2) {
		int r = ivshmem_peer_ring(dev[d], (int)u, v);

		r ? printf("err %s\n", strerror(-r)) : printf("ok\n");
		return;
	}
	if (strcmp(a, "wait") == 0 && sscanf(line, "%u %u", &u, &v) == 2) {
		uint64_t c;

		if (u >= IVSHMEM_MAX_VECTORS)
			printf("err no vector %u\n", u);
		else if (wait_rung(d, u, (int)v, &c))
			printf("ok %" PRIu64 "\n", c);
		else
			printf("err timeout\n");
		return;
	}
	if (strcmp(a, "echo") == 0 && sscanf(line, "%u %u %u", &u, &v, &w) == 3) {
		uint64_t c;

		for (unsigned i = 0; i < w; i++) {
			if (u >= IVSHMEM_MAX_VECTORS || !wait_rung(d, u, 10000, &c)) {
				printf("err echo %u: timeout\n", i);
				return;
			}
			ivshmem_peer_ring(dev[d], (int)v, u);
		}
		printf("ok\n");
		return;
	}
	if (strcmp(a, "layout") == 0 && sscanf(line, "%llu %63s %u", &x, b, &u) == 3) {
		struct ivshmem_channel_spec spec = { .name = b,
						     .ring_size = { u, u } };
		void *mem;
		uint64_t size;
		int r = ivshmem_peer_get_shm(dev[d], &mem, &size);

		if (!r)
			r = ivshmem_layout_write(mem, size, x, &spec, 1, 0);
		r ? printf("err %s\n", strerror(-r)) : printf("ok\n");
		return;
	}
	if (strcmp(a, "serve") == 0 &&
	    sscanf(line, "%llu %63s %u %u", &x, b, &u, &v) == 4)
		return cmd_serve(d, x, b, u, v);
	if (strcmp(a, "talk") == 0 &&
	    sscanf(line, "%llu %63s %u %u %u", &x, b, &u, &v, &w) == 5)
		return cmd_talk(d, x, b, u, v, w);
	if (strcmp(a, "detach") == 0) {
		ivshmem_channel_detach(kept[d]);
		kept[d] = NULL;
		printf("ok\n");
		return;
	}
	if (strcmp(a, "close") == 0) {
		ivshmem_channel_detach(kept[d]);
		kept[d] = NULL;
		ivshmem_peer_free(dev[d]);
		dev[d] = NULL;
		printf("ok\n");
		return;
	}
	printf("err bad arguments: %s%s\n", a, line);
}

int main(void)
{
	struct termios t;
	char line[512];

	/* The console is a tty: no echo, no CR-LF. */
	if (tcgetattr(0, &t) == 0) {
		t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		t.c_oflag &= ~(tcflag_t)OPOST;
		tcsetattr(0, TCSANOW, &t);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("agent ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, "quit") == 0)
			break;
		if (line[0])
			run(line);
	}
	for (int d = 0; d < MAXDEV; d++) {
		ivshmem_channel_detach(kept[d]);
		ivshmem_peer_free(dev[d]);
	}
	fflush(stdout);
	if (seteuid(0) < 0)
		perror("agent: seteuid");
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
