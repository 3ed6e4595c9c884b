// Specification of KerberosStore where no KDC is needed to answer: the
// answers that come before the AS exchange, and a KDC that cannot be
// reached. The exchange itself, the verification with the keytab and a
// spoofed KDC are in tests/integration/test_kerberos_provider.py, against
// a real MIT KDC.

#include "auth_proxy/store/kerberos_store.hpp"

#include "auth_proxy/scheme/negotiate/service_keys.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <krb5.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using auth_proxy::AnswerTime;
using auth_proxy::CheckAnswer;
using auth_proxy::KerberosProblem;
using auth_proxy::KerberosReport;
using auth_proxy::KerberosStore;
using auth_proxy::ServiceKeys;

namespace {

/** A loopback TCP port nothing listens on: connections to it are refused at once. */
int closed_port()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) == 0);
    BOOST_TEST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length) == 0);
    ::close(fd);
    return ntohs(address.sin_port);
}

/** KRB5_CONFIG pointing at a realm whose only KDC does not answer, for the test's length. */
struct DeadRealm {
    test_support::TempDir dir;
    std::optional<std::string> previous;
    DeadRealm()
    {
        if (const char *old = std::getenv("KRB5_CONFIG")) {
            previous = old;
        }
        const std::string conf = dir.file("krb5.conf");
        test_support::write_file(conf, "[libdefaults]\n default_realm = DEAD.TEST\n dns_lookup_kdc = false\n"
                                       " udp_preference_limit = 1\n[realms]\n DEAD.TEST = {\n  kdc = 127.0.0.1:" +
                                           std::to_string(closed_port()) + "\n }\n");
        ::setenv("KRB5_CONFIG", conf.c_str(), 1);
    }
    ~DeadRealm()
    {
        if (previous) {
            ::setenv("KRB5_CONFIG", previous->c_str(), 1);
        }
        else {
            ::unsetenv("KRB5_CONFIG");
        }
    }
    DeadRealm(const DeadRealm &) = delete;
    DeadRealm &operator=(const DeadRealm &) = delete;
};

/** A keytab with one random HTTP/ key, loaded as the module loads AuthProxyKeytab. */
std::unique_ptr<ServiceKeys> proxy_keys(const test_support::TempDir &dir)
{
    const std::string path = dir.file("http.keytab");
    krb5_context context = nullptr;
    BOOST_TEST_REQUIRE(krb5_init_context(&context) == 0);
    krb5_keytab keytab = nullptr;
    BOOST_TEST_REQUIRE(krb5_kt_resolve(context, ("FILE:" + path).c_str(), &keytab) == 0);
    krb5_keytab_entry entry{};
    BOOST_TEST_REQUIRE(krb5_parse_name(context, "HTTP/proxy.test@DEAD.TEST", &entry.principal) == 0);
    BOOST_TEST_REQUIRE(krb5_c_make_random_key(context, ENCTYPE_AES256_CTS_HMAC_SHA1_96, &entry.key) == 0);
    entry.vno = 1;
    BOOST_TEST_REQUIRE(krb5_kt_add_entry(context, keytab, &entry) == 0);
    krb5_free_keytab_entry_contents(context, &entry);
    krb5_kt_close(context, keytab);
    krb5_free_context(context);
    std::string error;
    auto keys = ServiceKeys::load(path, error);
    BOOST_TEST_REQUIRE(static_cast<bool>(keys), error);
    return keys;
}

/** What a store reported. */
struct Reports {
    std::vector<KerberosProblem> problems;
    std::vector<std::string> details;

    KerberosReport sink()
    {
        return KerberosReport{[](void *ctx, KerberosProblem problem, std::string_view, const std::string &detail) {
                                  auto *self = static_cast<Reports *>(ctx);
                                  self->problems.push_back(problem);
                                  self->details.push_back(detail);
                              },
                              this};
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(kerberos_store)

BOOST_AUTO_TEST_CASE(it_answers_under_its_name_with_the_runtimes_answer_times)
{
    AnswerTime times;
    KerberosStore store("kerberos", nullptr, &times, KerberosReport{});
    BOOST_TEST(store.name() == "kerberos");
    BOOST_TEST(store.answer_time() == &times);
}

BOOST_AUTO_TEST_CASE(without_service_keys_nothing_is_admitted)
{
    Reports reports;
    KerberosStore store("kerberos", nullptr, nullptr, reports.sink());
    BOOST_TEST(static_cast<int>(store.check("alice", "secret")) == static_cast<int>(CheckAnswer::error));
    BOOST_TEST_REQUIRE(reports.problems.size() == 1u);
    BOOST_TEST(static_cast<int>(reports.problems[0]) == static_cast<int>(KerberosProblem::not_verified));
}

BOOST_AUTO_TEST_CASE(answers_known_before_any_exchange)
{
    DeadRealm realm; // were the KDC asked, the answer would be an error
    test_support::TempDir dir;
    const auto keys = proxy_keys(dir);
    struct Case {
        const char *user;
        const char *password;
        CheckAnswer expected;
    };
    const Case cases[] = {
        {"alice", "", CheckAnswer::denied},                  // no principal has an empty password
        {"alice@R@X", "secret", CheckAnswer::user_not_found}, // not a principal name
        {"alice\\", "secret", CheckAnswer::user_not_found},
        {"alice@", "secret", CheckAnswer::user_not_found},    // an empty realm
        {"@DEAD.TEST", "secret", CheckAnswer::user_not_found}, // an empty name
        {"alice@NO-KDC.TEST", "secret", CheckAnswer::user_not_found}, // a realm krb5.conf has no KDC for
    };
    for (const Case &c : cases) {
        Reports reports;
        KerberosStore store("kerberos", keys.get(), nullptr, reports.sink());
        BOOST_TEST(static_cast<int>(store.check(c.user, c.password)) == static_cast<int>(c.expected), c.user);
        BOOST_TEST(reports.problems.empty(), c.user);
    }
}

BOOST_AUTO_TEST_CASE(a_kdc_that_does_not_answer_is_an_error_never_a_refusal)
{
    DeadRealm realm;
    test_support::TempDir dir;
    const auto keys = proxy_keys(dir);
    for (const char *user : {"alice", "alice@DEAD.TEST"}) {
        Reports reports;
        KerberosStore store("kerberos", keys.get(), nullptr, reports.sink());
        BOOST_TEST(static_cast<int>(store.check(user, "secret")) == static_cast<int>(CheckAnswer::error), user);
        BOOST_TEST_REQUIRE(reports.problems.size() == 1u, user);
        BOOST_TEST(static_cast<int>(reports.problems[0]) == static_cast<int>(KerberosProblem::kdc_failed), user);
        BOOST_TEST(reports.details[0].find("Cannot contact any KDC") != std::string::npos, reports.details[0]);
    }
}

BOOST_AUTO_TEST_SUITE_END()
