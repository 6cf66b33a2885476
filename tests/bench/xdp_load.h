/* SPDX-License-Identifier: MIT */
/*
 * Loads a bench XDP object that sits next to the program's own binary and
 * attaches its one program to an interface (native or skb mode); detaches it
 * again. Plain libbpf: these programs are the floor, without libxdp's
 * dispatcher in the way.
 */
#ifndef FERRY_BENCH_XDP_LOAD_H
#define FERRY_BENCH_XDP_LOAD_H

#include <stdbool.h>

struct bpf_object;

struct xdp_loaded {
	struct bpf_object *obj;
	int ifindex;
	unsigned int flags; /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE */
	bool attached;
};

/*
 * Opens and loads obj_name (a path, or a file name looked up in the directory
 * of /proc/self/exe), attaches its first program to ifname. 0, or -errno
 * with why filled.
 */
int xdp_load_attach(struct xdp_loaded *x, const char *obj_name, const char *ifname, bool skb_mode, char *why,
		    size_t whylen);

/* The fd of the named map of the loaded object, or -ENOENT. */
int xdp_load_map_fd(const struct xdp_loaded *x, const char *map);

/* Detaches (if attached) and closes the object. Safe to call twice. */
void xdp_load_detach(struct xdp_loaded *x);

#endif
