/* SPDX-License-Identifier: MIT */
/*
 * What users type, read the same way by every program: sizes, bounded
 * numbers and durations, each refused with the same sentence, and the
 * defaults the programs share (QEMU's ivshmem-server's).
 *
 * The grammar (ivshmem-server(8), ivshmem-ctl(1)):
 *   NUMBER   decimal digits, or 0x and hexadecimal digits; no sign, no
 *            spaces, no octal (010 is ten)
 *   SIZE     NUMBER, then optionally one of K M G T P E (either case,
 *            powers of 1024), the same with iB (KiB, MiB, ...), or B
 *            (bytes); after 0x, B and E are hexadecimal digits, so 0x1E
 *            is 30 bytes and 0x1EiB one exbibyte
 *   SECONDS  seconds as strtod reads them after a digit or a point (5,
 *            0.5, .5, 1e3; so also 0x10), then optionally s or ms (lower
 *            case); above 0 and at most a year
 *
 * Each parser returns 0, -EINVAL (not in the grammar) or -ERANGE (in the
 * grammar, out of bounds). With error not NULL, a refusal also sets *error
 * to the sentence saying so and what to give instead, "invalid WHAT 'S':
 * ..." (g_free it, or free: GLib allocates with malloc): a program
 * prints it after its own name.
 */
#ifndef IVSHMEM_CLI_H
#define IVSHMEM_CLI_H

#include <stdint.h>

/* The peer socket, the POSIX shm object, its size and the vectors per
 * peer when none are given. */
#define CLI_DEFAULT_SOCKET "/tmp/ivshmem_socket"
#define CLI_DEFAULT_SHM_NAME "ivshmem"
#define CLI_DEFAULT_SHM_SIZE (4ull << 20)
#define CLI_DEFAULT_VECTORS 1
/* The control socket is the peer socket's path with this appended. */
#define CLI_CONTROL_SUFFIX ".ctl"

/* Durations are at most this long (a poll() takes at most INT_MAX ms,
 * about 24.8 days: a longer wait polls more than once). */
#define CLI_MAX_SECONDS (365 * 86400.0)

/* what: a noun for the sentence ("size", "vector count"). */
int cli_parse_u64(const char *what, const char *s, uint64_t min,
		  uint64_t max, uint64_t *out, char **error);
int cli_parse_uint(const char *what, const char *s, unsigned min,
		   unsigned max, unsigned *out, char **error);
int cli_parse_size(const char *what, const char *s, uint64_t min,
		   uint64_t max, uint64_t *out, char **error);
int cli_parse_seconds(const char *what, const char *s, double *out,
		      char **error);
/* For programs with no usage line of their own to add: s as a WHAT in
 * min..max, or "PROG: sentence" on stderr and exit status 2. */
uint64_t cli_u64_or_exit(const char *prog, const char *what, const char *s,
			 uint64_t min, uint64_t max);

#endif
