/* conv-render: render a conversation with a conversation template, for
 * tests (the library call the engine makes).
 *
 *   conv-render TEMPLATE MESSAGES.json
 *
 * TEMPLATE is a built-in name, a FILE.json holding a template, or an
 * mlc-chat-config.json (its conv_template is used). MESSAGES.json is a list
 * of {"role", "content"} objects (or {"messages": [...]}). Prints one JSON
 * line: {"prefix_token_ids": [...], "text": "...", "stop_str": [...],
 * "stop_token_ids": [...]}. */
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/json.h"
#include "formats/chat_config.h"
#include "formats/conv_template.h"

static struct conv_template *load(const char *arg)
{
    if (!strchr(arg, '/') && !strstr(arg, ".json")) return conv_template_builtin(arg);
    json_t *doc = json_load_path(arg);
    if (!doc) return NULL;
    struct conv_template *t;
    if (json_object_get(doc, "model_config")) {
        struct chat_config c;
        if (chat_config_from_json(doc, arg, NULL, &c) != 0) return NULL;
        t = conv_template_dup(c.conv_template);
        chat_config_free(&c);
    } else {
        t = conv_template_from_json(doc, arg);
        json_decref(doc);
    }
    return t;
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    if (argc != 3) die("usage: conv-render TEMPLATE MESSAGES.json");
    struct conv_template *t = load(argv[1]);
    if (!t) die_last();
    json_t *doc = json_load_path(argv[2]);
    if (!doc) die_last();
    struct chat_message *msgs;
    size_t n;
    if (chat_messages_from_json(doc, argv[2], &msgs, &n) != 0) die_last();
    struct conv_prompt p;
    if (conv_render(t, msgs, n, NULL, &p) != 0) die_last();

    json_t *out = json_object();
    json_t *ids = json_array();
    for (size_t i = 0; i < p.n_prefix_token_ids; i++) json_array_append_new(ids, json_integer(p.prefix_token_ids[i]));
    json_object_set_new(out, "prefix_token_ids", ids);
    json_object_set_new(out, "text", json_stringn(p.text, p.text_len));
    json_t *stops = json_array();
    for (size_t i = 0; i < t->n_stop_str; i++) json_array_append_new(stops, json_string(t->stop_str[i]));
    json_object_set_new(out, "stop_str", stops);
    json_t *stop_ids = json_array();
    for (size_t i = 0; i < t->n_stop_token_ids; i++) json_array_append_new(stop_ids, json_integer(t->stop_token_ids[i]));
    json_object_set_new(out, "stop_token_ids", stop_ids);
    struct buf b = BUF_INIT;
    buf_init(&b);
    struct pyjson_style st = pyjson_compact();
    st.ensure_ascii = false;
    pyjson_dump(&b, out, &st);
    printf("%s\n", b.data);
    buf_free(&b);
    json_decref(out);
    json_decref(doc);
    free(msgs);
    conv_prompt_free(&p);
    conv_template_free(t);
    return 0;
}
