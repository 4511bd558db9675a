/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: the server's replies as output. JSON as the server sent it,
 * or text through a command's own printer, which builds it from the pieces
 * here: sizes, durations, local times, lists, any member as text.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include <glib.h>

#include "ctl.h"

char *ctl_human_size(uint64_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB", "EiB" };
	unsigned i = 0;
	double v;

	if (n < 1024)
		return g_strdup_printf("%" PRIu64, n);
	while (i + 1 < G_N_ELEMENTS(units) && n >> (10 * (i + 2)))
		i++;
	if ((n & ((UINT64_C(1) << (10 * (i + 1))) - 1)) == 0)
		return g_strdup_printf("%" PRIu64 " (%" PRIu64 " %s)", n,
				       n >> (10 * (i + 1)), units[i]);
	v = (double)n / (double)(UINT64_C(1) << (10 * (i + 1)));
	return g_strdup_printf("%" PRIu64 " (%.1f %s)", n, v, units[i]);
}

char *ctl_human_duration(double seconds)
{
	uint64_t t = seconds > 0 && isfinite(seconds) ? (uint64_t)seconds : 0;
	uint64_t d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, s = t % 60;

	if (d)
		return g_strdup_printf("%" PRIu64 "d %" PRIu64 "h %" PRIu64
				       "m %" PRIu64 "s", d, h, m, s);
	if (h)
		return g_strdup_printf("%" PRIu64 "h %" PRIu64 "m %" PRIu64
				       "s", h, m, s);
	if (m)
		return g_strdup_printf("%" PRIu64 "m %" PRIu64 "s", m, s);
	return g_strdup_printf("%" PRIu64 "s", s);
}

char *ctl_local_time(const char *iso, const char *format)
{
	GDateTime *t = g_date_time_new_from_iso8601(iso, NULL), *l;
	char *s;

	if (!t)
		return g_strdup(iso);
	l = g_date_time_to_local(t);
	s = g_date_time_format(l, format);
	g_date_time_unref(l);
	g_date_time_unref(t);
	return s ? s : g_strdup(iso);
}

char *ctl_text_of(JsonObject *o, const char *name)
{
	const char *s = ctl_json_str(o, name);
	double d;
	gint64 v;

	if (s)
		return g_strdup(s);
	if (ctl_json_int(o, name, &v))
		return g_strdup_printf("%" G_GINT64_FORMAT, v);
	if (ctl_json_number(o, name, &d))
		return g_strdup_printf("%g", d);
	return g_strdup("-");
}

int ctl_print_reply(const struct ctl_opts *o, JsonNode *reply,
		    void (*text)(JsonObject *))
{
	int r;

	if (o->json) {
		r = ctl_print_json(reply);
		return r < 0 ? ctl_stdout_error(r) : CTL_EXIT_OK;
	}
	text(json_node_get_object(reply));
	return ctl_stdout_status();
}

char *ctl_int_list(JsonArray *a)
{
	GString *s = g_string_new(NULL);
	guint n = a ? json_array_get_length(a) : 0;

	for (guint i = 0; i < n; i++) {
		JsonNode *e = json_array_get_element(a, i);

		if (JSON_NODE_HOLDS_VALUE(e) &&
		    json_node_get_value_type(e) == G_TYPE_INT64)
			g_string_append_printf(s, "%s%" G_GINT64_FORMAT,
					       s->len ? "," : "",
					       json_node_get_int(e));
	}
	return g_string_free(s, FALSE);
}

