/* cli config: the client's config file — `key = value` lines (`server = http://…`,
 * `token = pst_…`), `#` comments. Loaded whole (at most 64 KiB); saved atomically: a temporary
 * file with mode 0600 in the same folder, fsynced, renamed over the old one, folder fsynced,
 * so a reader sees either the old file or the new one, never half of it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/internal.h"

void cli__config_init(cli__config_t *cfg) {
    cfg->items = NULL;
    cfg->n = 0;
}

void cli__config_destroy(cli__config_t *cfg) {
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->items[i].key);
        free(cfg->items[i].value);
    }
    free(cfg->items);
    cli__config_init(cfg);
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Trims [*s, *e) of blanks on both sides. */
static void trim(const char **s, const char **e) {
    while (*s < *e && is_space(**s))
        (*s)++;
    while (*e > *s && is_space((*e)[-1]))
        (*e)--;
}

int cli__config_parse(const char *text, cli__config_t *cfg, int *bad_line) {
    int line = 0;
    const char *p = text;
    while (*p) {
        line++;
        const char *end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        const char *s = p, *e = end;
        p = *end ? end + 1 : end;
        trim(&s, &e);
        if (s == e || *s == '#')
            continue;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (!eq || eq == s) {
            if (bad_line)
                *bad_line = line;
            return -EINVAL;
        }
        const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
        trim(&ks, &ke);
        trim(&vs, &ve);
        if (ks == ke) {
            if (bad_line)
                *bad_line = line;
            return -EINVAL;
        }
        char *key = xstrndup(ks, (size_t)(ke - ks));
        char *value = xstrndup(vs, (size_t)(ve - vs));
        cli__config_set(cfg, key, value);
        free(key);
        free(value);
    }
    return 0;
}

int cli__config_load(const char *path, cli__config_t *cfg, int *bad_line) {
    char *text = NULL;
    size_t len = 0;
    int rc = core_read_file(path, CLI__MAX_CONFIG, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    rc = cli__config_parse(text, cfg, bad_line);
    free(text);
    return rc;
}

const char *cli__config_get(const cli__config_t *cfg, const char *key) {
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->items[i].key, key) == 0)
            return cfg->items[i].value;
    return NULL;
}

void cli__config_set(cli__config_t *cfg, const char *key, const char *value) {
    for (size_t i = 0; i < cfg->n; i++) {
        if (strcmp(cfg->items[i].key, key) != 0)
            continue;
        if (value) {
            char *v = xstrdup(value);
            free(cfg->items[i].value);
            cfg->items[i].value = v;
        } else {
            free(cfg->items[i].key);
            free(cfg->items[i].value);
            memmove(&cfg->items[i], &cfg->items[i + 1], (cfg->n - i - 1) * sizeof *cfg->items);
            cfg->n--;
        }
        return;
    }
    if (!value)
        return;
    cfg->items = xrealloc(cfg->items, (cfg->n + 1) * sizeof *cfg->items);
    cfg->items[cfg->n].key = xstrdup(key);
    cfg->items[cfg->n].value = xstrdup(value);
    cfg->n++;
}

int cli__config_save(const char *path, const cli__config_t *cfg) {
    /* Holds a token: mode 0600, written whole or not at all. */
    core_buf_t text;
    core_buf_init(&text);
    core_buf_puts(&text, "# persona client configuration (written by `persona login`)\n");
    for (size_t i = 0; i < cfg->n; i++)
        core_buf_printf(&text, "%s = %s\n", cfg->items[i].key, cfg->items[i].value);
    core_chunk_t chunk = {text.data, text.len};
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    int rc = core_mkdirs(slash ? dir : ".");
    if (rc == 0)
        rc = core_write_file_atomic(path, &chunk, 1, 0600);
    free(dir);
    core_buf_destroy(&text);
    return rc;
}

char *cli__config_default_path(void) {
    const char *env = getenv("PERSONA_CONFIG");
    if (env && *env)
        return xstrdup(env);
    env = getenv("XDG_CONFIG_HOME");
    if (env && *env)
        return xasprintf("%s/persona/config", env);
    env = getenv("HOME");
    if (env && *env)
        return xasprintf("%s/.config/persona/config", env);
    return NULL;
}
