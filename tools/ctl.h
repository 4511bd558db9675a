/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: what the commands share. Private to tools/.
 */
#ifndef IVSHMEM_CTL_H
#define IVSHMEM_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include "cli.h"
#include "json-line.h"

/* The server's default socket (ivshmem-server -S, QEMU's too). */
#define CTL_DEFAULT_SOCKET CLI_DEFAULT_SOCKET

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
	const char *control_path;       /* -C; NULL: socket_path + ".ctl" */
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
/* ctl-server.c: through the server's control socket. */
int ctl_info_run(const struct ctl_global *g, int argc, char **argv);
int ctl_peers_run(const struct ctl_global *g, int argc, char **argv);
int ctl_ring_run(const struct ctl_global *g, int argc, char **argv);
int ctl_kick_run(const struct ctl_global *g, int argc, char **argv);
int ctl_watch_run(const struct ctl_global *g, int argc, char **argv);
/* ctl-shm.c: the shared memory, its fd taken from the control socket. */
int ctl_dump_run(const struct ctl_global *g, int argc, char **argv);
int ctl_read_run(const struct ctl_global *g, int argc, char **argv);
int ctl_write_run(const struct ctl_global *g, int argc, char **argv);

/* "ivshmem-ctl: MESSAGE" on stderr. */
void ctl_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* "ivshmem-ctl: MESSAGE" and "Try 'ivshmem-ctl [COMMAND ]--help' for more
 * information." on stderr; returns CTL_EXIT_USAGE. command may be NULL. */
int ctl_usage_error(const char *command, const char *fmt, ...)
	G_GNUC_PRINTF(2, 3);

/* connect() to path failed with err (negative): say why, and for a
 * missing server how to start one (start: "ivshmem-server -S PATH");
 * control: path is a control socket. Returns CTL_EXIT_FAILURE. */
int ctl_connect_error(const char *path, int err, const char *start,
		      bool control);

/* Block SIGINT, SIGTERM and SIGHUP and return a signalfd that becomes
 * readable when one comes, so that poll() sees it; -1 after saying why. */
int ctl_signalfd(void);

/* getopt_long returned ':' or '?' for argv: say which option is wrong and
 * how; returns CTL_EXIT_USAGE. */
int ctl_option_error(const char *command, int c, char **argv);

/*
 * What users type, in the grammar every program shares (cli.h):
 * ctl_parse_u64 a NUMBER up to max, ctl_parse_size a SIZE up to max,
 * ctl_parse_seconds SECONDS. 0, -EINVAL (not in the grammar) or -ERANGE
 * (above max, or 0 seconds or more than a year).
 */
int ctl_parse_u64(const char *s, uint64_t max, uint64_t *out);
int ctl_parse_size(const char *s, uint64_t max, uint64_t *out);
int ctl_parse_seconds(const char *s, double *out);
/* The same sentence as the other programs for s refused as a WHAT
 * ("offset", "timeout") by the parser above, as ctl_usage_error() says
 * it: returns CTL_EXIT_USAGE. */
int ctl_u64_usage_error(const char *command, const char *what,
			const char *s, uint64_t max);
int ctl_size_usage_error(const char *command, const char *what,
			 const char *s, uint64_t max);
int ctl_seconds_usage_error(const char *command, const char *what,
			    const char *s);
/* Hex digits, an even number of them, with an optional 0x: the bytes in
 * that order (deadbeef is de ad be ef). NULL when s is not that. */
GByteArray *ctl_parse_hex(const char *s);
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

/* ---- commands that talk to the server ------------------------------------ */

/*
 * The options every command of ctl-server.c and ctl-shm.c takes after its
 * name: the global ones. A command's getopt_long gets
 * CTL_COMMON_SHORTOPTS and CTL_COMMON_LONGOPTS first (its own after them,
 * with values from CTL_OPT_OWN up) and hands every option but 'h' and its
 * own to ctl_common_option().
 */
struct ctl_opts {
	const char *socket_path;
	const char *control_path;       /* never NULL after ctl_opts_check */
	bool control_given;             /* -C: no fallback to joining */
	bool json;
	bool verbose;
	char control_buf[128];          /* the default control path */
};

enum {
	CTL_OPT_JSON = 256,
	CTL_OPT_OWN = 300,
};

#define CTL_COMMON_SHORTOPTS ":hS:C:v"
#define CTL_COMMON_LONGOPTS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "socket", required_argument, NULL, 'S' }, \
	{ "control", required_argument, NULL, 'C' }, \
	{ "json", no_argument, NULL, CTL_OPT_JSON }, \
	{ "verbose", no_argument, NULL, 'v' }

/* The lines of a command's --help that describe them. */
#define CTL_COMMON_HELP \
"  -S, --socket=PATH      the server's socket (default " CTL_DEFAULT_SOCKET ")\n" \
"  -C, --control=PATH     its control socket (default: the socket's path\n" \
"                         with .ctl appended)\n" \
"      --json             print JSON objects instead of text\n" \
"  -v, --verbose          also show the library's informational messages\n" \
"  -h, --help             show this help and exit\n"

void ctl_opts_init(struct ctl_opts *o, const struct ctl_global *g);
/* Take option c (from getopt_long, ':' and '?' included) if it is a
 * common one: CTL_EXIT_OK when taken, CTL_EXIT_USAGE after saying what is
 * wrong, -1 when c is not a common option. */
int ctl_common_option(const char *command, int c, char **argv,
		      struct ctl_opts *o);
/* After the options: fill in the default control path and check that
 * the paths fit a UNIX socket address. CTL_EXIT_OK or CTL_EXIT_USAGE. */
int ctl_opts_check(const char *command, struct ctl_opts *o);

/* Write node as one line of JSON on stdout and flush. 0 or -errno. */
int ctl_print_json(JsonNode *node);
/* Flush stdout: CTL_EXIT_OK, or CTL_EXIT_FAILURE after saying why. */
int ctl_stdout_status(void);

/*
 * A connection to the server for one command: its control socket, or,
 * when there is none, the server joined as a peer (ctl-server.c).
 */
struct ctl_conn;

/*
 * Connect to o->control_path. When nothing listens there (no such file,
 * or connection refused), -C was not given and fallback is not NULL, join
 * the server at o->socket_path as a peer instead (without mapping the
 * shared memory) and say so on stderr, with fallback saying what for ("to
 * list the peers"). CTL_EXIT_OK with *out set, or an exit status after
 * saying why on stderr.
 */
int ctl_conn_open(const struct ctl_opts *o, const char *fallback,
		  struct ctl_conn **out);
void ctl_conn_close(struct ctl_conn *c);
/*
 * Send request (a JSON object with "command"; the reference is taken) and
 * wait for its reply. CTL_EXIT_OK with *reply (a successful reply object,
 * json_node_unref it), or an exit status after saying why (an error reply:
 * the server's message). fd: if not NULL, receives the fd that came with
 * the reply, or -1 (close it). Joined as a peer, the commands info, peers,
 * ring, shm and watch are answered from what a peer knows, in the same
 * shape, with null for what it cannot know and "via":"peer".
 */
int ctl_conn_call(struct ctl_conn *c, JsonNode *request, JsonNode **reply,
		  int *fd);
/* A request {"command":COMMAND}, to add arguments to with the
 * json_object_set_* calls. */
JsonNode *ctl_request_new(const char *command);

#endif
