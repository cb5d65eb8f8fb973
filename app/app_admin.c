/* app/app_admin.c - what the admin port answers: the metrics, the actor
 * tree, the log level and the model's state, as routes for notify's admin
 * listener. */

/*
 * DESIGN
 * Notify owns the listener (lws lives only there); the application owns
 * what each route says, since only it knows every stage. The handlers run
 * on the admin actor's thread, one request at a time, and may block
 * briefly: /api/model waits for every match actor's answer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "actor/actor.h"
#include "app/app.h"
#include "model/model.h"
#include "notify/notify.h"

#define JSON_TYPE    "application/json"
#define PROM_TYPE    "text/plain; version=0.0.4; charset=utf-8"
#define ACTORS_SHOWN 10   /* busiest children listed per big supervisor */
#define MODEL_WAIT   5000 /* ms for every match actor to answer */

static int get_metrics(const char *body, size_t len, struct actor_buf *out,
                       const char **type)
{
    (void)body;
    (void)len;
    *type = PROM_TYPE;
    int rc = actor_metric_render(out);
    if (rc == 0) {
        rc = app_runtime_metrics(out);
    }
    return rc < 0 ? rc : 200;
}

static int get_actors(const char *body, size_t len, struct actor_buf *out,
                      const char **type)
{
    (void)body;
    (void)len;
    *type = JSON_TYPE;
    int rc = app_actors_json(out, ACTORS_SHOWN);
    return rc < 0 ? rc : 200;
}

static int get_loglevel(const char *body, size_t len, struct actor_buf *out,
                        const char **type)
{
    (void)body;
    (void)len;
    (void)type;
    actor_buf_str(out, actor_log_level_name(actor_log_get_level()));
    actor_buf_char(out, '\n');
    return 200;
}

/* Copies the one word of a request body into @word (@size bytes): the
 * body without surrounding whitespace (a newline from curl or echo).
 * Returns false when that is empty or does not fit. */
static bool body_word(const char *body, size_t len, char *word, size_t size)
{
    while (len > 0 && isspace((unsigned char)*body)) {
        body++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)body[len - 1])) {
        len--;
    }
    if (len == 0 || len >= size) {
        return false;
    }
    memcpy(word, body, len);
    word[len] = '\0';
    return true;
}

static int put_loglevel(const char *body, size_t len, struct actor_buf *out,
                        const char **type)
{
    (void)type;
    char word[16];
    enum actor_log_level level;
    if (!body_word(body, len, word, sizeof(word)) ||
        actor_log_parse_level(word, &level) != 0) {
        actor_buf_str(out, "the level is one of debug, info, warn, error\n");
        return 400;
    }
    /* Said at warn, under whichever of the two levels lets it show. */
    enum actor_log_level was = actor_log_get_level();
    if (level <= ACTOR_LOG_WARN) {
        actor_log_set_level(level);
    }
    actor_log(NULL, ACTOR_LOG_WARN, "log level changed", "from",
              actor_log_level_name(was), "to", actor_log_level_name(level),
              NULL);
    actor_log_set_level(level);
    actor_buf_str(out, actor_log_level_name(level));
    actor_buf_char(out, '\n');
    return 200;
}

static int get_model(const char *body, size_t len, struct actor_buf *out,
                     const char **type)
{
    (void)body;
    (void)len;
    int rc = model_snapshot_json(out, MODEL_WAIT);
    if (rc == -ETIMEDOUT) {
        actor_buf_str(out, "some matches did not answer in time\n");
        return 504;
    }
    if (rc < 0) {
        return rc;
    }
    *type = JSON_TYPE;
    return 200;
}

/* Kills the actor registered under the name in @body, as the observer's
 * "kill process" does on the BEAM: its supervisor restarts it, and
 * /actors shows the restart. The admin actor does not kill itself (the
 * answer could not be sent). */
static int post_kill(const char *body, size_t len, struct actor_buf *out,
                     const char **type)
{
    (void)type;
    char name[64];
    if (!body_word(body, len, name, sizeof(name))) {
        actor_buf_str(out, "the body is the registered name of an actor\n");
        return 400;
    }
    if (strcmp(name, "admin") == 0) {
        actor_buf_str(out, "the admin actor answers this request\n");
        return 409;
    }
    uint64_t pid = actor_whereis(name);
    struct actor_exit why = {.kind = ACTOR_EXIT_KILLED};
    snprintf(why.text, sizeof(why.text), "killed from the admin port");
    if (!pid || actor_exit(NULL, pid, &why) != 0) {
        actor_buf_printf(out, "no actor is registered as %s\n", name);
        return 404;
    }
    actor_log(NULL, ACTOR_LOG_WARN, "actor killed by an operator", "name", name,
              NULL);
    actor_buf_printf(out, "killed %s\n", name);
    return 200;
}

static const struct notify_route routes[] = {
    {.method = "POST", .path = "/actors/kill", .handle = post_kill},
    {.method = "GET", .path = "/metrics", .handle = get_metrics},
    {.method = "GET", .path = "/actors", .handle = get_actors},
    {.method = "GET", .path = "/loglevel", .handle = get_loglevel},
    {.method = "PUT", .path = "/loglevel", .handle = put_loglevel},
    {.method = "GET", .path = "/api/model", .handle = get_model},
};

void app_admin_routes(struct notify_admin_config *cfg)
{
    cfg->routes = routes;
    cfg->n_routes = sizeof(routes) / sizeof(routes[0]);
}
