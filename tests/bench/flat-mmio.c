/* SPDX-License-Identifier: MIT */
/*
 * Cost of one access to the ivshmem-flat core, as an emulator pays it on
 * every guest MMIO access and incoming event. Kinds (no trace hook, as in
 * production):
 *
 *  - ivposition: 32-bit read of IVPOSITION
 *  - intrstatus: 32-bit read of INTRSTATUS in latched mode (read and
 *    clear, then the IRQ level check)
 *  - doorbell:   32-bit write of DOORBELL on a connected device whose
 *    notify is a no-op returning 0 (one indirect call inside the core)
 *  - deliver:    an event on vector 3 in latched mode (latch, level check)
 *  - bad:        a 16-bit read (bad access: counted, 0 returned)
 *
 * Floors, in the same run:
 *
 *  - floor-call: an indirect call through a function pointer to a handler
 *    that does one volatile load and returns it, the least an emulator's
 *    MMIO dispatch to any device model costs. Every kind's ratio is
 *    against it.
 *  - floor-load: one volatile load (informational).
 *
 * The core is called directly, as an emulator's own MMIO callback does; it
 * lives in its own static library, so no call is inlined. Each kind runs
 * in its own noinline loop; the timed accesses are split into rounds, each
 * running every kind in another order, so that drift hits all alike. A
 * kind's time is the median over the rounds, its ratio the median of the
 * per-round ratios.
 *
 * --only KIND --n N runs exactly N accesses of KIND (or "empty": the same
 * loop without the access) in the function run_loop and prints nothing
 * else: flat-mmio.sh runs that under callgrind for instructions per access
 * (the empty loop subtracted).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "ivshmem-flat.h"

enum kind {
	K_IVPOSITION,
	K_INTRSTATUS,
	K_DOORBELL,
	K_DELIVER,
	K_BAD,
	K_FLOOR_CALL,
	K_FLOOR_LOAD,
	K_EMPTY,
	NKINDS
};

static const char *const kind_names[NKINDS] = {
	"ivposition", "intrstatus", "doorbell", "deliver", "bad",
	"floor-call", "floor-load", "empty",
};

/* The kinds a timed run reports (not the empty loop). */
#define NTIMED K_EMPTY

struct devices {
	struct ivshmem_flat plain;      /* default mode, ID 1, connected */
	struct ivshmem_flat latched;    /* latched mode, mask 0 */
	volatile uint32_t reg;          /* the floors' register */
};

static int noop_notify(void *opaque, uint16_t peer, uint16_t vector)
{
	return 0;
}

static void noop_set_irq(void *opaque, unsigned line, bool level)
{
}

static const struct ivshmem_flat_ops ops = {
	.notify = noop_notify,
	.set_irq = noop_set_irq,
};

/* The floor's handler, behind a pointer the compiler cannot see through. */
static uint32_t floor_read(void *opaque, uint64_t offset, unsigned size)
{
	struct devices *d = opaque;

	return d->reg;
}

static uint32_t (*volatile floor_fn)(void *, uint64_t, unsigned) =
	floor_read;

static void setup(struct devices *d)
{
	if (ivshmem_flat_init(&d->plain, 0, &ops, NULL) ||
	    ivshmem_flat_init(&d->latched, IVSHMEM_FLAT_LATCHED, &ops, NULL) ||
	    ivshmem_flat_set_id(&d->plain, 1)) {
		fprintf(stderr, "flat-mmio: init failed\n");
		exit(1);
	}
	ivshmem_flat_set_connected(&d->plain, true);
	d->reg = 1;
}

/*
 * N accesses of one kind. noinline and one switch outside the loops: each
 * loop is the access and the counter, nothing else (callgrind's
 * --toggle-collect names this function).
 */
__attribute__((noinline))
uint32_t run_loop(struct devices *d, enum kind k, uint64_t n);
__attribute__((noinline))
uint32_t run_loop(struct devices *d, enum kind k, uint64_t n)
{
	uint32_t sink = 0;
	uint64_t i;

	switch (k) {
	case K_IVPOSITION:
		for (i = 0; i < n; i++)
			sink += ivshmem_flat_mmio_read(&d->plain,
					IVSHMEM_FLAT_IVPOSITION, 4);
		break;
	case K_INTRSTATUS:
		for (i = 0; i < n; i++)
			sink += ivshmem_flat_mmio_read(&d->latched,
					IVSHMEM_FLAT_INTRSTATUS, 4);
		break;
	case K_DOORBELL:
		for (i = 0; i < n; i++)
			ivshmem_flat_mmio_write(&d->plain,
					IVSHMEM_FLAT_DOORBELL, 0x00010000, 4);
		break;
	case K_DELIVER:
		for (i = 0; i < n; i++)
			ivshmem_flat_deliver(&d->latched, 3);
		break;
	case K_BAD:
		for (i = 0; i < n; i++)
			sink += ivshmem_flat_mmio_read(&d->plain, 0, 2);
		break;
	case K_FLOOR_CALL:
		for (i = 0; i < n; i++)
			sink += floor_fn(d, IVSHMEM_FLAT_IVPOSITION, 4);
		break;
	case K_FLOOR_LOAD:
		for (i = 0; i < n; i++)
			sink += d->reg;
		break;
	default:
		/* The loop alone; the asm keeps it from being folded. */
		for (i = 0; i < n; i++)
			__asm__ volatile("" : "+r"(sink));
		break;
	}
	return sink;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int kind_of(const char *name)
{
	for (int k = 0; k < NKINDS; k++)
		if (!strcmp(name, kind_names[k]))
			return k;
	return -1;
}

/* arg as a WHAT in min..max, or exit 2 with the grammar's sentence. */
static uint64_t number_arg(const char *what, const char *arg, uint64_t min,
			   uint64_t max)
{
	return cli_u64_or_exit("bench-flat-mmio", what, arg, min, max);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench-flat-mmio [--n N] [--rounds R]\n"
		"       bench-flat-mmio --only KIND --n N\n"
		"KIND: ivposition intrstatus doorbell deliver bad floor-call "
		"floor-load empty\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static struct devices d;
	double ns[NTIMED][64], ratio[NTIMED][64];
	uint64_t n = 10000000;
	unsigned rounds = 11, r, k;
	int only = -1;
	volatile uint32_t sink = 0;

	for (int a = 1; a < argc; a++) {
		if (a + 1 < argc && !strcmp(argv[a], "--n"))
			n = number_arg("access count", argv[++a], 1,
				       UINT64_MAX);
		else if (a + 1 < argc && !strcmp(argv[a], "--rounds"))
			rounds = (unsigned)number_arg("round count", argv[++a],
						      1, 64);
		else if (a + 1 < argc && !strcmp(argv[a], "--only") &&
			 (only = kind_of(argv[a + 1])) >= 0)
			a++;
		else
			usage();
	}
	if (!n || !rounds || rounds > 64)
		usage();
	setup(&d);

	if (only >= 0) {
		sink = run_loop(&d, (enum kind)only, n);
		return 0;
	}

	/* Warm up every path once. */
	for (k = 0; k < NTIMED; k++)
		sink += run_loop(&d, (enum kind)k, n / 10 + 1);
	for (r = 0; r < rounds; r++) {
		double t[NTIMED];

		for (unsigned j = 0; j < NTIMED; j++) {
			double t0;

			k = (j + r) % NTIMED;
			t0 = now();
			sink += run_loop(&d, (enum kind)k, n);
			t[k] = (now() - t0) * 1e9 / (double)n;
		}
		for (k = 0; k < NTIMED; k++) {
			ns[k][r] = t[k];
			ratio[k][r] = t[k] / t[K_FLOOR_CALL];
		}
	}

	printf("flat-mmio: %" PRIu64 " accesses per kind and round, %u "
	       "rounds (medians)\n", n, rounds);
	printf("%-12s %10s %14s\n", "kind", "ns/access", "x floor-call");
	for (k = 0; k < NTIMED; k++)
		printf("%-12s %10.2f %14.2f\n", kind_names[k],
		       median(ns[k], rounds), median(ratio[k], rounds));
	(void)sink;
	return 0;
}
