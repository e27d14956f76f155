/* tok: tokenizers of the text engine — byte-level BPE trained on a corpus, and the two kinds that
 * GGUF files carry (`tokenizer.ggml.model` "gpt2": byte-level BPE with merges; "llama":
 * SentencePiece-style with scores and <0xXX> byte fallback).
 *
 * Every tokenizer round-trips any byte string exactly: tok_decode(tok_encode(s)) == s, for
 * invalid UTF-8 and NUL bytes too.
 *
 * Trained tokenizers are stored the way llama.cpp reads them: model "gpt2", pre-tokenizer "gpt-2"
 * (GPT-2's regular expression, with Unicode letter/number classes), tokens as GPT-2's
 * byte-to-unicode strings, merges "a b" in rank order, then control tokens <|endoftext|> (BOS and
 * EOS), <|im_start|> and <|im_end|> (ChatML, see src/llm). Keys written: tokenizer.ggml.model,
 * .pre, .tokens, .token_type, .merges, .bos_token_id, .eos_token_id, .add_bos_token,
 * tokenizer.chat_template.
 *
 * Training is deterministic (ties broken by the lexicographically smallest pair) and bounded:
 * vocab_size in [256 + 3, 65536].
 *
 * Files read: "gpt2" with GPT-2's splitter, or Llama 3's / Qwen2's where tokenizer.ggml.pre names
 * them (llama-bpe, llama3, llama-v3; qwen2); "llama" as llama.cpp's SPM tokenizer does it, with
 * the few departures exact round trips need. docs/formats.md has the rules and what is checked.
 *
 * A tok_t is immutable after creation and safe to share between threads. */
#ifndef PERSONA_TOK_H
#define PERSONA_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"

typedef struct tok tok_t;

typedef enum { TOK_KIND_GPT2 = 0, TOK_KIND_SPM = 1 } tok_kind_t;

/* Trains a byte-level BPE of vocab_size tokens (specials included) on n texts. */
int tok_train(const char *const *texts, const size_t *lens, size_t n, int vocab_size, tok_t **out,
              char *err, size_t errlen);
/* Reads the tokenizer.ggml.* keys of a GGUF file. */
int tok_from_gguf(const gguf_t *g, tok_t **out, char *err, size_t errlen);
/* Writes this tokenizer's keys (see above) into w. */
int tok_to_gguf(const tok_t *t, gguf_writer_t *w);
void tok_free(tok_t **t); /* NULL-safe */

tok_kind_t tok_kind(const tok_t *t);
int tok_vocab_size(const tok_t *t);
int tok_bos(const tok_t *t); /* -1 when none */
int tok_eos(const tok_t *t); /* -1 when none */
bool tok_add_bos(const tok_t *t); /* whether prompts start with BOS */
/* Id of a token whose text is exactly s (e.g. "<|im_end|>"), or -1. */
int tok_find(const tok_t *t, const char *s);
bool tok_is_control(const tok_t *t, int id);

/* Encodes len bytes of text. With parse_special, the text of control tokens in the input
 * (e.g. "<|im_start|>") becomes those tokens; without it, it is plain text. Does not add BOS.
 * *ids_out is malloc'd (caller frees); returns 0 or -1 (out of memory). */
int tok_encode(const tok_t *t, const char *text, size_t len, bool parse_special, int32_t **ids_out,
               size_t *n_out);
/* The bytes a token stands for (control tokens: their text). Borrowed from t; len 0 for an
 * unknown id. */
const char *tok_piece(const tok_t *t, int id, size_t *len);
/* Decodes ids into a malloc'd, NUL-terminated string (*len excludes the NUL). With
 * skip_control, control tokens decode to nothing. 0 or -1. */
int tok_decode(const tok_t *t, const int32_t *ids, size_t n, bool skip_control, char **out,
               size_t *len);

#endif
