/* The hub client's parsing: sources as users type them, URLs, and the
 * revision listing, which is hostile input until checked. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "formats/hub.h"
#include "tests/unit/test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct model_source parsed(const char *text, const char *endpoint)
{
    struct model_source s;
    if (source_parse(text, endpoint, &s) != 0) memset(&s, 0, sizeof s);
    return s;
}

TEST(hf_scheme_with_and_without_revision)
{
    struct model_source s = parsed("HF://org/name", NULL);
    CHECK_EQ(s.type, SOURCE_HUB);
    CHECK_STR(s.org, "org");
    CHECK_STR(s.name, "name");
    CHECK(s.revision == NULL);
    CHECK_STR(s.text, "HF://org/name");
    source_free(&s);
    s = parsed("hf://Org-1/Name_2.v3@refs/pr/1", NULL);
    CHECK_STR(s.org, "Org-1");
    CHECK_STR(s.name, "Name_2.v3");
    CHECK_STR(s.revision, "refs/pr/1");
    source_free(&s);
}

TEST(hub_page_urls_with_tree_revisions)
{
    struct model_source s = parsed("https://huggingface.co/org/name/", NULL);
    CHECK_EQ(s.type, SOURCE_HUB);
    CHECK_STR(s.name, "name");
    CHECK(s.revision == NULL);
    source_free(&s);
    s = parsed("https://huggingface.co/org/name/tree/v1.0", NULL);
    CHECK_STR(s.revision, "v1.0");
    source_free(&s);
    s = parsed("https://hf.co/org/name/tree/refs%2Fpr%2F7?x=1#top", NULL);
    CHECK_STR(s.revision, "refs/pr/7");
    source_free(&s);
    s = parsed("http://127.0.0.1:8080/mirror/org/name", "http://127.0.0.1:8080/mirror/");
    CHECK_EQ(s.type, SOURCE_HUB);
    CHECK_STR(s.org, "org");
    source_free(&s);
}

TEST(file_urls_and_paths_are_local)
{
    struct model_source s = parsed("file:///tmp/a%20b", NULL);
    CHECK_EQ(s.type, SOURCE_LOCAL);
    CHECK_STR(s.dir, "/tmp/a b");
    source_free(&s);
    s = parsed("file://localhost/x/y", NULL);
    CHECK_STR(s.dir, "/x/y");
    source_free(&s);
    s = parsed("file:/abs", NULL);
    CHECK_STR(s.dir, "/abs");
    source_free(&s);
    s = parsed("./models/x", NULL);
    CHECK_EQ(s.type, SOURCE_LOCAL);
    CHECK_STR(s.dir, "./models/x");
    source_free(&s);
}

TEST(bad_sources_are_refused_with_a_reason)
{
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"HF://org", "exactly one '/'"},
        {"HF://a/b/c", "exactly one '/'"},
        {"HF://-x/y", "not a valid repository id"},
        {"HF://a/..b", "not a valid repository id"},
        {"HF://a/b.", "not a valid repository id"},
        {"HF://a/b c", "not a valid repository id"},
        {"HF://a/b@", "empty revision"},
        {"HF://a/b@../x", "not a valid revision"},
        {"HF://a/b@x y", "not a valid revision"},
        {"https://huggingface.co/datasets/a/b", "a dataset or space"},
        {"https://huggingface.co/a/b/blob/main/x.json", "not a model repository URL"},
        {"https://huggingface.co/a/b/tree/main/sub", "not a model repository URL"},
        {"https://huggingface.co/a/b/tree/%zz", "malformed"},
        {"https://example.com/a/b", "not a HuggingFace URL"},
        {"file://host/x", "file:///PATH"},
        {"file:relative", "absolute path"},
        {"", "empty model source"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct model_source s;
        int rc = source_parse(cases[i].text, "https://huggingface.co", &s);
        CHECK_EQ(rc, -1);
        if (rc == 0) source_free(&s);
        else CHECK_CONTAINS(last_error(), cases[i].why);
    }
}

TEST(urls_are_quoted_like_python)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    url_quote(&b, "refs/pr/1", false);
    CHECK_STR(b.data, "refs%2Fpr%2F1");
    buf_reset(&b);
    url_quote(&b, "a b/c~d-e_f.g+h", true);
    CHECK_STR(b.data, "a%20b/c~d-e_f.g%2Bh");
    buf_reset(&b);
    url_quote(&b, "\xc3\xa9", false);
    CHECK_STR(b.data, "%C3%A9");
    buf_reset(&b);
    CHECK_EQ(url_unquote(&b, "a%2Fb%20c", 9), 0);
    CHECK_STR(b.data, "a/b c");
    buf_reset(&b);
    CHECK_EQ(url_unquote(&b, "%2", 2), -1);
    CHECK_EQ(url_unquote(&b, "%00", 3), -1);
    CHECK_EQ(url_unquote(&b, "%g0", 3), -1);
    buf_free(&b);

    char *api = hub_api_url("https://huggingface.co/", "org", "name", "refs/pr/1");
    CHECK_STR(api, "https://huggingface.co/api/models/org/name/revision/refs%2Fpr%2F1?blobs=true");
    free(api);
    char *res = hub_resolve_url("http://h:1/m", "org", "name", "abc", "dir/a b.json");
    CHECK_STR(res, "http://h:1/m/org/name/resolve/abc/dir/a%20b.json");
    free(res);
}

static const char *listing_ok =
    "{\"id\": \"org/name\", \"sha\": \"0123456789ABCDEF0123456789abcdef01234567\", \"siblings\": ["
    "{\"rfilename\": \"model.safetensors\", \"blobId\": \"f3bb7a9aaa29ed85d440b26b615379c667cb82c0\","
    " \"size\": 1044992, \"lfs\": {\"sha256\": "
    "\"407A7C581BDD66972383CE9AD24857713FB98786D06EA564A2FE9B34EBE77DFD\", \"size\": 1044992,"
    " \"pointerSize\": 134}},"
    "{\"rfilename\": \"config.json\", \"blobId\": \"6a6af46d90e968ccb2bdba3c4549ad8e30e902d2\", \"size\": 493},"
    "{\"rfilename\": \"sub/dir/x.txt\", \"blobId\": \"6a6af46d90e968ccb2bdba3c4549ad8e30e902d2\", \"size\": 0}"
    "]}";

TEST(a_listing_gives_sorted_files_with_their_digests)
{
    struct hub_listing l;
    CHECK_EQ(hub_listing_parse(listing_ok, strlen(listing_ok), "api", &l), 0);
    CHECK_STR(l.commit, "0123456789abcdef0123456789abcdef01234567");
    CHECK_EQ(l.nfiles, 3);
    CHECK_STR(l.files[0].name, "config.json");
    CHECK(!l.files[0].lfs);
    CHECK_STR(l.files[0].blob_id, "6a6af46d90e968ccb2bdba3c4549ad8e30e902d2");
    CHECK_EQ(l.files[0].size, 493);
    CHECK_STR(l.files[1].name, "model.safetensors");
    CHECK(l.files[1].lfs);
    CHECK_STR(l.files[1].sha256, "407a7c581bdd66972383ce9ad24857713fb98786d06ea564a2fe9b34ebe77dfd");
    CHECK_STR(l.files[2].name, "sub/dir/x.txt");
    CHECK(hub_listing_find(&l, "model.safetensors") == &l.files[1]);
    CHECK(hub_listing_find(&l, "nope") == NULL);
    hub_listing_free(&l);
}

/* A listing with the given siblings (JSON text) and a valid commit. */
static const char *listing_error(const char *siblings)
{
    static char text[4096], err[1024];
    snprintf(text, sizeof text,
             "{\"sha\": \"0123456789abcdef0123456789abcdef01234567\", \"siblings\": [%s]}", siblings);
    struct hub_listing l;
    if (hub_listing_parse(text, strlen(text), "api", &l) == 0) {
        hub_listing_free(&l);
        return "(accepted)";
    }
    snprintf(err, sizeof err, "%s", last_error());
    return err;
}

#define BLOB "\"blobId\": \"6a6af46d90e968ccb2bdba3c4549ad8e30e902d2\""

TEST(hostile_names_are_refused)
{
    const char *names[] = {"../x", "/etc/passwd", "a/../../b", "a//b", "a/./b", "./a", "a/", "",
                           "a\\\\b", "a\\u0001b", "..", "."};
    for (size_t i = 0; i < N(names); i++) {
        char sib[256];
        snprintf(sib, sizeof sib, "{\"rfilename\": \"%s\", " BLOB ", \"size\": 1}", names[i]);
        CHECK_CONTAINS(listing_error(sib), "refusing a file name");
    }
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\\u0000b\", " BLOB ", \"size\": 1}"),
                   "refusing a file name with a NUL byte");
    char longname[400];
    memset(longname, 'x', 300);
    longname[300] = 0;
    char sib[600];
    snprintf(sib, sizeof sib, "{\"rfilename\": \"d/%s\", " BLOB ", \"size\": 1}", longname);
    CHECK_CONTAINS(listing_error(sib), "refusing a file name");
    /* the message shows control characters as '?' */
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\\u0001b\", " BLOB ", \"size\": 1}"), "'a?b'");
}

TEST(clashing_and_malformed_entries_are_refused)
{
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\", " BLOB ", \"size\": 1},"
                                 "{\"rfilename\": \"a\", " BLOB ", \"size\": 1}"),
                   "names 'a' twice");
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\", " BLOB ", \"size\": 1},"
                                 "{\"rfilename\": \"a-b\", " BLOB ", \"size\": 1},"
                                 "{\"rfilename\": \"a/b\", " BLOB ", \"size\": 1}"),
                   "'a' is both a file and a directory");
    CHECK_STR(listing_error("{\"rfilename\": \"a\", " BLOB ", \"size\": 1},"
                            "{\"rfilename\": \"ab/c\", " BLOB ", \"size\": 1}"),
              "(accepted)");
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\", " BLOB "}"), "no integer 'size'");
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\", " BLOB ", \"size\": \"1\"}"), "no integer 'size'");
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\", " BLOB ", \"size\": -1}"), "size out of range");
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\", " BLOB ", \"size\": 1152921504606846976}"),
                   "size out of range");
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\", \"blobId\": \"abc\", \"size\": 1}"),
                   "'blobId' must be 40 hexadecimal digits");
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\", \"size\": 2, \"lfs\": {\"sha256\": "
                                 "\"407a7c581bdd66972383ce9ad24857713fb98786d06ea564a2fe9b34ebe77dfd\","
                                 " \"size\": 3}}"),
                   "'lfs.size' differs from 'size'");
    CHECK_CONTAINS(listing_error("{\"rfilename\": \"a\", \"size\": 2, \"lfs\": {\"sha256\": \"zz\"}}"),
                   "'lfs.sha256' must be 64 hexadecimal digits");
    CHECK_CONTAINS(listing_error("\"a\""), "siblings[0]: not a JSON object");

    struct hub_listing l;
    const char *nosha = "{\"sha\": \"main\", \"siblings\": []}";
    CHECK_EQ(hub_listing_parse(nosha, strlen(nosha), "api", &l), -1);
    CHECK_CONTAINS(last_error(), "api: field 'sha' must be a 40-digit commit id");
    const char *nosib = "{\"sha\": \"0123456789abcdef0123456789abcdef01234567\"}";
    CHECK_EQ(hub_listing_parse(nosib, strlen(nosib), "api", &l), -1);
    CHECK_CONTAINS(last_error(), "field 'siblings' must be an array");
    CHECK_EQ(hub_listing_parse("<html>", 6, "api", &l), -1);
    CHECK_CONTAINS(last_error(), "api:1:");
}

TEST(repository_ids_and_revisions_that_could_escape_are_invalid)
{
    CHECK(hub_valid_repo_part("TinyLlama-1.1B-Chat-v1.0"));
    CHECK(!hub_valid_repo_part(".."));
    CHECK(!hub_valid_repo_part(".hidden"));
    CHECK(!hub_valid_repo_part("a/b"));
    CHECK(!hub_valid_repo_part(""));
    CHECK(hub_valid_revision("refs/pr/1"));
    CHECK(hub_valid_revision("0123456789abcdef0123456789abcdef01234567"));
    CHECK(!hub_valid_revision("../../x"));
    CHECK(!hub_valid_revision("/abs"));
    CHECK(!hub_valid_revision("a\\b"));
    CHECK(!hub_valid_revision("a\nb"));
}

TEST_MAIN()
