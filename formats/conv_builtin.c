/* The built-in conversation templates (MLC-LLM's registry, mlc-formats.md
 * §5) and the choice of one for a model.
 *
 * Every entry reproduces the template of the same name in MLC-LLM's
 * python/mlc_llm/conversation_template/, field for field. */
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "conv_template.h"

#define MAXN 6

struct builtin {
    const char *name;
    const char *system_template;
    const char *system_message;
    int n_prefix;                 /* -1: system_prefix_token_ids is null */
    int32_t prefix[MAXN];
    bool add_role_after_system_message;
    const char *user, *assistant, *tool; /* roles; tool may be NULL */
    const char *seps[2];                 /* seps[1] NULL: one separator */
    const char *role_content_sep, *role_empty_sep;
    const char *stop_str[MAXN];          /* NULL-terminated */
    int n_stop_ids;
    int32_t stop_ids[MAXN];
    bool strip_reasoning_in_history;
};

#define LLAMA3_SYSTEM "<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>"
#define CHATML_SYSTEM "<|im_start|>system\n{system_message}<|im_end|>\n"
#define HONEST "You are a helpful, respectful and honest assistant."
#define PHI_SYSTEM_MESSAGE                                                                         \
    "You are a helpful digital assistant. Please provide safe, ethical and accurate information to " \
    "the user."

static const struct builtin builtins[] = {
    {"llama-2", "[INST] <<SYS>>\n{system_message}\n<</SYS>>\n\n", HONEST, 1, {1}, false,
     "<s>[INST]", "[/INST]", "[INST]", {" ", " </s>"}, " ", " ", {"[INST]"}, 1, {2}, false},
    {"llama-3", LLAMA3_SYSTEM, HONEST, 1, {128000}, true,
     "<|start_header_id|>user", "<|start_header_id|>assistant", NULL, {"<|eot_id|>"},
     "<|end_header_id|>\n\n", "<|end_header_id|>\n\n", {"<|end_of_text|>", "<|eot_id|>"}, 2,
     {128001, 128009}, false},
    {"llama-3_1", LLAMA3_SYSTEM, HONEST, 1, {128000}, true,
     "<|start_header_id|>user", "<|start_header_id|>assistant", "<|start_header_id|>ipython",
     {"<|eot_id|>"}, "<|end_header_id|>\n\n", "<|end_header_id|>\n\n", {NULL}, 3,
     {128001, 128008, 128009}, false},
    {"llama-4", "", "", 1, {200000}, false,
     "<|header_start|>user", "<|header_start|>assistant", "<|header_start|>ipython", {"<|eot|>"},
     "<|header_end|>\n\n", "<|header_end|>\n\n", {NULL}, 3, {200001, 200007, 200008}, false},
    {"codellama_completion", "{system_message}", "", 1, {1}, true, "", "", NULL, {""}, "", "",
     {"</s>"}, 1, {2}, false},
    {"codellama_instruct", "{system_message}", "", 1, {1}, true, "[INST]", "[/INST]", NULL, {" "},
     " ", " ", {"</s>"}, 1, {2}, false},
    {"chatml", CHATML_SYSTEM,
     "A conversation between a user and an LLM-based AI assistant. The assistant gives helpful and "
     "honest answers.",
     -1, {0}, true, "<|im_start|>user", "<|im_start|>assistant", NULL, {"<|im_end|>\n"}, "\n", "\n",
     {"<|im_end|>"}, 1, {2}, false},
    {"chatml_nosystem", "{system_message}", "", -1, {0}, true, "<|im_start|>user",
     "<|im_start|>assistant", NULL, {"<|im_end|>\n"}, "\n", "\n", {"<|im_end|>"}, 1, {2}, false},
    {"qwen2", CHATML_SYSTEM, "You are a helpful assistant.", -1, {0}, true, "<|im_start|>user",
     "<|im_start|>assistant", NULL, {"<|im_end|>\n"}, "\n", "\n", {"<|endoftext|>", "<|im_end|>"}, 2,
     {151643, 151645}, false},
    {"qwen3", CHATML_SYSTEM, "You are a helpful assistant.", -1, {0}, true, "<|im_start|>user",
     "<|im_start|>assistant", NULL, {"<|im_end|>\n"}, "\n", "\n", {"<|endoftext|>", "<|im_end|>"}, 2,
     {151643, 151645}, true},
    {"mistral_default", "[INST] {system_message}",
     "Always assist with care, respect, and truth. Respond with utmost utility yet securely. Avoid "
     "harmful, unethical, prejudiced, or negative content. Ensure replies promote fairness and "
     "positivity.",
     1, {1}, false, "[INST]", "[/INST]", "[INST]", {" "}, " ", "", {"</s>"}, 1, {2}, false},
    {"gemma_instruction", "{system_message}", "", 1, {2}, true, "<start_of_turn>user",
     "<start_of_turn>model", NULL, {"<end_of_turn>\n"}, "\n", "\n", {"<end_of_turn>"}, 2, {1, 107},
     false},
    {"gemma3_instruction", "{system_message}", "", 1, {2}, true, "<start_of_turn>user",
     "<start_of_turn>model", NULL, {"<end_of_turn>\n"}, "\n", "\n", {"<end_of_turn>"}, 2, {1, 106},
     false},
    {"phi-3", "<|system|>\n{system_message}", PHI_SYSTEM_MESSAGE, 1, {1}, true, "<|user|>",
     "<|assistant|>", NULL, {"<|end|>\n"}, "\n", "\n", {"<|endoftext|>"}, 4, {2, 32000, 32001, 32007},
     false},
    {"phi-4", "<|system|>\n{system_message}", PHI_SYSTEM_MESSAGE, 1, {200022}, true, "<|user|>",
     "<|assistant|>", NULL, {"<|end|>\n"}, "\n", "\n", {"<|endoftext|>", "<|end|>"}, 2,
     {199999, 200020}, false},
    {"tinyllama_v1_0", "<|system|>\n{system_message}</s>", "You are a helpful chatbot.", -1, {0}, true,
     "<|user|>", "<|assistant|>", NULL, {"</s>"}, "\n", "\n", {"</s>"}, 1, {2}, false},
    {"LM", "{system_message}", "", 1, {1}, true, "", "", NULL, {""}, "", "", {NULL}, 1, {2}, false},
};
#define NBUILTINS (sizeof builtins / sizeof builtins[0])

size_t conv_template_builtin_count(void)
{
    return NBUILTINS;
}

const char *conv_template_builtin_name(size_t i)
{
    return i < NBUILTINS ? builtins[i].name : NULL;
}

const char *conv_template_builtin_names(void)
{
    static char names[1024];
    if (!names[0]) {
        size_t off = 0;
        for (size_t i = 0; i < NBUILTINS; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "", builtins[i].name);
    }
    return names;
}

static void add_pair(struct conv_pair **p, size_t *n, const char *key, const char *value)
{
    *p = xrealloc(*p, (*n + 1) * sizeof **p);
    (*p)[*n].key = xstrdup(key);
    (*p)[(*n)++].value = xstrdup(value);
}

struct conv_template *conv_template_builtin(const char *name)
{
    const struct builtin *b = NULL;
    for (size_t i = 0; i < NBUILTINS && !b; i++)
        if (!strcmp(builtins[i].name, name)) b = &builtins[i];
    if (!b) {
        fail("unknown conversation template '%s' (known: %s; or give a FILE.json)", name,
             conv_template_builtin_names());
        return NULL;
    }
    struct conv_template *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(b->name);
    t->system_template = xstrdup(b->system_template);
    t->system_message = xstrdup(b->system_message);
    t->has_system_prefix = b->n_prefix >= 0;
    if (t->has_system_prefix) {
        t->n_system_prefix = (size_t)b->n_prefix;
        t->system_prefix_token_ids = xcalloc(MAXN, sizeof(int32_t));
        memcpy(t->system_prefix_token_ids, b->prefix, sizeof b->prefix);
    }
    t->add_role_after_system_message = b->add_role_after_system_message;
    add_pair(&t->roles, &t->n_roles, "user", b->user);
    add_pair(&t->roles, &t->n_roles, "assistant", b->assistant);
    if (b->tool) add_pair(&t->roles, &t->n_roles, "tool", b->tool);
    add_pair(&t->role_templates, &t->n_role_templates, "user", "{user_message}");
    add_pair(&t->role_templates, &t->n_role_templates, "assistant", "{assistant_message}");
    add_pair(&t->role_templates, &t->n_role_templates, "tool", "{tool_message}");
    t->seps = xcalloc(3, sizeof *t->seps);
    for (size_t i = 0; i < 2 && b->seps[i]; i++) t->seps[t->n_seps++] = xstrdup(b->seps[i]);
    t->role_content_sep = xstrdup(b->role_content_sep);
    t->role_empty_sep = xstrdup(b->role_empty_sep);
    t->stop_str = xcalloc(MAXN + 1, sizeof *t->stop_str);
    for (size_t i = 0; i < MAXN && b->stop_str[i]; i++) t->stop_str[t->n_stop_str++] = xstrdup(b->stop_str[i]);
    t->n_stop_token_ids = (size_t)b->n_stop_ids;
    t->stop_token_ids = xcalloc(MAXN, sizeof(int32_t));
    memcpy(t->stop_token_ids, b->stop_ids, sizeof b->stop_ids);
    t->strip_reasoning_in_history = b->strip_reasoning_in_history;
    t->function_string = xstrdup("");
    t->use_function_calling = false;
    return t;
}

/* ---- choosing ---- */

static bool has(const char *text, const char *s)
{
    return text && strstr(text, s);
}

const char *conv_template_guess(const char *chat_template, const char *model_type, const char **reason)
{
    const char *ct = chat_template;
    bool qwen3 = model_type && !strcmp(model_type, "qwen3"), qwen2 = model_type && !strcmp(model_type, "qwen2");
    if (!ct || !*ct) {
        *reason = "the model has no chat template (a base model)";
        return "LM";
    }
    if (has(ct, "<|start_header_id|>")) {
        /* Llama 3.1 and later add the ipython role and the <|eom_id|> stop */
        if (has(ct, "ipython") || has(ct, "<|eom_id|>")) {
            *reason = "its chat template is Llama 3.1's (headers, ipython role)";
            return "llama-3_1";
        }
        *reason = "its chat template is Llama 3's (<|start_header_id|> headers)";
        return "llama-3";
    }
    if (has(ct, "<|header_start|>")) {
        *reason = "its chat template is Llama 4's (<|header_start|> headers)";
        return "llama-4";
    }
    if (has(ct, "<|im_start|>")) {
        if (qwen3 || has(ct, "<think>")) {
            *reason = "its chat template is ChatML with <think> reasoning (Qwen3)";
            return "qwen3";
        }
        if (qwen2) {
            *reason = "its chat template is ChatML and the model is qwen2";
            return "qwen2";
        }
        *reason = "its chat template is ChatML (<|im_start|>)";
        return "chatml";
    }
    if (has(ct, "<start_of_turn>")) {
        *reason = "its chat template is Gemma's (<start_of_turn>)";
        return model_type && !strncmp(model_type, "gemma3", 6) ? "gemma3_instruction" : "gemma_instruction";
    }
    if (has(ct, "<|user|>") && has(ct, "<|end|>")) {
        *reason = "its chat template is Phi-3's (<|user|> ... <|end|>)";
        return "phi-3";
    }
    if (has(ct, "<|user|>")) {
        *reason = "its chat template is Zephyr/TinyLlama's (<|user|> ... </s>)";
        return "tinyllama_v1_0";
    }
    if (has(ct, "<<SYS>>")) {
        *reason = "its chat template is Llama 2's ([INST] with <<SYS>>)";
        return "llama-2";
    }
    if (has(ct, "[INST]")) {
        *reason = "its chat template is Mistral's ([INST] without <<SYS>>)";
        return "mistral_default";
    }
    *reason = "its chat template matches no built-in template";
    return "LM";
}
