/* SPDX-License-Identifier: MIT */
/*
 * The guest side: an ivshmem PCI device inside a Linux guest, reached
 * through VFIO (MSI-X doorbells on eventfds) or through the sysfs
 * resource files (doorbells polled from the MSI-X pending bits). GUEST in
 * libivshmem(3) says what a guest needs.
 *
 * Polling without a driver: with MSI-X enabled, Bus Master off and every
 * vector masked, the device records a doorbell as the vector's pending
 * bit instead of sending it. A look reads the pending bits; for each one
 * set it unmasks the vector and masks it again, which clears the bit (the
 * message the device then sends goes nowhere: Bus Master is off), and
 * then signals the vector's eventfd. A doorbell that arrives in the
 * window is merged with the one being reported, which its reader handles
 * after the window: none is lost.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "pci-private.h"

#define SYSFS_PCI "/sys/bus/pci/devices"

/* BAR0 registers (ivshmem-protocol(7), the device's side). */
#define REG_INTRMASK 0x00
#define REG_IVPOSITION 0x08
#define REG_DOORBELL 0x0c
#define REGS_LEN 0x100

/* PCI configuration space. */
#define CFG_COMMAND 0x04
#define CMD_MEMORY 0x0002
#define CMD_MASTER 0x0004
#define CFG_STATUS 0x06
#define STATUS_CAPS 0x0010
#define CFG_CAP_PTR 0x34
#define CAP_MSIX 0x11
#define MSIX_CTL 2
#define MSIX_CTL_ENABLE 0x8000
#define MSIX_CTL_MASKALL 0x4000
#define MSIX_CTL_SIZE 0x07ff
#define MSIX_TABLE 4
#define MSIX_PBA 8
#define MSIX_ENTRY 16
#define MSIX_ENTRY_CTRL 12

/* Between two looks for polled doorbells. */
#define POLL_US 1000u

struct pci_dev {
	char addr[16];
	int mode;                       /* enum ivshmem_pci_mode */
	char why[200];                  /* why not VFIO (POLL) */
	unsigned nvec;

	int container, group, device;   /* VFIO, -1 when unused */
	int cfg;                        /* the config fd: device or sysfs */
	uint64_t cfg_off;               /* offset of config space in cfg */

	volatile uint32_t *regs;        /* BAR0, NULL for plain */
	size_t regs_len;
	void *shm;                      /* BAR2 */
	uint64_t shm_size;

	/* Polled MSI-X: the BAR holding table and pending bits. */
	volatile uint8_t *msix;
	size_t msix_len;
	uint32_t table_off, pba_off;
	int msix_cap;                   /* config offset, 0 when none */
	uint16_t msix_ctl_found;
	uint16_t cmd_found;
	bool restore;                   /* put command and MSI-X back */
};

IVSHMEM_PRINTF(3, 4)
static int fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return 0;
}

/* ---- sysfs ------------------------------------------------------------- */

/* A sysfs file of the device, NUL-terminated, into buf; with first_line,
 * cut at its end. */
static int sysfs_read(const char *addr, const char *file, char *buf,
		      size_t len, bool first_line)
{
	char path[96];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/%s", addr, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (first_line)
		buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static bool is_ivshmem(const char *addr)
{
	char v[16], d[16];

	return sysfs_read(addr, "vendor", v, sizeof(v), true) == 0 &&
	       sysfs_read(addr, "device", d, sizeof(d), true) == 0 &&
	       strtoul(v, NULL, 16) == IVSHMEM_PCI_VENDOR &&
	       strtoul(d, NULL, 16) == IVSHMEM_PCI_DEVICE;
}

/* Size of BAR bar from the "resource" file, 0 when absent. */
static uint64_t bar_size(const char *addr, unsigned bar)
{
	char buf[1024], *line;
	unsigned long long start, end;

	if (sysfs_read(addr, "resource", buf, sizeof(buf), false) < 0)
		return 0;
	line = buf;
	for (unsigned i = 0; i < bar && line; i++) {
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!line || sscanf(line, "%llx %llx", &start, &end) != 2 ||
	    end <= start)
		return 0;
	return end - start + 1;
}

static void driver_of(const char *addr, char *out, size_t len)
{
	char path[96], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/driver", addr);
	n = readlink(path, target, sizeof(target) - 1);
	out[0] = '\0';
	if (n > 0) {
		const char *name;
		size_t l;

		target[n] = '\0';
		name = strrchr(target, '/');
		name = name ? name + 1 : target;
		l = strnlen(name, len - 1);
		memcpy(out, name, l);
		out[l] = '\0';
	}
}

static int iommu_group_of(const char *addr)
{
	char path[96], target[256];
	const char *slash;
	ssize_t n;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/iommu_group", addr);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return -1;
	target[n] = '\0';
	slash = strrchr(target, '/');
	return slash ? atoi(slash + 1) : -1;
}

/* ---- configuration space, through whichever fd has it ------------------ */

static int cfg_read(const struct pci_dev *d, unsigned off, void *buf,
		    size_t n)
{
	ssize_t r = pread(d->cfg, buf, n, (off_t)(d->cfg_off + off));

	return r == (ssize_t)n ? 0 : r < 0 ? -errno : -EIO;
}

static int cfg_write(const struct pci_dev *d, unsigned off, const void *buf,
		     size_t n)
{
	ssize_t r = pwrite(d->cfg, buf, n, (off_t)(d->cfg_off + off));

	return r == (ssize_t)n ? 0 : r < 0 ? -errno : -EIO;
}

static uint16_t cfg16(const struct pci_dev *d, unsigned off)
{
	uint16_t v = 0;

	cfg_read(d, off, &v, sizeof(v));
	return v;
}

/* The MSI-X capability's offset, 0 when there is none. The list is the
 * device's to write, so the walk is bounded. */
static int find_msix(const struct pci_dev *d)
{
	uint8_t pos = 0, hdr[2];
	unsigned hops;

	if (!(cfg16(d, CFG_STATUS) & STATUS_CAPS) ||
	    cfg_read(d, CFG_CAP_PTR, &pos, 1) < 0)
		return 0;
	for (hops = 0; hops < 48 && pos >= 0x40; hops++) {
		pos &= ~3u;
		if (cfg_read(d, pos, hdr, 2) < 0)
			return 0;
		if (hdr[0] == CAP_MSIX)
			return pos;
		pos = hdr[1];
	}
	return 0;
}

/* ---- listing ----------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The ivshmem devices' addresses, sorted, into *list (malloc'd). */
static int scan(char (**list)[16])
{
	char (*v)[16] = NULL;
	struct dirent *de;
	int n = 0, cap = 0;
	DIR *dir = opendir(SYSFS_PCI);

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= 16 ||
		    !is_ivshmem(de->d_name))
			continue;
		if (n == cap) {
			char (*nv)[16] = realloc(v, (size_t)(cap ? cap * 2 : 8) *
						 sizeof(*v));

			if (!nv) {
				free(v);
				closedir(dir);
				return -ENOMEM;
			}
			v = nv;
			cap = cap ? cap * 2 : 8;
		}
		snprintf(v[n++], 16, "%s", de->d_name);
	}
	closedir(dir);
	if (n)
		qsort(v, (size_t)n, sizeof(*v), cmp_str);
	*list = v;
	return n;
}

int ivshmem_pci_list(struct ivshmem_pci_device *out, unsigned max)
{
	char (*addrs)[16] = NULL;
	int n, i;

	if (!out && max)
		return -EINVAL;
	n = scan(&addrs);
	for (i = 0; i < n && (unsigned)i < max; i++) {
		struct ivshmem_pci_device *o = &out[i];
		char path[96];
		struct pci_dev probe = { .cfg = -1 };

		memset(o, 0, sizeof(*o));
		snprintf(o->address, sizeof(o->address), "%s", addrs[i]);
		o->doorbell = bar_size(addrs[i], 1) != 0;
		o->shm_size = bar_size(addrs[i], 2);
		driver_of(addrs[i], o->driver, sizeof(o->driver));
		o->iommu_group = iommu_group_of(addrs[i]);
		/* Beyond the first 64 bytes, config space is root's. */
		snprintf(path, sizeof(path), SYSFS_PCI "/%s/config", addrs[i]);
		probe.cfg = open(path, O_RDONLY | O_CLOEXEC);
		if (probe.cfg >= 0) {
			int cap = find_msix(&probe);

			if (cap)
				o->vectors = (cfg16(&probe, (unsigned)cap +
						    MSIX_CTL) &
					      MSIX_CTL_SIZE) + 1u;
			close(probe.cfg);
		}
	}
	free(addrs);
	return n;
}

/* "0000:00:03.0" or "00:03.0", into canonical form. */
static bool parse_address(const char *in, char out[16])
{
	unsigned dom = 0, bus, dev, fn;
	char tail;

	if (sscanf(in, "%4x:%2x:%2x.%1u%c", &dom, &bus, &dev, &fn, &tail) != 4) {
		dom = 0;
		if (sscanf(in, "%2x:%2x.%1u%c", &bus, &dev, &fn, &tail) != 3)
			return false;
	}
	if (dev > 31 || fn > 7 || strlen(in) > 12)
		return false;
	snprintf(out, 16, "%04x:%02x:%02x.%u", dom, bus, dev, fn);
	return true;
}

/* ---- opening ----------------------------------------------------------- */

static void dev_init(struct pci_dev *d)
{
	memset(d, 0, sizeof(*d));
	d->container = d->group = d->device = d->cfg = -1;
}

static void *map_or_null(int fd, size_t len, uint64_t off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		       (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}

/* VFIO is used when the device is bound to vfio-pci; otherwise the
 * reason goes to why and *usable says whether sysfs may stand in. */
static int open_vfio(struct pci_dev *d, char *why, size_t len, bool *usable)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	struct vfio_irq_info irq = { .argsz = sizeof(irq) };
	char driver[32], path[64];
	int group, r;

	*usable = false;
	driver_of(d->addr, driver, sizeof(driver));
	group = iommu_group_of(d->addr);
	if (strcmp(driver, "vfio-pci") != 0) {
		*usable = !driver[0];
		if (access("/dev/vfio/vfio", F_OK) < 0)
			fail(why, len, "VFIO is not loaded (modprobe vfio-pci, then bind %s to it: ivshmem-ctl guest bind %s)",
			     d->addr, d->addr);
		else if (group < 0)
			fail(why, len, "%s has no IOMMU group, which VFIO needs: boot the guest with an IOMMU (QEMU: -machine q35 -device intel-iommu,intremap=on; guest kernel: intel_iommu=on)",
			     d->addr);
		else if (driver[0])
			fail(why, len, "%s is bound to %s, not vfio-pci: ivshmem-ctl guest bind %s (unbinds it and binds vfio-pci)",
			     d->addr, driver, d->addr);
		else
			fail(why, len, "%s is not bound to vfio-pci: ivshmem-ctl guest bind %s",
			     d->addr, d->addr);
		return access("/dev/vfio/vfio", F_OK) < 0 ? -ENOENT :
		       group < 0 ? -ENXIO : -EBUSY;
	}
	if (group < 0) {
		fail(why, len, "%s has no IOMMU group: boot the guest with an IOMMU (QEMU: -device intel-iommu,intremap=on; kernel: intel_iommu=on)",
		     d->addr);
		return -ENXIO;
	}
	d->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (d->container < 0) {
		r = -errno;
		fail(why, len, "cannot open /dev/vfio/vfio: %s%s", strerror(-r),
		     r == -EACCES ? " (run as root, or give this user /dev/vfio)" : "");
		return r;
	}
	if (ioctl(d->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    ioctl(d->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0) {
		fail(why, len, "this kernel's VFIO has no type 1 IOMMU support");
		return -ENOTSUP;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	d->group = open(path, O_RDWR | O_CLOEXEC);
	if (d->group < 0) {
		r = -errno;
		if (r == -EBUSY)
			fail(why, len, "IOMMU group %d (%s) is in use by another process", group, d->addr);
		else
			fail(why, len, "cannot open %s: %s%s", path, strerror(-r),
			     r == -EACCES ? " (run as root, or chown the group's node to this user)" : "");
		return r;
	}
	if (ioctl(d->group, VFIO_GROUP_GET_STATUS, &status) < 0 ||
	    !(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		fail(why, len, "IOMMU group %d has devices not bound to vfio-pci: bind all of /sys/kernel/iommu_groups/%d/devices to vfio-pci",
		     group, group);
		return -EBUSY;
	}
	if (ioctl(d->group, VFIO_GROUP_SET_CONTAINER, &d->container) < 0 ||
	    ioctl(d->container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) {
		r = -errno;
		fail(why, len, "the IOMMU refused VFIO for %s: %s%s", d->addr,
		     strerror(-r), r == -EPERM ?
		     " (interrupt remapping is off: QEMU -device intel-iommu,intremap=on)" : "");
		return r;
	}
	d->device = ioctl(d->group, VFIO_GROUP_GET_DEVICE_FD, d->addr);
	if (d->device < 0) {
		r = -errno;
		fail(why, len, "VFIO gives no device %s: %s", d->addr, strerror(-r));
		return r;
	}
	d->cfg = d->device;
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(d->device, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0)
		goto region;
	d->cfg_off = reg.offset;

	reg = (struct vfio_region_info){ .argsz = sizeof(reg),
					 .index = VFIO_PCI_BAR2_REGION_INDEX };
	if (ioctl(d->device, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0 ||
	    !reg.size || !(reg.flags & VFIO_REGION_INFO_FLAG_MMAP))
		goto region;
	d->shm_size = reg.size;
	d->shm = map_or_null(d->device, reg.size, reg.offset);
	if (!d->shm)
		goto region;

	reg = (struct vfio_region_info){ .argsz = sizeof(reg),
					 .index = VFIO_PCI_BAR0_REGION_INDEX };
	if (ioctl(d->device, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0 ||
	    reg.size < REGS_LEN || !(reg.flags & VFIO_REGION_INFO_FLAG_MMAP))
		goto region;
	d->regs_len = reg.size;
	d->regs = map_or_null(d->device, reg.size, reg.offset);
	if (!d->regs)
		goto region;

	irq.index = VFIO_PCI_MSIX_IRQ_INDEX;
	if (ioctl(d->device, VFIO_DEVICE_GET_IRQ_INFO, &irq) < 0)
		irq.count = 0;
	d->nvec = irq.count > IVSHMEM_MAX_VECTORS ? IVSHMEM_MAX_VECTORS :
		  irq.count;
	d->mode = d->nvec ? IVSHMEM_PCI_MODE_VFIO : IVSHMEM_PCI_MODE_PLAIN;
	return 0;
region:
	r = errno ? -errno : -EIO;
	fail(why, len, "VFIO cannot map %s's BARs: %s", d->addr, strerror(-r));
	return r;
}

/* Hand the eventfds to VFIO as the MSI-X triggers, and let the device
 * send (Bus Master). */
static int vfio_irqs(struct pci_dev *d, const int *fds, char *why, size_t len)
{
	size_t sz = sizeof(struct vfio_irq_set) + d->nvec * sizeof(int);
	struct vfio_irq_set *set = calloc(1, sz);
	uint16_t cmd;
	int r = 0;

	if (!set)
		return -ENOMEM;
	set->argsz = (uint32_t)sz;
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = 0;
	set->count = d->nvec;
	memcpy(set->data, fds, d->nvec * sizeof(int));
	if (ioctl(d->device, VFIO_DEVICE_SET_IRQS, set) < 0) {
		r = -errno;
		fail(why, len, "VFIO cannot take %s's MSI-X interrupts: %s",
		     d->addr, strerror(-r));
	}
	free(set);
	if (r)
		return r;
	/* Without Bus Master the device's MSI-X writes are dropped. */
	cmd = cfg16(d, CFG_COMMAND);
	d->cmd_found = cmd;
	cmd |= CMD_MEMORY | CMD_MASTER;
	r = cfg_write(d, CFG_COMMAND, &cmd, sizeof(cmd));
	if (r)
		fail(why, len, "cannot enable bus mastering on %s: %s", d->addr,
		     strerror(-r));
	return r;
}

static int sysfs_map(const struct pci_dev *d, unsigned bar, size_t len,
		     void **out, char *why, size_t wlen)
{
	char path[96];
	int fd, r = 0;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/resource%u", d->addr, bar);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		fail(why, wlen, "cannot open %s: %s%s", path, strerror(-r),
		     r == -EACCES ? " (run as root)" : "");
		return r;
	}
	*out = map_or_null(fd, len, 0);
	if (!*out) {
		r = -errno;
		fail(why, wlen, "cannot map %s: %s", path, strerror(-r));
	}
	close(fd);
	return r;
}

/* The sysfs path: map the BARs; for doorbells, MSI-X on, every vector
 * masked, Bus Master off, then poll the pending bits. */
static int open_sysfs(struct pci_dev *d, char *why, size_t len)
{
	char path[96];
	uint32_t table, pba;
	uint16_t ctl, cmd;
	unsigned bir;
	void *p;
	int r;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/config", d->addr);
	d->cfg = open(path, O_RDWR | O_CLOEXEC);
	if (d->cfg < 0) {
		r = -errno;
		fail(why, len, "cannot open %s: %s%s", path, strerror(-r),
		     r == -EACCES ? " (run as root)" : "");
		return r;
	}
	d->shm_size = bar_size(d->addr, 2);
	if (!d->shm_size) {
		fail(why, len, "%s has no shared memory (BAR2)", d->addr);
		return -ENODEV;
	}
	r = sysfs_map(d, 2, d->shm_size, &d->shm, why, len);
	if (r)
		return r;
	cmd = d->cmd_found = cfg16(d, CFG_COMMAND);
	d->msix_cap = find_msix(d);
	if (!d->msix_cap) {
		d->mode = IVSHMEM_PCI_MODE_PLAIN;
		return 0;
	}
	r = sysfs_map(d, 0, REGS_LEN, &p, why, len);
	if (r)
		return r;
	d->regs = p;
	d->regs_len = REGS_LEN;

	ctl = d->msix_ctl_found = cfg16(d, (unsigned)d->msix_cap + MSIX_CTL);
	if (cfg_read(d, (unsigned)d->msix_cap + MSIX_TABLE, &table, 4) < 0 ||
	    cfg_read(d, (unsigned)d->msix_cap + MSIX_PBA, &pba, 4) < 0) {
		fail(why, len, "cannot read %s's MSI-X capability", d->addr);
		return -EIO;
	}
	bir = table & 7;
	d->nvec = (ctl & MSIX_CTL_SIZE) + 1u;
	if (d->nvec > IVSHMEM_MAX_VECTORS)
		d->nvec = IVSHMEM_MAX_VECTORS;
	d->table_off = table & ~7u;
	d->pba_off = pba & ~7u;
	d->msix_len = (size_t)bar_size(d->addr, bir);
	if ((pba & 7) != bir || !d->msix_len ||
	    d->table_off + (uint64_t)d->nvec * MSIX_ENTRY > d->msix_len ||
	    d->pba_off + 8ull > d->msix_len) {
		fail(why, len, "%s's MSI-X table is not where it can be polled", d->addr);
		return -ENOTSUP;
	}
	r = sysfs_map(d, bir, d->msix_len, &p, why, len);
	if (r)
		return r;
	d->msix = p;
	for (unsigned v = 0; v < d->nvec; v++)
		*(volatile uint32_t *)(d->msix + d->table_off + v * MSIX_ENTRY +
				       MSIX_ENTRY_CTRL) = 1;
	d->restore = true;
	cmd = (uint16_t)((cmd | CMD_MEMORY) & ~CMD_MASTER);
	ctl = (uint16_t)((ctl | MSIX_CTL_ENABLE) & ~MSIX_CTL_MASKALL);
	if ((r = cfg_write(d, CFG_COMMAND, &cmd, 2)) < 0 ||
	    (r = cfg_write(d, (unsigned)d->msix_cap + MSIX_CTL, &ctl, 2)) < 0) {
		fail(why, len, "cannot set up %s for polling: %s", d->addr,
		     strerror(-r));
		return r;
	}
	d->mode = IVSHMEM_PCI_MODE_POLL;
	return 0;
}

int pci_dev_open(const char *address, unsigned flags, unsigned max_vec,
		 struct pci_dev **out, int *fds, unsigned *nvec, char *why,
		 size_t why_len)
{
	char (*addrs)[16] = NULL;
	struct pci_dev *d;
	bool usable = false;
	unsigned v;
	int r, n;

	if (why && why_len)
		why[0] = '\0';
	d = malloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	dev_init(d);
	if (address) {
		if (!parse_address(address, d->addr)) {
			fail(why, why_len, "\"%s\" is not a PCI address (like 0000:00:03.0)", address);
			free(d);
			return -EINVAL;
		}
		if (!is_ivshmem(d->addr)) {
			char vd[16] = "", dv[16] = "";

			if (sysfs_read(d->addr, "vendor", vd, sizeof(vd), true) < 0)
				fail(why, why_len, "there is no PCI device %s (ivshmem-ctl guest list shows the ivshmem devices)", d->addr);
			else {
				sysfs_read(d->addr, "device", dv, sizeof(dv), true);
				fail(why, why_len, "PCI device %s is %s:%s, not ivshmem (1af4:1110)", d->addr, vd, dv);
			}
			free(d);
			return -ENODEV;
		}
	} else {
		n = scan(&addrs);
		if (n > 0)
			snprintf(d->addr, sizeof(d->addr), "%s", addrs[0]);
		free(addrs);
		if (n <= 0) {
			fail(why, why_len, "no ivshmem PCI device (1af4:1110) here: give the VM one (QEMU: -device ivshmem-doorbell,chardev=ID or -device ivshmem-plain,memdev=ID)");
			free(d);
			return n < 0 ? n : -ENODEV;
		}
	}

	r = -ENOTSUP;
	if (!(flags & IVSHMEM_PCI_SYSFS))
		r = open_vfio(d, d->why, sizeof(d->why), &usable);
	if (r == 0) {
		memset(d->why, 0, sizeof(d->why));
	} else if ((flags & IVSHMEM_PCI_VFIO) || (!(flags & IVSHMEM_PCI_SYSFS) &&
						 !usable)) {
		fail(why, why_len, "%s", d->why);
		goto fail;
	} else {
		char driver[32];

		driver_of(d->addr, driver, sizeof(driver));
		if (driver[0]) {
			fail(why, why_len, "%s is bound to %s: its BARs are that driver's (unbind it: echo %s > /sys/bus/pci/devices/%s/driver/unbind)",
			     d->addr, driver, d->addr, d->addr);
			r = -EBUSY;
			goto fail;
		}
		if (flags & IVSHMEM_PCI_SYSFS)
			snprintf(d->why, sizeof(d->why), "sysfs was asked for");
		r = open_sysfs(d, why, why_len);
		if (r)
			goto fail;
	}

	if (max_vec && d->nvec > max_vec)
		d->nvec = max_vec;
	for (v = 0; v < d->nvec; v++) {
		fds[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fds[v] < 0) {
			r = -errno;
			fail(why, why_len, "cannot make eventfds: %s", strerror(-r));
			while (v--)
				close(fds[v]);
			goto fail;
		}
	}
	if (d->mode == IVSHMEM_PCI_MODE_VFIO) {
		r = vfio_irqs(d, fds, why, why_len);
		if (r) {
			for (v = 0; v < d->nvec; v++)
				close(fds[v]);
			goto fail;
		}
	}
	*nvec = d->nvec;
	*out = d;
	return 0;
fail:
	pci_dev_close(d);
	return r;
}

void pci_dev_close(struct pci_dev *d)
{
	if (!d)
		return;
	if (d->device >= 0) {
		struct vfio_irq_set set = {
			.argsz = sizeof(set),
			.flags = VFIO_IRQ_SET_DATA_NONE |
				 VFIO_IRQ_SET_ACTION_TRIGGER,
			.index = VFIO_PCI_MSIX_IRQ_INDEX,
		};

		ioctl(d->device, VFIO_DEVICE_SET_IRQS, &set);
	}
	if (d->restore) {
		/* MSI-X off first, then the command as found. */
		cfg_write(d, (unsigned)d->msix_cap + MSIX_CTL,
			  &d->msix_ctl_found, 2);
		cfg_write(d, CFG_COMMAND, &d->cmd_found, 2);
	}
	if (d->msix)
		munmap((void *)d->msix, d->msix_len);
	if (d->regs)
		munmap((void *)d->regs, d->regs_len);
	if (d->shm)
		munmap(d->shm, d->shm_size);
	if (d->cfg >= 0 && d->cfg != d->device)
		close(d->cfg);
	if (d->device >= 0)
		close(d->device);
	if (d->group >= 0)
		close(d->group);
	if (d->container >= 0)
		close(d->container);
	free(d);
}

void pci_dev_info(const struct pci_dev *d, struct ivshmem_pci_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->address, sizeof(info->address), "%s", d->addr);
	info->mode = d->mode;
	info->vectors = d->nvec;
	info->poll_us = pci_dev_poll_us(d);
	if (d->mode == IVSHMEM_PCI_MODE_POLL)
		snprintf(info->why, sizeof(info->why), "%s", d->why);
}

int pci_dev_id(const struct pci_dev *d)
{
	uint32_t v;

	if (!d->regs || d->mode == IVSHMEM_PCI_MODE_PLAIN)
		return -1;
	v = d->regs[REG_IVPOSITION / 4];
	return v < IVSHMEM_MAX_PEERS ? (int)v : -1;
}

void pci_dev_shm(const struct pci_dev *d, void **addr, uint64_t *size)
{
	*addr = d->shm;
	*size = d->shm_size;
}

int pci_dev_ring(struct pci_dev *d, int id, unsigned vector)
{
	if (!d->regs || d->mode == IVSHMEM_PCI_MODE_PLAIN)
		return -ENOENT;
	if (id < 0 || id >= IVSHMEM_MAX_PEERS)
		return -ENOENT;
	if (vector >= IVSHMEM_MAX_VECTORS)
		return -ERANGE;
	d->regs[REG_DOORBELL / 4] = (uint32_t)id << 16 | vector;
	return 0;
}

unsigned pci_dev_poll_us(const struct pci_dev *d)
{
	return d->mode == IVSHMEM_PCI_MODE_POLL ? POLL_US : 0;
}

void pci_dev_poll(struct pci_dev *d, const int *fds, unsigned n)
{
	uint64_t one = 1;

	if (d->mode != IVSHMEM_PCI_MODE_POLL)
		return;
	for (unsigned w = 0; w * 32 < d->nvec; w++) {
		uint32_t bits = *(volatile uint32_t *)(d->msix + d->pba_off +
						       w * 4);

		for (unsigned b = 0; b < 32 && bits; b++) {
			unsigned v = w * 32 + b;
			volatile uint32_t *ctrl;

			if (!(bits & (1u << b)) || v >= n)
				continue;
			bits &= ~(1u << b);
			ctrl = (volatile uint32_t *)(d->msix + d->table_off +
						     v * MSIX_ENTRY +
						     MSIX_ENTRY_CTRL);
			*ctrl = 0;
			*ctrl = 1;
			if (write(fds[v], &one, sizeof(one)) < 0) {
				/* A full counter still reads as rung. */
			}
		}
	}
}

static int sysfs_write(const char *path, const char *value)
{
	ssize_t n;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	n = n < 0 ? -errno : 0;
	close(fd);
	return (int)n;
}

int ivshmem_pci_bind(const char *address, char *why, size_t why_len)
{
	char addr[16], driver[32], path[128];
	int r;

	if (why && why_len)
		why[0] = '\0';
	if (!address || !parse_address(address, addr)) {
		fail(why, why_len, "\"%s\" is not a PCI address (like 0000:00:03.0)",
		     address ? address : "");
		return -EINVAL;
	}
	if (!is_ivshmem(addr)) {
		fail(why, why_len, "%s is not an ivshmem device (ivshmem-ctl guest list shows them)", addr);
		return -ENODEV;
	}
	driver_of(addr, driver, sizeof(driver));
	if (strcmp(driver, "vfio-pci") == 0)
		return 0;
	if (access("/sys/bus/pci/drivers/vfio-pci", F_OK) < 0) {
		fail(why, why_len, "vfio-pci is not loaded: modprobe vfio-pci");
		return -ENOENT;
	}
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/driver_override", addr);
	r = sysfs_write(path, "vfio-pci");
	if (!r && driver[0]) {
		snprintf(path, sizeof(path), SYSFS_PCI "/%s/driver/unbind", addr);
		r = sysfs_write(path, addr);
	}
	if (!r)
		r = sysfs_write("/sys/bus/pci/drivers_probe", addr);
	if (r) {
		fail(why, why_len, "cannot bind %s to vfio-pci: %s%s", addr,
		     strerror(-r), r == -EACCES || r == -EPERM ? " (run as root)" : "");
		return r;
	}
	driver_of(addr, driver, sizeof(driver));
	if (strcmp(driver, "vfio-pci") != 0) {
		fail(why, why_len, "vfio-pci did not take %s (it needs an IOMMU group: QEMU -device intel-iommu,intremap=on, guest kernel intel_iommu=on; dmesg says more)", addr);
		return -ENXIO;
	}
	return 0;
}
