/* tests/pgq.c - queries against a test's PostgreSQL cluster. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "tests/pgq.h"

static PGconn *admin;

void pgq_connect(const char *conninfo)
{
    PQfinish(admin);
    admin = PQconnectdb(conninfo);
    if (PQstatus(admin) != CONNECTION_OK) {
        fail_msg("connect: %s", PQerrorMessage(admin));
    }
}

void pgq_close(void)
{
    PQfinish(admin);
    admin = NULL;
}

PGconn *pgq_conn(void)
{
    return admin;
}

static PGresult *query(const char *fmt, va_list ap)
{
    char sql[2048];
    vsnprintf(sql, sizeof(sql), fmt, ap);
    PGresult *res = PQexec(admin, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fail_msg("%s: %s", sql, PQerrorMessage(admin));
    }
    return res;
}

void pgq_exec(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PQclear(query(fmt, ap));
    va_end(ap);
}

long long pgq_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *res = query(fmt, ap);
    va_end(ap);
    assert_int_equal(PQntuples(res), 1);
    long long v = PQgetisnull(res, 0, 0) ? -1 : atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

const char *pgq_text(const char *fmt, ...)
{
    static char out[4096];
    va_list ap;
    va_start(ap, fmt);
    PGresult *res = query(fmt, ap);
    va_end(ap);
    assert_int_equal(PQntuples(res), 1);
    snprintf(out, sizeof(out), "%s",
             PQgetisnull(res, 0, 0) ? "<null>" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

void pgq_truncate_all(void)
{
    pgq_exec("TRUNCATE feed_events, matches, incidents, match_updates,"
             " rejected_documents, source_offsets");
}

long long pgq_all_rows(void)
{
    return pgq_int("SELECT (SELECT count(*) FROM feed_events) +"
                   " (SELECT count(*) FROM match_updates) +"
                   " (SELECT count(*) FROM rejected_documents) +"
                   " (SELECT count(*) FROM matches) +"
                   " (SELECT count(*) FROM incidents) +"
                   " (SELECT count(*) FROM source_offsets)");
}
