#!/usr/bin/python3
"""Convert a SentencePiece Unigram model to a tokenizer.json the way
HuggingFace's converters do for T5/ALBERT-style models, and write the ids
SentencePiece gives for the corpus strings where both must agree.

    spm_to_json.py MODEL CORPUS.json OUTDIR

OUTDIR/tokenizer.json: Unigram vocabulary (pieces, scores, unk_id), the
model's precompiled charsmap as a Precompiled normalizer followed by
Replace(" {2,}" -> " "), Metaspace pre-tokenizer and decoder.
OUTDIR/expected.jsonl: {"text", "ids", "ids_special"} from SentencePiece, for
corpus strings without leading, trailing, repeated or control whitespace
(nor characters the charsmap turns into whitespace, nor combining sequences,
which HuggingFace reads per character when they are long; where
SentencePiece's whitespace handling and the converted pipeline differ).
"""
import base64, json, os, re, sys, unicodedata
import sentencepiece as spm

model, corpus_path, out = sys.argv[1:4]
data = open(model, "rb").read()

def varint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1; r |= (c & 0x7F) << s; s += 7
        if c < 0x80: return r, i

def fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        f, wt = k >> 3, k & 7
        if wt == 0:
            v, i = varint(b, i); yield f, v
        elif wt == 2:
            n, i = varint(b, i); yield f, b[i:i + n]; i += n
        elif wt == 5:
            yield f, b[i:i + 4]; i += 4
        else:
            yield f, b[i:i + 8]; i += 8

charsmap = b""
for f, v in fields(data):
    if f == 3:
        for f2, v2 in fields(v):
            if f2 == 2:
                charsmap = v2

sp = spm.SentencePieceProcessor(model_file=model)
vocab = [[sp.id_to_piece(i), sp.get_score(i)] for i in range(sp.get_piece_size())]
tok = {
    "version": "1.0",
    "added_tokens": [{"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True}
                     for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i)],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode()},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
    "post_processor": None,
    "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
    "model": {"type": "Unigram", "unk_id": sp.unk_id(), "vocab": vocab, "byte_fallback": False},
}
os.makedirs(out, exist_ok=True)
json.dump(tok, open(os.path.join(out, "tokenizer.json"), "w"), ensure_ascii=False)

ws = re.compile(r"\s")
with open(os.path.join(out, "expected.jsonl"), "w") as f:
    for text in json.load(open(corpus_path, encoding="utf-8")):
        if not text or ws.match(text[0]) or ws.match(text[-1]) or re.search(r"\s\s|[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\ufeff\u2581\ufffd]", text):
            continue
        # HuggingFace applies the charsmap to grapheme clusters of 6 bytes
        # or more one character at a time, SentencePiece to the longest
        # matching prefix: combining sequences may differ by design
        if any(unicodedata.combining(ch) or ch == "\u200d" for ch in text):
            continue
        if any(sp.id_to_piece(i) in text for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i)):
            continue
        ids = sp.encode(text)
        f.write(json.dumps({"text": text, "ids": ids, "ids_special": ids}, ensure_ascii=False) + "\n")
