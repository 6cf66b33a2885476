/* SPDX-License-Identifier: MIT */
/*
 * The ring_read fuzzer's input (ring_read.c): 3 bytes of shape, then ops,
 * each an op byte (low 7 bits one of these, modulo RR_NOPS; the top bit the
 * worker) and its arguments, big-endian. seeds.c writes its seeds with them.
 */
#ifndef FERRY_FUZZ_RING_OPS_H
#define FERRY_FUZZ_RING_OPS_H

/* shape byte 0 */
#define RR_TWO_WORKERS 0x01
#define RR_ZEROCOPY 0x02   /* fake UMEM areas, one per worker (two with RR_TWO_AREAS) */
#define RR_RX32 0x04	   /* 32 RX slots per worker, else 16 */
#define RR_TX32 0x08	   /* 32 TX slots per worker, else 16 */
#define RR_SLOT(i) ((i) << 4) /* slot size: 256, 320, 1024, 2048 */
#define RR_TWO_AREAS 0x40
/* shape byte 1: the indices' start (as if that many entries had passed): b, or 2^32 - 1 - (b & 0x7f) when b & 0x80 */
/* shape byte 2: frames per area 8 << (b & 3) */

enum rr_op {
	/* the well-behaved client */
	RR_C_READ_RX,	  /* n: reads up to 1 + n % 32 entries of rx */
	RR_C_RETURN,	  /* pick, n: gives back up to 1 + n % 32 of what it read, from the pick-th on */
	RR_C_SEND,	  /* pick, len16, off, family: sends from a TX slot it owns */
	RR_C_REAP_TX_RET, /* n: takes back up to 1 + n % 32 slots from tx_ret */
	RR_C_FLAGS,	  /* f: bit 0 rx (else tx_ret), bit 1 need-wakeup set (else cleared) */
	RR_C_KICK,	  /* a byte to the worker's pipe */
	/* the hostile client */
	RR_H_INDEX,	  /* field (ring % 4, producer/consumer/flags), mode (bit 0: add value as int8), value32 */
	RR_H_RX_RET,	  /* slot32, area32: pushed on rx_ret */
	RR_H_TX,	  /* slot32, len32, off32, reserved32, family16, port16, scope32, addr[16]: pushed on tx */
	RR_H_RAW,	  /* off32 (modulo the region), len8, bytes: written anywhere */
	/* ferryd, as dispatch.c calls it */
	RR_D_PUT,	  /* len16, family */
	RR_D_PUT_FRAME,	  /* queue, frame, off16, len16, family */
	RR_D_FLUSH,
	RR_D_REAP,
	RR_D_TAKE,	  /* max: 1 + max % 32 */
	RR_D_GIVE,	  /* n: the first n % (taken + 1) taken */
	RR_D_SLEEP,
	RR_D_RECLAIM,
	RR_D_KICK_CLEAR,
	RR_NOPS
};

#endif
