/* tests/pgq.h - queries against a test's PostgreSQL cluster over one admin
 * connection; a failed query fails the running cmocka test. */
#ifndef TESTS_PGQ_H
#define TESTS_PGQ_H

#include <libpq-fe.h>

/* (Re)connects the admin connection to @conninfo; fails the test when it
 * cannot. */
void pgq_connect(const char *conninfo);
/* Closes the admin connection. Safe when not connected. */
void pgq_close(void);
/* The admin connection (not owned), or NULL. */
PGconn *pgq_conn(void);

/* Runs a statement (printf-style). */
void pgq_exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The single value a query returns as an integer; -1 for NULL. */
long long pgq_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The single value a query returns as text ("<null>" for NULL), in a
 * static buffer valid until the next call. */
const char *pgq_text(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Empties the six tables of schema.sql. */
void pgq_truncate_all(void);
/* Rows in the six tables together. */
long long pgq_all_rows(void);

#endif /* TESTS_PGQ_H */
