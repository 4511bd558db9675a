/* SPDX-License-Identifier: MIT */
/*
 * The command-line grammar (common/cli.h) against a reference parse.
 *
 * Input: byte 0 picks the parser (u64, uint, size, seconds), bytes 1 and
 * 2 the bounds (from a table), the rest is the string (up to a NUL).
 * NUMBER and SIZE are checked against a model written from the grammar
 * in cli.h: a NUMBER is decimal digits or 0x and hex digits, nothing
 * else; its value is strtoull's; a SIZE is the longest NUMBER prefix that
 * leaves a known suffix. The return value, the value and whether a
 * sentence was given must all match. SECONDS: an accepted string starts
 * with a digit or a point and gives a value in (0, a year].
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t bound_table[] = {
	0, 1, 2, 64, 4096, 65535, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
	UINT64_C(1) << 60, UINT64_MAX - 1, UINT64_MAX,
};
#define NBOUNDS (sizeof(bound_table) / sizeof(bound_table[0]))

static bool is_dec(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_dec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The model of a NUMBER in s[0..len): 0, -EINVAL, -ERANGE. */
static int ref_number(const char *s, size_t len, uint64_t *out)
{
	char buf[32];
	bool hex = len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	size_t start = hex ? 2 : 0;
	unsigned long long v;
	char *end;

	if (len <= start)
		return -EINVAL;
	for (size_t i = start; i < len; i++)
		if (hex ? !is_hex(s[i]) : !is_dec(s[i]))
			return -EINVAL;
	/* Every character is a digit: strtoull reads exactly them, after
	 * the leading zeros (more than 20 digits left is too many). */
	while (start + 1 < len && s[start] == '0')
		start++;
	if (len - start > 20)
		return -ERANGE;
	memcpy(buf, s + start, len - start);
	buf[len - start] = '\0';
	errno = 0;
	v = strtoull(buf, &end, hex ? 16 : 10);
	if (*end)
		abort();
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

/* The shift of a suffix, or -1. */
static int ref_suffix(const char *u)
{
	static const char units[] = "KMGTPE";

	if (!*u)
		return 0;
	if (!g_ascii_strcasecmp(u, "b"))
		return 0;
	for (int i = 0; units[i]; i++) {
		if (g_ascii_toupper(u[0]) != units[i])
			continue;
		if (!u[1] || !g_ascii_strcasecmp(u + 1, "ib"))
			return 10 * (i + 1);
	}
	return -1;
}

static int ref_size(const char *s, uint64_t *out)
{
	size_t len = strlen(s);

	/* The longest prefix that is made of digits, with a suffix left. */
	for (size_t n = len; n > 0; n--) {
		uint64_t v;
		int shift = ref_suffix(s + n), r;
		bool hex = n >= 2 && s[0] == '0' &&
			   (s[1] == 'x' || s[1] == 'X');
		bool digits = n > (hex ? 2u : 0u);

		for (size_t i = hex ? 2 : 0; digits && i < n; i++)
			if (hex ? !is_hex(s[i]) : !is_dec(s[i]))
				digits = false;
		if (shift < 0 || !digits)
			continue;
		r = ref_number(s, n, &v);
		if (r)
			return r;
		if (shift && v > (UINT64_MAX >> shift))
			return -ERANGE;
		*out = v << shift;
		return 0;
	}
	return -EINVAL;
}

static void check(int r, int want, uint64_t v, uint64_t want_v, char *error,
		  const char *what, const char *s)
{
	if (r != want || (r == 0 && v != want_v) || (r == 0) != (error == NULL)) {
		fprintf(stderr, "%s '%s': got %d %llu, model %d %llu (%s)\n",
			what, s, r, (unsigned long long)v, want,
			(unsigned long long)want_v, error ? error : "-");
		abort();
	}
	if (error && (strncmp(error, "invalid ", 8) || strchr(error, '\n')))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t min, max, v = 0, want_v = 0;
	char *error = NULL, *s;
	int r, want = 0;

	if (size < 3)
		return 0;
	min = bound_table[data[1] % NBOUNDS];
	max = bound_table[data[2] % NBOUNDS];
	s = g_strndup((const char *)data + 3, size - 3);

	switch (data[0] % 4) {
	case 0:
	case 1: {
		bool uint = data[0] % 4 == 1;

		if (uint) {
			unsigned uv = 0;

			min = (unsigned)min;
			max = (unsigned)max;
			r = cli_parse_uint("number", s, (unsigned)min,
					   (unsigned)max, &uv, &error);
			v = uv;
		} else {
			r = cli_parse_u64("number", s, min, max, &v, &error);
		}
		want = ref_number(s, strlen(s), &want_v);
		if (want == 0 && (want_v < min || want_v > max))
			want = -ERANGE;
		check(r, want, v, want_v, error, "number", s);
		break;
	}
	case 2:
		r = cli_parse_size("size", s, min, max, &v, &error);
		want = ref_size(s, &want_v);
		if (want == 0 && (want_v < min || want_v > max))
			want = -ERANGE;
		check(r, want, v, want_v, error, "size", s);
		break;
	default: {
		double d = 0;

		r = cli_parse_seconds("duration", s, &d, &error);
		if (r == 0 && (!(is_dec(s[0]) || s[0] == '.') || !(d > 0) ||
			       d > CLI_MAX_SECONDS || error))
			abort();
		if (r != 0 && (r != -EINVAL && r != -ERANGE))
			abort();
		if (r != 0 && !error)
			abort();
		break;
	}
	}
	g_free(error);
	g_free(s);
	return 0;
}
