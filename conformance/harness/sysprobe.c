/* sysprobe: try syscalls that a default seccomp profile denies although no capability is
 * needed for them, and print "NAME=ok" or "NAME=ERRNONAME" for each (clients.sh copies the
 * static binary into its busybox image as /bin/sysprobe).
 *   personality  personality(PER_LINUX|ADDR_NO_RANDOMIZE): docker's and podman's profiles
 *                allow only a few exact values (an argument condition)
 *   userns       unshare(CLONE_NEWUSER): docker's profile allows unshare only with
 *                CAP_SYS_ADMIN; podman's allows it
 *   getuid, socket, mmap, stat
 *                plain calls every default profile allows; built with -m32 (sysprobe32) they
 *                are the i386 ABI's getuid32, socketcall/socket, mmap2 and stat64, which
 *                exist only for the SCMP_ARCH_X86 that the profiles list
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case ENOSYS: return "ENOSYS";
	case EINVAL: return "EINVAL";
	case EACCES: return "EACCES";
	default: return strerror(e);
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		long r = -1;
		errno = 0;
		if (!strcmp(argv[i], "personality"))
			r = personality(PER_LINUX | ADDR_NO_RANDOMIZE);
		else if (!strcmp(argv[i], "userns"))
			r = unshare(CLONE_NEWUSER);
		else if (!strcmp(argv[i], "getuid")) {
			/* getuid cannot fail, so libc leaves a filter's -errno in the value */
			int v = (int)getuid();
			if (v < 0 && v > -4096)
				errno = -v, r = -1;
			else
				r = 0;
		}
		else if (!strcmp(argv[i], "socket"))
			r = socket(AF_UNIX, SOCK_STREAM, 0) < 0 ? -1 : 0;
		else if (!strcmp(argv[i], "mmap"))
			r = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0;
		else if (!strcmp(argv[i], "stat")) {
			struct stat st;
			r = stat("/", &st);
		}
		else {
			printf("%s=unknown-probe\n", argv[i]);
			continue;
		}
		if (r == -1)
			printf("%s=%s\n", argv[i], ename(errno));
		else
			printf("%s=ok\n", argv[i]);
	}
	return 0;
}
