// Specification of the verified-credential cache: what names an entry, how
// long it lives, how many there may be, and that it holds under threads.

#include "auth_proxy/cache/credential_cache.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using auth_proxy::CacheKey;
using auth_proxy::CacheSecret;
using auth_proxy::Clock;
using auth_proxy::CredentialCache;
using auth_proxy::random_cache_secret;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(credential_cache)

namespace {

const std::string kHash = "$apr1$jFArcZ5m$wqCp4W1cQBmciHu1wOfG61";
const std::string kOtherHash = "{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=";

CacheSecret secret_of(std::uint8_t fill)
{
    CacheSecret s;
    s.fill(fill);
    return s;
}

/** Distinct keys, as different users with the same password would give. */
std::vector<CacheKey> keys(const CredentialCache &cache, std::size_t n, const char *prefix = "user")
{
    std::vector<CacheKey> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(cache.key_for(prefix + std::to_string(i), "password", kHash));
    }
    return out;
}

const Clock::time_point t0 = Clock::time_point{} + 1000h;

} // namespace

// ---- Keys -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(key_is_deterministic_for_the_same_secret)
{
    const CredentialCache a(16, 1min, secret_of(7));
    const CredentialCache b(1000, 5min, secret_of(7)); // capacity and TTL play no part
    BOOST_TEST((a.key_for("alice", "pw", kHash) == a.key_for("alice", "pw", kHash)));
    BOOST_TEST((a.key_for("alice", "pw", kHash) == b.key_for("alice", "pw", kHash)));
    BOOST_TEST((a.key_for("alice", "pw", kHash) != CacheKey{}));
}

BOOST_AUTO_TEST_CASE(key_changes_with_any_input)
{
    const CredentialCache cache(16, 1min, secret_of(7));
    const CredentialCache other_secret(16, 1min, secret_of(8));
    const CacheKey base = cache.key_for("alice", "pw", kHash);

    struct Row {
        const char *rule;
        CacheKey key;
    };
    const std::vector<Row> rows = {
        {"another user", cache.key_for("bob", "pw", kHash)},
        {"another password", cache.key_for("alice", "pw2", kHash)},
        {"a password differing in case", cache.key_for("alice", "PW", kHash)},
        {"another stored hash (password changed in the file)", cache.key_for("alice", "pw", kOtherHash)},
        {"another secret (another process)", other_secret.key_for("alice", "pw", kHash)},
        {"user and password boundary moved: (alic, epw)", cache.key_for("alic", "epw", kHash)},
        {"the ':' separator form is not the key: (alice:pw, '')", cache.key_for("alice:pw", "", kHash)},
    };
    std::set<CacheKey> seen{base};
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            BOOST_TEST((row.key != base));
            BOOST_TEST((row.key != CacheKey{}));
            BOOST_TEST(seen.insert(row.key).second, "collides with an earlier row");
        }
    }
}

BOOST_AUTO_TEST_CASE(a_checking_stores_key_names_the_store_and_the_scope)
{
    const CredentialCache cache(16, 1min, secret_of(7));
    const CacheKey base = cache.key_for_store("dbm", 1, "alice", "pw");
    BOOST_TEST((base == cache.key_for_store("dbm", 1, "alice", "pw")));
    struct Row {
        const char *rule;
        CacheKey key;
    };
    const std::vector<Row> rows = {
        {"another scope (another AuthDBMUserFile, filter, vhost)", cache.key_for_store("dbm", 2, "alice", "pw")},
        {"another store", cache.key_for_store("ldap", 1, "alice", "pw")},
        {"another user", cache.key_for_store("dbm", 1, "bob", "pw")},
        {"another password", cache.key_for_store("dbm", 1, "alice", "pw2")},
        {"a scope differing in its top byte", cache.key_for_store("dbm", 1 | (1ULL << 63), "alice", "pw")},
        {"the user file's key of the same credentials", cache.key_for("alice", "pw", "dbm")},
    };
    std::set<CacheKey> seen{base};
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            BOOST_TEST(seen.insert(row.key).second, "collides with an earlier row");
        }
    }
    // The same credentials cached in one scope are a miss in another.
    CredentialCache shared(16, 1min, secret_of(7));
    const auto now = Clock::time_point{} + 1h;
    shared.remember(shared.key_for_store("dbm", 1, "alice", "pw"), now);
    BOOST_TEST(shared.contains(shared.key_for_store("dbm", 1, "alice", "pw"), now));
    BOOST_TEST(!shared.contains(shared.key_for_store("dbm", 2, "alice", "pw"), now));
}

BOOST_AUTO_TEST_CASE(fields_are_length_prefixed)
{
    const CredentialCache cache(16, 1min, secret_of(7));
    BOOST_TEST((cache.key_for("ab", "c", kHash) != cache.key_for("a", "bc", kHash)));
    BOOST_TEST((cache.key_for("a", "b", "ch") != cache.key_for("a", "bc", "h")));
    BOOST_TEST((cache.key_for("", "ab", "") != cache.key_for("ab", "", "")));
    BOOST_TEST((cache.key_for("", "", "ab") != cache.key_for("", "ab", "")));
}

BOOST_AUTO_TEST_CASE(random_secrets_differ)
{
    const CacheSecret a = random_cache_secret();
    const CacheSecret b = random_cache_secret();
    BOOST_TEST((a != b));
    BOOST_TEST((a != CacheSecret{}));
}

BOOST_AUTO_TEST_CASE(key_is_the_hmac_of_the_length_prefixed_fields)
{
    // Pins the key's definition: HMAC-SHA256(secret, len|user len|password
    // len|hash), each length 8 bytes little-endian.
    const CacheSecret secret = secret_of(7);
    const CredentialCache cache(16, 1min, secret);
    const auto field = [](const std::string &text) {
        std::string out;
        for (int i = 0; i < 8; ++i) {
            out += static_cast<char>((text.size() >> (8 * i)) & 0xff);
        }
        return out + text;
    };
    const auth_proxy::HmacSha256 hmac(secret.data(), secret.size());
    const std::string long_password(10000, 'p'); // longer than any buffer: streamed
    struct Row {
        std::string user, password, hash;
    };
    for (const Row &row : std::vector<Row>{{"alice", "pw", kHash}, {"", "", ""}, {"bob", long_password, kOtherHash}}) {
        BOOST_TEST_CONTEXT(row.user << " / " << row.password.size() << "-byte password")
        {
            BOOST_TEST((cache.key_for(row.user, row.password, row.hash) ==
                        hmac.mac(field(row.user) + field(row.password) + field(row.hash))));
        }
    }
}

BOOST_AUTO_TEST_CASE(long_credentials_are_cached_like_any_other)
{
    CredentialCache cache(16, 1min, secret_of(7));
    const std::string huge(10000, 'p');
    const CacheKey key = cache.key_for("alice", huge, kHash);
    BOOST_TEST((key != cache.key_for("alice", huge + "p", kHash)));
    cache.remember(key, t0);
    BOOST_TEST(cache.contains(key, t0));
    BOOST_TEST(!cache.contains(cache.key_for("alice", huge + "p", kHash), t0));
}

// ---- Lifetime -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(only_remembered_keys_are_contained)
{
    CredentialCache cache(16, 1min, secret_of(7));
    const CacheKey alice = cache.key_for("alice", "pw", kHash);
    const CacheKey bob = cache.key_for("bob", "pw", kHash);
    BOOST_TEST(!cache.contains(alice, t0));
    cache.remember(alice, t0);
    BOOST_TEST(cache.contains(alice, t0));
    BOOST_TEST(!cache.contains(bob, t0));
    BOOST_TEST(!cache.contains(cache.key_for("alice", "wrong", kHash), t0));
}

BOOST_AUTO_TEST_CASE(a_key_may_be_remembered_for_less_than_the_ttl_never_for_more)
{
    auth_proxy::SharedKeySet set(16, 1min);
    const CredentialCache cache(16, 1min, secret_of(7));
    const CacheKey brief = cache.key_for("a", "pw", kHash), long_asked = cache.key_for("b", "pw", kHash);
    set.remember(brief, t0, 3s);
    set.remember(long_asked, t0, 1h);
    BOOST_TEST(set.contains(brief, t0 + 2s));
    BOOST_TEST(!set.contains(brief, t0 + 3s));
    BOOST_TEST(set.contains(long_asked, t0 + 59s));
    BOOST_TEST(!set.contains(long_asked, t0 + 1min));
}

BOOST_AUTO_TEST_CASE(entry_expires_after_the_ttl)
{
    CredentialCache cache(16, 1min, secret_of(7));
    const CacheKey key = cache.key_for("alice", "pw", kHash);
    cache.remember(key, t0);
    BOOST_TEST(cache.contains(key, t0 + 1min - 1ns));
    BOOST_TEST(!cache.contains(key, t0 + 1min));
    // Expired entries are dropped, not kept around.
    BOOST_TEST(cache.stats().entries == 0u);
    BOOST_TEST(!cache.contains(key, t0 + 1min - 1ns));
}

BOOST_AUTO_TEST_CASE(remembering_again_refreshes_the_expiry)
{
    CredentialCache cache(16, 1min, secret_of(7));
    const CacheKey key = cache.key_for("alice", "pw", kHash);
    cache.remember(key, t0);
    cache.remember(key, t0 + 30s);
    BOOST_TEST(cache.contains(key, t0 + 1min));
    BOOST_TEST(cache.contains(key, t0 + 90s - 1ns));
    BOOST_TEST(!cache.contains(key, t0 + 90s));
    BOOST_TEST(cache.stats().entries == 0u);
}

BOOST_AUTO_TEST_CASE(a_hit_does_not_extend_the_expiry)
{
    CredentialCache cache(16, 1min, secret_of(7));
    const CacheKey key = cache.key_for("alice", "pw", kHash);
    cache.remember(key, t0);
    BOOST_TEST(cache.contains(key, t0 + 50s));
    BOOST_TEST(!cache.contains(key, t0 + 1min));
}

// ---- Capacity -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(capacity_is_a_hard_bound_and_evictions_are_counted)
{
    for (const std::size_t capacity : {1u, 2u, 10u, 15u, 16u, 17u, 100u, 1000u}) {
        BOOST_TEST_CONTEXT("capacity " << capacity)
        {
            CredentialCache cache(capacity, 1h, secret_of(7));
            const std::vector<CacheKey> all = keys(cache, 4 * capacity + 64);
            for (const CacheKey &k : all) {
                cache.remember(k, t0);
            }
            const CredentialCache::Stats s = cache.stats();
            BOOST_TEST(s.entries <= capacity);
            // Four times as many keys as room: nearly every bucket has been
            // filled (a bucket holds 4; the keys spread at random).
            BOOST_TEST(s.entries * 4 >= capacity * 3);
            BOOST_TEST(s.evictions == all.size() - s.entries);

            std::size_t found = 0;
            for (const CacheKey &k : all) {
                found += cache.contains(k, t0) ? 1 : 0;
            }
            BOOST_TEST(found == s.entries);
            // The newest key always survives its own insertion.
            BOOST_TEST(cache.contains(all.back(), t0));
        }
    }
}

BOOST_AUTO_TEST_CASE(capacity_16_keeps_at_most_16)
{
    CredentialCache cache(16, 1h, secret_of(7));
    const std::vector<CacheKey> all = keys(cache, 1000);
    for (const CacheKey &k : all) {
        cache.remember(k, t0);
        BOOST_TEST_REQUIRE(cache.stats().entries <= 16u);
    }
    BOOST_TEST(cache.stats().evictions >= 1000u - 16u);
}

BOOST_AUTO_TEST_CASE(recently_used_entries_survive_a_stream_of_new_ones)
{
    // 64 hot keys are used after every 16 new keys, one new key every 10 ms.
    // A cache with room for 1024 that replaces the least recently used entry
    // of a bucket keeps them all however many new keys pass through; a FIFO
    // (or random) one would lose them.
    CredentialCache cache(1024, 1h, secret_of(7));
    const std::vector<CacheKey> hot = keys(cache, 64, "hot");
    const std::vector<CacheKey> cold = keys(cache, 20000, "cold");
    for (const CacheKey &k : hot) {
        cache.remember(k, t0);
    }
    auto now = t0;
    for (std::size_t i = 0; i < cold.size(); ++i) {
        now += 10ms;
        cache.remember(cold[i], now);
        if (i % 16 == 15) {
            for (const CacheKey &k : hot) {
                cache.contains(k, now);
            }
        }
    }
    std::size_t hot_found = 0;
    for (const CacheKey &k : hot) {
        hot_found += cache.contains(k, now) ? 1 : 0;
    }
    // Replacement is per bucket of 4: a hot key can still lose its slot when
    // three new keys land in its bucket between two of its uses (rare here).
    // Without the last-use stamp every hot key would be gone: each bucket
    // sees about 78 new keys.
    BOOST_TEST(hot_found >= hot.size() - 2);
    std::size_t early_cold_found = 0;
    for (std::size_t i = 0; i < 1000; ++i) {
        early_cold_found += cache.contains(cold[i], now) ? 1 : 0;
    }
    BOOST_TEST(early_cold_found == 0u);
    BOOST_TEST(cache.stats().entries <= 1024u);
}

// ---- Disabled -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(capacity_0_or_ttl_0_disables_the_cache)
{
    struct Row {
        const char *rule;
        std::size_t capacity;
        Clock::duration ttl;
        bool enabled;
    };
    // clang-format off
    const std::vector<Row> rows = {
        {"capacity 0", 0, 1min, false},
        {"ttl 0", 16, Clock::duration::zero(), false},
        {"negative ttl", 16, -1s, false},
        {"both 0", 0, Clock::duration::zero(), false},
        {"capacity 1, ttl 1ns", 1, 1ns, true},
    };
    // clang-format on
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            CredentialCache cache(row.capacity, row.ttl, secret_of(7));
            BOOST_TEST(cache.enabled() == row.enabled);
            const CacheKey key = cache.key_for("alice", "pw", kHash);
            cache.remember(key, t0);
            BOOST_TEST(cache.contains(key, t0) == row.enabled);
            BOOST_TEST(cache.stats().entries == (row.enabled ? 1u : 0u));
        }
    }
}

// ---- Statistics -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(stats_count_hits_and_misses)
{
    CredentialCache cache(16, 1min, secret_of(7));
    const CacheKey alice = cache.key_for("alice", "pw", kHash);
    const CacheKey bob = cache.key_for("bob", "pw", kHash);

    BOOST_TEST(!cache.contains(alice, t0)); // miss
    cache.remember(alice, t0);
    BOOST_TEST(cache.contains(alice, t0));         // hit
    BOOST_TEST(cache.contains(alice, t0 + 10s));   // hit
    BOOST_TEST(!cache.contains(bob, t0));          // miss
    BOOST_TEST(!cache.contains(alice, t0 + 2min)); // expired: miss

    const CredentialCache::Stats s = cache.stats();
    BOOST_TEST(s.hits == 2u);
    BOOST_TEST(s.misses == 3u);
    BOOST_TEST(s.evictions == 0u);
    BOOST_TEST(s.entries == 0u);
}

// ---- Threads --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(concurrent_use_keeps_the_bound_and_the_counts)
{
    constexpr std::size_t kCapacity = 64;
    constexpr int kThreads = 4;
    constexpr int kOpsPerThread = 50000;
    CredentialCache cache(kCapacity, 1h, secret_of(7));
    const std::vector<CacheKey> pool = keys(cache, 500); // overlapping between threads

    std::atomic<std::uint64_t> lookups{0};
    std::atomic<bool> over_capacity{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::uint64_t local_lookups = 0;
            std::uint32_t x = 2463534242u + static_cast<std::uint32_t>(t); // xorshift
            for (int i = 0; i < kOpsPerThread; ++i) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                const CacheKey &key = pool[x % pool.size()];
                const auto now = t0 + std::chrono::milliseconds(i);
                if (!cache.contains(key, now)) {
                    cache.remember(key, now);
                }
                ++local_lookups;
                if (i % 1000 == 0 && cache.stats().entries > kCapacity) {
                    over_capacity = true;
                }
            }
            lookups += local_lookups;
        });
    }
    for (std::thread &th : threads) {
        th.join();
    }

    const CredentialCache::Stats s = cache.stats();
    BOOST_TEST(!over_capacity.load());
    BOOST_TEST(s.entries <= kCapacity);
    BOOST_TEST(s.entries > 0u);
    BOOST_TEST(s.hits + s.misses == lookups.load());
    BOOST_TEST(lookups.load() == static_cast<std::uint64_t>(kThreads) * kOpsPerThread);
    BOOST_TEST(s.hits > 0u);
    BOOST_TEST(s.evictions > 0u);
}

// ---- Processes ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(processes_forked_after_the_cache_was_made_share_its_entries, *boost::unit_test::timeout(60))
{
    // As httpd's children: the parent makes the cache, every child sees what
    // any other verified, so a user costs one verification per TTL in all.
    CredentialCache cache(1000, 1h, secret_of(7));
    const CacheKey from_parent = cache.key_for("alice", "pw", kHash);
    const CacheKey from_child = cache.key_for("bob", "pw", kHash);
    cache.remember(from_parent, t0);

    const pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    if (child == 0) {
        // In the child: see the parent's entry, add one of its own. No
        // Boost.Test here: the exit status is the verdict.
        const bool saw = cache.contains(from_parent, t0);
        cache.remember(from_child, t0);
        ::_exit(saw ? 0 : 1);
    }
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(child, &status, 0) == child);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0, "the child did not see the parent's entry");
    BOOST_TEST(cache.contains(from_child, t0), "the parent does not see the child's entry");
    BOOST_TEST(!cache.contains(cache.key_for("bob", "wrong", kHash), t0));
}

BOOST_AUTO_TEST_CASE(concurrent_writers_in_two_processes_never_produce_a_false_hit, *boost::unit_test::timeout(120))
{
    // Two processes hammer one small table (every bucket contended) with
    // distinct key sets; afterwards every hit must be a key someone
    // remembered, never a torn mix of two.
    CredentialCache cache(8, 1h, secret_of(7));
    const std::vector<CacheKey> mine = keys(cache, 64, "parent");
    const std::vector<CacheKey> theirs = keys(cache, 64, "child");
    const std::vector<CacheKey> never = keys(cache, 64, "never");
    const pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    auto hammer = [&](const std::vector<CacheKey> &set, int rounds) {
        std::size_t false_hits = 0;
        for (int r = 0; r < rounds; ++r) {
            for (const CacheKey &k : set) {
                cache.remember(k, t0);
            }
            for (const CacheKey &k : never) {
                false_hits += cache.contains(k, t0) ? 1 : 0;
            }
        }
        return false_hits;
    };
    if (child == 0) {
        ::_exit(hammer(theirs, 2000) == 0 ? 0 : 1);
    }
    const std::size_t false_hits = hammer(mine, 2000);
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(child, &status, 0) == child);
    BOOST_TEST(false_hits == 0u);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "the child saw a false hit");
    BOOST_TEST(cache.stats().entries <= 8u);
}

BOOST_AUTO_TEST_SUITE_END()
