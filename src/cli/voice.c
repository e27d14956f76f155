/* cli voice: `persona voice [--voice V] [--rate N] [--pitch N] [--volume N]` shows the account's
 * speech synthesis settings (GET /v1/voice) or changes the ones given (PUT /v1/voice);
 * `persona say TEXT -o FILE.wav|FILE.ogg [--ssml] [--voice V ...]` synthesizes TEXT on the
 * server (POST /v1/tts) into FILE, written to a temporary file and renamed when complete.
 * Single-threaded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/internal.h"

static const char voice_help[] =
    "Usage: persona voice [--voice V] [--rate N] [--pitch N] [--volume N] [--list]\n"
    "\n"
    "Shows the account's speech synthesis voice, or changes the settings given:\n"
    "  --voice V     espeak-ng voice (language code such as en-us, de, fr-fr)\n"
    "  --rate N      words per minute, 80-450 (default 175)\n"
    "  --pitch N     0-99 (default 50)\n"
    "  --volume N    0-200 (default 100)\n"
    "  --list        also list the voices the server has\n";

static const char say_help[] =
    "Usage: persona say TEXT -o FILE [--ssml] [--voice V] [--rate N] [--pitch N] [--volume N]\n"
    "\n"
    "Synthesizes TEXT (at most 4000 characters) with the account's voice, or the settings\n"
    "given, into FILE: WAV for a name ending in .wav, Opus in Ogg for .ogg or .opus.\n"
    "  --ssml        TEXT is SSML: <speak>, <break time=\"500ms\"/>, <emphasis>,\n"
    "                <prosody rate|pitch|volume> (docs/speech-synthesis.md)\n";

/* Adds the numeric settings given as options to o. Returns 0 or CLI_EXIT_USAGE (printed). */
static int add_settings(const char *cmd, json_t *o, const char *voice, const char *rate,
                        const char *pitch, const char *volume)
{
    const char *names[] = {"rate", "pitch", "volume"};
    const char *vals[] = {rate, pitch, volume};
    if (voice)
        json_object_set_new(o, "voice", json_string(voice));
    for (int i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        uint64_t v;
        if (core_parse_u64(vals[i], strlen(vals[i]), &v) < 0 || v > 100000)
            return cli__usage_error(cmd, "--%s takes a whole number, not '%s'", names[i],
                                    vals[i]);
        json_object_set_new(o, names[i], json_integer((json_int_t)v));
    }
    return 0;
}

int cli__cmd_voice(cli__ctx_t *ctx, int argc, char **argv)
{
    const char *voice = NULL, *rate = NULL, *pitch = NULL, *volume = NULL;
    bool list = false;
    const cli__opt_t opts[] = {{"voice", 0, CLI__VALUE, &voice},
                               {"rate", 0, CLI__VALUE, &rate},
                               {"pitch", 0, CLI__VALUE, &pitch},
                               {"volume", 0, CLI__VALUE, &volume},
                               {"list", 0, CLI__FLAG, &list},
                               {0}};
    char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, status = CLI_EXIT_FAIL;
    json_t *body = NULL;
    cli__resp_t resp;
    cli__resp_init(&resp);
    int rc = cli__parse_opts("voice", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP) {
        fputs(voice_help, stdout);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (rc < 0 || npos > 0) {
        status = rc < 0 ? CLI_EXIT_USAGE
                        : cli__usage_error("voice", "unexpected argument '%s'", pos[0]);
        goto out;
    }
    bool change = voice || rate || pitch || volume;
    if (change) {
        body = json_object();
        if ((rc = add_settings("voice", body, voice, rate, pitch, volume)) != 0) {
            status = rc;
            goto out;
        }
    }
    if (cli__call(ctx, change ? "PUT" : "GET", "/v1/voice", body, true, &resp) < 0)
        goto out;
    if (ctx->json) {
        cli__print_json(resp.json);
    } else {
        printf("voice: %s\nrate: %lld\npitch: %lld\nvolume: %lld\n",
               cli__jstr(resp.json, "voice", "?"), (long long)cli__jint(resp.json, "rate", 0),
               (long long)cli__jint(resp.json, "pitch", 0),
               (long long)cli__jint(resp.json, "volume", 0));
        json_t *vs = json_object_get(resp.json, "voices");
        if (list && json_is_array(vs)) {
            size_t i;
            json_t *v;
            printf("voices:");
            json_array_foreach(vs, i, v) printf(" %s", json_string_value(v));
            printf("\n");
        }
    }
    status = CLI_EXIT_OK;
out:
    json_decref(body);
    cli__resp_destroy(&resp);
    free(pos);
    return status;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int cli__cmd_say(cli__ctx_t *ctx, int argc, char **argv)
{
    const char *voice = NULL, *rate = NULL, *pitch = NULL, *volume = NULL, *out_path = NULL;
    bool ssml = false;
    const cli__opt_t opts[] = {{"voice", 0, CLI__VALUE, &voice},
                               {"rate", 0, CLI__VALUE, &rate},
                               {"pitch", 0, CLI__VALUE, &pitch},
                               {"volume", 0, CLI__VALUE, &volume},
                               {"output", 'o', CLI__VALUE, &out_path},
                               {"ssml", 0, CLI__FLAG, &ssml},
                               {0}};
    char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, status = CLI_EXIT_FAIL;
    json_t *body = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    cli__resp_t resp;
    cli__resp_init(&resp);
    int rc = cli__parse_opts("say", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP) {
        fputs(say_help, stdout);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (rc < 0) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (npos != 1) {
        status = cli__usage_error("say", npos ? "one TEXT only (quote it)" : "TEXT is missing");
        goto out;
    }
    if (!out_path) {
        status = cli__usage_error("say", "-o FILE.wav or -o FILE.ogg is missing");
        goto out;
    }
    const char *format = ends_with(out_path, ".wav")                                 ? "wav"
                         : ends_with(out_path, ".ogg") || ends_with(out_path, ".opus") ? "ogg"
                                                                                      : NULL;
    if (!format) {
        status = cli__usage_error("say", "FILE must end in .wav, .ogg or .opus");
        goto out;
    }
    body = json_pack("{s:s, s:s, s:b}", "text", pos[0], "format", format, "ssml", ssml);
    if (!body) {
        fprintf(stderr, "persona: TEXT is not valid UTF-8\n");
        goto out;
    }
    if ((rc = add_settings("say", body, voice, rate, pitch, volume)) != 0) {
        status = rc;
        goto out;
    }
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
    if (!(f = fdopen(fd, "wb"))) {
        fprintf(stderr, "persona: cannot open %s: %s\n", tmp, strerror(errno));
        close(fd);
        goto out;
    }
    cli__req_t req = {.method = "POST", .path = "/v1/tts", .json = body, .auth = true,
                      .download = f, .timeout_s = 600};
    if (cli__request(ctx, &req, &resp) < 0 || !cli__resp_ok(ctx, &resp, "say"))
        goto out;
    if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
        fprintf(stderr, "persona: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    rc = fclose(f);
    f = NULL;
    if (rc != 0 || rename(tmp, out_path) < 0) {
        fprintf(stderr, "persona: cannot write %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    xfree(&tmp);
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s, s:I}", "file", out_path, "format", format, "size",
                              (json_int_t)resp.downloaded);
        cli__print_json(o);
        json_decref(o);
    } else {
        printf("wrote %s (%s, %llu bytes)\n", out_path, format,
               (unsigned long long)resp.downloaded);
    }
    status = CLI_EXIT_OK;
out:
    if (f)
        fclose(f);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    json_decref(body);
    cli__resp_destroy(&resp);
    free(pos);
    return status;
}
