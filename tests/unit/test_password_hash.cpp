// Specification of stored-hash recognition and verification.
//
// The vectors are real output of the tools operators use, generated once
// and pasted here (the password each one encodes is next to it):
//   htpasswd -nbB -C 4 alice 'pa:ss'        (bcrypt, $2y$)
//   htpasswd -nbB -C 4 bob 'Secret123'
//   htpasswd -nbB -C 4 zoe 'pässwörd'       (UTF-8 password)
//   htpasswd -nbm carol 'c4rol!'            ($apr1$)
//   htpasswd -nbs dave 'dave-pw'            ({SHA})
//   htpasswd -nbd erin 'erinpw'             (crypt DES)
//   python3: crypt.crypt('olivia', 'ab')    (crypt DES)
//   htpasswd -nb2 frank 'frank pw'          ($5$)
//   htpasswd -nb5 grace 'gr@ce'             ($6$)
//   htpasswd -nb2 -r 1000 heidi 'heidi'     ($5$rounds=1000$)
//   htpasswd -nb5 -r 1000 ivan 'ivan'       ($6$rounds=1000$)
//   openssl passwd -1 -salt saltsalt 'judy-pw'
//   openssl passwd -5 -salt saltsaltsalt 'kim-pw'
//   openssl passwd -6 -salt saltsaltsalt 'liam-pw'
//   python3: crypt.crypt('mallory', '$5$rounds=1000$abcdefgh')
//   python3: crypt.crypt('niaj', '$6$rounds=2000$abcdefgh')
// $2a$ and $2b$ vectors are $2y$ vectors with the letter changed: $2b$ is the
// same algorithm as $2y$, and $2a$ differs only for some 8-bit passwords.

#include "auth_proxy/verify/password_hash.hpp"

#include <boost/test/unit_test.hpp>

#include <cctype>
#include <cstring>
#include <iterator>
#include <set>
#include <string>
#include <utility>
#include <vector>

using auth_proxy::classify_hash;
using auth_proxy::format_name;
using auth_proxy::HashFormat;
using auth_proxy::verify_password;

BOOST_AUTO_TEST_SUITE(password_hash)

namespace {

struct Vector {
    const char *tool;
    std::string stored;
    std::string password;
    HashFormat format;
};

const std::vector<Vector> &vectors()
{
    static const std::vector<Vector> v = {
        {"htpasswd -B, password with ':'", "$2y$04$fxEw42QHmPVcGLgMERxWeuZScXnG.1Xomj7P7a2xzwgBL3DJ0SL9a",
         "pa:ss", HashFormat::bcrypt},
        {"htpasswd -B", "$2y$04$orpxPdb/ZYHhJrO0ZwXzz.jC/.F1RaNjr9xaoPRoRmYJIhoD2gQti", "Secret123",
         HashFormat::bcrypt},
        {"htpasswd -B, UTF-8 password", "$2y$04$P8zXPMo7ClYfzoXpH8vB9ecCLkubdJsNtN.YUaehRGtkYw/rVgCUO",
         "p\xc3\xa4ssw\xc3\xb6rd", HashFormat::bcrypt},
        {"$2a$ (OpenBSD, older PHP)", "$2a$04$fxEw42QHmPVcGLgMERxWeuZScXnG.1Xomj7P7a2xzwgBL3DJ0SL9a", "pa:ss",
         HashFormat::bcrypt},
        {"$2a$", "$2a$04$orpxPdb/ZYHhJrO0ZwXzz.jC/.F1RaNjr9xaoPRoRmYJIhoD2gQti", "Secret123",
         HashFormat::bcrypt},
        {"$2b$ (OpenBSD, Python bcrypt)", "$2b$04$fxEw42QHmPVcGLgMERxWeuZScXnG.1Xomj7P7a2xzwgBL3DJ0SL9a",
         "pa:ss", HashFormat::bcrypt},
        {"$2b$, UTF-8 password", "$2b$04$P8zXPMo7ClYfzoXpH8vB9ecCLkubdJsNtN.YUaehRGtkYw/rVgCUO",
         "p\xc3\xa4ssw\xc3\xb6rd", HashFormat::bcrypt},
        {"htpasswd -m", "$apr1$jFArcZ5m$wqCp4W1cQBmciHu1wOfG61", "c4rol!", HashFormat::apr1_md5},
        {"htpasswd -s", "{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=", "dave-pw", HashFormat::sha1},
        {"htpasswd -d", "MsrIo421jkpjY", "erinpw", HashFormat::crypt_des},
        {"crypt(3) DES", "abdicPEF09UIk", "olivia", HashFormat::crypt_des},
        {"openssl passwd -1", "$1$saltsalt$.bVJE.Rwlu1YgYAAl49aT1", "judy-pw", HashFormat::md5_crypt},
        {"htpasswd -2", "$5$ZdV0JOA/kbt2ethP$6c.zgKdM94nNSGZUffrARZwPKY6oLbiGMAjA4bItGZ3", "frank pw",
         HashFormat::sha256_crypt},
        {"htpasswd -2 -r 1000", "$5$rounds=1000$1bv/1.3XtCqhf5Uu$BOpD/KXjWlEpYADO7cTSmhkVCRkESMzb/pWaHX4vatC",
         "heidi", HashFormat::sha256_crypt},
        {"openssl passwd -5", "$5$saltsaltsalt$shfrMMP9sc2Ytlgo/dMOkBBIQbJem82KrTMqopLMDl0", "kim-pw",
         HashFormat::sha256_crypt},
        {"crypt(3) $5$rounds=1000$", "$5$rounds=1000$abcdefgh$xgUIBn1lcWBYmgh55Gt7i9ZCA1nsK9E3LjH2Vb2J/G1",
         "mallory", HashFormat::sha256_crypt},
        {"htpasswd -5",
         "$6$4XBgRHbnhIV2K/Lm$ojRqcO3Z46DuOTpCb7zEfvQUHTAYJumbRvoZFkF6r3rMHS1oolXI9oFqASYYIpoaxGmdpdQ/"
         "ctHtT34GdBIA1.",
         "gr@ce", HashFormat::sha512_crypt},
        {"htpasswd -5 -r 1000",
         "$6$rounds=1000$3ogzh2MzuVUleLaH$FzWVvRzRu4VOWKyiiOezdZodoy.JEdm2O0qrzk/Ixcy00Ako4O7b0Wro/"
         "p6DDPWJzzL3ahM3KJq9k/A04mW5q1",
         "ivan", HashFormat::sha512_crypt},
        {"openssl passwd -6",
         "$6$saltsaltsalt$3IHxVGUzR.2swdlor5EaK/6jIUfi7rPo40fgLvZ0xWcUFDs8tHB/0aEbevqupaIIIk/"
         "AIaMi3u8CDB3FH4sGn.",
         "liam-pw", HashFormat::sha512_crypt},
        {"crypt(3) $6$rounds=2000$",
         "$6$rounds=2000$abcdefgh$iRrUkH6S6aIOWmh9v8G/NOMb/3pQQj/"
         "MxAyTce8LWPbcM7cG10iOBmTECUx2sUeQbIwrS6laxJKPgQNnYKtsr0",
         "niaj", HashFormat::sha512_crypt},
    };
    return v;
}

/** Flips the case of every ASCII letter. */
std::string swap_case(std::string s)
{
    for (char &c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (std::islower(u)) {
            c = static_cast<char>(std::toupper(u));
        }
        else if (std::isupper(u)) {
            c = static_cast<char>(std::tolower(u));
        }
    }
    return s;
}

struct ClassifyCase {
    const char *rule;
    std::string stored;
    HashFormat format;
};

} // namespace

BOOST_AUTO_TEST_CASE(every_tool_vector_is_recognised)
{
    for (const Vector &v : vectors()) {
        BOOST_TEST_CONTEXT(v.tool << ": " << v.stored)
        {
            BOOST_TEST(std::string(format_name(classify_hash(v.stored))) == format_name(v.format));
        }
    }
}

BOOST_AUTO_TEST_CASE(classify_table)
{
    const std::vector<ClassifyCase> cases = {
        // Not hashes: never compared, not even as plaintext.
        {"empty", "", HashFormat::unknown},
        {"plaintext 'secret'", "secret", HashFormat::unknown},
        {"plaintext 'password123'", "password123", HashFormat::unknown},
        {"plaintext with punctuation, 13 long", "pass word!123", HashFormat::unknown},
        {"12 crypt characters", "MsrIo421jkpj", HashFormat::unknown},
        {"14 crypt characters", "MsrIo421jkpjYY", HashFormat::unknown},
        // Prefixes alone.
        {"bcrypt prefix alone", "$2y$04$", HashFormat::unknown},
        {"$apr1$ prefix alone", "$apr1$", HashFormat::unknown},
        {"$apr1$ salt without digest", "$apr1$jFArcZ5m$", HashFormat::unknown},
        {"{SHA} prefix alone", "{SHA}", HashFormat::unknown},
        {"$1$ prefix alone", "$1$", HashFormat::unknown},
        {"$5$ prefix alone", "$5$", HashFormat::unknown},
        {"$6$ prefix alone", "$6$", HashFormat::unknown},
        {"$5$rounds= without salt and digest", "$5$rounds=1000$", HashFormat::unknown},
        // Broken shapes.
        {"bcrypt variant $2x$ is not accepted",
         "$2x$04$fxEw42QHmPVcGLgMERxWeuZScXnG.1Xomj7P7a2xzwgBL3DJ0SL9a", HashFormat::unknown},
        {"bcrypt with a non-digit cost", "$2y$0a$fxEw42QHmPVcGLgMERxWeuZScXnG.1Xomj7P7a2xzwgBL3DJ0SL9a",
         HashFormat::unknown},
        {"bcrypt with a character outside its alphabet",
         "$2y$04$fxEw42QHmPVcGLgMERxWeuZScXnG!1Xomj7P7a2xzwgBL3DJ0SL9a", HashFormat::unknown},
        {"{SHA} with a character outside base64", "{SHA}uE1+cBGmURe+4zihKsjf!HZgJbQ=", HashFormat::unknown},
        {"{SHA} without its '='", "{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQA", HashFormat::unknown},
        {"$5$ with an empty rounds value", "$5$rounds=$abcdefgh$xgUIBn1lcWBYmgh55Gt7i9ZCA1nsK9E3LjH2Vb2J/G1",
         HashFormat::unknown},
        {"$5$ with a non-numeric rounds value",
         "$5$rounds=1k$abcdefgh$xgUIBn1lcWBYmgh55Gt7i9ZCA1nsK9E3LjH2Vb2J/G1", HashFormat::unknown},
        {"$1$ with an over-long salt", "$1$saltsaltsaltsalt1$.bVJE.Rwlu1YgYAAl49aT1", HashFormat::unknown},
        {"$1$ with a digest of the $5$ length", "$1$saltsalt$shfrMMP9sc2Ytlgo/dMOkBBIQbJem82KrTMqopLMDl0",
         HashFormat::unknown},
        {"$5$ with a digest of the $1$ length", "$5$saltsalt$.bVJE.Rwlu1YgYAAl49aT1", HashFormat::unknown},
        {"unknown modular id $7$", "$7$saltsalt$.bVJE.Rwlu1YgYAAl49aT1", HashFormat::unknown},
        {"a DES hash with a space", "MsrIo421 jkpj", HashFormat::unknown},
        // Shape is all there is: 13 crypt characters look like DES crypt.
        {"13 crypt characters are DES crypt by shape", "abcdefghijklm", HashFormat::crypt_des},
    };
    for (const ClassifyCase &c : cases) {
        BOOST_TEST_CONTEXT(c.rule << ": [" << c.stored << "]")
        {
            BOOST_TEST(std::string(format_name(classify_hash(c.stored))) == format_name(c.format));
        }
    }
}

BOOST_AUTO_TEST_CASE(truncated_or_extended_vectors_are_unknown)
{
    for (const Vector &v : vectors()) {
        BOOST_TEST_CONTEXT(v.tool << ": " << v.stored)
        {
            const std::string shorter = v.stored.substr(0, v.stored.size() - 1);
            const std::string half = v.stored.substr(0, v.stored.size() / 2);
            const std::string longer = v.stored + "A";
            BOOST_TEST(std::string(format_name(classify_hash(shorter))) == "unknown");
            BOOST_TEST(std::string(format_name(classify_hash(half))) == "unknown");
            BOOST_TEST(std::string(format_name(classify_hash(longer))) == "unknown");
        }
    }
}

BOOST_AUTO_TEST_CASE(every_format_has_its_own_name)
{
    const HashFormat all[] = {HashFormat::unknown,      HashFormat::bcrypt,      HashFormat::apr1_md5,
                              HashFormat::sha1,         HashFormat::crypt_des,   HashFormat::md5_crypt,
                              HashFormat::sha256_crypt, HashFormat::sha512_crypt};
    std::set<std::string> names;
    for (const HashFormat f : all) {
        BOOST_TEST_REQUIRE(format_name(f) != nullptr);
        BOOST_TEST(std::strlen(format_name(f)) > 0u);
        names.insert(format_name(f));
    }
    BOOST_TEST(names.size() == std::size(all));
}

BOOST_AUTO_TEST_CASE(right_password_verifies)
{
    for (const Vector &v : vectors()) {
        BOOST_TEST_CONTEXT(v.tool << ": " << v.stored << " / " << v.password)
        {
            BOOST_TEST(verify_password(v.password.c_str(), v.stored.c_str(), v.format));
        }
    }
}

BOOST_AUTO_TEST_CASE(wrong_password_is_refused)
{
    for (const Vector &v : vectors()) {
        BOOST_TEST_CONTEXT(v.tool << ": " << v.stored << " / " << v.password)
        {
            BOOST_TEST(!verify_password((v.password + "x").c_str(), v.stored.c_str(), v.format));
            BOOST_TEST(!verify_password("", v.stored.c_str(), v.format));
            BOOST_TEST(!verify_password("wrong", v.stored.c_str(), v.format));
        }
    }
}

BOOST_AUTO_TEST_CASE(password_differing_only_in_case_is_refused)
{
    for (const Vector &v : vectors()) {
        BOOST_TEST_CONTEXT(v.tool << ": " << v.stored << " / " << v.password)
        {
            const std::string flipped = swap_case(v.password);
            BOOST_TEST_REQUIRE(flipped != v.password);
            BOOST_TEST(!verify_password(flipped.c_str(), v.stored.c_str(), v.format));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_stored_hash_is_never_used_as_the_password)
{
    for (const Vector &v : vectors()) {
        BOOST_TEST_CONTEXT(v.tool << ": " << v.stored)
        {
            BOOST_TEST(!verify_password(v.stored.c_str(), v.stored.c_str(), v.format));
        }
    }
}

BOOST_AUTO_TEST_CASE(unknown_format_is_never_compared_as_plaintext)
{
    // A plaintext entry (htpasswd -p) must not let its own text in.
    BOOST_TEST_REQUIRE(std::string(format_name(classify_hash("secret"))) == "unknown");
    BOOST_TEST(!verify_password("secret", "secret", HashFormat::unknown));
    BOOST_TEST(!verify_password("", "", HashFormat::unknown));
    // Even a real hash is refused when the caller says it is unknown.
    const Vector &carol = vectors()[7];
    BOOST_TEST_REQUIRE(std::string(format_name(carol.format)) == format_name(HashFormat::apr1_md5));
    BOOST_TEST(!verify_password(carol.password.c_str(), carol.stored.c_str(), HashFormat::unknown));
}

BOOST_AUTO_TEST_CASE(thirteen_character_plaintext_is_treated_as_des_not_as_plaintext)
{
    const char *stored = "abcdefghijklm";
    BOOST_TEST_REQUIRE(std::string(format_name(classify_hash(stored))) == format_name(HashFormat::crypt_des));
    BOOST_TEST(!verify_password(stored, stored, HashFormat::crypt_des));
}

BOOST_AUTO_TEST_CASE(costs_and_the_cost_cap_table)
{
    using auth_proxy::describe_unusable;
    using auth_proxy::hash_cost;
    using auth_proxy::hash_usability;
    using auth_proxy::HashUsability;
    const std::string digest86(86, 'x'), digest43(43, 'x');
    struct Case {
        const char *rule;
        std::string stored;
        std::uint32_t cost;
        HashUsability usability;
    };
    const std::vector<Case> cases = {
        {"bcrypt at htpasswd's minimum", "$2y$04$" + std::string(53, 'a'), 4, HashUsability::usable},
        {"bcrypt at htpasswd's maximum", "$2y$17$" + std::string(53, 'a'), 17, HashUsability::usable},
        {"bcrypt past it (APR refuses it too)", "$2y$18$" + std::string(53, 'a'), 18, HashUsability::cost_out_of_range},
        {"bcrypt below 4", "$2y$03$" + std::string(53, 'a'), 3, HashUsability::cost_out_of_range},
        {"SHA-512 crypt without rounds= is glibc's 5000", "$6$saltsalt$" + digest86, 5000, HashUsability::usable},
        {"SHA-256 crypt at the cap", "$5$rounds=20000000$saltsalt$" + digest43, 20000000, HashUsability::usable},
        {"SHA-512 crypt one round over", "$6$rounds=20000001$saltsalt$" + digest86, 20000001,
         HashUsability::cost_out_of_range},
        {"glibc's maximum: minutes per verification", "$6$rounds=999999999$saltsalt$" + digest86, 999999999,
         HashUsability::cost_out_of_range},
        {"rounds below 1000 are run as 1000", "$5$rounds=10$saltsalt$" + digest43, 1000, HashUsability::usable},
        {"APR1 has a fixed cost", "$apr1$jFArcZ5m$wqCp4W1cQBmciHu1wOfG61", 0, HashUsability::usable},
        {"plaintext", "secret", 0, HashUsability::unknown_format},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            const HashFormat format = classify_hash(c.stored);
            BOOST_TEST((hash_usability(c.stored, format) == c.usability));
            if (format != HashFormat::unknown) {
                BOOST_TEST(hash_cost(c.stored, format) == c.cost);
            }
            if (c.usability != HashUsability::usable) {
                BOOST_TEST(!describe_unusable(c.stored, format).empty());
                BOOST_TEST(!verify_password("anything", c.stored.c_str(), format)); // and it returns at once
            }
        }
    }
    BOOST_TEST(describe_unusable("$6$rounds=999999999$saltsalt$" + digest86, HashFormat::sha512_crypt) ==
               "SHA-512-crypt of 999999999 rounds, over the limit of 20000000");
}

BOOST_AUTO_TEST_CASE(a_dummy_hash_has_the_format_and_cost_asked_for_and_matches_no_password)
{
    using auth_proxy::dummy_hash;
    using auth_proxy::hash_cost;
    using auth_proxy::hash_usability;
    using auth_proxy::HashUsability;
    const std::vector<std::pair<HashFormat, std::uint32_t>> kinds = {
        {HashFormat::bcrypt, 4},         {HashFormat::bcrypt, 12},       {HashFormat::apr1_md5, 0},
        {HashFormat::sha1, 0},           {HashFormat::crypt_des, 0},     {HashFormat::md5_crypt, 0},
        {HashFormat::sha256_crypt, 5000}, {HashFormat::sha512_crypt, 1000},
    };
    for (const auto &[format, cost] : kinds) {
        BOOST_TEST_CONTEXT(format_name(format) << " cost " << cost)
        {
            const std::string dummy = dummy_hash(format, cost);
            BOOST_TEST(std::string(format_name(classify_hash(dummy))) == format_name(format));
            BOOST_TEST(hash_cost(dummy, format) == cost);
            BOOST_TEST((hash_usability(dummy, format) == HashUsability::usable));
            for (const char *password : {"", "password", "dUmMySaL", "AAAAAAAA"}) {
                BOOST_TEST(!verify_password(password, dummy.c_str(), format), password);
            }
        }
    }
    // Never more than the cap, whatever is asked for.
    BOOST_TEST(hash_cost(dummy_hash(HashFormat::bcrypt, 31), HashFormat::bcrypt) == 17u);
    BOOST_TEST(hash_cost(dummy_hash(HashFormat::sha512_crypt, 999999999), HashFormat::sha512_crypt) == 20000000u);
}

BOOST_AUTO_TEST_CASE(significant_password_bytes_table)
{
    const std::string b80(80, 'b'), d12 = "12345678abcd";
    struct Row {
        const char *rule;
        HashFormat format;
        std::string password;
        std::string significant;
    };
    const std::vector<Row> rows = {
        {"bcrypt reads 72 bytes", HashFormat::bcrypt, b80, b80.substr(0, 72)},
        {"bcrypt: exactly 72 is whole", HashFormat::bcrypt, b80.substr(0, 72), b80.substr(0, 72)},
        {"bcrypt: shorter is whole", HashFormat::bcrypt, "pw", "pw"},
        {"crypt DES reads 8", HashFormat::crypt_des, d12, "12345678"},
        {"crypt DES: shorter is whole", HashFormat::crypt_des, "1234", "1234"},
        {"APR1-MD5 reads all", HashFormat::apr1_md5, b80, b80},
        {"{SHA} reads all", HashFormat::sha1, b80, b80},
        {"MD5-crypt reads all", HashFormat::md5_crypt, b80, b80},
        {"SHA-256-crypt reads all", HashFormat::sha256_crypt, b80, b80},
        {"SHA-512-crypt reads all", HashFormat::sha512_crypt, b80, b80},
        {"an unknown format: all", HashFormat::unknown, b80, b80},
        {"empty", HashFormat::bcrypt, "", ""},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            BOOST_TEST(std::string(significant_password_bytes(row.password, row.format)) == row.significant);
        }
    }
}

BOOST_AUTO_TEST_CASE(the_significant_bytes_decide_the_verification)
{
    // What significant_password_bytes() claims, checked against the real hashes.
    const std::string b72(72, 'b');
    const char *bcrypt = "$2y$04$.WlThKlfuXStuah.xXJT8uVr3ZBJ/TAmn4L6alimcn1HpkCK1jWmW"; // b72 + "tail-one"
    BOOST_TEST(verify_password((b72 + "tail-one").c_str(), bcrypt, HashFormat::bcrypt));
    BOOST_TEST(verify_password((b72 + "other").c_str(), bcrypt, HashFormat::bcrypt));
    BOOST_TEST(verify_password(b72.c_str(), bcrypt, HashFormat::bcrypt));
    BOOST_TEST(!verify_password(b72.substr(0, 71).c_str(), bcrypt, HashFormat::bcrypt));
    const char *des = "Xa0e2.FCxvB/I"; // "des-pass-word", of which DES reads "des-pass"
    BOOST_TEST(verify_password("des-pass", des, HashFormat::crypt_des));
    BOOST_TEST(verify_password("des-pass-anything", des, HashFormat::crypt_des));
    BOOST_TEST(!verify_password("des-pas", des, HashFormat::crypt_des));
}

BOOST_AUTO_TEST_SUITE_END()
