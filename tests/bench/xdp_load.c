/* SPDX-License-Identifier: MIT */
/* Loads a bench XDP object from beside the binary and attaches it with plain libbpf; detaches it. */
#include <errno.h>
#include <limits.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "xdp_load.h"

/* libbpf's warnings only: its info lines would bury the bench's own. */
static int print_warnings(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static int object_path(const char *name, char *path, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (strchr(name, '/')) {
		snprintf(path, len, "%s", name);
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if ((size_t)snprintf(path, len, "%s/%s", exe, name) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int xdp_load_attach(struct xdp_loaded *x, const char *obj_name, const char *ifname, bool skb_mode, char *why,
		    size_t whylen)
{
	struct bpf_program *prog;
	char path[PATH_MAX];
	int err;

	memset(x, 0, sizeof(*x));
	libbpf_set_print(print_warnings);
	x->flags = XDP_FLAGS_UPDATE_IF_NOEXIST | (skb_mode ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
	x->ifindex = (int)if_nametoindex(ifname);
	if (!x->ifindex) {
		err = -errno;
		snprintf(why, whylen, "interface %s: %s", ifname, strerror(-err));
		return err;
	}
	err = object_path(obj_name, path, sizeof(path));
	if (err) {
		snprintf(why, whylen, "finding %s: %s", obj_name, strerror(-err));
		return err;
	}
	x->obj = bpf_object__open_file(path, NULL);
	if (!x->obj) {
		err = -errno;
		snprintf(why, whylen, "opening %s: %s", path, strerror(-err));
		return err;
	}
	err = bpf_object__load(x->obj);
	if (err) {
		snprintf(why, whylen, "loading %s: %s", path, strerror(-err));
		goto err_close;
	}
	prog = bpf_object__next_program(x->obj, NULL);
	if (!prog) {
		err = -ENOENT;
		snprintf(why, whylen, "%s has no program", path);
		goto err_close;
	}
	err = bpf_xdp_attach(x->ifindex, bpf_program__fd(prog), x->flags, NULL);
	if (err) {
		snprintf(why, whylen, "attaching to %s in %s mode: %s%s", ifname, skb_mode ? "skb" : "native",
			 strerror(-err), err == -EBUSY ? " (another XDP program is attached)" : "");
		goto err_close;
	}
	x->attached = true;
	return 0;

err_close:
	bpf_object__close(x->obj);
	x->obj = NULL;
	return err;
}

int xdp_load_map_fd(const struct xdp_loaded *x, const char *map)
{
	struct bpf_map *m = bpf_object__find_map_by_name(x->obj, map);

	return m ? bpf_map__fd(m) : -ENOENT;
}

void xdp_load_detach(struct xdp_loaded *x)
{
	if (x->attached)
		bpf_xdp_detach(x->ifindex, x->flags & ~XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	x->attached = false;
	bpf_object__close(x->obj);
	x->obj = NULL;
}
