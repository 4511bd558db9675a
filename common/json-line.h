/* SPDX-License-Identifier: MIT */
/*
 * JSON lines with json-glib, as the control socket between ivshmem-server
 * and ivshmem-ctl speaks them. Shared by the two programs; not installed.
 */
#ifndef IVSHMEM_JSON_LINE_H
#define IVSHMEM_JSON_LINE_H

#include <stddef.h>

#include <json-glib/json-glib.h>

/*
 * @node written compactly on one line, with its "\n": a new string of
 * *len bytes. json-glib (1.6 at least) writes U+001F in strings as a raw
 * byte, which JSON forbids; here it is escaped.
 */
char *jsonl_line(JsonNode *node, size_t *len);

/*
 * Is @s (@len bytes, already valid UTF-8) exactly one JSON value, with
 * only whitespace around it, as RFC 8259 has it? json-glib 1.6 also takes
 * single quotes, comments and several values on a line (and leaks all but
 * the first), so input is checked here before it is parsed. Strings may
 * not hold the escape \u0000 (json-glib cuts the string there) or a
 * surrogate escape that is not a high one followed by a low one
 * (json-glib leaks a buffer for some, turns others into bytes that are
 * not UTF-8). NULL when it is; otherwise a short static description of
 * the first fault.
 */
const char *jsonl_check(const char *s, size_t len);
/*
 * In @s, an object that passed jsonl_check(), the text of member @name's
 * value exactly as written (the last one when it is given twice): true
 * with its offset and length, false when no member is named so in plain
 * characters (a name spelled with escapes does not count).
 */
bool jsonl_member_text(const char *s, size_t len, const char *name,
		       size_t *off, size_t *n);

/* Member @name with a string value made valid UTF-8 (paths and names need
 * not be), or null when @s is NULL. */
void jsonl_add_string(JsonBuilder *b, const char *name, const char *s);
/* Member @name with an integer value. */
void jsonl_add_int(JsonBuilder *b, const char *name, gint64 v);

/*
 * The replies of the control protocol (ivshmem-server(8), CONTROL
 * SOCKET), left open for more members: {"ok":true,"command":COMMAND, and
 * {"ok":false,"command":COMMAND (left out when NULL),"error":CODE,
 * "message":SENTENCE.
 */
JsonBuilder *jsonl_reply_new(const char *command);
JsonBuilder *jsonl_error_new(const char *command, const char *code,
			     const char *fmt, va_list ap) G_GNUC_PRINTF(3, 0);

#endif
