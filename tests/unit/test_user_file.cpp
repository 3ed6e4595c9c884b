// Specification of a reloadable AuthUserFile: loading, reloading on change,
// failing closed when the file goes away, readers never seeing a partial
// index, and the watcher thread that keeps files current.

#include "auth_proxy/store/file_watcher.hpp"
#include "auth_proxy/store/user_file.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <csignal>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

using auth_proxy::FileSignature;
using auth_proxy::FileWatcher;
using auth_proxy::Logger;
using auth_proxy::LogLevel;
using auth_proxy::stat_signature;
using auth_proxy::UserFile;
using auth_proxy::UserFileRegistry;
using auth_proxy::UserFileState;
using namespace std::chrono_literals;

using test_support::LogCapture;
using test_support::Refusing;
using test_support::TempDir;
using test_support::write_file;

BOOST_AUTO_TEST_SUITE(user_file)

namespace {

const std::string kSha = "{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=";
const std::string kApr1 = "$apr1$jFArcZ5m$wqCp4W1cQBmciHu1wOfG61";



/** Replaces @p path by renaming a new file over it, as htpasswd-like tools do. */
void replace_file(const std::string &path, const std::string &content)
{
    write_file(path + ".new", content);
    std::filesystem::rename(path + ".new", path);
}

/** "<prefix>000:{SHA}...\n" for @p n users. */
std::string user_lines(const std::string &prefix, int n)
{
    std::string out;
    for (int i = 0; i < n; ++i) {
        char name[64];
        std::snprintf(name, sizeof name, "%s%03d", prefix.c_str(), i);
        out += std::string(name) + ":" + kSha + "\n";
    }
    return out;
}

std::string user_name(const std::string &prefix, int i)
{
    char name[64];
    std::snprintf(name, sizeof name, "%s%03d", prefix.c_str(), i);
    return name;
}

bool finds(const std::shared_ptr<const UserFileState> &state, const std::string &user)
{
    return state && state->index && state->index->find(user) != nullptr;
}

/** Waits (up to 20 s) until @p file has @p user, or has not if @p present is false. */
bool eventually_finds(UserFile &file, LogCapture &log, const std::string &user, bool present = true)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (finds(file.state(log.logger()), user) != present && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return finds(file.state(log.logger()), user) == present;
}

/** A registry holding one loaded user file with alice in it: where the watcher tests start. */
struct RegistryWithAlice {
    TempDir dir;
    const std::string path = dir.file("users");
    UserFileRegistry registry;
    LogCapture log;
    UserFile &file = registry.get(path); // no I/O yet

    RegistryWithAlice()
    {
        write_file(path, "alice:" + kApr1 + "\n");
        BOOST_TEST_REQUIRE(finds(file.state(log.logger()), "alice"));
    }
};

} // namespace

// ---- Loading and reloading -----------------------------------------------

BOOST_AUTO_TEST_CASE(first_use_loads_the_file_and_logs_it)
{
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\n");
    LogCapture log;
    UserFile file(path);
    BOOST_TEST(file.path() == path);

    const auto state = file.state(log.logger());
    BOOST_TEST_REQUIRE(state != nullptr);
    BOOST_TEST_REQUIRE(state->index != nullptr);
    BOOST_TEST(state->error.empty());
    BOOST_TEST(state->index->size() == 2u);
    BOOST_TEST(finds(state, "alice"));
    BOOST_TEST(finds(state, "bob"));
    BOOST_TEST(!finds(state, "carol"));
    BOOST_TEST(log.has(LogLevel::info, {"loaded " + path, "2 users"}), log.dump());

    // Later calls return the same state without reading the file again.
    const std::size_t logged = log.size();
    BOOST_TEST(file.state(log.logger()).get() == state.get());
    BOOST_TEST(log.size() == logged);
}

BOOST_AUTO_TEST_CASE(unchanged_file_is_not_reloaded)
{
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\n");
    LogCapture log;
    UserFile file(path);
    const auto state = file.state(log.logger());
    BOOST_TEST(!file.refresh(log.logger()));
    BOOST_TEST(!file.refresh(log.logger()));
    BOOST_TEST(file.state(log.logger()).get() == state.get());
}

BOOST_AUTO_TEST_CASE(changed_file_is_reloaded_and_old_readers_keep_their_state)
{
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\n");
    LogCapture log;
    UserFile file(path);
    const auto before = file.state(log.logger());
    BOOST_TEST_REQUIRE(finds(before, "alice"));

    write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\ncarol:" + kSha + "\n");
    BOOST_TEST(file.refresh(log.logger()));
    const auto after = file.state(log.logger());
    BOOST_TEST(after.get() != before.get());
    BOOST_TEST(finds(after, "carol"));
    BOOST_TEST(after->index->size() == 3u);
    BOOST_TEST(log.has(LogLevel::info, {"reloaded " + path, "3 users"}), log.dump());

    // A request that took the old state before the reload still reads it.
    BOOST_TEST(before->index->size() == 1u);
    BOOST_TEST(finds(before, "alice"));
    BOOST_TEST(!finds(before, "carol"));
    BOOST_TEST(std::string(before->index->find("alice")->hash) == kApr1);
}

BOOST_AUTO_TEST_CASE(removed_user_is_gone_after_reload)
{
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\n");
    LogCapture log;
    UserFile file(path);
    BOOST_TEST_REQUIRE(finds(file.state(log.logger()), "bob"));
    write_file(path, "alice:" + kApr1 + "\n");
    BOOST_TEST(file.refresh(log.logger()));
    BOOST_TEST(!finds(file.state(log.logger()), "bob"));
    BOOST_TEST(finds(file.state(log.logger()), "alice"));
}

BOOST_AUTO_TEST_CASE(file_replaced_by_rename_with_the_same_size_is_reloaded)
{
    TempDir dir;
    const std::string path = dir.file("users");
    const std::string new_hash = "{SHA}AAAAcBGmURe+4zihKsjfuHZgJbQ=";
    BOOST_TEST_REQUIRE(new_hash.size() == kSha.size());
    write_file(path, "alice:" + kSha + "\n");
    LogCapture log;
    UserFile file(path);
    BOOST_TEST_REQUIRE(finds(file.state(log.logger()), "alice"));

    replace_file(path, "alice:" + new_hash + "\n");
    BOOST_TEST(file.refresh(log.logger()));
    const auto state = file.state(log.logger());
    BOOST_TEST_REQUIRE(finds(state, "alice"));
    BOOST_TEST(std::string(state->index->find("alice")->hash) == new_hash);
}

// ---- A change counts once it is on disk ------------------------------------
// Between a change and its new index, a request reads the file itself for
// its one user (UserFile::behind(), read_user()), as mod_authn_file reads it.

BOOST_AUTO_TEST_CASE(a_state_is_behind_as_soon_as_its_file_changes_on_disk)
{
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\n");
    LogCapture log;
    UserFile file(path);
    const auto served = file.state(log.logger());
    BOOST_TEST_REQUIRE(finds(served, "alice"));
    BOOST_TEST(!file.behind(*served));

    replace_file(path, "bob:" + kSha + "\n");
    BOOST_TEST(file.behind(*served)); // no refresh() yet: the state still holds alice
    BOOST_TEST(finds(served, "alice"));
    BOOST_TEST(file.refresh(log.logger()));
    BOOST_TEST(!file.behind(*file.state(log.logger())));

    std::filesystem::remove(path);
    BOOST_TEST(file.behind(*file.state(log.logger())));
}

BOOST_AUTO_TEST_CASE(read_user_answers_from_the_file_as_it_is_now)
{
    struct Case {
        const char *name;
        std::string content; // on disk after the change; "-": removed
        const char *user;
        const char *hash;    // the hash found; null: not found
        const char *error;   // a part of the error; null: an index
    };
    const std::string other = "{SHA}AAAAcBGmURe+4zihKsjfuHZgJbQ=";
    const std::vector<Case> cases = {
        {"a user removed is not found", "bob:" + kSha + "\n", "alice", nullptr, nullptr},
        {"a user added is found", "alice:" + kApr1 + "\ncarol:" + kSha + "\n", "carol", kSha.c_str(), nullptr},
        {"a replaced password is the new one", "alice:" + other + "\n", "alice", other.c_str(), nullptr},
        {"of duplicates the first counts", "alice:" + other + "\nalice:" + kSha + "\n", "alice", other.c_str(), nullptr},
        {"a line over the cap ends the file", std::string(5000, 'x') + "\nalice:" + kSha + "\n", "alice", nullptr, nullptr},
        {"a name is matched whole", "alicea:" + kSha + "\nalic:" + kSha + "\n", "alice", nullptr, nullptr},
        {"a removed file fails closed, naming it", "-", "alice", nullptr, "No such file"},
        {"a directory fails closed", "dir", "alice", nullptr, "Invalid argument"},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.name)
        {
            TempDir dir;
            const std::string path = dir.file("users");
            write_file(path, "alice:" + kApr1 + "\nzed:{SHA}x\n");
            LogCapture log;
            UserFile file(path);
            const auto served = file.state(log.logger());
            BOOST_TEST_REQUIRE(finds(served, "alice"));
            if (c.content == "-") {
                std::filesystem::remove(path);
            }
            else if (c.content == "dir") {
                std::filesystem::remove(path);
                std::filesystem::create_directory(path);
            }
            else {
                replace_file(path, c.content);
            }
            BOOST_TEST(file.behind(*served));
            const auto now = file.read_user(c.user, served.get());
            BOOST_TEST_REQUIRE(now != nullptr);
            if (c.error != nullptr) {
                BOOST_TEST(now->index == nullptr);
                BOOST_TEST(now->error.find(path) != std::string::npos, now->error);
                BOOST_TEST(now->error.find(c.error) != std::string::npos, now->error);
                continue;
            }
            BOOST_TEST_REQUIRE(now->index != nullptr);
            const auto found = now->index->find(c.user);
            BOOST_TEST(bool(found) == (c.hash != nullptr));
            if (found && c.hash != nullptr) {
                BOOST_TEST(std::string(found->hash) == c.hash);
            }
            BOOST_TEST(now->index->size() <= 1); // the one user, never the file
            // An unknown user still pays what the whole file's typical hash costs.
            BOOST_TEST(now->typical.get() == served->index.get());
            // Nothing was published: the served state is the same until refresh().
            BOOST_TEST(file.current().get() == served.get());
        }
    }
}

// ---- Failing closed --------------------------------------------------------

BOOST_AUTO_TEST_CASE(deleted_file_refuses_everyone_and_recreated_file_is_back)
{
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\n");
    LogCapture log;
    UserFile file(path);
    const auto loaded = file.state(log.logger());
    BOOST_TEST_REQUIRE(finds(loaded, "alice"));

    std::filesystem::remove(path);
    BOOST_TEST(file.refresh(log.logger()));
    const auto broken = file.state(log.logger());
    BOOST_TEST_REQUIRE(broken != nullptr);
    BOOST_TEST(broken->index == nullptr);
    BOOST_TEST(broken->error.find(path) != std::string::npos, broken->error);
    BOOST_TEST(broken->error.find("No such file") != std::string::npos, broken->error);
    BOOST_TEST(log.has(LogLevel::error, {path}), log.dump());
    // The request that already held the loaded state is unaffected.
    BOOST_TEST(finds(loaded, "alice"));

    // Still missing: nothing new to publish or to log.
    const std::size_t logged = log.size();
    BOOST_TEST(!file.refresh(log.logger()));
    BOOST_TEST(log.size() == logged);
    BOOST_TEST(file.state(log.logger()).get() == broken.get());

    write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\n");
    BOOST_TEST(file.refresh(log.logger()));
    const auto back = file.state(log.logger());
    BOOST_TEST(back->error.empty());
    BOOST_TEST(finds(back, "alice"));
    BOOST_TEST(finds(back, "bob"));
}

BOOST_AUTO_TEST_CASE(a_file_the_user_cannot_open_is_refused_naming_the_file_and_the_user)
{
    // A root process reads through an opener that is the User: what it
    // refuses is never read, even if this process could read it.
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\n");
    LogCapture log;
    Refusing opener("www-data");
    UserFile file(path);
    file.set_opener(&opener);
    const auto refused = file.state(log.logger());
    BOOST_TEST_REQUIRE(refused != nullptr);
    BOOST_TEST(refused->index == nullptr);
    BOOST_TEST(refused->error == "user file " + path + " cannot be opened by www-data: Permission denied");
    BOOST_TEST(log.has(LogLevel::error, auth_proxy::LogId::file_not_openable, {path, "www-data"}), log.dump());
    const std::size_t logged = log.size();
    BOOST_TEST(!file.refresh(log.logger())); // still refused: said once
    BOOST_TEST(log.size() == logged, log.dump());

    opener.refuse = false; // e.g. the file's mode was fixed
    write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\n");
    BOOST_TEST(file.refresh(log.logger()));
    BOOST_TEST(finds(file.state(log.logger()), "bob"));
}

BOOST_AUTO_TEST_CASE(an_opener_that_does_not_answer_is_reported_as_such)
{
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\n");
    LogCapture log;
    Refusing opener("www-data", ECONNRESET, true);
    UserFile file(path);
    file.set_opener(&opener);
    const auto refused = file.state(log.logger());
    BOOST_TEST(refused->index == nullptr);
    BOOST_TEST(refused->error.find("the opener process did not answer") != std::string::npos, refused->error);
    BOOST_TEST(log.has(LogLevel::error, auth_proxy::LogId::file_opener_failed, {path}), log.dump());
}

BOOST_AUTO_TEST_CASE(missing_file_on_first_use_is_an_error_naming_the_path)
{
    TempDir dir;
    const std::string path = dir.file("never-created");
    LogCapture log;
    UserFile file(path);
    const auto state = file.state(log.logger());
    BOOST_TEST_REQUIRE(state != nullptr);
    BOOST_TEST(state->index == nullptr);
    BOOST_TEST(state->error.find(path) != std::string::npos, state->error);
    BOOST_TEST(log.has(LogLevel::error, {path}), log.dump());
}

BOOST_AUTO_TEST_CASE(a_directory_is_not_a_user_file)
{
    TempDir dir;
    LogCapture log;
    UserFile file(dir.path);
    const auto state = file.state(log.logger());
    BOOST_TEST_REQUIRE(state != nullptr);
    BOOST_TEST(state->index == nullptr);
    BOOST_TEST(state->error.find(dir.path) != std::string::npos, state->error);
    BOOST_TEST(log.has(LogLevel::error, {dir.path}), log.dump());

    // The same error is reported once, not on every refresh.
    const std::size_t logged = log.size();
    BOOST_TEST(!file.refresh(log.logger()));
    BOOST_TEST(log.size() == logged);
    BOOST_TEST(file.state(log.logger())->index == nullptr);
}

BOOST_AUTO_TEST_CASE(line_diagnostics_are_logged_with_path_and_line)
{
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\nnocolon\ncarol:secret\nalice:" + kSha + "\n");
    LogCapture log;
    UserFile file(path);
    BOOST_TEST_REQUIRE(finds(file.state(log.logger()), "alice"));
    BOOST_TEST(log.has(LogLevel::warning, {path + ": 1 malformed lines ignored", "without ':'", "line 2"}), log.dump());
    BOOST_TEST(log.has(LogLevel::warning, {path + " line 3", "'carol'"}), log.dump());
    BOOST_TEST(log.has(LogLevel::info, {path + " line 4", "duplicate", "'alice'"}), log.dump());
}

BOOST_AUTO_TEST_CASE(malformed_lines_make_one_summary_line_per_load)
{
    TempDir dir;
    const std::string path = dir.file("users");
    std::string content = "alice:" + kApr1 + "\n";
    for (int i = 0; i < 5000; ++i) {
        content += "nocolon\n" + std::string("\0\n", 2) + ":empty\n";
    }
    write_file(path, content);
    LogCapture log;
    UserFile file(path);
    BOOST_TEST_REQUIRE(finds(file.state(log.logger()), "alice"));
    BOOST_TEST(log.size() == 2u, log.dump()); // the summary and "loaded"
    BOOST_TEST(log.has(LogLevel::warning, {path + ": 15000 malformed lines ignored: 5000 with a NUL byte (first: line 3), "
                                           "5000 without ':' between user and password hash (first: line 2), "
                                           "5000 with an empty user name (first: line 4)"}),
               log.dump());
}

namespace {

/** Peak resident memory, in KiB, of a child process that runs @p body; @p status: its exit status. */
long child_peak_kib(const std::function<int()> &body, int &status)
{
    const pid_t pid = ::fork();
    BOOST_TEST_REQUIRE(pid >= 0);
    if (pid == 0) {
        int code = 99;
        try {
            code = body();
        }
        catch (...) {
        }
        ::_exit(code);
    }
    struct rusage usage {};
    BOOST_TEST_REQUIRE(::wait4(pid, &status, 0, &usage) == pid);
    return usage.ru_maxrss;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_sparse_gigabyte_is_refused_with_bounded_memory, *boost::unit_test::timeout(120))
{
    TempDir dir;
    const std::string path = dir.file("users");
    {
        std::ofstream(path).close();
        std::filesystem::resize_file(path, std::uint64_t{1} << 30); // sparse: reads as NUL bytes
    }
    struct Case {
        const char *rule;
        std::uint64_t limit;
        const char *logged;
    };
    const std::vector<Case> cases = {
        {"over the size limit: refused unread", auth_proxy::kMaxUserFileBytes, "over the limit of"},
        {"under a raised limit: read until its first line passes the cap",
         std::uint64_t{2} << 30, "longer than 4096 bytes"},
    };
    // What a child that reads nothing peaks at (the process it was forked
    // from, and a sanitizer's runtime, included): the reads add to that.
    int baseline_status = 0;
    const long baseline = child_peak_kib([] { return 0; }, baseline_status);
    BOOST_TEST_REQUIRE(WIFEXITED(baseline_status));
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            int status = 0;
            const long peak = child_peak_kib(
                [&] {
                    LogCapture log;
                    UserFile file(path);
                    file.set_size_limit(c.limit);
                    const auto state = file.state(log.logger());
                    const bool refused = state->index == nullptr || state->index->size() == 0;
                    return refused && log.count(c.logged) == 1 ? 0 : 1;
                },
                status);
            BOOST_TEST(WIFEXITED(status));
            BOOST_TEST(WEXITSTATUS(status) == 0);
            BOOST_TEST(peak - baseline < 64 * 1024, peak << " KiB peak, " << baseline << " KiB without the read");
        }
    }
}

BOOST_AUTO_TEST_CASE(stat_signature_reports_errno_and_size)
{
    TempDir dir;
    const std::string path = dir.file("users");
    FileSignature sig;
    BOOST_TEST(stat_signature(path, sig) == ENOENT);
    write_file(path, "alice:" + kApr1 + "\n");
    BOOST_TEST(stat_signature(path, sig) == 0);
    BOOST_TEST(sig.size == static_cast<std::int64_t>(7 + kApr1.size()));
    FileSignature again;
    BOOST_TEST(stat_signature(path, again) == 0);
    BOOST_TEST((sig == again));
}

// ---- Threads ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(readers_see_the_old_or_the_new_file_never_a_mixture, *boost::unit_test::timeout(60))
{
    // Two versions of distinct sizes; a reader's state must hold exactly one.
    constexpr int kAlpha = 100, kBeta = 150, kRewrites = 50, kReaders = 4;
    const std::string alpha = user_lines("alpha", kAlpha);
    const std::string beta = user_lines("beta", kBeta);

    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, alpha);
    LogCapture log;
    UserFile file(path);
    BOOST_TEST_REQUIRE(file.state(log.logger())->index->size() == static_cast<std::size_t>(kAlpha));

    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> reads{0}, saw_alpha{0}, saw_beta{0}, bad{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < kReaders; ++r) {
        readers.emplace_back([&] {
            const Logger logger = log.logger();
            while (!done.load()) {
                const auto state = file.state(logger);
                if (!state || !state->index) {
                    ++bad;
                    continue;
                }
                const auto &index = *state->index;
                const bool is_alpha = index.find("alpha000") != nullptr;
                const std::string mine = is_alpha ? "alpha" : "beta";
                const std::string other = is_alpha ? "beta" : "alpha";
                const int n = is_alpha ? kAlpha : kBeta;
                bool whole = index.size() == static_cast<std::size_t>(n);
                for (int i = 0; i < n && whole; ++i) {
                    whole = index.find(user_name(mine, i)) != nullptr;
                }
                whole = whole && index.find(user_name(other, 0)) == nullptr &&
                        index.find(user_name(mine, n)) == nullptr;
                if (!whole) {
                    ++bad;
                }
                ++(is_alpha ? saw_alpha : saw_beta);
                ++reads;
            }
        });
    }

    int unnoticed_rewrites = 0;
    const Logger logger = log.logger();
    for (int i = 0; i < kRewrites; ++i) {
        write_file(path, i % 2 == 0 ? beta : alpha);
        if (!file.refresh(logger)) {
            ++unnoticed_rewrites;
        }
        // Let the readers look at this version before the next one.
        const std::uint64_t seen = reads.load();
        const auto deadline = std::chrono::steady_clock::now() + 2s;
        while (reads.load() < seen + kReaders && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
    }
    done = true;
    for (std::thread &t : readers) {
        t.join();
    }

    BOOST_TEST(unnoticed_rewrites == 0);
    BOOST_TEST(bad.load() == 0u);
    BOOST_TEST(saw_alpha.load() > 0u);
    BOOST_TEST(saw_beta.load() > 0u);
    BOOST_TEST(reads.load() >= static_cast<std::uint64_t>(kRewrites));
}

BOOST_AUTO_TEST_CASE(concurrent_first_use_loads_once, *boost::unit_test::timeout(60))
{
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, user_lines("u", 200));
    LogCapture log;
    UserFile file(path);
    std::vector<std::thread> threads;
    std::atomic<int> missing{0};
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            if (!finds(file.state(log.logger()), "u199")) {
                ++missing;
            }
        });
    }
    for (std::thread &t : threads) {
        t.join();
    }
    BOOST_TEST(missing.load() == 0);
    BOOST_TEST(log.has(LogLevel::info, {"loaded " + path}), log.dump());
    BOOST_TEST(!log.has(LogLevel::info, {"reloaded " + path}), log.dump());
}

// ---- Registry and watcher --------------------------------------------------

BOOST_AUTO_TEST_CASE(registry_returns_one_object_per_path)
{
    UserFileRegistry registry;
    UserFile &a = registry.get("/nonexistent/a");
    UserFile &b = registry.get("/nonexistent/b");
    BOOST_TEST(&registry.get("/nonexistent/a") == &a);
    BOOST_TEST(&a != &b);
    BOOST_TEST(a.path() == "/nonexistent/a");
    BOOST_TEST(b.path() == "/nonexistent/b");
    BOOST_TEST(registry.active_count() == 0u); // dormant: nothing read yet
}

BOOST_AUTO_TEST_CASE(refresh_all_loads_every_active_file_and_never_a_dormant_one)
{
    // A file only an AuthType Basic (or Digest) scope names stays dormant:
    // never read, indexed, watched or logged about.
    TempDir dir;
    const std::string one = dir.file("one"), two = dir.file("two"), other = dir.file("digest");
    write_file(one, "alice:" + kApr1 + "\n");
    write_file(two, "bob:" + kSha + "\n");
    write_file(other, "carol:realm:0123456789abcdef0123456789abcdef\n");
    UserFileRegistry registry;
    registry.get(one).activate();
    registry.get(two).activate();
    registry.get(other);
    LogCapture log;
    registry.refresh_all(log.logger());
    BOOST_TEST(registry.active_count() == 2u);
    BOOST_TEST(registry.paths() == (std::vector<std::string>{one, two}));
    BOOST_TEST(log.has(LogLevel::info, {"loaded " + one}), log.dump());
    BOOST_TEST(log.has(LogLevel::info, {"loaded " + two}), log.dump());
    BOOST_TEST(log.count(other) == 0u, log.dump());
    const std::size_t logged = log.size();
    BOOST_TEST(finds(registry.get(one).state(log.logger()), "alice"));
    BOOST_TEST(finds(registry.get(two).state(log.logger()), "bob"));
    BOOST_TEST(log.size() == logged); // state() found them already loaded
}

BOOST_FIXTURE_TEST_CASE(a_replaced_index_is_freed_by_the_loader_not_by_its_last_reader, RegistryWithAlice)
{
    // A request that still holds the old state when a reload swaps it must
    // not be the one to free it (unmapping a large index takes milliseconds).
    auto held = file.state(log.logger());
    const std::weak_ptr<const auth_proxy::HtpasswdIndex> old_index = held->index;
    write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\n");
    BOOST_TEST_REQUIRE(file.refresh(log.logger()));
    BOOST_TEST(finds(file.state(log.logger()), "bob"));
    BOOST_TEST(!old_index.expired()); // the reader still has it

    held.reset(); // the reader is done: nothing is freed in its thread
    BOOST_TEST(!old_index.expired());

    BOOST_TEST(!file.refresh(log.logger())); // the loader's next look, file unchanged
    BOOST_TEST(old_index.expired());

    // Without a reader in the way, a replaced state goes at once.
    const std::weak_ptr<const auth_proxy::HtpasswdIndex> current = file.state(log.logger())->index;
    write_file(path, "alice:" + kApr1 + "\n");
    BOOST_TEST_REQUIRE(file.refresh(log.logger()));
    BOOST_TEST(current.expired());
}

BOOST_FIXTURE_TEST_CASE(watcher_picks_up_a_changed_file, RegistryWithAlice, *boost::unit_test::timeout(60))
{
    {
        FileWatcher watcher(registry, 20ms, log.logger());
        write_file(path, "alice:" + kApr1 + "\nnewbie:" + kSha + "\n");
        // state() never reloads a loaded file itself: only the watcher can.
        BOOST_TEST(eventually_finds(file, log, "newbie"));
        BOOST_TEST(log.eventually_has(LogLevel::info, {"reloaded " + path}), log.dump());
    }
    // The watcher is gone: a later change stays unseen until someone refreshes.
    write_file(path, "alice:" + kApr1 + "\nnewbie:" + kSha + "\nlate:" + kSha + "\n");
    std::this_thread::sleep_for(100ms);
    BOOST_TEST(!finds(file.state(log.logger()), "late"));
    BOOST_TEST(file.refresh(log.logger()));
    BOOST_TEST(finds(file.state(log.logger()), "late"));
}

BOOST_AUTO_TEST_CASE(watcher_is_told_of_changes_without_waiting_for_the_interval, *boost::unit_test::timeout(120))
{
    // The interval is an hour: only a change notification can explain a reload.
    TempDir dir;
    TempDir elsewhere;
    const std::string path = dir.file("users");
    const std::string target = elsewhere.file("real-users");
    const std::string linked = dir.file("linked-users");
    write_file(path, "alice:" + kApr1 + "\n");
    write_file(target, "carol:" + kApr1 + "\n");
    BOOST_TEST_REQUIRE(::symlink(target.c_str(), linked.c_str()) == 0);
    UserFileRegistry registry;
    LogCapture log;
    UserFile &file = registry.get(path);
    UserFile &link = registry.get(linked);
    BOOST_TEST_REQUIRE(finds(file.state(log.logger()), "alice"));
    BOOST_TEST_REQUIRE(finds(link.state(log.logger()), "carol"));

    FileWatcher watcher(registry, std::chrono::hours(1), log.logger());
    BOOST_TEST_REQUIRE(watcher.notified());
    struct Step {
        const char *rule;
        std::function<void()> change;
        UserFile *file;
        const char *user;
        bool present;
    };
    const std::vector<Step> steps = {
        {"edited in place", [&] { write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\n"); }, &file, "bob", true},
        {"replaced by rename",
         [&] {
             write_file(dir.file("users.new"), "dave:" + kSha + "\n");
             std::filesystem::rename(dir.file("users.new"), path);
         },
         &file, "dave", true},
        {"permissions changed",
         [&] {
             if (::geteuid() != 0) { // root reads it anyway: make it a non-file instead
                 std::filesystem::permissions(path, std::filesystem::perms::none);
             }
             else {
                 std::filesystem::remove(path);
                 std::filesystem::create_directory(path);
             }
         },
         &file, "dave", false},
        {"symbolic link's target edited", [&] { write_file(target, "erin:" + kSha + "\n"); }, &link, "erin", true},
    };
    for (const Step &step : steps) {
        BOOST_TEST_CONTEXT(step.rule)
        {
            step.change();
            BOOST_TEST(eventually_finds(*step.file, log, step.user, step.present), log.dump());
        }
    }
}

BOOST_FIXTURE_TEST_CASE(watcher_ignores_other_files_in_the_directory, RegistryWithAlice,
                        *boost::unit_test::timeout(60))
{
    FileWatcher watcher(registry, std::chrono::hours(1), log.logger());
    // Our file changes without an event we listen for (written, not yet
    // closed), then a neighbour is written and closed: that wakes the
    // watcher, but names another file, so ours is not looked at.
    std::ofstream open_writer(path, std::ios::binary | std::ios::app);
    open_writer << "bob:" << kSha << "\n";
    open_writer.flush();
    write_file(dir.file("unrelated"), "x");
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(!finds(file.state(log.logger()), "bob"));
    // Closing it is the event that counts.
    open_writer.close();
    BOOST_TEST(eventually_finds(file, log, "bob"));
}

BOOST_AUTO_TEST_CASE(watcher_destructor_does_not_wait_out_the_interval, *boost::unit_test::timeout(60))
{
    UserFileRegistry registry;
    LogCapture log;
    const auto started = std::chrono::steady_clock::now();
    {
        FileWatcher watcher(registry, std::chrono::hours(1), log.logger());
        std::this_thread::sleep_for(10ms);
    }
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    BOOST_TEST(took.count() < 30000, "stopping took " << took.count() << " ms");
    BOOST_TEST(log.size() == 0u);
}

BOOST_FIXTURE_TEST_CASE(stopped_watcher_no_longer_refreshes, RegistryWithAlice, *boost::unit_test::timeout(60))
{
    FileWatcher watcher(registry, 20ms, log.logger());
    watcher.stop();
    watcher.stop(); // a second stop (and the destructor's) is harmless
    write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\n");
    std::this_thread::sleep_for(150ms);
    BOOST_TEST(!finds(file.state(log.logger()), "bob"));
}

namespace {

FileWatcher *signalled_watcher = nullptr;

void stop_from_signal_handler(int)
{
    signalled_watcher->request_stop();
}

/** A log sink that, once armed, blocks the reporting thread until released. */
struct BlockingLog {
    int entered[2] = {-1, -1};  ///< the watcher thread writes here when it blocks
    int release[2] = {-1, -1};  ///< the test writes here to let it go on
    std::atomic<bool> armed{false};

    BlockingLog()
    {
        if (::pipe(entered) != 0 || ::pipe(release) != 0) {
            throw std::runtime_error("pipe");
        }
    }
    Logger logger()
    {
        Logger log;
        log.sink = [](void *ctx, LogLevel, auth_proxy::LogId, const std::string &) {
            auto *self = static_cast<BlockingLog *>(ctx);
            if (self->armed.exchange(false)) {
                char c = 'x';
                if (::write(self->entered[1], &c, 1) == 1 && ::read(self->release[0], &c, 1) == 1) {
                }
            }
        };
        log.ctx = this;
        return log;
    }
};

/** The scenario of prefork's just_die(), run in a child process; exits 0 if the handler returned. */
[[noreturn]] void stop_while_the_watcher_is_busy(const std::string &path)
{
    BlockingLog blocking;
    UserFileRegistry registry;
    UserFile &file = registry.get(path);
    file.state(Logger{});
    FileWatcher watcher(registry, std::chrono::hours(1), blocking.logger());
    signalled_watcher = &watcher;
    std::signal(SIGUSR1, stop_from_signal_handler);

    // The watcher reloads and, while reporting it, waits for this thread.
    blocking.armed = true;
    write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\n");
    char c;
    if (::read(blocking.entered[0], &c, 1) != 1) {
        std::_Exit(3);
    }
    // The signal arrives now. A handler that joined the thread would wait
    // for it forever: the thread waits for this one.
    std::raise(SIGUSR1);
    c = 'y';
    if (::write(blocking.release[1], &c, 1) != 1) {
        std::_Exit(4);
    }
    watcher.stop(); // outside the handler, joining is fine
    std::_Exit(0);
}

} // namespace

BOOST_AUTO_TEST_CASE(a_stop_requested_from_a_signal_handler_never_waits_for_the_watcher_thread,
                     *boost::unit_test::timeout(120))
{
    // prefork runs pchild's cleanups inside its SIGTERM handler (just_die),
    // while the main thread may hold anything the watcher thread needs.
    TempDir dir;
    const std::string path = dir.file("users");
    write_file(path, "alice:" + kApr1 + "\n");
    const pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    if (child == 0) {
        stop_while_the_watcher_is_busy(path);
    }
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    pid_t done = 0;
    while ((done = ::waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    if (done == 0) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
        BOOST_FAIL("the signal handler waited for the watcher thread (deadlock)");
    }
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
}

BOOST_FIXTURE_TEST_CASE(a_stuck_log_never_holds_up_a_reload, RegistryWithAlice, *boost::unit_test::timeout(120))
{
    // An error log can block for long (a piped logger that stopped reading,
    // a journal commit). The interval is an hour: only change notifications
    // explain the reloads, and the log stays stuck through all of them.
    BlockingLog stuck;
    FileWatcher watcher(registry, std::chrono::hours(1), stuck.logger());
    stuck.armed = true;
    write_file(path, "alice:" + kApr1 + "\nbob:" + kSha + "\n");
    char c = 0;
    BOOST_TEST_REQUIRE(::read(stuck.entered[0], &c, 1) == 1); // the log is stuck on this reload's line
    BOOST_TEST(finds(file.state(log.logger()), "bob"), "in use before it is logged");
    replace_file(path, "carol:" + kSha + "\n");
    BOOST_TEST(eventually_finds(file, log, "carol"), "the next reload does not wait for the log");
    BOOST_TEST(!finds(file.state(log.logger()), "alice"));
    c = 'y';
    BOOST_TEST_REQUIRE(::write(stuck.release[1], &c, 1) == 1);
    watcher.stop();
}

BOOST_AUTO_TEST_SUITE_END()
