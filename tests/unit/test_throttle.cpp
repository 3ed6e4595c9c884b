// Specification of the guessing throttle: the counting rule, address
// blocks, and the shared counter table under processes and threads.

#include "auth_proxy/config.hpp"
#include "auth_proxy/throttle/client_address.hpp"
#include "auth_proxy/throttle/throttle.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace auth_proxy;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(throttle)

namespace {

constexpr std::int64_t kSecond = 1000000;
const FailureRule kRule{3, 600 * kSecond, 900 * kSecond};
const CacheSecret kSecret{1, 2, 3};

/** Shared memory as the parent makes it: zero-filled, visible to forked children. */
struct SharedMemory {
    void *p;
    std::size_t bytes;
    explicit SharedMemory(std::size_t n) : bytes(n)
    {
        p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        BOOST_TEST_REQUIRE(p != MAP_FAILED);
    }
    ~SharedMemory() { ::munmap(p, bytes); }
};

ClientAddress ip(const char *text)
{
    const ClientAddress a = ClientAddress::parse(text);
    BOOST_TEST_REQUIRE(a.valid, text);
    return a;
}

} // namespace

// ---- The rule --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_counting_rule_table)
{
    struct Step {
        const char *rule;
        std::int64_t at;          ///< seconds
        std::uint32_t failures;   ///< after the step
        bool locked_now;
        std::int64_t locked_until; ///< seconds, 0: none
    };
    const std::vector<Step> steps = {
        {"the first failure opens a window", 100, 1, false, 0},
        {"a second within it counts", 200, 2, false, 0},
        {"the limit-th within it starts a lockout", 300, 3, true, 1200},
        {"while locked nothing more is counted", 400, 3, false, 1200},
        {"after the lockout a failure starts afresh", 1300, 1, false, 0},
        {"a failure after the window has passed opens a new one", 1300 + 600, 1, false, 0},
    };
    CounterRecord r;
    for (const Step &step : steps) {
        BOOST_TEST_CONTEXT(step.rule)
        {
            bool locked_now = true;
            r = count_failure(r, step.at * kSecond, kRule, locked_now);
            BOOST_TEST(r.failures == step.failures);
            BOOST_TEST(locked_now == step.locked_now);
            BOOST_TEST(r.locked_until == step.locked_until * kSecond);
        }
    }
    BOOST_TEST(keep_until(r, kRule) == (1900 + 600) * kSecond);
}

// ---- Addresses ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(addresses_parse_and_ipv6_counts_per_64)
{
    BOOST_TEST(ip("192.0.2.1").is_ipv4());
    BOOST_TEST(ip("::ffff:192.0.2.1").is_ipv4());
    BOOST_TEST(ip("192.0.2.1").to_string() == "192.0.2.1");
    BOOST_TEST(ip("2001:db8::1").to_string() == "2001:db8::1");
    BOOST_TEST((ip("192.0.2.1").throttle_subject() == ip("::ffff:192.0.2.1").throttle_subject()));
    BOOST_TEST((ip("192.0.2.1").throttle_subject() != ip("192.0.2.2").throttle_subject()));
    BOOST_TEST((ip("2001:db8:0:1::1").throttle_subject() == ip("2001:db8:0:1:ffff::2").throttle_subject()));
    BOOST_TEST((ip("2001:db8:0:1::1").throttle_subject() != ip("2001:db8:0:2::1").throttle_subject()));
    for (const char *bad : {"", "1.2.3", "1.2.3.4.5", "example.com", "::g", "1.2.3.4 "}) {
        BOOST_TEST(!ClientAddress::parse(bad).valid, "'" << bad << "'");
    }
}

BOOST_AUTO_TEST_CASE(address_lists_table)
{
    struct Case {
        const char *block;
        std::vector<const char *> inside, outside;
    };
    const std::vector<Case> cases = {
        {"10.0.0.0/8", {"10.0.0.1", "10.255.255.255", "::ffff:10.1.2.3"}, {"11.0.0.1", "192.0.2.1", "::1"}},
        {"192.0.2.7", {"192.0.2.7"}, {"192.0.2.8"}},
        {"192.0.2.0/25", {"192.0.2.127"}, {"192.0.2.128"}},
        {"2001:db8::/32", {"2001:db8::1", "2001:db8:ffff::1"}, {"2001:db9::1", "10.0.0.1"}},
        {"::1", {"::1"}, {"::2", "127.0.0.1"}},
        {"0.0.0.0/0", {"1.2.3.4", "255.255.255.255"}, {"2001:db8::1"}},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.block)
        {
            AddressList list;
            std::string error;
            BOOST_TEST_REQUIRE(list.add(c.block, error), error);
            for (const char *a : c.inside) {
                BOOST_TEST(list.contains(ip(a)), a);
            }
            for (const char *a : c.outside) {
                BOOST_TEST(!list.contains(ip(a)), a);
            }
        }
    }
    for (const char *bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "nonsense", "2001:db8::/129", "/8"}) {
        AddressList list;
        std::string error;
        BOOST_TEST(!list.add(bad, error), bad);
        BOOST_TEST(!error.empty());
    }
}

// ---- The shared table ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_table_keeps_each_key_apart_and_forgets_after_keep_until)
{
    SharedMemory mem(SharedCounterTable::bytes_for(64));
    SharedCounterTable table(mem.p, 64, kSecret);
    const CounterKey a = address_key(ip("192.0.2.1")), b = address_key(ip("192.0.2.2"));
    bool locked = false;
    table.add_failure(a, 10 * kSecond, kRule, locked);
    table.add_failure(a, 11 * kSecond, kRule, locked);
    table.add_failure(b, 12 * kSecond, kRule, locked);
    BOOST_TEST(table.read(a, 13 * kSecond).failures == 2u);
    BOOST_TEST(table.read(b, 13 * kSecond).failures == 1u);
    BOOST_TEST(table.read(user_key("alice"), 13 * kSecond).failures == 0u);
    BOOST_TEST(table.occupied(13 * kSecond) == 2u);
    // The window of b closes at 612 s: after that there is nothing to keep.
    BOOST_TEST(table.read(b, 612 * kSecond).failures == 0u);
    BOOST_TEST(table.occupied(700 * kSecond) == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_bucket_never_gives_up_a_counting_or_locked_record)
{
    SharedMemory mem(SharedCounterTable::bytes_for(4)); // one bucket: every key collides
    SharedCounterTable table(mem.p, 4, kSecret);
    const CounterKey locked_key = address_key(ip("192.0.2.1"));
    bool locked = false;
    for (int i = 0; i < 3; ++i) {
        table.add_failure(locked_key, 10 * kSecond, kRule, locked);
    }
    BOOST_TEST_REQUIRE(locked); // locked until 910 s, kept until 910 s
    for (int i = 2; i <= 4; ++i) {
        const std::string addr = "192.0.2." + std::to_string(i);
        BOOST_TEST(table.count(address_key(ip(addr.c_str())), (10 + i) * kSecond, kRule).stored);
    }
    // A fifth key finds no room: it is not stored, and says until when.
    const CounterKey fifth = address_key(ip("192.0.2.5"));
    const Reservation before = table.reserve(fifth, 20 * kSecond, 80 * kSecond);
    BOOST_TEST(!before.held);
    BOOST_TEST(before.room_at == 612 * kSecond); // 192.0.2.2's window, the first to end
    for (int i = 0; i < 100; ++i) {
        const Counting c = table.count(address_key(ip(("198.51.100." + std::to_string(i)).c_str())), 20 * kSecond,
                                       kRule);
        BOOST_TEST(!c.stored);
        BOOST_TEST(c.record.failures == 0u);
    }
    BOOST_TEST(table.read(locked_key, 21 * kSecond).locked_until == 910 * kSecond);
    BOOST_TEST(table.read(address_key(ip("192.0.2.2")), 21 * kSecond).failures == 1u);
    // A record whose window has ended makes room; the lockout still stands.
    BOOST_TEST(table.reserve(fifth, 612 * kSecond, 672 * kSecond).held);
    BOOST_TEST(table.count(fifth, 612 * kSecond, kRule).stored);
    BOOST_TEST(table.read(locked_key, 612 * kSecond).locked_until == 910 * kSecond);
}

BOOST_AUTO_TEST_CASE(a_copy_put_from_another_store_makes_room_but_counting_state_does_not)
{
    SharedMemory mem(SharedCounterTable::bytes_for(4));
    SharedCounterTable table(mem.p, 4, kSecret);
    CounterRecord seen;
    seen.window_start = 5 * kSecond;
    seen.failures = 1;
    for (int i = 1; i <= 4; ++i) {
        // Read from a socache: fresh for a second, counting state for nobody here.
        BOOST_TEST(table.put(address_key(ip(("192.0.2." + std::to_string(i)).c_str())), seen, 10 * kSecond,
                             11 * kSecond, 0));
    }
    BOOST_TEST(table.reserve(address_key(ip("192.0.2.9")), 10 * kSecond, 70 * kSecond).held);
    BOOST_TEST(table.count(address_key(ip("192.0.2.9")), 10 * kSecond, kRule).stored);
    BOOST_TEST(table.read(address_key(ip("192.0.2.9")), 10 * kSecond).failures == 1u);
}

BOOST_AUTO_TEST_CASE(bucket_indexes_are_keyed_by_the_secret)
{
    // Nobody without the secret can tell which addresses share a bucket.
    SharedMemory mem_a(SharedCounterTable::bytes_for(4096)), mem_b(SharedCounterTable::bytes_for(4096));
    const SharedCounterTable a(mem_a.p, 4096, CacheSecret{1}), b(mem_b.p, 4096, CacheSecret{2});
    int same = 0;
    for (int i = 0; i < 1000; ++i) {
        const CounterKey key = address_key(ip(("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)).c_str()));
        same += a.bucket_of(key) == b.bucket_of(key) ? 1 : 0;
        BOOST_TEST(a.bucket_of(key) == a.bucket_of(key));
    }
    BOOST_TEST(same < 10); // 1024 buckets: about 1 by chance
}

BOOST_AUTO_TEST_CASE(processes_forked_after_the_table_was_made_count_together, *boost::unit_test::timeout(60))
{
    SharedMemory mem(SharedCounterTable::bytes_for(1024));
    SharedCounterTable table(mem.p, 1024, kSecret);
    const CounterKey key = address_key(ip("198.51.100.9"));
    const FailureRule many{1000000, 600 * kSecond, 600 * kSecond};
    constexpr int kChildren = 4, kEach = 500;
    std::vector<pid_t> children;
    for (int c = 0; c < kChildren; ++c) {
        const pid_t pid = ::fork();
        BOOST_TEST_REQUIRE(pid >= 0);
        if (pid == 0) {
            bool locked = false;
            for (int i = 0; i < kEach; ++i) {
                table.add_failure(key, 10 * kSecond, many, locked);
            }
            std::_Exit(0);
        }
        children.push_back(pid);
    }
    for (const pid_t pid : children) {
        int status = 0;
        BOOST_TEST(::waitpid(pid, &status, 0) == pid);
        BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    }
    BOOST_TEST(table.read(key, 11 * kSecond).failures == static_cast<std::uint32_t>(kChildren * kEach));
}

BOOST_AUTO_TEST_CASE(a_bucket_lock_left_by_a_dead_process_is_taken_over, *boost::unit_test::timeout(60))
{
    SharedMemory mem(SharedCounterTable::bytes_for(4));
    SharedCounterTable table(mem.p, 4, kSecret);
    // A child that died holding the (only) bucket's lock: its pid is in the lock word.
    const pid_t dead = ::fork();
    BOOST_TEST_REQUIRE(dead >= 0);
    if (dead == 0) {
        std::_Exit(0);
    }
    ::waitpid(dead, nullptr, 0);
    auto *lock_word = static_cast<std::uint32_t *>(mem.p);
    *lock_word = static_cast<std::uint32_t>(dead);
    bool locked = false;
    const CounterRecord r = table.add_failure(address_key(ip("192.0.2.1")), 10 * kSecond, kRule, locked);
    BOOST_TEST(r.failures == 1u);
    BOOST_TEST(*lock_word == 0u);
}

BOOST_AUTO_TEST_CASE(put_records_are_fresh_for_as_long_as_asked)
{
    SharedMemory mem(SharedCounterTable::bytes_for(16));
    SharedCounterTable table(mem.p, 16, kSecret);
    const CounterKey key = address_key(ip("192.0.2.1"));
    CounterRecord remote;
    remote.window_start = 5 * kSecond;
    remote.failures = 7;
    CounterRecord out;
    BOOST_TEST(!table.read_fresh(key, 10 * kSecond, out));
    table.put(key, remote, 10 * kSecond, 11 * kSecond, 600 * kSecond);
    BOOST_TEST(table.read_fresh(key, 10 * kSecond + 500000, out));
    BOOST_TEST(out.failures == 7u);
    BOOST_TEST(!table.read_fresh(key, 11 * kSecond, out)); // stale: ask the remote store again
    BOOST_TEST(table.read(key, 11 * kSecond).failures == 7u);
}

// ---- The policy --------------------------------------------------------------

namespace {

struct ThrottleFixture {
    SharedMemory counter_mem{SharedCounterTable::bytes_for(256)};
    SharedCounterTable counters{counter_mem.p, 256, kSecret};
    SharedKeySet failures{1024, 600s};
    CacheSecret secret{};
    Now now{Clock::time_point{} + 1000h, 1700000000LL * kSecond};

    Throttle make(ThrottlePolicy policy = ThrottlePolicy{})
    {
        return Throttle(std::move(policy), counters, failures, secret);
    }
    Throttle make_with(ThrottleStore &store, ThrottlePolicy policy = ThrottlePolicy{})
    {
        return Throttle(std::move(policy), store, failures, secret);
    }
    void advance(std::chrono::seconds s)
    {
        now.steady += s;
        now.wall_us += s.count() * kSecond;
    }
};

/** Sends @p n distinct wrong passwords for @p user from @p client; returns the last Counted. */
Throttle::Counted fail(Throttle &t, ThrottleFixture &f, const ClientAddress &client, const std::string &user, int n,
                       const std::string &prefix = "guess")
{
    Throttle::Counted last;
    for (int i = 0; i < n; ++i) {
        last = t.note_failure(client, user, t.failure_key(client, user, prefix + std::to_string(i), "$hash"), f.now);
    }
    return last;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(twenty_distinct_failures_lock_the_address_out_for_the_lockout, ThrottleFixture)
{
    Throttle t = make();
    const ClientAddress guesser = ip("203.0.113.5"), other = ip("203.0.113.6");
    BOOST_TEST(!fail(t, *this, guesser, "alice", 19).address_locked_now);
    BOOST_TEST(!t.check(guesser, "alice", now).locked);
    const Throttle::Counted twentieth = fail(t, *this, guesser, "alice", 1, "last");
    BOOST_TEST(twentieth.address_locked_now);
    BOOST_TEST(twentieth.failures == 20u);

    const Throttle::Lock lock = t.check(guesser, "alice", now);
    BOOST_TEST(lock.locked);
    BOOST_TEST(!lock.by_user);
    BOOST_TEST(lock.retry_after.count() == 600);
    BOOST_TEST(!t.check(other, "alice", now).locked); // other addresses are unaffected
    BOOST_TEST(!t.check(guesser, "alice", now).by_user);

    advance(599s);
    BOOST_TEST(t.check(guesser, "bob", now).retry_after.count() == 1);
    advance(1s);
    BOOST_TEST(!t.check(guesser, "alice", now).locked);
}

BOOST_FIXTURE_TEST_CASE(a_repeated_failure_counts_once, ThrottleFixture)
{
    // A browser resending one stale saved password with every request.
    Throttle t = make();
    const ClientAddress browser = ip("198.51.100.20");
    const SetKey stale = t.failure_key(browser, "alice", "old-password", "$hash");
    Throttle::Counted first = t.note_failure(browser, "alice", stale, now);
    BOOST_TEST(first.counted);
    for (int i = 0; i < 100; ++i) {
        BOOST_TEST(t.is_repeat(stale, now));
        BOOST_TEST(!t.note_failure(browser, "alice", stale, now).counted);
    }
    BOOST_TEST(!t.check(browser, "alice", now).locked);
    BOOST_TEST(counters.read(address_key(browser), now.wall_us).failures == 1u);
    // The same password against a changed stored hash is a new attempt.
    BOOST_TEST(!t.is_repeat(t.failure_key(browser, "alice", "old-password", "$new-hash"), now));
}

BOOST_FIXTURE_TEST_CASE(exempt_addresses_and_a_disabled_throttle_count_nothing, ThrottleFixture)
{
    ThrottlePolicy policy;
    std::string error;
    BOOST_TEST_REQUIRE(policy.exempt.add("10.0.0.0/8", error));
    Throttle t = make(policy);
    const ClientAddress office = ip("10.1.2.3");
    fail(t, *this, office, "alice", 50);
    BOOST_TEST(!t.applies_to(office));
    BOOST_TEST(!t.check(office, "alice", now).locked);

    ThrottlePolicy off;
    off.enabled = false;
    Throttle disabled = make(off);
    const ClientAddress anyone = ip("203.0.113.77");
    fail(disabled, *this, anyone, "alice", 50);
    BOOST_TEST(!disabled.check(anyone, "alice", now).locked);
}

BOOST_FIXTURE_TEST_CASE(per_user_lockout_is_off_unless_asked_for, ThrottleFixture)
{
    // Off: guesses at bob from many addresses lock none of them out, nor bob.
    Throttle t = make();
    for (int a = 1; a <= 10; ++a) {
        fail(t, *this, ip(("192.0.2." + std::to_string(a)).c_str()), "bob", 5);
    }
    BOOST_TEST(!t.check(ip("192.0.2.200"), "bob", now).locked);

    ThrottlePolicy per_user;
    per_user.user_limit = 3;
    Throttle u = make(per_user);
    for (int a = 1; a <= 3; ++a) {
        fail(u, *this, ip(("198.51.100." + std::to_string(a)).c_str()), "carol", 1, "from" + std::to_string(a));
    }
    const Throttle::Lock lock = u.check(ip("198.51.100.250"), "carol", now);
    BOOST_TEST(lock.locked);
    BOOST_TEST(lock.by_user);
    BOOST_TEST(!u.check(ip("198.51.100.250"), "dave", now).locked);
}

BOOST_FIXTURE_TEST_CASE(many_addresses_never_lift_a_lockout_nor_buy_more_guesses, ThrottleFixture)
{
    // 16 counters, 4 buckets: 2,000 other addresses each try a wrong password.
    SharedMemory small_mem(SharedCounterTable::bytes_for(16));
    SharedCounterTable small(small_mem.p, 16, kSecret);
    ThrottlePolicy policy;
    policy.address_limit = 3;
    Throttle t = make_with(small, policy);
    const ClientAddress locked = ip("203.0.113.1");
    fail(t, *this, locked, "alice", 3);
    BOOST_TEST_REQUIRE(t.check(locked, "alice", now).locked);

    int guesses = 0, refused_full = 0;
    for (int i = 0; i < 2000; ++i) {
        const ClientAddress other = ip(("10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
                                        std::to_string(i % 256)).c_str());
        for (int attempt = 0; attempt < 5; ++attempt) {
            if (t.check(other, "alice", now).locked) {
                break;
            }
            const Throttle::Lock room = t.reserve(other, "alice", now);
            if (room.locked) {
                BOOST_TEST(room.table_full);
                BOOST_TEST(room.retry_after.count() > 0);
                ++refused_full;
                break;
            }
            ++guesses; // the password would be checked now
            const Throttle::Counted c =
                t.note_failure(other, "alice", t.failure_key(other, "alice", "pw" + std::to_string(attempt), "$h"), now);
            BOOST_TEST(!c.unrecorded);
        }
        BOOST_TEST_REQUIRE(t.check(locked, "alice", now).locked);
    }
    // Each of the 16 records holds at most the limit; the locked one holds its own.
    BOOST_TEST(guesses <= 15 * 3);
    BOOST_TEST(refused_full > 1900);
    // Once the windows end, the table takes new clients again.
    advance(600s);
    BOOST_TEST(!t.reserve(ip("10.200.0.1"), "alice", now).locked);
}

BOOST_FIXTURE_TEST_CASE(a_table_a_quarter_full_refuses_nobody, ThrottleFixture)
{
    // A bucket must not fill up long before the table: every client here
    // has a place, as an operator sizing the table by its docs expects.
    SharedMemory big_mem(SharedCounterTable::bytes_for(kDefaultThrottleEntries));
    SharedCounterTable big(big_mem.p, kDefaultThrottleEntries, kSecret);
    Throttle t = make_with(big);
    int refused = 0;
    for (int i = 0; i < static_cast<int>(kDefaultThrottleEntries / 4); ++i) {
        const std::string address =
            "10." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
        const ClientAddress client = ip(address.c_str());
        refused += t.reserve(client, "alice", now).locked ? 1 : 0;
        t.note_failure(client, "alice", t.failure_key(client, "alice", "wrong", "$h"), now);
    }
    BOOST_TEST(refused == 0);
}

BOOST_FIXTURE_TEST_CASE(a_reservation_holds_a_place_until_released_or_counted, ThrottleFixture)
{
    // One bucket of 4: three clients reserve, one is admitted and gives its place back.
    SharedMemory one_mem(SharedCounterTable::bytes_for(4));
    SharedCounterTable one(one_mem.p, 4, kSecret);
    Throttle t = make_with(one);
    const ClientAddress a = ip("192.0.2.1"), b = ip("192.0.2.2"), c = ip("192.0.2.3"), d = ip("192.0.2.4"),
                        e = ip("192.0.2.5");
    for (const ClientAddress &client : {a, b, c, d}) {
        BOOST_TEST(!t.reserve(client, "alice", now).locked);
    }
    // Password checks in progress for four clients: a fifth is refused, not let check uncounted.
    const Throttle::Lock full = t.reserve(e, "alice", now);
    BOOST_TEST(full.locked);
    BOOST_TEST(full.table_full);
    BOOST_TEST(full.retry_after.count() == 60);
    t.release(a, "alice", now); // a's password was right
    BOOST_TEST(!t.reserve(e, "alice", now).locked);
    // b's was wrong: the failure lands in its reserved place and stays for the window.
    BOOST_TEST(!fail(t, *this, b, "alice", 1).unrecorded);
    t.release(b, "alice", now); // a right password later frees nothing that counts
    // Two checks of one client at once: the first to end keeps the place for the other.
    t.release(e, "alice", now);
    BOOST_TEST(!t.reserve(a, "alice", now).locked);
    BOOST_TEST(!t.reserve(a, "alice", now).locked);
    t.release(a, "alice", now);
    BOOST_TEST(t.reserve(e, "alice", now).locked); // a's second check still holds its place
    t.release(a, "alice", now);
    BOOST_TEST(!t.reserve(e, "alice", now).locked);
    advance(61s);
    BOOST_TEST(one.read(address_key(b), now.wall_us).failures == 1u);
    BOOST_TEST(!t.reserve(a, "alice", now).locked); // c's and d's reservations ran out
}

BOOST_FIXTURE_TEST_CASE(ipv6_failures_count_against_the_64_the_56_and_the_48, ThrottleFixture)
{
    ThrottlePolicy policy;
    policy.address_limit = 4;
    policy.prefix56_limit = 10;
    policy.prefix48_limit = 25;
    Throttle t = make(policy);
    auto client = [](int sub, int host) {
        char text[64];
        std::snprintf(text, sizeof text, "2001:db8:1:%x::%x", sub, host);
        return ip(text);
    };
    // 3 failures each (under the /64 limit) from /64s of one /56 (2001:db8:1:00xx::/56): the 10th locks the /56.
    fail(t, *this, client(0x01, 1), "alice", 3, "a");
    fail(t, *this, client(0x02, 1), "alice", 3, "b");
    fail(t, *this, client(0x03, 1), "alice", 3, "c");
    BOOST_TEST(!t.check(client(0x04, 1), "alice", now).locked);
    const Throttle::Counted tenth = fail(t, *this, client(0x04, 1), "alice", 1, "d");
    BOOST_TEST(tenth.address_locked_now);
    BOOST_TEST(tenth.locked_prefix == 56u);
    const Throttle::Lock lock56 = t.check(client(0x05, 9), "alice", now);
    BOOST_TEST(lock56.locked);
    BOOST_TEST(lock56.prefix == 56u);
    BOOST_TEST(!lock56.table_full);
    // Other /56s of the /48 go on until the /48's 25th failure.
    BOOST_TEST(!t.check(client(0x100, 1), "alice", now).locked);
    for (int sub = 0x100; sub < 0x100 + 5; ++sub) {
        fail(t, *this, client(sub, 1), "alice", 3, "e" + std::to_string(sub));
    }
    // 10 + 15 = 25 failures in the /48.
    const Throttle::Lock lock48 = t.check(client(0xff00, 7), "alice", now);
    BOOST_TEST(lock48.locked);
    BOOST_TEST(lock48.prefix == 48u);
    BOOST_TEST(!t.check(ip("2001:db8:2::1"), "alice", now).locked); // another /48
    BOOST_TEST(!t.check(ip("192.0.2.1"), "alice", now).locked);
}

BOOST_FIXTURE_TEST_CASE(prefix_limits_of_zero_count_nothing_and_ipv4_has_none, ThrottleFixture)
{
    ThrottlePolicy policy;
    policy.address_limit = 4;
    policy.prefix56_limit = 0;
    policy.prefix48_limit = 0;
    Throttle t = make(policy);
    for (int sub = 0; sub < 50; ++sub) {
        char text[64];
        std::snprintf(text, sizeof text, "2001:db8:1:%x::1", sub);
        fail(t, *this, ip(text), "alice", 3, "g" + std::to_string(sub));
    }
    BOOST_TEST(!t.check(ip("2001:db8:1:ffff::1"), "alice", now).locked);
    BOOST_TEST(t.subjects_of(ip("192.0.2.1")).size == 1u);
    BOOST_TEST(make().subjects_of(ip("2001:db8::1")).size == 3u);
}

BOOST_AUTO_TEST_CASE(prefix_keys_are_apart_from_address_keys)
{
    const ClientAddress a = ip("2001:db8:1:200::1");
    BOOST_TEST((prefix_key(a, 48) == prefix_key(ip("2001:db8:1:ffff::2"), 48)));
    BOOST_TEST((prefix_key(a, 56) == prefix_key(ip("2001:db8:1:2ff::2"), 56)));
    BOOST_TEST((prefix_key(a, 56) != prefix_key(ip("2001:db8:1:300::1"), 56)));
    BOOST_TEST((prefix_key(ip("2001:db8:1::"), 48) != address_key(ip("2001:db8:1::"))));
    BOOST_TEST((prefix_key(a, 48) != prefix_key(a, 56)));
    BOOST_TEST(a.prefix_string(48) == "2001:db8:1::/48");
    BOOST_TEST(a.prefix_string(56) == "2001:db8:1:200::/56");
}

BOOST_AUTO_TEST_SUITE_END()
