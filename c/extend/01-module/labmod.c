// SPDX-License-Identifier: GPL-2.0
/*
 * labmod: a loadable kernel module with two parameters and a /proc file.
 *
 *   insmod labmod.ko who=<name> times=<n>
 *
 * - init prints one kernel log line that names `who` and `times`, and
 *   creates /proc/labmod;
 * - reading /proc/labmod gives `times` lines, each "hello, <who>";
 * - the parameters are visible (read-only) in /sys/module/labmod/parameters/;
 * - exit removes /proc/labmod and prints one kernel log line.
 *
 * Build (Kbuild file: "obj-m := labmod.o"):
 *   make -C /lib/modules/$(uname -r)/build M=$PWD modules
 * or against Debian's 6.1 headers for the QEMU guest:
 *   make -C /usr/src/linux-headers-6.1.0-*-amd64 M=$PWD modules
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

#define PROC_NAME "labmod"

static char *who = "world";
static int times = 1;
static struct proc_dir_entry *proc_entry;

// LAB:BEGIN make `who` (a string) and `times` (an int) module parameters: settable on the insmod command line, shown read-only to everyone under /sys/module/labmod/parameters/, each with a description that modinfo prints (include/linux/moduleparam.h)
module_param(who, charp, 0444);
MODULE_PARM_DESC(who, "whom /proc/" PROC_NAME " greets");
module_param(times, int, 0444);
MODULE_PARM_DESC(times, "how many lines /proc/" PROC_NAME " shows");
// LAB:END

/* Called by the seq_file code each time someone reads /proc/labmod. */
static int labmod_show(struct seq_file *m, void *v)
{
	// LAB:BEGIN produce the file's content: `times` lines, each "hello, <who>" (the seq_file interface: Documentation/filesystems/seq_file.rst)
	int i;

	for (i = 0; i < times; i++)
		seq_printf(m, "hello, %s\n", who);
	// LAB:END
	return 0;
}

static int __init labmod_init(void)
{
	// LAB:BEGIN create /proc/labmod, readable by everyone, with labmod_show producing its content (include/linux/proc_fs.h: a file with a single show function needs no file operations of its own); if that fails, fail the load with -ENOMEM. Then log one kernel line naming who and times (include/linux/printk.h)
	proc_entry = proc_create_single(PROC_NAME, 0444, NULL, labmod_show);
	if (!proc_entry)
		return -ENOMEM;
	pr_info(PROC_NAME ": loaded, who=%s times=%d\n", who, times);
	// LAB:END
	return 0;
}

static void __exit labmod_exit(void)
{
	// LAB:BEGIN remove /proc/labmod (include/linux/proc_fs.h) and log one kernel line saying that the module is unloading
	proc_remove(proc_entry);
	pr_info(PROC_NAME ": unloaded\n");
	// LAB:END
}

module_init(labmod_init);
module_exit(labmod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kernel-labs: module parameters and a /proc file");
