/* search.c: the corpus side of questions — cutting text into passages, and finding the passages
 * most relevant to a question (FTS5, bm25).
 *
 * A question is text written by a person, never FTS5 query syntax: store__fts_query keeps only
 * its words (runs of ASCII letters and digits, and of bytes >= 0x80 so that UTF-8 words survive
 * whole; FTS5's unicode61 tokenizer then splits them properly), and writes each one as a quoted
 * string, OR-ed together. Quotes, operators (AND OR NOT NEAR), parentheses, column filters (:),
 * prefix (*) and initial-token (^) marks can therefore never reach the FTS5 parser as syntax.
 *
 * Bounded work: FTS5 computes bm25 for every match before sorting (about 1 us per row), so a
 * question whose words are everywhere would cost tens of ms at 100,000 passages. When the
 * question's words match more than STORE__SEARCH_RANK_BUDGET passages (all accounts), the most
 * frequent words are dropped (rarest kept first, while their matches fit the budget; frequent
 * words carry almost no weight in bm25 anyway, whose IDF is near 0 for a word in half the
 * passages). When even the rarest word alone matches more than the budget, only the account's
 * newest STORE__SEARCH_CAPPED matches of it are ranked.
 *
 * Account filter: corpus.account_id is an UNINDEXED FTS5 column, so FTS5 scores every match of
 * the query (all accounts) and SQLite drops the other accounts' rows while walking them in rank
 * order; the LIMIT stops the walk early. The media join is checked against the account too, so a
 * passage is returned only when both its row and its item belong to the account. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

/* ==================================================================================== */
/* passages                                                                              */
/* ==================================================================================== */

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* End of the paragraph that starts at p (a non-blank line): the newline before the first blank
 * line (a line of whitespace only) after it, or the end of the text. */
static size_t paragraph_end(const char *t, size_t len, size_t p)
{
    size_t i = p;
    for (;;) {
        const char *nl = memchr(t + i, '\n', len - i);
        if (!nl)
            return len;
        size_t eol = (size_t)(nl - t), k = eol + 1;
        while (k < len && t[k] != '\n' && is_space((unsigned char)t[k]))
            k++;
        if (k >= len || t[k] == '\n')
            return eol; /* the next line is blank (or only whitespace is left) */
        i = eol + 1;
    }
}

/* Where to end a piece of a paragraph that starts at p and is longer than STORE__PASSAGE_MAX:
 * after the last sentence end (". ", "! ", "? " or a newline) within the limit, else at the last
 * whitespace, else at the last UTF-8 character start. Always in (p, p + max]. */
static size_t piece_end(const char *t, size_t end, size_t p)
{
    size_t lim = p + STORE__PASSAGE_MAX;
    for (size_t k = lim; k > p + 1; k--) {
        unsigned char prev = (unsigned char)t[k - 1];
        if (prev == '\n' ||
            ((prev == '.' || prev == '!' || prev == '?') && k < end && is_space((unsigned char)t[k])))
            return k;
    }
    for (size_t k = lim; k > p + 1; k--)
        if (is_space((unsigned char)t[k]))
            return k;
    size_t k = lim;
    while (k > p + 1 && ((unsigned char)t[k] & 0xC0) == 0x80)
        k--;
    return k > p + 1 ? k : lim;
}

bool store__next_passage(store__passage_iter_t *it, size_t *start, size_t *len)
{
    const char *t = it->text;
    for (;;) {
        if (it->pos >= it->para_end) {
            size_t p = it->pos;
            while (p < it->len && is_space((unsigned char)t[p]))
                p++;
            if (p >= it->len) {
                it->pos = it->para_end = it->len;
                return false;
            }
            it->pos = p;
            it->para_end = paragraph_end(t, it->len, p);
        }
        while (it->pos < it->para_end && is_space((unsigned char)t[it->pos]))
            it->pos++;
        if (it->pos >= it->para_end)
            continue;
        size_t p = it->pos, e;
        if (it->para_end - p <= STORE__PASSAGE_MAX)
            e = it->para_end;
        else
            e = piece_end(t, it->para_end, p);
        it->pos = e;
        while (e > p && is_space((unsigned char)t[e - 1]))
            e--;
        if (e == p)
            continue;
        *start = p;
        *len = e - p;
        return true;
    }
}

/* ==================================================================================== */
/* questions into FTS5 queries                                                           */
/* ==================================================================================== */

static const char *const stop_words[] = {
    "the", "a", "an", "and", "or", "of", "to", "in", "is", "was", "what", "did", "i",
    "you", "me", "my", "about", "do", "does", "how", "when", "where", "who", "why", "which",
    "that", "this", "it", "on", "for", "with", "at", "be", "are", "were", "say", "said", "tell",
};

static bool is_word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static bool is_stop_word(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof stop_words / sizeof stop_words[0]; i++)
        if (strlen(stop_words[i]) == n && memcmp(stop_words[i], w, n) == 0)
            return true;
    return false;
}

typedef struct {
    char w[STORE__QUERY_MAX_WORDS][STORE__QUERY_WORD_MAX + 1];
    size_t n;
} words_t;

/* Collects the distinct words of q (lowercased ASCII, cut to STORE__QUERY_WORD_MAX bytes at a
 * UTF-8 character start), at most STORE__QUERY_MAX_WORDS, without stop words unless keep_stop. */
static void collect_words(const char *q, bool keep_stop, words_t *out)
{
    const unsigned char *p = (const unsigned char *)q;
    out->n = 0;
    while (*p && out->n < STORE__QUERY_MAX_WORDS) {
        while (*p && !is_word_byte(*p))
            p++;
        const unsigned char *w = p;
        while (*p && is_word_byte(*p))
            p++;
        size_t n = (size_t)(p - w);
        if (n == 0)
            break;
        if (n > STORE__QUERY_WORD_MAX) {
            n = STORE__QUERY_WORD_MAX;
            while (n > 0 && (w[n] & 0xC0) == 0x80) /* w[n] is the first byte left out */
                n--;
            if (n == 0)
                continue; /* a run of continuation bytes only: not a word */
        }
        char buf[STORE__QUERY_WORD_MAX + 1];
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + ('a' - 'A') : w[i]);
        buf[n] = '\0';
        if (!keep_stop && is_stop_word(buf, n))
            continue;
        bool seen = false;
        for (size_t i = 0; i < out->n && !seen; i++)
            seen = strcmp(out->w[i], buf) == 0;
        if (!seen)
            memcpy(out->w[out->n++], buf, n + 1);
    }
}

/* The words of a question: without stop words, or all of them when only stop words are left. */
static void question_words(const char *question, words_t *words)
{
    collect_words(question, false, words);
    if (words->n == 0)
        collect_words(question, true, words);
}

/* "w1" OR "w2" ... for the words whose indexes are in idx (malloc'd). */
static char *quote_words(const words_t *words, const size_t *idx, size_t n)
{
    /* Each word at most doubles (quote escaping), plus quotes and " OR ". */
    char *out = xmalloc(n * (2 * STORE__QUERY_WORD_MAX + 6) + 1);
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        if (i) {
            memcpy(o, " OR ", 4);
            o += 4;
        }
        *o++ = '"';
        for (const char *c = words->w[idx[i]]; *c; c++) {
            if (*c == '"')
                *o++ = '"';
            *o++ = *c;
        }
        *o++ = '"';
    }
    *o = '\0';
    return out;
}

char *store__fts_query(const char *question)
{
    words_t *words = xmalloc(sizeof *words);
    question_words(question, words);
    char *q = NULL;
    if (words->n > 0) {
        size_t idx[STORE__QUERY_MAX_WORDS];
        for (size_t i = 0; i < words->n; i++)
            idx[i] = i;
        q = quote_words(words, idx, words->n);
    }
    free(words);
    return q;
}

/* ==================================================================================== */
/* search                                                                                */
/* ==================================================================================== */

/* Matches of an FTS5 query in the whole corpus (all accounts), counted up to cap. */
static int count_matches(store_conn_t *c, const char *query, int64_t cap, int64_t *n_out)
{
    static const char sql[] =
        "SELECT count(*) FROM (SELECT 1 FROM corpus WHERE corpus MATCH ?1 LIMIT ?2)";
    sqlite3_stmt *s;
    int rc = store__prepare(c, sql, &s);
    if (rc < 0)
        return rc;
    store__bind_text(s, 1, query);
    sqlite3_bind_int64(s, 2, cap);
    if ((rc = store__step(c, s, "corpus_search")) < 0)
        return rc;
    *n_out = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return 0;
}

/* Picks the query to rank (see the comment of store_corpus_search). Sets *query (malloc'd; NULL
 * when nothing can match) and *capped. */
static int plan_query(store_conn_t *c, const words_t *words, char **query, bool *capped)
{
    size_t idx[STORE__QUERY_MAX_WORDS];
    int64_t df[STORE__QUERY_MAX_WORDS];
    const int64_t cap = STORE__SEARCH_RANK_BUDGET + 1;
    *query = NULL;
    *capped = false;
    for (size_t i = 0; i < words->n; i++)
        idx[i] = i;
    char *all = quote_words(words, idx, words->n);
    int64_t n_all = 0;
    int rc = count_matches(c, all, cap, &n_all);
    if (rc < 0 || n_all == 0) {
        free(all);
        return rc;
    }
    if (n_all <= STORE__SEARCH_RANK_BUDGET) {
        *query = all; /* the usual case: rank every match */
        return 0;
    }
    free(all);
    /* Too many matches to rank them all: keep the rarest words while their matches fit. */
    size_t n = 0;
    for (size_t i = 0; i < words->n; i++) {
        char *one = quote_words(words, &i, 1);
        rc = count_matches(c, one, cap, &df[i]);
        free(one);
        if (rc < 0)
            return rc;
        if (df[i] > 0)
            idx[n++] = i;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort by df, rarest first (n <= 32) */
        for (size_t k = i; k > 0 && df[idx[k]] < df[idx[k - 1]]; k--) {
            size_t t = idx[k];
            idx[k] = idx[k - 1];
            idx[k - 1] = t;
        }
    if (n == 0)
        return 0;
    size_t keep = 1;
    int64_t sum = df[idx[0]];
    while (keep < n && sum + df[idx[keep]] <= STORE__SEARCH_RANK_BUDGET)
        sum += df[idx[keep++]];
    *capped = sum > STORE__SEARCH_RANK_BUDGET;
    *query = quote_words(words, idx, keep);
    return 0;
}

int store_corpus_search(store_t *st, int64_t account_id, const char *question, int limit,
                        store_passage_t **out, size_t *n_out)
{
    /* ORDER BY rank (= bm25(corpus), FTS5's default rank) lets FTS5 sort the matches itself. */
    static const char sql_ranked[] =
        "SELECT corpus.media_id, m.title, m.kind, corpus.t_start, corpus.t_end, m.created_at,"
        " corpus.text, corpus.rank"
        " FROM corpus JOIN media AS m ON m.id = corpus.media_id"
        " WHERE corpus MATCH ?1 AND corpus.account_id = ?2 AND m.account_id = ?2"
        " ORDER BY corpus.rank LIMIT ?3";
    /* The account's newest ?4 matches, ranked. */
    static const char sql_capped[] =
        "SELECT c.media_id, m.title, m.kind, c.t_start, c.t_end, m.created_at, c.text, c.score"
        " FROM (SELECT media_id, t_start, t_end, text, bm25(corpus) AS score FROM corpus"
        "       WHERE corpus MATCH ?1 AND account_id = ?2 ORDER BY rowid DESC LIMIT ?4) AS c"
        " JOIN media AS m ON m.id = c.media_id AND m.account_id = ?2"
        " ORDER BY c.score LIMIT ?3";
    if (out)
        *out = NULL;
    if (n_out)
        *n_out = 0;
    if (!question || limit < 1 || !out || !n_out)
        return -EINVAL;
    store_passage_t *list = NULL;
    size_t n = 0, cap = 0;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    char *query = NULL;
    bool capped = false;
    words_t *words = xmalloc(sizeof *words);
    int rc = 0;
    question_words(question, words);
    if (words->n == 0)
        goto out; /* no words: nothing to look for */
    if ((rc = store__acquire(st, &c)) < 0)
        goto out;
    /* One read transaction: the counts and the search see the same corpus. */
    if ((rc = store__exec(c, "BEGIN", "corpus_search")) < 0)
        goto out;
    if ((rc = plan_query(c, words, &query, &capped)) < 0 || !query)
        goto out;
    if ((rc = store__prepare(c, capped ? sql_capped : sql_ranked, &s)) < 0)
        goto out;
    store__bind_text(s, 1, query);
    sqlite3_bind_int64(s, 2, account_id);
    sqlite3_bind_int(s, 3, limit);
    if (capped)
        sqlite3_bind_int(s, 4, STORE__SEARCH_CAPPED);
    while ((rc = store__step(c, s, "corpus_search")) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            list = xrealloc(list, cap * sizeof *list);
        }
        store_passage_t *p = &list[n++];
        memset(p, 0, sizeof *p);
        p->media_id = sqlite3_column_int64(s, 0);
        p->title = store__col_strdup(s, 1);
        store__col_copy(s, 2, p->kind, sizeof p->kind);
        p->t_start = sqlite3_column_double(s, 3);
        p->t_end = sqlite3_column_double(s, 4);
        p->created_at = sqlite3_column_int64(s, 5);
        p->text = store__col_strdup(s, 6);
        if (!p->text)
            p->text = xstrdup("");
        p->score = sqlite3_column_double(s, 7);
    }
    sqlite3_reset(s);
out:
    if (c)
        store__rollback(c); /* ends the read transaction */
    store__release(st, c);
    free(query);
    free(words);
    if (rc < 0) {
        store_passage_list_free(&list, n);
        return rc;
    }
    *out = list ? list : xcalloc(1, sizeof *list);
    *n_out = n;
    return 0;
}

void store_passage_list_free(store_passage_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++) {
        free((*list)[i].title);
        free((*list)[i].text);
    }
    free(*list);
    *list = NULL;
}

int store_corpus_list(store_t *st, int64_t account_id, int64_t after, int limit,
                      store_passage_t **out, size_t *n_out, int64_t *next_after)
{
    static const char sql[] =
        "SELECT corpus.rowid, corpus.media_id, m.title, m.kind, corpus.t_start, corpus.t_end,"
        " m.created_at, corpus.text"
        " FROM corpus JOIN media AS m ON m.id = corpus.media_id AND m.account_id = ?1"
        " WHERE corpus.account_id = ?1 AND corpus.rowid > ?2 ORDER BY corpus.rowid LIMIT ?3";
    *out = NULL;
    *n_out = 0;
    *next_after = after;
    if (limit < 1 || limit > 1000 || after < 0)
        return -EINVAL;
    store_passage_t *list = xcalloc((size_t)limit, sizeof *list);
    size_t n = 0;
    store_conn_t *c = NULL;
    sqlite3_stmt *s;
    int rc = store__acquire(st, &c);
    if (rc < 0)
        goto out;
    if ((rc = store__prepare(c, sql, &s)) < 0)
        goto out;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, after);
    sqlite3_bind_int(s, 3, limit);
    while (n < (size_t)limit && (rc = store__step(c, s, "corpus_list")) == 1) {
        store_passage_t *p = &list[n++];
        *next_after = sqlite3_column_int64(s, 0);
        p->media_id = sqlite3_column_int64(s, 1);
        p->title = store__col_strdup(s, 2);
        store__col_copy(s, 3, p->kind, sizeof p->kind);
        p->t_start = sqlite3_column_double(s, 4);
        p->t_end = sqlite3_column_double(s, 5);
        p->created_at = sqlite3_column_int64(s, 6);
        p->text = store__col_strdup(s, 7);
        if (!p->text)
            p->text = xstrdup("");
    }
    if (rc > 0)
        rc = 0;
out:
    store__release(st, c);
    if (rc < 0) {
        store_passage_list_free(&list, n);
        *next_after = after;
        return rc;
    }
    *out = list;
    *n_out = n;
    return 0;
}
