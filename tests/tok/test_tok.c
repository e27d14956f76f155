/* test_tok: unit tests of src/tok — the GPT-2 pre-tokenizer on hand-checked splits (contractions,
 * numbers, white-space runs, Unicode scripts, invalid UTF-8), BPE training (a corpus small enough
 * to work out the merges by hand; determinism; bounds), known encodings, exact round trips of
 * 10,000 random byte strings and of text in several scripts through a trained tokenizer, the same
 * reloaded from GGUF, and a SentencePiece-style tokenizer written to GGUF here (byte tokens,
 * scores), special-token splitting, tok_to_gguf -> tok_from_gguf giving identical ids, damaged
 * tokenizer metadata failing cleanly, and long inputs staying fast.
 *
 * Files go under $PERSONA_TEST_TMP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "gguf/gguf.h"
#include "tok/internal.h"
#include "tok/tok.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static char *g_dir;
static tok_t *g_trained; /* trained once on the corpus below, shared by several tests */
static tok_t *g_spm;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

/* Text in several scripts (also the training corpus's non-English part). */
static const char *const SAMPLES[] = {
    "Hello, world! It's a fine day; we'll see what they've done.",
    "The quick brown fox jumps over the lazy dog 1234567890 times.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "日本語のテキストと中文文本，还有한국어 텍스트도 있습니다。",
    "Emoji: 😀🎉👍🏽 and flags 🇫🇷🇯🇵, zero-width joiner 👨‍👩‍👧.",
    "العربية: مرحبا بالعالم، هذا نص تجريبي ١٢٣٤.",
    "Ελληνικά, עברית, हिन्दी, ไทย — mixed scripts\tand\ttabs\n\n  indented\r\n",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
    "   leading and trailing spaces   ",
    "\xe2\x96\x81 U+2581 itself, and <0x41> written out",
    "",
};
#define N_SAMPLES (sizeof SAMPLES / sizeof SAMPLES[0])

static const char CORPUS_EN[] =
    "Persona learns a person from the recordings that their phone submits, and lets people ask "
    "that persona questions. The answers arrive on the person's desktop machines and are spoken "
    "aloud. It is one self-hosted system written in C: a backend, a text generation service, a "
    "desktop client service and a command-line client. The upload is streamed to a "
    "content-addressed blob and a job is queued. Speech recognition turns the audio into a timed "
    "transcript that enters the persona's corpus; sampled video frames go through face "
    "detection. Training: the persona's corpus is exported to the text generation service, which "
    "fine-tunes a model on it. They'll ask, we've answered, it's done, I'm here, you're there. ";

/* ==================================================================================== */
/* helpers                                                                               */
/* ==================================================================================== */

static void roundtrip(const tok_t *t, const char *s, size_t n, bool parse_special)
{
    int32_t *ids = NULL;
    size_t nid = 0;
    char *back = NULL;
    size_t blen = 0;
    assert_int_equal(tok_encode(t, s, n, parse_special, &ids, &nid), 0);
    assert_non_null(ids);
    for (size_t i = 0; i < nid; i++)
        assert_true(ids[i] >= 0 && ids[i] < tok_vocab_size(t));
    assert_int_equal(tok_decode(t, ids, nid, false, &back, &blen), 0);
    if (blen != n || memcmp(back, s, n)) {
        print_error("round trip of %zu bytes gave %zu bytes (kind %d)\n", n, blen, tok_kind(t));
        fail();
    }
    assert_int_equal(back[blen], '\0');
    /* pieces concatenate to the same bytes (SPM: apart from the prefix spaces) */
    if (tok_kind(t) == TOK_KIND_GPT2) {
        core_buf_t b;
        core_buf_init(&b);
        for (size_t i = 0; i < nid; i++) {
            size_t pl;
            const char *p = tok_piece(t, ids[i], &pl);
            core_buf_append(&b, p, pl);
        }
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, s, n);
        core_buf_destroy(&b);
    }
    free(ids);
    free(back);
}

static size_t encode(const tok_t *t, const char *s, bool parse_special, int32_t **ids)
{
    size_t n;
    assert_int_equal(tok_encode(t, s, strlen(s), parse_special, ids, &n), 0);
    return n;
}

/* The ids of s must be exactly the tokens whose texts are listed (GGUF texts). */
static void expect_tokens(const tok_t *t, const char *s, bool parse_special, const char *const *want,
                          size_t nwant)
{
    int32_t *ids;
    size_t n = encode(t, s, parse_special, &ids);
    bool ok = n == nwant;
    for (size_t i = 0; ok && i < n; i++)
        ok = ids[i] == tok_find(t, want[i]);
    if (!ok) {
        print_error("encoding of '%s': got %zu tokens:", s, n);
        for (size_t i = 0; i < n; i++) {
            size_t pl;
            const char *p = tok_piece(t, ids[i], &pl);
            print_error(" [%d '%.*s']", ids[i], (int)pl, p);
        }
        print_error("\n");
        fail();
    }
    free(ids);
}

static char *tmp_path(const char *name)
{
    return xasprintf("%s/%s", g_dir, name);
}

static gguf_t *write_and_open(gguf_writer_t *w, const char *name)
{
    char *p = tmp_path(name);
    char err[256];
    assert_int_equal(gguf_writer_write(w, p, err, sizeof err), 0);
    gguf_t *g = NULL;
    if (gguf_open(p, &g, err, sizeof err) != 0)
        fail_msg("%s", err);
    free(p);
    return g;
}

/* ==================================================================================== */
/* pre-tokenizer                                                                        */
/* ==================================================================================== */

static int g_pre = TOK__PRE_GPT2;

static void expect_split(const char *s, size_t n, const char *const *want, size_t nwant)
{
    size_t k = 0;
    for (size_t pos = 0; pos < n; k++) {
        size_t end = tok__pretok_next_kind(g_pre, (const uint8_t *)s, n, pos);
        assert_true(end > pos && end <= n);
        if (k >= nwant || strlen(want[k]) != end - pos || memcmp(want[k], s + pos, end - pos))
            fail_msg("split of '%s': piece %zu is '%.*s', want '%s'", s, k, (int)(end - pos),
                     s + pos, k < nwant ? want[k] : "(none)");
        pos = end;
    }
    assert_int_equal(k, nwant);
}

#define SPLIT(s, ...)                                                                              \
    do {                                                                                           \
        const char *const w_[] = {__VA_ARGS__};                                                    \
        expect_split(s, sizeof(s) - 1, w_, sizeof w_ / sizeof w_[0]);                              \
    } while (0)

static void test_pretokenizer(void **state)
{
    (void)state;
    SPLIT("Hello world", "Hello", " world");
    SPLIT("I'm can't we've they're I'll he'd it's", "I", "'m", " can", "'t", " we", "'ve", " they",
          "'re", " I", "'ll", " he", "'d", " it", "'s");
    SPLIT("IT'S 'S 's", "IT", "'", "S", " '", "S", " '", "s"); /* case-sensitive, as GPT-2 */
    SPLIT("abc123 4567 x1", "abc", "123", " 4567", " x", "1");
    SPLIT("a   b", "a", "  ", " b");
    SPLIT("a \n\n b", "a", " \n\n", " b");
    SPLIT("x  ", "x", "  ");
    SPLIT("\t\tx", "\t", "\t", "x");
    SPLIT("end\n", "end", "\n");
    SPLIT("!!!hi?", "!!!", "hi", "?");
    SPLIT("don't!!'s", "don", "'t", "!!'", "s");
    SPLIT(" $3.50, ok", " $", "3", ".", "50", ",", " ok");
    SPLIT("Привет мир", "Привет", " мир");
    SPLIT("日本語テキスト です", "日本語テキスト", " です");
    SPLIT("٣٤ abc", "٣٤", " abc");       /* Arabic-Indic digits are numbers */
    SPLIT("Ⅻ½x", "Ⅻ½", "x");             /* Nl and No too */
    SPLIT("hi 😀😀!", "hi", " 😀😀!");   /* emoji are neither letters nor numbers */
    SPLIT("a\xc2\xa0" "b", "a", "\xc2\xa0", "b"); /* NBSP is white space */
    SPLIT("a\xe3\x80\x80\xe3\x80\x80" "b", "a", "\xe3\x80\x80", "\xe3\x80\x80", "b"); /* U+3000 */
    SPLIT("a\xff\xfe" "b", "a", "\xff\xfe", "b");  /* invalid bytes: one class, nothing lost */
    SPLIT("\xc3" "a", "\xc3", "a");              /* truncated sequence */
    SPLIT("x\xed\xa0\x80y", "x", "\xed\xa0\x80", "y"); /* a surrogate is three invalid bytes */
    SPLIT(" ", " ");
    SPLIT("'", "'");
    SPLIT("a'", "a", "'");
    SPLIT("\x01\x02 z", "\x01\x02", " z");
    /* NUL is a character like any other ("other" class) */
    const uint8_t nul[] = {'a', 0, 0, 'b'};
    assert_int_equal(tok__pretok_next(nul, 4, 0), 1);
    assert_int_equal(tok__pretok_next(nul, 4, 1), 3);
    assert_int_equal(tok__pretok_next(nul, 4, 3), 4);

    /* Llama 3's splitter (tokenizer.ggml.pre "llama-bpe"): digits by three, contractions in any
     * case, one non-letter glued to the word after it, line breaks apart */
    g_pre = TOK__PRE_LLAMA3;
    SPLIT("Hello WORLD'S 12345", "Hello", " WORLD", "'S", " ", "123", "45");
    SPLIT("x\r\n\n  y", "x", "\r\n\n", " ", " y");
    SPLIT("!!hello .x\t\tz", "!!", "hello", " .", "x", "\t", "\tz");
    SPLIT("a+\n\nb", "a", "+\n\n", "b");
    SPLIT("end  ", "end", "  ");
    g_pre = TOK__PRE_QWEN2;
    SPLIT("x 12345", "x", " ", "1", "2", "3", "4", "5");
    g_pre = TOK__PRE_GPT2;
}

static void test_unicode_classes(void **state)
{
    (void)state;
    assert_int_equal(tok__cp_class('a'), TOK__CLS_LETTER);
    assert_int_equal(tok__cp_class(0x416), TOK__CLS_LETTER);   /* Ж */
    assert_int_equal(tok__cp_class(0x4E2D), TOK__CLS_LETTER);  /* 中 */
    assert_int_equal(tok__cp_class(0x20000), TOK__CLS_LETTER); /* CJK extension B */
    assert_int_equal(tok__cp_class(0x0663), TOK__CLS_NUMBER);  /* ٣ */
    assert_int_equal(tok__cp_class(0x2167), TOK__CLS_NUMBER);  /* Ⅷ (Nl) */
    assert_int_equal(tok__cp_class(0x1F600), TOK__CLS_OTHER);  /* 😀 */
    assert_int_equal(tok__cp_class(0x2581), TOK__CLS_OTHER);
    assert_int_equal(tok__cp_class(0x0301), TOK__CLS_OTHER); /* combining mark (Mn) */
    assert_int_equal(tok__cp_class(0x85), TOK__CLS_SPACE);
    assert_int_equal(tok__cp_class(0x200B), TOK__CLS_OTHER); /* zero width space is not White_Space */
    assert_int_equal(tok__cp_class(0x10FFFF), TOK__CLS_OTHER);
    /* the generated tables are sorted and disjoint */
    for (size_t i = 1; i < tok__letter_ranges_n; i++)
        assert_true(tok__letter_ranges[i].lo > tok__letter_ranges[i - 1].hi);
    for (size_t i = 1; i < tok__number_ranges_n; i++)
        assert_true(tok__number_ranges[i].lo > tok__number_ranges[i - 1].hi);
    /* GPT-2's byte table: a bijection between bytes and 256 code points */
    assert_int_equal(tok__byte_cp(' '), 0x120);   /* Ġ */
    assert_int_equal(tok__byte_cp('\n'), 0x10A);  /* Ċ */
    assert_int_equal(tok__byte_cp('!'), '!');
    assert_int_equal(tok__byte_cp(0xAD), 0x143);
    for (int b = 0; b < 256; b++)
        assert_int_equal(tok__cp_byte(tok__byte_cp((uint8_t)b)), b);
    assert_int_equal(tok__cp_byte(0x20), -1);
    assert_int_equal(tok__cp_byte(0x144), -1);
}

/* ==================================================================================== */
/* training                                                                             */
/* ==================================================================================== */

static void test_train_by_hand(void **state)
{
    (void)state;
    /* words: "ab" x1, " ab" x2, " cd" x1. Pair counts: (a,b)=3, (' ',a)=2, (' ',c)=1, (c,d)=1.
     * merges: a b -> "ab"; then ' ' ab (2) -> " ab"; then the tie between (' ',c) and (c,d) goes
     * to the smaller left token, ' '; then " c" d. Nothing is left to merge after that. */
    const char *texts[] = {"ab ab ab cd"};
    size_t lens[] = {11};
    tok_t *t = NULL;
    char err[256];
    assert_int_equal(tok_train(texts, lens, 1, 256 + 3 + 100, &t, err, sizeof err), 0);
    assert_int_equal(tok_vocab_size(t), 256 + 4 + 3);
    assert_int_equal(tok_find(t, "ab"), 256);
    assert_int_equal(tok_find(t, "Ġab"), 257);
    assert_int_equal(tok_find(t, "Ġc"), 258);
    assert_int_equal(tok_find(t, "Ġcd"), 259);
    assert_int_equal(tok_find(t, "<|endoftext|>"), 260);
    assert_int_equal(tok_find(t, "<|im_start|>"), 261);
    assert_int_equal(tok_find(t, "<|im_end|>"), 262);
    assert_int_equal(tok_bos(t), 260);
    assert_int_equal(tok_eos(t), 260);
    assert_true(tok_add_bos(t));
    assert_true(tok_is_control(t, 261));
    assert_false(tok_is_control(t, 257));
    assert_false(tok_is_control(t, -1));
    assert_int_equal(tok_kind(t), TOK_KIND_GPT2);

    const char *w1[] = {"ab", "Ġab"};
    expect_tokens(t, "ab ab", false, w1, 2);
    const char *w2[] = {"Ġab", "ab"}; /* " abab": one word; a b merges first at both places */
    expect_tokens(t, " abab", false, w2, 2);
    const char *w3[] = {"Ġcd", "Ġc", "Ġ", "Ġab", "c"};
    expect_tokens(t, " cd c  abc", false, w3, 5);
    const char *w4[] = {"<|im_start|>", "ab", "<|im_end|>"};
    expect_tokens(t, "<|im_start|>ab<|im_end|>", true, w4, 3);
    int32_t *ids;
    size_t n = encode(t, "<|im_end|>", false, &ids); /* plain text without parse_special */
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++)
        assert_false(tok_is_control(t, ids[i]));
    free(ids);

    size_t pl;
    assert_memory_equal(tok_piece(t, 257, &pl), " ab", 3);
    assert_int_equal(pl, 3);
    assert_memory_equal(tok_piece(t, '\n', &pl), "\n", 1);
    tok_piece(t, 9999, &pl);
    assert_int_equal(pl, 0);
    tok_piece(t, -5, &pl);
    assert_int_equal(pl, 0);
    char *out;
    size_t olen;
    int32_t mixed[] = {261, 257, 9999, -1, 262};
    assert_int_equal(tok_decode(t, mixed, 5, false, &out, &olen), 0);
    assert_string_equal(out, "<|im_start|> ab<|im_end|>"); /* unknown ids decode to nothing */
    free(out);
    assert_int_equal(tok_decode(t, mixed, 5, true, &out, &olen), 0);
    assert_string_equal(out, " ab");
    free(out);
    assert_int_equal(tok_decode(t, NULL, 0, false, &out, &olen), 0);
    assert_int_equal(olen, 0);
    free(out);

    /* merges as GGUF stores them, in rank order */
    gguf_writer_t *w = gguf_writer_new();
    assert_int_equal(tok_to_gguf(t, w), 0);
    gguf_t *g = write_and_open(w, "hand.gguf");
    const char *want[] = {"a b", "Ġ ab", "Ġ c", "Ġc d"};
    size_t nm;
    assert_true(gguf_get_arr_str_count(g, "tokenizer.ggml.merges", &nm));
    assert_int_equal(nm, 4);
    for (size_t i = 0; i < 4; i++) {
        const char *s;
        size_t len;
        assert_true(gguf_get_arr_str(g, "tokenizer.ggml.merges", i, &s, &len));
        assert_int_equal(len, strlen(want[i]));
        assert_memory_equal(s, want[i], len);
    }
    gguf_close(&g);
    gguf_writer_free(&w);
    tok_free(&t);
    tok_free(&t); /* NULL-safe */
}

static void test_train_bounds(void **state)
{
    (void)state;
    const char *texts[] = {"some text"};
    size_t lens[] = {9};
    tok_t *t = NULL;
    char err[256] = "";
    assert_true(tok_train(texts, lens, 1, 258, &t, err, sizeof err) < 0);
    assert_null(t);
    assert_non_null(strstr(err, "vocab_size"));
    assert_true(tok_train(texts, lens, 1, 65537, &t, err, sizeof err) < 0);
    assert_null(t);
    /* the smallest vocabulary: bytes and specials only; nothing to train on is fine too */
    assert_int_equal(tok_train(texts, lens, 1, 259, &t, err, sizeof err), 0);
    assert_int_equal(tok_vocab_size(t), 259);
    roundtrip(t, "any bytes \xff\x00 at all", 20, true);
    tok_free(&t);
    assert_int_equal(tok_train(NULL, NULL, 0, 1000, &t, err, sizeof err), 0);
    assert_int_equal(tok_vocab_size(t), 259);
    tok_free(&t);
}

/* The corpus: the English paragraph above many times with variations, the samples, and license
 * texts when the system has them. */
static void corpus(const char ***texts, size_t **lens, size_t *n)
{
    static const char *const files[] = {"/usr/share/common-licenses/GPL-3",
                                        "/usr/share/common-licenses/Apache-2.0"};
    size_t cap = 64, k = 0;
    *texts = xcalloc(cap, sizeof **texts);
    *lens = xcalloc(cap, sizeof **lens);
    for (int i = 0; i < 20; i++) {
        (*texts)[k] = xasprintf("%d. %s", i * 37, CORPUS_EN);
        (*lens)[k] = strlen((*texts)[k]);
        k++;
    }
    for (size_t i = 0; i < N_SAMPLES; i++) {
        (*texts)[k] = xstrdup(SAMPLES[i]);
        (*lens)[k] = strlen(SAMPLES[i]);
        k++;
    }
    for (size_t i = 0; i < 2; i++) {
        char *buf;
        size_t len;
        if (core_read_file(files[i], 1 << 20, &buf, &len) == 0) {
            (*texts)[k] = buf;
            (*lens)[k++] = len;
        }
    }
    *n = k;
}

static void free_corpus(const char **texts, size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)texts[i]);
    free(texts);
    free(lens);
}

static void test_train_deterministic(void **state)
{
    (void)state;
    const char **texts;
    size_t *lens, n;
    corpus(&texts, &lens, &n);
    tok_t *t2 = NULL;
    char err[256];
    assert_int_equal(tok_train(texts, lens, n, 1000, &t2, err, sizeof err), 0);
    /* the same vocabulary, merges and ids: the written files are byte for byte the same */
    gguf_writer_t *w1 = gguf_writer_new(), *w2 = gguf_writer_new();
    assert_int_equal(tok_to_gguf(g_trained, w1), 0);
    assert_int_equal(tok_to_gguf(t2, w2), 0);
    char *p1 = tmp_path("det1.gguf"), *p2 = tmp_path("det2.gguf");
    assert_int_equal(gguf_writer_write(w1, p1, err, sizeof err), 0);
    assert_int_equal(gguf_writer_write(w2, p2, err, sizeof err), 0);
    char *b1, *b2;
    size_t n1, n2;
    assert_int_equal(core_read_file(p1, 1 << 26, &b1, &n1), 0);
    assert_int_equal(core_read_file(p2, 1 << 26, &b2, &n2), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    assert_int_equal(tok_vocab_size(t2), 1000);
    free(b1);
    free(b2);
    free(p1);
    free(p2);
    gguf_writer_free(&w1);
    gguf_writer_free(&w2);
    /* the texts shrink: a trained vocabulary compresses the text it was trained on */
    int32_t *ids;
    size_t nid;
    assert_int_equal(tok_encode(t2, texts[0], lens[0], false, &ids, &nid), 0);
    assert_true(nid * 3 < lens[0]);
    free(ids);
    tok_free(&t2);
    free_corpus(texts, lens, n);
}

/* ==================================================================================== */
/* round trips                                                                          */
/* ==================================================================================== */

static void random_roundtrips(const tok_t *t)
{
    char buf[200];
    for (int it = 0; it < 10000; it++) {
        size_t n = rnd() % sizeof buf;
        int mode = it % 4;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            switch (mode) {
            case 0: buf[i] = (char)r; break;                       /* any byte */
            case 1: buf[i] = (char)(0x80 | (r & 0x3F)); break;     /* lone continuation bytes */
            case 2: buf[i] = "a \0\n'\xe2\x96\x81<|>sT9\xff"[r % 15]; break; /* edge bytes */
            default: buf[i] = (char)(r % 3 ? ' ' + r % 95 : (r >> 8) & 0xFF); break;
            }
        }
        roundtrip(t, buf, n, it % 2);
    }
    for (size_t i = 0; i < N_SAMPLES; i++) {
        roundtrip(t, SAMPLES[i], strlen(SAMPLES[i]), false);
        roundtrip(t, SAMPLES[i], strlen(SAMPLES[i]), true);
    }
}

static tok_t *reload(const tok_t *t, const char *name)
{
    gguf_writer_t *w = gguf_writer_new();
    assert_int_equal(tok_to_gguf(t, w), 0);
    gguf_t *g = write_and_open(w, name);
    gguf_writer_free(&w);
    tok_t *r = NULL;
    char err[256];
    if (tok_from_gguf(g, &r, err, sizeof err) != 0)
        fail_msg("tok_from_gguf: %s", err);
    gguf_close(&g); /* the tokenizer must not depend on the file staying open */
    return r;
}

static void same_ids(const tok_t *a, const tok_t *b, const char *s, size_t n, bool ps)
{
    int32_t *x, *y;
    size_t nx, ny;
    assert_int_equal(tok_encode(a, s, n, ps, &x, &nx), 0);
    assert_int_equal(tok_encode(b, s, n, ps, &y, &ny), 0);
    assert_int_equal(nx, ny);
    assert_memory_equal(x, y, nx * sizeof *x);
    free(x);
    free(y);
}

static bool skip_pre(const char *key)
{
    return !strcmp(key, "tokenizer.ggml.pre");
}

/* A GGUF whose tokenizer.ggml.pre names Llama 3's or Qwen2's splitter gets it. */
static void test_pre_from_gguf(void **state)
{
    (void)state;
    const char *names[] = {"llama-bpe", "qwen2", "gpt-2"};
    const size_t max_digits[] = {3, 1, 99};
    gguf_writer_t *w = gguf_writer_new();
    assert_int_equal(tok_to_gguf(g_trained, w), 0);
    gguf_t *base = write_and_open(w, "pre_base.gguf");
    gguf_writer_free(&w);
    for (int k = 0; k < 3; k++) {
        w = gguf_writer_new();
        assert_int_equal(gguf_writer_copy_kv(w, base, skip_pre), 0);
        assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.pre", names[k], strlen(names[k])), 0);
        gguf_t *g = write_and_open(w, "pre.gguf");
        gguf_writer_free(&w);
        tok_t *t = NULL;
        char err[256];
        assert_int_equal(tok_from_gguf(g, &t, err, sizeof err), 0);
        gguf_close(&g);
        const char *text = "1234567890 12345 x 0987654321";
        int32_t *ids;
        size_t n = encode(t, text, false, &ids);
        size_t longest = 0;
        for (size_t i = 0; i < n; i++) {
            size_t pl;
            const char *p = tok_piece(t, ids[i], &pl);
            size_t digits = 0;
            for (size_t j = 0; j < pl; j++)
                digits += p[j] >= '0' && p[j] <= '9';
            longest = digits > longest ? digits : longest;
        }
        assert_true(longest <= max_digits[k]);
        free(ids);
        random_roundtrips(t);
        /* written back with the same name */
        w = gguf_writer_new();
        assert_int_equal(tok_to_gguf(t, w), 0);
        g = write_and_open(w, "pre2.gguf");
        gguf_writer_free(&w);
        const char *s;
        size_t len;
        assert_true(gguf_get_str(g, "tokenizer.ggml.pre", &s, &len));
        assert_int_equal(len, strlen(names[k]));
        assert_memory_equal(s, names[k], len);
        gguf_close(&g);
        tok_free(&t);
    }
    gguf_close(&base);
}

/* Llama 3 files: a word that is a token is taken whole, even where the merges do not reach it
 * (llama.cpp's ignore_merges); other splitters merge. */
static void test_llama3_whole_words(void **state)
{
    (void)state;
    const char *pres[] = {"llama-bpe", "gpt-2"};
    for (int k = 0; k < 2; k++) {
        char *texts[258];
        for (int b = 0; b < 256; b++) {
            uint8_t u[4];
            size_t ul = tok__utf8_put(tok__byte_cp((uint8_t)b), u);
            texts[b] = xstrndup((const char *)u, ul);
        }
        texts[256] = xstrdup("ab");
        texts[257] = xstrdup("Ġabc");
        const char *merges[] = {"a b"}; /* "Ġabc" is not reachable by merges */
        gguf_writer_t *w = gguf_writer_new();
        gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4);
        gguf_writer_set_str(w, "tokenizer.ggml.pre", pres[k], strlen(pres[k]));
        gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts, NULL, 258);
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 1);
        gguf_t *g = write_and_open(w, "whole.gguf");
        gguf_writer_free(&w);
        tok_t *t = NULL;
        char err[256];
        if (tok_from_gguf(g, &t, err, sizeof err) != 0)
            fail_msg("%s", err);
        gguf_close(&g);
        if (k == 0) {
            const char *want[] = {"Ġabc", "Ġ", "ab", "c", "d"};
            expect_tokens(t, " abc abcd", false, want, 5);
        } else {
            const char *want[] = {"Ġ", "ab", "c", "Ġ", "ab", "c", "d"};
            expect_tokens(t, " abc abcd", false, want, 7);
        }
        random_roundtrips(t);
        tok_free(&t);
        for (int i = 0; i < 258; i++)
            free(texts[i]);
    }
}

static void test_roundtrip_trained(void **state)
{
    (void)state;
    random_roundtrips(g_trained);
}

static void test_roundtrip_gguf_gpt2(void **state)
{
    (void)state;
    tok_t *r = reload(g_trained, "gpt2.gguf");
    assert_int_equal(tok_kind(r), TOK_KIND_GPT2);
    assert_int_equal(tok_vocab_size(r), tok_vocab_size(g_trained));
    assert_int_equal(tok_bos(r), tok_bos(g_trained));
    assert_int_equal(tok_eos(r), tok_eos(g_trained));
    assert_true(tok_add_bos(r));
    assert_int_equal(tok_find(r, "<|im_end|>"), tok_find(g_trained, "<|im_end|>"));
    assert_true(tok_is_control(r, tok_find(r, "<|im_start|>")));
    for (int i = 0; i < tok_vocab_size(r); i++) {
        size_t la, lb;
        const char *pa = tok_piece(g_trained, i, &la), *pb = tok_piece(r, i, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(pa, pb, la);
    }
    random_roundtrips(r);
    /* identical ids for everything */
    const char **texts;
    size_t *lens, n;
    corpus(&texts, &lens, &n);
    for (size_t i = 0; i < n; i++) {
        same_ids(g_trained, r, texts[i], lens[i], false);
        same_ids(g_trained, r, texts[i], lens[i], true);
        roundtrip(r, texts[i], lens[i], false); /* long ones go through the word cache */
    }
    /* a long text of repeated words: cached words must give what encoding them alone gives */
    core_buf_t long_text;
    core_buf_init(&long_text);
    for (int i = 0; i < 3000; i++)
        core_buf_puts(&long_text, SAMPLES[rnd() % N_SAMPLES]);
    roundtrip(r, long_text.data, long_text.len, true);
    int32_t *all;
    size_t n_all;
    assert_int_equal(tok_encode(r, long_text.data, long_text.len, false, &all, &n_all), 0);
    int32_t *one;
    size_t n_one = encode(r, " persona", false, &one); /* a short input: no cache */
    core_buf_reset(&long_text);
    for (int i = 0; i < 1000; i++)
        core_buf_puts(&long_text, " persona");
    free(all);
    assert_int_equal(tok_encode(r, long_text.data, long_text.len, false, &all, &n_all), 0);
    assert_int_equal(n_all, 1000 * n_one);
    for (size_t i = 0; i < n_all; i++)
        assert_int_equal(all[i], one[i % n_one]);
    free(all);
    free(one);
    core_buf_destroy(&long_text);
    free_corpus(texts, lens, n);
    char buf[128];
    for (int it = 0; it < 2000; it++) {
        size_t len = rnd() % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)rnd();
        same_ids(g_trained, r, buf, len, it % 2);
    }
    /* the keys llama.cpp reads */
    gguf_writer_t *w = gguf_writer_new();
    assert_int_equal(tok_to_gguf(r, w), 0);
    gguf_t *g = write_and_open(w, "gpt2b.gguf");
    const char *s;
    size_t len;
    bool b;
    uint32_t u;
    assert_true(gguf_get_str(g, "tokenizer.ggml.model", &s, &len) && len == 4 && !memcmp(s, "gpt2", 4));
    assert_true(gguf_get_str(g, "tokenizer.ggml.pre", &s, &len) && len == 5 && !memcmp(s, "gpt-2", 5));
    assert_true(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) && b);
    assert_true(gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) && (int)u == tok_bos(r));
    assert_true(gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) && (int)u == tok_eos(r));
    assert_true(gguf_get_str(g, "tokenizer.chat_template", &s, &len));
    const char *tmpl =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
        "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
        "'<|im_start|>assistant\\n' }}{% endif %}";
    assert_int_equal(len, strlen(tmpl));
    assert_memory_equal(s, tmpl, len);
    gguf_vtype_t et;
    size_t cnt;
    const void *data;
    assert_true(gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &cnt, &data));
    assert_true(et == GGUF_INT32 && cnt == (size_t)tok_vocab_size(r));
    assert_true(gguf_get_arr_str_count(g, "tokenizer.ggml.tokens", &cnt));
    assert_true(gguf_get_arr_str(g, "tokenizer.ggml.tokens", 32, &s, &len)); /* the byte ' ' */
    assert_int_equal(len, 2);
    assert_memory_equal(s, "Ġ", 2);
    gguf_close(&g);
    gguf_writer_free(&w);
    tok_free(&r);
}

/* ==================================================================================== */
/* SentencePiece-style                                                                  */
/* ==================================================================================== */

typedef struct {
    const char *text;
    float score;
    int32_t type;
} spm_tok_t;

static const spm_tok_t SPM_VOCAB[] = {
    {"<unk>", 0, 2},        {"<s>", 0, 3},         {"</s>", 0, 3},       {"▁", -0.5f, 1},
    {"▁t", -1, 1},          {"▁th", -2, 1},        {"▁the", -3, 1},      {"▁a", -1.5f, 1},
    {"▁▁", -5, 1},          {"h", -4, 1},          {"e", -4, 1},         {"t", -4, 1},
    {"a", -4, 1},           {"l", -4, 1},          {"o", -4, 1},         {"ll", -2.5f, 1},
    {"▁he", -2.2f, 1},      {"▁h", -1.2f, 1},      {"▁hell", -2.6f, 1},  {"▁hello", -2.7f, 1},
    {"▁hel", -2.4f, 1},     {"м", -4, 1},          {"и", -4, 1},         {"ми", -3, 1},
    {"▁ми", -3.5f, 1},      {"р", -4, 1},          {"▁мир", -3.9f, 1},   {"<0x41>x", -1, 1},
    {"<ctl>", 0, 3},        {"[user]", 0, 4},      {"unused", 0, 5},
};
#define N_SPM (sizeof SPM_VOCAB / sizeof SPM_VOCAB[0])

/* Writes the SPM vocabulary (with 256 byte tokens after the first three) to a writer. */
static void spm_keys(gguf_writer_t *w, bool byte_tokens)
{
    size_t n = N_SPM + (byte_tokens ? 256 : 0);
    char **texts = xcalloc(n, sizeof *texts);
    float *scores = xcalloc(n, sizeof *scores);
    int32_t *types = xcalloc(n, sizeof *types);
    size_t k = 0;
    for (size_t i = 0; i < N_SPM; i++) {
        if (i == 3 && byte_tokens)
            for (int b = 0; b < 256; b++) {
                texts[k] = xasprintf("<0x%02X>", b);
                types[k++] = 6;
            }
        texts[k] = xstrdup(SPM_VOCAB[i].text);
        scores[k] = SPM_VOCAB[i].score;
        types[k++] = SPM_VOCAB[i].type;
    }
    assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5), 0);
    assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts,
                                             NULL, n),
                     0);
    assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, scores, n), 0);
    assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, n), 0);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1), 0);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2), 0);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0), 0);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(scores);
    free(types);
}

static tok_t *spm_load(const char *name, gguf_writer_t *w)
{
    gguf_t *g = write_and_open(w, name);
    tok_t *t = NULL;
    char err[256];
    if (tok_from_gguf(g, &t, err, sizeof err) != 0)
        fail_msg("spm: %s", err);
    gguf_close(&g);
    return t;
}

static void test_spm(void **state)
{
    (void)state;
    tok_t *t = g_spm;
    assert_int_equal(tok_kind(t), TOK_KIND_SPM);
    assert_int_equal(tok_vocab_size(t), (int)N_SPM + 256);
    assert_int_equal(tok_bos(t), 1);
    assert_true(tok_add_bos(t)); /* llama's default */
    assert_true(tok_is_control(t, 1));

    const char *e0[] = {"▁the"};
    expect_tokens(t, "the", false, e0, 1);
    /* worked out by hand from the scores: ▁t, ▁a, ▁th, ▁the; ▁▁ is stale by then */
    const char *e1[] = {"▁a", "▁", "▁the"};
    expect_tokens(t, "a  the", false, e1, 3);
    const char *e2[] = {"▁hello"};
    expect_tokens(t, "hello", false, e2, 1);
    const char *e3[] = {"▁", "<0x78>"}; /* no token: byte fallback */
    expect_tokens(t, "x", false, e3, 2);
    const char *e4[] = {"▁a", "<0xE2>", "<0x96>", "<0x81>"}; /* a literal U+2581 stays bytes */
    expect_tokens(t, "a\xe2\x96\x81", false, e4, 4);
    const char *e5[] = {"▁", "<0xFF>"};
    expect_tokens(t, "\xff", false, e5, 2);
    const char *e6[] = {"▁мир", "▁ми"};
    expect_tokens(t, "мир ми", false, e6, 2);
    /* "<0x41>x" in the text is text, even though a token spells it */
    int32_t *ids;
    size_t n = encode(t, "<0x41>", false, &ids);
    assert_int_equal(n, 7);
    free(ids);
    const char *e7[] = {"<s>", "▁the", "</s>"};
    expect_tokens(t, "<s>the</s>", true, e7, 3);
    const char *e8[] = {"[user]", "▁the"}; /* user-defined tokens split even without parse_special */
    expect_tokens(t, "[user]the", false, e8, 2);
    n = encode(t, "", false, &ids);
    assert_int_equal(n, 0);
    free(ids);

    char *out;
    size_t olen;
    int32_t seq[] = {1, tok_find(t, "▁the"), tok_find(t, "▁a"), 2};
    assert_int_equal(tok_decode(t, seq, 4, false, &out, &olen), 0);
    assert_string_equal(out, "<s>the a</s>");
    free(out);
    assert_int_equal(tok_decode(t, seq, 4, true, &out, &olen), 0);
    assert_string_equal(out, "the a");
    free(out);
    size_t pl;
    assert_memory_equal(tok_piece(t, tok_find(t, "▁the"), &pl), " the", 4);
    assert_memory_equal(tok_piece(t, tok_find(t, "<0x41>"), &pl), "A", 1);
    assert_int_equal(pl, 1);

    random_roundtrips(t);

    /* to_gguf -> from_gguf: identical ids */
    tok_t *r = reload(t, "spm2.gguf");
    assert_int_equal(tok_kind(r), TOK_KIND_SPM);
    for (size_t i = 0; i < N_SAMPLES; i++)
        same_ids(t, r, SAMPLES[i], strlen(SAMPLES[i]), true);
    tok_free(&r);

    /* without the space prefix */
    gguf_writer_t *w = gguf_writer_new();
    spm_keys(w, true);
    assert_int_equal(gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false), 0);
    tok_t *np = spm_load("spm_noprefix.gguf", w);
    gguf_writer_free(&w);
    const char *e9[] = {"t", "h", "e", "▁a"};
    expect_tokens(np, "the a", false, e9, 4);
    random_roundtrips(np);
    tok_free(&np);
}

/* ==================================================================================== */
/* damaged metadata                                                                     */
/* ==================================================================================== */

static const char *g_skip;
static bool skip_key(const char *key)
{
    return g_skip && !strcmp(key, g_skip);
}

typedef void (*mutate_fn)(gguf_writer_t *w);

/* Copies src's keys without `skip`, applies mutate, and expects tok_from_gguf to fail with a
 * message containing `reason`. */
static void expect_bad(const gguf_t *src, const char *skip, mutate_fn mutate, const char *reason)
{
    gguf_writer_t *w = gguf_writer_new();
    g_skip = skip;
    assert_int_equal(gguf_writer_copy_kv(w, src, skip_key), 0);
    g_skip = NULL;
    if (mutate)
        mutate(w);
    gguf_t *g = write_and_open(w, "bad.gguf");
    gguf_writer_free(&w);
    tok_t *t = (tok_t *)&t; /* must come back NULL */
    char err[256] = "";
    int rc = tok_from_gguf(g, &t, err, sizeof err);
    gguf_close(&g);
    if (rc == 0 || t || !strstr(err, reason))
        fail_msg("expected failure '%s', got rc=%d err='%s'", reason, rc, err);
}

static void m_model(gguf_writer_t *w) { gguf_writer_set_str(w, "tokenizer.ggml.model", "bert", 4); }
static void m_model_type(gguf_writer_t *w) { gguf_writer_set_u32(w, "tokenizer.ggml.model", 1); }
static void m_tokens_type(gguf_writer_t *w) { gguf_writer_set_u32(w, "tokenizer.ggml.tokens", 5); }
static void m_tokens_empty(gguf_writer_t *w)
{
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", NULL, NULL, 0);
}
static void m_tokens_few(gguf_writer_t *w)
{
    const char *few[] = {"a", "b", "c"};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", few, NULL, 3);
}
static void m_types_f32(gguf_writer_t *w)
{
    float f[3] = {1, 1, 1};
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_FLOAT32, f, 3);
}
static void m_types_short(gguf_writer_t *w)
{
    int32_t v[3] = {1, 1, 1};
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, v, 3);
}
static int g_nvocab;
static void m_types_value(gguf_writer_t *w)
{
    int32_t *v = xcalloc((size_t)g_nvocab, sizeof *v);
    for (int i = 0; i < g_nvocab; i++)
        v[i] = i == 7 ? 9 : 1;
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, v, (size_t)g_nvocab);
    free(v);
}
static void m_merges_unknown(gguf_writer_t *w)
{
    const char *m[] = {"a b", "zzzq qqqz"};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, NULL, 2);
}
static void m_merges_nospace(gguf_writer_t *w)
{
    const char *m[] = {"ab"};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, NULL, 1);
}
static void m_merges_type(gguf_writer_t *w)
{
    gguf_writer_set_str(w, "tokenizer.ggml.merges", "a b", 3);
}
static void m_bos_range(gguf_writer_t *w)
{
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)g_nvocab);
}
static void m_bos_neg(gguf_writer_t *w) { gguf_writer_set_i32(w, "tokenizer.ggml.bos_token_id", -1); }
static void m_eos_type(gguf_writer_t *w) { gguf_writer_set_str(w, "tokenizer.ggml.eos_token_id", "2", 1); }
static void m_addbos_type(gguf_writer_t *w) { gguf_writer_set_u32(w, "tokenizer.ggml.add_bos_token", 1); }
static void m_template_type(gguf_writer_t *w) { gguf_writer_set_u32(w, "tokenizer.chat_template", 1); }
static void m_scores_short(gguf_writer_t *w)
{
    float f[2] = {0, 0};
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, f, 2);
}
static void m_bad_byte_token(gguf_writer_t *w)
{
    int32_t *v = xcalloc((size_t)g_nvocab, sizeof *v);
    for (int i = 0; i < g_nvocab; i++)
        v[i] = 1;
    v[1] = 6; /* "<s>" marked as a byte token */
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, v, (size_t)g_nvocab);
    free(v);
}

static void test_damaged(void **state)
{
    (void)state;
    gguf_writer_t *w = gguf_writer_new();
    assert_int_equal(tok_to_gguf(g_trained, w), 0);
    gguf_t *gpt2 = write_and_open(w, "good.gguf");
    gguf_writer_free(&w);
    g_nvocab = tok_vocab_size(g_trained);

    expect_bad(gpt2, "tokenizer.ggml.model", NULL, "tokenizer.ggml.model");
    expect_bad(gpt2, NULL, m_model, "unsupported tokenizer model 'bert'");
    expect_bad(gpt2, NULL, m_model_type, "tokenizer.ggml.model");
    expect_bad(gpt2, "tokenizer.ggml.tokens", NULL, "tokenizer.ggml.tokens");
    expect_bad(gpt2, NULL, m_tokens_type, "tokenizer.ggml.tokens");
    expect_bad(gpt2, NULL, m_tokens_empty, "vocabulary of 0");
    expect_bad(gpt2, NULL, m_tokens_few, "token_type must be"); /* types no longer match */
    expect_bad(gpt2, NULL, m_types_f32, "token_type must be");
    expect_bad(gpt2, NULL, m_types_short, "token_type must be");
    expect_bad(gpt2, NULL, m_types_value, "unknown type 9");
    expect_bad(gpt2, "tokenizer.ggml.merges", NULL, "tokenizer.ggml.merges");
    expect_bad(gpt2, NULL, m_merges_unknown, "merge 1 ('zzzq qqqz') names an unknown token");
    expect_bad(gpt2, NULL, m_merges_nospace, "names an unknown token");
    expect_bad(gpt2, NULL, m_merges_type, "tokenizer.ggml.merges");
    expect_bad(gpt2, NULL, m_bos_range, "out of range");
    expect_bad(gpt2, NULL, m_bos_neg, "bos_token_id is not an unsigned integer");
    expect_bad(gpt2, NULL, m_eos_type, "eos_token_id");
    expect_bad(gpt2, NULL, m_addbos_type, "add_bos_token is not a bool");
    expect_bad(gpt2, NULL, m_template_type, "chat_template is not a string");

    /* a vocabulary without every byte cannot round-trip: refused */
    w = gguf_writer_new();
    const char *few[] = {"a", "b", "ab"};
    const char *m[] = {"a b"};
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", few, NULL, 3);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, NULL, 1);
    gguf_t *g = write_and_open(w, "fewbytes.gguf");
    gguf_writer_free(&w);
    expect_bad(g, NULL, NULL, "lacks a token for byte 0x00");
    gguf_close(&g);
    gguf_close(&gpt2);

    /* a merge of texts that are not byte-level: "\xc3" + "\xa9" spells "é", the token of byte
     * 0xE9, which is not the bytes C3 A9 */
    char *bl[258];
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        size_t ul = tok__utf8_put(tok__byte_cp((uint8_t)b), u);
        bl[b] = xstrndup((const char *)u, ul);
    }
    bl[256] = xstrdup("\xc3");
    bl[257] = xstrdup("\xa9");
    const char *bad_merge[] = {"\xc3 \xa9"};
    w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)bl, NULL, 258);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", bad_merge, NULL, 1);
    g = write_and_open(w, "badmerge.gguf");
    gguf_writer_free(&w);
    expect_bad(g, NULL, NULL, "merge 0: the joined token is not the bytes of its parts");
    gguf_close(&g);
    for (int i = 0; i < 258; i++)
        free(bl[i]);

    /* SPM */
    w = gguf_writer_new();
    spm_keys(w, true);
    gguf_t *spm = write_and_open(w, "spm_good.gguf");
    gguf_writer_free(&w);
    g_nvocab = (int)N_SPM + 256;
    expect_bad(spm, NULL, m_scores_short, "scores must be");
    expect_bad(spm, NULL, m_bad_byte_token, "byte token 1 is not <0xXX>");
    expect_bad(spm, NULL, m_bos_range, "out of range");
    gguf_close(&spm);
    w = gguf_writer_new();
    spm_keys(w, false);
    spm = write_and_open(w, "spm_nobytes.gguf");
    gguf_writer_free(&w);
    expect_bad(spm, NULL, NULL, "lacks a token for byte");
    gguf_close(&spm);

    /* no tokenizer at all */
    w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama", 5);
    g = write_and_open(w, "none.gguf");
    gguf_writer_free(&w);
    expect_bad(g, NULL, NULL, "tokenizer.ggml.model is missing");
    gguf_close(&g);
}

/* Random damage to the bytes of small tokenizer files (gpt2 and SPM): whatever gguf_open and
 * tok_from_gguf accept must still round-trip every byte string; the rest fails with a reason. */
static void fuzz_file(const char *path, int iters)
{
    char *data;
    size_t len;
    assert_int_equal(core_read_file(path, 1 << 24, &data, &len), 0);
    uint8_t *buf = xmalloc(len);
    int loaded = 0, refused_tok = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(buf, data, len);
        int k = 1 + (int)(rnd() % 3);
        for (int j = 0; j < k; j++) {
            size_t at = rnd() % len;
            buf[at] = rnd() % 2 ? (uint8_t)rnd() : buf[at] ^ (uint8_t)(1u << (rnd() % 8));
        }
        gguf_t *g = NULL;
        char err[256];
        if (gguf_open_memory(buf, len, &g, err, sizeof err) != 0)
            continue;
        tok_t *t = NULL;
        err[0] = '\0';
        if (tok_from_gguf(g, &t, err, sizeof err) == 0) {
            loaded++;
            char str[64];
            for (int r = 0; r < 20; r++) {
                size_t n = rnd() % sizeof str;
                for (size_t i = 0; i < n; i++)
                    str[i] = rnd() % 2 ? (char)rnd() : "ab <|>\xe2\x96\x81 "[rnd() % 10];
                roundtrip(t, str, n, r % 2);
            }
            tok_free(&t);
        } else {
            assert_null(t);
            assert_true(err[0] != '\0');
            refused_tok++;
        }
        gguf_close(&g);
    }
    assert_true(loaded > 0 && refused_tok > 0);
    free(buf);
    free(data);
}

static void test_fuzz_metadata(void **state)
{
    (void)state;
    int iters = SANITIZED ? 300 : 1500;
    const char *texts[] = {"ab ab ab cd ef ef"};
    size_t lens[] = {17};
    tok_t *t = NULL;
    char err[256];
    assert_int_equal(tok_train(texts, lens, 1, 270, &t, err, sizeof err), 0);
    gguf_writer_t *w = gguf_writer_new();
    assert_int_equal(tok_to_gguf(t, w), 0);
    tok_free(&t);
    char *p = tmp_path("fuzz_gpt2.gguf");
    assert_int_equal(gguf_writer_write(w, p, err, sizeof err), 0);
    gguf_writer_free(&w);
    fuzz_file(p, iters);
    free(p);
    w = gguf_writer_new();
    spm_keys(w, true);
    p = tmp_path("fuzz_spm.gguf");
    assert_int_equal(gguf_writer_write(w, p, err, sizeof err), 0);
    gguf_writer_free(&w);
    fuzz_file(p, iters);
    free(p);
}

/* ==================================================================================== */
/* long input                                                                           */
/* ==================================================================================== */

static void test_long_input(void **state)
{
    (void)state;
    /* a single word of a megabyte: linear-ish, not quadratic */
    size_t n = SANITIZED ? 200000 : 1000000;
    char *s = xmalloc(n);
    const tok_t *toks[] = {g_trained, g_spm};
    const char fills[] = {'a', ' ', 'e'};
    for (int f = 0; f < 3; f++) {
        memset(s, fills[f], n);
        for (int k = 0; k < 2; k++) {
            int64_t t0 = core_mono_ns();
            roundtrip(toks[k], s, n, false);
            double secs = (double)(core_mono_ns() - t0) / 1e9;
            if (secs > (SANITIZED ? 30.0 : 5.0))
                fail_msg("%zu bytes of '%c' took %.1f s", n, fills[f], secs);
        }
    }
    free(s);
}

/* ==================================================================================== */

static int setup(void **state)
{
    (void)state;
    const char **texts;
    size_t *lens, n;
    corpus(&texts, &lens, &n);
    char err[256];
    if (tok_train(texts, lens, n, 1000, &g_trained, err, sizeof err) != 0) {
        fprintf(stderr, "train: %s\n", err);
        return -1;
    }
    free_corpus(texts, lens, n);
    gguf_writer_t *w = gguf_writer_new();
    spm_keys(w, true);
    g_spm = spm_load("spm.gguf", w);
    gguf_writer_free(&w);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tok_free(&g_trained);
    tok_free(&g_spm);
    return 0;
}

int main(void)
{
    const char *base = getenv("PERSONA_TEST_TMP");
    if (!base || !*base)
        base = "/tmp/persona-test-tok";
    if (core_mkdirs(base) < 0)
        return 1;
    g_dir = xasprintf("%s/tok", base);
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (core_mkdirs(g_dir) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretokenizer),        cmocka_unit_test(test_unicode_classes),
        cmocka_unit_test(test_train_by_hand),       cmocka_unit_test(test_train_bounds),
        cmocka_unit_test(test_train_deterministic), cmocka_unit_test(test_roundtrip_trained),
        cmocka_unit_test(test_roundtrip_gguf_gpt2), cmocka_unit_test(test_pre_from_gguf),
        cmocka_unit_test(test_llama3_whole_words),  cmocka_unit_test(test_spm),
        cmocka_unit_test(test_damaged),             cmocka_unit_test(test_fuzz_metadata),             cmocka_unit_test(test_long_input),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    free(g_dir);
    return rc;
}
