// SPDX-License-Identifier: GPL-2.0
/*
 * compat-getpriority: one getpriority(PRIO_PROCESS, 0) through the 32-bit
 * ARM syscall ABI (EABI: number in r7, `svc #0`), the compat half of
 * seccomp's action cache on an arm64 kernel.  An AArch64 program has no way
 * into that ABI (x86_64's `int $0x80` has no arm64 equivalent), so
 * vm-scenarios runs this AArch32 program instead.  It prints the raw result
 * in decimal (a negative errno on failure, e.g. -1000 for speaker's test
 * denials) and exits 0.  Freestanding: no libc, static, built by
 * scripts/build-guest-bins --arch arm64 with clang for armv7a.
 */
#define NR_WRITE 4
#define NR_GETPRIORITY 96
#define NR_EXIT_GROUP 248

static long sys3(long nr, long a, long b, long c)
{
	register long r7 __asm__("r7") = nr;
	register long r0 __asm__("r0") = a;
	register long r1 __asm__("r1") = b;
	register long r2 __asm__("r2") = c;

	__asm__ volatile("svc #0" : "+r"(r0) : "r"(r7), "r"(r1), "r"(r2) : "memory");
	return r0;
}

__attribute__((noreturn)) void _start(void)
{
	char buf[24];
	char *p = buf + sizeof(buf);
	long r = sys3(NR_GETPRIORITY, 0, 0, 0);
	unsigned long v = r < 0 ? -(unsigned long)r : (unsigned long)r;

	*--p = '\n';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (r < 0)
		*--p = '-';
	sys3(NR_WRITE, 1, (long)p, buf + sizeof(buf) - p);
	sys3(NR_EXIT_GROUP, 0, 0, 0);
	for (;;)
		;
}
