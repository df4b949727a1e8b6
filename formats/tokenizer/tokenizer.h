/* Tokenizers of HuggingFace models: text <-> token ids, giving exactly the
 * ids and text of HuggingFace's `tokenizers` library (for tokenizer.json)
 * or of SentencePiece (for tokenizer.model).
 *
 * A tokenizer comes from a model directory the way MLC-LLM's runtime finds
 * it: tokenizer.json, else tokenizer.model, else vocab.json + merges.txt
 * (+ added_tokens.json). tokenizer_config.json beside tokenizer.json may set
 * add_bos_token / add_eos_token.
 *
 * Supported features and limits are listed in mlc-check(1), section
 * TOKENIZER. A loaded tokenizer is read-only except for an internal word
 * cache; encode calls from several threads are serialised by a lock, decode
 * calls run in parallel.
 */
#ifndef MLC_TOKENIZER_H
#define MLC_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct tokenizer;

/* A growable array of token ids. */
struct tok_ids {
    int32_t *v;
    size_t n, cap;
};

void tok_ids_push(struct tok_ids *ids, int32_t id);
void tok_ids_free(struct tok_ids *ids);

/* Load from a model directory (see above). NULL with last_error() set. */
struct tokenizer *tokenizer_load(const char *dir);
/* Load one kind explicitly. config_path may be NULL. */
struct tokenizer *tokenizer_load_json(const char *path, const char *config_path);
struct tokenizer *tokenizer_load_sentencepiece(const char *path);
struct tokenizer *tokenizer_load_bpe_files(const char *vocab_json, const char *merges_txt,
                                           const char *added_tokens_json);
void tokenizer_free(struct tokenizer *t);

/* Which file the tokenizer came from: "tokenizer.json", "tokenizer.model"
 * or "vocab.json+merges.txt". */
const char *tokenizer_source(const struct tokenizer *t);

/* The longest token text a tokenizer file may hold (real vocabularies
 * stay under a few hundred bytes); a longer one is refused on loading. */
#define TOKENIZER_MAX_TOKEN_BYTES (64u << 10)

/* Append the ids of text[0..len) to out. add_special: apply the
 * post-processor (BOS/EOS templates), as HuggingFace's
 * encode(add_special_tokens=True). The text must be valid UTF-8.
 * -1 with last_error() on invalid input, or when a pattern of the
 * tokenizer ran past its step limit (TOK_MATCH_STEPS_*): the message names
 * the file, the field and the pattern. */
int tokenizer_encode(struct tokenizer *t, const char *text, size_t len, bool add_special,
                     struct tok_ids *out);

/* Append the text of ids to out (always valid UTF-8). skip_special drops
 * special tokens. Ids outside the vocabulary are skipped. -1 with
 * last_error() when a decoder's regex ran past its step limit. */
int tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                      struct buf *out);

/* The vocabulary string of a token (as stored in the tokenizer file, e.g.
 * "Ġworld" or "▁the"), or NULL for an unknown id. */
const char *tokenizer_id_to_piece(const struct tokenizer *t, int32_t id, size_t *len);
/* The id of a vocabulary string or added token ("<|eot_id|>"), or -1. */
int32_t tokenizer_piece_to_id(const struct tokenizer *t, const char *piece, size_t len);
bool tokenizer_is_special(const struct tokenizer *t, int32_t id);
/* One more than the largest id (model vocabulary plus added tokens). */
size_t tokenizer_vocab_size(const struct tokenizer *t);
/* BOS/EOS ids where the files name them, else -1. */
int32_t tokenizer_bos_id(const struct tokenizer *t);
int32_t tokenizer_eos_id(const struct tokenizer *t);

/* Streaming detokenization: feed ids one at a time and get the text they
 * add. Text is held back while it would end inside a UTF-8 character (or
 * inside a byte-fallback sequence), so what comes out is always whole
 * characters, and the concatenation of all output equals
 * tokenizer_decode() of all ids. */
struct tok_stream;

struct tok_stream *tok_stream_new(const struct tokenizer *t, bool skip_special);
/* Append the new text to out. */
void tok_stream_put(struct tok_stream *s, int32_t id, struct buf *out);
/* Append whatever is still held back (incomplete sequences become U+FFFD,
 * as tokenizer_decode would print them). */
void tok_stream_finish(struct tok_stream *s, struct buf *out);
void tok_stream_free(struct tok_stream *s);

#endif
