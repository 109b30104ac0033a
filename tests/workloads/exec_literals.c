/* The workload of tests/integration/test_exec.py: execs whose strings are literals that
 * the exec'ing task never touched before the call, so that they are not resident in the
 * exec'ing process at sys_enter_execve: after fork, a page of a read-only file mapping is
 * not mapped in the child until touched (fork copies no page table of such a mapping),
 * and a vfork child or a thread shares the memory of a parent that never read it. Each
 * literal fills a 64 KiB block of its own: a page fault maps the resident pages of the
 * whole 64 KiB around it (fault-around), which would map a neighbour too. BPF cannot
 * fault pages in, so BCC's execsnoop shows these strings empty; bpfcap must show them.
 *
 * usage: exec_literals DIR   (DIR holds exec-sh.sh, exec-sh-e.sh, exec-long.sh)
 * Prints "MODE PID PPID" for every exec it starts, once the exec has returned or the
 * process has exited. Exit status 0 when every exec did what it should. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BLOCK 65536
#define LIT(name, text) static const char name[BLOCK] __attribute__((aligned(BLOCK))) = text

LIT(TRUE_PATH, "/bin/true");
LIT(ARG0, "true");
LIT(FORK_A, "fork-arg-1");
LIT(FORK_B, "fork arg with spaces");
LIT(VFORK_A, "vfork-arg-1");
LIT(THREAD_A, "thread-arg-1");
LIT(SCRIPT_A, "script-arg-1");
LIT(SCRIPT_B, "script-arg-2");
LIT(LONG_A, "long-arg");
LIT(MISSING_PATH, "/nonexistent-bpfcap/exec-literal");
LIT(MISSING_A, "missing-arg-1");
/* 128 bytes: BCC shows the first 128 bytes of an argument (a raw 128-byte read). */
LIT(ARG_128, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeX-cut");

enum { FORKS = 5, VFORKS = 3, THREADS = 2, FAILED = 2 };

static char dir[4096];
static int failures;

static void report(const char *mode, pid_t pid, int status)
{
    printf("%s %d %d\n", mode, (int)pid, (int)getpid());
    fflush(stdout);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        failures++;
}

static void wait_report(const char *mode, pid_t pid)
{
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        failures++;
    report(mode, pid, status);
}

static void *thread_exec(void *unused)
{
    (void)unused;
    execl(TRUE_PATH, ARG0, THREAD_A, ARG_128, (char *)NULL);
    _exit(127);
}

static void run_script(const char *mode, const char *name, int many)
{
    char *path;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        if (many) /* 25 arguments: more than execsnoop shows (19, then "...") */
            execl(path, path, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A,
                  LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A,
                  LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A, LONG_A,
                  (char *)NULL);
        else
            execl(path, path, SCRIPT_A, SCRIPT_B, (char *)NULL);
        _exit(127);
    }
    free(path);
    wait_report(mode, pid);
}

int main(int argc, char **argv)
{
    if (argc != 2 || strlen(argv[1]) >= sizeof(dir))
        return 2;
    strcpy(dir, argv[1]);

    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl(TRUE_PATH, ARG0, FORK_A, FORK_B, (char *)NULL);
            _exit(127);
        }
        wait_report("fork", pid);
    }
    for (int i = 0; i < VFORKS; i++) {
        pid_t pid = vfork();
        if (pid == 0) {
            execl(TRUE_PATH, ARG0, VFORK_A, (char *)NULL);
            _exit(127);
        }
        wait_report("vfork", pid);
    }
    for (int i = 0; i < THREADS; i++) {
        /* A process whose second thread execs: the exec replaces the whole process. */
        pid_t pid = fork();
        if (pid == 0) {
            pthread_t t;
            if (pthread_create(&t, NULL, thread_exec, NULL) == 0)
                pthread_join(t, NULL);
            _exit(127);
        }
        wait_report("thread", pid);
    }
    run_script("script-sh", "exec-sh.sh", 0);
    run_script("script-sh-e", "exec-sh-e.sh", 0);
    run_script("script-long", "exec-long.sh", 1);
    for (int i = 0; i < FAILED; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl(MISSING_PATH, MISSING_PATH, MISSING_A, (char *)NULL);
            _exit(0); /* the exec failed, as it should */
        }
        wait_report("failed", pid);
    }
    return failures ? 1 : 0;
}
