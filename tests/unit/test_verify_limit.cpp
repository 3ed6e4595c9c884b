// Specification of the server-wide cap on concurrent hash verifications:
// never more holders than slots, across threads and processes; a bounded
// wait that ends in "shed"; a light key goes before a heavy one; and a
// slot held by a process that died comes back.

#include "auth_proxy/limit/verify_limit.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace auth_proxy;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(verify_limit)

namespace {

/** A shared, zero-filled mapping: what the httpd parent maps before the fork. */
struct SharedMemory {
    std::size_t size;
    void *p;
    explicit SharedMemory(std::size_t bytes)
        : size(bytes), p(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0))
    {
        BOOST_REQUIRE(p != MAP_FAILED);
    }
    ~SharedMemory() { ::munmap(p, size); }
    SharedMemory(const SharedMemory &) = delete;
    SharedMemory &operator=(const SharedMemory &) = delete;
};

/** How many hold a slot at once, and the most ever seen; in shared memory for forked holders. */
struct Occupancy {
    std::atomic<int> now{0};
    std::atomic<int> most{0};
    void enter()
    {
        const int n = now.fetch_add(1) + 1;
        int seen = most.load();
        while (n > seen && !most.compare_exchange_weak(seen, n)) {
        }
    }
    void leave() { now.fetch_sub(1); }
};

ClientAddress address(const std::string &text)
{
    return ClientAddress::parse(text);
}

/** Holds a slot briefly, counting holders, @p rounds times. */
void hold_repeatedly(VerifyLimit &limit, Occupancy &occupancy, int rounds, const std::string &user,
                     const std::string &client)
{
    for (int i = 0; i < rounds; ++i) {
        VerifyLimit::Slot slot = limit.acquire(user, address(client), 30s);
        BOOST_REQUIRE(slot.held());
        occupancy.enter();
        std::this_thread::sleep_for(200us);
        occupancy.leave();
    }
}

/** Polls @p condition until it holds or 10 s pass. */
template <typename F>
bool eventually(F condition)
{
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

/** A forked process that takes a slot (or waits for one) and stays until killed. */
pid_t fork_holder(VerifyLimit &limit, const char *user)
{
    const pid_t pid = ::fork();
    if (pid == 0) {
        VerifyLimit::Slot slot = limit.acquire(user, address("192.0.2.9"), 3600s);
        for (;;) {
            ::pause();
        }
    }
    return pid;
}

void kill_and_reap(pid_t pid)
{
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
}

} // namespace

BOOST_AUTO_TEST_CASE(default_cap_leaves_a_core_for_everything_else)
{
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    BOOST_TEST(VerifyLimit::default_cap() == static_cast<std::uint32_t>(cores > 1 ? cores - 1 : 1));
}

BOOST_AUTO_TEST_CASE(threads_never_hold_more_slots_than_the_cap)
{
    struct Case {
        std::uint32_t cap;
        int threads;
    };
    for (const Case c : {Case{1, 6}, Case{2, 8}, Case{3, 8}}) {
        SharedMemory memory(VerifyLimit::bytes());
        VerifyLimit limit(memory.p, c.cap, CacheSecret{});
        Occupancy occupancy;
        std::vector<std::thread> threads;
        for (int t = 0; t < c.threads; ++t) {
            // Half aim at one user from one prefix, the rest each their own.
            const std::string user = t % 2 == 0 ? "bob" : "user" + std::to_string(t);
            const std::string client = t % 2 == 0 ? "198.51.100.1" : "203.0." + std::to_string(t) + ".1";
            threads.emplace_back([&, user, client] { hold_repeatedly(limit, occupancy, 25, user, client); });
        }
        for (std::thread &t : threads) {
            t.join();
        }
        const VerifyLimitFigures f = limit.figures();
        BOOST_TEST_CONTEXT("cap " << c.cap)
        {
            BOOST_TEST(occupancy.most.load() <= static_cast<int>(c.cap));
            BOOST_TEST(f.peak <= c.cap);
            BOOST_TEST(f.peak >= 1u);
            BOOST_TEST(f.in_use == 0u);
            BOOST_TEST(f.waiting == 0u);
            BOOST_TEST(f.shed == 0u);
        }
    }
}

BOOST_AUTO_TEST_CASE(processes_never_hold_more_slots_than_the_cap)
{
    SharedMemory memory(VerifyLimit::bytes());
    SharedMemory counters(sizeof(Occupancy));
    auto *occupancy = new (counters.p) Occupancy;
    VerifyLimit limit(memory.p, 2, CacheSecret{});
    std::vector<pid_t> children;
    for (int i = 0; i < 5; ++i) {
        const pid_t pid = ::fork();
        BOOST_REQUIRE(pid >= 0);
        if (pid == 0) {
            // Each process with threads of its own, as under the event MPM.
            std::thread a([&] { hold_repeatedly(limit, *occupancy, 15, "bob", "198.51.100.7"); });
            std::thread b([&, i] {
                hold_repeatedly(limit, *occupancy, 15, "u" + std::to_string(i), "203.0.113." + std::to_string(i));
            });
            a.join();
            b.join();
            ::_exit(0);
        }
        children.push_back(pid);
    }
    for (const pid_t pid : children) {
        int status = 0;
        BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
        BOOST_TEST(WIFEXITED(status));
        BOOST_TEST(WEXITSTATUS(status) == 0);
    }
    BOOST_TEST(occupancy->most.load() <= 2);
    BOOST_TEST(limit.figures().peak <= 2u);
    BOOST_TEST(limit.figures().in_use == 0u);
}

BOOST_AUTO_TEST_CASE(a_waiter_past_the_bound_is_shed)
{
    SharedMemory memory(VerifyLimit::bytes());
    VerifyLimit limit(memory.p, 1, CacheSecret{});
    VerifyLimit::Slot held = limit.acquire("alice", address("192.0.2.1"), 0s);
    BOOST_REQUIRE(held.held());

    const VerifyLimit::Slot shed = limit.acquire("bob", address("192.0.2.2"), 20ms);
    BOOST_TEST(!shed.held());
    VerifyLimitFigures f = limit.figures();
    BOOST_TEST(f.shed == 1u);
    BOOST_TEST(f.waits == 1u);
    BOOST_TEST(f.waiting == 0u);
    BOOST_TEST(f.in_use == 1u);

    held.release();
    BOOST_TEST(limit.figures().in_use == 0u);
    BOOST_TEST(limit.acquire("bob", address("192.0.2.2"), 0s).held());
    f = limit.figures();
    BOOST_TEST(f.shed == 1u); // a free slot is taken without waiting
    BOOST_TEST(f.waits == 1u);
}

BOOST_AUTO_TEST_CASE(a_waiter_gets_the_slot_released_within_its_bound)
{
    SharedMemory memory(VerifyLimit::bytes());
    VerifyLimit limit(memory.p, 1, CacheSecret{});
    VerifyLimit::Slot held = limit.acquire("alice", address("192.0.2.1"), 0s);
    std::thread waiter([&] {
        const VerifyLimit::Slot got = limit.acquire("bob", address("192.0.2.2"), 30s);
        BOOST_TEST(got.held());
    });
    BOOST_REQUIRE(eventually([&] { return limit.figures().waiting == 1; }));
    held.release();
    waiter.join();
    BOOST_TEST(limit.figures().shed == 0u);
    BOOST_TEST(limit.figures().waits == 1u);
}

BOOST_AUTO_TEST_CASE(a_light_key_goes_before_a_flood_on_one_key)
{
    struct Case {
        const char *what;
        const char *flood_user; ///< nullptr: a fresh user per guess
        const char *flood_prefix; ///< nullptr: a fresh prefix per guess
    };
    const Case cases[] = {
        {"flood aimed at one user from many prefixes", "bob", nullptr},
        {"flood from one prefix at many users", nullptr, "2001:db8:1:"},
    };
    for (const Case &c : cases) {
        SharedMemory memory(VerifyLimit::bytes());
        VerifyLimit limit(memory.p, 1, CacheSecret{});
        VerifyLimit::Slot held = limit.acquire("warmup", address("192.0.2.1"), 0s);
        std::mutex order_mutex;
        std::vector<std::string> order;
        auto waiter = [&](std::string user, std::string client) {
            VerifyLimit::Slot slot = limit.acquire(user, address(client), 60s);
            BOOST_TEST(slot.held());
            const std::lock_guard<std::mutex> lock(order_mutex);
            order.push_back(user);
        };
        constexpr int kFlood = 40;
        std::vector<std::thread> threads;
        for (int i = 0; i < kFlood; ++i) {
            const std::string user = c.flood_user != nullptr ? c.flood_user : "guess" + std::to_string(i);
            const std::string client = c.flood_prefix != nullptr
                                           ? std::string(c.flood_prefix) + std::to_string(i) + "::1"
                                           : "2001:db8:" + std::to_string(100 + i) + "::1";
            threads.emplace_back(waiter, user, client);
        }
        BOOST_REQUIRE(eventually([&] { return limit.figures().waiting == kFlood; }));
        // The real login comes last, behind every guess.
        threads.emplace_back(waiter, "alice", "192.0.2.50");
        BOOST_REQUIRE(eventually([&] { return limit.figures().waiting == kFlood + 1; }));
        held.release();
        for (std::thread &t : threads) {
            t.join();
        }
        BOOST_TEST_CONTEXT(c.what)
        {
            BOOST_REQUIRE(order.size() == static_cast<std::size_t>(kFlood + 1));
            BOOST_TEST(order.front() == "alice");
            BOOST_TEST(limit.figures().peak == 1u);
        }
    }
}

BOOST_AUTO_TEST_CASE(the_waiting_room_keeps_a_quarter_of_the_workers_free)
{
    BOOST_TEST(VerifyLimit::default_room(50) == 38u);
    BOOST_TEST(VerifyLimit::default_room(150) == 113u);
    BOOST_TEST(VerifyLimit::default_room(3) == 2u);
    BOOST_TEST(VerifyLimit::default_room(1) == 1u);
    BOOST_TEST(VerifyLimit::default_room(1u << 30) == VerifyLimit::kMaxWaiters);
}

BOOST_AUTO_TEST_CASE(a_full_waiting_room_sheds_the_flood_at_once_and_lets_a_real_login_in)
{
    // One slot, held; a room of 3, filled by guesses for bob: a fourth guess
    // is shed at once (it would hold one more worker), and carol, whose key
    // is lighter, takes the place of one of them and gets the slot next.
    SharedMemory memory(VerifyLimit::bytes());
    VerifyLimit limit(memory.p, 1, CacheSecret{}, 3);
    VerifyLimit::Slot held = limit.acquire("alice", address("192.0.2.1"), 0s);
    BOOST_REQUIRE(held.held());
    std::atomic<int> shed_guesses{0};
    std::vector<std::thread> guessers;
    for (int i = 0; i < 3; ++i) {
        guessers.emplace_back([&, i] {
            const VerifyLimit::Slot s = limit.acquire("bob", address("198.51.100." + std::to_string(i)), 30s);
            shed_guesses += s.held() ? 0 : 1;
        });
    }
    BOOST_REQUIRE(eventually([&] { return limit.figures().waiting == 3u; }));

    const auto started = std::chrono::steady_clock::now();
    const VerifyLimit::Slot extra = limit.acquire("bob", address("198.51.100.77"), 30s);
    BOOST_TEST(!extra.held());
    BOOST_TEST((std::chrono::steady_clock::now() - started < 5s)); // shed at once, not after the 30 s bound
    BOOST_TEST(limit.figures().waiting == 3u);

    std::atomic<bool> carol_in{false};
    std::thread carol([&] {
        VerifyLimit::Slot s = limit.acquire("carol", address("203.0.113.5"), 30s);
        carol_in = s.held();
    });
    BOOST_REQUIRE(eventually([&] { return shed_guesses.load() == 1; })); // she took a guesser's place
    BOOST_TEST(limit.figures().waiting == 3u);
    held.release();
    carol.join();
    BOOST_TEST(carol_in.load());
    for (std::thread &t : guessers) {
        t.join();
    }
    const VerifyLimitFigures f = limit.figures();
    BOOST_TEST(f.waiting == 0u);
    BOOST_TEST(f.in_use == 0u);
    BOOST_TEST(f.shed == 2u); // the extra guess and the one carol displaced
}

BOOST_AUTO_TEST_CASE(a_killed_holders_slot_comes_back)
{
    SharedMemory memory(VerifyLimit::bytes());
    VerifyLimit limit(memory.p, 1, CacheSecret{});
    const pid_t holder = fork_holder(limit, "bob");
    BOOST_REQUIRE(holder > 0);
    BOOST_REQUIRE(eventually([&] { return limit.figures().in_use == 1; }));
    BOOST_TEST(!limit.acquire("alice", address("192.0.2.1"), 10ms).held());

    kill_and_reap(holder);
    // A waiter that finds no release for a while looks for dead holders.
    const VerifyLimit::Slot slot = limit.acquire("alice", address("192.0.2.1"), 10s);
    BOOST_TEST(slot.held());
    BOOST_TEST(limit.figures().in_use == 1u);
}

BOOST_AUTO_TEST_CASE(a_killed_waiter_leaves_no_place_behind)
{
    SharedMemory memory(VerifyLimit::bytes());
    VerifyLimit limit(memory.p, 1, CacheSecret{});
    VerifyLimit::Slot held = limit.acquire("alice", address("192.0.2.1"), 0s);
    const pid_t waiter = fork_holder(limit, "bob");
    BOOST_REQUIRE(waiter > 0);
    BOOST_REQUIRE(eventually([&] { return limit.figures().waiting == 1; }));

    kill_and_reap(waiter);
    BOOST_TEST(limit.reclaim_dead() == 1u);
    BOOST_TEST(limit.figures().waiting == 0u);
    BOOST_TEST(limit.figures().in_use == 1u); // the live holder keeps its slot
}

BOOST_AUTO_TEST_SUITE_END()
