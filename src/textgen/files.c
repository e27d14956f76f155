/* textgen/files.c: the training data formats — JSONL fine-tuning files (OpenAI's chat and
 * prompt/completion lines, and plain "text" lines), plain .txt corpora, and the multipart/form-
 * data body that OpenAI's clients upload files with. Pure functions over bytes in memory; every
 * count and size is bounded by the caller's limits or the input's own length. */
#include "textgen/textgen.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tg_texts_destroy(tg_texts_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->texts[i]);
    free(t->texts);
    free(t->lens);
    free(t->loss_from);
    memset(t, 0, sizeof *t);
}

static void texts_push(tg_texts_t *t, size_t *cap, char *text, size_t len, size_t loss_from)
{
    if (t->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        t->texts = xrealloc(t->texts, *cap * sizeof *t->texts);
        t->lens = xrealloc(t->lens, *cap * sizeof *t->lens);
        t->loss_from = xrealloc(t->loss_from, *cap * sizeof *t->loss_from);
    }
    t->texts[t->n] = text;
    t->lens[t->n] = len;
    t->loss_from[t->n] = loss_from;
    t->n++;
}

static bool is_text(json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* One line's document and where its part to learn starts (*loss_from), or NULL with the reason
 * in why. */
static char *line_text(json_t *o, size_t *loss_from, char *why, size_t whylen)
{
    *loss_from = 0;
    if (!json_is_object(o)) {
        snprintf(why, whylen, "not a JSON object");
        return NULL;
    }
    json_t *msgs = json_object_get(o, "messages");
    if (msgs) {
        size_t n = json_array_size(msgs);
        if (!json_is_array(msgs) || n == 0 || n > 1024) {
            snprintf(why, whylen, "\"messages\" must be an array of 1 to 1024 messages");
            return NULL;
        }
        llm_message_t *m = xcalloc(n, sizeof *m);
        char *text = NULL;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(msgs, i);
            json_t *role = json_object_get(e, "role"), *content = json_object_get(e, "content");
            if (!is_text(role) || !is_text(content)) {
                snprintf(why, whylen, "messages[%zu] needs string \"role\" and \"content\"", i);
                goto done;
            }
            const char *r = json_string_value(role);
            if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")) {
                snprintf(why, whylen, "messages[%zu].role must be system, user or assistant", i);
                goto done;
            }
            m[i].role = r;
            m[i].content = json_string_value(content);
        }
        text = llm_chat_prompt(m, n, false);
        if (!text) {
            snprintf(why, whylen, "the messages could not be rendered");
            goto done;
        }
        /* The turns before the last assistant message are context: render them with the
         * assistant's header; ChatML renders message by message, so that is a prefix. */
        size_t last = n;
        while (last > 0 && strcmp(m[last - 1].role, "assistant") != 0)
            last--;
        if (last > 0) {
            char *ctx = llm_chat_prompt(m, last - 1, true);
            if (ctx && strncmp(ctx, text, strlen(ctx)) == 0)
                *loss_from = strlen(ctx);
            free(ctx);
        }
        /* The document ends at the last <|im_end|>: the template's newline after it would be
         * the one newline always followed by EOS in what is learned, and a small model then
         * answers the newline that ends "<|im_start|>assistant\n" with EOS: an empty answer. */
        size_t tl = strlen(text);
        if (tl > 0 && text[tl - 1] == '\n')
            text[tl - 1] = '\0';
    done:
        free(m);
        return text;
    }
    json_t *prompt = json_object_get(o, "prompt"), *completion = json_object_get(o, "completion");
    if (prompt || completion) {
        if (!is_text(prompt) || !is_text(completion)) {
            snprintf(why, whylen, "\"prompt\" and \"completion\" must both be strings");
            return NULL;
        }
        *loss_from = json_string_length(prompt);
        return xasprintf("%s%s", json_string_value(prompt), json_string_value(completion));
    }
    json_t *text = json_object_get(o, "text");
    if (text) {
        if (!is_text(text) || json_string_length(text) == 0) {
            snprintf(why, whylen, "\"text\" must be a non-empty string");
            return NULL;
        }
        return xstrdup(json_string_value(text));
    }
    snprintf(why, whylen, "expected \"messages\", \"prompt\"+\"completion\" or \"text\"");
    return NULL;
}

int tg_jsonl_parse(const char *data, size_t len, int max_lines, tg_texts_t *out, char *err,
                   size_t errlen)
{
    tg_texts_t t = {0};
    size_t cap = 0, lineno = 0, n_docs = 0;
    const char *p = data, *end = data + len;
    int rc = -1;
    if (len == 0 || !data) {
        snprintf(err, errlen, "the file is empty");
        goto out;
    }
    if (!core_utf8_valid(data, len)) {
        snprintf(err, errlen, "the file is not valid UTF-8 text");
        goto out;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        const char *q = p;
        p = nl ? nl + 1 : end;
        size_t k = n;
        while (k && (q[k - 1] == '\r' || q[k - 1] == ' ' || q[k - 1] == '\t'))
            k--;
        if (k == 0)
            continue;
        if (n_docs >= (size_t)max_lines) {
            snprintf(err, errlen, "line %zu: the file has more than %d lines", lineno, max_lines);
            goto out;
        }
        json_error_t jerr;
        json_t *o = json_loadb(q, k, 0, &jerr);
        if (!o) {
            snprintf(err, errlen, "line %zu: not valid JSON: %s", lineno, jerr.text);
            goto out;
        }
        char why[160];
        size_t from;
        char *text = line_text(o, &from, why, sizeof why);
        json_decref(o);
        if (!text) {
            snprintf(err, errlen, "line %zu: %s", lineno, why);
            goto out;
        }
        n_docs++;
        if (out)
            texts_push(&t, &cap, text, strlen(text), from);
        else
            free(text);
    }
    if (n_docs == 0) {
        snprintf(err, errlen, "the file has no lines");
        goto out;
    }
    rc = 0;
out:
    if (rc == 0 && out)
        *out = t;
    else
        tg_texts_destroy(&t);
    return rc;
}

int tg_text_split(const char *data, size_t len, tg_texts_t *out, char *err, size_t errlen)
{
    tg_texts_t t = {0};
    size_t cap = 0;
    const char *p = data, *end = data + len;
    /* A document is a run of lines without a blank one between them. */
    while (p && p < end) {
        while (p < end && (*p == '\n' || *p == '\r'))
            p++;
        const char *start = p, *stop = p;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *le = nl ? nl : end;
            bool blank = true;
            for (const char *c = p; c < le; c++)
                if (*c != ' ' && *c != '\t' && *c != '\r')
                    blank = false;
            if (blank)
                break;
            stop = le;
            p = nl ? nl + 1 : end;
        }
        if (stop > start) {
            size_t n = (size_t)(stop - start);
            texts_push(&t, &cap, xstrndup(start, n), n, 0);
        }
        if (p < end)
            p++;
    }
    if (t.n == 0) {
        snprintf(err, errlen, "the file has no text");
        return -1;
    }
    *out = t;
    return 0;
}

/* ======================================================================================
 * multipart/form-data (RFC 7578)
 * ====================================================================================== */

/* The value of param (e.g. "name") in a header value like `form-data; name="file"; filename="a"`.
 * Returns a pointer into h and its length, or NULL. */
static const char *header_param(const char *h, size_t hlen, const char *param, size_t *vlen)
{
    size_t pn = strlen(param);
    for (size_t i = 0; i + pn + 1 < hlen; i++) {
        if ((i == 0 || h[i - 1] == ';' || h[i - 1] == ' ') && !strncasecmp(h + i, param, pn) &&
            h[i + pn] == '=') {
            const char *v = h + i + pn + 1, *e = h + hlen;
            if (v < e && *v == '"') {
                v++;
                const char *q = memchr(v, '"', (size_t)(e - v));
                if (!q)
                    return NULL;
                *vlen = (size_t)(q - v);
                return v;
            }
            const char *q = v;
            while (q < e && *q != ';' && *q != ' ')
                q++;
            *vlen = (size_t)(q - v);
            return v;
        }
    }
    return NULL;
}

int tg_multipart_parse(const char *content_type, const char *body, size_t len, tg_multipart_t *out,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t blen = 0;
    const char *b = content_type ? header_param(content_type, strlen(content_type), "boundary",
                                                &blen)
                                 : NULL;
    if (!b || blen == 0 || blen > 70) {
        snprintf(err, errlen, "the multipart Content-Type has no valid boundary");
        return -1;
    }
    char delim[80];
    int dlen = snprintf(delim, sizeof delim, "\r\n--%.*s", (int)blen, b);
    const char *end = body + len, *p;
    /* The first boundary may open the body (no CRLF before it) or follow a preamble. */
    if (len >= (size_t)dlen - 2 && !memcmp(body, delim + 2, (size_t)dlen - 2))
        p = body + dlen - 2;
    else {
        p = len ? memmem(body, len, delim, (size_t)dlen) : NULL;
        if (!p) {
            snprintf(err, errlen, "the multipart body has no boundary");
            return -1;
        }
        p += dlen;
    }
    for (int parts = 0;; parts++) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* the closing boundary */
        if (parts >= 16) {
            snprintf(err, errlen, "the multipart body has too many parts");
            return -1;
        }
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            snprintf(err, errlen, "the multipart body is truncated or malformed");
            return -1;
        }
        p += 2;
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend || hend - p > 8192) {
            snprintf(err, errlen, "a multipart part has no end of headers");
            return -1;
        }
        const char *name = NULL, *fname = NULL;
        size_t name_len = 0, fname_len = 0;
        for (const char *h = p; h < hend;) {
            const char *le = memmem(h, (size_t)(hend + 2 - h), "\r\n", 2);
            if (!le)
                le = hend;
            static const char cd[] = "content-disposition:";
            if ((size_t)(le - h) > sizeof cd - 1 && !strncasecmp(h, cd, sizeof cd - 1)) {
                name = header_param(h + sizeof cd - 1, (size_t)(le - h) - (sizeof cd - 1), "name",
                                    &name_len);
                fname = header_param(h + sizeof cd - 1, (size_t)(le - h) - (sizeof cd - 1),
                                     "filename", &fname_len);
            }
            h = le + 2;
        }
        const char *content = hend + 4;
        const char *next = content <= end ? memmem(content, (size_t)(end - content), delim,
                                                   (size_t)dlen)
                                          : NULL;
        if (!next) {
            snprintf(err, errlen, "the multipart body is truncated (no closing boundary)");
            return -1;
        }
        if (name && name_len == 7 && !memcmp(name, "purpose", 7)) {
            out->purpose = content;
            out->purpose_len = (size_t)(next - content);
        } else if (name && name_len == 4 && !memcmp(name, "file", 4)) {
            out->file = content;
            out->file_len = (size_t)(next - content);
            out->filename = fname;
            out->filename_len = fname ? fname_len : 0;
        }
        p = next + dlen;
    }
    if (!out->file) {
        snprintf(err, errlen, "the multipart body has no \"file\" part");
        return -1;
    }
    return 0;
}
