/* SPDX-License-Identifier: MIT */
/*
 * ivshmem-ctl guest list|bind: the ivshmem PCI devices inside a Linux
 * guest (GUEST in ivshmem-ctl(1)).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "ctl.h"
#include "ivshmem.h"

#define GUEST_SYNOPSIS "list | bind ADDR"

static void guest_help(void)
{
	printf(
"Usage: ivshmem-ctl guest list [OPTION]...\n"
"       ivshmem-ctl guest bind [OPTION]... ADDR\n"
"Inside a Linux guest: the ivshmem PCI devices (1af4:1110) QEMU gave it.\n"
"\n"
"  list   one line per device: address, kind (doorbell or plain), MSI-X\n"
"         vectors, shared-memory size, driver, IOMMU group\n"
"  bind   bind the device at ADDR to vfio-pci (root, the vfio-pci module\n"
"         loaded, an IOMMU in the guest), so that its doorbells arrive as\n"
"         interrupts; --pci=ADDR then uses it through VFIO\n");
	ctl_common_help();
	ctl_exit_help(false);
}

static int guest_list(const struct ctl_opts *o)
{
	struct ivshmem_pci_device *v = NULL;
	struct ctl_out out;
	int n = ivshmem_pci_list(NULL, 0);

	if (n < 0) {
		ctl_error("cannot read /sys/bus/pci/devices: %s", g_strerror(-n));
		return CTL_EXIT_FAILURE;
	}
	v = g_new0(struct ivshmem_pci_device, (gsize)n + 1);
	n = ivshmem_pci_list(v, (unsigned)n);
	if (n < 0) {
		g_free(v);
		ctl_error("cannot read /sys/bus/pci/devices: %s", g_strerror(-n));
		return CTL_EXIT_FAILURE;
	}
	if (!o->json)
		printf("%-12s  %-8s  %7s  %-16s  %-10s  %s\n", "ADDRESS", "KIND",
		       "VECTORS", "SHM", "DRIVER", "IOMMU-GROUP");
	ctl_out_init(&out, o->json);
	for (int i = 0; i < n; i++) {
		char *size = ctl_human_size(v[i].shm_size);
		char group[16];

		snprintf(group, sizeof(group), "%d", v[i].iommu_group);
		if (o->json) {
			ctl_out_begin(&out, "device");
			ctl_out_str(&out, "address", v[i].address);
			ctl_out_word(&out, "kind", v[i].doorbell ? "doorbell" : "plain");
			ctl_out_u64(&out, "vectors", v[i].vectors);
			ctl_out_u64(&out, "shm-size", v[i].shm_size);
			ctl_out_str(&out, "driver", v[i].driver);
			ctl_out_u64(&out, "iommu-group", v[i].iommu_group < 0 ? 0 :
				    (uint64_t)v[i].iommu_group);
			ctl_out_end(&out);
		} else {
			printf("%-12s  %-8s  %7u  %-16s  %-10s  %s\n", v[i].address,
			       v[i].doorbell ? "doorbell" : "plain", v[i].vectors,
			       size, v[i].driver[0] ? v[i].driver : "-",
			       v[i].iommu_group < 0 ? "-" : group);
		}
		g_free(size);
	}
	ctl_out_clear(&out);
	g_free(v);
	return ctl_stdout_status();
}

int ctl_guest_run(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_opts o;
	char *args[2];
	char why[256];
	int r = ctl_parse_simple("guest", GUEST_SYNOPSIS, guest_help, g, argc,
				 argv, &o, 1, 2, args);

	if (r != CTL_EXIT_OK)
		return r < 0 ? CTL_EXIT_OK : r;
	if (strcmp(args[0], "list") == 0) {
		if (args[1])
			return ctl_usage_error("guest", "unexpected argument '%s': give 'guest list'",
					       args[1]);
		return guest_list(&o);
	}
	if (strcmp(args[0], "bind") != 0)
		return ctl_usage_error("guest", "unknown subcommand '%s': give '" GUEST_SYNOPSIS "'",
				       args[0]);
	if (!args[1])
		return ctl_usage_error("guest", "missing argument: give 'guest bind ADDR'");
	r = ivshmem_pci_bind(args[1], why, sizeof(why));
	if (r == -EINVAL)
		return ctl_usage_error("guest", "%s", why);
	if (r < 0) {
		ctl_error("%s", why);
		return CTL_EXIT_FAILURE;
	}
	if (!o.json)
		printf("%s is bound to vfio-pci\n", args[1]);
	return ctl_stdout_status();
}
