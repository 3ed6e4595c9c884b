// Specification of the counters operators watch: which verdict moves which
// counter, that every process counts into one block, that a user file's
// change is one reload for the whole server however many processes see it,
// and the three ways the counters are written out.

#include "auth_proxy/authenticator.hpp"
#include "auth_proxy/metrics.hpp"
#include "auth_proxy/metrics_report.hpp"
#include "auth_proxy/store/user_file.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace auth_proxy;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(metrics)

namespace {

/** A zero-filled shared block, as the httpd parent maps it. */
struct SharedBlock {
    void *memory;
    SharedBlock()
        : memory(::mmap(nullptr, Metrics::bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0))
    {
        BOOST_TEST_REQUIRE(memory != MAP_FAILED);
    }
    ~SharedBlock() { ::munmap(memory, Metrics::bytes()); }
    SharedBlock(const SharedBlock &) = delete;
    SharedBlock &operator=(const SharedBlock &) = delete;
};

Verdict verdict(Outcome outcome, Reason reason)
{
    Verdict v;
    v.outcome = outcome;
    v.reason = reason;
    return v;
}

FileSignature version(std::int64_t size)
{
    FileSignature s;
    s.device = 1;
    s.inode = 2;
    s.size = size;
    s.mtime_ns = 3;
    s.ctime_ns = 4;
    return s;
}

/** The value of @p key in status_lines() output, or -1 if there is no such line. */
long long status_value(const std::string &lines, const std::string &key)
{
    const std::string prefix = key + ": ";
    for (std::size_t at = 0; at < lines.size();) {
        const std::size_t end = lines.find('\n', at);
        const std::string line = lines.substr(at, end - at);
        if (line.compare(0, prefix.size(), prefix) == 0) {
            return std::stoll(line.substr(prefix.size()));
        }
        at = end == std::string::npos ? lines.size() : end + 1;
    }
    return -1;
}

bool contains(const std::string &text, const std::string &piece)
{
    return text.find(piece) != std::string::npos;
}

} // namespace

// ---- What a verdict counts as ----------------------------------------------

BOOST_AUTO_TEST_CASE(each_verdict_moves_exactly_its_own_counter)
{
    struct Row {
        const char *rule;
        Verdict v;
        const char *key; ///< the one ?auto counter that moves
    };
    const std::vector<Row> rows = {
        {"admitted", verdict(Outcome::admitted, Reason::none), "AuthProxyAdmitted"},
        {"no credentials", verdict(Outcome::challenged, Reason::no_credentials), "AuthProxyFailuresNoCredentials"},
        {"malformed", verdict(Outcome::refused, Reason::malformed), "AuthProxyFailuresMalformed"},
        {"unknown user", verdict(Outcome::refused, Reason::unknown_user), "AuthProxyFailuresUnknownUser"},
        {"wrong password", verdict(Outcome::refused, Reason::wrong_password), "AuthProxyFailuresWrongPassword"},
        {"a repeat", verdict(Outcome::refused, Reason::repeated_failure), "AuthProxyFailuresRepeated"},
        {"unusable entry", verdict(Outcome::refused, Reason::unusable_entry), "AuthProxyFailuresUnusableEntry"},
        {"address locked", verdict(Outcome::throttled, Reason::address_locked), "AuthProxyFailuresThrottled"},
        {"user locked", verdict(Outcome::throttled, Reason::user_locked), "AuthProxyFailuresThrottled"},
        {"user file unusable", verdict(Outcome::failed, Reason::store_unusable), "AuthProxyFailuresFileUnusable"},
        {"store error: a reason of its own", verdict(Outcome::failed, Reason::store_error),
         "AuthProxyFailuresStoreError"},
        {"a replayed token", verdict(Outcome::refused, Reason::replayed), "AuthProxyFailuresTicketRefused"},
        {"an expired ticket", verdict(Outcome::refused, Reason::ticket_expired), "AuthProxyFailuresTicketRefused"},
        {"a ticket for another service", verdict(Outcome::refused, Reason::wrong_service),
         "AuthProxyFailuresTicketRefused"},
        {"a principal with no local name", verdict(Outcome::refused, Reason::no_local_name),
         "AuthProxyFailuresTicketRefused"},
        {"the Kerberos acceptor failing: a store error", verdict(Outcome::failed, Reason::acceptor_error),
         "AuthProxyFailuresStoreError"},
    };
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            SharedBlock block;
            Metrics metrics(block.memory);
            const std::string before = status_lines(MetricsReport{metrics.snapshot(), {}});
            metrics.count(row.v);
            const std::string after = status_lines(MetricsReport{metrics.snapshot(), {}});
            BOOST_TEST(status_value(after, row.key) == 1);
            // Everything else stays where it was.
            std::size_t changed = 0;
            for (std::size_t a = 0, b = 0; a < before.size() && b < after.size();) {
                const std::size_t ea = before.find('\n', a), eb = after.find('\n', b);
                changed += before.compare(a, ea - a, after, b, eb - b) != 0 ? 1 : 0;
                a = ea + 1;
                b = eb + 1;
            }
            BOOST_TEST(changed == 1u);
        }
    }
}

BOOST_AUTO_TEST_CASE(every_reason_but_none_is_a_counted_failure)
{
    const Reason all[] = {Reason::no_credentials, Reason::malformed,      Reason::unknown_user,
                          Reason::unusable_entry, Reason::wrong_password, Reason::repeated_failure,
                          Reason::address_locked, Reason::user_locked,    Reason::store_unusable,
                          Reason::store_error,    Reason::replayed,       Reason::ticket_expired,
                          Reason::wrong_service,  Reason::no_local_name,  Reason::acceptor_error};
    for (const Reason r : all) {
        Failure f;
        BOOST_TEST(failure_of(r, f), describe(r));
    }
    Failure f;
    BOOST_TEST(!failure_of(Reason::none, f));
}

BOOST_AUTO_TEST_CASE(a_shed_request_is_no_failure_and_moves_no_counter_of_the_snapshot)
{
    // Nothing was checked: the VerifyLimit counts it as shed, and that is all.
    Failure f;
    BOOST_TEST(!failure_of(Reason::no_slot, f));
    SharedBlock block;
    Metrics metrics(block.memory);
    const std::string before = status_lines(MetricsReport{metrics.snapshot(), {}});
    Verdict shed = verdict(Outcome::shed, Reason::no_slot);
    shed.retry_after = std::chrono::seconds(2);
    metrics.count(shed);
    BOOST_TEST(status_lines(MetricsReport{metrics.snapshot(), {}}) == before);
}

BOOST_AUTO_TEST_CASE(verifications_count_by_format_with_their_time_and_stores_without_a_hash_do_not)
{
    SharedBlock block;
    Metrics metrics(block.memory);
    Verdict real = verdict(Outcome::refused, Reason::wrong_password);
    real.verified = true;
    real.format = HashFormat::bcrypt;
    real.hashing = 1500ms;
    Verdict dummy = verdict(Outcome::refused, Reason::unknown_user);
    dummy.dummy = true;
    dummy.format = HashFormat::bcrypt;
    dummy.hashing = 500ms;
    Verdict cached = verdict(Outcome::admitted, Reason::none);
    cached.cache_hit = true;
    cached.format = HashFormat::sha512_crypt; // known, but nothing ran
    Verdict directory = verdict(Outcome::admitted, Reason::none);
    directory.verified = true; // an LDAP bind: no format of ours
    for (const Verdict &v : {real, dummy, cached, directory}) {
        metrics.count(v);
    }
    const MetricsSnapshot s = metrics.snapshot();
    BOOST_TEST(s.verifications[static_cast<std::size_t>(HashFormat::bcrypt)] == 2u);
    BOOST_TEST(s.verification_ns[static_cast<std::size_t>(HashFormat::bcrypt)] == 2000000000u);
    BOOST_TEST(s.verifications[static_cast<std::size_t>(HashFormat::sha512_crypt)] == 0u);
    BOOST_TEST(s.verifications[static_cast<std::size_t>(HashFormat::unknown)] == 0u);
    BOOST_TEST(s.admitted == 2u);
    const std::string lines = status_lines(MetricsReport{s, {}});
    BOOST_TEST(contains(lines, "AuthProxyVerificationSecondsBcrypt: 2.000000\n"));
}

BOOST_AUTO_TEST_CASE(a_lockout_is_counted_once_when_it_starts)
{
    SharedBlock block;
    Metrics metrics(block.memory);
    Verdict started = verdict(Outcome::refused, Reason::wrong_password);
    started.counted.address_locked_now = true;
    Verdict both = started;
    both.counted.user_locked_now = true;
    metrics.count(started);
    metrics.count(both);
    metrics.count(verdict(Outcome::throttled, Reason::address_locked)); // a request while locked out
    const MetricsSnapshot s = metrics.snapshot();
    BOOST_TEST(s.address_lockouts == 2u);
    BOOST_TEST(s.user_lockouts == 1u);
    BOOST_TEST(s.failure(Failure::wrong_password) == 2u);
    BOOST_TEST(s.failure(Failure::throttled) == 1u);
}

BOOST_AUTO_TEST_CASE(a_full_throttle_table_counts_each_refusal_and_each_uncounted_failure)
{
    SharedBlock block;
    Metrics metrics(block.memory);
    metrics.count(verdict(Outcome::throttled, Reason::throttle_full));
    Verdict lost = verdict(Outcome::refused, Reason::wrong_password);
    lost.counted.unrecorded = true;
    metrics.count(lost);
    metrics.count(verdict(Outcome::throttled, Reason::address_locked));
    const MetricsSnapshot s = metrics.snapshot();
    BOOST_TEST(s.throttle_full == 2u);
    BOOST_TEST(s.failure(Failure::throttled) == 2u); // a 429 either way
}

BOOST_AUTO_TEST_CASE(the_authenticators_verdicts_and_the_cache_count_into_the_block)
{
    // htpasswd -nbB -C 4 alice alice-pw
    const std::string users = "alice:$2y$04$eWw0M1Ae6xRNNe02vAcqLOjkQ7/i85Q3hXPWbp4LUGDTM4mGCS3Ke\n";
    SharedBlock block;
    Metrics metrics(block.memory);
    UserFileState file;
    file.index = std::make_shared<const HtpasswdIndex>(users);
    CredentialCache cache(64, 5min, CacheSecret{});
    cache.count_into(metrics.cache_counters());
    const Authenticator auth(&cache, nullptr);
    auto login = [&](const std::string &pair) {
        const std::string header = "Basic " + test_support::base64(pair);
        AuthRequest request;
        request.header = header.c_str();
        request.now = Now::current();
        CredentialBuffer buffer;
        metrics.count(auth.authenticate(file, request, buffer));
    };
    login("alice:alice-pw"); // verified, remembered
    login("alice:alice-pw"); // from the cache
    login("alice:wrong");    // a miss, verified
    login("mallory:x");      // unknown: a dummy, the cache not asked
    const MetricsSnapshot s = metrics.snapshot();
    BOOST_TEST(s.admitted == 2u);
    BOOST_TEST(s.cache_hits == 1u);
    BOOST_TEST(s.cache_misses == 2u);
    BOOST_TEST(s.cache_evictions == 0u);
    BOOST_TEST(s.failure(Failure::wrong_password) == 1u);
    BOOST_TEST(s.failure(Failure::unknown_user) == 1u);
    BOOST_TEST(s.verifications[static_cast<std::size_t>(HashFormat::bcrypt)] == 3u);
    BOOST_TEST(s.verification_ns[static_cast<std::size_t>(HashFormat::bcrypt)] > 0u);
}

BOOST_AUTO_TEST_CASE(processes_forked_after_the_block_was_mapped_count_into_the_same_numbers,
                     *boost::unit_test::timeout(60))
{
    SharedBlock block;
    Metrics metrics(block.memory);
    metrics.count(verdict(Outcome::admitted, Reason::none));
    const pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    if (child == 0) {
        for (int i = 0; i < 1000; ++i) {
            metrics.count(verdict(Outcome::admitted, Reason::none));
        }
        ::_exit(0);
    }
    for (int i = 0; i < 1000; ++i) {
        metrics.count(verdict(Outcome::admitted, Reason::none));
    }
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(child, &status, 0) == child);
    BOOST_TEST(metrics.snapshot().admitted == 2001u);
    // Another object over the same block (a new configuration cycle) sees them too.
    BOOST_TEST(Metrics(block.memory).snapshot().admitted == 2001u);
}

// ---- Reloads: once per change for the whole server -------------------------

BOOST_AUTO_TEST_CASE(a_version_is_counted_once_however_many_processes_report_it)
{
    SharedBlock block;
    Metrics metrics(block.memory);
    const std::string path = "/etc/users";
    BOOST_TEST(metrics.snapshot().last_reload_unix_ns == 0u); // no reload yet: 0, not the epoch of a start
    const auto before = std::chrono::system_clock::now();
    BOOST_TEST(!metrics.file_indexed(path, version(10), false, 1ms)); // the first read of a cycle
    BOOST_TEST(!metrics.file_indexed(path, version(10), true, 1ms));  // a process catching up
    BOOST_TEST(metrics.file_indexed(path, version(11), true, 250ms)); // the change
    BOOST_TEST(!metrics.file_indexed(path, version(11), true, 3ms));  // every other process
    BOOST_TEST(metrics.file_indexed("/etc/other", version(11), true, 7ms)); // another file, its own count
    MetricsSnapshot s = metrics.snapshot();
    BOOST_TEST(s.reloads == 2u);
    BOOST_TEST(s.last_reload_ns == 7000000u);
    const auto unix_ns = [](std::chrono::system_clock::time_point t) {
        return static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
    };
    BOOST_TEST(s.last_reload_unix_ns >= unix_ns(before));
    BOOST_TEST(s.last_reload_unix_ns <= unix_ns(std::chrono::system_clock::now()));
    BOOST_TEST(s.reload_failures == 0u);

    BOOST_TEST(metrics.file_unusable(path, "could not open password file /etc/users: No such file", true));
    BOOST_TEST(!metrics.file_unusable(path, "could not open password file /etc/users: No such file", true));
    BOOST_TEST(metrics.file_unusable(path, "could not open password file /etc/users: Permission denied", true));
    BOOST_TEST(metrics.file_indexed(path, version(12), true, 1ms)); // back
    BOOST_TEST(metrics.file_unusable(path, "could not open password file /etc/users: No such file", true));
    s = metrics.snapshot();
    BOOST_TEST(s.reloads == 3u);
    BOOST_TEST(s.reload_failures == 3u);
}

BOOST_AUTO_TEST_CASE(user_files_in_two_processes_count_one_reload_per_change, *boost::unit_test::timeout(60))
{
    // Two UserFile objects stand for two server processes reading one file.
    test_support::TempDir dir;
    const std::string path = dir.file("users");
    test_support::write_file(path, "alice:{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=\n");
    SharedBlock block;
    Metrics metrics(block.memory);
    test_support::LogCapture log;
    UserFile first(path), second(path);
    first.set_metrics(&metrics);
    second.set_metrics(&metrics);
    BOOST_TEST(first.refresh(log.logger()));
    BOOST_TEST(second.refresh(log.logger()));
    BOOST_TEST(metrics.snapshot().reloads == 0u); // loaded at start: no reload

    test_support::write_file(path, "alice:{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=\nbob:{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=\n");
    BOOST_TEST(first.refresh(log.logger()));
    BOOST_TEST(second.refresh(log.logger()));
    BOOST_TEST(metrics.snapshot().reloads == 1u);

    ::unlink(path.c_str());
    BOOST_TEST(first.refresh(log.logger()));
    BOOST_TEST(second.refresh(log.logger()));
    BOOST_TEST(metrics.snapshot().reload_failures == 1u);
    BOOST_TEST(metrics.snapshot().reloads == 1u);
}

// ---- The three views ----------------------------------------------------------

namespace {

MetricsReport sample()
{
    MetricsReport r;
    r.counters.admitted = 12;
    r.counters.failures[static_cast<std::size_t>(Failure::wrong_password)] = 3;
    r.counters.cache_hits = 9;
    r.counters.verifications[static_cast<std::size_t>(HashFormat::apr1_md5)] = 4;
    r.counters.verification_ns[static_cast<std::size_t>(HashFormat::apr1_md5)] = 1234567890;
    r.counters.address_lockouts = 1;
    r.counters.throttle_full = 5;
    r.counters.reloads = 2;
    r.counters.last_reload_ns = 5000000;
    r.counters.last_reload_unix_ns = 1796630400123456789; // 2026-12-07T08:00:00.123456789Z
    r.files.push_back(FileFigures{"/etc/apache2/users", 3, 4096, true});
    r.files.push_back(FileFigures{"/etc/apache2/broken", 0, 0, false});
    r.verify_limit.cap = 3;
    r.verify_limit.in_use = 2;
    r.verify_limit.peak = 3;
    r.verify_limit.waiting = 17;
    r.verify_limit.waits = 40;
    r.verify_limit.wait_ns = 2500000000;
    r.verify_limit.shed = 6;
    return r;
}

} // namespace

BOOST_AUTO_TEST_CASE(status_lines_have_stable_names_one_per_counter)
{
    const std::string lines = status_lines(sample());
    struct Row {
        const char *key;
        long long value;
    };
    const std::vector<Row> rows = {
        {"AuthProxyAdmitted", 12},
        {"AuthProxyFailuresNoCredentials", 0},
        {"AuthProxyFailuresMalformed", 0},
        {"AuthProxyFailuresUnknownUser", 0},
        {"AuthProxyFailuresWrongPassword", 3},
        {"AuthProxyFailuresRepeated", 0},
        {"AuthProxyFailuresUnusableEntry", 0},
        {"AuthProxyFailuresThrottled", 0},
        {"AuthProxyFailuresFileUnusable", 0},
        {"AuthProxyFailuresStoreError", 0},
        {"AuthProxyFailuresTicketRefused", 0},
        {"AuthProxyCacheHits", 9},
        {"AuthProxyCacheMisses", 0},
        {"AuthProxyCacheEvictions", 0},
        {"AuthProxyVerificationsBcrypt", 0},
        {"AuthProxyVerificationsApr1Md5", 4},
        {"AuthProxyVerificationsSha1", 0},
        {"AuthProxyVerificationsCryptDes", 0},
        {"AuthProxyVerificationsMd5Crypt", 0},
        {"AuthProxyVerificationsSha256Crypt", 0},
        {"AuthProxyVerificationsSha512Crypt", 0},
        {"AuthProxyLockoutsAddress", 1},
        {"AuthProxyLockoutsUser", 0},
        {"AuthProxyThrottleFull", 5},
        {"AuthProxyReloads", 2},
        {"AuthProxyReloadFailures", 0},
        {"AuthProxyVerifySlots", 3},
        {"AuthProxyVerifySlotsInUse", 2},
        {"AuthProxyVerifySlotsPeak", 3},
        {"AuthProxyVerifyWaiting", 17},
        {"AuthProxyVerifyWaits", 40},
        {"AuthProxyVerifyShed", 6},
        {"AuthProxyUserFileUsable(/etc/apache2/users)", 1},
        {"AuthProxyUserFileUsable(/etc/apache2/broken)", 0},
        {"AuthProxyUsers(/etc/apache2/users)", 3},
        {"AuthProxyUsers(/etc/apache2/broken)", 0},
        {"AuthProxyIndexBytes(/etc/apache2/users)", 4096},
        {"AuthProxyIndexBytes(/etc/apache2/broken)", 0},
    };
    for (const Row &row : rows) {
        BOOST_TEST(status_value(lines, row.key) == row.value, row.key);
    }
    BOOST_TEST(contains(lines, "\nAuthProxyVerificationSecondsApr1Md5: 1.234567\n"));
    BOOST_TEST(contains(lines, "\nAuthProxyLastReloadDurationSeconds: 0.005000\n"));
    BOOST_TEST(contains(lines, "\nAuthProxyLastReloadTimestampSeconds: 1796630400.123456\n"));
    BOOST_TEST(contains(lines, "\nAuthProxyVerifyWaitSeconds: 2.500000\n"));
    // HashFormat::unknown is never counted, so never shown.
    BOOST_TEST(!contains(lines, "VerificationsUnknown"));
    BOOST_TEST(!contains(lines, "SecondsUnknown"));
    // One line per counter, each "Key: value".
    std::size_t count = 0;
    for (const char c : lines) {
        count += c == '\n' ? 1 : 0;
    }
    BOOST_TEST(count == rows.size() + 7 /* seconds per format */ + 2 /* last reload: duration, time */ +
                            1 /* verification wait */);
}

BOOST_AUTO_TEST_CASE(a_file_name_cannot_end_a_status_key_or_line_early)
{
    MetricsReport r;
    r.files.push_back(FileFigures{"/srv/a: b\n100%", 1, 2});
    const std::string lines = status_lines(r);
    BOOST_TEST(status_value(lines, "AuthProxyUsers(/srv/a%3A b%0A100%25)") == 1);
    BOOST_TEST(status_value(lines, "AuthProxyIndexBytes(/srv/a%3A b%0A100%25)") == 2);
}

BOOST_AUTO_TEST_CASE(the_prometheus_page_has_help_and_type_once_per_family)
{
    const std::string text = prometheus_text(sample());
    struct Row {
        const char *family;
        const char *type;
    };
    const std::vector<Row> families = {
        {"auth_proxy_admitted_total", "counter"},
        {"auth_proxy_failures_total", "counter"},
        {"auth_proxy_cache_hits_total", "counter"},
        {"auth_proxy_cache_misses_total", "counter"},
        {"auth_proxy_cache_evictions_total", "counter"},
        {"auth_proxy_verifications_total", "counter"},
        {"auth_proxy_verification_seconds_total", "counter"},
        {"auth_proxy_lockouts_total", "counter"},
        {"auth_proxy_throttle_full_total", "counter"},
        {"auth_proxy_reloads_total", "counter"},
        {"auth_proxy_reload_failures_total", "counter"},
        {"auth_proxy_last_reload_duration_seconds", "gauge"},
        {"auth_proxy_last_reload_timestamp_seconds", "gauge"},
        {"auth_proxy_user_file_usable", "gauge"},
        {"auth_proxy_users", "gauge"},
        {"auth_proxy_index_bytes", "gauge"},
        {"auth_proxy_verify_slots", "gauge"},
        {"auth_proxy_verify_slots_in_use", "gauge"},
        {"auth_proxy_verify_slots_peak", "gauge"},
        {"auth_proxy_verify_waiting", "gauge"},
        {"auth_proxy_verify_waits_total", "counter"},
        {"auth_proxy_verify_wait_seconds_total", "counter"},
        {"auth_proxy_verify_shed_total", "counter"},
    };
    for (const Row &f : families) {
        BOOST_TEST_CONTEXT(f.family)
        {
            const std::string help = std::string("# HELP ") + f.family + " ";
            const std::string type = std::string("# TYPE ") + f.family + " " + f.type + "\n";
            BOOST_TEST(contains(text, help));
            BOOST_TEST(text.find(help) == text.rfind(help));
            BOOST_TEST(contains(text, type));
            BOOST_TEST(text.find(type) == text.rfind(type));
        }
    }
    const std::vector<std::string> samples = {
        "\nauth_proxy_admitted_total 12\n",
        "\nauth_proxy_failures_total{reason=\"wrong_password\"} 3\n",
        "\nauth_proxy_failures_total{reason=\"store_error\"} 0\n",
        "\nauth_proxy_failures_total{reason=\"ticket_refused\"} 0\n",
        "\nauth_proxy_verifications_total{format=\"apr1_md5\"} 4\n",
        "\nauth_proxy_verification_seconds_total{format=\"apr1_md5\"} 1.234567\n",
        "\nauth_proxy_lockouts_total{subject=\"address\"} 1\n",
        "\nauth_proxy_throttle_full_total 5\n",
        "\nauth_proxy_users{file=\"/etc/apache2/users\"} 3\n",
        "\nauth_proxy_index_bytes{file=\"/etc/apache2/users\"} 4096\n",
        "\nauth_proxy_verify_slots 3\n",
        "\nauth_proxy_verify_slots_in_use 2\n",
        "\nauth_proxy_verify_slots_peak 3\n",
        "\nauth_proxy_verify_waiting 17\n",
        "\nauth_proxy_verify_waits_total 40\n",
        "\nauth_proxy_verify_wait_seconds_total 2.500000\n",
        "\nauth_proxy_verify_shed_total 6\n",
    };
    for (const std::string &line : samples) {
        BOOST_TEST(contains(text, line), line);
    }
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped_and_always_utf8)
{
    struct Row {
        const char *path;
        const char *label;
    };
    const std::vector<Row> rows = {
        {"/srv/plain", "/srv/plain"},
        {"/srv/\"quoted\"", "/srv/\\\"quoted\\\""},
        {"/srv/back\\slash", "/srv/back\\\\slash"},
        {"/srv/new\nline", "/srv/new\\nline"},
        {"/srv/caf\xc3\xa9", "/srv/caf\xc3\xa9"},                 // UTF-8 kept
        {"/srv/latin1-\xe9", "/srv/latin1-\xef\xbf\xbd"},        // a stray byte
        {"/srv/\xc0\xaf", "/srv/\xef\xbf\xbd\xef\xbf\xbd"},      // an overlong '/'
        {"/srv/\xed\xa0\x80", "/srv/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, // a surrogate
    };
    for (const Row &row : rows) {
        MetricsReport r;
        r.files.push_back(FileFigures{row.path, 1, 2});
        BOOST_TEST(contains(prometheus_text(r), std::string("auth_proxy_users{file=\"") + row.label + "\"} 1\n"),
                   row.label);
    }
}

BOOST_AUTO_TEST_CASE(the_html_section_escapes_file_names_with_or_without_tables)
{
    MetricsReport r = sample();
    r.files.push_back(FileFigures{"/srv/<b>&\"x\"", 1, 2});
    const std::string table = status_html(r, true);
    BOOST_TEST(contains(table, "<table"));
    BOOST_TEST(contains(table, "<tr><td>Admitted</td><td>12</td></tr>"));
    BOOST_TEST(contains(table, "<tr><td>Not admitted: wrong password</td><td>3</td></tr>"));
    BOOST_TEST(contains(table, "Users: /srv/&lt;b&gt;&amp;&quot;x&quot;</td>"));
    BOOST_TEST(!contains(table, "<b>"));
    const std::string plain = status_html(r, false);
    BOOST_TEST(!contains(plain, "<table"));
    BOOST_TEST(contains(plain, "Admitted: 12<br />"));
}

BOOST_AUTO_TEST_SUITE_END()
