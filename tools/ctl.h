/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: what the commands share. Private to tools/.
 */
#ifndef IVSHMEM_CTL_H
#define IVSHMEM_CTL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include "cli.h"
#include "json-line.h"

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
	const char *pci;                /* --pci: a guest's device, or NULL */
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

/* The commands, each in ctl-NAME.c (dump, read and write in ctl-shm.c). */
int ctl_peer_run(const struct ctl_global *g, int argc, char **argv);
/* ctl-channel.c: channels (ivshmem-channel(7)), joined as a peer. */
int ctl_channel_run(const struct ctl_global *g, int argc, char **argv);
/* ctl-guest.c: inside a guest, the ivshmem PCI devices. */
int ctl_guest_run(const struct ctl_global *g, int argc, char **argv);
/* Through the server's control socket (or the fallback, ctl-fallback.c). */
int ctl_info_run(const struct ctl_global *g, int argc, char **argv);
int ctl_peers_run(const struct ctl_global *g, int argc, char **argv);
int ctl_ring_run(const struct ctl_global *g, int argc, char **argv);
int ctl_kick_run(const struct ctl_global *g, int argc, char **argv);
int ctl_watch_run(const struct ctl_global *g, int argc, char **argv);
/* ctl-shm.c: the shared memory, its fd taken from the control socket. */
int ctl_dump_run(const struct ctl_global *g, int argc, char **argv);
int ctl_read_run(const struct ctl_global *g, int argc, char **argv);
int ctl_write_run(const struct ctl_global *g, int argc, char **argv);

/* ---- ctl.c: what every command shares ---------------------------------- */

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
/* Lower-case hex digits of n bytes (g_free the result). */
char *ctl_hex(const void *data, size_t n);

/* Seconds on the monotonic clock. */
double ctl_now(void);
/* Milliseconds from now to deadline (a ctl_now() time), rounded up; 0
 * once it has passed; at most INT_MAX. For poll(): a caller checks the
 * deadline again when poll() times out. */
int ctl_ms_left(double deadline);

struct ivshmem_peer;
struct ctl_opts;
/* Open o->pci as peer (ivshmem_peer_open_pci), saying on stderr when its
 * doorbells are polled and why: CTL_EXIT_OK, or CTL_EXIT_FAILURE after
 * saying why not. */
int ctl_pci_open(const struct ctl_opts *o, struct ivshmem_peer *peer);
/* What a guest cannot know: the other peers. Says so for command;
 * returns CTL_EXIT_FAILURE. */
int ctl_pci_no_peers(const char *command);
/* The IDs of the other peers that peer knows, *n of them; g_free the
 * result (NULL when there are none). */
int *ctl_peer_ids(struct ivshmem_peer *peer, unsigned *n);
/* The library's log callback, after its user pointer: warnings and worse
 * always, the rest with verbose, as "ivshmem-ctl: MESSAGE" on stderr. */
void ctl_log(bool verbose, int priority, const char *fmt, va_list ap)
	G_GNUC_PRINTF(3, 0);

/* ---- ctl-guard.c: shared memory that shrinks ---------------------------- */

/* The mapped shared memory (one region; NULL forgets it). A SIGBUS in it
 * outside ctl_guard_copy() says that it shrank and exits 1. */
void ctl_guard_region(const void *addr, size_t size);
/* memcpy() with the shared memory, in the region, at dst (to_shm) or src:
 * the bytes copied before it turned out to have shrunk (len when all). */
size_t ctl_guard_copy(void *dst, const void *src, size_t len, bool to_shm);

/* ---- ctl-out.c: standard output ----------------------------------------- */

/*
 * One output line: text ("EVENT key=value ...") or JSON ({"event":"EVENT",
 * "key":value,...}), both written by json-glib's generator (jsonl_line),
 * so strings are double-quoted and escaped the same way in both. Build with the ctl_out_* calls, then ctl_out_end() writes
 * the line and flushes stdout.
 */
struct ctl_out {
	bool json;
	GString *buf;           /* the text line */
	JsonBuilder *b;         /* the JSON object, between begin and end */
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

/* Append s as a JSON string with its quotes, as jsonl_line writes it;
 * invalid UTF-8 becomes U+FFFD. */
void ctl_json_string(GString *dst, const char *s);

/* Write node as one line of JSON on stdout and flush. 0 or -errno. */
int ctl_print_json(JsonNode *node);
/* Say that stdout failed with err (negative); returns CTL_EXIT_FAILURE. */
int ctl_stdout_error(int err);
/* Flush stdout: CTL_EXIT_OK, or CTL_EXIT_FAILURE after saying why. */
int ctl_stdout_status(void);

/* ---- ctl-options.c: the common options --------------------------------- */

/*
 * The global options, which every command takes again after its name
 * (peer all but -C), and main() before it. A command's getopt_long gets
 * CTL_COMMON_SHORTOPTS and CTL_COMMON_LONGOPTS first (its own after them,
 * with values from CTL_OPT_OWN up) and hands every option but 'h' and its
 * own to ctl_common_option().
 */
struct ctl_opts {
	const char *socket_path;
	const char *pci;                /* --pci ADDR|auto, or NULL */
	const char *control_path;       /* never NULL after ctl_opts_check */
	bool control_given;             /* -C: no fallback to joining */
	bool json;
	bool verbose;
	char control_buf[128];          /* the default control path */
};

enum {
	CTL_OPT_JSON = 256,
	CTL_OPT_PCI = 257,
	CTL_OPT_OWN = 300,
};

#define CTL_COMMON_SHORTOPTS ":hS:C:v"
#define CTL_COMMON_LONGOPTS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "socket", required_argument, NULL, 'S' }, \
	{ "control", required_argument, NULL, 'C' }, \
	{ "json", no_argument, NULL, CTL_OPT_JSON }, \
	{ "pci", required_argument, NULL, CTL_OPT_PCI }, \
	{ "verbose", no_argument, NULL, 'v' }

/* The lines of a command's --help that describe them. */
#define CTL_COMMON_HELP \
"  -S, --socket=PATH      the server's socket (default " CLI_DEFAULT_SOCKET ")\n" \
"  -C, --control=PATH     its control socket (default: the socket's path\n" \
"                         with .ctl appended)\n" \
"      --pci=ADDR         inside a guest: the ivshmem PCI device at ADDR\n" \
"                         (auto: the first) instead of a server\n" \
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

/*
 * The options of a command that has none of its own (help() prints its
 * --help), and its positional arguments, at least min and at most max,
 * into args (NULL for those not given); synopsis ("ring PEER [VECTOR]")
 * goes into the message for too few or too many. CTL_EXIT_OK to run, -1
 * after --help (exit with CTL_EXIT_OK), or CTL_EXIT_USAGE after saying
 * why.
 */
int ctl_parse_simple(const char *command, const char *synopsis,
		     void (*help)(void), const struct ctl_global *g,
		     int argc, char **argv, struct ctl_opts *o, int min,
		     int max, char **args);
/* A peer ID argument (0 .. IVSHMEM_MAX_PEERS - 1). CTL_EXIT_OK with *id,
 * or CTL_EXIT_USAGE after saying why. */
int ctl_parse_peer(const char *command, const char *s, gint64 *id);
/* In a command's --help: the common options (CTL_COMMON_HELP), and the
 * exit statuses, with fallback a paragraph on joining as a peer. */
void ctl_common_help(void);
void ctl_exit_help(bool fallback);

/* ---- ctl-json.c: the JSON of the control protocol ----------------------- */

/* A request {"command":COMMAND}, to add arguments to with the
 * json_object_set_* calls. */
JsonNode *ctl_request_new(const char *command);
/* Member name of o (o may be NULL), or NULL. */
JsonNode *ctl_json_member(JsonObject *o, const char *name);
/* Member name when it has that type: true with *v for an integer (a
 * number, integer or not, for ctl_json_number); the string, object or
 * array, or NULL. */
bool ctl_json_int(JsonObject *o, const char *name, gint64 *v);
bool ctl_json_number(JsonObject *o, const char *name, double *v);
const char *ctl_json_str(JsonObject *o, const char *name);
JsonObject *ctl_json_obj(JsonObject *o, const char *name);
JsonArray *ctl_json_array(JsonObject *o, const char *name);
/* Is member name the boolean true? */
bool ctl_json_true(JsonObject *o, const char *name);
/* The builder's root; the builder is freed. */
JsonNode *ctl_json_take(JsonBuilder *b);
/* Member name with the value null. */
void ctl_json_add_null(JsonBuilder *b, const char *name);

/* ---- ctl-format.c: replies as output ------------------------------------ */

/* "4194304 (4 MiB)"; below 1 KiB only the number. */
char *ctl_human_size(uint64_t n);
/* "1d 2h 3m 4s", leading zero units left out. */
char *ctl_human_duration(double seconds);
/* An ISO 8601 time as local time in format (g_date_time_format); the
 * string itself if it cannot be read. */
char *ctl_local_time(const char *iso, const char *format);
/* Member name as text: integers and strings as they are, the rest "-". */
char *ctl_text_of(JsonObject *o, const char *name);
/* "0,1,2" from an array of integers (the rest left out). */
char *ctl_int_list(JsonArray *a);
/* Print reply as JSON with o->json, else with text(); the exit status. */
int ctl_print_reply(const struct ctl_opts *o, JsonNode *reply,
		    void (*text)(JsonObject *));

/* ---- ctl-connect.c: the connection to the server ------------------------ */

/*
 * A connection to the server for one command: its control socket, or,
 * when there is none, the server joined as a peer (ctl-fallback.c).
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
/* The fd to poll for events (after a watch request). */
int ctl_conn_get_fd(struct ctl_conn *c);
/* That fd is readable: take what came. */
void ctl_conn_dispatch(struct ctl_conn *c);
/* The next event, of those that have come: 1 with *event (json_node_unref
 * it), 0 when there is none for now, -1 after saying why (the connection
 * ended or failed). */
int ctl_conn_next_event(struct ctl_conn *c, JsonNode **event);
/* Open, send request (taken), close, and print the reply with
 * ctl_print_reply(): the whole of a command with one request. The exit
 * status. */
int ctl_request(const struct ctl_opts *o, const char *fallback,
		JsonNode *req, void (*text)(JsonObject *));

#endif
