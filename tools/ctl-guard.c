/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: surviving shared memory that shrinks under us. A POSIX
 * object or a file can be truncated by any peer, and touching the mapping
 * past the new end raises SIGBUS (libivshmem(3), "When the shared memory
 * shrinks"). Copies go through ctl_guard_copy(), which stops at the fault
 * and says how far it got; any other fault in a registered region (the
 * library's channel code reads it too) ends the program with a sentence
 * instead of a core dump.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#define CHUNK 4096u

static struct {
	uintptr_t start, end;           /* the registered region */
	sigjmp_buf env;
	volatile sig_atomic_t armed;    /* a guarded copy is running */
	bool installed;
} guard;

static const char shrank[] =
	"ivshmem-ctl: the shared memory shrank while in use: another peer "
	"truncated it (ivshmem-server --memfd seals it against that)\n";

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	(void)uc;
	if (a >= guard.start && a < guard.end) {
		if (guard.armed) {
			guard.armed = 0;
			siglongjmp(guard.env, 1);
		}
		if (write(STDERR_FILENO, shrank, sizeof(shrank) - 1) < 0) {
			/* Nothing more to say it with. */
		}
		_exit(CTL_EXIT_FAILURE);
	}
	/* Not ours: the default action, when the access is made again. */
	signal(sig, SIG_DFL);
}

void ctl_guard_region(const void *addr, size_t size)
{
	struct sigaction sa;

	guard.start = (uintptr_t)addr;
	guard.end = addr ? guard.start + size : 0;
	if (guard.installed || !addr)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) == 0)
		guard.installed = true;
}

/*
 * The shared memory is at shm (src when reading, dst when writing), in
 * the registered region: copy in chunks that end on its page boundaries,
 * where a truncated file stops being readable, so the count is exact to
 * the page.
 */
size_t ctl_guard_copy(void *dst, const void *src, size_t len, bool to_shm)
{
	uintptr_t shm = (uintptr_t)(to_shm ? dst : src);
	volatile size_t done = 0;

	if (sigsetjmp(guard.env, 1))
		return done;
	guard.armed = 1;
	while (done < len) {
		size_t n = CHUNK - (size_t)((shm + done) % CHUNK);

		if (n > len - done)
			n = len - done;
		memcpy((char *)dst + done, (const char *)src + done, n);
		done += n;
	}
	guard.armed = 0;
	return done;
}
