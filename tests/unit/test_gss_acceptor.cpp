// Specification of GssAcceptor's set-up and of the refusals that need no
// KDC: tokens without a Kerberos ticket, and tickets made up here that no
// KDC issued. Accepting real tickets is test_negotiate_core.py's part.

#include "auth_proxy/scheme/negotiate/gss_acceptor.hpp"
#include "auth_proxy/scheme/negotiate/service_keys.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <krb5.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

using auth_proxy::AcceptorOptions;
using auth_proxy::AcceptStatus;
using auth_proxy::GssAcceptor;
using auth_proxy::ServiceKeys;

namespace {

/** KRB5_CONFIG pointed at a krb5.conf of the test's, for the test's duration. */
struct Krb5Config {
    std::string saved;
    bool had = false;
    Krb5Config(const test_support::TempDir &dir, const std::string &text)
    {
        const char *old = std::getenv("KRB5_CONFIG");
        had = old != nullptr;
        saved = had ? old : "";
        test_support::write_file(dir.file("krb5.conf"), text);
        ::setenv("KRB5_CONFIG", dir.file("krb5.conf").c_str(), 1);
    }
    ~Krb5Config()
    {
        if (had) {
            ::setenv("KRB5_CONFIG", saved.c_str(), 1);
        }
        else {
            ::unsetenv("KRB5_CONFIG");
        }
    }
};

const char *kConf = "[libdefaults]\n    default_realm = PROXY.TEST\n    dns_lookup_realm = false\n";

/** Service keys for HTTP/proxy.test, made up: no KDC knows them. */
std::unique_ptr<ServiceKeys> made_up_keys(const test_support::TempDir &dir)
{
    krb5_context context = nullptr;
    krb5_keytab keytab = nullptr;
    krb5_keytab_entry entry{};
    BOOST_TEST_REQUIRE(krb5_init_context(&context) == 0);
    BOOST_TEST_REQUIRE(krb5_kt_resolve(context, ("FILE:" + dir.file("http.keytab")).c_str(), &keytab) == 0);
    BOOST_TEST_REQUIRE(krb5_parse_name(context, "HTTP/proxy.test@PROXY.TEST", &entry.principal) == 0);
    BOOST_TEST_REQUIRE(krb5_c_make_random_key(context, ENCTYPE_AES256_CTS_HMAC_SHA1_96, &entry.key) == 0);
    entry.vno = 1;
    BOOST_TEST_REQUIRE(krb5_kt_add_entry(context, keytab, &entry) == 0);
    krb5_free_keytab_entry_contents(context, &entry);
    krb5_kt_close(context, keytab);
    krb5_free_context(context);
    std::string error;
    auto keys = ServiceKeys::load(dir.file("http.keytab"), error);
    BOOST_TEST_REQUIRE(static_cast<bool>(keys), error);
    return keys;
}

AcceptorOptions options_for(const ServiceKeys &keys, std::string rcache = "none:")
{
    AcceptorOptions options;
    options.keytab = keys.keytab_name();
    options.rcache = std::move(rcache);
    return options;
}

using test_support::der;

} // namespace

BOOST_AUTO_TEST_SUITE(gss_acceptor)

BOOST_AUTO_TEST_CASE(every_status_has_its_own_name_and_description)
{
    using S = AcceptStatus;
    const S all[] = {S::accepted,      S::continue_needed, S::replay,        S::expired, S::wrong_service,
                     S::bad_token,     S::foreign_realm,   S::no_local_name, S::error};
    std::set<std::string> names, descriptions;
    for (const S status : all) {
        names.insert(auth_proxy::status_name(status));
        descriptions.insert(auth_proxy::describe(status));
    }
    BOOST_TEST(names.size() == std::size(all));
    BOOST_TEST(descriptions.size() == std::size(all));
}

BOOST_AUTO_TEST_CASE(set_up_failures_are_reported_not_thrown)
{
    test_support::TempDir dir;
    const Krb5Config conf(dir, kConf);
    const auto keys = made_up_keys(dir);
    struct Row {
        const char *rule;
        AcceptorOptions options;
        std::string piece; // in the error
    };
    AcceptorOptions empty_keytab = options_for(*keys);
    empty_keytab.keytab = "MEMORY:auth_proxy_unit_no_such_keys";
    const std::vector<Row> rows = {
        {"a keytab without keys", empty_keytab, "MEMORY:auth_proxy_unit_no_such_keys"},
        {"a replay cache in a missing directory", options_for(*keys, "file2:" + dir.file("missing/rc")),
         "replay cache " + dir.file("missing/rc") + ": No such file or directory"},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            std::string error;
            BOOST_TEST(!GssAcceptor::create(row.options, error));
            BOOST_TEST(error.find(row.piece) != std::string::npos, error);
        }
    }
}

BOOST_AUTO_TEST_CASE(local_names_need_a_default_realm)
{
    test_support::TempDir dir;
    const auto keys = made_up_keys(dir);
    const Krb5Config conf(dir, "[libdefaults]\n    dns_lookup_realm = false\n    dns_lookup_kdc = false\n");
    std::string error;
    BOOST_TEST(!GssAcceptor::create(options_for(*keys), error));
    BOOST_TEST(error.find("AuthProxyLocalName On needs a default realm") != std::string::npos, error);
    AcceptorOptions off = options_for(*keys);
    off.local_name = false;
    BOOST_TEST(static_cast<bool>(GssAcceptor::create(off, error)), error);
}

/** An acceptor for made-up keys of HTTP/proxy.test, realm PROXY.TEST, replay cache off. */
struct MadeUpAcceptor {
    test_support::TempDir dir;
    Krb5Config conf{dir, kConf};
    std::unique_ptr<ServiceKeys> keys = made_up_keys(dir);
    std::unique_ptr<GssAcceptor> acceptor;
    MadeUpAcceptor()
    {
        std::string error;
        acceptor = GssAcceptor::create(options_for(*keys), error);
        BOOST_TEST_REQUIRE(static_cast<bool>(acceptor), error);
    }
};

BOOST_FIXTURE_TEST_CASE(the_default_realm_comes_from_krb5_conf, MadeUpAcceptor)
{
    BOOST_TEST(acceptor->default_realm() == "PROXY.TEST");
}

BOOST_FIXTURE_TEST_CASE(tokens_without_a_valid_ticket_are_refused, MadeUpAcceptor)
{

    const std::string krb5_oid = der(0x06, "\x2a\x86\x48\x86\xf7\x12\x01\x02\x02");
    const std::string ntlm_oid = der(0x06, "\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a");
    const std::string spnego_oid = der(0x06, "\x2b\x06\x01\x05\x05\x02");
    const std::string ntlm_first =
        der(0x60, spnego_oid + der(0xa0, der(0x30, der(0xa0, der(0x30, ntlm_oid + krb5_oid)))));
    const std::string garbled = der(0x60, krb5_oid + std::string("\x01\x00", 2) + der(0x6e, "garbage"));
    struct Row {
        const char *rule;
        std::string token;
        AcceptStatus status;
        std::string piece; // in the detail
    };
    const std::vector<Row> rows = {
        {"garbage", "not a token at all", AcceptStatus::bad_token, "neither a SPNEGO nor a Kerberos token"},
        {"NTLM", std::string("NTLMSSP\0\x01\0\0\0", 12), AcceptStatus::bad_token, "NTLM"},
        {"SPNEGO preferring NTLM", ntlm_first, AcceptStatus::continue_needed, "single round"},
        {"Kerberos framing around garbage", garbled, AcceptStatus::bad_token,
         "neither a SPNEGO nor a Kerberos token"},
        // Well-formed tickets with made-up ciphertext: MIT's own checks decide, with Kerberos's codes.
        {"a ticket for our service that our key does not decrypt",
         test_support::made_up_kerberos_token("proxy.test"), AcceptStatus::bad_token,
         "cannot decrypt ticket"},
        {"a ticket for a service not in the keytab", test_support::made_up_kerberos_token("other.test"),
         AcceptStatus::wrong_service, "HTTP/other.test@PROXY.TEST"},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            const auto result = acceptor->accept(row.token);
            BOOST_TEST(auth_proxy::status_name(result.status) == auth_proxy::status_name(row.status));
            BOOST_TEST(result.detail.find(row.piece) != std::string::npos, result.detail);
            BOOST_TEST(result.principal.empty());
            BOOST_TEST(result.user.empty());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
