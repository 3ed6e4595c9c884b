// Specification of the scheme seam: which AuthType names which scheme, which
// scheme a header names, what a scope offers, and that the Authenticator
// hands a request to the scheme its header names and to no other. A toy
// scheme stands in for a second one, to show what a new scheme plugs into.

#include "auth_proxy/authenticator.hpp"
#include "auth_proxy/scheme/registry.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using namespace auth_proxy;

BOOST_AUTO_TEST_SUITE(schemes)

namespace {

const Scheme &basic()
{
    return *scheme_for_auth_type("ProxyBasic");
}

/** A scheme that admits "Token letmein" as "toy-user", and checks no passwords. */
class ToyScheme final : public Scheme {
public:
    std::string_view auth_type() const noexcept override { return "ProxyToy"; }
    std::string_view token() const noexcept override { return "Token"; }
    bool checks_passwords() const noexcept override { return false; }
    std::string challenge(std::string_view realm) const override { return "Token realm=\"" + std::string(realm) + "\""; }
    Verdict authenticate(const Services &, const AuthRequest &request, CredentialBuffer &) const override
    {
        ++calls;
        Verdict v;
        const bool right = std::string_view(request.header).substr(scheme_token(request.header).size()) == " letmein";
        v.outcome = right ? Outcome::admitted : Outcome::refused;
        v.reason = right ? Reason::none : Reason::wrong_password;
        v.user = right ? "toy-user" : "";
        return v;
    }
    mutable int calls = 0;
};

} // namespace

BOOST_AUTO_TEST_CASE(an_auth_type_names_a_scheme_of_ours_or_none)
{
    struct Case {
        const char *auth_type;
        bool ours;
        bool near_miss;
    };
    const std::vector<Case> cases = {
        {"ProxyBasic", true, false},
        {"ProxyNegotiate", true, false},
        {"proxynegotiate", true, false},
        {"ProxyNegociate", false, true},
        {"Negotiate", false, false}, // mod_auth_gssapi's is GSSAPI; a bare scheme name is nobody's of ours
        {"proxybasic", true, false}, // httpd compares AuthType without case
        {"PROXYBASIC", true, false},
        {"Basic", false, false},     // mod_auth_basic's
        {"ProxyBasci", false, true}, // a typo, which configtest names
        {"ProxyBasicX", false, true},
        {"Digest", false, false},
        {"", false, false},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.auth_type)
        {
            const Scheme *s = scheme_for_auth_type(c.auth_type);
            BOOST_TEST((s != nullptr) == c.ours);
            if (s != nullptr) {
                BOOST_TEST(same_token(s->auth_type(), c.auth_type));
            }
            BOOST_TEST((scheme_nearly_named(c.auth_type) != nullptr) == c.near_miss);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_header_names_its_scheme_by_its_first_word)
{
    static const ToyScheme toy;
    SchemeSet both(toy);
    both.add(basic());
    struct Case {
        const char *header;
        const Scheme *named;
    };
    const std::vector<Case> cases = {
        {"Basic YTpi", &basic()},
        {"basic YTpi", &basic()},
        {"  Basic YTpi", &basic()},
        {"\tBASIC\tYTpi", &basic()},
        {"Basic", &basic()}, // the scheme's own answer: no token
        {"Token letmein", &toy},
        {"Basicx YTpi", nullptr},
        {"Bearer abc", nullptr},
        {"", nullptr},
        {" ", nullptr},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT('"' << c.header << '"')
        {
            BOOST_TEST(both.named_by(c.header) == c.named);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_scope_offers_its_scheme_first_and_basic_beside_it_when_it_has_password_stores)
{
    static const ToyScheme toy;
    const SchemeSet alone = offered_by(toy, false);
    BOOST_TEST(alone.size() == 1u);
    BOOST_TEST(&alone.first() == &toy);

    const SchemeSet with_stores = offered_by(toy, true);
    BOOST_TEST(with_stores.size() == 2u);
    BOOST_TEST(*with_stores.begin() == &toy);
    BOOST_TEST(*(with_stores.begin() + 1) == &basic());

    // Basic does not offer itself twice.
    BOOST_TEST(offered_by(basic(), true).size() == 1u);
    BOOST_TEST(offered_by(basic(), false).size() == 1u);

    SchemeSet set;
    BOOST_TEST(set.empty());
    for (std::size_t i = 0; i < SchemeSet::kMax + 2; ++i) {
        set.add(i % 2 == 0 ? static_cast<const Scheme &>(toy) : basic());
    }
    BOOST_TEST(set.size() == 2u);
}

BOOST_AUTO_TEST_CASE(the_authenticator_hands_a_request_to_the_scheme_its_header_names_and_no_other)
{
    static const ToyScheme toy;
    SchemeSet offered(toy);
    offered.add(basic());
    const Authenticator auth(nullptr, nullptr);
    struct Case {
        const char *header;
        Outcome outcome;
        Reason reason;
        const Scheme *scheme; ///< the verdict's
        int toy_calls;
    };
    const std::string alice = "Basic " + test_support::base64("alice:alice-pw");
    const std::vector<Case> cases = {
        {nullptr, Outcome::challenged, Reason::no_credentials, nullptr, 0},
        {"Token letmein", Outcome::admitted, Reason::none, &toy, 1},
        {"token letmein", Outcome::admitted, Reason::none, &toy, 1},
        {"Token guess", Outcome::refused, Reason::wrong_password, &toy, 1},
        // Basic is offered, but the scope has no stores: nobody is known.
        {alice.c_str(), Outcome::refused, Reason::unknown_user, &basic(), 0},
        {"Bearer abc", Outcome::refused, Reason::malformed, nullptr, 0},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT((c.header != nullptr ? c.header : "(none)"))
        {
            toy.calls = 0;
            AuthRequest request;
            request.header = c.header;
            CredentialBuffer buffer;
            const Verdict v = auth.authenticate(offered, request, buffer);
            BOOST_TEST((v.outcome == c.outcome));
            BOOST_TEST(describe(v.reason) == describe(c.reason));
            BOOST_TEST(v.scheme == c.scheme);
            BOOST_TEST(toy.calls == c.toy_calls);
        }
    }
    // Offered alone, the toy scheme does not answer Basic credentials.
    AuthRequest request;
    request.header = alice.c_str();
    CredentialBuffer buffer;
    const Verdict v = auth.authenticate(SchemeSet(toy), request, buffer);
    BOOST_TEST((v.outcome == Outcome::refused));
    BOOST_TEST((v.parse_error == CredentialError::wrong_scheme));
}

BOOST_AUTO_TEST_CASE(a_negotiate_scope_offers_negotiate_then_basic_when_it_has_password_stores)
{
    const Scheme &negotiate = *scheme_for_auth_type("ProxyNegotiate");
    BOOST_TEST(negotiate.token() == "Negotiate");
    BOOST_TEST(!negotiate.checks_passwords());
    BOOST_TEST(negotiate.uses_service_keys());
    BOOST_TEST(negotiate.binds_connection());
    BOOST_TEST(!basic().uses_service_keys());
    BOOST_TEST(!basic().binds_connection());
    BOOST_TEST(negotiate.challenge("ignored") == "Negotiate"); // RFC 4559: no realm

    const SchemeSet alone = offered_by(negotiate, false);
    BOOST_TEST(alone.size() == 1u);
    const SchemeSet both = offered_by(negotiate, true);
    BOOST_TEST(both.size() == 2u);
    BOOST_TEST(*both.begin() == &negotiate); // Negotiate's challenge first
    BOOST_TEST(*(both.begin() + 1) == &basic());
}

BOOST_AUTO_TEST_CASE(negotiate_refuses_what_it_cannot_read_and_fails_closed_without_keys)
{
    const Scheme &negotiate = *scheme_for_auth_type("ProxyNegotiate");
    const Authenticator auth(nullptr, nullptr);
    struct Case {
        const char *header;
        Outcome outcome;
        Reason reason;
    };
    const std::vector<Case> cases = {
        {"Negotiate", Outcome::refused, Reason::malformed},
        {"Negotiate !!!", Outcome::refused, Reason::malformed},
        {"Negotiate YWJj=", Outcome::refused, Reason::malformed}, // bad padding
        // Well-formed, but the scope has no acceptor: 500, never admitted.
        {"Negotiate YWJj", Outcome::failed, Reason::acceptor_error},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.header)
        {
            AuthRequest request;
            request.header = c.header;
            CredentialBuffer buffer;
            const Verdict v = auth.authenticate(SchemeSet(negotiate), request, buffer);
            BOOST_TEST((v.outcome == c.outcome));
            BOOST_TEST(describe(v.reason) == describe(c.reason));
            BOOST_TEST(v.scheme == &negotiate);
            BOOST_TEST(v.user.empty());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
