/*
 * Start-up of the example firmwares (fw.h): the C run-time's copies, the
 * reset and fault handlers, and the vector table at address 0. A
 * firmware that defines no irq0_handler() faults on the interrupt.
 */
#include "fw.h"

/* The compiler may turn loops and aggregate copies into these calls. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

/* From link.ld. */
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];

void reset_handler(void);
void fault_handler(void);

void __attribute__((noreturn)) reset_handler(void)
{
	uint32_t *src = _sidata, *dst = _sdata;

	while (dst < _edata)
		*dst++ = *src++;
	for (dst = _sbss; dst < _ebss; dst++)
		*dst = 0;
	board_exit((uint32_t)firmware_main());
}

void __attribute__((noreturn)) fault_handler(void)
{
	fail(99, "CPU fault");
}

/* A firmware that takes the interrupt defines its own. */
void __attribute__((weak)) irq0_handler(void)
{
	fault_handler();
}

/* The vector table at address 0: initial SP, reset, the 14 system
 * exceptions, external interrupt 0 (the device's IRQ line with --irq). */
__attribute__((section(".vectors"), used))
static void (*const vectors[BOARD_IRQ0_VECTOR + 1])(void) = {
	(void (*)(void))_estack,
	reset_handler,
	fault_handler, fault_handler, fault_handler, fault_handler,
	fault_handler, fault_handler, fault_handler, fault_handler,
	fault_handler, fault_handler, fault_handler, fault_handler,
	fault_handler, fault_handler,
	irq0_handler,
};
