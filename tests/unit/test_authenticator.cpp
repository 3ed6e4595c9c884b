// Specification of the authentication policy: every verdict, what each one
// costs in hash verifications, and how the cache and the throttle take
// part. No httpd: the glue only maps these verdicts to statuses and lines.

#include "auth_proxy/authenticator.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sys/mman.h>

using namespace auth_proxy;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(authenticator)

namespace {

// htpasswd -nbB -C 4 alice alice-pw / bob bob-pw; htpasswd -nbs sam sam-pw
const std::string kAlice = "$2y$04$eWw0M1Ae6xRNNe02vAcqLOjkQ7/i85Q3hXPWbp4LUGDTM4mGCS3Ke";
const std::string kBob = "$2y$04$OecULbVElMYfZY6O.9TSXuAlZrqVwIUh1TjpAL7HSrbWzHfH2WXo2";
const std::string kSam = "{SHA}SdVhZmytf1Ws1rU8bbM1WwLutKE=";

const std::string kUsers = "alice:" + kAlice + "\n" + "bob:" + kBob + "\n" + "sam:" + kSam + "\n" +
                           "plain:not-a-hash\n" +
                           "slow:$6$rounds=999999999$abcdefgh$" + std::string(86, 'x') + "\n";

/** Every verification the authenticator asks for: what it would have cost. */
struct Call {
    std::string stored;
    HashFormat format;
};
std::vector<Call> calls;

bool counting_verify(const char *password, const char *stored, HashFormat format) noexcept
{
    calls.push_back(Call{stored, format});
    return verify_password(password, stored, format);
}

std::string basic(const std::string &pair)
{
    return "Basic " + test_support::base64(pair);
}

struct Harness {
    UserFileState users;
    void *counter_memory;
    std::unique_ptr<SharedCounterTable> counters;
    std::unique_ptr<SharedKeySet> failures;
    std::unique_ptr<Throttle> throttle;
    std::unique_ptr<CredentialCache> cache;
    std::unique_ptr<Authenticator> auth;
    Now now{Clock::time_point{} + 1000h, 1700000000LL * 1000000};

    explicit Harness(ThrottlePolicy policy = ThrottlePolicy{}, const std::string &content = kUsers)
    {
        users.index = std::make_shared<const HtpasswdIndex>(content);
        counter_memory = ::mmap(nullptr, SharedCounterTable::bytes_for(256), PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        counters = std::make_unique<SharedCounterTable>(counter_memory, 256, CacheSecret{});
        failures = std::make_unique<SharedKeySet>(1024, policy.window);
        throttle = std::make_unique<Throttle>(std::move(policy), *counters, *failures, CacheSecret{});
        cache = std::make_unique<CredentialCache>(64, 5min, CacheSecret{});
        auth = std::make_unique<Authenticator>(cache.get(), throttle.get(), counting_verify);
        calls.clear();
    }
    ~Harness() { ::munmap(counter_memory, SharedCounterTable::bytes_for(256)); }

    Verdict run(const char *header, const char *client = "192.0.2.1")
    {
        AuthRequest request;
        request.header = header;
        request.client = ClientAddress::parse(client);
        request.now = now;
        CredentialBuffer buffer;
        calls.clear();
        Verdict v = auth->authenticate(users, request, buffer);
        v.user = std::string_view(); // points into the buffer, gone now
        return v;
    }
    Verdict login(const std::string &user, const std::string &password, const char *client = "192.0.2.1")
    {
        const std::string header = basic(user + ":" + password);
        return run(header.c_str(), client);
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(every_verdict_and_what_it_costs)
{
    struct Case {
        const char *rule;
        const char *header;   ///< null: no header; else used as is unless it is a "user:password" pair
        const char *pair;
        Outcome outcome;
        Reason reason;
        std::size_t verifications;
        bool dummy;
    };
    const std::vector<Case> cases = {
        {"no header: a challenge, nothing hashed", nullptr, nullptr, Outcome::challenged, Reason::no_credentials, 0, false},
        {"not Basic", "Bearer abc", nullptr, Outcome::refused, Reason::malformed, 0, false},
        {"not base64", "Basic !!!", nullptr, Outcome::refused, Reason::malformed, 0, false},
        {"the right password", nullptr, "alice:alice-pw", Outcome::admitted, Reason::none, 1, false},
        {"a wrong password", nullptr, "alice:nope", Outcome::refused, Reason::wrong_password, 1, false},
        {"an unknown user costs one dummy verification", nullptr, "mallory:x", Outcome::refused,
         Reason::unknown_user, 1, true},
        {"an entry that is not a hash costs one dummy verification", nullptr, "plain:not-a-hash", Outcome::refused,
         Reason::unusable_entry, 1, true},
        {"an entry over the cost cap is never run, only a dummy", nullptr, "slow:anything", Outcome::refused,
         Reason::unusable_entry, 1, true},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            Harness h;
            const Verdict v = c.pair != nullptr ? h.login(std::string(c.pair).substr(0, std::string(c.pair).find(':')),
                                                          std::string(c.pair).substr(std::string(c.pair).find(':') + 1))
                                                : h.run(c.header);
            BOOST_TEST((v.outcome == c.outcome));
            BOOST_TEST(describe(v.reason) == describe(c.reason));
            BOOST_TEST(calls.size() == c.verifications);
            BOOST_TEST(v.dummy == c.dummy);
            for (const Call &call : calls) {
                BOOST_TEST(call.stored != std::string("not-a-hash"));
                BOOST_TEST(call.stored.rfind("$6$rounds=999999999", 0) != 0u, "ran the over-cap hash");
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(an_unknown_user_costs_what_a_wrong_password_for_a_real_user_costs)
{
    // Most users of the file are bcrypt cost 4: the dummy is bcrypt cost 4 too.
    Harness h;
    h.login("alice", "wrong");
    BOOST_TEST_REQUIRE(calls.size() == 1u);
    const Call real = calls[0];
    h.login("nobody-here", "wrong");
    BOOST_TEST_REQUIRE(calls.size() == 1u);
    const Call dummy = calls[0];
    BOOST_TEST((dummy.format == real.format));
    BOOST_TEST(hash_cost(dummy.stored, dummy.format) == hash_cost(real.stored, real.format));
    BOOST_TEST(dummy.stored != real.stored);
}

BOOST_AUTO_TEST_CASE(a_verified_password_is_served_from_the_cache_and_a_failure_never_is)
{
    Harness h;
    BOOST_TEST(h.login("alice", "alice-pw").verified);
    const Verdict again = h.login("alice", "alice-pw");
    BOOST_TEST((again.outcome == Outcome::admitted));
    BOOST_TEST(again.cache_hit);
    BOOST_TEST(calls.empty());

    h.login("bob", "wrong");
    const Verdict second = h.login("bob", "wrong");
    BOOST_TEST((second.outcome == Outcome::refused));
    BOOST_TEST(!second.cache_hit);
}

BOOST_AUTO_TEST_CASE(the_same_failure_again_is_refused_without_hashing_and_counts_once)
{
    Harness h;
    BOOST_TEST(h.login("alice", "stale").counted.counted);
    for (int i = 0; i < 50; ++i) {
        const Verdict v = h.login("alice", "stale");
        BOOST_TEST(describe(v.reason) == describe(Reason::repeated_failure));
        BOOST_TEST(calls.empty());
    }
    BOOST_TEST((h.login("alice", "alice-pw").outcome == Outcome::admitted)); // never locked out for it
}

BOOST_AUTO_TEST_CASE(a_locked_out_address_learns_nothing_not_even_the_right_password)
{
    Harness h;
    Verdict last;
    for (int i = 0; i < 20; ++i) {
        last = h.login("alice", "guess" + std::to_string(i), "203.0.113.9");
        BOOST_TEST((last.outcome == Outcome::refused));
    }
    BOOST_TEST(last.counted.address_locked_now);
    for (const std::pair<const char *, const char *> &attempt :
         std::vector<std::pair<const char *, const char *>>{{"alice", "alice-pw"}, {"bob", "bob-pw"}, {"nobody", "x"}}) {
        const Verdict v = h.login(attempt.first, attempt.second, "203.0.113.9");
        BOOST_TEST((v.outcome == Outcome::throttled));
        BOOST_TEST(describe(v.reason) == describe(Reason::address_locked));
        BOOST_TEST(v.retry_after.count() == 600);
        BOOST_TEST(calls.empty(), "a throttled request hashed a password");
        BOOST_TEST(!v.cache_hit);
    }
    // Even a password the cache knows is not served to it.
    BOOST_TEST((h.login("alice", "alice-pw", "192.0.2.50").outcome == Outcome::admitted));
    BOOST_TEST((h.login("alice", "alice-pw", "203.0.113.9").outcome == Outcome::throttled));
    // Everyone else is unaffected; after the lockout the address is back.
    BOOST_TEST((h.login("bob", "bob-pw", "192.0.2.51").outcome == Outcome::admitted));
    h.now.steady += 601s;
    h.now.wall_us += 601LL * 1000000;
    BOOST_TEST((h.login("alice", "alice-pw", "203.0.113.9").outcome == Outcome::admitted));
}

BOOST_AUTO_TEST_CASE(unknown_users_and_unusable_entries_count_as_failures_too)
{
    Harness h;
    for (int i = 0; i < 10; ++i) {
        h.login("ghost" + std::to_string(i), "x", "203.0.113.10");
        h.login("plain", "try" + std::to_string(i), "203.0.113.10");
    }
    BOOST_TEST((h.login("alice", "alice-pw", "203.0.113.10").outcome == Outcome::throttled));
}

BOOST_AUTO_TEST_CASE(malformed_headers_and_missing_credentials_are_not_guesses)
{
    Harness h;
    for (int i = 0; i < 100; ++i) {
        h.run(nullptr, "203.0.113.11");
        h.run("Basic %%%", "203.0.113.11");
    }
    BOOST_TEST((h.login("alice", "alice-pw", "203.0.113.11").outcome == Outcome::admitted));
}

BOOST_AUTO_TEST_CASE(a_user_file_that_cannot_be_read_fails_closed)
{
    Harness h;
    h.users.index.reset();
    h.users.error = "could not open password file /x: Permission denied";
    const Verdict v = h.login("alice", "alice-pw");
    BOOST_TEST((v.outcome == Outcome::failed));
    BOOST_TEST(describe(v.reason) == describe(Reason::store_unusable));
    BOOST_TEST(v.detail == h.users.error);
    BOOST_TEST(calls.empty());
}

BOOST_AUTO_TEST_CASE(a_full_throttle_table_refuses_before_any_check_and_keeps_every_lockout)
{
    ThrottlePolicy policy;
    policy.address_limit = 2;
    Harness h(policy); // 256 counters
    BOOST_TEST((h.login("alice", "wrong1", "203.0.113.1").outcome == Outcome::refused));
    BOOST_TEST((h.login("alice", "wrong2", "203.0.113.1").outcome == Outcome::refused));
    BOOST_TEST_REQUIRE((h.login("alice", "alice-pw", "203.0.113.1").outcome == Outcome::throttled));

    std::size_t checked = 0, full = 0;
    for (int i = 0; i < 3000; ++i) {
        const std::string client = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
        const Verdict v = h.login("alice", "guess" + std::to_string(i), client.c_str());
        checked += calls.size();
        if (v.reason == Reason::throttle_full) {
            BOOST_TEST(calls.empty()); // not even a dummy verification
            BOOST_TEST((v.outcome == Outcome::throttled));
            BOOST_TEST(v.retry_after.count() > 0);
            ++full;
        }
    }
    BOOST_TEST(checked <= 255u); // one per counter that was free
    BOOST_TEST(full >= 3000u - 255u);
    BOOST_TEST((h.login("alice", "alice-pw", "203.0.113.1").outcome == Outcome::throttled));
    // A client already counted still gets its own answer; a right password gives its place back.
    BOOST_TEST((h.login("alice", "alice-pw", "10.0.0.1").outcome == Outcome::admitted));
}

BOOST_AUTO_TEST_CASE(without_cache_or_throttle_every_request_is_verified)
{
    UserFileState users;
    users.index = std::make_shared<const HtpasswdIndex>(kUsers);
    const Authenticator bare(nullptr, nullptr, counting_verify);
    for (int i = 0; i < 3; ++i) {
        AuthRequest request;
        const std::string header = basic("alice:alice-pw");
        request.header = header.c_str();
        request.client = ClientAddress::parse("192.0.2.1");
        request.now = Now::current();
        CredentialBuffer buffer;
        calls.clear();
        BOOST_TEST((bare.authenticate(users, request, buffer).outcome == Outcome::admitted));
        BOOST_TEST(calls.size() == 1u);
    }
}

// ---- Stores that check passwords themselves (httpd's authn providers) -------

namespace {

/** A store that answers from a table, and counts what it is asked. */
struct TableStore final : CheckingStore {
    std::string store_name;
    std::vector<std::pair<std::string, std::string>> users; ///< user, password
    bool down = false;
    int asked = 0;
    AnswerTime times;

    explicit TableStore(std::string name, std::vector<std::pair<std::string, std::string>> u = {})
        : store_name(std::move(name)), users(std::move(u))
    {
    }
    std::string_view name() const noexcept override { return store_name; }
    CheckAnswer check(std::string_view user, const char *password) override
    {
        ++asked;
        if (down) {
            return CheckAnswer::error;
        }
        for (const auto &[u, p] : users) {
            if (u == user) {
                return p == password ? CheckAnswer::granted : CheckAnswer::denied;
            }
        }
        return CheckAnswer::user_not_found;
    }
    AnswerTime *answer_time() noexcept override { return &times; }
};

std::chrono::nanoseconds slept{0};
void keep_time(std::chrono::nanoseconds t) noexcept
{
    slept += t;
}

/** The scope most tests ask in: one known configuration. */
constexpr StoreScope kScope{0x5c0be, true};

Verdict run_chain(Harness &h, const std::vector<Store> &stores, const std::string &user, const std::string &password,
                  const char *client = "192.0.2.1", StoreScope scope = kScope)
{
    const std::string header = basic(user + ":" + password);
    AuthRequest request;
    request.header = header.c_str();
    request.client = ClientAddress::parse(client);
    request.now = h.now;
    request.scope = scope;
    CredentialBuffer buffer;
    calls.clear();
    Verdict v = h.auth->authenticate(stores.data(), stores.size(), request, buffer);
    v.user = std::string_view();
    return v;
}

} // namespace

BOOST_AUTO_TEST_CASE(stores_are_asked_in_order_until_one_knows_the_user)
{
    Harness h;
    TableStore ldap("ldap", {{"lara", "lara-pw"}, {"alice", "not-her-file-password"}});
    const std::vector<Store> chain = {{&h.users, nullptr}, {nullptr, &ldap}};

    // In the file: the file answers, the directory is never asked.
    BOOST_TEST((run_chain(h, chain, "alice", "alice-pw").outcome == Outcome::admitted));
    BOOST_TEST((run_chain(h, chain, "alice", "not-her-file-password").outcome == Outcome::refused));
    BOOST_TEST(ldap.asked == 0);

    // Not in the file: the directory answers, and says which store it was.
    const Verdict lara = run_chain(h, chain, "lara", "lara-pw");
    BOOST_TEST((lara.outcome == Outcome::admitted));
    BOOST_TEST(lara.store == 1);
    BOOST_TEST(lara.verified);
    BOOST_TEST(ldap.asked == 1);

    // Nobody knows him: refused, at the cost of a wrong password in the file.
    const Verdict nobody = run_chain(h, chain, "nobody", "x");
    BOOST_TEST(describe(nobody.reason) == describe(Reason::unknown_user));
    BOOST_TEST(nobody.dummy);
    BOOST_TEST(calls.size() == 1u);
    BOOST_TEST(ldap.asked == 2);
}

BOOST_AUTO_TEST_CASE(a_changed_user_file_answers_from_disk_until_its_index_catches_up)
{
    // The served state (kUsers: alice, bob, ...) is the version before the
    // change; on disk alice has bob's hash and bob is gone.
    Harness h;
    test_support::TempDir dir;
    const std::string path = dir.file("users");
    test_support::write_file(path, "alice:" + kBob + "\nsam:" + kSam + "\n");
    const UserFile file(path);
    BOOST_TEST_REQUIRE((h.login("alice", "alice-pw").outcome == Outcome::admitted)); // now in the cache
    const std::vector<Store> changed = {{&h.users, nullptr, &file}};

    const Verdict old_password = run_chain(h, changed, "alice", "alice-pw");
    BOOST_TEST((old_password.outcome == Outcome::refused)); // the cached grant was for the old hash
    BOOST_TEST(!old_password.cache_hit);
    BOOST_TEST((run_chain(h, changed, "alice", "bob-pw").outcome == Outcome::admitted));
    const Verdict removed = run_chain(h, changed, "bob", "bob-pw");
    BOOST_TEST(describe(removed.reason) == describe(Reason::unknown_user));
    // What an unknown user costs is still the whole file's typical hash (bcrypt), not the one user's.
    BOOST_TEST_REQUIRE(calls.size() == 1u);
    BOOST_TEST((calls[0].format == HashFormat::bcrypt));

    // Gone from disk: 500, naming the file, whatever the index held.
    std::remove(path.c_str());
    const Verdict missing = run_chain(h, changed, "sam", "sam-pw");
    BOOST_TEST((missing.outcome == Outcome::failed));
    BOOST_TEST(missing.detail.find(path) != std::string::npos, missing.detail);
}

BOOST_AUTO_TEST_CASE(a_checking_stores_grant_is_cached_per_store_and_its_refusals_never_are)
{
    Harness h;
    TableStore ldap("ldap", {{"lara", "lara-pw"}});
    TableStore dbm("dbm", {{"lara", "lara-pw"}});
    const std::vector<Store> via_ldap = {{nullptr, &ldap}}, via_dbm = {{nullptr, &dbm}};

    BOOST_TEST((run_chain(h, via_ldap, "lara", "lara-pw").outcome == Outcome::admitted));
    const Verdict again = run_chain(h, via_ldap, "lara", "lara-pw");
    BOOST_TEST(again.cache_hit);
    BOOST_TEST(ldap.asked == 1); // one bind per TTL

    // The key names the store: another store's grant is its own.
    BOOST_TEST(!run_chain(h, via_dbm, "lara", "lara-pw").cache_hit);
    BOOST_TEST(dbm.asked == 1);

    // Refused: asked every time a new password comes, never remembered.
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST((run_chain(h, via_ldap, "lara", "wrong" + std::to_string(i)).outcome == Outcome::refused));
    }
    BOOST_TEST(ldap.asked == 4);
    // The same wrong password again: refused without asking the directory.
    const Verdict repeat = run_chain(h, via_ldap, "lara", "wrong0");
    BOOST_TEST(describe(repeat.reason) == describe(Reason::repeated_failure));
    BOOST_TEST(ldap.asked == 4);
}

BOOST_AUTO_TEST_CASE(a_store_that_cannot_answer_fails_closed)
{
    Harness h;
    TableStore ldap("ldap", {{"lara", "lara-pw"}});
    const std::vector<Store> chain = {{&h.users, nullptr}, {nullptr, &ldap}};
    ldap.down = true;
    const Verdict v = run_chain(h, chain, "lara", "lara-pw");
    BOOST_TEST((v.outcome == Outcome::failed));
    BOOST_TEST(describe(v.reason) == describe(Reason::store_error));
    BOOST_TEST(v.detail == "ldap");
    BOOST_TEST(v.store == 1);
    // A user the file knows is not held up by the directory.
    BOOST_TEST((run_chain(h, chain, "alice", "alice-pw").outcome == Outcome::admitted));
    ldap.down = false;
    BOOST_TEST((run_chain(h, chain, "lara", "lara-pw").outcome == Outcome::admitted));
}

BOOST_AUTO_TEST_CASE(with_checking_stores_only_an_unknown_user_waits_as_long_as_a_known_one_is_answered)
{
    ThrottlePolicy policy;
    policy.enabled = false;
    Harness h(policy);
    h.auth = std::make_unique<Authenticator>(h.cache.get(), nullptr, counting_verify, keep_time);
    TableStore ldap("ldap", {{"lara", "lara-pw"}});
    const std::vector<Store> chain = {{nullptr, &ldap}};
    ldap.times.record(std::chrono::milliseconds(20)); // as if binds took 20 ms
    slept = std::chrono::nanoseconds::zero();
    const Verdict v = run_chain(h, chain, "nobody", "x");
    BOOST_TEST(describe(v.reason) == describe(Reason::unknown_user));
    BOOST_TEST(!v.dummy);
    BOOST_TEST(v.padded.count() > 0);
    BOOST_TEST(slept.count() == v.padded.count());
    BOOST_TEST(v.padded.count() <= std::chrono::nanoseconds(std::chrono::milliseconds(20)).count());
    BOOST_TEST(calls.empty());
}

BOOST_AUTO_TEST_CASE(failures_at_a_checking_store_count_towards_a_lockout)
{
    Harness h;
    TableStore ldap("ldap", {{"lara", "lara-pw"}});
    const std::vector<Store> chain = {{nullptr, &ldap}};
    for (int i = 0; i < 20; ++i) {
        run_chain(h, chain, "lara", "guess" + std::to_string(i), "203.0.113.40");
    }
    const int asked = ldap.asked;
    BOOST_TEST((run_chain(h, chain, "lara", "lara-pw", "203.0.113.40").outcome == Outcome::throttled));
    BOOST_TEST(ldap.asked == asked); // not even asked
}

BOOST_AUTO_TEST_CASE(a_checking_stores_answer_is_cached_and_remembered_per_scope)
{
    // Two <Location>s whose AuthDBMUserFiles differ: the provider is "dbm"
    // in both, only the scope tells its configurations apart.
    Harness h;
    TableStore dbm_a("dbm", {{"alice", "alice-pw"}});
    TableStore dbm_b("dbm", {{"alice", "other-pw"}});
    const std::vector<Store> at_a = {{nullptr, &dbm_a}}, at_b = {{nullptr, &dbm_b}};
    const StoreScope a{1, true}, b{2, true};

    BOOST_TEST((run_chain(h, at_a, "alice", "alice-pw", "192.0.2.1", a).outcome == Outcome::admitted));
    BOOST_TEST(run_chain(h, at_a, "alice", "alice-pw", "192.0.2.1", a).cache_hit);
    const Verdict at_b_verdict = run_chain(h, at_b, "alice", "alice-pw", "192.0.2.1", b);
    BOOST_TEST((at_b_verdict.outcome == Outcome::refused));
    BOOST_TEST(!at_b_verdict.cache_hit);
    BOOST_TEST(dbm_b.asked == 1);

    // A failure in one scope is no repeat in another.
    TableStore dbm_c("dbm", {{"carol", "carol-pw"}});
    const std::vector<Store> at_c = {{nullptr, &dbm_c}};
    BOOST_TEST((run_chain(h, at_b, "carol", "carol-pw", "192.0.2.1", b).outcome == Outcome::refused));
    BOOST_TEST((run_chain(h, at_c, "carol", "carol-pw", "192.0.2.1", StoreScope{3, true}).outcome ==
                Outcome::admitted));
    BOOST_TEST(dbm_c.asked == 1);
}

BOOST_AUTO_TEST_CASE(in_an_unknown_scope_the_store_is_asked_every_time)
{
    Harness h;
    TableStore ldap("ldap", {{"lara", "lara-pw"}});
    const std::vector<Store> chain = {{nullptr, &ldap}};
    for (int i = 0; i < 3; ++i) {
        const Verdict v = run_chain(h, chain, "lara", "lara-pw", "192.0.2.1", StoreScope{});
        BOOST_TEST((v.outcome == Outcome::admitted));
        BOOST_TEST(!v.cache_hit);
        const Verdict wrong = run_chain(h, chain, "lara", "stale", "192.0.2.1", StoreScope{});
        BOOST_TEST(describe(wrong.reason) == describe(Reason::wrong_password));
    }
    BOOST_TEST(ldap.asked == 6);
    // Its grants did not reach the cache of a known scope either.
    BOOST_TEST(!run_chain(h, chain, "lara", "lara-pw", "192.0.2.1", StoreScope{0, true}).cache_hit);
}

namespace {

/** A store that grants under another name (AuthLDAPRemoteUserAttribute mail). */
struct RenamingStore final : CheckingStore {
    int asked = 0;
    std::string_view name() const noexcept override { return "ldap"; }
    CheckAnswer check(std::string_view, const char *) override
    {
        ++asked;
        return CheckAnswer::granted_uncacheable;
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_grant_the_cache_could_not_repeat_is_not_cached)
{
    Harness h;
    RenamingStore ldap;
    const std::vector<Store> chain = {{nullptr, &ldap}};
    for (int i = 0; i < 3; ++i) {
        const Verdict v = run_chain(h, chain, "carol", "carol-pw");
        BOOST_TEST((v.outcome == Outcome::admitted));
        BOOST_TEST(!v.cache_hit);
    }
    BOOST_TEST(ldap.asked == 3);
}

BOOST_AUTO_TEST_CASE(a_password_changed_at_a_checking_store_works_once_the_brief_recall_is_over)
{
    Harness h;
    TableStore ldap("ldap", {{"lara", "old-pw"}});
    const std::vector<Store> chain = {{nullptr, &ldap}};
    const Verdict first = run_chain(h, chain, "lara", "new-pw");
    BOOST_TEST(describe(first.reason) == describe(Reason::wrong_password));
    BOOST_TEST(first.counted.counted);

    ldap.users = {{"lara", "new-pw"}}; // set in the directory
    const Verdict soon = run_chain(h, chain, "lara", "new-pw");
    BOOST_TEST(describe(soon.reason) == describe(Reason::repeated_failure));
    BOOST_TEST(ldap.asked == 1);

    h.now.steady += kBriefRecall;
    h.now.wall_us += std::chrono::duration_cast<std::chrono::microseconds>(kBriefRecall).count();
    BOOST_TEST((run_chain(h, chain, "lara", "new-pw").outcome == Outcome::admitted));
    BOOST_TEST(ldap.asked == 2);

    // A stale password resent after the recall is asked again, but counted once per window.
    const Verdict stale = run_chain(h, chain, "lara", "old-pw");
    BOOST_TEST(stale.counted.counted);
    h.now.steady += kBriefRecall;
    const Verdict resent = run_chain(h, chain, "lara", "old-pw");
    BOOST_TEST(describe(resent.reason) == describe(Reason::wrong_password));
    BOOST_TEST(!resent.counted.counted);
    BOOST_TEST(ldap.asked == 4);
}

BOOST_AUTO_TEST_CASE(a_user_files_answer_is_shared_by_every_scope)
{
    // Its key holds the stored hash, which decides the answer on its own.
    Harness h;
    const std::vector<Store> chain = {{&h.users, nullptr}};
    BOOST_TEST((run_chain(h, chain, "alice", "alice-pw", "192.0.2.1", StoreScope{1, true}).outcome ==
                Outcome::admitted));
    BOOST_TEST(run_chain(h, chain, "alice", "alice-pw", "192.0.2.1", StoreScope{2, true}).cache_hit);
    BOOST_TEST(run_chain(h, chain, "alice", "alice-pw", "192.0.2.1", StoreScope{}).cache_hit);
}

BOOST_AUTO_TEST_CASE(passwords_that_share_the_bytes_their_hash_reads_share_an_answer)
{
    // htpasswd -nbB -C 4 long "$(printf 'b%.0s' {1..72})tail-one"; htpasswd -nbd des 'des-pass-word'
    const std::string long72(72, 'b');
    Harness h(ThrottlePolicy{}, "long:$2y$04$.WlThKlfuXStuah.xXJT8uVr3ZBJ/TAmn4L6alimcn1HpkCK1jWmW\n"
                                "des:Xa0e2.FCxvB/I\n");
    struct Case {
        const char *rule;
        std::string user, password;
        Outcome outcome;
        bool cache_hit;
        std::size_t verifications;
    };
    const std::vector<Case> cases = {
        {"bcrypt: the right password, verified", "long", long72 + "tail-one", Outcome::admitted, false, 1},
        {"bcrypt: another tail past byte 72 is the same password", "long", long72 + "another", Outcome::admitted, true, 0},
        {"bcrypt: a wrong password, verified", "long", "x" + long72, Outcome::refused, false, 1},
        {"bcrypt: a different tail of it is the same failure", "long", "x" + long72 + "y", Outcome::refused, false, 0},
        {"bcrypt: 71 of the 72 bytes is another password", "long", long72.substr(0, 71), Outcome::refused, false, 1},
        {"DES: the right password, verified", "des", "des-pass", Outcome::admitted, false, 1},
        {"DES: the ninth byte on is not read", "des", "des-pass-anything", Outcome::admitted, true, 0},
        {"DES: a wrong password, verified", "des", "des-pasX-1", Outcome::refused, false, 1},
        {"DES: a different tail of it is the same failure", "des", "des-pasX-2", Outcome::refused, false, 0},
        // The file's typical format is bcrypt: an unknown name answers as "long" does.
        {"unknown user: a dummy verification", "nobody", long72 + "1", Outcome::refused, false, 1},
        {"unknown user: a different tail is the same failure", "nobody", long72 + "2", Outcome::refused, false, 0},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            const Verdict v = h.login(c.user, c.password);
            BOOST_TEST((v.outcome == c.outcome));
            BOOST_TEST(v.cache_hit == c.cache_hit);
            BOOST_TEST(calls.size() == c.verifications);
        }
    }
}

namespace {

/** The verification slots, over shared memory as the server has them, all held by the test. */
struct BusySlots {
    void *memory = ::mmap(nullptr, VerifyLimit::bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    VerifyLimit limit{memory, 1, CacheSecret{}};
    VerifyLimit::Slot held = limit.acquire("someone-else", ClientAddress::parse("198.51.100.1"), 0s);

    Harness &harness;

    BusySlots(Harness &h, std::chrono::nanoseconds wait) : harness(h) { h.auth->limit_verifications(&limit, wait); }
    ~BusySlots()
    {
        harness.auth->limit_verifications(nullptr, 0s);
        held.release();
        ::munmap(memory, VerifyLimit::bytes());
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(with_every_slot_busy_a_verification_is_shed_unhashed_and_uncounted)
{
    struct Case {
        const char *rule;
        const char *user;
        const char *password;
    };
    const std::vector<Case> cases = {
        {"a wrong password", "alice", "nope"},
        {"the right password, not cached yet", "alice", "alice-pw"},
        {"an unknown user's dummy verification", "mallory", "x"},
        {"an unusable entry's dummy verification", "plain", "not-a-hash"},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            ThrottlePolicy policy;
            policy.address_limit = 2;
            Harness h(policy);
            {
                BusySlots busy(h, 5ms);
                for (int i = 0; i < 5; ++i) {
                    const Verdict v = h.login(c.user, c.password + std::string(i, '!'));
                    BOOST_TEST((v.outcome == Outcome::shed));
                    BOOST_TEST(describe(v.reason) == describe(Reason::no_slot));
                    BOOST_TEST(calls.empty(), "a shed request hashed a password");
                    BOOST_TEST(!v.verified);
                    BOOST_TEST(!v.dummy);
                    BOOST_TEST(!v.counted.counted);
                    BOOST_TEST(v.retry_after.count() == 1); // the wait, rounded up to a second
                    BOOST_TEST((v.waited >= 5ms));
                }
                BOOST_TEST(busy.limit.figures().shed == 5u);
            }
            // None of the five was a guess: two wrong passwords still make the lockout, not one.
            BOOST_TEST(!h.login("alice", "wrong-1").counted.address_locked_now);
            BOOST_TEST(h.login("alice", "wrong-2").counted.address_locked_now);
        }
    }
}

BOOST_AUTO_TEST_CASE(cache_hits_repeats_and_throttle_refusals_never_wait_for_a_slot)
{
    ThrottlePolicy policy;
    policy.address_limit = 2;
    Harness h(policy);
    BOOST_TEST_REQUIRE((h.login("alice", "alice-pw").outcome == Outcome::admitted));
    BOOST_TEST_REQUIRE((h.login("bob", "stale").outcome == Outcome::refused));
    h.login("alice", "guess-1", "203.0.113.9");
    BOOST_TEST_REQUIRE(h.login("alice", "guess-2", "203.0.113.9").counted.address_locked_now);

    // A wait of an hour: any of these that waited would hang the test.
    BusySlots busy(h, 3600s);
    const Verdict cached = h.login("alice", "alice-pw");
    BOOST_TEST((cached.outcome == Outcome::admitted));
    BOOST_TEST(cached.cache_hit);
    const Verdict repeat = h.login("bob", "stale");
    BOOST_TEST(describe(repeat.reason) == describe(Reason::repeated_failure));
    const Verdict locked = h.login("bob", "bob-pw", "203.0.113.9");
    BOOST_TEST((locked.outcome == Outcome::throttled));
    for (const Verdict &v : {cached, repeat, locked}) {
        BOOST_TEST(v.waited.count() == 0);
    }
    BOOST_TEST(busy.limit.figures().waits == 0u);
    BOOST_TEST(calls.empty());
}

BOOST_AUTO_TEST_CASE(a_shed_request_gives_back_the_throttle_room_kept_for_its_failure)
{
    Harness h; // 256 throttle counters
    {
        BusySlots busy(h, 0s);
        for (int i = 0; i < 600; ++i) {
            const std::string client = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
            const Verdict v = h.login("alice", "guess", client.c_str());
            BOOST_TEST_REQUIRE((v.outcome == Outcome::shed), "request " << i << ": " << describe(v.reason));
        }
    }
    // Had each shed request kept its room, the table would be full for a minute.
    const Verdict v = h.login("alice", "wrong", "192.0.2.77");
    BOOST_TEST((v.outcome == Outcome::refused));
    BOOST_TEST(v.counted.counted);
}

BOOST_AUTO_TEST_CASE(with_a_free_slot_a_verification_runs_and_gives_the_slot_back)
{
    Harness h;
    void *memory = ::mmap(nullptr, VerifyLimit::bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    {
        VerifyLimit limit(memory, 1, CacheSecret{});
        h.auth->limit_verifications(&limit, 0s);
        BOOST_TEST((h.login("alice", "alice-pw").outcome == Outcome::admitted));
        BOOST_TEST((h.login("bob", "wrong").outcome == Outcome::refused));
        BOOST_TEST((h.login("nobody", "x").outcome == Outcome::refused));
        BOOST_TEST(limit.figures().in_use == 0u);
        BOOST_TEST(limit.figures().peak == 1u);
        BOOST_TEST(limit.figures().shed == 0u);
        h.auth->limit_verifications(nullptr, 0s);
    }
    ::munmap(memory, VerifyLimit::bytes());
}

BOOST_AUTO_TEST_SUITE_END()
