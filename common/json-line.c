/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
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

/* ---- strict syntax check ------------------------------------------------ */

/* Deeper nesting than this is refused, so that the recursion stays
 * bounded whatever the caller's line length (a 4096-byte line nests at
 * most 2048 deep). */
#define JSONL_MAX_DEPTH 4096

struct scan {
	const char *p, *end;
	const char *why;
	unsigned depth;
};

static bool fail(struct scan *sc, const char *why)
{
	if (!sc->why)
		sc->why = why;
	return false;
}

static void skip_ws(struct scan *sc)
{
	while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' ||
				   *sc->p == '\n' || *sc->p == '\r'))
		sc->p++;
}

static bool eat(struct scan *sc, char c)
{
	if (sc->p < sc->end && *sc->p == c) {
		sc->p++;
		return true;
	}
	return false;
}

static bool digits(struct scan *sc)
{
	const char *start = sc->p;

	while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9')
		sc->p++;
	return sc->p > start;
}

static bool scan_number(struct scan *sc)
{
	eat(sc, '-');
	if (eat(sc, '0')) {
		/* no leading zeros */
	} else if (!(sc->p < sc->end && *sc->p >= '1' && *sc->p <= '9') ||
		   !digits(sc)) {
		return fail(sc, "a malformed number");
	}
	if (eat(sc, '.') && !digits(sc))
		return fail(sc, "a malformed number");
	if (eat(sc, 'e') || eat(sc, 'E')) {
		if (!eat(sc, '+'))
			eat(sc, '-');
		if (!digits(sc))
			return fail(sc, "a malformed number");
	}
	return true;
}

/* The 4 hex digits of a \u escape at sc->p (the "\u" is behind it):
 * 0..0xffff, or -1 if they are not there. */
static long scan_hex4(struct scan *sc)
{
	long v = 0;

	for (int i = 0; i < 4; i++, sc->p++) {
		if (sc->p >= sc->end || !g_ascii_isxdigit(*sc->p))
			return -1;
		v = v << 4 | g_ascii_xdigit_value(*sc->p);
	}
	return v;
}

/*
 * A \u escape, the "\u" behind sc->p. Refused besides malformed ones:
 * U+0000, which json-glib cuts the string at, and a UTF-16 surrogate
 * that is not a high one followed by a low one, which json-glib 1.6
 * either refuses and leaks a buffer for, or turns into bytes that are
 * not UTF-8. RFC 8259 lets a parser refuse both (section 8.2).
 */
static bool scan_u_escape(struct scan *sc)
{
	long v = scan_hex4(sc), lo;

	if (v < 0)
		return fail(sc, "a malformed \\u escape");
	if (v == 0)
		return fail(sc, "a \\u0000 escape (NUL) in a string");
	if (v >= 0xdc00 && v <= 0xdfff)
		return fail(sc, "an unpaired surrogate \\u escape (a low one without a high one before it)");
	if (v < 0xd800 || v > 0xdbff)
		return true;
	if (sc->end - sc->p < 2 || sc->p[0] != '\\' || sc->p[1] != 'u')
		return fail(sc, "an unpaired surrogate \\u escape (a high one without a low one after it)");
	sc->p += 2;
	lo = scan_hex4(sc);
	if (lo < 0)
		return fail(sc, "a malformed \\u escape");
	if (lo < 0xdc00 || lo > 0xdfff)
		return fail(sc, "an unpaired surrogate \\u escape (a high one without a low one after it)");
	return true;
}

static bool scan_string(struct scan *sc)
{
	if (!eat(sc, '"'))
		return fail(sc, "a string that does not start with a double quote");
	while (sc->p < sc->end) {
		unsigned char c = (unsigned char)*sc->p++;

		if (c == '"')
			return true;
		if (c < 0x20)
			return fail(sc, "a control character in a string");
		if (c != '\\')
			continue;
		if (sc->p >= sc->end)
			break;
		c = (unsigned char)*sc->p++;
		if (c == 'u') {
			if (!scan_u_escape(sc))
				return false;
		} else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
			return fail(sc, "an unknown escape in a string");
		}
	}
	return fail(sc, "an unterminated string");
}

static bool scan_word(struct scan *sc, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, w, n) != 0)
		return fail(sc, "something that is not a JSON value");
	sc->p += n;
	return true;
}

static bool scan_value(struct scan *sc);

static bool scan_container(struct scan *sc, char close)
{
	bool object = close == '}';

	if (++sc->depth > JSONL_MAX_DEPTH)
		return fail(sc, "values nested too deeply");
	sc->p++;
	skip_ws(sc);
	if (!eat(sc, close)) {
		do {
			if (object) {
				skip_ws(sc);
				if (sc->p >= sc->end || *sc->p != '"')
					return fail(sc, "a member name that is not a string");
				if (!scan_string(sc))
					return false;
				skip_ws(sc);
				if (!eat(sc, ':'))
					return fail(sc, "a member without a colon");
			}
			if (!scan_value(sc))
				return false;
		} while (eat(sc, ','));
		if (!eat(sc, close))
			return fail(sc, object ? "an object that is not closed with }" :
					 "an array that is not closed with ]");
	}
	sc->depth--;
	return true;
}

static bool scan_value(struct scan *sc)
{
	bool ok;

	skip_ws(sc);
	if (sc->p >= sc->end)
		return fail(sc, "a missing value");
	switch (*sc->p) {
	case '{': ok = scan_container(sc, '}'); break;
	case '[': ok = scan_container(sc, ']'); break;
	case '"': ok = scan_string(sc); break;
	case 't': ok = scan_word(sc, "true"); break;
	case 'f': ok = scan_word(sc, "false"); break;
	case 'n': ok = scan_word(sc, "null"); break;
	default:
		ok = *sc->p == '-' || (*sc->p >= '0' && *sc->p <= '9') ?
		     scan_number(sc) :
		     fail(sc, "something that is not a JSON value");
	}
	skip_ws(sc);
	return ok;
}

bool jsonl_member_text(const char *s, size_t len, const char *name,
		       size_t *off, size_t *n)
{
	struct scan sc = { .p = s, .end = s + len };
	size_t nl = strlen(name);
	bool found = false;

	skip_ws(&sc);
	if (!eat(&sc, '{'))
		return false;
	skip_ws(&sc);
	if (eat(&sc, '}'))
		return false;
	do {
		const char *key, *v, *ve;
		bool match;

		skip_ws(&sc);
		key = sc.p;
		if (!scan_string(&sc))
			return false;
		match = (size_t)(sc.p - key) == nl + 2 &&
			memcmp(key + 1, name, nl) == 0;
		skip_ws(&sc);
		if (!eat(&sc, ':'))
			return false;
		skip_ws(&sc);
		v = sc.p;
		if (!scan_value(&sc))
			return false;
		/* scan_value took the whitespace after the value too. */
		for (ve = sc.p; ve > v && strchr(" \t\r\n", ve[-1]); ve--)
			;
		if (match) {
			*off = (size_t)(v - s);
			*n = (size_t)(ve - v);
			found = true;
		}
	} while (eat(&sc, ','));
	return found;
}

const char *jsonl_check(const char *s, size_t len)
{
	struct scan sc = { .p = s, .end = s + len };

	if (!scan_value(&sc))
		return sc.why;
	if (sc.p != sc.end)
		return "more than one JSON value";
	return NULL;
}
