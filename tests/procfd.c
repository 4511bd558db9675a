/* SPDX-License-Identifier: MIT */
/* The open fds of a process (see procfd.h). */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib.h>

#include "procfd.h"

int procfd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	bool self = pid == getpid();
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' &&
		    (!self || atoi(e->d_name) != dirfd(d)))
			n++;
	closedir(d);
	return n;
}

char *procfd_list(pid_t pid, const char *indent)
{
	GString *g = g_string_new(NULL);
	char path[64], link[320], target[256];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	if (!d)
		return g_string_free(g, FALSE);
	while ((e = readdir(d))) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		g_string_append_printf(g, "%s%s -> %s\n", indent, e->d_name,
				       target);
	}
	closedir(d);
	return g_string_free(g, FALSE);
}
