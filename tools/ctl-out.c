/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: what goes to standard output. The event lines of peer and
 * watch (struct ctl_out: one set of calls for the text and the JSON form,
 * with a JSON string escaper), JSON values, and the status of stdout.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "ctl.h"

void ctl_json_string(GString *dst, const char *s)
{
	char *valid = g_utf8_make_valid(s, -1);

	g_string_append_c(dst, '"');
	for (const unsigned char *p = (const unsigned char *)valid; *p; p++) {
		switch (*p) {
		case '"':
			g_string_append(dst, "\\\"");
			break;
		case '\\':
			g_string_append(dst, "\\\\");
			break;
		case '\n':
			g_string_append(dst, "\\n");
			break;
		case '\r':
			g_string_append(dst, "\\r");
			break;
		case '\t':
			g_string_append(dst, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				g_string_append_printf(dst, "\\u%04x", *p);
			else
				g_string_append_c(dst, (char)*p);
		}
	}
	g_string_append_c(dst, '"');
	g_free(valid);
}

void ctl_out_init(struct ctl_out *o, bool json)
{
	o->json = json;
	o->buf = g_string_new(NULL);
}

void ctl_out_clear(struct ctl_out *o)
{
	if (o->buf)
		g_string_free(o->buf, TRUE);
	o->buf = NULL;
}

void ctl_out_begin(struct ctl_out *o, const char *event)
{
	g_string_truncate(o->buf, 0);
	if (o->json)
		g_string_append_printf(o->buf, "{\"event\":\"%s\"", event);
	else
		g_string_append(o->buf, event);
}

static void key(struct ctl_out *o, const char *k)
{
	if (o->json)
		g_string_append_printf(o->buf, ",\"%s\":", k);
	else
		g_string_append_printf(o->buf, " %s=", k);
}

void ctl_out_word(struct ctl_out *o, const char *k, const char *word)
{
	if (o->json)
		g_string_append_printf(o->buf, ",\"%s\":\"%s\"", k, word);
	else
		g_string_append_printf(o->buf, " %s", word);
}

void ctl_out_token(struct ctl_out *o, const char *k, const char *token)
{
	key(o, k);
	g_string_append_printf(o->buf, o->json ? "\"%s\"" : "%s", token);
}

void ctl_out_u64(struct ctl_out *o, const char *k, uint64_t v)
{
	key(o, k);
	g_string_append_printf(o->buf, "%" PRIu64, v);
}

void ctl_out_str(struct ctl_out *o, const char *k, const char *s)
{
	key(o, k);
	ctl_json_string(o->buf, s);
}

void ctl_out_ids(struct ctl_out *o, const char *k, const int *ids,
		 unsigned n, bool bare)
{
	if (o->json || !bare)
		key(o, k);
	else if (n)
		g_string_append_c(o->buf, ' ');
	if (o->json)
		g_string_append_c(o->buf, '[');
	for (unsigned i = 0; i < n; i++)
		g_string_append_printf(o->buf, "%s%d", i ? "," : "", ids[i]);
	if (o->json)
		g_string_append_c(o->buf, ']');
}

int ctl_out_end(struct ctl_out *o)
{
	if (o->json)
		g_string_append_c(o->buf, '}');
	g_string_append_c(o->buf, '\n');
	if (fwrite(o->buf->str, 1, o->buf->len, stdout) != o->buf->len ||
	    fflush(stdout) != 0)
		return errno ? -errno : -EIO;
	return 0;
}

int ctl_print_json(JsonNode *node)
{
	size_t len;
	char *s = jsonl_line(node, &len);
	int r = 0;

	if (fwrite(s, 1, len, stdout) != len || fflush(stdout) != 0)
		r = errno ? -errno : -EIO;
	g_free(s);
	return r;
}

int ctl_stdout_error(int err)
{
	ctl_error("cannot write to standard output: %s", g_strerror(-err));
	return CTL_EXIT_FAILURE;
}

int ctl_stdout_status(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return ctl_stdout_error(errno ? -errno : -EIO);
	return CTL_EXIT_OK;
}
