/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: what goes to standard output. The event lines of peer and
 * watch (struct ctl_out: one set of calls for the text and the JSON form,
 * both written by json-glib through jsonl_line, so a string is escaped the
 * same way in either), JSON values, and the status of stdout.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "ctl.h"

void ctl_json_string(GString *dst, const char *s)
{
	JsonNode *n = json_node_new(JSON_NODE_VALUE);
	char *valid = g_utf8_make_valid(s, -1);
	size_t len;
	char *line;

	json_node_set_string(n, valid);
	line = jsonl_line(n, &len);
	/* Without the newline that ends the line. */
	g_string_append_len(dst, line, (gssize)len - 1);
	g_free(line);
	g_free(valid);
	json_node_unref(n);
}

void ctl_out_init(struct ctl_out *o, bool json)
{
	o->json = json;
	o->buf = g_string_new(NULL);
	o->b = NULL;
}

void ctl_out_clear(struct ctl_out *o)
{
	if (o->buf)
		g_string_free(o->buf, TRUE);
	o->buf = NULL;
	g_clear_object(&o->b);
}

void ctl_out_begin(struct ctl_out *o, const char *event)
{
	if (o->json) {
		g_clear_object(&o->b);
		o->b = json_builder_new();
		json_builder_begin_object(o->b);
		jsonl_add_string(o->b, "event", event);
	} else {
		g_string_truncate(o->buf, 0);
		g_string_append(o->buf, event);
	}
}

void ctl_out_word(struct ctl_out *o, const char *k, const char *word)
{
	if (o->json)
		jsonl_add_string(o->b, k, word);
	else
		g_string_append_printf(o->buf, " %s", word);
}

void ctl_out_token(struct ctl_out *o, const char *k, const char *token)
{
	if (o->json)
		jsonl_add_string(o->b, k, token);
	else
		g_string_append_printf(o->buf, " %s=%s", k, token);
}

void ctl_out_u64(struct ctl_out *o, const char *k, uint64_t v)
{
	if (!o->json) {
		g_string_append_printf(o->buf, " %s=%" PRIu64, k, v);
	} else if (v <= G_MAXINT64) {
		jsonl_add_int(o->b, k, (gint64)v);
	} else {
		/* json-glib writes no integer above INT64_MAX (a doorbell
		 * count a hostile peer made up, at most): the nearest
		 * double. */
		json_builder_set_member_name(o->b, k);
		json_builder_add_double_value(o->b, (double)v);
	}
}

void ctl_out_str(struct ctl_out *o, const char *k, const char *s)
{
	if (o->json) {
		jsonl_add_string(o->b, k, s);
	} else {
		g_string_append_printf(o->buf, " %s=", k);
		ctl_json_string(o->buf, s);
	}
}

void ctl_out_ids(struct ctl_out *o, const char *k, const int *ids,
		 unsigned n, bool bare)
{
	if (o->json) {
		json_builder_set_member_name(o->b, k);
		json_builder_begin_array(o->b);
		for (unsigned i = 0; i < n; i++)
			json_builder_add_int_value(o->b, ids[i]);
		json_builder_end_array(o->b);
		return;
	}
	if (!bare)
		g_string_append_printf(o->buf, " %s=", k);
	else if (n)
		g_string_append_c(o->buf, ' ');
	for (unsigned i = 0; i < n; i++)
		g_string_append_printf(o->buf, "%s%d", i ? "," : "", ids[i]);
}

int ctl_out_end(struct ctl_out *o)
{
	JsonNode *n;
	int r;

	if (!o->json) {
		g_string_append_c(o->buf, '\n');
		if (fwrite(o->buf->str, 1, o->buf->len, stdout) !=
		    o->buf->len || fflush(stdout) != 0)
			return errno ? -errno : -EIO;
		return 0;
	}
	json_builder_end_object(o->b);
	n = json_builder_get_root(o->b);
	g_clear_object(&o->b);
	r = ctl_print_json(n);
	json_node_unref(n);
	return r;
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
