/* Conversation templates: every built-in template on the same two-turn
 * conversation (expected strings written out by hand from the template
 * definitions in MLC-LLM's conversation_template/ files and mlc-formats.md §5),
 * JSON reading and writing, the renderer's rules, and the template choice. */
#include "common/buf.h"
#include "common/json.h"
#include "formats/conv_template.h"
#include "tests/unit/test.h"

static const struct chat_message two_turn[] = {
    {"user", "Hi"},
    {"assistant", "Hello!"},
    {"user", "How are you?"},
};

struct expect {
    const char *name;
    int n_prefix;
    int32_t prefix;
    const char *text;
};

#define L3_SYS "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful, respectful and honest assistant.<|eot_id|>"
#define L3_TURNS                                                                                                 \
    "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" \
    "Hello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"                         \
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
#define CHATML_TURNS                                                                                      \
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are " \
    "you?<|im_end|>\n<|im_start|>assistant\n"
#define GEMMA_TURNS                                                                                            \
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nHow " \
    "are you?<end_of_turn>\n<start_of_turn>model\n"
#define PHI_TURNS                                                                                              \
    "<|system|>\nYou are a helpful digital assistant. Please provide safe, ethical and accurate information to " \
    "the user.<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\n"

static const struct expect expected[] = {
    {"llama-2", 1, 1,
     "[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"
     "Hi [/INST] Hello! </s><s>[INST] How are you? [/INST] "},
    {"llama-3", 1, 128000, L3_SYS L3_TURNS},
    {"llama-3_1", 1, 128000, L3_SYS L3_TURNS},
    {"llama-4", 1, 200000,
     "<|header_start|>user<|header_end|>\n\nHi<|eot|><|header_start|>assistant<|header_end|>\n\nHello!<|eot|>"
     "<|header_start|>user<|header_end|>\n\nHow are you?<|eot|><|header_start|>assistant<|header_end|>\n\n"},
    {"codellama_completion", 1, 1, "HiHello!How are you?"},
    {"codellama_instruct", 1, 1, "[INST] Hi [/INST] Hello! [INST] How are you? [/INST] "},
    {"chatml", 0, 0,
     "<|im_start|>system\nA conversation between a user and an LLM-based AI assistant. The assistant gives "
     "helpful and honest answers.<|im_end|>\n" CHATML_TURNS},
    {"chatml_nosystem", 0, 0, CHATML_TURNS},
    {"qwen2", 0, 0, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" CHATML_TURNS},
    {"qwen3", 0, 0, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" CHATML_TURNS},
    /* the system message runs into the first user message: no space */
    {"mistral_default", 1, 1,
     "[INST] Always assist with care, respect, and truth. Respond with utmost utility yet securely. Avoid "
     "harmful, unethical, prejudiced, or negative content. Ensure replies promote fairness and positivity.Hi "
     "[/INST] Hello! [INST] How are you? [/INST]"},
    {"gemma_instruction", 1, 2, GEMMA_TURNS},
    {"gemma3_instruction", 1, 2, GEMMA_TURNS},
    /* no <|end|> after the system block */
    {"phi-3", 1, 1, PHI_TURNS},
    {"phi-4", 1, 200022, PHI_TURNS},
    {"tinyllama_v1_0", 0, 0,
     "<|system|>\nYou are a helpful chatbot.</s><|user|>\nHi</s><|assistant|>\nHello!</s><|user|>\nHow are "
     "you?</s><|assistant|>\n"},
    {"LM", 1, 1, "HiHello!How are you?"},
};
#define NEXPECTED (sizeof expected / sizeof expected[0])

static char *render(const struct conv_template *t, const struct chat_message *m, size_t n)
{
    struct conv_prompt p;
    if (conv_render(t, m, n, NULL, &p) != 0) return NULL;
    char *text = xstrdup(p.text);
    conv_prompt_free(&p);
    return text;
}

TEST(every_builtin_renders_the_two_turn_conversation)
{
    CHECK_EQ(conv_template_builtin_count(), NEXPECTED);
    for (size_t i = 0; i < NEXPECTED; i++) {
        struct conv_template *t = conv_template_builtin(expected[i].name);
        CHECK(t != NULL);
        if (!t) continue;
        struct conv_prompt p;
        CHECK_EQ(conv_render(t, two_turn, 3, NULL, &p), 0);
        CHECK_STR(p.text, expected[i].text);
        CHECK_EQ(p.text_len, strlen(expected[i].text));
        CHECK_EQ(p.n_prefix_token_ids, expected[i].n_prefix);
        if (expected[i].n_prefix) CHECK_EQ(p.prefix_token_ids[0], expected[i].prefix);
        conv_prompt_free(&p);
        conv_template_free(t);
    }
}

TEST(stop_strings_and_ids_are_mlcs)
{
    struct conv_template *t = conv_template_builtin("llama-3");
    CHECK_EQ(t->n_stop_str, 2);
    CHECK_STR(t->stop_str[0], "<|end_of_text|>");
    CHECK_STR(t->stop_str[1], "<|eot_id|>");
    CHECK_EQ(t->n_stop_token_ids, 2);
    CHECK_EQ(t->stop_token_ids[0], 128001);
    CHECK_EQ(t->stop_token_ids[1], 128009);
    conv_template_free(t);
    t = conv_template_builtin("llama-3_1");
    CHECK_EQ(t->n_stop_str, 0);
    CHECK_EQ(t->n_stop_token_ids, 3);
    CHECK_EQ(t->stop_token_ids[1], 128008);
    CHECK_EQ(t->n_roles, 3);
    CHECK_STR(t->roles[2].value, "<|start_header_id|>ipython");
    conv_template_free(t);
    t = conv_template_builtin("phi-3");
    CHECK_EQ(t->n_stop_token_ids, 4);
    CHECK_EQ(t->stop_token_ids[3], 32007);
    conv_template_free(t);
    t = conv_template_builtin("gemma_instruction");
    CHECK_EQ(t->stop_token_ids[1], 107);
    conv_template_free(t);
    t = conv_template_builtin("gemma3_instruction");
    CHECK_EQ(t->stop_token_ids[1], 106);
    conv_template_free(t);
    CHECK(conv_template_builtin("llama_default") == NULL); /* on MLC's choice list, never registered */
}

TEST(json_has_every_field_in_mlcs_order)
{
    static const char *const order[] = {
        "name", "system_template", "system_message", "system_prefix_token_ids", "add_role_after_system_message",
        "roles", "role_templates", "messages", "seps", "role_content_sep", "role_empty_sep", "stop_str",
        "stop_token_ids", "strip_reasoning_in_history", "function_string", "use_function_calling",
    };
    struct conv_template *t = conv_template_builtin("chatml");
    json_t *j = conv_template_to_json(t);
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach(j, key, v) {
        CHECK(i < 16);
        if (i < 16) CHECK_STR(key, order[i]);
        i++;
    }
    CHECK_EQ(i, 16);
    CHECK(json_is_null(json_object_get(j, "system_prefix_token_ids")));
    struct buf b = BUF_INIT;
    buf_init(&b);
    struct pyjson_style st = pyjson_compact();
    pyjson_dump(&b, json_object_get(j, "role_templates"), &st);
    CHECK_STR(b.data, "{\"user\":\"{user_message}\",\"assistant\":\"{assistant_message}\",\"tool\":\"{tool_message}\"}");
    buf_free(&b);
    json_decref(j);
    conv_template_free(t);
}

TEST(every_builtin_round_trips_through_json)
{
    for (size_t i = 0; i < conv_template_builtin_count(); i++) {
        struct conv_template *t = conv_template_builtin(conv_template_builtin_name(i));
        json_t *a = conv_template_to_json(t);
        struct conv_template *back = conv_template_from_json(a, "test");
        CHECK(back != NULL);
        json_t *b = conv_template_to_json(back);
        CHECK(json_equal(a, b));
        json_decref(a);
        json_decref(b);
        conv_template_free(back);
        conv_template_free(t);
    }
}

static struct conv_template *parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    if (!j) return NULL;
    struct conv_template *t = conv_template_from_json(j, "custom.json");
    json_decref(j);
    return t;
}

TEST(a_user_template_gets_mlcs_defaults)
{
    struct conv_template *t =
        parse("{\"roles\": {\"user\": \"### User:\", \"assistant\": \"### Bot:\"}, \"seps\": [\"\\n\"],"
              " \"role_content_sep\": \" \", \"role_empty_sep\": \"\","
              " \"role_templates\": {\"user\": \"<q>{user_message}</q>\", \"critic\": \"{critic_message}\"}}");
    CHECK(t != NULL);
    if (!t) return;
    CHECK(t->name == NULL);
    CHECK_STR(t->system_template, "{system_message}");
    CHECK(t->add_role_after_system_message);
    CHECK(!t->has_system_prefix);
    /* defaults first, file entries replace them or are appended */
    CHECK_EQ(t->n_role_templates, 4);
    CHECK_STR(t->role_templates[0].value, "<q>{user_message}</q>");
    CHECK_STR(t->role_templates[1].key, "assistant");
    CHECK_STR(t->role_templates[3].key, "critic");
    char *s = render(t, two_turn, 3);
    CHECK_STR(s, "### User: <q>Hi</q>\n### Bot: Hello!\n### User: <q>How are you?</q>\n### Bot:");
    free(s);
    conv_template_free(t);
}

TEST(bad_templates_are_refused_with_the_field_named)
{
    static const struct {
        const char *json, *message;
    } cases[] = {
        {"{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}, \"seps\": []}", "seps' must hold 1 or 2"},
        {"{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}, \"seps\": [\"a\", \"b\", \"c\"]}", "1 or 2"},
        {"{\"roles\": {\"user\": \"U\"}, \"seps\": [\"\"]}", "\"assistant\" entry"},
        {"{\"seps\": [\"\"]}", "field 'roles'"},
        {"{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}}", "seps"},
        {"{\"roles\": {\"user\": 3, \"assistant\": \"A\"}, \"seps\": [\"\"]}", "roles.user must be a string"},
        {"{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}, \"seps\": [\"\"], \"stop_token_ids\": [-1]}",
         "stop_token_ids[0]"},
        {"{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}, \"seps\": [\"\"], \"stop_token_ids\": [4294967296]}",
         "stop_token_ids[0]"},
        {"{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}, \"seps\": [\"\"], \"system_prefix_token_ids\": \"1\"}",
         "system_prefix_token_ids"},
        {"{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}, \"seps\": [\"\"], \"add_role_after_system_message\": 1}",
         "add_role_after_system_message' must be true or false"},
        {"{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}, \"seps\": [\"\"], \"messages\": [[\"user\"]]}",
         "messages[0]"},
        {"{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}, \"seps\": [\"\"], \"system_message\": \"a\\u0000b\"}",
         "system_message"},
        {"[1]", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loads(cases[i].json, JSON_ALLOW_NUL, NULL);
        CHECK(j != NULL);
        struct conv_template *t = conv_template_from_json(j, "custom.json");
        CHECK(t == NULL);
        CHECK_CONTAINS(last_error(), "custom.json");
        CHECK_CONTAINS(last_error(), cases[i].message);
        json_decref(j);
    }
}

TEST(system_messages_replace_the_default_and_join)
{
    struct conv_template *t = conv_template_builtin("qwen2");
    const struct chat_message m[] = {{"system", "A."}, {"user", "Hi"}, {"system", "B."}};
    char *s = render(t, m, 3);
    CHECK_STR(s, "<|im_start|>system\nA.B.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    conv_template_free(t);
    /* an empty custom system message still replaces the default */
    t = conv_template_builtin("llama-2");
    const struct chat_message e[] = {{"system", ""}, {"user", "Hi"}};
    s = render(t, e, 2);
    CHECK_STR(s, "[INST] <<SYS>>\n\n<</SYS>>\n\nHi [/INST] ");
    free(s);
    conv_template_free(t);
}

TEST(the_role_prefix_is_dropped_only_after_a_system_block)
{
    /* llama-2 with an empty system template: the first user message keeps
     * its prefix, because there is no system text to follow */
    struct conv_template *t = conv_template_builtin("llama-2");
    free(t->system_template);
    t->system_template = xstrdup("{system_message}");
    const struct chat_message e[] = {{"system", ""}, {"user", "Hi"}};
    char *s = render(t, e, 2);
    CHECK_STR(s, "<s>[INST] Hi [/INST] ");
    free(s);
    conv_template_free(t);
}

TEST(a_message_without_content_renders_its_role_alone)
{
    struct conv_template *t = conv_template_builtin("chatml_nosystem");
    const struct chat_message m[] = {{"user", "Q"}, {"assistant", NULL}, {"user", ""}};
    char *s = render(t, m, 3);
    CHECK_STR(s, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<|im_start|>user\n<|im_end|>\n"
                 "<|im_start|>assistant\n");
    free(s);
    conv_template_free(t);
}

TEST(placeholders_are_replaced_once_and_content_is_literal)
{
    struct conv_template *t = parse("{\"system_template\": \"[{system_message}|{system_message}]\","
                                    " \"system_message\": \"S\", \"roles\": {\"user\": \"U\", \"assistant\": \"A\"},"
                                    " \"seps\": [\";\"], \"role_templates\": {\"user\": \"{user_message}{user_message}\"}}");
    const struct chat_message m[] = {{"user", "{user_message}"}};
    char *s = render(t, m, 1);
    CHECK_STR(s, "[S|{system_message}]U{user_message}{user_message};A");
    free(s);
    conv_template_free(t);
}

TEST(the_function_string_fills_role_templates_when_tools_are_given)
{
    struct conv_template *t = parse("{\"roles\": {\"user\": \"U:\", \"assistant\": \"A:\"}, \"seps\": [\"\\n\"],"
                                    " \"role_templates\": {\"user\": \"tools={function_string} {user_message}\"}}");
    const struct chat_message m[] = {{"user", "x"}};
    struct conv_prompt p;
    CHECK_EQ(conv_render(t, m, 1, "[f]", &p), 0);
    CHECK_STR(p.text, "U:tools=[f] x\nA:");
    conv_prompt_free(&p);
    CHECK_EQ(conv_render(t, m, 1, NULL, &p), 0);
    CHECK_STR(p.text, "U:tools={function_string} x\nA:");
    conv_prompt_free(&p);
    conv_template_free(t);
}

TEST(two_separators_alternate_by_role)
{
    struct conv_template *t = parse("{\"roles\": {\"user\": \"U\", \"assistant\": \"A\", \"tool\": \"T\"},"
                                    " \"seps\": [\"|\", \"#\"], \"role_content_sep\": \":\"}");
    const struct chat_message m[] = {{"user", "1"}, {"assistant", "2"}, {"tool", "3"}, {"assistant", "4"}};
    char *s = render(t, m, 4);
    CHECK_STR(s, "U:1|A:2#T:3|A:4#A");
    free(s);
    conv_template_free(t);
}

TEST(qwen3_strips_old_reasoning_only_before_the_last_user_message)
{
    struct conv_template *t = conv_template_builtin("qwen3");
    const struct chat_message m[] = {
        {"system", "S"},
        {"user", "Q1"},
        {"assistant", "<think>x</think>mid</think>\n\n\nA1"},
        {"user", "Q2"},
        {"assistant", "<think>keep</think>\nA2"},
    };
    char *s = render(t, m, 5);
    CHECK_STR(s, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1"
                 "<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n<think>keep</think>\nA2"
                 "<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    conv_template_free(t);
    t = conv_template_builtin("qwen2");
    s = render(t, m, 3);
    CHECK_CONTAINS(s, "<think>x</think>mid</think>\n\n\nA1");
    free(s);
    conv_template_free(t);
}

TEST(template_messages_come_before_the_callers)
{
    struct conv_template *t = parse("{\"roles\": {\"user\": \"U\", \"assistant\": \"A\"}, \"seps\": [\";\"],"
                                    " \"messages\": [[\"user\", \"earlier\"], [\"assistant\", null]]}");
    const struct chat_message m[] = {{"user", "now"}};
    char *s = render(t, m, 1);
    CHECK_STR(s, "Uearlier;AUnow;A");
    free(s);
    conv_template_free(t);
}

TEST(unknown_roles_are_errors)
{
    struct conv_template *t = conv_template_builtin("llama-3");
    const struct chat_message m[] = {{"tool", "x"}};
    struct conv_prompt p;
    CHECK_EQ(conv_render(t, m, 1, NULL, &p), -1);
    CHECK_CONTAINS(last_error(), "no role 'tool'");
    conv_template_free(t);
}

TEST(messages_from_json)
{
    json_t *j = json_loads("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"},"
                           " {\"role\": \"assistant\", \"content\": null}]}", 0, NULL);
    struct chat_message *m;
    size_t n;
    CHECK_EQ(chat_messages_from_json(j, "c.json", &m, &n), 0);
    CHECK_EQ(n, 2);
    CHECK_STR(m[0].content, "a");
    CHECK(m[1].content == NULL);
    free(m);
    json_decref(j);
    j = json_loads("[{\"role\": \"user\", \"content\": 5}]", 0, NULL);
    CHECK_EQ(chat_messages_from_json(j, "c.json", &m, &n), -1);
    CHECK_CONTAINS(last_error(), "c.json: messages[0]");
    json_decref(j);
}

TEST(the_template_is_chosen_from_the_chat_template)
{
    static const struct {
        const char *chat_template, *model_type, *expect;
    } cases[] = {
        {NULL, "llama", "LM"},
        {"", "qwen2", "LM"},
        {"{{ '<|start_header_id|>' + message['role'] }}", "llama", "llama-3"},
        {"{{ '<|start_header_id|>ipython<|end_header_id|>' }}<|eom_id|>", "llama", "llama-3_1"},
        {"<|im_start|>{{ role }}", "llama", "chatml"},        /* SmolLM2-Instruct */
        {"<|im_start|>{{ role }}", "qwen2", "qwen2"},
        {"<|im_start|>{{ role }}", "qwen3", "qwen3"},
        {"<|im_start|> ... <think>", "qwen2", "qwen3"},
        {"<start_of_turn>user", "gemma", "gemma_instruction"},
        {"<start_of_turn>user", "gemma3_text", "gemma3_instruction"},
        {"<|user|>\n{{ content }}<|end|>", "phi3", "phi-3"},
        {"<|user|>\n{{ message['content'] + eos_token }}", "llama", "tinyllama_v1_0"},
        {"[INST] <<SYS>>\n", "llama", "llama-2"},
        {"{{ '[INST] ' + content + ' [/INST]' }}", "mistral", "mistral_default"},
        {"{{ messages }}", "llama", "LM"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = NULL;
        const char *got = conv_template_guess(cases[i].chat_template, cases[i].model_type, &why);
        CHECK_STR(got, cases[i].expect);
        CHECK(why && *why);
        struct conv_template *t = conv_template_builtin(got);
        CHECK(t != NULL); /* every guess is a registered template */
        conv_template_free(t);
    }
}

TEST_MAIN()
