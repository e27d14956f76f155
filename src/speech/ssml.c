/* speech ssml: the validator of the SSML subset we let through to espeak-ng (speech.h lists it).
 * espeak-ng's own SSML reader accepts much more (<audio src>, <voice>, <say-as>, <mark>) and
 * reports nothing on malformed markup, so everything outside the subset is refused here, with
 * the byte offset of the first problem. Pure function: no state, any thread. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speech/speech.h"

#define SSML_MAX_DEPTH 32
#define SSML_MAX_BREAK_MS 10000

typedef struct ssml_cur {
    const char *s;
    size_t len, i;
    char *err;
    size_t errcap;
} ssml_cur_t;

static int fail(ssml_cur_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ssml_cur_t *c, const char *fmt, ...)
{
    if (c->err && c->errcap) {
        int k = snprintf(c->err, c->errcap, "SSML at byte %zu: ", c->i);
        if (k >= 0 && (size_t)k < c->errcap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + k, c->errcap - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return SPEECH_ESSML;
}

static bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }
static bool is_name(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == ':';
}

static bool in_list(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(v, *list))
            return true;
    return false;
}

/* "[+-]?digits[.digits]" followed exactly by unit; *value gets the number. */
static bool number_with(const char *v, const char *unit, bool sign_ok, double *value)
{
    const char *p = v;
    if (*p == '+' || *p == '-') {
        if (!sign_ok)
            return false;
        p++;
    }
    if (!(*p >= '0' && *p <= '9'))
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (strcmp(p, unit) != 0)
        return false;
    *value = strtod(v, NULL);
    return true;
}

static bool break_time_ok(const char *v)
{
    double x;
    if (number_with(v, "ms", false, &x))
        return x <= SSML_MAX_BREAK_MS;
    if (number_with(v, "s", false, &x))
        return x * 1000 <= SSML_MAX_BREAK_MS;
    return false;
}

static bool prosody_ok(const char *attr, const char *v)
{
    static const char *const rates[] = {"x-slow", "slow", "medium", "fast", "x-fast", "default",
                                        NULL};
    static const char *const pitches[] = {"x-low", "low", "medium", "high", "x-high", "default",
                                          NULL};
    static const char *const volumes[] = {"silent", "x-soft", "soft", "medium", "loud",
                                          "x-loud", "default", NULL};
    double x;
    const char *const *kw = !strcmp(attr, "rate") ? rates : !strcmp(attr, "pitch") ? pitches
                                                                                   : volumes;
    return in_list(v, kw) || (number_with(v, "%", true, &x) && x >= -100 && x <= 1000);
}

/* Checks one attribute of element el. */
static int check_attr(ssml_cur_t *c, const char *el, const char *name, const char *v)
{
    if (!strcmp(el, "break") && !strcmp(name, "time")) {
        if (!break_time_ok(v))
            return fail(c, "<break time=\"%s\">: expected e.g. \"250ms\" or \"1.5s\", at most "
                           "10 s", v);
        return 0;
    }
    if (!strcmp(el, "emphasis") && !strcmp(name, "level")) {
        static const char *const levels[] = {"strong", "moderate", "reduced", "none", NULL};
        if (!in_list(v, levels))
            return fail(c, "<emphasis level=\"%s\">: expected strong, moderate, reduced or none",
                        v);
        return 0;
    }
    if (!strcmp(el, "prosody") &&
        (!strcmp(name, "rate") || !strcmp(name, "pitch") || !strcmp(name, "volume"))) {
        if (!prosody_ok(name, v))
            return fail(c, "<prosody %s=\"%s\">: expected a keyword or a signed percentage like "
                           "\"+20%%\"", name, v);
        return 0;
    }
    return fail(c, "attribute '%s' is not allowed on <%s>", name, el);
}

/* Reads an element name at c->i into out. */
static int read_name(ssml_cur_t *c, char *out, size_t cap)
{
    size_t k = 0;
    while (c->i < c->len && is_name(c->s[c->i])) {
        if (k + 1 >= cap)
            return fail(c, "name too long");
        out[k++] = c->s[c->i++];
    }
    out[k] = '\0';
    if (k == 0)
        return fail(c, "expected a name");
    return 0;
}

static void skip_blanks(ssml_cur_t *c)
{
    while (c->i < c->len && is_blank(c->s[c->i]))
        c->i++;
}

/* An entity at c->i ('&'): only the five XML ones. */
static int check_entity(ssml_cur_t *c)
{
    static const char *const ents[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
    for (size_t k = 0; k < sizeof ents / sizeof ents[0]; k++) {
        size_t n = strlen(ents[k]);
        if (c->len - c->i >= n && !memcmp(c->s + c->i, ents[k], n)) {
            c->i += n;
            return 0;
        }
    }
    return fail(c, "'&' must start &lt; &gt; &amp; &quot; or &apos; (write &amp; for '&')");
}

int speech_ssml_check(const char *text, size_t len, char *err, size_t errcap)
{
    static const char *const elements[] = {"speak", "break", "emphasis", "prosody", NULL};
    ssml_cur_t c = {.s = text, .len = len, .err = err, .errcap = errcap};
    char stack[SSML_MAX_DEPTH][16];
    int depth = 0;
    bool seen_speak = false;
    if (err && errcap)
        err[0] = '\0';
    if (!text && len)
        return fail(&c, "no text");
    while (c.i < len) {
        char ch = text[c.i];
        if (ch == '\0')
            return fail(&c, "NUL byte");
        if (ch == '&') {
            int rc = check_entity(&c);
            if (rc < 0)
                return rc;
            continue;
        }
        if (ch == '>')
            return fail(&c, "stray '>' (write &gt;)");
        if (ch != '<') {
            c.i++;
            continue;
        }
        size_t tag_at = c.i++;
        if (c.i >= len)
            return fail(&c, "truncated tag");
        if (text[c.i] == '!' || text[c.i] == '?')
            return fail(&c, "comments, CDATA, DOCTYPE and processing instructions are not "
                            "allowed");
        bool closing = text[c.i] == '/';
        if (closing)
            c.i++;
        char name[16];
        int rc = read_name(&c, name, sizeof name);
        if (rc < 0)
            return rc;
        if (!in_list(name, elements)) {
            c.i = tag_at;
            return fail(&c, "element <%s> is not allowed (allowed: speak, break, emphasis, "
                            "prosody)", name);
        }
        if (closing) {
            skip_blanks(&c);
            if (c.i >= len || text[c.i] != '>')
                return fail(&c, "expected '>' after </%s", name);
            c.i++;
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                return fail(&c, "</%s> closes nothing open", name);
            depth--;
            continue;
        }
        if (!strcmp(name, "speak")) {
            if (seen_speak || depth > 0) {
                c.i = tag_at;
                return fail(&c, "<speak> may only be the outermost element, once");
            }
            seen_speak = true;
        } else if (seen_speak && depth == 0) {
            c.i = tag_at;
            return fail(&c, "content after </speak>");
        }
        bool has_time = false, self_closed = false;
        for (;;) {
            size_t before = c.i;
            skip_blanks(&c);
            if (c.i >= len)
                return fail(&c, "truncated tag <%s", name);
            if (text[c.i] == '>') {
                c.i++;
                break;
            }
            if (text[c.i] == '/') {
                c.i++;
                if (c.i >= len || text[c.i] != '>')
                    return fail(&c, "expected '>' after '/'");
                c.i++;
                self_closed = true;
                break;
            }
            if (c.i == before)
                return fail(&c, "expected a blank before an attribute");
            char attr[16];
            if ((rc = read_name(&c, attr, sizeof attr)) < 0)
                return rc;
            skip_blanks(&c);
            if (c.i >= len || text[c.i] != '=')
                return fail(&c, "expected '=' after %s", attr);
            c.i++;
            skip_blanks(&c);
            if (c.i >= len || (text[c.i] != '"' && text[c.i] != '\''))
                return fail(&c, "expected a quoted value for %s", attr);
            char q = text[c.i++];
            char val[33];
            size_t k = 0;
            while (c.i < len && text[c.i] != q) {
                if (k + 1 >= sizeof val)
                    return fail(&c, "value of %s too long", attr);
                val[k++] = text[c.i++];
            }
            if (c.i >= len)
                return fail(&c, "unterminated value of %s", attr);
            c.i++;
            val[k] = '\0';
            if ((rc = check_attr(&c, name, attr, val)) < 0)
                return rc;
            if (!strcmp(attr, "time"))
                has_time = true;
        }
        if (!strcmp(name, "break")) {
            if (!self_closed)
                return fail(&c, "<break> must be written <break .../>");
            (void)has_time; /* a bare <break/> is a medium pause */
            continue;
        }
        if (self_closed)
            continue; /* <emphasis/> and friends: empty, harmless */
        if (depth >= SSML_MAX_DEPTH)
            return fail(&c, "elements nested deeper than %d", SSML_MAX_DEPTH);
        snprintf(stack[depth++], sizeof stack[0], "%s", name);
    }
    if (depth > 0)
        return fail(&c, "<%s> is not closed", stack[depth - 1]);
    return 0;
}
