/* Workloads for bench/run.py.
 *   storm open N [missing]   N x openat(AT_FDCWD, "/etc/hostname") + close (or a path that
 *                            does not exist); prints the elapsed seconds.
 *   storm exec N             N x fork + execve("/bin/true") + wait; prints the elapsed seconds.
 *   storm getppid N          N x getppid(); prints the elapsed seconds.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: storm open|exec|getppid N [missing]\n");
        return 2;
    }
    long n = atol(argv[2]);
    double t0 = now();
    if (!strcmp(argv[1], "open")) {
        const char *path = argc > 3 ? "/etc/hostname-missing" : "/etc/hostname";
        for (long i = 0; i < n; i++) {
            int fd = openat(AT_FDCWD, path, O_RDONLY);
            if (fd >= 0)
                close(fd);
        }
    } else if (!strcmp(argv[1], "exec")) {
        for (long i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0) {
                execl("/bin/true", "true", (char *)0);
                _exit(127);
            }
            waitpid(pid, 0, 0);
        }
    } else if (!strcmp(argv[1], "getppid")) {
        for (long i = 0; i < n; i++)
            getppid();
    } else {
        return 2;
    }
    printf("%.6f\n", now() - t0);
    return 0;
}
