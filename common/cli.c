/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cli.h"

#define NUMBER_HINT "(decimal, or hexadecimal with 0x)"

/* Quoted input is cut, and its control characters are escaped (\n,
 * \x01): a sentence must stay one line. Other bytes are kept as they
 * are, UTF-8 included. */
static char *shown(const char *s)
{
	const size_t max = 40;
	GString *out = g_string_new(NULL);
	size_t i;

	for (i = 0; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '\n': g_string_append(out, "\\n"); break;
		case '\r': g_string_append(out, "\\r"); break;
		case '\t': g_string_append(out, "\\t"); break;
		case '\v': g_string_append(out, "\\v"); break;
		case '\f': g_string_append(out, "\\f"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				g_string_append_printf(out, "\\x%02x", c);
			else
				g_string_append_c(out, (char)c);
		}
	}
	if (s[i])
		g_string_append(out, "...");
	return g_string_free(out, FALSE);
}

static void set_error(char **error, const char *what, const char *s,
		      const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void set_error(char **error, const char *what, const char *s,
		      const char *fmt, ...)
{
	char *quoted, *why;
	va_list ap;

	if (!error)
		return;
	quoted = shown(s ? s : "");
	va_start(ap, fmt);
	why = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	*error = g_strdup_printf("invalid %s '%s': %s", what, quoted, why);
	g_free(why);
	g_free(quoted);
}

/* " from 1 to 64", " of at least 1", " of at most 64" or "" (none). */
static char *bounds(uint64_t min, uint64_t max)
{
	if (min && max != UINT64_MAX)
		return g_strdup_printf(" from %" PRIu64 " to %" PRIu64,
				       min, max);
	if (min)
		return g_strdup_printf(" of at least %" PRIu64, min);
	if (max != UINT64_MAX)
		return g_strdup_printf(" of at most %" PRIu64, max);
	return g_strdup("");
}

/*
 * The digits of s (up to end, or its end when end is NULL) as a NUMBER:
 * 0 with *out set, -EINVAL or -ERANGE (above UINT64_MAX). GLib takes no
 * 0x for base 16; the digits are copied because it wants the number to
 * end the string. Its own check refuses a sign and the spaces
 * g_ascii_isspace() knows, but not a vertical tab, which strtoull then
 * skips: every character must be a digit of the base.
 */
static int number(const char *s, const char *end, uint64_t *out)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *digits = NULL;
	unsigned base = 10;
	guint64 v;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	digits = end ? g_strndup(s, (gsize)(end - s)) : g_strdup(s);
	for (const char *p = digits; *p; p++)
		if (base == 16 ? !g_ascii_isxdigit(*p) : !g_ascii_isdigit(*p))
			return -EINVAL;
	if (!g_ascii_string_to_unsigned(digits, base, 0, G_MAXUINT64, &v,
					&err))
		return g_error_matches(err, G_NUMBER_PARSER_ERROR,
				       G_NUMBER_PARSER_ERROR_OUT_OF_BOUNDS) ?
		       -ERANGE : -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_u64(const char *what, const char *s, uint64_t min,
		  uint64_t max, uint64_t *out, char **error)
{
	g_autofree char *range = bounds(min, max);
	uint64_t v;
	int r;

	r = s ? number(s, NULL, &v) : -EINVAL;
	if (r == 0 && (v < min || v > max))
		r = -ERANGE;
	if (r == -EINVAL)
		set_error(error, what, s, "give a number%s " NUMBER_HINT,
			  range);
	else if (r == -ERANGE)
		set_error(error, what, s, "out of range, give a number%s",
			  *range ? range : " of at most 18446744073709551615");
	else
		*out = v;
	return r;
}

int cli_parse_uint(const char *what, const char *s, unsigned min,
		   unsigned max, unsigned *out, char **error)
{
	uint64_t v;
	int r = cli_parse_u64(what, s, min, max, &v, error);

	if (r == 0)
		*out = (unsigned)v;
	return r;
}

/* The shift of a size suffix ("K", "KiB", "B", ""; any case), or -1. */
static int suffix_shift(const char *u)
{
	static const char units[] = "KMGTPE";
	const char *p;

	if (!*u)
		return 0;
	if (g_ascii_strcasecmp(u, "B") == 0)
		return 0;
	p = strchr(units, g_ascii_toupper(*u));
	if (!p || !*p)
		return -1;
	if (u[1] && g_ascii_strcasecmp(u + 1, "iB") != 0)
		return -1;
	return 10 * (int)(p - units + 1);
}

int cli_parse_size(const char *what, const char *s, uint64_t min,
		   uint64_t max, uint64_t *out, char **error)
{
	g_autofree char *range = bounds(min, max);
	const char *end = s;
	bool hex;
	int shift = -1, r = -EINVAL;
	uint64_t v = 0;

	if (!s)
		goto refused;
	/* The number ends where its digits do. B and E are hexadecimal
	 * digits too, so after 0x they end a suffix only as EiB. */
	hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	end = hex ? s + 2 : s;
	while (hex ? g_ascii_isxdigit(*end) : g_ascii_isdigit(*end))
		end++;
	if (hex && end > s + 2 && (end[-1] == 'e' || end[-1] == 'E') &&
	    g_ascii_strcasecmp(end, "iB") == 0)
		end--;
	shift = suffix_shift(end);
	if (shift < 0)
		goto refused;
	r = number(s, end, &v);
	if (r == 0 && shift && v > (UINT64_MAX >> shift))
		r = -ERANGE;
	if (r == 0)
		v <<= shift;
	if (r == 0 && (v < min || v > max))
		r = -ERANGE;
refused:
	if (r == -EINVAL)
		set_error(error, what, s,
			  "give a number " NUMBER_HINT " with an optional K, M, G, T, P or E suffix (powers of 1024; or KiB, MiB, ..., or B), for example 4M");
	else if (r == -ERANGE)
		set_error(error, what, s, "out of range, give a size%s",
			  *range ? range :
			  " of at most 18446744073709551615");
	else
		*out = v;
	return r;
}

int cli_parse_seconds(const char *what, const char *s, double *out,
		      char **error)
{
	char *end = NULL;
	double v = 0, scale = 1;
	int r = -EINVAL;

	/* A digit or a point first: no sign, no space, no "inf" or "nan". */
	if (s && (g_ascii_isdigit(*s) || *s == '.')) {
		errno = 0;
		v = g_ascii_strtod(s, &end);
		if (end == s)
			end = NULL;
		/* 1e400 and 1e-400 are numbers, out of range. */
		else if (errno == ERANGE)
			v = v > 1 ? INFINITY : 0;
	}
	if (end && strcmp(end, "ms") == 0)
		scale = 1e-3;
	else if (end && *end && strcmp(end, "s") != 0)
		end = NULL;
	if (end && !isnan(v)) {
		v *= scale;
		r = v > 0 && v <= CLI_MAX_SECONDS ? 0 : -ERANGE;
	}
	if (r == -EINVAL)
		set_error(error, what, s,
			  "give a number of seconds, a fraction allowed, with an optional s or ms suffix, for example 5, 0.5 or 500ms");
	else if (r == -ERANGE)
		set_error(error, what, s,
			  "out of range, give more than 0 and at most %.0f seconds (a year)",
			  CLI_MAX_SECONDS);
	else
		*out = v;
	return r;
}

uint64_t cli_u64_or_exit(const char *prog, const char *what, const char *s,
			 uint64_t min, uint64_t max)
{
	char *error = NULL;
	uint64_t v = 0;

	if (cli_parse_u64(what, s, min, max, &v, &error) < 0) {
		fprintf(stderr, "%s: %s\n", prog, error);
		g_free(error);
		exit(2);
	}
	return v;
}
