#include "tok_impl.h"
int tok_load_spm_into(struct tokenizer *t, const char *path) { (void)t; return fail("%s: not yet", path); }
void tok_charsmap_free(struct tok_charsmap *m) { (void)m; }
struct tok_charsmap *tok_charsmap_parse(const unsigned char *blob, size_t n, const char *what) { (void)blob; (void)n; fail("%s: x", what); return NULL; }
void tok_charsmap_normalize(const struct tok_charsmap *m, const char *s, size_t n, struct buf *out) { (void)m; buf_add(out, s, n); }
void tok_spm_normalize(const struct tokenizer *t, const char *s, size_t n, struct buf *out) { (void)t; buf_add(out, s, n); }
void tok_spm_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool skip_special, struct buf *out) { (void)t; (void)ids; (void)n; (void)skip_special; (void)out; }
void tok_spm_bpe_encode(const struct tok_spm_bpe *m, const char *s, size_t n, struct tok_ids *out) { (void)m; (void)s; (void)n; (void)out; }
void tok_spm_bpe_free(struct tok_spm_bpe *m) { (void)m; }
