/* Tokenizer components on hand-made tokenizer.json files, with ids worked
 * out by hand from HuggingFace tokenizers' rules (the real tokenizers are
 * checked against HuggingFace itself in t5000/t5010).
 *
 * Many cases use a BPE model with ignore_merges and a vocabulary holding the
 * pieces a pre-tokenizer or normalizer should produce: each piece then
 * becomes one id, so the ids show exactly how the text was cut. */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/atomic.h"
#include "common/fsutil.h"
#include "common/engine/genstop.h"
#include "common/jdom.h"
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tokenizer.h"
#include "tests/unit/test.h"

static char *tmp_dir(void)
{
    char tmpl[] = "/tmp/mlc-tok-test.XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) abort();
    return xstrdup(d);
}

/* Load a tokenizer.json given as text (and a tokenizer_config.json). */
static struct tokenizer *load2(const char *json, const char *config)
{
    char *d = tmp_dir();
    char *p = path_join(d, "tokenizer.json"), *c = path_join(d, "tokenizer_config.json");
    if (atomic_write_file(p, json, strlen(json))) abort();
    if (config && atomic_write_file(c, config, strlen(config))) abort();
    struct tokenizer *t = tokenizer_load(d);
    if (!t) printf("# load failed: %s\n", last_error());
    remove_tree(d);
    free(p);
    free(c);
    free(d);
    return t;
}

static struct tokenizer *load(const char *json)
{
    return load2(json, NULL);
}

static void ids_str(const struct tok_ids *ids, char *out, size_t n)
{
    size_t w = 0;
    out[0] = 0;
    for (size_t i = 0; i < ids->n && w + 16 < n; i++) w += (size_t)snprintf(out + w, n - w, "%s%d", i ? " " : "", ids->v[i]);
}

#define CHECK_ENC(t, text, special, want)                                          \
    do {                                                                           \
        struct tok_ids ids_ = {0};                                                 \
        char got_[1024];                                                           \
        if (!(t)) { TEST_FAIL_AT("no tokenizer"); break; }                         \
        if (tokenizer_encode((t), (text), strlen(text), (special), &ids_))         \
            TEST_FAIL_AT("encode failed: %s", last_error());                       \
        ids_str(&ids_, got_, sizeof got_);                                         \
        if (strcmp(got_, (want))) TEST_FAIL_AT("encode(\"%s\") = [%s], expected [%s]", (text), got_, (want)); \
        tok_ids_free(&ids_);                                                       \
    } while (0)

#define CHECK_DEC(t, idlist, skip, want)                                           \
    do {                                                                           \
        int32_t v_[] = idlist;                                                     \
        struct buf b_ = BUF_INIT;                                                  \
        buf_init(&b_);                                                             \
        if (!(t)) { TEST_FAIL_AT("no tokenizer"); break; }                         \
        tokenizer_decode((t), v_, sizeof v_ / sizeof v_[0], (skip), &b_);          \
        if (strcmp(b_.data, (want))) TEST_FAIL_AT("decode = \"%s\", expected \"%s\"", b_.data, (want)); \
        buf_free(&b_);                                                             \
    } while (0)

#define L(...) {__VA_ARGS__}

/* vocabulary of pieces; each text piece found whole becomes its id */
#define PIECES "\"a\":0,\"b\":1,\"c\":2,\" \":3,\"a \":4,\"b \":5,\" b\":6,\" c\":7,\"  \":8"

static struct tokenizer *split_tok(const char *pattern, const char *behavior, bool invert)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":%s,\"behavior\":\"%s\",\"invert\":%s},"
             "\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{" PIECES "},\"merges\":[]}}",
             pattern, behavior, invert ? "true" : "false");
    return load(json);
}

TEST(split_behaviors_cut_as_huggingface)
{
    /* "a  b c": a | ' ' | ' ' | b | ' ' | c */
    struct {
        const char *behavior;
        bool invert;
        const char *want;
    } cases[] = {
        {"Removed", false, "0 1 2"},
        {"Isolated", false, "0 3 3 1 3 2"},
        {"MergedWithPrevious", false, "4 3 5 2"},   /* "a ", " ", "b ", "c" */
        {"MergedWithNext", false, "0 3 6 7"},       /* "a", " ", " b", " c" */
        {"Contiguous", false, "0 8 1 3 2"},         /* "a", "  ", "b", " ", "c" */
        {"Removed", true, "3 3 3"},                 /* inverted: the spaces stay */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tokenizer *t = split_tok("{\"String\":\" \"}", cases[i].behavior, cases[i].invert);
        CHECK_ENC(t, "a  b c", false, cases[i].want);
        tokenizer_free(t);
        /* the same with a regex */
        t = split_tok("{\"Regex\":\"\\\\s\"}", cases[i].behavior, cases[i].invert);
        CHECK_ENC(t, "a  b c", false, cases[i].want);
        tokenizer_free(t);
    }
}

static struct tokenizer *pretok(const char *pt, const char *vocab)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"pre_tokenizer\":%s,\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{%s},\"merges\":[]}}",
             pt, vocab);
    return load(json);
}

TEST(digits_punctuation_whitespace_pretokenizers)
{
    const char *v = "\"a\":0,\"1\":1,\"2\":2,\"3\":3,\"123\":4,\"hi\":5,\"!\":6,\"?\":7,\"!?\":8,\"there\":9,"
                    "\"!!\":10,\"ok\":11,\"there!!\":12";
    struct tokenizer *t = pretok("{\"type\":\"Digits\",\"individual_digits\":true}", v);
    CHECK_ENC(t, "a123", false, "0 1 2 3");
    tokenizer_free(t);
    t = pretok("{\"type\":\"Digits\",\"individual_digits\":false}", v);
    CHECK_ENC(t, "a123", false, "0 4");
    tokenizer_free(t);
    t = pretok("{\"type\":\"Punctuation\"}", v);
    CHECK_ENC(t, "hi!?", false, "5 6 7");
    tokenizer_free(t);
    t = pretok("{\"type\":\"Punctuation\",\"behavior\":\"Contiguous\"}", v);
    CHECK_ENC(t, "hi!?", false, "5 8");
    tokenizer_free(t);
    t = pretok("{\"type\":\"Whitespace\"}", v);
    CHECK_ENC(t, "hi there!!  ok", false, "5 9 10 11");
    tokenizer_free(t);
    t = pretok("{\"type\":\"WhitespaceSplit\"}", v);
    CHECK_ENC(t, "hi there!!  ok", false, "5 12 11");
    tokenizer_free(t);
    t = pretok("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},{\"type\":\"Punctuation\"}]}", v);
    CHECK_ENC(t, "hi there!!  ok", false, "5 9 6 6 11");
    tokenizer_free(t);
}

TEST(metaspace_prepend_schemes_and_split)
{
    const char *v = "\"▁hello\":0,\"▁world\":1,\"hello\":2,\"▁hello▁world\":3,\"<x>\":4";
    const char *added = ",\"added_tokens\":[{\"id\":4,\"content\":\"<x>\",\"special\":true}]}";
    char json[1024];
    const char *schemes[] = {"always", "first", "never"};
    const char *plain[] = {"0 1", "0 1", "2 1"};
    const char *after_token[] = {"4 0 1", "4 2 1", "4 2 1"};
    for (int i = 0; i < 3; i++) {
        snprintf(json, sizeof json,
                 "{\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"%s\"},"
                 "\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{%s},\"merges\":[]}%s",
                 schemes[i], v, added);
        struct tokenizer *t = load(json);
        CHECK_ENC(t, "hello world", false, plain[i]);
        /* "first" only prepends at the very start of the input */
        CHECK_ENC(t, "<x>hello world", false, after_token[i]);
        tokenizer_free(t);
    }
    snprintf(json, sizeof json,
             "{\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"add_prefix_space\":true,"
             "\"split\":false},\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{%s},\"merges\":[]}}",
             v);
    struct tokenizer *t = load(json);
    CHECK_ENC(t, "hello world", false, "3");
    tokenizer_free(t);
}

static struct tokenizer *normalizer(const char *nm, const char *vocab)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"normalizer\":%s,\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{%s},\"merges\":[]}}",
             nm, vocab);
    return load(json);
}

TEST(normalizers_transform_as_specified)
{
    struct tokenizer *t = normalizer("{\"type\":\"Lowercase\"}", "\"hello i\u0307\":0");
    CHECK_ENC(t, "HeLLo \u0130", false, "0");   /* İ lowercases to i + combining dot */
    tokenizer_free(t);
    t = normalizer("{\"type\":\"NFKC\"}", "\"fi1\":0");
    CHECK_ENC(t, "\ufb01\u2460", false, "0");   /* ﬁ① */
    tokenizer_free(t);
    t = normalizer("{\"type\":\"NFD\"}", "\"e\u0301\":0");
    CHECK_ENC(t, "\u00e9", false, "0");
    tokenizer_free(t);
    t = normalizer("{\"type\":\"NFC\"}", "\"\u00e9\":0");
    CHECK_ENC(t, "e\u0301", false, "0");
    tokenizer_free(t);
    t = normalizer("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFD\"},{\"type\":\"StripAccents\"}]}",
                   "\"cafe\":0");
    CHECK_ENC(t, "caf\u00e9", false, "0");
    tokenizer_free(t);
    t = normalizer("{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":false}", "\"x  \":0");
    CHECK_ENC(t, " \t x  ", false, "0");
    tokenizer_free(t);
    t = normalizer("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\"_\"}", "\"a_b_c\":0");
    CHECK_ENC(t, "a \t b\u3000c", false, "0");
    tokenizer_free(t);
    t = normalizer("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"▁\"},"
                   "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"▁\"}]}",
                   "\"▁a▁b\":0");
    CHECK_ENC(t, "a b", false, "0");
    CHECK_ENC(t, "", false, "");                 /* Prepend leaves empty text empty */
    tokenizer_free(t);
    t = normalizer("{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"
                   "\"strip_accents\":null,\"lowercase\":true}",
                   "\"a \u4e2d  b\":0");
    /* \x01 dropped, NBSP -> space, 中 padded with spaces, the accent
     * stripped (strip_accents follows lowercase), lowercased */
    CHECK_ENC(t, "A\u4e2d\u00a0\u0301B\x01", false, "0");
    tokenizer_free(t);
}

static const char *BPE_VOCAB = "\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4,\"<unk>\":5,\"<0x78>\":6";

TEST(bpe_merges_by_rank_leftmost_first_both_merge_forms)
{
    char json[1024];
    snprintf(json, sizeof json, "{\"model\":{\"type\":\"BPE\",\"vocab\":{%s},\"merges\":[\"a b\",[\"ab\",\"c\"]]}}",
             BPE_VOCAB);
    struct tokenizer *t = load(json);
    CHECK_ENC(t, "abcab", false, "4 3");
    CHECK_ENC(t, "aab", false, "0 3");
    CHECK_ENC(t, "abab", false, "3 3");
    /* no unknown token: an unknown character is dropped, and its
     * neighbours then merge */
    CHECK_ENC(t, "ayb", false, "3");
    tokenizer_free(t);
}

TEST(bpe_unknown_tokens_fused_or_not_and_byte_fallback)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":false,\"vocab\":{%s},\"merges\":[]}}",
             BPE_VOCAB);
    struct tokenizer *t = load(json);
    CHECK_ENC(t, "ayyb", false, "0 5 5 1");
    tokenizer_free(t);
    snprintf(json, sizeof json,
             "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"vocab\":{%s},\"merges\":[]}}",
             BPE_VOCAB);
    t = load(json);
    CHECK_ENC(t, "ayyb", false, "0 5 1");
    tokenizer_free(t);
    snprintf(json, sizeof json,
             "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,"
             "\"vocab\":{%s},\"merges\":[]}}",
             BPE_VOCAB);
    t = load(json);
    CHECK_ENC(t, "axb", false, "0 6 1");
    /* HuggingFace adds byte tokens at once but a pending unknown token only
     * before the next known character or at the end: y (no byte token)
     * then x gives <0x78> first */
    CHECK_ENC(t, "yx", false, "6 5");
    CHECK_ENC(t, "yxa", false, "6 5 0");
    tokenizer_free(t);
}

TEST(bpe_ignore_merges_takes_whole_words)
{
    const char *v = "\"a\":0,\"b\":1,\"ab\":2,\"aab\":3,\"aa\":4";
    char json[512];
    /* merges make "aab" -> "aa" + "b" (aa has the lower rank) */
    snprintf(json, sizeof json, "{\"model\":{\"type\":\"BPE\",\"vocab\":{%s},\"merges\":[\"a a\",\"a b\"]}}", v);
    struct tokenizer *t = load(json);
    CHECK_ENC(t, "aab", false, "4 1");
    tokenizer_free(t);
    snprintf(json, sizeof json,
             "{\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{%s},\"merges\":[\"a a\",\"a b\"]}}", v);
    t = load(json);
    CHECK_ENC(t, "aab", false, "3");
    tokenizer_free(t);
}

TEST(bpe_continuing_prefix_and_end_of_word_suffix)
{
    struct tokenizer *t = load("{\"model\":{\"type\":\"BPE\",\"continuing_subword_prefix\":\"##\","
                               "\"vocab\":{\"a\":0,\"##b\":1,\"##c\":2,\"ab\":3,\"abc\":4},"
                               "\"merges\":[\"a ##b\",\"ab ##c\"]},"
                               "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\"}}");
    CHECK_ENC(t, "abc", false, "4");
    CHECK_ENC(t, "ab", false, "3");
    CHECK_DEC(t, L(0, 1, 2), false, "abc");
    tokenizer_free(t);
    t = load("{\"model\":{\"type\":\"BPE\",\"end_of_word_suffix\":\"</w>\","
             "\"vocab\":{\"a\":0,\"b</w>\":1,\"ab</w>\":2,\"b\":3},\"merges\":[\"a b</w>\"]},"
             "\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},"
             "\"decoder\":{\"type\":\"BPEDecoder\",\"suffix\":\"</w>\"}}");
    CHECK_ENC(t, "ab b", false, "2 1");
    CHECK_DEC(t, L(2, 1), false, "ab b");
    tokenizer_free(t);
}

TEST(wordpiece_model_with_bert_pipeline)
{
    const char *json =
        "{\"normalizer\":{\"type\":\"BertNormalizer\",\"lowercase\":true},"
        "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
        "\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",102],\"cls\":[\"[CLS]\",101]},"
        "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true},"
        "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"max_input_chars_per_word\":12,"
        "\"vocab\":{\"[UNK]\":0,\"un\":1,\"##aff\":2,\"##able\":3,\"!\":4,\"[CLS]\":101,\"[SEP]\":102}},"
        "\"added_tokens\":[{\"id\":101,\"content\":\"[CLS]\",\"special\":true},"
        "{\"id\":102,\"content\":\"[SEP]\",\"special\":true}]}";
    struct tokenizer *t = load(json);
    CHECK_ENC(t, "UnAffable!", false, "1 2 3 4");
    CHECK_ENC(t, "UnAffable!", true, "101 1 2 3 4 102");
    CHECK_ENC(t, "xyz unaffableunaffable", false, "0 0");   /* unknown; too long */
    CHECK_DEC(t, L(101, 1, 2, 3, 4, 102), true, "unaffable!");
    CHECK_DEC(t, L(101, 1, 2, 3, 4, 102), false, "[CLS] unaffable! [SEP]");
    tokenizer_free(t);
}

TEST(unigram_viterbi_unknowns_and_byte_fallback)
{
    const char *v = "[[\"<unk>\",0],[\"a\",-1],[\"b\",-1],[\"ab\",-1.5],[\"c\",-3],[\"<0x78>\",-20]]";
    char json[512];
    snprintf(json, sizeof json, "{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":%s}}", v);
    struct tokenizer *t = load(json);
    CHECK_ENC(t, "ab", false, "3");        /* -1.5 beats -1 + -1 */
    CHECK_ENC(t, "abc", false, "3 4");
    CHECK_ENC(t, "ayb", false, "1 0 2");   /* y: min score - 10 */
    CHECK_ENC(t, "ayyb", false, "1 0 2");  /* unknown runs fuse */
    tokenizer_free(t);
    snprintf(json, sizeof json, "{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"byte_fallback\":true,\"vocab\":%s}}", v);
    t = load(json);
    /* x as a piece costs -20 < -20 - 10? no: <0x78> is only a byte piece,
     * "x" itself is not in the vocabulary, so it is unknown -> bytes */
    CHECK_ENC(t, "axb", false, "1 5 2");
    tokenizer_free(t);
}

static const char *ADDED_VOCAB = "\"a\":0,\"b\":1,\" \":2,\"<\":3,\"m\":4,\">\":5,\"h\":6,\"i\":7,\"c\":8,\"d\":9";

static struct tokenizer *added(const char *flags, const char *extra_norm)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{%s\"model\":{\"type\":\"BPE\",\"vocab\":{%s},\"merges\":[]},"
             "\"added_tokens\":[{\"id\":100,\"content\":\"<m>\",\"special\":false%s}]}",
             extra_norm, ADDED_VOCAB, flags);
    return load(json);
}

TEST(added_tokens_strip_and_single_word)
{
    struct tokenizer *t = added("", "");
    CHECK_ENC(t, "a <m> b", false, "0 2 100 2 1");
    tokenizer_free(t);
    t = added(",\"lstrip\":true", "");
    CHECK_ENC(t, "a  <m> b", false, "0 100 2 1");
    tokenizer_free(t);
    t = added(",\"rstrip\":true", "");
    CHECK_ENC(t, "a <m>  b", false, "0 2 100 1");
    tokenizer_free(t);
    t = added(",\"single_word\":true", "");
    CHECK_ENC(t, "a<m>", false, "0 3 4 5");          /* glued to a word: not the token */
    CHECK_ENC(t, "a <m> b", false, "0 2 100 2 1");
    CHECK_ENC(t, "<m>", false, "100");
    tokenizer_free(t);
}

TEST(added_tokens_normalized_or_not_and_longest_match)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"normalizer\":{\"type\":\"Lowercase\"},\"model\":{\"type\":\"BPE\",\"vocab\":{%s},\"merges\":[]},"
             "\"added_tokens\":[{\"id\":100,\"content\":\"HI\",\"special\":false,\"normalized\":true},"
             "{\"id\":101,\"content\":\"AB\",\"special\":true,\"normalized\":false},"
             "{\"id\":102,\"content\":\"ABC\",\"special\":true,\"normalized\":false}]}",
             ADDED_VOCAB);
    struct tokenizer *t = load(json);
    CHECK_ENC(t, "HI hi", false, "100 2 100");         /* matched after lowercasing */
    CHECK_ENC(t, "ABCD ABD ab", false, "102 9 2 101 9 2 0 1");
    CHECK_DEC(t, L(101, 0, 102), true, "a");
    CHECK_DEC(t, L(100, 0), true, "HI a");             /* no decoder: joined by spaces */
    CHECK(tokenizer_is_special(t, 101));
    CHECK(!tokenizer_is_special(t, 100));
    CHECK_EQ(tokenizer_piece_to_id(t, "ABC", 3), 102);
    CHECK_EQ(tokenizer_vocab_size(t), 103);
    tokenizer_free(t);
}

TEST(template_post_processor_and_tokenizer_config_flags)
{
    const char *json =
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<s>\":1,\"</s>\":2,\"a\":3},\"merges\":[]},"
        "\"added_tokens\":[{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
        "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
        "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}}}";
    struct tokenizer *t = load(json);
    CHECK_ENC(t, "aa", true, "1 3 3");
    CHECK_ENC(t, "aa", false, "3 3");
    CHECK_ENC(t, "", true, "1");
    tokenizer_free(t);
    t = load2(json, "{\"bos_token\":\"<s>\",\"eos_token\":{\"content\":\"</s>\"},\"add_bos_token\":false,\"add_eos_token\":true}");
    CHECK_ENC(t, "aa", true, "3 3 2");
    CHECK_EQ(tokenizer_bos_id(t), 1);
    CHECK_EQ(tokenizer_eos_id(t), 2);
    tokenizer_free(t);
    /* a flag asking for a token the config does not name is an error */
    t = load2(json, "{\"add_eos_token\":true}");
    CHECK(t == NULL);
    CHECK_CONTAINS(last_error(), "add_eos_token: true, but eos_token names no token");
}

TEST(decoders_follow_huggingface)
{
    /* Metaspace drops the replacement characters of the first token only */
    struct tokenizer *t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"▁a\":0,\"▁b\":1,\"c▁\":2},\"merges\":[]},"
                               "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"always\"}}");
    CHECK_DEC(t, L(0, 1), false, "a b");
    CHECK_DEC(t, L(2, 0), false, "c a");
    tokenizer_free(t);
    /* ByteFallback: valid sequences join, invalid bytes are one U+FFFD each */
    t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<0xE4>\":0,\"<0xBD>\":1,\"<0xA0>\":2,\"x\":3,\"▁y\":4},\"merges\":[]},"
             "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"▁\"},"
             "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \","
             "\"start\":1,\"stop\":0}]}}");
    CHECK_DEC(t, L(0, 1, 2, 3), false, "\u4f60x");
    CHECK_DEC(t, L(0, 1, 3), false, "\ufffd\ufffdx");
    CHECK_DEC(t, L(4, 4), false, "y y");              /* Strip: one leading space */
    CHECK_DEC(t, L(99, 3), false, "x");               /* unknown ids are skipped */
    tokenizer_free(t);
    /* ByteLevel: characters back to bytes, then lossy UTF-8 */
    t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"Ġhi\":0,\"Ã\":1,\"©\":2,\"<|x|>\":3},\"merges\":[]},"
             "\"decoder\":{\"type\":\"ByteLevel\"}}");
    CHECK_DEC(t, L(0, 1, 2), false, " hi\u00e9");
    CHECK_DEC(t, L(1, 0), false, "\ufffd hi");
    CHECK_DEC(t, L(3), false, "<|x|>");
    tokenizer_free(t);
    /* CTC: repeats collapse, pad goes, the word delimiter becomes a space */
    t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<pad>\":0,\"h\":1,\"i\":2,\"|\":3},\"merges\":[]},"
             "\"decoder\":{\"type\":\"CTC\",\"pad_token\":\"<pad>\",\"word_delimiter_token\":\"|\",\"cleanup\":true}}");
    CHECK_DEC(t, L(1, 1, 0, 2, 3, 1), false, "hi h");
    tokenizer_free(t);
}

TEST(byte_level_with_split_regex_and_prefix_space)
{
    /* GPT-2 regex via ByteLevel(use_regex), prefix space added */
    struct tokenizer *t = load("{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true},"
                               "\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,"
                               "\"vocab\":{\"Ġhello\":0,\"Ġworld\":1,\"'s\":2,\"Ġ123\":3,\"Ġ\":4,\"ĠĠ\":5},\"merges\":[]},"
                               "\"decoder\":{\"type\":\"ByteLevel\"}}");
    CHECK_ENC(t, "hello world's 123", false, "0 1 2 3");
    CHECK_ENC(t, "hello   world", false, "0 5 1");    /* \\s+(?!\\S) leaves one space */
    CHECK_DEC(t, L(0, 1), false, " hello world");
    tokenizer_free(t);
}

/* A fixture path: relative to the source tree, which is the current
 * directory under make, else two levels above this binary (build/tests). */
static char *fixture(const char *rel)
{
    char *p = path_join("tests/fixtures", rel);
    if (path_exists(p)) return p;
    free(p);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return path_join("tests/fixtures", rel);
    exe[n] = 0;
    char *d1 = path_dirname(exe), *d2 = path_dirname(d1), *d3 = path_dirname(d2);
    char *base = path_join(d3, "tests/fixtures");
    p = path_join(base, rel);
    free(d1);
    free(d2);
    free(d3);
    free(base);
    return p;
}

static struct tokenizer *stories(void)
{
    char *d = fixture("stories260K");
    struct tokenizer *t = tokenizer_load(d);
    free(d);
    return t;
}

TEST(streaming_never_splits_a_character)
{
    struct tokenizer *t = stories();
    if (!t) {
        TEST_FAIL_AT("cannot load stories260K: %s", last_error());
        return;
    }
    struct tok_ids ids = {0};
    const char *text = "Hi \u4f60\u597d!";   /* CJK characters come as byte tokens */
    tokenizer_encode(t, text, strlen(text), true, &ids);
    struct tok_stream *s = tok_stream_new(t, true);
    struct buf all = BUF_INIT, piece = BUF_INIT;
    buf_init(&all);
    buf_init(&piece);
    int empty = 0;
    for (size_t i = 0; i < ids.n; i++) {
        buf_reset(&piece);
        tok_stream_put(s, ids.v[i], &piece);
        CHECK(strstr(piece.data, "\ufffd") == NULL);
        if (!piece.len) empty++;
        buf_add(&all, piece.data, piece.len);
    }
    tok_stream_finish(s, &all);
    CHECK_STR(all.data, text);
    CHECK(empty >= 4);   /* the first bytes of both characters were held */
    tok_stream_free(s);
    /* an incomplete character at the end comes out as U+FFFD, like decode */
    s = tok_stream_new(t, true);
    buf_reset(&all);
    tok_stream_put(s, ids.v[ids.n - 3], &all);   /* a lone lead byte of 好 */
    tok_stream_finish(s, &all);
    CHECK_STR(all.data, "\ufffd");
    tok_stream_free(s);
    tok_ids_free(&ids);
    buf_free(&all);
    buf_free(&piece);
    tokenizer_free(t);
}

TEST(stop_string_across_streamed_tokens)
{
    struct tokenizer *t = stories();
    if (!t) return;
    int32_t story[] = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298};  /* Once upon a time, there was a little */
    const char *strs[] = {"time, th"};
    struct gen_stop g;
    gen_stop_init(&g, NULL, 0, strs, 1, 0);
    struct tok_stream *s = tok_stream_new(t, true);
    struct buf shown = BUF_INIT, delta = BUF_INIT;
    buf_init(&shown);
    buf_init(&delta);
    enum stop_reason r = STOP_NONE;
    size_t used = 0;
    for (size_t i = 0; i < sizeof story / sizeof story[0] && r == STOP_NONE; i++, used++) {
        buf_reset(&delta);
        tok_stream_put(s, story[i], &delta);
        r = gen_stop_feed(&g, story[i], delta.data, delta.len, &shown);
    }
    CHECK_EQ(r, STOP_STRING);
    CHECK_EQ(used, 6);                     /* stopped on "▁there" */
    CHECK_STR(shown.data, "Once upon a ");
    gen_stop_free(&g);
    tok_stream_free(s);
    buf_free(&shown);
    buf_free(&delta);
    tokenizer_free(t);
}

static void *encode_many(void *arg)
{
    struct tokenizer *t = arg;
    for (int i = 0; i < 200; i++) {
        struct tok_ids ids = {0};
        tokenizer_encode(t, "Once upon a time", 16, true, &ids);
        if (ids.n != 5 || ids.v[1] != 403) {
            tok_ids_free(&ids);
            return (void *)1;
        }
        tok_ids_free(&ids);
    }
    return NULL;
}

TEST(encoding_from_two_threads)
{
    struct tokenizer *t = stories();
    if (!t) return;
    pthread_t a, b;
    void *ra, *rb;
    pthread_create(&a, NULL, encode_many, t);
    pthread_create(&b, NULL, encode_many, t);
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    CHECK(ra == NULL && rb == NULL);
    tokenizer_free(t);
}

TEST(truncated_and_corrupted_files_fail_cleanly)
{
    /* every cut of a real tokenizer.json is an error (never a crash), and
     * random byte changes to a tokenizer.model either load or fail */
    struct buf json = BUF_INIT, model = BUF_INIT;
    buf_init(&json);
    buf_init(&model);
    char *fj = fixture("stories260K/tokenizer.json"), *fm = fixture("stories260K/tokenizer.model");
    int missing = read_file(fj, &json, 0) || read_file(fm, &model, 0);
    free(fj);
    free(fm);
    if (missing) {
        TEST_FAIL_AT("fixtures missing: %s", last_error());
        return;
    }
    char *d = tmp_dir();
    char *p = path_join(d, "tokenizer.json"), *m = path_join(d, "tokenizer.model");
    int loaded = 0;
    for (size_t cut = 0; cut < json.len; cut += json.len / 97 + 1) {
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write_all(fd, json.data, cut);
        close(fd);
        struct tokenizer *t = tokenizer_load(d);
        if (t) loaded++;
        tokenizer_free(t);
    }
    CHECK_EQ(loaded, 0);
    unlink(p);
    unsigned seed = 12345;
    for (int round = 0; round < 150; round++) {
        struct buf c = BUF_INIT;
        buf_init(&c);
        buf_add(&c, model.data, model.len);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % c.len;
            seed = seed * 1103515245u + 12345u;
            c.data[at] = (char)(seed >> 16);
        }
        size_t len = round % 3 == 0 ? c.len / (size_t)(round % 7 + 2) : c.len;
        int fd = open(m, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write_all(fd, c.data, len);
        close(fd);
        struct tokenizer *t = tokenizer_load(d);
        if (t) {
            struct tok_ids ids = {0};
            struct buf out = BUF_INIT;
            buf_init(&out);
            tokenizer_encode(t, "Once upon a time \u4f60", 20, true, &ids);
            tokenizer_decode(t, ids.v, ids.n, false, &out);
            tok_ids_free(&ids);
            buf_free(&out);
            tokenizer_free(t);
        }
        buf_free(&c);
    }
    remove_tree(d);
    free(p);
    free(m);
    free(d);
    buf_free(&json);
    buf_free(&model);
}

static int jd_fails(const char *text, const char *want)
{
    struct jd_doc doc;
    char *copy = xstrdup(text);
    int rc = jd_parse(&doc, copy, strlen(copy), "t.json");
    if (rc == 0) jd_free(&doc);
    free(copy);
    if (rc == 0) return 0;
    if (!strstr(last_error(), want)) {
        printf("# got '%s', want '%s'\n", last_error(), want);
        return 0;
    }
    return 1;
}

TEST(json_reader_unescapes_and_reports_positions)
{
    char text[] = "{\"a\\n\\u00e9\\ud83e\\udd17\": [1, -2, 3.5e2, true, false, null, \"x\\\"y\"], \"b\": {}}";
    struct jd_doc doc;
    CHECK_EQ(jd_parse(&doc, text, strlen(text), "t.json"), 0);
    const struct jd *a = &doc.root.u.kids[0];
    CHECK_EQ(a->keylen, 8);
    CHECK(!memcmp(a->key, "a\n\u00e9\U0001F917", 8));
    CHECK_EQ(a->n, 7);
    CHECK(a->u.kids[0].is_int && a->u.kids[0].ival == 1);
    CHECK_EQ(a->u.kids[1].ival, -2);
    CHECK(!a->u.kids[2].is_int && a->u.kids[2].u.num == 350.0);
    CHECK(jd_streq(&a->u.kids[6], "x\"y"));
    CHECK(jd_is(jd_get(&doc.root, "b"), JD_OBJECT));
    jd_free(&doc);
    CHECK(jd_fails("{\n  \"a\" 1}", "t.json:2:7: expected ':'"));
    CHECK(jd_fails("[1, 2", "t.json:1:6: expected ',' or ']'"));
    CHECK(jd_fails("[1, ", "t.json:1:5: unexpected end of input"));
    CHECK(jd_fails("\"\\ud800\"", "lone surrogate"));
    CHECK(jd_fails("\"a\xff\"", "invalid UTF-8"));
    CHECK(jd_fails("[01]", "leading zero"));
    CHECK(jd_fails("{} x", "extra data"));
    char deep[2000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    CHECK(jd_fails(deep, "nesting too deep"));
}

TEST(charsmap_read_as_sentencepiece_and_as_huggingface)
{
    /* the nmt_nfkc charsmap of a model SentencePiece trained: NFKC rules.
     * SentencePiece takes the longest rule at each position; HuggingFace
     * replaces a grapheme cluster under 6 bytes by its first rule and
     * longer clusters character by character, so a+3 accents (7 bytes)
     * and KA+voiced mark (6 bytes) stay uncomposed there */
    char *path = fixture("sentencepiece/unigram-nfkc.model");
    struct tokenizer *t = tokenizer_load_sentencepiece(path);
    free(path);
    if (!t || !t->spm_charsmap) {
        TEST_FAIL_AT("no charsmap: %s", last_error());
        tokenizer_free(t);
        return;
    }
    struct {
        const char *in, *sp, *hf;
    } cases[] = {
        {"\ufb01", "fi", "fi"},
        {"\uff21\uff22", "AB", "AB"},
        {"\u2460", "1", "1"},
        {"e\u0301", "\u00e9", "\u00e9"},
        {"a\u0301\u0301\u0301", "\u00e1\u0301\u0301", "a\u0301\u0301\u0301"},
        {"\u30ab\u3099", "\u30ac", "\u30ab\u3099"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf a = BUF_INIT, b = BUF_INIT;
        buf_init(&a);
        buf_init(&b);
        tok_charsmap_normalize(t->spm_charsmap, cases[i].in, strlen(cases[i].in), &a);
        tok_charsmap_normalize_hf(t->spm_charsmap, cases[i].in, strlen(cases[i].in), &b);
        CHECK_STR(a.data, cases[i].sp);
        CHECK_STR(b.data, cases[i].hf);
        buf_free(&a);
        buf_free(&b);
    }
    tokenizer_free(t);
}

static bool want_big(int depth, const char *parent, size_t parentlen, const char *key, size_t keylen)
{
    (void)parent;
    (void)parentlen;
    return depth == 1 && keylen == 3 && !memcmp(key, "big", 3);
}

struct summary {
    char *out;
    size_t n, w;
};

static int summarise(void *user, const char *key, size_t keylen, struct jd_iter *it)
{
    struct summary *sm = user;
    const struct jd *e;
    int rc;
    (void)key;
    (void)keylen;
    while ((rc = jd_iter_next(it, &e)) == 1 && sm->w + 40 < sm->n) {
        char *o = sm->out + sm->w;
        size_t room = sm->n - sm->w;
        int k = 0;
        if (e->key) k += snprintf(o + k, room - (size_t)k, "%.*s=", (int)e->keylen, e->key);
        if (e->type == JD_STRING) k += snprintf(o + k, room - (size_t)k, "s%.*s ", (int)e->n, e->u.str);
        else if (e->type == JD_NUMBER) k += snprintf(o + k, room - (size_t)k, "n%lld ", (long long)e->ival);
        else if (e->type == JD_ARRAY) k += snprintf(o + k, room - (size_t)k, "a%u ", e->n);
        else k += snprintf(o + k, room - (size_t)k, "t%d ", e->type);
        sm->w += (size_t)k;
    }
    return rc < 0 ? -1 : 0;
}

static int walk_all(const char *text, char *summary, size_t n)
{
    struct jd_doc doc;
    char *copy = xstrdup(text);
    summary[0] = 0;
    struct summary sm = {summary, n, 0};
    int rc = jd_parse_stream(&doc, copy, strlen(copy), "t.json", want_big, summarise, &sm);
    if (rc == 0) {
        const struct jd *big = jd_get(&doc.root, "big");
        char head[32];
        snprintf(head, sizeof head, "%lld:", big && big->type == JD_LAZY ? (long long)big->ival : -1LL);
        memmove(summary + strlen(head), summary, strlen(summary) + 1);
        memcpy(summary, head, strlen(head));
        /* the rest of the document is parsed as usual */
        if (!jd_is(jd_get(&doc.root, "y"), JD_NUMBER) && strstr(text, "\"y\"")) rc = -2;
        jd_free(&doc);
    }
    free(copy);
    return rc;
}

TEST(json_lazy_members_are_walked_one_by_one)
{
    char sum[512];
    CHECK_EQ(walk_all("{\"x\": [1], \"big\": {\"a\": 1, \"b\\\"]\": \"c\", \"d\": [\"e\", \"f\"]}, \"y\": 2}", sum, sizeof sum), 0);
    CHECK_STR(sum, "3:a=n1 b\"]=sc d=a2 ");
    CHECK_EQ(walk_all("{\"big\": [\"p q\", [\"r\", \"s\\u0041\"], [\"t\", 2], {\"u\": 1}, -7]}", sum, sizeof sum), 0);
    CHECK_STR(sum, "5:sp q a2 a2 t6 n-7 ");
    CHECK_EQ(walk_all("{\"big\": []}", sum, sizeof sum), 0);
    CHECK_STR(sum, "0:");
    /* errors inside a lazy value surface while walking, with positions */
    CHECK_EQ(walk_all("{\"big\": [1,\n ]}", sum, sizeof sum), -1);
    CHECK_CONTAINS(last_error(), "t.json:2:2: unexpected character");
    CHECK_EQ(walk_all("{\"big\": {\"a\" 1}}", sum, sizeof sum), -1);
    CHECK_CONTAINS(last_error(), "expected ':'");
    CHECK_EQ(walk_all("{\"big\": [1 2]}", sum, sizeof sum), -1);
    CHECK_CONTAINS(last_error(), "expected ',' or ']'");
    /* an unclosed lazy value is an error of the parse itself */
    CHECK_EQ(walk_all("{\"big\": [\"a\", ", sum, sizeof sum), -1);
    CHECK_CONTAINS(last_error(), "unexpected end of input");
}

TEST(vocabulary_errors_name_the_field)
{
    struct tokenizer *t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":\"x\"},\"merges\":[]}}");
    CHECK(t == NULL);
    CHECK_CONTAINS(last_error(), "tokenizer.json: model.vocab: token ids must be integers");
    /* a huge id would make the id tables huge: refused */
    t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":2147483647},\"merges\":[]}}");
    CHECK(t == NULL);
    CHECK_CONTAINS(last_error(), "model.vocab: token ids must be integers from 0 to 16777215");
    t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
             "\"added_tokens\":[{\"id\":99999999,\"content\":\"x\"}]}");
    CHECK(t == NULL);
    CHECK_CONTAINS(last_error(), "added_tokens[0].id: token ids must be integers from 0 to 16777215");
    t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a\", 5]}}");
    CHECK(t == NULL);
    CHECK_CONTAINS(last_error(), "model.merges[1]: a merge must be");
    t = load("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",-1],[\"b\"]]}}");
    CHECK(t == NULL);
    CHECK_CONTAINS(last_error(), "model.vocab[1]: must be [piece, score]");
    t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":[],\"merges\":[]}}");
    CHECK(t == NULL);
    CHECK_CONTAINS(last_error(), "model.vocab: must be an object");
}

TEST_MAIN()
