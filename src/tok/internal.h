/* tok/internal.h: what the tokenizer's files share — the tok_t layout, Unicode classes and the
 * GPT-2 pre-tokenizer (unicode.c), hash maps (map.c), the candidate heap (heap.c), and the encoders of the two kinds (bpe.c,
 * spm.c) that tok.c dispatches to. */
#ifndef PERSONA_TOK_INTERNAL_H
#define PERSONA_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tok/tok.h"

/* llama.cpp's token types, as stored in tokenizer.ggml.token_type */
enum {
    TOK__UNDEFINED = 0,
    TOK__NORMAL = 1,
    TOK__UNKNOWN = 2,
    TOK__CONTROL = 3,
    TOK__USER_DEFINED = 4,
    TOK__UNUSED = 5,
    TOK__BYTE = 6,
};

#define TOK__MIN_TRAIN_VOCAB (256 + 3)
#define TOK__MAX_TRAIN_VOCAB 65536
/* Loaded vocabularies: the largest in use have ~260k tokens; this bounds what a file can make us
 * build. */
#define TOK__MAX_VOCAB (1 << 21)

/* ---- heap.c: the merge candidates of both encoders, a binary max-heap ---- */
typedef struct {
    float prio;          /* higher merges first: BPE minus the merge rank, SPM the token's score */
    int32_t left, right; /* symbol positions; equal prio: the leftmost first */
    int32_t a, b, c;     /* the encoder's own values (to detect stale candidates) */
} tok__cand_t;
void tok__heap_push(tok__cand_t *h, size_t *n, tok__cand_t c);
tok__cand_t tok__heap_pop(tok__cand_t *h, size_t *n); /* *n > 0 */

/* ---- unicode.c ---- */
typedef struct {
    uint32_t lo, hi;
} tok__range_t;
extern const tok__range_t tok__letter_ranges[];
extern const size_t tok__letter_ranges_n;
extern const tok__range_t tok__number_ranges[];
extern const size_t tok__number_ranges_n;

enum { TOK__CLS_OTHER = 0, TOK__CLS_LETTER, TOK__CLS_NUMBER, TOK__CLS_SPACE };
int tok__cp_class(uint32_t cp);
/* Decodes the UTF-8 character at s (n > 0 bytes left) into *cp; returns its length. A byte that
 * does not start a well-formed character is a character of its own: length 1, cp = 0xFFFD (class
 * other), so every byte string splits into characters and nothing is lost. */
size_t tok__utf8_next(const uint8_t *s, size_t n, uint32_t *cp);
/* GPT-2's pre-tokenizer: the end of the piece that starts at pos (< n). */
size_t tok__pretok_next(const uint8_t *s, size_t n, size_t pos);
/* The pre-tokenizers of files whose tokenizer.ggml.pre names another one (llama.cpp's regexes):
 * LLAMA3 `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *         ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`, QWEN2 the same with \p{N} one digit
 * at a time. */
enum { TOK__PRE_GPT2 = 0, TOK__PRE_LLAMA3, TOK__PRE_QWEN2 };
size_t tok__pretok_next_kind(int pre, const uint8_t *s, size_t n, size_t pos);
/* GPT-2's byte-to-unicode table: the code point that stands for byte b in token texts, and the
 * inverse (-1 for a code point that stands for no byte). */
uint32_t tok__byte_cp(uint8_t b);
int tok__cp_byte(uint32_t cp);
/* Appends the UTF-8 encoding of cp to out (4 bytes room); returns its length. */
size_t tok__utf8_put(uint32_t cp, uint8_t *out);

/* ---- map.c: open-addressing hash maps, sized once (no deletion) ---- */
typedef struct {
    const uint8_t *base; /* key i is base[key_off[i] .. + key_len[i]) (borrowed) */
    const uint32_t *key_off, *key_len;
    int32_t *slots; /* id, or -1 */
    size_t mask;
} tok__strmap_t;
/* Maps the strings of ids 0..n-1 to their ids; the first id wins for duplicate strings. The
 * arrays are borrowed and must not move while the map is used. 0 or -ENOMEM. */
int tok__strmap_build(tok__strmap_t *m, const uint8_t *base, const uint32_t *key_off,
                      const uint32_t *key_len, size_t n);
int32_t tok__strmap_get(const tok__strmap_t *m, const void *s, size_t len);
void tok__strmap_free(tok__strmap_t *m);

typedef struct {
    uint64_t *keys; /* 0 = empty; stored keys are key + 1 */
    uint64_t *vals;
    size_t mask, n;
} tok__u64map_t;
int tok__u64map_init(tok__u64map_t *m, size_t expected);
/* Inserts or replaces; grows as needed. 0 or -ENOMEM. */
int tok__u64map_put(tok__u64map_t *m, uint64_t key, uint64_t val);
bool tok__u64map_get(const tok__u64map_t *m, uint64_t key, uint64_t *val);
void tok__u64map_free(tok__u64map_t *m);
uint64_t tok__hash(const void *p, size_t n);

/* map.c: growth of what the input sizes — 0 or -ENOMEM, never an abort (STYLE: allocations
 * sized by input return errors). tok__grow makes *pp (an array of elem-byte items with *cap
 * room) hold at least need items. */
int tok__grow(void *pp, size_t *cap, size_t need, size_t elem);
typedef struct {
    uint8_t *data;
    size_t len, cap;
} tok__buf_t;
int tok__buf_add(tok__buf_t *b, const void *p, size_t n);

/* ---- the tokenizer ---- */
struct tok {
    tok_kind_t kind;
    int n_vocab;
    /* token i: its text as stored in GGUF, and the bytes it decodes to; both in arena */
    uint8_t *arena;
    uint32_t *text_off, *text_len, *piece_off, *piece_len;
    int32_t *type;
    float *score;  /* SPM only */
    tok__strmap_t text_map;
    int bos, eos, unk;
    bool add_bos, add_space_prefix;
    int byte_tok[256]; /* the token of each byte (GPT-2 byte token / SPM <0xXX>) */
    /* GPT-2 merges: (left << 32 | right) -> (rank << 32 | result), and the list in rank order */
    tok__u64map_t merges;
    int32_t *merge_pair; /* 2 * n_merges */
    int n_merges;
    /* tokens split out of text before encoding, longest text first (control ones only with
     * parse_special) */
    int32_t *special;
    int n_special;
    int pre_kind;              /* TOK__PRE_*: the splitter tokenizer.ggml.pre names */
    char *pre, *chat_template; /* NULL when absent */
    size_t pre_len, chat_template_len;
};

static inline const uint8_t *tok__text(const tok_t *t, int id, size_t *len)
{
    *len = t->text_len[id];
    return t->arena + t->text_off[id];
}

/* bpe.c: appends the ids of one pre-tokenized word. 0 or -ENOMEM. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} tok__ids_t;
int tok__ids_push(tok__ids_t *v, int32_t id);
int tok__bpe_word(const tok_t *t, const uint8_t *w, size_t n, tok__ids_t *out);
/* tok.c, for train.c: a GPT-2 tokenizer from byte-level token texts, their types and the merges
 * as id pairs in rank order. 0, or negative with err set. */
int tok__new_trained(const char *const *texts, const size_t *lens, const int32_t *types, int n,
                     const int32_t *pairs, int n_merges, tok_t **out, char *err, size_t errlen);
/* spm.c: appends the ids of one fragment of raw text (no special tokens in it). */
int tok__spm_fragment(const tok_t *t, const uint8_t *s, size_t n, tok__ids_t *out);

#endif
