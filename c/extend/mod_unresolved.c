// SPDX-License-Identifier: GPL-2.0
/*
 * mod_unresolved: a module that calls a function no kernel exports, so the
 * loader must refuse it ("Unknown symbol"). Built with KBUILD_MODPOST_WARN=1
 * (modpost would stop the build otherwise). A harness module of the lab.
 */
#include <linux/module.h>

extern int kl_no_such_symbol(void);

static int __init unresolved_init(void)
{
	return kl_no_such_symbol();
}

module_init(unresolved_init);
MODULE_LICENSE("GPL");
