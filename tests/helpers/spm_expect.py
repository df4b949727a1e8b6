#!/usr/bin/python3
"""Expected ids and texts of a SentencePiece model for tokcorpus.

    spm_expect.py MODEL CORPUS.json > EXPECTED.jsonl

Computed with the SentencePiece library (Debian's python3-sentencepiece):
ids = encode(text); ids_special = [bos] + ids (what our encode with
special tokens does for tokenizer.model, like add_bos=True); decoded =
decode(ids_special).
"""
import json, sys
import sentencepiece as spm

sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
corpus = json.load(open(sys.argv[2], encoding="utf-8"))
bos = sp.bos_id()
for text in corpus:
    ids = sp.encode(text)
    special = ([bos] if bos >= 0 else []) + ids
    dec = sp.decode(special)
    print(json.dumps({"text": text, "ids": ids, "ids_special": special, "decoded": dec,
                      "decoded_skip": dec}, ensure_ascii=False))
