/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The minimal VMM's guest: real mode, loaded at 0x1000:0000 with DS = CS.
 * Waits for the UART's transmitter, writes one line to it, halts.
 */
	.code16
	.text
	.globl _start
_start:
	mov $message, %si
next:
	lodsb
	test %al, %al
	jz done
	mov %al, %bl
	mov $0x3fd, %dx		/* line status register */
wait:
	in %dx, %al
	test $0x20, %al		/* transmitter holding register empty */
	jz wait
	mov $0x3f8, %dx		/* transmit holding register */
	mov %bl, %al
	out %al, %dx
	jmp next
done:
	hlt

message:
	.asciz "Hello from a guest of the minimal VMM\n"
