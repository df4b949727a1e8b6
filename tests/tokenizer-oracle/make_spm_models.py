#!/usr/bin/python3
"""Train the small SentencePiece models in tests/fixtures/sentencepiece.

Uses Debian's python3-sentencepiece. Each model exercises a different part
of the format: Unigram with the nmt_nfkc precompiled charsmap and
user-defined symbols; BPE without byte fallback and without dummy prefix or
whitespace cleanup; Unigram with byte fallback. Run from anywhere:
    /usr/bin/python3 tests/tokenizer-oracle/make_spm_models.py
"""
import io, os, sentencepiece as spm

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "fixtures", "sentencepiece")

text = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park with her friends.",
    "One day, she saw a big, red ball. She wanted to play with it.",
    "The quick brown fox jumps over the lazy dog!",
    "Numbers like 12345 and 3.14159 appear in text, too.",
    "Café, naïve, résumé: accents are common in borrowed words.",
    "ﬁne ligatures and ＦＵＬＬＷＩＤＴＨ letters get normalized by NFKC.",
    "Tabs\tand  double  spaces   appear   sometimes.",
    "def main():\n    print('hello world')\n",
    "I'm sure you're right; they'll see what we've done.",
]
text = text * 20

def train(name, **kw):
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=buf,
                                   num_threads=1, **kw)
    with open(os.path.join(out, name + ".model"), "wb") as f:
        f.write(buf.getvalue())

os.makedirs(out, exist_ok=True)
train("unigram-nfkc", model_type="unigram", vocab_size=200, normalization_rule_name="nmt_nfkc",
      user_defined_symbols=["<tool>", "@@"], hard_vocab_limit=False)
train("bpe-plain", model_type="bpe", vocab_size=150, normalization_rule_name="identity",
      add_dummy_prefix=False, remove_extra_whitespaces=False, character_coverage=0.98)
train("unigram-bytes", model_type="unigram", vocab_size=360, byte_fallback=True, hard_vocab_limit=False,
      normalization_rule_name="nfkc", character_coverage=0.99)
