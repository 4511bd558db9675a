/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "json-line.h"

char *jsonl_line(JsonNode *node, size_t *len)
{
	JsonGenerator *gen = json_generator_new();
	GString *line;
	gsize n;
	char *text;

	json_generator_set_root(gen, node);
	text = json_generator_to_data(gen, &n);
	g_object_unref(gen);
	line = g_string_sized_new(n + 1);
	/* Outside strings the compact form has no control bytes, and 0x1f
	 * is never part of a multibyte UTF-8 sequence. */
	for (const char *p = text, *end = text + n; p < end;) {
		const char *us = memchr(p, 0x1f, (size_t)(end - p));

		if (!us) {
			g_string_append_len(line, p, end - p);
			break;
		}
		g_string_append_len(line, p, us - p);
		g_string_append(line, "\\u001f");
		p = us + 1;
	}
	g_free(text);
	g_string_append_c(line, '\n');
	*len = line->len;
	return g_string_free(line, FALSE);
}

void jsonl_add_string(JsonBuilder *b, const char *name, const char *s)
{
	json_builder_set_member_name(b, name);
	if (!s) {
		json_builder_add_null_value(b);
	} else if (g_utf8_validate(s, -1, NULL)) {
		json_builder_add_string_value(b, s);
	} else {
		char *valid = g_utf8_make_valid(s, -1);

		json_builder_add_string_value(b, valid);
		g_free(valid);
	}
}

void jsonl_add_int(JsonBuilder *b, const char *name, gint64 v)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, v);
}

JsonBuilder *jsonl_reply_new(const char *command)
{
	JsonBuilder *b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "ok");
	json_builder_add_boolean_value(b, TRUE);
	jsonl_add_string(b, "command", command);
	return b;
}

JsonBuilder *jsonl_error_new(const char *command, const char *code,
			     const char *fmt, va_list ap)
{
	JsonBuilder *b = json_builder_new();
	char *msg = g_strdup_vprintf(fmt, ap);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "ok");
	json_builder_add_boolean_value(b, FALSE);
	if (command)
		jsonl_add_string(b, "command", command);
	jsonl_add_string(b, "error", code);
	jsonl_add_string(b, "message", msg);
	g_free(msg);
	return b;
}
