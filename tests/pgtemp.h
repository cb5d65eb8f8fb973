/* tests/pgtemp.h - a throwaway PostgreSQL cluster for C tests and
 * benchmarks, through tools/pg.sh. Header-only: the benchmarks link no test
 * support objects. The Python twin is tests/integration/pgtemp.py. */
#ifndef TESTS_PGTEMP_H
#define TESTS_PGTEMP_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct pgtemp {
    char root[512];     /* the repository ($SCOREWIRE_ROOT or .) */
    char dir[256];      /* our temporary directory */
    char pgdir[300];    /* the cluster: dir/pg */
    char conninfo[768]; /* from tools/pg.sh start */
    bool fsync;
    int reaper_fd; /* write end of the pipe the reaper waits on, or -1 */
    pid_t reaper;  /* removes the cluster if we die without pgtemp_stop */
};

/* Runs @cmd through the shell; returns its exit status (or -1). Its first
 * output line goes to @out when @out is not NULL. */
static inline int pgtemp_shell(const char *cmd, char *out, size_t out_len)
{
    FILE *p = popen(cmd, "r");
    if (!p) {
        return -1;
    }
    char line[1024];
    bool first = true;
    while (fgets(line, sizeof(line), p)) {
        if (first && out && out_len > 0) {
            size_t n = strcspn(line, "\n");
            n = n < out_len ? n : out_len - 1;
            memcpy(out, line, n);
            out[n] = '\0';
        }
        first = false;
    }
    int st = pclose(p);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

/* Runs tools/pg.sh @verb on the cluster, with @extra appended. */
static inline int pgtemp_ctl(struct pgtemp *t, const char *verb,
                             const char *extra, char *out, size_t out_len)
{
    char cmd[1600];
    snprintf(cmd, sizeof(cmd), "'%s/tools/pg.sh' %s %s '%s' %s", t->root,
             t->fsync ? "" : "--no-fsync", verb, t->pgdir, extra ? extra : "");
    return pgtemp_shell(cmd, out, out_len);
}

/* Applies schema.sql with psql. Returns psql's status. */
static inline int pgtemp_schema(struct pgtemp *t)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "psql -X -q -v ON_ERROR_STOP=1 -d \"%s\" -f '%s/schema.sql' "
             ">/dev/null",
             t->conninfo, t->root);
    return pgtemp_shell(cmd, NULL, 0);
}

/* (Re)starts the cluster on its port. Returns 0 or -1. */
static inline int pgtemp_up(struct pgtemp *t)
{
    return pgtemp_ctl(t, "start", NULL, t->conninfo, sizeof(t->conninfo)) == 0
               ? 0
               : -1;
}

/* Stops the cluster ("fast" or "immediate"), keeping its data. */
static inline int pgtemp_down(struct pgtemp *t, const char *mode)
{
    return pgtemp_ctl(t, "stop", mode, NULL, 0) == 0 ? 0 : -1;
}

/* Stops the cluster at once and removes the directory. */
static inline void pgtemp_clean(struct pgtemp *t)
{
    if (t->pgdir[0]) {
        pgtemp_down(t, "immediate");
    }
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    pgtemp_shell(cmd, NULL, 0);
}

/*
 * A child that cleans up when we die (a crash, an abort, a timeout's kill):
 * it waits for the end of a pipe only we hold (close-on-exec, so the server
 * we start does not hold it too). One byte on it means we cleaned up.
 */
static inline void pgtemp_reaper(struct pgtemp *t)
{
    int fds[2];
    t->reaper_fd = -1;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[1]);
        char c;
        ssize_t n;
        do {
            n = read(fds[0], &c, 1);
        } while (n < 0);
        if (n == 0) {
            pgtemp_clean(t);
        }
        _exit(0);
    }
    close(fds[0]);
    if (pid < 0) {
        close(fds[1]);
        return;
    }
    t->reaper = pid;
    t->reaper_fd = fds[1];
}

/*
 * Creates a temporary directory, starts a cluster in it and applies
 * schema.sql. @fsync false runs the server without fsync (tests). Returns 0,
 * or -1 with a message on stderr.
 */
static inline int pgtemp_start(struct pgtemp *t, bool fsync)
{
    memset(t, 0, sizeof(*t));
    const char *root = getenv("SCOREWIRE_ROOT");
    snprintf(t->root, sizeof(t->root), "%s", root && *root ? root : ".");
    snprintf(t->dir, sizeof(t->dir), "/tmp/scorewire-pg-XXXXXX");
    t->fsync = fsync;
    if (!mkdtemp(t->dir)) {
        perror("pgtemp: mkdtemp");
        return -1;
    }
    /* The server may run as another user (postgres): let it in. */
    chmod(t->dir, 0755);
    snprintf(t->pgdir, sizeof(t->pgdir), "%s/pg", t->dir);
    pgtemp_reaper(t);
    if (pgtemp_up(t) != 0 || !t->conninfo[0]) {
        fprintf(stderr, "pgtemp: tools/pg.sh start %s failed\n", t->pgdir);
        return -1;
    }
    if (pgtemp_schema(t) != 0) {
        fprintf(stderr, "pgtemp: applying schema.sql failed\n");
        return -1;
    }
    return 0;
}

/* Stops the cluster at once, removes the directory, dismisses the reaper. */
static inline void pgtemp_stop(struct pgtemp *t)
{
    if (!t->dir[0]) {
        return;
    }
    pgtemp_clean(t);
    t->dir[0] = '\0';
    if (t->reaper_fd >= 0) {
        ssize_t n = write(t->reaper_fd, "", 1);
        (void)n;
        close(t->reaper_fd);
        waitpid(t->reaper, NULL, 0);
        t->reaper_fd = -1;
    }
}

#endif /* TESTS_PGTEMP_H */
