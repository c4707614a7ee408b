#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make_guest.sh: write a guest image for kvm_io (Lab 3) on stdout. The guest,
# 16-bit real mode, loaded at guest physical 0x1000, decodes a message stored
# in encoded form and writes it to port 0xE9, one byte per OUT, then four
# bytes of its own time-stamp counter, then halts. The text comes out of the
# guest's OUTs and nowhere else: the image holds it only encoded, with a key
# that changes after every byte, and its layout (padding before the code,
# where the message lies) changes from one image to the next, so a VMM cannot
# find the text by reading the file; the last four bytes ('@'..'O', one per
# nibble of the TSC read at run time) are in no file at all. Each byte goes
# out with `outsb` from a scratch byte in guest memory, and AL holds its
# complement by then: the byte is in kvm_run's data (KVM_EXIT_IO), not in a
# register.
#
#	<pad> x nop		; 90		0..15 of them (the VMM starts at 0x1000 all the same)
#	mov si, <data>		; BE lo hi	the encoded message, somewhere after the code
#	mov dx, 0xe9		; BA E9 00
#	mov cx, <length>	; B9 lo hi
#	mov bl, <key>		; B3 key
#	mov di, <scratch>	; BF lo hi	one byte after the message
# next:	lodsb			; AC		al = [ds:si++]
#	xor al, bl		; 30 D8
#	mov [di], al		; 88 05
#	not al			; F6 D0		the byte is no longer in AL
#	xchg si, di		; 87 F7
#	outsb			; 6E		out dx, [ds:si++]  -> KVM_EXIT_IO
#	dec si			; 4E
#	xchg si, di		; 87 F7
#	add bl, <step>		; 80 C3 step	the key moves on
#	loop next		; E2 EE		cx--, again while cx != 0
#	rdtsc			; 0F 31		edx:eax = the time-stamp counter
#	mov dx, 0xe9		; BA E9 00
#	mov cx, 4		; B9 04 00
# tsc:	mov bl, al		; 88 C3
#	and bl, 0x0f		; 80 E3 0F
#	or bl, 0x40		; 80 CB 40	'@'..'O'
#	mov [di], bl		; 88 1D
#	xchg si, di		; 87 F7
#	outsb			; 6E		-> KVM_EXIT_IO
#	dec si			; 4E
#	xchg si, di		; 87 F7
#	shr ax, 4		; C1 E8 04
#	loop tsc		; E2 EB
#	hlt			; F4		-> KVM_EXIT_HLT
#	<gap> x random bytes	;		0..31 of them, never executed
#	<the message, byte i XOR (key + i x step) mod 256>
#	(the scratch byte)
#
# Usage: sh make_guest.sh "<text, 1..4096 bytes>" [key 1..255 [step 1..255 [pad 0..15 [gap 0..31]]]] > guest.bin
set -eu
if [ $# -lt 1 ] || [ $# -gt 5 ]; then
	echo "usage: $0 <text> [key 1..255 [step 1..255 [pad 0..15 [gap 0..31]]]] > guest.bin" >&2
	exit 2
fi
rnd() { echo $(( $(od -An -N2 -tu2 /dev/urandom) % $1 )); }
text=$1
key=${2:-$(( $(rnd 255) + 1 ))}
step=${3:-$(( $(rnd 255) + 1 ))}
pad=${4:-$(rnd 16)}
gap=${5:-$(rnd 32)}
len=$(printf %s "$text" | wc -c)
if [ "$len" -lt 1 ] || [ "$len" -gt 4096 ] || [ "$key" -lt 1 ] || [ "$key" -gt 255 ] || [ "$step" -lt 1 ] || [ "$step" -gt 255 ] ||
	[ "$pad" -lt 0 ] || [ "$pad" -gt 15 ] || [ "$gap" -lt 0 ] || [ "$gap" -gt 31 ]; then
	echo "$0: the text must have 1..4096 bytes, the key and step be 1..255, pad 0..15 and gap 0..31" >&2
	exit 2
fi
byte() { printf "\\$(printf %03o "$(( $1 ))")"; }
data=$(( 0x1000 + pad + 62 + gap ))	# 62 bytes of code after the padding
scratch=$(( data + len ))
i=0
while [ "$i" -lt "$pad" ]; do byte 0x90; i=$((i + 1)); done
for b in 0xbe $((data & 255)) $((data >> 8)) 0xba 0xe9 0x00 0xb9 $((len & 255)) $((len >> 8)) 0xb3 "$key" \
	0xbf $((scratch & 255)) $((scratch >> 8)) \
	0xac 0x30 0xd8 0x88 0x05 0xf6 0xd0 0x87 0xf7 0x6e 0x4e 0x87 0xf7 0x80 0xc3 "$step" 0xe2 0xee \
	0x0f 0x31 0xba 0xe9 0x00 0xb9 0x04 0x00 \
	0x88 0xc3 0x80 0xe3 0x0f 0x80 0xcb 0x40 0x88 0x1d 0x87 0xf7 0x6e 0x4e 0x87 0xf7 0xc1 0xe8 0x04 0xe2 0xeb \
	0xf4; do
	byte "$b"
done
i=0
while [ "$i" -lt "$gap" ]; do byte "$(rnd 256)"; i=$((i + 1)); done
k=$key
for c in $(printf %s "$text" | od -An -v -tu1); do
	byte $(( c ^ k ))
	k=$(( (k + step) & 255 ))
done
byte 0
