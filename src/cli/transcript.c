/* cli/transcript.c: `persona transcript ID [--format text|json|vtt|srt]` — prints a media item's
 * transcript (GET /v1/media/{id}/transcript): one "MM:SS  text" line per segment by default, the
 * server's JSON, or WebVTT / SRT subtitles as the server formats them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/internal.h"

static const char transcript_help[] =
    "Usage: persona transcript ID [--format text|json|vtt|srt]\n"
    "\n"
    "Prints the transcript of an audio or video item: what was said, segment by segment, with\n"
    "the time it starts at (text, the default), the server's JSON (also with --json), or\n"
    "WebVTT / SRT subtitles. An item still being processed has no transcript yet.\n";

static void print_segments(const json_t *o)
{
    json_t *segs = json_object_get(o, "segments");
    size_t i;
    json_t *s;
    char clean[4096];
    json_array_foreach(segs, i, s) {
        int64_t ms = cli__jint(s, "start_ms", 0);
        printf("%02lld:%02lld  %s\n", (long long)(ms / 60000), (long long)(ms / 1000 % 60),
               cli__clean(cli__jstr(s, "text", ""), 0, clean, sizeof clean));
    }
    if (json_array_size(segs) == 0)
        printf("(no speech)\n");
}

int cli__cmd_transcript(cli__ctx_t *ctx, int argc, char **argv)
{
    const char *format = NULL;
    const cli__opt_t opts[] = {{"format", 'f', CLI__VALUE, &format}, {0}};
    char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, status = CLI_EXIT_FAIL;
    uint64_t id = 0;
    char path[128];
    cli__resp_t resp;
    cli__resp_init(&resp);
    int rc = cli__parse_opts("transcript", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP) {
        fputs(transcript_help, stdout);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (rc < 0) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (npos != 1) {
        status = cli__usage_error("transcript", "expected one media ID");
        goto out;
    }
    if (cli__parse_id(pos[0], "media ID", &id) < 0) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (!format)
        format = ctx->json ? "json" : "text";
    bool subtitles = !strcmp(format, "vtt") || !strcmp(format, "srt");
    if (!subtitles && strcmp(format, "json") && strcmp(format, "text")) {
        status = cli__usage_error("transcript", "--format is text, json, vtt or srt");
        goto out;
    }
    snprintf(path, sizeof path, "/v1/media/%llu/transcript%s%s", (unsigned long long)id,
             subtitles ? "?format=" : "", subtitles ? format : "");
    cli__req_t req = {.method = "GET", .path = path, .auth = true, .timeout_s = 60};
    if (cli__request(ctx, &req, &resp) < 0 || !cli__resp_ok(ctx, &resp, "transcript"))
        goto out;
    if (subtitles)
        fwrite(resp.body.data, 1, resp.body.len, stdout);
    else if (!strcmp(format, "json"))
        cli__print_json(resp.json);
    else
        print_segments(resp.json);
    status = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    cli__resp_destroy(&resp);
    free(pos);
    return status;
}
