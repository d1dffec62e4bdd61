// testshim: the libc calls the tests need that Swift's Glibc module does not export
// (setns needs _GNU_SOURCE). Test-only; nothing shipped links it.
#ifndef TESTSHIM_H
#define TESTSHIM_H

/// setns(fd, CLONE_NEWNET) for the calling thread: 0 or -errno.
int testshim_enter_netns(int fd);

#endif
