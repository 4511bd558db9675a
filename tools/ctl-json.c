/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl: the JSON of the control protocol, read and built with
 * json-glib: members of the server's replies by type, requests, and the
 * builder steps the imitated replies share.
 */
#include <glib.h>

#include "ctl.h"

JsonNode *ctl_request_new(const char *command)
{
	JsonObject *o = json_object_new();
	JsonNode *n = json_node_new(JSON_NODE_OBJECT);

	json_object_set_string_member(o, "command", command);
	json_node_take_object(n, o);
	return n;
}

JsonNode *ctl_json_member(JsonObject *o, const char *name)
{
	return o && json_object_has_member(o, name) ?
	       json_object_get_member(o, name) : NULL;
}

bool ctl_json_int(JsonObject *o, const char *name, gint64 *v)
{
	JsonNode *n = ctl_json_member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_INT64)
		return false;
	*v = json_node_get_int(n);
	return true;
}

bool ctl_json_true(JsonObject *o, const char *name)
{
	JsonNode *n = ctl_json_member(o, name);

	return n && JSON_NODE_HOLDS_VALUE(n) &&
	       json_node_get_value_type(n) == G_TYPE_BOOLEAN &&
	       json_node_get_boolean(n);
}

bool ctl_json_number(JsonObject *o, const char *name, double *v)
{
	JsonNode *n = ctl_json_member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n))
		return false;
	switch (json_node_get_value_type(n)) {
	case G_TYPE_INT64:
		*v = (double)json_node_get_int(n);
		return true;
	case G_TYPE_DOUBLE:
		*v = json_node_get_double(n);
		return true;
	default:
		return false;
	}
}

const char *ctl_json_str(JsonObject *o, const char *name)
{
	JsonNode *n = ctl_json_member(o, name);

	if (!n || !JSON_NODE_HOLDS_VALUE(n) ||
	    json_node_get_value_type(n) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(n);
}

JsonObject *ctl_json_obj(JsonObject *o, const char *name)
{
	JsonNode *n = ctl_json_member(o, name);

	return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

JsonArray *ctl_json_array(JsonObject *o, const char *name)
{
	JsonNode *n = ctl_json_member(o, name);

	return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

JsonNode *ctl_json_take(JsonBuilder *b)
{
	JsonNode *n = json_builder_get_root(b);

	g_object_unref(b);
	return n;
}

void ctl_json_add_null(JsonBuilder *b, const char *name)
{
	json_builder_set_member_name(b, name);
	json_builder_add_null_value(b);
}
