/* Internals of the tokenizer (formats/tokenizer/tokenizer.h): the pipeline stages of
 * HuggingFace tokenizers (normalizer, pre-tokenizer, model, post-processor,
 * decoder) as plain structs, shared by the loaders (tokenizer.json,
 * tokenizer.model, vocab.json + merges.txt) and the encoder/decoder. */
#ifndef MLC_TOK_IMPL_H
#define MLC_TOK_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>

#include "formats/tokenizer/tok_map.h"
#include "formats/tokenizer/tokenizer.h"

/* Token ids are dense tables indexed by id: a file naming id 2^31-1
 * would ask for gigabytes. Real vocabularies stay far below this. */
#define TOK_MAX_ID 16777215

/* ---- patterns (Split, Replace): a literal string or a regex ---- */

struct tok_pattern {
    char *lit;                /* literal (when re == NULL) */
    size_t litlen;
    pcre2_code *re;
    char *quoted;             /* regex: the pattern, at most ~60 bytes of it */
    char *where;              /* regex: "FILE: FIELD", for messages */
};

/* A regex may backtrack at most TOK_MATCH_STEPS_BASE steps plus
 * TOK_MATCH_STEPS_PER_BYTE per byte of the text it searches: real
 * tokenizers' patterns need a few steps per byte; a catastrophic one like
 * (a+)+$ needs exponentially many, and is refused instead. */
#define TOK_MATCH_STEPS_BASE 100000u
#define TOK_MATCH_STEPS_PER_BYTE 1000u

/* Compile an Oniguruma-style pattern (as tokenizer.json holds) with PCRE2
 * in UTF + UCP mode, JIT-compiled. -1 with last_error(). */
int tok_pattern_regex(struct tok_pattern *p, const char *src, size_t len);
void tok_pattern_literal(struct tok_pattern *p, const char *s, size_t len);
/* Name the pattern in messages ("FILE: FIELD"). */
void tok_pattern_set_where(struct tok_pattern *p, const char *where);
void tok_pattern_free(struct tok_pattern *p);
/* Next match in s[0..n) at or after `from`: 1 and [*ms,*me), 0 if none,
 * -1 when the regex ran past its step limit (the message is kept for
 * tok_pattern_failed()). */
int tok_pattern_next(const struct tok_pattern *p, const char *s, size_t n, size_t from, size_t *ms, size_t *me);
/* Whether a match of this thread failed since the last call (and then
 * last_error() says which pattern, on how much text); clears the flag.
 * Encoding and decoding call it so that a pattern that gave up never
 * passes for "no match". */
bool tok_pattern_failed(void);
/* Replace every match of p in s by `with`, appending to out. */
void tok_pattern_replace(const struct tok_pattern *p, const char *s, size_t n, const char *with, size_t wlen,
                         struct buf *out);

/* ---- normalizers ---- */

enum norm_kind {
    NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWERCASE, NORM_STRIP, NORM_STRIP_ACCENTS,
    NORM_PREPEND, NORM_REPLACE, NORM_SEQUENCE, NORM_BERT, NORM_NMT, NORM_PRECOMPILED,
    NORM_BYTELEVEL,
};

struct tok_charsmap;   /* SentencePiece precompiled normalization (tok_spm.c) */

struct tok_norm {
    enum norm_kind kind;
    bool left, right;                      /* Strip */
    char *str;                             /* Prepend text, Replace content */
    size_t strlen_;
    struct tok_pattern pat;                /* Replace */
    bool clean_text, chinese_chars, lowercase; /* Bert */
    int strip_accents;                     /* Bert: -1 unset (follows lowercase), 0, 1 */
    struct tok_charsmap *charsmap;         /* Precompiled */
    struct tok_norm **kids;                /* Sequence */
    size_t nkids;
};

/* Normalize s[0..n) into out (replacing its contents). */
void tok_normalize(const struct tok_norm *nm, const char *s, size_t n, struct buf *out);
void tok_norm_free(struct tok_norm *nm);

/* ---- pre-tokenizers ---- */

/* Pieces of text: spans of one buffer. at_start: the piece begins at the
 * start of the input (Metaspace's prepend_scheme "first" needs it). */
struct tok_span {
    size_t off, len;
    bool at_start;
};

struct tok_pieces {
    struct buf text;
    struct tok_span *v;
    size_t n, cap;
};

void tok_pieces_reset(struct tok_pieces *p);
void tok_pieces_add(struct tok_pieces *p, const char *s, size_t len, bool at_start);
void tok_pieces_free(struct tok_pieces *p);

enum split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

enum pretok_kind {
    PT_BYTELEVEL, PT_SPLIT, PT_DIGITS, PT_METASPACE, PT_WHITESPACE, PT_WHITESPACE_SPLIT,
    PT_PUNCTUATION, PT_BERT, PT_CHAR_DELIMITER, PT_SEQUENCE,
};

struct tok_pretok {
    enum pretok_kind kind;
    enum split_behavior behavior;
    bool invert;                 /* Split */
    struct tok_pattern pat;      /* Split */
    bool add_prefix_space;       /* ByteLevel */
    bool use_regex;              /* ByteLevel */
    bool defer_bytes;            /* ByteLevel: leave raw bytes; the BPE
                                    model maps them (after its cache) */
    bool individual_digits;      /* Digits */
    char replacement[8];         /* Metaspace (UTF-8), CharDelimiterSplit */
    size_t replacement_len;
    int32_t replacement_cp;
    enum prepend_scheme prepend;
    bool split;                  /* Metaspace */
    struct tok_pretok **kids;    /* Sequence */
    size_t nkids;
};

/* Split every piece of in into out (out is reset first). */
void tok_pretokenize(struct tok_pretok *pt, const struct tok_pieces *in, struct tok_pieces *out);
void tok_pretok_free(struct tok_pretok *pt);
/* Drop steps that change nothing (a deferred ByteLevel without regex and
 * prefix space) and unwrap one-step sequences; returns the new root. */
struct tok_pretok *tok_pretok_simplify(struct tok_pretok *pt);
/* A Split step without copying: fn is called for each piece of s. */
void tok_pretok_split_direct(const struct tok_pretok *pt, const char *s, size_t n,
                             void (*fn)(void *ctx, const char *p, size_t len), void *ctx);
/* The GPT-2 pattern ByteLevel uses with use_regex. */
extern const char tok_gpt2_pattern[];

/* ---- models ---- */

enum model_kind { MODEL_BPE, MODEL_WORDPIECE, MODEL_UNIGRAM, MODEL_SPM_BPE };

struct word_cache;

struct tok_bpe {
    struct strmap vocab;         /* token -> id */
    struct u64map merges;        /* (left << 32 | right) -> (rank << 32 | merged) */
    int32_t unk_id;              /* -1: none */
    bool fuse_unk, byte_fallback, ignore_merges;
    bool map_bytes;              /* pieces come as raw bytes (a deferred
                                    ByteLevel step): map them first */
    char *prefix, *suffix;       /* continuing_subword_prefix, end_of_word_suffix */
    size_t prefix_len, suffix_len;
    int32_t byte_ids[256];       /* "<0xXX>" tokens, -1 if absent */
    struct word_cache *cache;
};

struct tok_unigram {
    struct strmap vocab;         /* piece -> id */
    double *scores;
    size_t n;
    int32_t unk_id;
    double min_score;
    size_t max_piece_len;        /* bytes */
    bool byte_fallback;
    int32_t byte_ids[256];
    uint8_t *is_unused;          /* SentencePiece: unused pieces never match */
    uint8_t *is_user;            /* SentencePiece: user-defined pieces */
    bool spm_scores;             /* SentencePiece's float arithmetic and
                                    user-defined bonus */
    float spm_max_score;
};

struct tok_wordpiece {
    struct strmap vocab;
    int32_t unk_id;
    char *prefix;
    size_t prefix_len;
    size_t max_chars;
};

/* SentencePiece piece types */
#define SPM_NORMAL 1
#define SPM_UNKNOWN 2
#define SPM_CONTROL 3
#define SPM_USER 4
#define SPM_UNUSED 5
#define SPM_BYTE 6

/* SentencePiece BPE: merges by piece score, not by rank. */
struct tok_spm_bpe {
    struct strmap vocab;
    float *scores;
    uint8_t *type;               /* SentencePiece piece types */
    size_t n;
    size_t user_max;             /* longest user-defined piece (bytes) */
    int32_t unk_id;
    bool byte_fallback;
    int32_t byte_ids[256];
};

struct tok_model {
    enum model_kind kind;
    struct tok_bpe bpe;
    struct tok_unigram uni;
    struct tok_wordpiece wp;
    struct tok_spm_bpe sbpe;
};

void tok_bpe_init(struct tok_bpe *b);
void tok_bpe_free(struct tok_bpe *b);
/* Add a merge of two tokens (by string). -1 if either part or the result
 * is not in the vocabulary. */
int tok_bpe_add_merge(struct tok_bpe *b, const char *a, size_t alen, const char *c, size_t clen,
                      uint32_t rank);
/* Many merges at once, with memory prefetching: how a 280k-merge
 * vocabulary loads fast. Returns -1, or the index of the first merge that
 * failed. */
struct merge_text {
    const char *a, *c;
    uint32_t alen, clen;
    uint32_t rank;
};
long tok_bpe_add_merges(struct tok_bpe *b, const struct merge_text *m, size_t n);
void tok_bpe_encode(struct tok_bpe *b, const char *s, size_t n, struct tok_ids *out);

void tok_unigram_encode(const struct tok_unigram *u, const char *s, size_t n, struct tok_ids *out);
void tok_unigram_free(struct tok_unigram *u);
void tok_wordpiece_encode(const struct tok_wordpiece *w, const char *s, size_t n, struct tok_ids *out);
void tok_wordpiece_free(struct tok_wordpiece *w);
void tok_spm_bpe_encode(const struct tok_spm_bpe *m, const char *s, size_t n, struct tok_ids *out);
void tok_spm_bpe_free(struct tok_spm_bpe *m);

/* ---- post-processors ---- */

enum post_kind { POST_TEMPLATE, POST_BYTELEVEL, POST_BERT, POST_ROBERTA, POST_SEQUENCE };

struct tok_post {
    enum post_kind kind;
    /* Template (single sequence): items in order; seq marks "$A" */
    struct post_item {
        bool seq;
        int32_t *ids;
        size_t n;
    } *items;
    size_t nitems;
    int32_t cls_id, sep_id;      /* Bert, Roberta */
    struct tok_post **kids;
    size_t nkids;
};

void tok_post_free(struct tok_post *p);

/* ---- decoders ---- */

enum dec_kind {
    DEC_BYTELEVEL, DEC_METASPACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_REPLACE,
    DEC_WORDPIECE, DEC_BPE, DEC_CTC, DEC_SEQUENCE,
};

struct tok_dec {
    enum dec_kind kind;
    char replacement[8];         /* Metaspace */
    size_t replacement_len;
    int32_t replacement_cp;
    enum prepend_scheme prepend;
    int32_t strip_cp;            /* Strip content */
    size_t strip_start, strip_stop;
    struct tok_pattern pat;      /* Replace */
    char *content;
    size_t content_len;
    char *prefix;                /* WordPiece prefix, BPE suffix, CTC pad */
    size_t prefix_len;
    bool cleanup;                /* WordPiece, CTC */
    char *word_delim;            /* CTC */
    struct tok_dec **kids;
    size_t nkids;
};

/* A list of strings, the unit decoders work on. */
struct tok_strs {
    struct buf data;
    size_t *off, *len;
    size_t n, cap;
};

void tok_strs_reset(struct tok_strs *s);
void tok_strs_add(struct tok_strs *s, const char *p, size_t len);
void tok_strs_free(struct tok_strs *s);
/* Run the decoder chain on tokens (in place) and append the joined text. */
void tok_decode_chain(const struct tok_dec *d, struct tok_strs *tokens, struct buf *out);
void tok_dec_free(struct tok_dec *d);

/* ---- added tokens ---- */

struct added_token {
    char *content;
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
};

/* Byte trie for leftmost-longest matching of added tokens. */
struct added_trie {
    struct u64map edges;         /* (node << 8 | byte) -> child node */
    int32_t *term;               /* node -> index into tokens, or -1 */
    size_t nodes, cap;
    uint8_t first[32];           /* bit set of first bytes */
};

/* ---- the tokenizer ---- */

struct tokenizer {
    const char *source;
    struct tok_norm *norm;           /* may be NULL */
    struct tok_pretok *pretok;       /* may be NULL */
    struct tok_model model;
    struct tok_post *post;           /* may be NULL */
    struct tok_dec *dec;             /* may be NULL */
    struct added_token *added;
    size_t nadded;
    struct added_trie trie_raw;      /* tokens with normalized == false */
    struct added_trie trie_norm;     /* tokens with normalized == true */
    struct buf piece_text;           /* model vocabulary strings (file form) */
    size_t *piece_off;               /* SIZE_MAX: no such id */
    uint32_t *piece_len;
    size_t npieces;                  /* room in piece_off / piece_len */
    size_t nmodel;                   /* largest model id + 1 */
    int32_t *added_index;            /* id -> index in added[], or -1; size vocab_size */
    size_t vocab_size;
    int32_t bos_id, eos_id;
    bool spm;                        /* SentencePiece decoding rules */
    bool spm_add_dummy_prefix, spm_remove_extra_ws, spm_escape_ws;
    struct tok_charsmap *spm_charsmap;
    uint8_t *spm_types;              /* SentencePiece piece type of each id */
    size_t spm_user_max;             /* longest user-defined piece (bytes) */
    pthread_mutex_t lock;            /* encode: word cache and regex match data */
    struct tok_pieces scratch[3];
    struct buf nbuf;
};

struct tokenizer *tok_new(const char *source);
/* After the model vocabulary and added tokens are set: build the id tables
 * and the added-token tries. -1 on duplicate ids. */
int tok_finish(struct tokenizer *t, const char *file);
void tok_reserve_pieces(struct tokenizer *t, size_t n);
void tok_set_piece(struct tokenizer *t, int32_t id, const char *s, size_t len);
void tok_add_token(struct tokenizer *t, const struct added_token *a);

/* tokenizer.json (tok_json.c), tokenizer.model (tok_spm.c),
 * vocab.json + merges.txt (tok_gpt2.c): fill t, -1 with last_error(). */
int tok_load_json_into(struct tokenizer *t, const char *path, const char *config_path);
int tok_load_spm_into(struct tokenizer *t, const char *path);
int tok_load_gpt2_into(struct tokenizer *t, const char *vocab, const char *merges, const char *added);

/* SentencePiece normalization (tok_spm.c) */
void tok_charsmap_free(struct tok_charsmap *m);
struct tok_charsmap *tok_charsmap_parse(const unsigned char *blob, size_t n, const char *what);
/* One step of SentencePiece's use of a charsmap: the longest rule at the
 * start of s (or one character, U+FFFD for invalid UTF-8); returns the
 * bytes consumed. */
size_t tok_charsmap_prefix(const struct tok_charsmap *m, const char *s, size_t n, const char **rep, size_t *replen);
/* SentencePiece's use of a charsmap: longest rule at each position */
void tok_charsmap_normalize(const struct tok_charsmap *m, const char *s, size_t n, struct buf *out);
/* HuggingFace's "Precompiled" normalizer: per grapheme, shortest rule */
void tok_charsmap_normalize_hf(const struct tok_charsmap *m, const char *s, size_t n, struct buf *out);
void tok_spm_normalize(const struct tokenizer *t, const char *s, size_t n, struct buf *out);
void tok_spm_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                    struct buf *out);

#endif
