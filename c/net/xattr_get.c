// SPDX-License-Identifier: GPL-2.0
/*
 * xattr_get: print one extended attribute of a file (without following a
 * final symlink), as getfattr would, for the OverlayFS lab's checks
 * (trusted.overlay.opaque). Students never edit it.
 *
 * Build: gcc -O2 -Wall -o xattr_get xattr_get.c
 * Run:   xattr_get <path> <name>   -> prints the value; exit 1 and the errno name if absent
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

int main(int argc, char **argv)
{
	char value[256];
	ssize_t n;

	if (argc != 3) {
		fprintf(stderr, "usage: %s <path> <name>\n", argv[0]);
		return 2;
	}
	n = lgetxattr(argv[1], argv[2], value, sizeof(value) - 1);
	if (n < 0) {
		printf("%s\n", errno == ENODATA ? "ENODATA" : strerror(errno));
		return 1;
	}
	value[n] = '\0';
	printf("%s\n", value);
	return 0;
}
