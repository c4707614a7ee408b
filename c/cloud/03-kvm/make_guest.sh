#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make_guest.sh: write a guest image for kvm_io (Lab 3) on stdout. The guest,
# 16-bit real mode, loaded at guest physical 0x1000, decodes a message stored
# XOR <key> after its code and writes it to port 0xE9, one `out dx, al` per
# byte, then halts. The message is in the image only in encoded form: the
# text comes out of the guest's OUTs, nowhere else.
#
#	mov si, 0x1010		; BE 10 10	the encoded message follows the code
#	mov dx, 0xe9		; BA E9 00
#	mov cx, <length>	; B9 lo hi
# next:	lodsb			; AC		al = [ds:si++]
#	xor al, <key>		; 34 key
#	out dx, al		; EE		-> KVM_EXIT_IO
#	loop next		; E2 FA		cx--, again while cx != 0
#	hlt			; F4		-> KVM_EXIT_HLT
#
# Usage: sh make_guest.sh "<text, 1..4096 bytes>" [key 1..255] > guest.bin
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 <text> [key 1..255] > guest.bin" >&2
	exit 2
fi
text=$1
key=${2:-$(( $(od -An -N1 -tu1 /dev/urandom) % 255 + 1 ))}
len=$(printf %s "$text" | wc -c)
if [ "$len" -lt 1 ] || [ "$len" -gt 4096 ] || [ "$key" -lt 1 ] || [ "$key" -gt 255 ]; then
	echo "$0: the text must have 1..4096 bytes and the key be 1..255" >&2
	exit 2
fi
byte() { printf "\\$(printf %03o "$(( $1 ))")"; }
for b in 0xbe 0x10 0x10 0xba 0xe9 0x00 0xb9 $((len & 255)) $((len >> 8)) 0xac 0x34 "$key" 0xee 0xe2 0xfa 0xf4; do
	byte "$b"
done
for c in $(printf %s "$text" | od -An -v -tu1); do
	byte $((c ^ key))
done
