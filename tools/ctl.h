/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: what the commands share. Private to tools/.
 */
#ifndef IVSHMEM_CTL_H
#define IVSHMEM_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

/* The server's default socket (ivshmem-server -S, QEMU's too). */
#define CTL_DEFAULT_SOCKET "/tmp/ivshmem_socket"

/* Exit statuses, the same for every command. */
enum {
	CTL_EXIT_OK = 0,        /* done */
	CTL_EXIT_FAILURE = 1,   /* a runtime error, said on stderr */
	CTL_EXIT_USAGE = 2,     /* a bad option or argument */
};

/* Options given before the command; a command may take them too, and
 * its own then win. */
struct ctl_global {
	const char *socket_path;
	bool json;
	bool verbose;
};

/*
 * A command: run() gets argv with argv[0] the command's name, parses its
 * own options with getopt_long (optind is reset) and returns the exit
 * status. "--help" must print the command's help and return CTL_EXIT_OK.
 */
struct ctl_command {
	const char *name;
	const char *summary;    /* one line for ivshmem-ctl --help */
	int (*run)(const struct ctl_global *g, int argc, char **argv);
};

int ctl_peer_run(const struct ctl_global *g, int argc, char **argv);

/* "ivshmem-ctl: MESSAGE" on stderr. */
void ctl_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* "ivshmem-ctl: MESSAGE" and "Try 'ivshmem-ctl [COMMAND ]--help' for more
 * information." on stderr; returns CTL_EXIT_USAGE. command may be NULL. */
int ctl_usage_error(const char *command, const char *fmt, ...)
	G_GNUC_PRINTF(2, 3);

/* getopt_long returned ':' or '?' for argv: say which option is wrong and
 * how; returns CTL_EXIT_USAGE. */
int ctl_option_error(const char *command, int c, char **argv);

/* A number: decimal, or hexadecimal with 0x; nothing else (no sign, no
 * spaces, no octal). 0, -EINVAL (malformed) or -ERANGE (above max). */
int ctl_parse_u64(const char *s, uint64_t max, uint64_t *out);
/* s itself when short, else its first bytes and "..." (for quoting user
 * input in a message). Returns a new string. */
char *ctl_shorten(const char *s);

/*
 * One output line: text ("EVENT key=value ...") or JSON ({"event":"EVENT",
 * "key":value,...}). Strings are double-quoted and escaped as in JSON in
 * both formats. Build with the ctl_out_* calls, then ctl_out_end() writes
 * the line and flushes stdout.
 */
struct ctl_out {
	bool json;
	GString *buf;
};

void ctl_out_init(struct ctl_out *o, bool json);
void ctl_out_clear(struct ctl_out *o);
void ctl_out_begin(struct ctl_out *o, const char *event);
/* A word from a fixed set: bare in text ("ok ring"), "key":"word" in JSON. */
void ctl_out_word(struct ctl_out *o, const char *key, const char *word);
/* A token that needs no quoting (hex digits): "key=token" in text,
 * "key":"token" in JSON. */
void ctl_out_token(struct ctl_out *o, const char *key, const char *token);
void ctl_out_u64(struct ctl_out *o, const char *key, uint64_t v);
void ctl_out_str(struct ctl_out *o, const char *key, const char *s);
/* A list of IDs: "key=1,2" (bare: "1,2") in text, "key":[1,2] in JSON. */
void ctl_out_ids(struct ctl_out *o, const char *key, const int *ids,
		 unsigned n, bool bare);
/* Write the line; 0 or -errno (stdout failed). */
int ctl_out_end(struct ctl_out *o);

/* Append s as a JSON string with its quotes; invalid UTF-8 becomes
 * U+FFFD. */
void ctl_json_string(GString *dst, const char *s);

#endif
