/* An interrupt while threads fill a temporary directory: the directory is
 * gone when the process has died of the signal, every time. Writers that
 * keep creating files are what a removal racing them leaves behind (a file
 * created after the removal listed the directory keeps it alive), so each
 * trial forks a child whose writer threads create files without pause, and
 * interrupts it at a different moment. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/atomic.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "tests/unit/test.h"

static const char *tmp_dir;
static atomic_int files_made;

static void *writer(void *arg)
{
    long id = (long)arg;
    static const char block[1 << 14];
    for (unsigned long i = 0;; i++) {
        char name[64];
        snprintf(name, sizeof name, "shard_%ld_%lu.bin", id, i);
        char *path = path_join(tmp_dir, name);
        cleanup_hold();
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            for (int k = 0; k < 4; k++)
                if (write(fd, block, sizeof block) < 0) break;
            close(fd);
        }
        cleanup_release();
        free(path);
        atomic_fetch_add(&files_made, 1);
    }
    return NULL;
}

/* The child: signals taken as a tool takes them, a temporary directory,
 * three writers; it tells the parent once files are being made. */
static void child(const char *dir, int ready_fd)
{
    cleanup_on_signals();
    char *final = path_join(dir, "out");
    struct atomic_dir d;
    if (atomic_dir_begin(&d, final) != 0) _exit(3);
    tmp_dir = d.tmp;
    pthread_t t[3];
    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, writer, (void *)i);
    while (atomic_load(&files_made) < 8) usleep(100);
    if (write(ready_fd, "r", 1) != 1) _exit(4);
    for (;;) pause();
}

/* entries of dir: the temporaries that outlived their process */
static int count_left(const char *dir)
{
    char *cmd = xasprintf("ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f && fscanf(f, "%d", &n) != 1) n = -1;
    if (f) pclose(f);
    free(cmd);
    if (n) {
        /* start the next trial clean */
        char *rm = xasprintf("rm -rf '%s'/.out.tmp.* '%s'/out", dir, dir);
        if (system(rm) != 0) n = -1;
        free(rm);
    }
    return n;
}

TEST(an_interrupt_stops_the_writers_before_removing_their_directory)
{
    char tmpl[] = "/tmp/mlc-unit-cleanup.XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    int leftovers = 0;
    for (int trial = 0; trial < 20; trial++) {
        int p[2];
        CHECK_EQ(pipe(p), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            child(dir, p[1]);
        }
        close(p[1]);
        char c;
        CHECK_EQ(read(p[0], &c, 1), 1);
        close(p[0]);
        struct timespec ts = {0, 200000L * trial};
        nanosleep(&ts, NULL);
        kill(pid, SIGINT);
        int status = 0;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
        leftovers += count_left(dir);
    }
    CHECK_EQ(leftovers, 0);
    remove_tree(dir);
}

TEST_MAIN()
