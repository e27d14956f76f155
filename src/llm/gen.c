/* llm generation: the ChatML prompt and the step-wise generator (prompt, then one token per
 * step) with the text rules a streaming client needs.
 *
 * Text pipeline of a step: the sampled token's bytes (control tokens: none) join `raw`; its
 * UTF-8-complete part moves, cleaned, to `pend` (invalid bytes become U+FFFD, a character split
 * across tokens waits in `raw`); the part of `pend` that cannot be the start of a stop string is
 * emitted, the rest waits. A stop string found in `pend` ends the generation: the text before it
 * is emitted, the string and anything after are dropped. So all text handed out is valid UTF-8.
 *
 * The prompt is evaluated LLM_GEN_PROMPT_CHUNK tokens per step (steps with no text), the step
 * that finishes it also samples the first token; every later step evaluates the last token and
 * samples the next.
 *
 * States: RUNNING --(EOS / <|im_end|> / <|im_start|> / stop string)--> STOP;
 *         RUNNING --(max_tokens / context full)--> LENGTH. A final state flushes what was held
 * back (an unfinished character becomes U+FFFD) and stays; later steps return it with no text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/internal.h"

/* ================================ chat template ================================ */

char *llm_chat_prompt(const llm_message_t *msgs, size_t n, bool add_assistant)
{
    core_buf_t b;
    core_buf_init(&b);
    for (size_t i = 0; i < n; i++)
        core_buf_printf(&b, "<|im_start|>%s\n%s<|im_end|>\n", msgs[i].role ? msgs[i].role : "user",
                        msgs[i].content ? msgs[i].content : "");
    if (add_assistant)
        core_buf_puts(&b, "<|im_start|>assistant\n");
    return core_buf_steal(&b);
}

/* ================================ UTF-8 ================================ */

static const char llm_fffd[] = "\xEF\xBF\xBD";

void llm__utf8_clean(const char *raw, size_t len, bool flush, core_buf_t *out, size_t *held)
{
    const uint8_t *s = (const uint8_t *)raw;
    size_t i = 0;
    *held = 0;
    while (i < len) {
        uint8_t b = s[i];
        if (b < 0x80) {
            core_buf_append(out, s + i, 1);
            i++;
            continue;
        }
        size_t n = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
        if (n == 0) {
            core_buf_append(out, llm_fffd, 3);
            i++;
            continue;
        }
        /* The second byte's range excludes overlongs, surrogates and > U+10FFFF. */
        uint8_t lo = 0x80, hi = 0xBF;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
        else if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
        size_t k = 1;
        while (k < n && i + k < len) {
            uint8_t cb = s[i + k];
            if (k == 1 ? (cb < lo || cb > hi) : (cb < 0x80 || cb > 0xBF))
                break;
            k++;
        }
        if (k == n) {
            core_buf_append(out, s + i, n);
            i += n;
        } else if (i + k == len && !flush) {
            *held = len - i; /* a valid start that the next token may finish */
            return;
        } else {
            core_buf_append(out, llm_fffd, 3);
            i += k;
        }
    }
}

/* ================================ generator ================================ */

/* Files of other tools often claim contexts of 128K positions; a CPU generator caps its cache so
 * that one request cannot take gigabytes (shape C: 1 MiB of cache per 16 positions). */
#define LLM_GEN_MAX_CTX 8192
/* Prompt tokens evaluated per step: one micro-batch of llm_eval, so nothing is lost to chunking. */
#define LLM_GEN_PROMPT_CHUNK 256

struct llm_gen {
    const llm_model_t *m;
    llm_gen_params_t p;
    size_t max_stop; /* longest stop string */
    llm_ctx_t *ctx;
    llm_sampler_t *smp;
    float *logits;  /* [V] */
    int32_t *hist;  /* [T]: prompt, then completion */
    size_t n_hist, n_prompt;
    int n_completion;
    int eos, im_end, im_start; /* im_start: the model begins another message, so its own is over */
    size_t n_done;  /* prompt tokens in the cache */
    int state;      /* llm_gen_state_t */
    int32_t last;   /* sampled, not yet in the cache */
    core_buf_t raw; /* bytes of an unfinished character */
    core_buf_t pend;/* clean text that may start a stop string */
    core_buf_t out; /* this step's text */
};

int llm_gen_new(const llm_model_t *m, const char *prompt, size_t len, const llm_gen_params_t *p,
                llm_gen_t **out, char *err, size_t errlen)
{
    int rc = -1;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    llm_gen_t *g = xcalloc(1, sizeof *g);
    *out = NULL;
    g->m = m;
    g->p = *p;
    core_buf_init(&g->raw);
    core_buf_init(&g->pend);
    core_buf_init(&g->out);
    /* Allocated now, so text handed out is never NULL and no step allocates for small text. */
    core_buf_append(&g->raw, "", 0);
    core_buf_append(&g->pend, "", 0);
    core_buf_append(&g->out, "", 0);
    for (size_t i = 0; i < p->n_stop; i++) {
        size_t sl = p->stop[i] ? strlen(p->stop[i]) : 0;
        if (sl > g->max_stop)
            g->max_stop = sl;
    }
    int n_ctx = m->c.n_ctx < LLM_GEN_MAX_CTX ? m->c.n_ctx : LLM_GEN_MAX_CTX;
    if (llm_ctx_new(m, n_ctx, &g->ctx) || llm_sampler_new(&p->sampling, m->c.n_vocab, &g->smp) ||
        !(g->logits = malloc((size_t)m->c.n_vocab * sizeof *g->logits)) ||
        !(g->hist = malloc((size_t)llm_ctx_size(g->ctx) * sizeof *g->hist))) {
        snprintf(err, errlen, "out of memory for a context of %d tokens", n_ctx);
        goto out;
    }
    if (tok_encode(m->tok, prompt, len, p->parse_special, &ids, &n_ids)) {
        snprintf(err, errlen, "out of memory tokenizing the prompt");
        goto out;
    }
    size_t n = n_ids + (tok_add_bos(m->tok) && tok_bos(m->tok) >= 0 ? 1 : 0);
    int T = llm_ctx_size(g->ctx);
    if (n == 0) {
        snprintf(err, errlen, "empty prompt");
        goto out;
    }
    /* At least one slot must stay free for the answer. */
    if (n >= (size_t)T) {
        snprintf(err, errlen, "prompt is %zu tokens, the context holds %d", n, T);
        goto out;
    }
    if (n > n_ids)
        g->hist[g->n_hist++] = tok_bos(m->tok);
    memcpy(g->hist + g->n_hist, ids, n_ids * sizeof *ids);
    g->n_hist += n_ids;
    g->n_prompt = g->n_hist;
    g->eos = tok_eos(m->tok);
    g->im_end = tok_find(m->tok, "<|im_end|>");
    g->im_start = tok_find(m->tok, "<|im_start|>");
    *out = g;
    g = NULL;
    rc = 0;
out:
    free(ids);
    llm_gen_free(&g);
    return rc;
}

void llm_gen_free(llm_gen_t **pg)
{
    llm_gen_t *g = pg ? *pg : NULL;
    if (!g)
        return;
    llm_ctx_free(&g->ctx);
    llm_sampler_free(&g->smp);
    free(g->logits);
    free(g->hist);
    core_buf_destroy(&g->raw);
    core_buf_destroy(&g->pend);
    core_buf_destroy(&g->out);
    free(g);
    *pg = NULL;
}

int llm_gen_prompt_tokens(const llm_gen_t *g) { return (int)g->n_prompt; }
int llm_gen_completion_tokens(const llm_gen_t *g) { return g->n_completion; }

/* Emits pend up to the earliest stop string (true: one was found) or, when not final, up to the
 * longest suffix that could still grow into one. */
static bool llm_gen_release(llm_gen_t *g, bool final)
{
    const char *s = g->pend.data;
    size_t n = g->pend.len, cut = n;
    bool hit = false;
    for (size_t i = 0; i < g->p.n_stop; i++) {
        const char *st = g->p.stop[i];
        size_t sl = st ? strlen(st) : 0;
        if (sl == 0 || sl > n)
            continue;
        const char *f = memmem(s, n, st, sl);
        if (f && (size_t)(f - s) < cut) {
            cut = (size_t)(f - s);
            hit = true;
        }
    }
    if (!hit && !final) {
        size_t hold = 0;
        for (size_t k = g->max_stop > n ? n : g->max_stop; k > 0 && !hold; k--)
            for (size_t i = 0; i < g->p.n_stop; i++) {
                const char *st = g->p.stop[i];
                if (st && strlen(st) > k && memcmp(s + n - k, st, k) == 0) {
                    hold = k;
                    break;
                }
            }
        cut = n - hold;
    }
    /* A stop string that is not valid UTF-8 could cut inside a character: back to its start, so
     * what goes out stays valid. */
    while (cut > 0 && cut < n && ((uint8_t)s[cut] & 0xC0) == 0x80)
        cut--;
    core_buf_append(&g->out, s, cut);
    if (hit || final) {
        core_buf_reset(&g->pend);
    } else {
        memmove(g->pend.data, s + cut, n - cut);
        g->pend.len = n - cut;
        g->pend.data[g->pend.len] = '\0';
    }
    return hit;
}

/* Moves raw's complete characters into pend. */
static void llm_gen_clean(llm_gen_t *g, bool flush)
{
    size_t held;
    llm__utf8_clean(g->raw.data, g->raw.len, flush, &g->pend, &held);
    memmove(g->raw.data, g->raw.data + g->raw.len - held, held);
    g->raw.len = held;
    g->raw.data[held] = '\0';
}

static int llm_gen_finish(llm_gen_t *g, int state)
{
    llm_gen_clean(g, true);
    llm_gen_release(g, true);
    g->state = state;
    return state;
}

int llm_gen_step(llm_gen_t *g, nn_pool_t *pool, const char **text, size_t *len)
{
    core_buf_reset(&g->out);
    *text = g->out.data;
    *len = 0;
    if (g->state != LLM_GEN_RUNNING)
        return g->state;
    if (g->n_done < g->n_prompt) {
        /* The prompt goes in pieces, so a scheduler stepping several generations in turn is
         * never held up by one long prompt; the logits of its last token give the first answer
         * token in the same step. */
        size_t k = g->n_prompt - g->n_done;
        k = k < LLM_GEN_PROMPT_CHUNK ? k : LLM_GEN_PROMPT_CHUNK;
        bool last = g->n_done + k == g->n_prompt;
        if (llm_eval(g->ctx, pool, g->hist + g->n_done, k, last ? g->logits : NULL))
            return -1;
        g->n_done += k;
        if (!last)
            return LLM_GEN_RUNNING;
    } else if (llm_eval(g->ctx, pool, &g->last, 1, g->logits)) {
        return -1;
    }
    int32_t t = llm_sample(g->smp, g->logits, g->hist, g->n_hist);
    g->last = t;
    g->hist[g->n_hist++] = t;
    g->n_completion++;
    int state = LLM_GEN_RUNNING;
    if (t == g->eos || t == g->im_end || t == g->im_start) {
        state = llm_gen_finish(g, LLM_GEN_STOP);
    } else {
        if (!tok_is_control(g->m->tok, t)) {
            size_t pl;
            const char *piece = tok_piece(g->m->tok, t, &pl);
            core_buf_append(&g->raw, piece, pl);
        }
        llm_gen_clean(g, false);
        if (llm_gen_release(g, false)) {
            core_buf_reset(&g->raw);
            state = g->state = LLM_GEN_STOP;
        } else if ((g->p.max_tokens > 0 && g->n_completion >= g->p.max_tokens) ||
                   llm_ctx_pos(g->ctx) >= llm_ctx_size(g->ctx) ||
                   g->n_hist >= (size_t)llm_ctx_size(g->ctx)) {
            /* No room to evaluate t: this was the last token. */
            state = llm_gen_finish(g, LLM_GEN_LENGTH);
        }
    }
    *text = g->out.data;
    *len = g->out.len;
    return state;
}
