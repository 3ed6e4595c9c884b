// Specification of ServiceKeys: a keytab file read once into a MEMORY:
// keytab of the process, which forked children inherit.

#include "auth_proxy/scheme/negotiate/service_keys.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <krb5.h>

#include <algorithm>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using auth_proxy::ServiceKeys;

namespace {

/** A krb5 context for the test's own keytab work. */
struct Krb5 {
    krb5_context context = nullptr;
    Krb5() { BOOST_TEST_REQUIRE(krb5_init_context(&context) == 0); }
    ~Krb5() { krb5_free_context(context); }
    Krb5(const Krb5 &) = delete;
    Krb5 &operator=(const Krb5 &) = delete;
};

/** Adds a random key of @p enctype for @p principal (version @p kvno) to the keytab @p name. */
void add_key(const std::string &name, const std::string &principal, krb5_enctype enctype, krb5_kvno kvno = 1)
{
    Krb5 k;
    krb5_keytab keytab = nullptr;
    BOOST_TEST_REQUIRE(krb5_kt_resolve(k.context, name.c_str(), &keytab) == 0);
    krb5_keytab_entry entry{};
    BOOST_TEST_REQUIRE(krb5_parse_name(k.context, principal.c_str(), &entry.principal) == 0);
    BOOST_TEST_REQUIRE(krb5_c_make_random_key(k.context, enctype, &entry.key) == 0);
    entry.vno = kvno;
    BOOST_TEST_REQUIRE(krb5_kt_add_entry(k.context, keytab, &entry) == 0);
    krb5_free_keytab_entry_contents(k.context, &entry);
    krb5_kt_close(k.context, keytab);
}

/** The principals of every entry of the keytab @p name (any type), sorted: a MEMORY keytab lists
 *  its newest entry first. */
std::vector<std::string> entries(const std::string &name)
{
    Krb5 k;
    std::vector<std::string> out;
    krb5_keytab keytab = nullptr;
    krb5_kt_cursor cursor = nullptr;
    if (krb5_kt_resolve(k.context, name.c_str(), &keytab) != 0) {
        return out;
    }
    if (krb5_kt_start_seq_get(k.context, keytab, &cursor) == 0) {
        krb5_keytab_entry entry;
        while (krb5_kt_next_entry(k.context, keytab, &entry, &cursor) == 0) {
            char *unparsed = nullptr;
            krb5_unparse_name(k.context, entry.principal, &unparsed);
            out.push_back(unparsed);
            krb5_free_unparsed_name(k.context, unparsed);
            krb5_free_keytab_entry_contents(k.context, &entry);
        }
        krb5_kt_end_seq_get(k.context, keytab, &cursor);
    }
    krb5_kt_close(k.context, keytab);
    std::sort(out.begin(), out.end());
    return out;
}

/** A keytab file with two HTTP services, one of them with two keys. */
std::string proxy_keytab(const test_support::TempDir &dir)
{
    const std::string path = dir.file("http.keytab");
    add_key("FILE:" + path, "HTTP/proxy.test@PROXY.TEST", ENCTYPE_AES256_CTS_HMAC_SHA1_96);
    add_key("FILE:" + path, "HTTP/proxy.test@PROXY.TEST", ENCTYPE_AES128_CTS_HMAC_SHA1_96);
    add_key("FILE:" + path, "HTTP/127.0.0.1@PROXY.TEST", ENCTYPE_AES256_CTS_HMAC_SHA1_96);
    return path;
}

} // namespace

BOOST_AUTO_TEST_SUITE(service_keys)

BOOST_AUTO_TEST_CASE(every_key_is_copied_into_a_memory_keytab)
{
    test_support::TempDir dir;
    const std::string path = proxy_keytab(dir);
    std::string error;
    const auto keys = ServiceKeys::load(path, error);
    BOOST_TEST_REQUIRE(static_cast<bool>(keys), error);
    BOOST_TEST(keys->keytab_name().rfind("MEMORY:auth_proxy_" + std::to_string(::getpid()) + "_", 0) == 0u);
    BOOST_TEST(keys->key_count() == 3u);
    BOOST_TEST(keys->principals() ==
                   (std::vector<std::string>{"HTTP/proxy.test@PROXY.TEST", "HTTP/127.0.0.1@PROXY.TEST"}),
               boost::test_tools::per_element());
    BOOST_TEST(keys->summary() == "HTTP/proxy.test@PROXY.TEST, HTTP/127.0.0.1@PROXY.TEST (3 keys)");
    BOOST_TEST(entries(keys->keytab_name()) == entries("FILE:" + path), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_file_is_not_needed_after_loading)
{
    test_support::TempDir dir;
    const std::string path = proxy_keytab(dir);
    std::string error;
    const auto keys = ServiceKeys::load(path, error);
    BOOST_TEST_REQUIRE(static_cast<bool>(keys), error);
    BOOST_TEST_REQUIRE(::unlink(path.c_str()) == 0);
    BOOST_TEST(entries(keys->keytab_name()).size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_forked_child_has_the_keys)
{
    test_support::TempDir dir;
    std::string error;
    const auto keys = ServiceKeys::load(proxy_keytab(dir), error);
    BOOST_TEST_REQUIRE(static_cast<bool>(keys), error);
    const pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    if (child == 0) {
        // The child's exit status is the number of keys it finds under the name.
        ::_exit(static_cast<int>(entries(keys->keytab_name()).size()));
    }
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(child, &status, 0) == child);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 3);
}

BOOST_AUTO_TEST_CASE(each_load_has_its_own_keytab_and_frees_it)
{
    test_support::TempDir dir;
    const std::string path = proxy_keytab(dir);
    std::string error;
    auto first = ServiceKeys::load(path, error);
    const auto second = ServiceKeys::load(path, error);
    BOOST_TEST_REQUIRE((first && second), error);
    BOOST_TEST(first->keytab_name() != second->keytab_name());
    const std::string name = first->keytab_name();
    first.reset();
    BOOST_TEST(entries(name).empty()); // MIT freed it with its last handle
    BOOST_TEST(entries(second->keytab_name()).size() == 3u);
}

BOOST_AUTO_TEST_CASE(unusable_keytabs_are_refused_with_a_reason)
{
    test_support::TempDir dir;
    const std::string empty = dir.file("empty.keytab");
    test_support::write_file(empty, std::string("\x05\x02", 2)); // a keytab's header, no entry
    const std::string garbage = dir.file("garbage.keytab");
    test_support::write_file(garbage, "this is not a keytab\n");
    const std::string zero = dir.file("zero.keytab");
    test_support::write_file(zero, "");
    const std::string host_only = dir.file("host.keytab");
    add_key("FILE:" + host_only, "host/proxy.test@PROXY.TEST", ENCTYPE_AES256_CTS_HMAC_SHA1_96);
    const std::string bare_http = dir.file("bare.keytab");
    add_key("FILE:" + bare_http, "HTTP@PROXY.TEST", ENCTYPE_AES256_CTS_HMAC_SHA1_96);

    struct Row {
        const char *rule;
        std::string path;
        std::vector<std::string> pieces; // each must be in the error
    };
    const std::vector<Row> rows = {
        {"a missing file", dir.file("missing.keytab"), {"missing.keytab", "not found"}},
        {"a keytab without entries", empty, {"empty.keytab", "holds no key"}},
        {"an empty file", zero, {"zero.keytab"}},
        {"a file that is no keytab", garbage, {"garbage.keytab"}},
        {"only a host/ key", host_only, {"host.keytab", "no key of an HTTP/<host> service",
                                         "host/proxy.test@PROXY.TEST"}},
        {"HTTP without a host", bare_http, {"bare.keytab", "no key of an HTTP/<host> service"}},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            std::string error;
            BOOST_TEST(!ServiceKeys::load(row.path, error));
            for (const std::string &piece : row.pieces) {
                BOOST_TEST(error.find(piece) != std::string::npos, "'" << piece << "' not in: " << error);
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
