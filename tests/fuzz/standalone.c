/* SPDX-License-Identifier: MIT */
/*
 * main() for the source-coverage build of the fuzz targets: run
 * LLVMFuzzerTestOneInput once on each file named on the command line, as
 * libFuzzer does when it is given files (scripts/fuzz.sh coverage).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		g_autoptr(GError) err = NULL;
		g_autofree char *data = NULL;
		gsize len = 0;

		if (!g_file_get_contents(argv[i], &data, &len, &err)) {
			fprintf(stderr, "%s\n", err->message);
			return 1;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	}
	return 0;
}
