#ifndef NFTSHIM_H
#define NFTSHIM_H

/// Flat C API over libnftables (Debian libnftables-dev). Only ints and C strings cross it.

typedef struct nftshim_ctx nftshim_ctx;

/// Opens a context with buffered output and error text. `netns_path` (/run/netns/<n>) makes it
/// work in that network namespace (tests); NULL or "" means the caller's. Returns 0 or -errno.
int nftshim_open(const char *netns_path, int json_output, nftshim_ctx **out);
void nftshim_close(nftshim_ctx *ctx);

/// Runs `script` (nft syntax, several commands) as ONE netlink transaction: the kernel applies
/// all of it or none. Returns 0, -1 when nft refused it (see nftshim_error), or -errno when the
/// namespace could not be entered.
int nftshim_run(nftshim_ctx *ctx, const char *script);

/// The buffered text of the last run (never NULL; valid until the next run or close).
const char *nftshim_output(nftshim_ctx *ctx);
const char *nftshim_error(nftshim_ctx *ctx);

#endif
