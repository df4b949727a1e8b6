/* The built-in conversation templates (MLC-LLM's registry, mlc-formats.md
 * §5) and the choice of one for a model.
 *
 * Every entry reproduces the template of the same name in MLC-LLM's
 * python/mlc_llm/conversation_template/, field for field. */
#include <string.h>

#include "common/err.h"
#include "formats/conv_template.h"

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

static json_t *ids_json(const int32_t *ids, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
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
    /* built as the JSON object a file would hold, so built-in templates get
     * the same defaults and checks as users' own */
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(b->name));
    json_object_set_new(o, "system_template", json_string(b->system_template));
    json_object_set_new(o, "system_message", json_string(b->system_message));
    json_object_set_new(o, "system_prefix_token_ids", b->n_prefix < 0 ? json_null() : ids_json(b->prefix, b->n_prefix));
    json_object_set_new(o, "add_role_after_system_message", json_boolean(b->add_role_after_system_message));
    json_t *roles = json_object();
    json_object_set_new(roles, "user", json_string(b->user));
    json_object_set_new(roles, "assistant", json_string(b->assistant));
    if (b->tool) json_object_set_new(roles, "tool", json_string(b->tool));
    json_object_set_new(o, "roles", roles);
    json_t *seps = json_array();
    for (size_t i = 0; i < 2 && b->seps[i]; i++) json_array_append_new(seps, json_string(b->seps[i]));
    json_object_set_new(o, "seps", seps);
    json_object_set_new(o, "role_content_sep", json_string(b->role_content_sep));
    json_object_set_new(o, "role_empty_sep", json_string(b->role_empty_sep));
    json_t *stops = json_array();
    for (size_t i = 0; i < MAXN && b->stop_str[i]; i++) json_array_append_new(stops, json_string(b->stop_str[i]));
    json_object_set_new(o, "stop_str", stops);
    json_object_set_new(o, "stop_token_ids", ids_json(b->stop_ids, b->n_stop_ids));
    json_object_set_new(o, "strip_reasoning_in_history", json_boolean(b->strip_reasoning_in_history));
    struct conv_template *t = conv_template_from_json(o, b->name);
    json_decref(o);
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
