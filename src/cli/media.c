/* cli media: `persona upload FILE…` (streamed from disk with a progress bar, one result line
 * per file, carries on past a failed file) and `persona media` (list, show, --wait, rm, get).
 * Downloads stream into a temporary file next to the target and are renamed into place only
 * when complete, so an interrupted download never leaves a file that looks whole. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/internal.h"

/* ======================================================================================
 * upload
 * ====================================================================================== */

static const char upload_help[] =
    "Usage: persona upload FILE... [--title T] [--kind video|audio|image|text]\n"
    "\n"
    "Uploads each FILE (POST /v1/media), streamed from disk. The kind comes from --kind or\n"
    "from the extension: mp4 mov mkv webm avi (video), m4a mp3 wav ogg opus flac aac (audio),\n"
    "png jpg jpeg webp gif bmp (image), txt md (text). On a terminal a progress bar is shown\n"
    "on stderr; each finished file prints one line:\n"
    "  uploaded FILE id=N sha256=HEX size=BYTES kind=K status=S\n"
    "(with --json, the server's object per line). A file that fails prints the server's reason\n"
    "and the others still go; the exit status is 1 if any failed.\n"
    "\n"
    "  --title T   title of the items (default: the file's name)\n"
    "  --kind K    video, audio, image or text (overrides the extension)\n";

/* Uploads one file. Returns 0 or -1 (reason printed). */
static int upload_one(cli__ctx_t *ctx, const char *file, const char *title, const char *kind) {
    int rc = -1;
    FILE *f = NULL;
    char *etitle = NULL, *path = NULL;
    const char *gkind = NULL, *mime = NULL;
    const char *base = strrchr(file, '/');
    base = base && base[1] ? base + 1 : file;
    cli__resp_t resp;
    cli__resp_init(&resp);

    bool known = cli__guess_kind(file, &gkind, &mime) == 0;
    if (!kind) {
        if (!known) {
            fprintf(stderr, "persona: %s: cannot tell the kind from the file name; use --kind "
                            "video|audio|image|text\n", file);
            goto out;
        }
        kind = gkind;
    }
    if (!known || strcmp(kind, gkind) != 0)
        mime = "application/octet-stream"; /* ?kind= names the kind; the server probes */

    f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "persona: %s: %s\n", file, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "persona: %s: not a regular file\n", file);
        goto out;
    }

    etitle = cli__urlencode(title ? title : base);
    path = xasprintf("/v1/media?title=%s&kind=%s", etitle, kind);
    cli__progress_t prog;
    cli__progress_start(&prog, base, ctx->tty_err);
    cli__req_t req = {
        .method = "POST",
        .path = path,
        .auth = true,
        .upload = f,
        .upload_size = (uint64_t)st.st_size,
        .content_type = mime,
        .progress = &prog,
    };
    if (cli__request(ctx, &req, &resp) < 0)
        goto out;
    if (!cli__resp_ok(ctx, &resp, file))
        goto out;
    if (ctx->json) {
        cli__print_json(resp.json);
    } else {
        printf("uploaded %s id=%lld sha256=%s size=%lld kind=%s status=%s\n", file,
               (long long)cli__jint(resp.json, "id", 0), cli__jstr(resp.json, "sha256", "?"),
               (long long)cli__jint(resp.json, "size", -1), cli__jstr(resp.json, "kind", "?"),
               cli__jstr(resp.json, "status", "?"));
        fflush(stdout);
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    cli__resp_destroy(&resp);
    free(path);
    free(etitle);
    return rc;
}

int cli__cmd_upload(cli__ctx_t *ctx, int argc, char **argv) {
    const char *title = NULL, *kind = NULL;
    const cli__opt_t opts[] = {
        {"title", 't', CLI__VALUE, &title},
        {"kind", 'k', CLI__VALUE, &kind},
        {0},
    };
    char *pos[argc + 1];
    int npos;
    int rc = cli__parse_opts("upload", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP)
        return fputs(upload_help, stdout), CLI_EXIT_OK;
    if (rc < 0)
        return CLI_EXIT_USAGE;
    if (npos == 0)
        return cli__usage_error("upload", "no FILE given");
    if (kind && !cli__valid_kind(kind))
        return cli__usage_error("upload", "--kind must be video, audio, image or text, not '%s'",
                                kind);
    if (!ctx->token) {
        fprintf(stderr, "persona: not logged in (run 'persona login', or give --token or "
                        "PERSONA_TOKEN)\n");
        return CLI_EXIT_FAIL;
    }
    int failed = 0;
    for (int i = 0; i < npos; i++)
        if (upload_one(ctx, pos[i], title, kind) < 0)
            failed++;
    if (failed && npos > 1)
        fprintf(stderr, "persona: %d of %d files failed\n", failed, npos);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ======================================================================================
 * media: list
 * ====================================================================================== */

static void print_media_table(const json_t *items) {
    size_t i;
    json_t *it;
    if (json_array_size(items) == 0) {
        printf("no media\n");
        return;
    }
    printf("%-6s %-6s %-10s %9s  %-32s %s\n", "ID", "KIND", "STATUS", "SIZE", "TITLE",
           "CREATED");
    json_array_foreach(items, i, it) {
        char size[32], title[160], when[64], kind[16], status[16];
        printf("%-6lld %-6s %-10s %9s  %-32s %s\n", (long long)cli__jint(it, "id", 0),
               cli__clean(cli__jstr(it, "kind", "?"), 6, kind, sizeof kind),
               cli__clean(cli__jstr(it, "status", "?"), 10, status, sizeof status),
               cli__human_size((uint64_t)cli__jint(it, "size", 0), size, sizeof size),
               cli__clean(cli__jstr(it, "title", ""), 32, title, sizeof title),
               cli__human_time(cli__jint(it, "created_at", 0), when, sizeof when));
    }
}

static int media_list(cli__ctx_t *ctx, long limit) {
    int status = CLI_EXIT_FAIL;
    json_t *all = json_array();
    json_t *next = json_null();
    int64_t before = 0;
    cli__resp_t resp;
    cli__resp_init(&resp);

    while ((long)json_array_size(all) < limit) {
        char path[96];
        long want = limit - (long)json_array_size(all);
        if (want > 200)
            want = 200;
        if (before > 0)
            snprintf(path, sizeof path, "/v1/media?limit=%ld&before=%lld", want,
                     (long long)before);
        else
            snprintf(path, sizeof path, "/v1/media?limit=%ld", want);
        if (cli__call(ctx, "GET", path, NULL, true, &resp) < 0)
            goto out;
        json_t *items = json_object_get(resp.json, "media");
        if (!json_is_array(items)) {
            fprintf(stderr, "persona: the server's media list has no 'media' array\n");
            goto out;
        }
        json_array_extend(all, items);
        json_decref(next);
        next = json_incref(json_object_get(resp.json, "next_before"));
        if (!next)
            next = json_null();
        before = cli__jint(resp.json, "next_before", 0);
        if (before <= 0 || json_array_size(items) == 0)
            break;
    }
    if (ctx->json) {
        json_t *o = json_pack("{s:O, s:O}", "media", all, "next_before", next);
        cli__print_json(o);
        json_decref(o);
    } else {
        print_media_table(all);
    }
    status = CLI_EXIT_OK;
out:
    cli__resp_destroy(&resp);
    json_decref(all);
    json_decref(next);
    return status;
}

/* ======================================================================================
 * media: show, wait
 * ====================================================================================== */

static void print_scalar(const json_t *v) {
    char buf[512];
    switch (json_typeof(v)) {
    case JSON_STRING:
        fputs(cli__clean(json_string_value(v), 0, buf, sizeof buf), stdout);
        break;
    case JSON_INTEGER:
        printf("%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        printf("%g", json_real_value(v));
        break;
    case JSON_TRUE:
        fputs("true", stdout);
        break;
    case JSON_FALSE:
        fputs("false", stdout);
        break;
    case JSON_NULL:
        fputs("null", stdout);
        break;
    default:
        fputs("…", stdout);
        break;
    }
}

/* Prints an object's scalar members as key=value on one line, then each member object on a
 * line of its own, indented. */
static void print_object(const char *label, const json_t *o, int indent) {
    const char *k;
    json_t *v;
    printf("%*s%-*s", indent, "", 12 - indent > 1 ? 12 - indent : 1, label);
    json_object_foreach((json_t *)o, k, v) {
        if (json_is_object(v) || json_is_array(v))
            continue;
        printf(" %s=", k);
        print_scalar(v);
    }
    putchar('\n');
    json_object_foreach((json_t *)o, k, v) {
        if (json_is_object(v))
            print_object(k, v, indent + 2);
    }
}

static void print_media_item(const json_t *it) {
    char a[64], b[64], size[32];
    static const char *plain[] = {"id", "title", "kind", "status", "content_type", "sha256"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        json_t *v = json_object_get(it, plain[i]);
        if (!v)
            continue;
        printf("%-13s", plain[i]);
        print_scalar(v);
        putchar('\n');
    }
    int64_t sz = cli__jint(it, "size", -1);
    if (sz >= 0)
        printf("%-13s%lld (%s)\n", "size", (long long)sz,
               cli__human_size((uint64_t)sz, size, sizeof size));
    printf("%-13s%s\n", "created", cli__human_time(cli__jint(it, "created_at", 0), a, sizeof a));
    printf("%-13s%s\n", "updated", cli__human_time(cli__jint(it, "updated_at", 0), b, sizeof b));
    json_t *err = json_object_get(it, "error");
    if (err && !json_is_null(err)) {
        printf("%-13s", "error");
        print_scalar(err);
        putchar('\n');
    }
    json_t *probe = json_object_get(it, "probe");
    if (json_is_object(probe))
        print_object("probe", probe, 0);
    json_t *arts = json_object_get(it, "artifacts");
    if (json_is_array(arts) && json_array_size(arts) > 0) {
        size_t i;
        json_t *art;
        printf("artifacts\n");
        json_array_foreach(arts, i, art) {
            char name[32], mime[64], url[128];
            printf("  %-10s %9s  %-18s %s\n",
                   cli__clean(cli__jstr(art, "name", "?"), 10, name, sizeof name),
                   cli__human_size((uint64_t)cli__jint(art, "size", 0), size, sizeof size),
                   cli__clean(cli__jstr(art, "mime", ""), 18, mime, sizeof mime),
                   cli__clean(cli__jstr(art, "url", ""), 0, url, sizeof url));
        }
    }
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int media_show(cli__ctx_t *ctx, uint64_t id, bool wait, long timeout_s) {
    char path[64];
    int status = CLI_EXIT_FAIL;
    cli__resp_t resp;
    cli__resp_init(&resp);
    snprintf(path, sizeof path, "/v1/media/%llu", (unsigned long long)id);
    int64_t start = core_mono_ns();
    long interval = 200;
    bool shown_wait = false;

    for (;;) {
        if (cli__call(ctx, "GET", path, NULL, true, &resp) < 0)
            goto out;
        const char *st = cli__jstr(resp.json, "status", "");
        if (!wait || strcmp(st, "ready") == 0 || strcmp(st, "failed") == 0)
            break;
        double waited = (double)(core_mono_ns() - start) / 1e9;
        if (timeout_s > 0 && waited >= (double)timeout_s) {
            if (shown_wait)
                fputs("\r\x1b[K", stderr);
            fprintf(stderr, "persona: media %llu is still %s after %ld s\n",
                    (unsigned long long)id, st, timeout_s);
            goto out;
        }
        if (ctx->tty_err) {
            char s[16];
            fprintf(stderr, "\rwaiting for media %llu: %s (%.0f s)\x1b[K",
                    (unsigned long long)id, cli__clean(st, 12, s, sizeof s), waited);
            fflush(stderr);
            shown_wait = true;
        }
        sleep_ms(interval);
        interval = interval * 3 / 2 > 2000 ? 2000 : interval * 3 / 2;
    }
    if (shown_wait)
        fputs("\r\x1b[K", stderr);
    if (ctx->json)
        cli__print_json(resp.json);
    else
        print_media_item(resp.json);
    status = CLI_EXIT_OK;
    if (wait && strcmp(cli__jstr(resp.json, "status", ""), "failed") == 0) {
        char why[512];
        fprintf(stderr, "persona: media %llu failed: %s\n", (unsigned long long)id,
                cli__clean(cli__jstr(resp.json, "error", "no reason given"), 0, why,
                           sizeof why));
        status = CLI_EXIT_FAIL;
    }
out:
    cli__resp_destroy(&resp);
    return status;
}

/* ======================================================================================
 * media: rm, get
 * ====================================================================================== */

static int media_rm(cli__ctx_t *ctx, uint64_t id) {
    char path[64];
    cli__resp_t resp;
    cli__resp_init(&resp);
    snprintf(path, sizeof path, "/v1/media/%llu", (unsigned long long)id);
    int rc = cli__call(ctx, "DELETE", path, NULL, true, &resp);
    cli__resp_destroy(&resp);
    if (rc < 0)
        return CLI_EXIT_FAIL;
    if (ctx->json)
        printf("{\"id\":%llu,\"deleted\":true}\n", (unsigned long long)id);
    else
        printf("deleted media %llu\n", (unsigned long long)id);
    return CLI_EXIT_OK;
}

static bool valid_artifact(const char *a) {
    static const char *names[] = {"original", "audio", "video", "pcm", "thumbnail"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(a, names[i]) == 0)
            return true;
    return false;
}

static bool safe_ext(const char *e) {
    size_t n = e ? strlen(e) : 0;
    if (n == 0 || n > 8)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((e[i] >= 'a' && e[i] <= 'z') || (e[i] >= 'A' && e[i] <= 'Z') ||
              (e[i] >= '0' && e[i] <= '9')))
            return false;
    return true;
}

/* Default file name for an artifact: media-ID-NAME.EXT, the extension from the item. Returns
 * a malloc'd name, or NULL when the item could not be fetched (printed). */
static char *default_name(cli__ctx_t *ctx, uint64_t id, const char *artifact) {
    char path[64];
    const char *ext = NULL;
    char *name = NULL;
    cli__resp_t resp;
    cli__resp_init(&resp);
    snprintf(path, sizeof path, "/v1/media/%llu", (unsigned long long)id);
    if (cli__call(ctx, "GET", path, NULL, true, &resp) < 0)
        goto out;
    if (strcmp(artifact, "original") == 0) {
        ext = cli__ext_for_mime(cli__jstr(resp.json, "content_type", NULL));
    } else {
        size_t i;
        json_t *art;
        json_array_foreach(json_object_get(resp.json, "artifacts"), i, art) {
            if (strcmp(cli__jstr(art, "name", ""), artifact) == 0)
                ext = cli__jstr(art, "ext", NULL);
        }
    }
    if (!safe_ext(ext))
        ext = strcmp(artifact, "pcm") == 0 ? "wav" : strcmp(artifact, "thumbnail") == 0 ? "jpg"
                                                                                         : "bin";
    name = xasprintf("media-%llu-%s.%s", (unsigned long long)id, artifact, ext);
out:
    cli__resp_destroy(&resp);
    return name;
}

static int media_get(cli__ctx_t *ctx, uint64_t id, const char *artifact, const char *out_path) {
    int status = CLI_EXIT_FAIL;
    char *name = NULL, *tmp = NULL, *path = NULL;
    FILE *f = NULL;
    bool to_stdout = out_path && strcmp(out_path, "-") == 0;
    cli__resp_t resp;
    cli__resp_init(&resp);

    if (!out_path) {
        if (!(name = default_name(ctx, id, artifact)))
            goto out;
        out_path = name;
    }
    if (to_stdout) {
        f = stdout;
    } else {
        tmp = xasprintf("%s.part-XXXXXX", out_path);
        int fd = mkstemp(tmp);
        if (fd < 0) {
            fprintf(stderr, "persona: cannot create %s: %s\n", tmp, strerror(errno));
            xfree(&tmp);
            goto out;
        }
        mode_t um = umask(0);
        umask(um);
        (void)fchmod(fd, 0666 & ~um);
        f = fdopen(fd, "wb");
        if (!f) {
            fprintf(stderr, "persona: cannot open %s: %s\n", tmp, strerror(errno));
            close(fd);
            goto out;
        }
    }
    path = xasprintf("/v1/media/%llu/%s", (unsigned long long)id, artifact);
    cli__progress_t prog;
    cli__progress_start(&prog, out_path, ctx->tty_err && !to_stdout);
    cli__req_t req = {
        .method = "GET", .path = path, .auth = true, .download = f, .progress = &prog};
    if (cli__request(ctx, &req, &resp) < 0)
        goto out;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "media %llu %s", (unsigned long long)id, artifact);
    if (!cli__resp_ok(ctx, &resp, prefix))
        goto out;
    if (to_stdout) {
        if (fflush(stdout) != 0) {
            fprintf(stderr, "persona: cannot write to standard output\n");
            goto out;
        }
        f = NULL;
        status = CLI_EXIT_OK;
        goto out;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
        fprintf(stderr, "persona: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    int rc = fclose(f);
    f = NULL;
    if (rc != 0 || rename(tmp, out_path) < 0) {
        fprintf(stderr, "persona: cannot write %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    xfree(&tmp);
    if (ctx->json) {
        json_t *o = json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)id, "artifact", artifact,
                              "file", out_path, "size", (json_int_t)resp.downloaded);
        cli__print_json(o);
        json_decref(o);
    } else {
        printf("downloaded %s size=%llu\n", out_path, (unsigned long long)resp.downloaded);
    }
    status = CLI_EXIT_OK;
out:
    if (f && f != stdout)
        fclose(f);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    cli__resp_destroy(&resp);
    free(path);
    free(name);
    return status;
}

/* ======================================================================================
 * media: dispatch
 * ====================================================================================== */

static const char media_help[] =
    "Usage: persona media [list] [--limit N]       list media, newest first (default 50)\n"
    "       persona media ID [--wait [--timeout S]] show one item; --wait polls until it is\n"
    "                                               ready or failed (exit 1 if failed)\n"
    "       persona media rm ID                     delete an item and its artifacts\n"
    "       persona media get ID ARTIFACT [-o FILE] download original, audio, video, pcm or\n"
    "                                               thumbnail (default FILE\n"
    "                                               media-ID-ARTIFACT.EXT; '-' for stdout)\n"
    "\n"
    "  --limit N     how many items to list (1-100000)\n"
    "  --wait        wait until processing ends\n"
    "  --timeout S   give up waiting after S seconds (default 600; 0: never)\n"
    "  -o, --output FILE\n";

int cli__cmd_media(cli__ctx_t *ctx, int argc, char **argv) {
    const char *limit_s = NULL, *timeout_s = NULL, *output = NULL;
    bool wait = false;
    const cli__opt_t opts[] = {
        {"limit", 'n', CLI__VALUE, &limit_s}, {"wait", 'w', CLI__FLAG, &wait},
        {"timeout", 0, CLI__VALUE, &timeout_s}, {"output", 'o', CLI__VALUE, &output},
        {0},
    };
    char *pos[argc + 1];
    int npos;
    uint64_t id = 0, v = 0;
    int rc = cli__parse_opts("media", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP)
        return fputs(media_help, stdout), CLI_EXIT_OK;
    if (rc < 0)
        return CLI_EXIT_USAGE;
    const char *sub = npos > 0 ? pos[0] : "list";
    bool is_list = strcmp(sub, "list") == 0, is_rm = strcmp(sub, "rm") == 0,
         is_get = strcmp(sub, "get") == 0, is_show = !is_list && !is_rm && !is_get;

    if (limit_s && !is_list)
        return cli__usage_error("media", "--limit goes with 'media list'");
    if ((wait || timeout_s) && !is_show)
        return cli__usage_error("media", "--wait and --timeout go with 'media ID'");
    if (timeout_s && !wait)
        return cli__usage_error("media", "--timeout goes with --wait");
    if (output && !is_get)
        return cli__usage_error("media", "--output goes with 'media get'");

    if (is_list) {
        long limit = 50;
        if (npos > 1)
            return cli__usage_error("media", "unexpected argument '%s'", pos[1]);
        if (limit_s) {
            if (core_parse_u64(limit_s, strlen(limit_s), &v) < 0 || v < 1 || v > 100000)
                return cli__usage_error("media", "--limit must be 1 to 100000");
            limit = (long)v;
        }
        return media_list(ctx, limit);
    }
    if (is_show) {
        long timeout = 600;
        if (npos > 1)
            return cli__usage_error("media", "unexpected argument '%s'", pos[1]);
        if (core_parse_u64(sub, strlen(sub), &id) < 0 || id == 0)
            return cli__usage_error("media", "'%s' is neither list, rm, get nor a media id", sub);
        if (timeout_s) {
            if (core_parse_u64(timeout_s, strlen(timeout_s), &v) < 0 || v > 86400 * 7)
                return cli__usage_error("media", "--timeout must be 0 to 604800 seconds");
            timeout = (long)v;
        }
        return media_show(ctx, id, wait, timeout);
    }
    if (is_rm) {
        if (npos != 2)
            return cli__usage_error("media", "usage: persona media rm ID");
        if (cli__parse_id(pos[1], "media id", &id) < 0)
            return CLI_EXIT_USAGE;
        return media_rm(ctx, id);
    }
    if (npos != 3)
        return cli__usage_error("media", "usage: persona media get ID ARTIFACT [-o FILE]");
    if (cli__parse_id(pos[1], "media id", &id) < 0)
        return CLI_EXIT_USAGE;
    if (!valid_artifact(pos[2]))
        return cli__usage_error("media", "ARTIFACT is original, audio, video, pcm or thumbnail, "
                                         "not '%s'", pos[2]);
    if (output && !*output)
        return cli__usage_error("media", "--output needs a file name");
    return media_get(ctx, id, pos[2], output);
}
