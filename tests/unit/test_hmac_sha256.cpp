// Known-answer tests for SHA-256 (FIPS 180-4 examples, padding boundaries)
// and HMAC-SHA256 (RFC 4231), and the incremental interface.

#include "auth_proxy/cache/hmac_sha256.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

using auth_proxy::HmacSha256;
using auth_proxy::Sha256;
using auth_proxy::Sha256Digest;

BOOST_AUTO_TEST_SUITE(hmac_sha256)

namespace {

std::string hex(const Sha256Digest &digest)
{
    static const char kDigits[] = "0123456789abcdef";
    std::string out;
    for (const std::uint8_t byte : digest) {
        out += kDigits[byte >> 4];
        out += kDigits[byte & 15];
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(sha256_known_answers)
{
    struct Row {
        const char *rule;
        std::string message;
        const char *digest;
    };
    const std::vector<Row> rows = {
        {"empty message", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"FIPS 180 one-block example", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"FIPS 180 two-block example", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"55 bytes: padding and length fit the block", std::string(55, 'x'),
         "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
        {"56 bytes: the length spills into a second block", std::string(56, 'x'),
         "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
        {"63 bytes", std::string(63, 'x'), "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
        {"64 bytes: exactly one block", std::string(64, 'x'),
         "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
        {"65 bytes", std::string(65, 'x'), "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"},
        {"119 bytes", std::string(119, 'x'), "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
        {"120 bytes", std::string(120, 'x'), "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"},
        {"FIPS 180 one million 'a'", std::string(1000000, 'a'),
         "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule) { BOOST_TEST(hex(Sha256::of(row.message)) == row.digest); }
    }
}

BOOST_AUTO_TEST_CASE(sha256_incremental_updates_match_one_shot_at_every_split)
{
    std::string message;
    for (int i = 0; i < 200; ++i) {
        message += static_cast<char>(i * 7 + 3);
    }
    const Sha256Digest whole = Sha256::of(message);
    for (std::size_t first = 0; first <= message.size(); ++first) {
        for (std::size_t second : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64}}) {
            const std::size_t cut = std::min(message.size(), first + second);
            Sha256 hash;
            hash.update(std::string_view(message).substr(0, first));
            hash.update(std::string_view(message).substr(first, cut - first));
            hash.update(std::string_view(message).substr(cut));
            BOOST_TEST_CONTEXT("split at " << first << " and " << cut)
            {
                BOOST_TEST((hash.finish() == whole));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(sha256_copy_continues_from_the_same_state)
{
    Sha256 prefix;
    prefix.update("The quick brown fox ");
    Sha256 copy = prefix;
    prefix.update("jumps over the lazy dog");
    copy.update("jumps over the lazy dog");
    BOOST_TEST(hex(prefix.finish()) == "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
    BOOST_TEST(hex(copy.finish()) == "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
}

BOOST_AUTO_TEST_CASE(hmac_known_answers)
{
    struct Row {
        const char *rule;
        std::string key;
        std::string message;
        const char *mac;
    };
    const std::vector<Row> rows = {
        {"RFC 4231 case 1", std::string(20, '\x0b'), "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"RFC 4231 case 2: key shorter than the output", "Jefe", "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"RFC 4231 case 3", std::string(20, '\xaa'), std::string(50, '\xdd'),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"RFC 4231 case 6: key longer than a block", std::string(131, '\xaa'),
         "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {"RFC 4231 case 7: key and message longer than a block", std::string(131, '\xaa'),
         "This is a test using a larger than block-size key and a larger than block-size data. The key "
         "needs to be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
        {"key of exactly one block is used as is", std::string(64, 'k'), "m",
         "3b7a8d453e76edb519238a515105a57508d0f169f480ebeee120a9e7803289fa"},
        {"key one byte over a block is hashed", std::string(65, 'k'), "m",
         "c2d7d4c2256ddb097409ec0c67e1d58fa1a007fc6932cac0d892a525d08af7cc"},
        {"empty key and message", "", "", "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            const HmacSha256 hmac(row.key.data(), row.key.size());
            BOOST_TEST(hex(hmac.mac(row.message)) == row.mac);
            // The same keyed object serves any number of messages.
            BOOST_TEST(hex(hmac.mac(row.message)) == row.mac);
        }
    }
}

BOOST_AUTO_TEST_CASE(hmac_streamed_message_matches_one_shot)
{
    const std::string key(20, '\x0b');
    const HmacSha256 hmac(key.data(), key.size());
    Sha256 inner = hmac.begin();
    inner.update("Hi ");
    inner.update("There");
    BOOST_TEST(hex(hmac.finish(inner)) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

BOOST_AUTO_TEST_SUITE_END()
