// testshim: the libc calls the tests need that Swift's Glibc module does not export
// (setns needs _GNU_SOURCE). Test-only; nothing shipped links it.
#ifndef TESTSHIM_H
#define TESTSHIM_H

/// setns(fd, CLONE_NEWNET) for the calling thread: 0 or -errno.
int testshim_enter_netns(int fd);

/// posix_spawn_file_actions_addclosefrom_np(actions, lowfd) (glibc 2.34, _GNU_SOURCE): the
/// child closes every descriptor from lowfd up. `actions` is a posix_spawn_file_actions_t *.
int testshim_spawn_close_from(void *actions, int lowfd);

#endif
