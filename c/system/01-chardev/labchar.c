// SPDX-License-Identifier: GPL-2.0
/*
 * labchar: a character device driver, /dev/labchar.
 *
 *   insmod labchar.ko        -> /dev/labchar appears (devtmpfs makes the node)
 *   rmmod labchar            -> it goes away again
 *
 * Every open(2) of /dev/labchar gets a buffer of its own, LABCHAR_CAPACITY
 * bytes, all zero at first; what one open writes, only that open reads back.
 * - write(2) stores the bytes at the file position and moves the position on;
 *   a write that starts at or after LABCHAR_CAPACITY fails with ENOSPC, one
 *   that crosses it is shortened to fit;
 * - the open's size is the end of the furthest byte written so far; read(2)
 *   returns the bytes from the file position up to the size (never past it:
 *   at or after the size it returns 0, end of file) and moves the position
 *   on; bytes never written read as zeros;
 * - lseek(2) with SEEK_SET, SEEK_CUR and SEEK_END (from the size) moves the
 *   position anywhere in 0..LABCHAR_CAPACITY, else fails with EINVAL;
 * - ioctl(2) LABCHAR_GET_SIZE stores the size as an int at the argument;
 *   LABCHAR_RESET empties the buffer (size 0, every byte zero again) and
 *   leaves the file position alone; any other command fails with ENOTTY;
 * - a bad user pointer in read, write or ioctl fails with EFAULT.
 *
 * Build (Kbuild file: "obj-m := labchar.o"):
 *   make -C /lib/modules/$(uname -r)/build M=$PWD modules
 * or against Debian's 6.1 headers for the QEMU guest:
 *   make -C /usr/src/linux-headers-6.1.0-*-amd64 M=$PWD modules
 */
#include <linux/fs.h>
#include <linux/ioctl.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#define DEVICE_NAME "labchar"
#define LABCHAR_CAPACITY 4096
#define LABCHAR_IOC_MAGIC 'k'
#define LABCHAR_GET_SIZE _IOR(LABCHAR_IOC_MAGIC, 1, int)
#define LABCHAR_RESET _IO(LABCHAR_IOC_MAGIC, 2)

/* What one open of the device holds. */
struct labchar_buf {
	struct mutex lock;	/* two threads may share one open file */
	size_t size;		/* end of the furthest byte written */
	char data[LABCHAR_CAPACITY];
};

static int labchar_open(struct inode *inode, struct file *file)
{
	// LAB:BEGIN give this open a buffer of its own, all zero, and keep it with the open file (struct file's private_data); no memory: -ENOMEM
	struct labchar_buf *b = kzalloc(sizeof(*b), GFP_KERNEL);

	if (!b)
		return -ENOMEM;
	mutex_init(&b->lock);
	file->private_data = b;
	return 0;
	// LAB:STARTER
	// return 0;
	// LAB:END
}

static int labchar_release(struct inode *inode, struct file *file)
{
	// LAB:BEGIN the last close of this open: free its buffer
	kfree(file->private_data);
	return 0;
	// LAB:STARTER
	// return 0;
	// LAB:END
}

static ssize_t labchar_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	// LAB:BEGIN copy to user space the bytes of this open from *ppos up to its size (0 at or after the size: end of file), move *ppos on, return how many; a copy that faults: -EFAULT (include/linux/uaccess.h)
	struct labchar_buf *b = file->private_data;
	loff_t pos = *ppos;
	size_t n;
	ssize_t ret;

	if (pos < 0)
		return -EINVAL;
	mutex_lock(&b->lock);
	if (pos >= b->size) {
		ret = 0;
		goto out;
	}
	n = min_t(size_t, count, b->size - pos);
	if (copy_to_user(buf, b->data + pos, n)) {
		ret = -EFAULT;
		goto out;
	}
	*ppos = pos + n;
	ret = n;
out:
	mutex_unlock(&b->lock);
	return ret;
	// LAB:STARTER
	// return -EINVAL;
	// LAB:END
}

static ssize_t labchar_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	// LAB:BEGIN copy the user's bytes into this open's buffer at *ppos (none left at or after LABCHAR_CAPACITY: -ENOSPC; shorten a write that crosses it), move *ppos on, grow the size, return how many; a copy that faults: -EFAULT
	struct labchar_buf *b = file->private_data;
	loff_t pos = *ppos;
	size_t n;
	ssize_t ret;

	if (pos < 0)
		return -EINVAL;
	if (pos >= LABCHAR_CAPACITY)
		return count ? -ENOSPC : 0;
	n = min_t(size_t, count, LABCHAR_CAPACITY - pos);
	mutex_lock(&b->lock);
	if (copy_from_user(b->data + pos, buf, n)) {
		ret = -EFAULT;
		goto out;
	}
	*ppos = pos + n;
	if (pos + n > b->size)
		b->size = pos + n;
	ret = n;
out:
	mutex_unlock(&b->lock);
	return ret;
	// LAB:STARTER
	// return -EINVAL;
	// LAB:END
}

static loff_t labchar_llseek(struct file *file, loff_t offset, int whence)
{
	// LAB:BEGIN the new position from SEEK_SET (0), SEEK_CUR (the file's position) or SEEK_END (this open's size) plus offset; outside 0..LABCHAR_CAPACITY or another whence: -EINVAL; store it as the file's position and return it
	struct labchar_buf *b = file->private_data;
	loff_t base;

	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR:
		base = file->f_pos;
		break;
	case SEEK_END:
		mutex_lock(&b->lock);
		base = b->size;
		mutex_unlock(&b->lock);
		break;
	default:
		return -EINVAL;
	}
	if (base + offset < 0 || base + offset > LABCHAR_CAPACITY)
		return -EINVAL;
	file->f_pos = base + offset;
	return file->f_pos;
	// LAB:STARTER
	// return -EINVAL;
	// LAB:END
}

static long labchar_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	// LAB:BEGIN LABCHAR_GET_SIZE: store this open's size as an int at the user pointer arg (-EFAULT if that fails); LABCHAR_RESET: size 0 and every byte zero again; any other command is not one this device knows (ioctl(2): the errno for that)
	struct labchar_buf *b = file->private_data;
	long ret = 0;

	switch (cmd) {	/* the commands of labchar.h */
	case LABCHAR_GET_SIZE:
		mutex_lock(&b->lock);
		ret = put_user((int)b->size, (int __user *)arg) ? -EFAULT : 0;
		mutex_unlock(&b->lock);
		return ret;
	case LABCHAR_RESET:
		mutex_lock(&b->lock);
		memset(b->data, 0, sizeof(b->data));
		b->size = 0;
		mutex_unlock(&b->lock);
		return 0;
	default:
		return -ENOTTY;
	}
	// LAB:STARTER
	// return 0;
	// LAB:END
}

static const struct file_operations labchar_fops = {
	.owner = THIS_MODULE,
	.open = labchar_open,
	.release = labchar_release,
	.read = labchar_read,
	.write = labchar_write,
	.llseek = labchar_llseek,
	.unlocked_ioctl = labchar_ioctl,
};

// LAB:BEGIN describe the device for the misc driver core (include/linux/miscdevice.h): a minor it picks, the name that becomes /dev/labchar, these file operations
static struct miscdevice labchar_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = DEVICE_NAME,
	.fops = &labchar_fops,
	.mode = 0666,
};
// LAB:END

static int __init labchar_init(void)
{
	// LAB:BEGIN register the character device (misc, or a cdev of your own with a device class) and return the error if that fails
	return misc_register(&labchar_misc);
	// LAB:STARTER
	// return 0;
	// LAB:END
}

static void __exit labchar_exit(void)
{
	// LAB:BEGIN unregister what init registered: /dev/labchar must go with the module
	misc_deregister(&labchar_misc);
	// LAB:END
}

module_init(labchar_init);
module_exit(labchar_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kernel-labs: a character device with a buffer per open");
