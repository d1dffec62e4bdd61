#define _GNU_SOURCE
#include "nftshim.h"
#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct nftshim_ctx {
    struct nft_ctx *nft;
    int netns_fd;  // -1: the caller's namespace
};

// libnftables may open (or reopen) its netlink socket at context creation or per command, so
// both happen inside the target namespace; only this thread switches, and always switches back.
static int enter_netns(int target, int *original) {
    *original = -1;
    if (target < 0) return 0;
    *original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (*original < 0) return -errno;
    if (setns(target, CLONE_NEWNET) < 0) {
        int e = errno;
        close(*original);
        *original = -1;
        return -e;
    }
    return 0;
}

static void leave_netns(int original) {
    if (original < 0) return;
    if (setns(original, CLONE_NEWNET) < 0) {
        // Continuing would run the caller's later work in the wrong namespace.
        fprintf(stderr, "nftshim: cannot return to the original network namespace: errno %d\n", errno);
        abort();
    }
    close(original);
}

int nftshim_open(const char *netns_path, int json_output, nftshim_ctx **out) {
    *out = NULL;
    int target = -1;
    if (netns_path && netns_path[0]) {
        target = open(netns_path, O_RDONLY | O_CLOEXEC);
        if (target < 0) return -errno;
    }
    int original;
    int rc = enter_netns(target, &original);
    if (rc < 0) { if (target >= 0) close(target); return rc; }
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    leave_netns(original);
    if (!nft) { if (target >= 0) close(target); return -ENOMEM; }
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    if (json_output) nft_ctx_output_set_flags(nft, nft_ctx_output_get_flags(nft) | NFT_CTX_OUTPUT_JSON);
    nftshim_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx) { nft_ctx_free(nft); if (target >= 0) close(target); return -ENOMEM; }
    ctx->nft = nft;
    ctx->netns_fd = target;
    *out = ctx;
    return 0;
}

void nftshim_close(nftshim_ctx *ctx) {
    if (!ctx) return;
    nft_ctx_free(ctx->nft);
    if (ctx->netns_fd >= 0) close(ctx->netns_fd);
    free(ctx);
}

int nftshim_run(nftshim_ctx *ctx, const char *script) {
    int original;
    int rc = enter_netns(ctx->netns_fd, &original);
    if (rc < 0) return rc;
    rc = nft_run_cmd_from_buffer(ctx->nft, script) == 0 ? 0 : -1;
    leave_netns(original);
    return rc;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

const char *nftshim_output(nftshim_ctx *ctx) { return or_empty(nft_ctx_get_output_buffer(ctx->nft)); }
const char *nftshim_error(nftshim_ctx *ctx) { return or_empty(nft_ctx_get_error_buffer(ctx->nft)); }
