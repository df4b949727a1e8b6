/* Conversation templates: JSON reading and writing, and rendering (see
 * conv_template.h). The built-in templates are in conv_builtin.c. */
#include "formats/conv_template.h"

#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"

void conv_template_free(struct conv_template *t)
{
    if (!t) return;
    free(t->name);
    free(t->system_template);
    free(t->system_message);
    free(t->system_prefix_token_ids);
    for (size_t i = 0; i < t->n_roles; i++) free(t->roles[i].key), free(t->roles[i].value);
    free(t->roles);
    for (size_t i = 0; i < t->n_role_templates; i++)
        free(t->role_templates[i].key), free(t->role_templates[i].value);
    free(t->role_templates);
    for (size_t i = 0; i < t->n_messages; i++) free(t->messages[i].role), free(t->messages[i].content);
    free(t->messages);
    for (size_t i = 0; i < t->n_seps; i++) free(t->seps[i]);
    free(t->seps);
    free(t->role_content_sep);
    free(t->role_empty_sep);
    for (size_t i = 0; i < t->n_stop_str; i++) free(t->stop_str[i]);
    free(t->stop_str);
    free(t->stop_token_ids);
    free(t->function_string);
    free(t);
}

/* ---- JSON → template ---- */

static int want_string(const json_t *obj, const char *key, const char *def, char **out, const char *what)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = def ? xstrdup(def) : NULL;
        return 0;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return fail("%s: field '%s' must be a string (without NUL characters)", what, key);
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int want_bool(const json_t *obj, const char *key, bool def, bool *out, const char *what)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return fail("%s: field '%s' must be true or false", what, key);
    *out = json_is_true(v);
    return 0;
}

static int want_strings(const json_t *obj, const char *key, char ***out, size_t *n, const char *what)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    *n = 0;
    if (!v) return 0;
    if (!json_is_array(v)) return fail("%s: field '%s' must be a list of strings", what, key);
    *out = xcalloc(json_array_size(v) + 1, sizeof **out);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
            return fail("%s: %s[%zu] must be a string (without NUL characters)", what, key, i);
        (*out)[(*n)++] = xstrdup(json_string_value(s));
    }
    return 0;
}

static int want_ids(const json_t *v, const char *key, int32_t **out, size_t *n, const char *what)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(v)) return fail("%s: field '%s' must be a list of token ids", what, key);
    *out = xcalloc(json_array_size(v) + 1, sizeof **out);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *id = json_array_get(v, i);
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX)
            return fail("%s: %s[%zu] must be a token id (an integer from 0 to %d)", what, key, i, INT32_MAX);
        (*out)[(*n)++] = (int32_t)json_integer_value(id);
    }
    return 0;
}

static int want_pairs(const json_t *obj, const char *key, struct conv_pair **out, size_t *n, const char *what)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_object(v)) return fail("%s: field '%s' must be an object of strings", what, key);
    const char *k;
    json_t *s;
    json_object_foreach((json_t *)v, k, s) {
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
            return fail("%s: %s.%s must be a string (without NUL characters)", what, key, k);
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[*n].key = xstrdup(k);
        (*out)[(*n)++].value = xstrdup(json_string_value(s));
    }
    return 0;
}

static const char *pair_get(const struct conv_pair *p, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(p[i].key, key)) return p[i].value;
    return NULL;
}

/* Set key in an ordered map: replace in place, or append. */
static void pair_set(struct conv_pair **p, size_t *n, const char *key, const char *value)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*p)[i].key, key)) {
            free((*p)[i].value);
            (*p)[i].value = xstrdup(value);
            return;
        }
    *p = xrealloc(*p, (*n + 1) * sizeof **p);
    (*p)[*n].key = xstrdup(key);
    (*p)[(*n)++].value = xstrdup(value);
}

static int parse_messages(const json_t *obj, struct conv_template *t, const char *what)
{
    const json_t *v = json_object_get(obj, "messages");
    if (!v) return 0;
    if (!json_is_array(v)) return fail("%s: field 'messages' must be a list of [role, content]", what);
    t->messages = xcalloc(json_array_size(v) + 1, sizeof *t->messages);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *m = json_array_get(v, i);
        const json_t *role = json_array_get(m, 0), *content = json_array_get(m, 1);
        if (json_array_size(m) != 2 || !json_is_string(role) || !(json_is_string(content) || json_is_null(content)))
            return fail("%s: messages[%zu] must be [role, content] with a string or null content", what, i);
        t->messages[i].role = xstrdup(json_string_value(role));
        t->messages[i].content = json_is_string(content) ? xstrdup(json_string_value(content)) : NULL;
        t->n_messages++;
    }
    return 0;
}

struct conv_template *conv_template_from_json(const json_t *obj, const char *what)
{
    if (!json_is_object(obj)) {
        fail("%s: a conversation template must be a JSON object", what);
        return NULL;
    }
    struct conv_template *t = xcalloc(1, sizeof *t);
    const json_t *name = json_object_get(obj, "name");
    const json_t *prefix = json_object_get(obj, "system_prefix_token_ids");
    /* role_templates start from MLC's defaults; the file's entries replace
     * or extend them */
    pair_set(&t->role_templates, &t->n_role_templates, "user", "{user_message}");
    pair_set(&t->role_templates, &t->n_role_templates, "assistant", "{assistant_message}");
    pair_set(&t->role_templates, &t->n_role_templates, "tool", "{tool_message}");
    struct conv_pair *rt = NULL;
    size_t n_rt = 0;
    int rc = (name && !json_is_null(name) ? want_string(obj, "name", NULL, &t->name, what) : 0) ||
             want_string(obj, "system_template", "{system_message}", &t->system_template, what) ||
             want_string(obj, "system_message", "", &t->system_message, what) ||
             (prefix && !json_is_null(prefix)
                  ? want_ids(prefix, "system_prefix_token_ids", &t->system_prefix_token_ids, &t->n_system_prefix, what)
                  : 0) ||
             want_bool(obj, "add_role_after_system_message", true, &t->add_role_after_system_message, what) ||
             want_pairs(obj, "roles", &t->roles, &t->n_roles, what) ||
             (json_object_get(obj, "role_templates") ? want_pairs(obj, "role_templates", &rt, &n_rt, what) : 0) ||
             parse_messages(obj, t, what) || want_strings(obj, "seps", &t->seps, &t->n_seps, what) ||
             want_string(obj, "role_content_sep", "", &t->role_content_sep, what) ||
             want_string(obj, "role_empty_sep", "", &t->role_empty_sep, what) ||
             want_strings(obj, "stop_str", &t->stop_str, &t->n_stop_str, what) ||
             (json_object_get(obj, "stop_token_ids")
                  ? want_ids(json_object_get(obj, "stop_token_ids"), "stop_token_ids", &t->stop_token_ids,
                             &t->n_stop_token_ids, what)
                  : 0) ||
             want_bool(obj, "strip_reasoning_in_history", false, &t->strip_reasoning_in_history, what) ||
             want_string(obj, "function_string", "", &t->function_string, what) ||
             want_bool(obj, "use_function_calling", false, &t->use_function_calling, what);
    t->has_system_prefix = prefix && !json_is_null(prefix);
    for (size_t i = 0; i < n_rt; i++) {
        pair_set(&t->role_templates, &t->n_role_templates, rt[i].key, rt[i].value);
        free(rt[i].key);
        free(rt[i].value);
    }
    free(rt);
    if (!rc && (t->n_seps < 1 || t->n_seps > 2))
        rc = fail("%s: field 'seps' must hold 1 or 2 separators", what);
    if (!rc && !pair_get(t->roles, t->n_roles, "assistant"))
        rc = fail("%s: field 'roles' needs an \"assistant\" entry (every prompt ends with it)", what);
    if (rc) {
        conv_template_free(t);
        return NULL;
    }
    return t;
}

struct conv_template *conv_template_load(const char *path)
{
    json_t *doc = json_load_path(path);
    if (!doc) return NULL;
    struct conv_template *t = conv_template_from_json(doc, path);
    json_decref(doc);
    return t;
}

/* ---- template → JSON ---- */

static json_t *strings_json(char *const *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(s[i]));
    return a;
}

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static json_t *pairs_json(const struct conv_pair *p, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) json_object_set_new(o, p[i].key, json_string(p[i].value));
    return o;
}

json_t *conv_template_to_json(const struct conv_template *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", t->name ? json_string(t->name) : json_null());
    json_object_set_new(o, "system_template", json_string(t->system_template));
    json_object_set_new(o, "system_message", json_string(t->system_message));
    json_object_set_new(o, "system_prefix_token_ids",
                        t->has_system_prefix ? ids_json(t->system_prefix_token_ids, t->n_system_prefix) : json_null());
    json_object_set_new(o, "add_role_after_system_message", json_boolean(t->add_role_after_system_message));
    json_object_set_new(o, "roles", pairs_json(t->roles, t->n_roles));
    json_object_set_new(o, "role_templates", pairs_json(t->role_templates, t->n_role_templates));
    json_t *msgs = json_array();
    for (size_t i = 0; i < t->n_messages; i++) {
        json_t *m = json_array();
        json_array_append_new(m, json_string(t->messages[i].role));
        json_array_append_new(m, t->messages[i].content ? json_string(t->messages[i].content) : json_null());
        json_array_append_new(msgs, m);
    }
    json_object_set_new(o, "messages", msgs);
    json_object_set_new(o, "seps", strings_json(t->seps, t->n_seps));
    json_object_set_new(o, "role_content_sep", json_string(t->role_content_sep));
    json_object_set_new(o, "role_empty_sep", json_string(t->role_empty_sep));
    json_object_set_new(o, "stop_str", strings_json(t->stop_str, t->n_stop_str));
    json_object_set_new(o, "stop_token_ids", ids_json(t->stop_token_ids, t->n_stop_token_ids));
    json_object_set_new(o, "strip_reasoning_in_history", json_boolean(t->strip_reasoning_in_history));
    json_object_set_new(o, "function_string", json_string(t->function_string));
    json_object_set_new(o, "use_function_calling", json_boolean(t->use_function_calling));
    return o;
}

struct conv_template *conv_template_dup(const struct conv_template *t)
{
    json_t *j = conv_template_to_json(t);
    struct conv_template *copy = conv_template_from_json(j, "template");
    json_decref(j);
    if (!copy) die_last(); /* a valid template always round-trips */
    return copy;
}

/* ---- rendering ---- */

/* Replace the first occurrence of `placeholder` in `text` (as MLC's C++
 * renderer does; Python's replaces all). */
static void add_replaced(struct buf *out, const char *text, const char *placeholder, const char *value)
{
    const char *at = value ? strstr(text, placeholder) : NULL;
    if (!at) {
        buf_adds(out, text);
        return;
    }
    buf_add(out, text, (size_t)(at - text));
    buf_adds(out, value);
    buf_adds(out, at + strlen(placeholder));
}

/* The reasoning an old assistant reply loses: everything up to its last
 * "</think>", and the newlines right after it. */
static const char *strip_reasoning(const char *content)
{
    const char *close = NULL, *p = content;
    while ((p = strstr(p, "</think>"))) close = p++;
    if (!close) return content;
    close += strlen("</think>");
    while (*close == '\n') close++;
    return close;
}

struct render_state {
    const struct conv_template *t;
    const char *function_string;
    struct buf text;
    size_t non_system;
};

static int render_one(struct render_state *s, const char *role, const char *content)
{
    const struct conv_template *t = s->t;
    if (!strcmp(role, "system")) return 0;
    const char *prefix = pair_get(t->roles, t->n_roles, role);
    if (!prefix) return fail("conversation template %s has no role '%s'", t->name ? t->name : "(unnamed)", role);
    if (!content) {
        buf_adds(&s->text, prefix);
        buf_adds(&s->text, t->role_empty_sep);
        return 0;
    }
    s->non_system++;
    const char *sep = t->seps[(strcmp(role, "assistant") ? 0 : 1) % t->n_seps];
    if (t->add_role_after_system_message || s->text.len == 0 || s->non_system != 1) {
        buf_adds(&s->text, prefix);
        buf_adds(&s->text, t->role_content_sep);
    }
    const char *tmpl = pair_get(t->role_templates, t->n_role_templates, role);
    if (!tmpl)
        return fail("conversation template %s has no role_templates entry for '%s'",
                    t->name ? t->name : "(unnamed)", role);
    char *placeholder = xasprintf("{%s_message}", role);
    struct buf part = BUF_INIT;
    buf_init(&part);
    add_replaced(&part, tmpl, placeholder, content);
    free(placeholder);
    add_replaced(&s->text, part.data, "{function_string}", s->function_string);
    buf_free(&part);
    buf_adds(&s->text, sep);
    return 0;
}

int conv_render(const struct conv_template *t, const struct chat_message *msgs, size_t n,
                const char *function_string, struct conv_prompt *out)
{
    memset(out, 0, sizeof *out);
    /* all messages in order: the template's own, then the caller's */
    size_t total = t->n_messages + n;
    struct chat_message *all = xcalloc(total + 1, sizeof *all);
    for (size_t i = 0; i < t->n_messages; i++)
        all[i] = (struct chat_message){t->messages[i].role, t->messages[i].content};
    for (size_t i = 0; i < n; i++) all[t->n_messages + i] = msgs[i];

    /* system messages replace the template's system message */
    struct buf system = BUF_INIT;
    buf_init(&system);
    bool custom_system = false;
    size_t last_user = SIZE_MAX;
    for (size_t i = 0; i < total; i++) {
        if (!all[i].role) {
            free(all);
            buf_free(&system);
            return fail("message %zu has no role", i);
        }
        if (!strcmp(all[i].role, "system") && all[i].content) {
            buf_adds(&system, all[i].content);
            custom_system = true;
        }
        if (!strcmp(all[i].role, "user")) last_user = i;
    }
    struct render_state s = {t, function_string, BUF_INIT, 0};
    buf_init(&s.text);
    add_replaced(&s.text, t->system_template, "{system_message}", custom_system ? system.data : t->system_message);
    buf_free(&system);

    int rc = 0;
    for (size_t i = 0; i < total && !rc; i++) {
        const char *content = all[i].content;
        if (t->strip_reasoning_in_history && content && !strcmp(all[i].role, "assistant") &&
            last_user != SIZE_MAX && i < last_user)
            content = strip_reasoning(content);
        rc = render_one(&s, all[i].role, content);
    }
    if (!rc) rc = render_one(&s, "assistant", NULL);
    free(all);
    if (rc) {
        buf_free(&s.text);
        return -1;
    }
    if (t->has_system_prefix) {
        out->prefix_token_ids = xcalloc(t->n_system_prefix + 1, sizeof *out->prefix_token_ids);
        memcpy(out->prefix_token_ids, t->system_prefix_token_ids, t->n_system_prefix * sizeof(int32_t));
        out->n_prefix_token_ids = t->n_system_prefix;
    }
    out->text = buf_detach(&s.text, &out->text_len);
    return 0;
}

void conv_prompt_free(struct conv_prompt *p)
{
    free(p->prefix_token_ids);
    free(p->text);
    memset(p, 0, sizeof *p);
}

int chat_messages_from_json(const json_t *doc, const char *what, struct chat_message **msgs, size_t *n)
{
    *msgs = NULL;
    *n = 0;
    const json_t *list = json_is_object(doc) ? json_object_get(doc, "messages") : doc;
    if (!json_is_array(list))
        return fail("%s: expected a list of messages or an object with a 'messages' list", what);
    *msgs = xcalloc(json_array_size(list) + 1, sizeof **msgs);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *m = json_array_get(list, i);
        const json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_string(role) || !(json_is_string(content) || json_is_null(content) || !content)) {
            free(*msgs);
            *msgs = NULL;
            return fail("%s: messages[%zu] must be {\"role\": string, \"content\": string or null}", what, i);
        }
        (*msgs)[i].role = json_string_value(role);
        (*msgs)[i].content = json_is_string(content) ? json_string_value(content) : NULL;
        (*n)++;
    }
    return 0;
}
