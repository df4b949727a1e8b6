// The npm reference's figures for tests/bench/tokenizer.sh: load time of a
// tokenizer.json (JSON.parse + building the tokenizer, best of five) and
// single-thread encode speed over a text file, line by line (best of three).
//
//   node bench.mjs TOKENIZER_DIR TEXT_FILE
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, textPath] = process.argv.slice(2);
const raw = readFileSync(`${dir}/tokenizer.json`, "utf8");
let cfg = {};
try { cfg = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, "utf8")); } catch (e) { }
let best = Infinity, tok;
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  tok = new Tokenizer(JSON.parse(raw), cfg);
  best = Math.min(best, performance.now() - t0);
}
console.log(`load_ms ${best.toFixed(1)}`);
const text = readFileSync(textPath, "utf8");
const lines = text.split(/(?<=\n)/);
const bytes = Buffer.byteLength(text, "utf8");
let bestEnc = Infinity, tokens = 0;
for (let r = 0; r < 3; r++) {
  const t = new Tokenizer(JSON.parse(raw), cfg);
  const t0 = performance.now();
  let n = 0;
  for (const line of lines) n += t.encode(line, { add_special_tokens: false }).ids.length;
  bestEnc = Math.min(bestEnc, performance.now() - t0);
  tokens = n;
}
console.log(`encode_mb_s ${(bytes / (bestEnc / 1000) / 1e6).toFixed(1)}`);
console.log(`tokens ${tokens}`);
