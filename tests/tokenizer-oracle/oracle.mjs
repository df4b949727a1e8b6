// Expected ids and texts for the tokenizer agreement tests, computed with
// @huggingface/tokenizers (the JavaScript port of HuggingFace tokenizers).
//
//   node oracle.mjs TOKENIZER_DIR CORPUS.json > EXPECTED.jsonl
//
// One JSON line per corpus string: the text, its ids without and with
// special tokens, and the decoded texts (special tokens kept / skipped).
// Decoding never applies clean_up_tokenization_spaces: that is a
// transformers (Python) step, not part of the tokenizer.
//
// One correction makes the JavaScript port agree with the Rust library it
// ports: its ByteFallback decoder turns bytes into text with a default
// TextDecoder, which silently drops a leading U+FEFF (byte order mark);
// Rust's String::from_utf8 keeps it. Every TextDecoder is made to keep it.
import { readFileSync } from "node:fs";

const BaseDecoder = globalThis.TextDecoder;
globalThis.TextDecoder = class extends BaseDecoder {
  constructor(label, options) { super(label, { ...(options || {}), ignoreBOM: true }); }
};
const { Tokenizer } = await import("@huggingface/tokenizers");

const [dir, corpusPath] = process.argv.slice(2);
const tj = JSON.parse(readFileSync(`${dir}/tokenizer.json`, "utf8"));
let cfg = {};
try { cfg = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, "utf8")); } catch (e) { }
const tok = new Tokenizer(tj, cfg);
const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));
const dec = (ids, skip) => ids.length ? tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false }) : "";
const out = [];
for (const text of corpus) {
  const ids = tok.encode(text, { add_special_tokens: false }).ids;
  const ids_special = tok.encode(text, { add_special_tokens: true }).ids;
  out.push(JSON.stringify({ text, ids, ids_special, decoded: dec(ids_special, false), decoded_skip: dec(ids_special, true) }));
}
process.stdout.write(out.join("\n") + "\n");
