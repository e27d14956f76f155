/* test_store_search.c: text items cut into passages, questions turned into FTS5 queries, and
 * store_corpus_search (ranking, account isolation, hostile questions, fuzz, 100,000 passages). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "store/internal.h"
#include "store/store.h"
#include "test_store.h"

/* ==================================================================================== */
/* helpers                                                                               */
/* ==================================================================================== */

static int64_t add_text(store_t *st, int64_t account, const char *title, const char *text)
{
    store_media_t m = {.account_id = account, .kind = "text", .size = (int64_t)strlen(text)};
    memcpy(m.sha256, SHA_A, sizeof m.sha256);
    m.title = (char *)title;
    m.content_type = (char *)"text/plain";
    assert_int_equal(store_media_create_text(st, &m, text, strlen(text)), 0);
    assert_true(m.id > 0);
    return m.id;
}

static int64_t passages_of(store_t *st, int64_t account, int64_t media_id)
{
    int64_t n = -1;
    assert_int_equal(store_corpus_count(st, account, media_id, &n), 0);
    return n;
}

/* All passages of a text, as NUL-terminated copies (list of n, caller frees each and list). */
static char **split(const char *text, size_t *n_out)
{
    store__passage_iter_t it = {.text = text, .len = strlen(text)};
    size_t start, len, n = 0;
    char **list = NULL;
    while (store__next_passage(&it, &start, &len)) {
        list = xrealloc(list, (n + 1) * sizeof *list);
        list[n] = xmalloc(len + 1);
        memcpy(list[n], text + start, len);
        list[n][len] = '\0';
        n++;
    }
    *n_out = n;
    return list;
}

static void free_split(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ==================================================================================== */
/* passages                                                                              */
/* ==================================================================================== */

static void test_passage_split(void **state)
{
    (void)state;
    size_t n;
    char **p = split("  First paragraph,\nsame paragraph.\n\n\n  Second one.  \n \t \nThird.\r\n\r\n"
                     "Fourth\n\n   \n\n",
                     &n);
    assert_int_equal(n, 4);
    assert_string_equal(p[0], "First paragraph,\nsame paragraph.");
    assert_string_equal(p[1], "Second one.");
    assert_string_equal(p[2], "Third.");
    assert_string_equal(p[3], "Fourth");
    free_split(p, n);

    p = split("", &n);
    assert_int_equal(n, 0);
    free(p);
    p = split(" \n\n\t\r\n  ", &n);
    assert_int_equal(n, 0);
    free(p);

    /* A long paragraph: cut at sentence ends into pieces of at most 600 bytes, nothing lost. */
    char *text = xmalloc(8192);
    size_t len = 0;
    for (int i = 0; len < 4000; i++)
        len += (size_t)sprintf(text + len, "Sentence number %d is here%s ", i,
                               i % 3 == 0 ? "!" : i % 3 == 1 ? "?" : ".");
    p = split(text, &n);
    assert_true(n >= 7);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(p[i]);
        assert_true(l > 0 && l <= STORE__PASSAGE_MAX);
        assert_false(space(p[i][0]) || space(p[i][l - 1]));
        char last = p[i][l - 1];
        assert_true(last == '.' || last == '!' || last == '?'); /* cut at sentence ends */
        total += l + 1;
    }
    assert_int_equal(total, len); /* every sentence kept: only the separating spaces went */
    free_split(p, n);

    /* No sentence end: cut at whitespace; no whitespace either: at a UTF-8 character start. */
    len = 0;
    for (int i = 0; i < 300; i++)
        len += (size_t)sprintf(text + len, "word%d ", i);
    p = split(text, &n);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        assert_true(strlen(p[i]) <= STORE__PASSAGE_MAX);
        assert_non_null(strstr(text, p[i]));
        assert_true(p[i][strlen(p[i]) - 1] != ' ');
    }
    free_split(p, n);

    len = 0;
    text[len++] = 'x'; /* then 2-byte "é" only: a cut at an odd offset would split one */
    for (int i = 0; i < 1000; i++) {
        text[len++] = (char)0xC3;
        text[len++] = (char)0xA9;
    }
    text[len] = '\0';
    p = split(text, &n);
    assert_int_equal(n, 4);
    total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(p[i]);
        assert_true(l <= STORE__PASSAGE_MAX);
        assert_int_not_equal((unsigned char)p[i][0] & 0xC0, 0x80); /* starts a character */
        assert_true((unsigned char)p[i][l - 1] != 0xC3);           /* ends one */
        total += l;
    }
    assert_int_equal(total, len);
    free_split(p, n);
    free(text);
}

static void test_text_items_are_passages(void **state)
{
    (void)state;
    char *dir = fresh_dir("passages");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    int64_t one = add_text(st, a, "one", "A single line.");
    int64_t three = add_text(st, a, "three", "First.\n\nSecond.\n\n\n\nThird.\n");
    int64_t none = add_text(st, a, "blank", "  \n\n \t ");
    char *big = xmalloc(16384);
    size_t len = 0;
    for (int i = 0; i < 200; i++)
        len += (size_t)sprintf(big + len, "This is sentence %d of a long paragraph. ", i);
    int64_t long_id = add_text(st, a, "long", big);
    assert_int_equal(passages_of(st, a, one), 1);
    assert_int_equal(passages_of(st, a, three), 3);
    assert_int_equal(passages_of(st, a, none), 0);
    int64_t nl = passages_of(st, a, long_id);
    assert_true(nl >= (int64_t)(len / STORE__PASSAGE_MAX) && nl <= (int64_t)(len / 300));
    assert_int_equal(passages_of(st, a, 0), 4 + nl);
    store_free(&st);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT max(length(CAST(text AS BLOB))) FROM corpus"
                              " WHERE media_id = %lld", (long long)long_id);
    assert_true(sql_int(dir, sql) <= STORE__PASSAGE_MAX);
    assert_int_equal(sql_int(dir, "SELECT count(*) FROM corpus WHERE t_start <> 0 OR t_end <> 0"),
                     0);
    free(big);
    free(dir);
}

/* ==================================================================================== */
/* questions into queries                                                                */
/* ==================================================================================== */

static void expect_query(const char *question, const char *want)
{
    char *q = store__fts_query(question);
    if (!want) {
        assert_null(q);
        return;
    }
    assert_non_null(q);
    assert_string_equal(q, want);
    free(q);
}

static void test_fts_query(void **state)
{
    (void)state;
    expect_query("What did I say about the sea?", "\"sea\"");
    expect_query("Sea, SEA and sea!", "\"sea\"");
    expect_query("what is it", "\"what\" OR \"is\" OR \"it\""); /* only stop words: kept */
    expect_query("", NULL);
    expect_query("?!.,;:()\"'*^-+ \t\n", NULL);
    expect_query("\"harbour\" AND boat* OR NOT NEAR(a b) col:x ^start -minus +plus",
                 "\"harbour\" OR \"boat\" OR \"not\" OR \"near\" OR \"b\" OR \"col\" OR \"x\""
                 " OR \"start\" OR \"minus\" OR \"plus\"");
    expect_query("caf\xc3\xa9 na\xc3\xafve \xf0\x9f\x98\x80",
                 "\"caf\xc3\xa9\" OR \"na\xc3\xafve\" OR \"\xf0\x9f\x98\x80\"");
    expect_query("It's 2024", "\"s\" OR \"2024\"");

    /* At most 32 distinct words. */
    char many[1024];
    size_t len = 0;
    for (int i = 0; i < 40; i++)
        len += (size_t)sprintf(many + len, "w%d w%d ", i, i);
    char *q = store__fts_query(many);
    assert_non_null(q);
    int words = 1;
    for (const char *c = q; (c = strstr(c, " OR ")); c += 4)
        words++;
    assert_int_equal(words, 32);
    assert_non_null(strstr(q, "\"w31\""));
    assert_null(strstr(q, "\"w32\""));
    free(q);

    /* Words are cut to 64 bytes, at a character start. */
    char longw[200];
    memset(longw, 'k', 100);
    longw[100] = '\0';
    q = store__fts_query(longw);
    assert_int_equal(strlen(q), 64 + 2);
    free(q);
    len = 0;
    longw[len++] = 'a';
    for (int i = 0; i < 40; i++) {
        longw[len++] = (char)0xC3;
        longw[len++] = (char)0xA9;
    }
    longw[len] = '\0';
    q = store__fts_query(longw);
    assert_int_equal(strlen(q), 63 + 2); /* "a" + 31 whole "é" */
    free(q);
}

/* ==================================================================================== */
/* search                                                                                */
/* ==================================================================================== */

static void test_search_ranking_and_accounts(void **state)
{
    (void)state;
    char *dir = fresh_dir("search");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    store_passage_t *ps = NULL;
    size_t n = 9;

    /* Empty corpus: no error, nothing found. */
    assert_int_equal(store_corpus_search(st, a, "what did I say about the sea?", 5, &ps, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(ps);
    store_passage_list_free(&ps, n);
    assert_null(ps);

    int64_t notes = add_text(st, a, "notes",
                             "I bought bread at the market.\n\n"
                             "The sea was wild today; I watched the waves from the harbour wall "
                             "and the sea spray reached the road.\n\n"
                             "My sister called about the party.");
    int64_t diary = add_text(st, a, "diary", "Walked the dog. It was raining.\n\n"
                                             "Cooked soup for everyone, the sea air made us hungry.");
    int64_t bobs = add_text(st, b, "bob's secrets", "The sea sea sea is bob's favourite thing.");
    int64_t video = 0;
    {
        store_media_t m = {.account_id = a, .kind = "video", .size = 3};
        memcpy(m.sha256, SHA_B, sizeof m.sha256);
        m.title = (char *)"beach";
        assert_int_equal(store_media_create(st, &m), 0);
        video = m.id;
        assert_int_equal(store_corpus_add(st, a, video, 12.5, 17.25, "we swam in the warm water near the beach all afternoon, then the sea turned"
                                     " cold and grey and we drove back home"),
                         0);
    }

    assert_int_equal(store_corpus_search(st, a, "What did I say about the sea?", 10, &ps, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ps[0].media_id, notes); /* "sea" twice */
    assert_string_equal(ps[0].title, "notes");
    assert_string_equal(ps[0].kind, "text");
    assert_non_null(strstr(ps[0].text, "The sea was wild"));
    assert_true(ps[0].created_at > 0);
    assert_true(ps[0].score < 0);
    for (size_t i = 0; i < n; i++) {
        assert_true(ps[i].media_id == notes || ps[i].media_id == diary || ps[i].media_id == video);
        assert_null(strstr(ps[i].text, "bob"));
        if (i)
            assert_true(ps[i - 1].score <= ps[i].score); /* best first */
        if (ps[i].media_id == video) {
            assert_string_equal(ps[i].kind, "video");
            assert_string_equal(ps[i].title, "beach");
            assert_true(ps[i].t_start == 12.5 && ps[i].t_end == 17.25);
        }
    }
    store_passage_list_free(&ps, n);

    /* limit */
    assert_int_equal(store_corpus_search(st, a, "sea", 1, &ps, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ps[0].media_id, notes);
    store_passage_list_free(&ps, n);
    assert_int_equal(store_corpus_search(st, a, "sea", 0, &ps, &n), -EINVAL);
    assert_int_equal(store_corpus_search(st, a, NULL, 3, &ps, &n), -EINVAL);

    /* porter stemming: "walking" finds "Walked"; case does not matter. */
    assert_int_equal(store_corpus_search(st, a, "WALKING", 5, &ps, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ps[0].media_id, diary);
    store_passage_list_free(&ps, n);

    /* The other account sees only its own. */
    assert_int_equal(store_corpus_search(st, b, "sea harbour bread sister soup", 10, &ps, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ps[0].media_id, bobs);
    store_passage_list_free(&ps, n);
    assert_int_equal(store_corpus_search(st, b, "harbour", 10, &ps, &n), 0);
    assert_int_equal(n, 0);
    store_passage_list_free(&ps, n);
    int64_t nobody = 999999;
    assert_int_equal(store_corpus_search(st, nobody, "sea", 10, &ps, &n), 0);
    assert_int_equal(n, 0);
    store_passage_list_free(&ps, n);

    /* No match. */
    assert_int_equal(store_corpus_search(st, a, "xylophone", 10, &ps, &n), 0);
    assert_int_equal(n, 0);
    store_passage_list_free(&ps, n);

    /* A deleted item's passages are gone. */
    assert_int_equal(store_media_delete(st, a, notes), 0);
    assert_int_equal(store_corpus_search(st, a, "harbour", 10, &ps, &n), 0);
    assert_int_equal(n, 0);
    store_passage_list_free(&ps, n);
    store_free(&st);
    free(dir);
}

static void test_search_hostile_questions(void **state)
{
    (void)state;
    char *dir = fresh_dir("hostile");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    add_text(st, a, "t", "The harbour and the boat.\n\nNot near the AND gate, or the OR room.\n\n"
                         "Caf\xc3\xa9 au lait, na\xc3\xafve \xf0\x9f\x98\x80 smile.");
    char *big = xmalloc(10 * 1024 + 1);
    for (size_t i = 0; i < 10 * 1024; i++)
        big[i] = "harbour boat (\"NEAR* ^x:"[i % 24];
    big[10 * 1024] = '\0';
    const char *questions[] = {
        "\"", "\"\"", "\"harbour", "harbour\"", "AND", "OR", "NOT", "NEAR(", "NEAR(harbour boat",
        "*", "harbour*", "^", "^harbour", ":", "text:harbour", "account_id:1", "(", ")",
        "(harbour", "-", "-harbour", "+", "+boat", "\"a\" \"b", "a AND OR NOT b", "'\\;--",
        "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xf0\x9f\x99\x88?", "", "   ",
        "what is it", "the a an", "?!...", "\t\r\n", "\xc3", "\xff\xfe", "caf\xc3\xa9",
        "{}[]<>@#$%&=|~`", big,
    };
    for (size_t i = 0; i < sizeof questions / sizeof questions[0]; i++) {
        store_passage_t *ps = NULL;
        size_t n = 99;
        int rc = store_corpus_search(st, a, questions[i], 5, &ps, &n);
        if (rc != 0)
            fprintf(stderr, "question %zu failed: %d\n", i, rc);
        assert_int_equal(rc, 0);
        assert_true(n <= 5);
        store_passage_list_free(&ps, n);
    }
    /* Operator words are plain words: "near" and "and" find the passage with them. */
    store_passage_t *ps = NULL;
    size_t n = 0;
    assert_int_equal(store_corpus_search(st, a, "NEAR(", 5, &ps, &n), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(ps[0].text, "AND gate"));
    store_passage_list_free(&ps, n);
    assert_int_equal(store_corpus_search(st, a, "naïve?", 5, &ps, &n), 0);
    assert_int_equal(n, 1);
    store_passage_list_free(&ps, n);
    assert_int_equal(store_corpus_search(st, a, "\"harbour", 5, &ps, &n), 0);
    assert_int_equal(n, 1);
    store_passage_list_free(&ps, n);
    free(big);
    store_free(&st);
    free(dir);
}

static void test_search_fuzz(void **state)
{
    (void)state;
    char *dir = fresh_dir("fuzz");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice");
    add_text(st, a, "t", "Random words: harbour, boat, sea.\n\nAnother \xc3\xa9t\xc3\xa9 passage.");
    unsigned seed = 12345;
    char buf[513];
    int found = 0;
    for (int i = 0; i < 1000; i++) {
        size_t len = (size_t)(rand_r(&seed) % 512);
        for (size_t k = 0; k < len; k++)
            buf[k] = (char)(1 + rand_r(&seed) % 255);
        buf[len] = '\0';
        if (i % 10 == 0 && len > 8)
            memcpy(buf + len / 2 - 4, " harbour", 8);
        store_passage_t *ps = NULL;
        size_t n = 0;
        int rc = store_corpus_search(st, a, buf, 3, &ps, &n);
        assert_true(rc <= 0);
        if (rc == 0) {
            assert_true(n <= 3);
            found += n > 0;
            store_passage_list_free(&ps, n);
        }
        assert_int_equal(rc, 0); /* in fact no question is an error */
    }
    assert_true(found > 0);
    store_free(&st);
    free(dir);
}

/* 100,000 passages in one account (and 20,000 in another): prints how long questions take. */
static const char *const common[] = {
    "the", "and", "i", "it", "is", "was", "we", "to", "of", "day", "time", "home", "went", "good",
};

static void synth_word(unsigned idx, char *out)
{
    static const char *const syl[] = {"ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "da",
                                      "go", "ber", "lin", "tor", "as", "em"};
    int n = 0;
    unsigned x = idx * 2654435761u + 7;
    int k = 2 + (int)(idx % 3);
    for (int i = 0; i < k; i++) {
        n += sprintf(out + n, "%s", syl[x % 16]);
        x /= 16;
    }
    sprintf(out + n, "%u", idx % 10); /* makes every vocabulary word distinct */
}

static size_t gen_paragraphs(char *buf, int count, unsigned *seed)
{
    size_t len = 0;
    char w[32];
    for (int p = 0; p < count; p++) {
        int words = 8 + rand_r(seed) % 14;
        for (int i = 0; i < words; i++) {
            if (rand_r(seed) % 3 == 0) {
                len += (size_t)sprintf(buf + len, "%s ", common[rand_r(seed) % 14]);
            } else {
                /* log-uniform over a 20,000-word vocabulary: a few words everywhere, most rare */
                double u = (double)rand_r(seed) / RAND_MAX;
                unsigned idx = (unsigned)(exp(u * log(20000.0))) - 1;
                synth_word(idx, w);
                len += (size_t)sprintf(buf + len, "%s ", w);
            }
        }
        buf[len - 1] = '.';
        len += (size_t)sprintf(buf + len, "\n\n");
    }
    buf[len] = '\0';
    return len;
}

static void test_search_100k_timing(void **state)
{
    (void)state;
    char *dir = fresh_dir("search100k");
    store_t *st = open_store(dir);
    int64_t a = new_account(st, "alice"), b = new_account(st, "bob");
    unsigned seed = 42;
    char *buf = xmalloc(4 << 20);
    double t0 = now_ms();
    for (int item = 0; item < 10; item++) {
        gen_paragraphs(buf, 10000, &seed);
        if (item == 7) /* the needle */
            strcat(buf, "The lighthouse keeper painted his rowing boat blue.\n\n");
        char title[32];
        snprintf(title, sizeof title, "item %d", item);
        add_text(st, a, title, buf);
    }
    int64_t bob_items[2];
    for (int item = 0; item < 2; item++) {
        gen_paragraphs(buf, 10000, &seed);
        strcat(buf, "Bob's lighthouse keeper painted a boat blue too.\n\n");
        bob_items[item] = add_text(st, b, "bob", buf);
    }
    int64_t n_a = -1;
    assert_int_equal(store_corpus_count(st, a, 0, &n_a), 0);
    assert_int_equal(n_a, 100001);
    printf("[ timing   ] inserted %lld + 20002 passages in %.0f ms\n", (long long)n_a,
           now_ms() - t0);

    char w0[32], w1[32], w2[32], w3[32];
    synth_word(0, w0), synth_word(1, w1), synth_word(2, w2), synth_word(3, w3);
    char frequent[160], big[10240];
    snprintf(frequent, sizeof frequent, "%s %s %s %s day time home?", w0, w1, w2, w3);
    size_t len = 0;
    while (len < sizeof big - 40) {
        char w[32];
        synth_word((unsigned)(rand_r(&seed) % 20000), w);
        len += (size_t)snprintf(big + len, sizeof big - len, "%s ", w);
    }
    const char *questions[] = {
        "What did the lighthouse keeper paint?",
        "what is it",   /* only stop words: matches nearly every passage */
        frequent,       /* the most frequent vocabulary words */
        big,            /* 10 kB: 32 words */
        "xylophone",    /* no match */
    };
    const char *names[] = {"rare words", "stop words only", "frequent words", "10 kB question",
                           "no match"};
    for (size_t q = 0; q < sizeof questions / sizeof questions[0]; q++) {
        double best = 1e9, total = 0;
        size_t n = 0;
        const int runs = 5;
        for (int r = 0; r < runs; r++) {
            store_passage_t *ps = NULL;
            double t = now_ms();
            assert_int_equal(store_corpus_search(st, a, questions[q], 10, &ps, &n), 0);
            t = now_ms() - t;
            best = t < best ? t : best;
            total += t;
            if (q == 0) {
                assert_true(n >= 1);
                assert_non_null(strstr(ps[0].text, "lighthouse keeper painted his"));
            }
            for (size_t i = 0; i < n; i++) {
                assert_null(strstr(ps[i].text, "Bob's"));
                assert_true(ps[i].media_id != bob_items[0] && ps[i].media_id != bob_items[1]);
            }
            store_passage_list_free(&ps, n);
        }
        /* Every path (all words ranked, frequent words dropped, newest matches ranked) keeps
         * to the account. */
        store_passage_t *ps = NULL;
        size_t nb = 0;
        assert_int_equal(store_corpus_search(st, b, questions[q], 10, &ps, &nb), 0);
        for (size_t i = 0; i < nb; i++)
            assert_true(ps[i].media_id == bob_items[0] || ps[i].media_id == bob_items[1]);
        store_passage_list_free(&ps, nb);
        printf("[ timing   ] search, 100k passages, %-16s: %zu found, best %.1f ms, mean %.1f ms\n",
               names[q], n, best, total / runs);
    }
    free(buf);
    store_free(&st);
    free(dir);
}

int run_search_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passage_split),
        cmocka_unit_test(test_text_items_are_passages),
        cmocka_unit_test(test_fts_query),
        cmocka_unit_test(test_search_ranking_and_accounts),
        cmocka_unit_test(test_search_hostile_questions),
        cmocka_unit_test(test_search_fuzz),
        cmocka_unit_test(test_search_100k_timing),
    };
    return cmocka_run_group_tests_name("store_search", tests, NULL, NULL);
}
