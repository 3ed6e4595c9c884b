// Specification of the single-round SPNEGO subset (RFC 4178): which first
// tokens carry a Kerberos token we can accept, and the answer we wrap.

#include "auth_proxy/scheme/negotiate/spnego.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using auth_proxy::InitialTokenKind;
using auth_proxy::NegState;
using auth_proxy::read_initial_token;
using auth_proxy::spnego_response;

namespace {

const std::string kKrb5("\x2a\x86\x48\x86\xf7\x12\x01\x02\x02", 9);
const std::string kMsKrb5("\x2a\x86\x48\x82\xf7\x12\x01\x02\x02", 9);
const std::string kNtlm("\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a", 10);
const std::string kSpnego("\x2b\x06\x01\x05\x05\x02", 6);

using test_support::der;

std::string oid(const std::string &content) { return der(0x06, content); }

/** A Kerberos GSS token whose ticket and authenticator hold @p size made-up bytes each. */
std::string kerberos_token(std::size_t size = 40)
{
    return test_support::made_up_kerberos_token("proxy.test", "PROXY.TEST", size);
}

/** @p token with the first occurrence of @p from replaced by @p to. */
std::string replaced(std::string token, const std::string &from, const std::string &to)
{
    token.replace(token.find(from), from.size(), to);
    return token;
}

/** A SPNEGO NegTokenInit offering @p mechs, with @p mech_token and @p extra fields appended. */
std::string neg_token_init(const std::vector<std::string> &mechs, const std::string &mech_token,
                           const std::string &flags = {}, const std::string &mic = {})
{
    std::string types;
    for (const std::string &mech : mechs) {
        types += oid(mech);
    }
    std::string fields = der(0xa0, der(0x30, types));
    if (!flags.empty()) fields += der(0xa1, flags);
    if (!mech_token.empty()) fields += der(0xa2, der(0x04, mech_token));
    if (!mic.empty()) fields += der(0xa3, der(0x04, mic));
    return der(0x60, oid(kSpnego) + der(0xa0, der(0x30, fields)));
}

struct Case {
    const char *rule;
    std::string token;
    InitialTokenKind kind;
    std::string kerberos_token = {}; // for the Kerberos kinds
    std::string mech_oid = {};
};

} // namespace

BOOST_AUTO_TEST_SUITE(spnego)

BOOST_AUTO_TEST_CASE(first_token_table)
{
    using K = InitialTokenKind;
    const std::string krb = kerberos_token();
    const std::string big = kerberos_token(12000); // a ticket with a large PAC: long-form lengths
    const std::string init = neg_token_init({kKrb5}, krb);
    const std::string garbled = der(0x60, oid(kKrb5) + std::string("\x01\x00", 2) + der(0x6e, "junk"));
    const std::vector<Case> cases = {
        {"a raw Kerberos token is given whole to Kerberos", krb, K::kerberos, krb},
        {"SPNEGO with Kerberos first and its token", init, K::spnego_kerberos, krb, kKrb5},
        {"SPNEGO with Windows's Kerberos OID first: that OID is answered",
         neg_token_init({kMsKrb5, kKrb5, kNtlm}, krb),
         K::spnego_kerberos, krb, kMsKrb5},
        {"a 12 KB token (long-form lengths)", neg_token_init({kKrb5}, big), K::spnego_kerberos, big, kKrb5},
        {"reqFlags and a mechListMIC are skipped", neg_token_init({kKrb5}, krb, der(0x03, "\x00\x30"), "mic"),
         K::spnego_kerberos, krb, kKrb5},
        {"NTLM first, Kerberos second: needs a second round", neg_token_init({kNtlm, kKrb5}, "NTLMSSP"),
         K::spnego_other},
        {"Kerberos first but no token: needs a second round", neg_token_init({kKrb5}, ""), K::spnego_other},
        {"NTLM only", neg_token_init({kNtlm}, "NTLMSSP"), K::spnego_no_kerberos},
        {"a bare NTLMSSP negotiate message", std::string("NTLMSSP\0\x01\0\0\0", 12), K::ntlm},
        {"empty", "", K::malformed},
        {"one byte", "\x60", K::malformed},
        {"truncated: the length runs past the end", init.substr(0, init.size() - 1), K::malformed},
        {"a byte after the token", init + "x", K::malformed},
        {"an indefinite length (BER, not DER)",
         std::string("\x60\x80", 2) + oid(kSpnego) + std::string(2, '\0'),
         K::malformed},
        {"a NegTokenResp is never a first token",
         der(0x60, oid(kSpnego) + der(0xa1, der(0x30, der(0xa0, "\x0a\x01\x00")))), K::malformed},
        {"another mechanism's token", der(0x60, oid(kNtlm) + "x"), K::malformed},
        {"no mechanism list", der(0x60, oid(kSpnego) + der(0xa0, der(0x30, der(0xa2, der(0x04, krb))))),
         K::malformed},
        {"an empty mechanism list", neg_token_init({}, krb), K::malformed},
        {"garbage", "this is not a token", K::malformed},
        // The Kerberos token's own shape: MIT would call these internal errors, so they stop here.
        {"Kerberos framing around garbage", garbled, K::malformed},
        {"no token id after the Kerberos OID", der(0x60, oid(kKrb5) + krb.substr(15)), K::malformed},
        {"a Kerberos token id other than AP-REQ (01 00)", replaced(krb, std::string("\x01\x00\x6e", 3),
                                                                    std::string("\x02\x00\x6e", 3)),
         K::malformed},
        {"pvno 4", replaced(krb, std::string("\xa0\x03\x02\x01\x05\xa1", 6),
                            std::string("\xa0\x03\x02\x01\x04\xa1", 6)),
         K::malformed},
        {"an AP-REP where the AP-REQ goes",
         replaced(krb, std::string("\x02\x01\x0e", 3), std::string("\x02\x01\x0f", 3)), K::malformed},
        {"SPNEGO around a garbled Kerberos token",
         neg_token_init({kKrb5}, garbled), K::malformed},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            const auto initial = read_initial_token(c.token);
            BOOST_TEST(static_cast<int>(initial.kind) == static_cast<int>(c.kind));
            BOOST_TEST(std::string(initial.kerberos_token) == c.kerberos_token);
            BOOST_TEST(std::string(initial.mech_oid) == c.mech_oid);
        }
    }
}

BOOST_AUTO_TEST_CASE(response_table)
{
    const std::string ap_rep(156, 'r');
    struct Row {
        const char *rule;
        std::string response;
        std::string expected;
    };
    const std::vector<Row> rows = {
        {"reject alone (MIT's bytes)", spnego_response(NegState::reject, {}, {}),
         std::string("\xa1\x07\x30\x05\xa0\x03\x0a\x01\x02", 9)},
        {"accept-completed with Kerberos and an AP-REP (MIT's layout)",
         spnego_response(NegState::accept_completed, kKrb5, ap_rep),
         der(0xa1, der(0x30, der(0xa0, std::string("\x0a\x01\x00", 3)) + der(0xa1, oid(kKrb5)) +
                                 der(0xa2, der(0x04, ap_rep))))},
        {"reject with a KRB-ERROR", spnego_response(NegState::reject, {}, "err"),
         der(0xa1, der(0x30, der(0xa0, std::string("\x0a\x01\x02", 3)) + der(0xa2, der(0x04, "err"))))},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            BOOST_TEST(row.response == row.expected);
        }
    }
    // The long-form lengths MIT wrote for a 156-byte AP-REP: a1 81 b7 30 81 b4.
    BOOST_TEST(spnego_response(NegState::accept_completed, kKrb5, ap_rep).substr(0, 6) ==
               std::string("\xa1\x81\xb7\x30\x81\xb4", 6));
}

BOOST_AUTO_TEST_SUITE_END()
