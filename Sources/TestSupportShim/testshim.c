#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <spawn.h>
#include "testshim.h"

int testshim_enter_netns(int fd) {
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}

int testshim_spawn_close_from(void *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, lowfd);
}
