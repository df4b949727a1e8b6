/* The tokenizer files of a HuggingFace model directory, as mlc-cfg sees
 * them (mlc-formats.md §4): which files MLC copies and in what order, the
 * tokenizer_info MLC's runtime needs, and how many token ids a tokenizer can
 * produce (for the vocabulary checks). This reads the files only as far as
 * those questions need; the tokenizer itself lives elsewhere. */
#ifndef MLC_TOKENIZER_FILES_H
#define MLC_TOKENIZER_FILES_H

#include <jansson.h>
#include <stdbool.h>

/* tokenizer_info: how the engine post-processes token strings. */
struct tokenizer_info {
    const char *token_postproc_method;  /* "byte_fallback" or "byte_level" */
    bool prepend_space_in_encode;
    bool strip_space_in_decode;
};

/* The files MLC copies, in its order; NULL-terminated. */
extern const char *const mlc_tokenizer_files[];

/* MLC's detection from tokenizer.json (NULL: no tokenizer.json, which gives
 * MLC's defaults byte_fallback / false / false):
 *  - byte_level when the decoder (or a member of a Sequence decoder; the
 *    last one found wins) is ByteLevel, byte_fallback for ByteFallback or
 *    when neither is found;
 *  - prepend_space_in_encode for a {"type":"Prepend","prepend":"▁"}
 *    normalizer (or Sequence member);
 *  - strip_space_in_decode for a {"type":"Strip","content":" ","start":1,
 *    "stop":0} decoder (or Sequence member). */
void tokenizer_info_detect(const json_t *tokenizer_json, struct tokenizer_info *out);
json_t *tokenizer_info_to_json(const struct tokenizer_info *info);

/* What a tokenizer can produce. */
struct vocab_stats {
    long long distinct;      /* distinct token strings (HuggingFace's len(tokenizer)) */
    long long id_end;        /* largest id + 1 */
    char *largest;           /* the token with the largest id (malloc'ed; may be NULL) */
    const char *source;      /* the file the figures come from */
};

/* From tokenizer.json: model vocabulary (BPE, WordPiece, WordLevel:
 * {token: id}; Unigram: [[piece, score], ...]) plus added_tokens. Fails on
 * malformed entries and on two added tokens with the same content (MLC
 * refuses those: HuggingFace's tokenizer then misbehaves). */
int vocab_stats_tokenizer_json(const json_t *tj, const char *path, struct vocab_stats *out);
/* From a SentencePiece tokenizer.model: the number of pieces, read from the
 * protobuf's repeated field 1 without interpreting anything else. */
int vocab_stats_sentencepiece(const char *path, struct vocab_stats *out);
/* From vocab.json ({token: id}) plus added_tokens.json ({content: id}, may
 * be NULL). */
int vocab_stats_vocab_json(const char *vocab_path, const char *added_path, struct vocab_stats *out);
void vocab_stats_free(struct vocab_stats *s);

#endif
