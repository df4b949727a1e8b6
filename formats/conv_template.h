/* MLC-LLM conversation templates (mlc-formats.md §5).
 *
 * A conversation template says how a list of chat messages becomes the one
 * prompt a model was trained on: a system block, a role prefix before each
 * message, separators after them, and token ids (system_prefix_token_ids)
 * put in front of the text as tokens. It also carries the stop strings and
 * stop token ids that end a reply.
 *
 * Templates are read and written as the JSON object MLC keeps under
 * "conv_template" in mlc-chat-config.json, with every field in MLC's order.
 * Rendering follows MLC's C++ engine (CreatePrompt), the code that builds the
 * prompts a deployed model really sees. */
#ifndef MLC_CONV_TEMPLATE_H
#define MLC_CONV_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One key/value pair of an ordered string map (roles, role_templates). */
struct conv_pair {
    char *key;
    char *value;
};

struct conv_message {
    char *role;
    char *content;   /* NULL: no content yet (renders as the bare role prefix) */
};

struct conv_template {
    char *name;                       /* NULL when the template has none */
    char *system_template;            /* contains "{system_message}" */
    char *system_message;
    bool has_system_prefix;           /* false: system_prefix_token_ids is null */
    int32_t *system_prefix_token_ids;
    size_t n_system_prefix;
    bool add_role_after_system_message;
    struct conv_pair *roles;          /* role name -> text put before a message */
    size_t n_roles;
    struct conv_pair *role_templates; /* role name -> "...{user_message}..." */
    size_t n_role_templates;
    struct conv_message *messages;    /* messages stored in the template */
    size_t n_messages;
    char **seps;                      /* 1 or 2: after user / after assistant */
    size_t n_seps;
    char *role_content_sep;
    char *role_empty_sep;
    char **stop_str;
    size_t n_stop_str;
    int32_t *stop_token_ids;
    size_t n_stop_token_ids;
    bool strip_reasoning_in_history;  /* drop <think>...</think> from old replies */
    char *function_string;
    bool use_function_calling;
};

/* ---- the registry of built-in templates ---- */

/* A fresh copy of the built-in template NAME (caller frees), or NULL with
 * last_error() listing the known names. */
struct conv_template *conv_template_builtin(const char *name);
size_t conv_template_builtin_count(void);
const char *conv_template_builtin_name(size_t i);
/* "llama-2, llama-3, ..." for messages and --help. */
const char *conv_template_builtin_names(void);

/* ---- JSON ---- */

/* Parse a Conversation object. Fields MLC's Python model gives defaults may
 * be absent; "roles" (with an "assistant" entry) and "seps" (1 or 2 strings)
 * are required. Unknown fields are ignored, as MLC does. Errors name `what`
 * (a file, or "mlc-chat-config.json: conv_template") and the field. */
struct conv_template *conv_template_from_json(const json_t *obj, const char *what);
/* The full object in MLC's field order, nulls included (new reference). */
json_t *conv_template_to_json(const struct conv_template *t);
/* A template from a file: FILE.json holding a Conversation object. */
struct conv_template *conv_template_load(const char *path);
struct conv_template *conv_template_dup(const struct conv_template *t);
void conv_template_free(struct conv_template *t);

/* ---- choosing a template ---- */

/* The built-in template that fits a model, from its HuggingFace chat
 * template text (tokenizer_config.json "chat_template"; NULL if none) and
 * model_type. *reason gets a short static phrase saying why. */
const char *conv_template_guess(const char *chat_template, const char *model_type,
                                const char **reason);

/* ---- rendering ---- */

/* A chat message to render. role: "system", "user", "assistant" or "tool";
 * content NULL means "no content" (the role prefix alone). */
struct chat_message {
    const char *role;
    const char *content;
};

struct conv_prompt {
    int32_t *prefix_token_ids;  /* system_prefix_token_ids, put before the text */
    size_t n_prefix_token_ids;
    char *text;                 /* the prompt text, to be tokenized */
    size_t text_len;
};

/* Render the template's own messages and then msgs into a prompt that ends
 * with the assistant's role prefix, as MLC's engine does:
 *  - system messages (all of them, concatenated) replace system_message;
 *  - the first non-system message after a non-empty system block gets no
 *    role prefix when add_role_after_system_message is false;
 *  - each message is role + role_content_sep + role template + separator
 *    (seps[1] after the assistant when there are two);
 *  - with strip_reasoning_in_history, assistant messages before the last
 *    user message lose everything up to their last "</think>" and the
 *    newlines after it.
 * function_string (NULL: no tools in the request) replaces the first
 * "{function_string}" of each role template, as MLC does for tool calls.
 * -1 with last_error() on an unknown role. */
int conv_render(const struct conv_template *t, const struct chat_message *msgs, size_t n,
                const char *function_string, struct conv_prompt *out);
void conv_prompt_free(struct conv_prompt *p);

/* Messages from JSON: an array of {"role": R, "content": C} objects, or an
 * object with such an array under "messages" (an OpenAI-style request).
 * Content is a string or null. The returned array and its strings live as
 * long as `doc`. */
int chat_messages_from_json(const json_t *doc, const char *what, struct chat_message **msgs,
                            size_t *n);

#endif
