/* The progress meter: no ETA from the first moments' rate, and a line that
 * an interrupt ends. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/progress.h"
#include "tests/unit/test.h"

TEST(no_eta_until_a_second_or_a_tenth_of_the_work)
{
    struct progress p;
    setenv("MLC_PROGRESS", "never", 1);
    progress_begin(&p, "converting", 1000, false);
    char line[160];
    p.start = 1000.0; /* times chosen exact in binary */
    /* 1% done after 62.5 ms: the ETA would say 6 s from a burst of startup
     * work; it is not shown */
    atomic_store(&p.done, 10);
    progress_format(&p, p.start + 0.0625, false, line, sizeof line);
    CHECK_STR(line, "converting:   1.0% 10 / 1000, 160/s");
    /* a fifth done after a quarter of a second: enough to tell */
    atomic_store(&p.done, 200);
    progress_format(&p, p.start + 0.25, false, line, sizeof line);
    CHECK_STR(line, "converting:  20.0% 200 / 1000, 800/s, ETA 0:01");
    /* half done after 2 s: 2 s to go */
    atomic_store(&p.done, 500);
    progress_format(&p, p.start + 2.0, false, line, sizeof line);
    CHECK_STR(line, "converting:  50.0% 500 / 1000, 250/s, ETA 0:02");
    /* the final frame has no ETA */
    progress_format(&p, p.start + 2.0, true, line, sizeof line);
    CHECK_STR(line, "converting:  50.0% 500 / 1000, 250/s");
    progress_end(&p);
}

TEST(an_interrupt_ends_the_progress_line)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        setenv("MLC_PROGRESS", "always", 1);
        struct progress p;
        progress_begin(&p, "working", 1u << 30, false);
        for (;;) {
            progress_add(&p, 1);
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    close(fds[1]);
    /* wait for the first frame, then interrupt */
    char buf[4096];
    size_t len = 0;
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    CHECK(n > 0);
    len = n > 0 ? (size_t)n : 0;
    kill(pid, SIGINT);
    while (len < sizeof buf - 1 && (n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
    CHECK(len > 0 && buf[0] == '\r');
    CHECK(len > 0 && buf[len - 1] == '\n');
}

TEST_MAIN()
