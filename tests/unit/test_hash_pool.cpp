// Specification of the hash threads: a hash runs on a thread of its own at
// nice 19 and its answer comes back to the caller; no more threads than the
// maximum, however many callers; a process forked after the threads started
// (they are not in it) hashes in the caller's thread.

#include "auth_proxy/verify/hash_pool.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace auth_proxy;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(hash_pool)

namespace {

/** What a job saw of the thread it ran on. */
struct Seen {
    pid_t thread = 0;
    int nice = -100;
    bool answer = false;
};

bool note_thread(const void *arg) noexcept
{
    auto *seen = static_cast<Seen *>(const_cast<void *>(arg));
    seen->thread = static_cast<pid_t>(::syscall(SYS_gettid));
    seen->nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(seen->thread));
    return seen->answer;
}

/** Counts the jobs running at once and the most ever seen. */
std::atomic<int> running{0};
std::atomic<int> most{0};

bool busy_job(const void *) noexcept
{
    const int now = running.fetch_add(1) + 1;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(5ms);
    running.fetch_sub(1);
    return true;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_hash_runs_at_nice_19_on_another_thread_and_its_answer_comes_back)
{
    const auto me = static_cast<id_t>(::syscall(SYS_gettid));
    const int callers_nice = ::getpriority(PRIO_PROCESS, me); // 0, unless the tests themselves run under nice
    HashPool pool(2);
    for (const bool answer : {true, false}) {
        Seen seen;
        seen.answer = answer;
        BOOST_TEST(pool.run(note_thread, &seen) == answer);
        BOOST_TEST(seen.thread != static_cast<pid_t>(::syscall(SYS_gettid)));
        BOOST_TEST(seen.nice == 19);
    }
    BOOST_TEST(pool.threads() == 1u); // one caller at a time: one thread was enough
    BOOST_TEST(::getpriority(PRIO_PROCESS, me) == callers_nice); // the caller's own priority is left alone
}

BOOST_AUTO_TEST_CASE(without_threads_a_hash_runs_in_the_callers_thread)
{
    HashPool pool(0);
    Seen seen;
    seen.answer = true;
    BOOST_TEST(pool.run(note_thread, &seen));
    BOOST_TEST(seen.thread == static_cast<pid_t>(::syscall(SYS_gettid)));
    BOOST_TEST(pool.threads() == 0u);
}

BOOST_AUTO_TEST_CASE(never_more_threads_than_the_maximum_however_many_callers)
{
    running = 0;
    most = 0;
    HashPool pool(3);
    std::vector<std::thread> callers;
    for (int i = 0; i < 12; ++i) {
        callers.emplace_back([&pool] {
            for (int n = 0; n < 10; ++n) {
                BOOST_REQUIRE(pool.run(busy_job, nullptr));
            }
        });
    }
    for (std::thread &t : callers) {
        t.join();
    }
    BOOST_TEST(pool.threads() <= 3u);
    BOOST_TEST(most.load() <= 3);
    BOOST_TEST(most.load() >= 2); // twelve callers did not queue behind one thread
}

BOOST_AUTO_TEST_CASE(in_a_process_forked_after_the_threads_started_a_hash_runs_in_the_callers_thread)
{
    HashPool pool(1);
    Seen parent;
    BOOST_REQUIRE(!pool.run(note_thread, &parent)); // the parent's thread exists now
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        // The parent's thread is not in this process: the hash runs here.
        Seen child;
        child.answer = true;
        const bool ok = pool.run(note_thread, &child) && child.thread == static_cast<pid_t>(::syscall(SYS_gettid));
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
