/* cli devices: `persona devices add NAME [--kind desktop|mobile]` (prints the new device's
 * token, which the server shows only once), `devices list` and `devices revoke ID`. */
#include <string.h>

#include "cli/internal.h"

static const char devices_help[] =
    "Usage: persona devices [list]                         list the account's devices\n"
    "       persona devices add NAME [--kind desktop|mobile] add a device (default desktop)\n"
    "                                                      and print its token, shown once\n"
    "       persona devices revoke ID                      revoke a device; its token stops\n"
    "                                                      working at once\n";

static int devices_list(cli__ctx_t *ctx) {
    cli__resp_t resp;
    cli__resp_init(&resp);
    int status = CLI_EXIT_FAIL;
    if (cli__call(ctx, "GET", "/v1/devices", NULL, true, &resp) < 0)
        goto out;
    json_t *devs = json_object_get(resp.json, "devices");
    if (!json_is_array(devs)) {
        fprintf(stderr, "persona: the server's device list has no 'devices' array\n");
        goto out;
    }
    if (ctx->json) {
        cli__print_json(resp.json);
        status = CLI_EXIT_OK;
        goto out;
    }
    printf("%-6s %-28s %-8s %-16s %-16s %s\n", "ID", "NAME", "KIND", "CREATED", "LAST SEEN",
           "STATE");
    size_t i;
    json_t *d;
    json_array_foreach(devs, i, d) {
        char name[128], kind[16], created[64], seen[64];
        const char *state = json_is_true(json_object_get(d, "revoked"))   ? "revoked"
                            : json_is_true(json_object_get(d, "current")) ? "active (this one)"
                                                                          : "active";
        printf("%-6lld %-28s %-8s %-16s %-16s %s\n", (long long)cli__jint(d, "id", 0),
               cli__clean(cli__jstr(d, "name", ""), 28, name, sizeof name),
               cli__clean(cli__jstr(d, "kind", "?"), 8, kind, sizeof kind),
               cli__human_time(cli__jint(d, "created_at", 0), created, sizeof created),
               cli__human_time(cli__jint(d, "last_seen_at", 0), seen, sizeof seen), state);
    }
    status = CLI_EXIT_OK;
out:
    cli__resp_destroy(&resp);
    return status;
}

static int devices_add(cli__ctx_t *ctx, const char *name, const char *kind) {
    cli__resp_t resp;
    cli__resp_init(&resp);
    int status = CLI_EXIT_FAIL;
    json_t *body = json_pack("{s:s, s:s}", "name", name, "kind", kind);
    if (!body) {
        fprintf(stderr, "persona: the device name must be UTF-8\n");
        goto out;
    }
    int rc = cli__call(ctx, "POST", "/v1/devices", body, true, &resp);
    json_decref(body);
    if (rc < 0)
        goto out;
    if (ctx->json) {
        cli__print_json(resp.json);
    } else {
        char clean[128];
        printf("added device %lld %s (%s)\n", (long long)cli__jint(resp.json, "device_id", 0),
               cli__clean(cli__jstr(resp.json, "name", name), 0, clean, sizeof clean),
               cli__jstr(resp.json, "kind", kind));
        printf("token: %s\n", cli__jstr(resp.json, "token", "?"));
        fflush(stdout);
        fprintf(stderr, "persona: the token is shown only this once; keep it now\n");
    }
    status = CLI_EXIT_OK;
out:
    cli__resp_destroy(&resp);
    return status;
}

static int devices_revoke(cli__ctx_t *ctx, uint64_t id) {
    char path[64];
    cli__resp_t resp;
    cli__resp_init(&resp);
    snprintf(path, sizeof path, "/v1/devices/%llu", (unsigned long long)id);
    int rc = cli__call(ctx, "DELETE", path, NULL, true, &resp);
    cli__resp_destroy(&resp);
    if (rc < 0)
        return CLI_EXIT_FAIL;
    if (ctx->json)
        printf("{\"id\":%llu,\"revoked\":true}\n", (unsigned long long)id);
    else
        printf("revoked device %llu\n", (unsigned long long)id);
    return CLI_EXIT_OK;
}

int cli__cmd_devices(cli__ctx_t *ctx, int argc, char **argv) {
    const char *kind = NULL;
    const cli__opt_t opts[] = {{"kind", 'k', CLI__VALUE, &kind}, {0}};
    char *pos[argc + 1];
    int npos;
    int rc = cli__parse_opts("devices", argc, argv, opts, false, pos, &npos);
    if (rc == CLI__HELP)
        return fputs(devices_help, stdout), CLI_EXIT_OK;
    if (rc < 0)
        return CLI_EXIT_USAGE;
    const char *sub = npos > 0 ? pos[0] : "list";
    if (kind && strcmp(sub, "add") != 0)
        return cli__usage_error("devices", "--kind goes with 'devices add'");

    if (strcmp(sub, "list") == 0) {
        if (npos > 1)
            return cli__usage_error("devices", "unexpected argument '%s'", pos[1]);
        return devices_list(ctx);
    }
    if (strcmp(sub, "add") == 0) {
        if (npos != 2 || !*pos[1])
            return cli__usage_error("devices", "usage: persona devices add NAME [--kind K]");
        if (!kind)
            kind = "desktop";
        if (strcmp(kind, "desktop") != 0 && strcmp(kind, "mobile") != 0)
            return cli__usage_error("devices", "--kind must be desktop or mobile, not '%s'",
                                    kind);
        return devices_add(ctx, pos[1], kind);
    }
    if (strcmp(sub, "revoke") == 0 || strcmp(sub, "rm") == 0) {
        uint64_t id;
        if (npos != 2)
            return cli__usage_error("devices", "usage: persona devices revoke ID");
        if (cli__parse_id(pos[1], "device id", &id) < 0)
            return CLI_EXIT_USAGE;
        return devices_revoke(ctx, id);
    }
    return cli__usage_error("devices", "unknown subcommand '%s' (list, add or revoke)", sub);
}
