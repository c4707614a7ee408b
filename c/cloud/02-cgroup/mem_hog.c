// SPDX-License-Identifier: GPL-2.0
/*
 * mem_hog: the seed's "script that allocates a lot of memory". It allocates
 * <MiB> mebibytes one MiB at a time and writes to every page, so the kernel
 * must really back (and charge) each page. It reports its progress on stderr
 * and, if it lives to the end, one line on stdout:
 *
 *     touched_mib=<MiB>
 *
 * In a cgroup with a 100M limit, asked for 200 MiB, the OOM killer ends it
 * with SIGKILL; asked for 50 MiB, it finishes.
 *
 * Build: gcc -O2 -Wall -o mem_hog mem_hog.c
 * Run:   ./mem_hog 50
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB		(1024UL * 1024UL)
#define MAX_MIB		4096UL
#define PROGRESS_EVERY	10		/* MiB between progress lines */

int main(int argc, char **argv)
{
	unsigned long want, done;
	long page = sysconf(_SC_PAGESIZE);

	want = argc == 2 ? strtoul(argv[1], NULL, 10) : 0;
	if (want == 0 || want > MAX_MIB) {
		fprintf(stderr, "usage: %s <MiB to allocate and touch, 1..%lu>\n", argv[0], MAX_MIB);
		return 2;
	}
	for (done = 0; done < want; done++) {
		char *chunk = malloc(MIB);	/* kept on purpose: the hog never frees */

		if (!chunk) {
			fprintf(stderr, "malloc failed after %lu MiB: %s\n", done, strerror(errno));
			return 1;
		}
		// LAB:BEGIN Make the kernel charge every page of the chunk to the cgroup. What does malloc give you, and when does a page of it get a frame the memory controller counts? (mmap(2), Documentation/admin-guide/mm/concepts.rst, the memory controller documentation). The peak usage the spec reads must grow by the whole chunk.
		for (unsigned long off = 0; off < MIB; off += (unsigned long)page)
			chunk[off] = 1;
		// LAB:STARTER
		// (void)page;
		// LAB:END
		if ((done + 1) % PROGRESS_EVERY == 0)
			fprintf(stderr, "touched %lu MiB\n", done + 1);
	}
	printf("touched_mib=%lu\n", done);
	return 0;
}
