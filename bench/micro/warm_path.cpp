// The warm path in process: what one authentication costs mod_auth_proxy
// when the credentials are cached, without httpd, sockets or a backend.
// bench/run builds and runs it (section "micro") and sets the numbers
// beside the CPU an httpd process spends on a whole proxied request.
//
// Each case runs Authenticator::authenticate() on the same request over and
// over: parse the Basic header, ask the throttle about the address, find
// the user in a 1,000,000-user index (last line of the file) or, for a store
// such as LDAP, go straight to the cache; key the cache (HMAC-SHA256) and
// find the key in the shared table; then count the verdict in the shared
// metrics block, as the glue does.

#include "auth_proxy/authenticator.hpp"
#include "auth_proxy/metrics.hpp"

#include <benchmark/benchmark.h>

#include <sys/mman.h>

#include <memory>
#include <string>

using namespace auth_proxy;

namespace {

constexpr std::size_t kUsers = 1000000;
// htpasswd -nbs alice alice-pw
const std::string kAliceHash = "{SHA}g2YDYHBhl9R/ddqtGep+ipAO4aU=";
const char *const kHeader = "Basic YWxpY2U6YWxpY2UtcHc="; // alice:alice-pw

struct WarmPath {
    UserFileState users;
    void *counter_memory = nullptr;
    void *metrics_memory = nullptr;
    std::unique_ptr<Metrics> metrics;
    std::unique_ptr<SharedCounterTable> counters;
    std::unique_ptr<SharedKeySet> failures;
    std::unique_ptr<Throttle> throttle;
    std::unique_ptr<CredentialCache> cache;
    std::unique_ptr<Authenticator> auth;
    AuthRequest request;

    explicit WarmPath(bool throttling)
    {
        std::string text;
        text.reserve(kUsers * 48);
        for (std::size_t i = 0; i + 1 < kUsers; ++i) {
            text += "u" + std::to_string(i) + ":" + kAliceHash + "\n";
        }
        text += "alice:" + kAliceHash + "\n";
        users.index = std::make_shared<const HtpasswdIndex>(text);
        counter_memory = ::mmap(nullptr, SharedCounterTable::bytes_for(16384), PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        const CacheSecret throttle_secret = random_cache_secret();
        counters = std::make_unique<SharedCounterTable>(counter_memory, 16384, throttle_secret);
        failures = std::make_unique<SharedKeySet>(65536, std::chrono::seconds(600));
        ThrottlePolicy policy;
        policy.enabled = throttling;
        throttle = std::make_unique<Throttle>(policy, *counters, *failures, throttle_secret);
        metrics_memory = ::mmap(nullptr, Metrics::bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        metrics = std::make_unique<Metrics>(metrics_memory);
        cache = std::make_unique<CredentialCache>(10000, std::chrono::seconds(300), random_cache_secret());
        cache->count_into(metrics->cache_counters());
        auth = std::make_unique<Authenticator>(cache.get(), throttle.get());
        request.header = kHeader;
        request.client = ClientAddress::parse("192.0.2.10");
        request.now = Now::current();
        request.scope = StoreScope{1, true}; // one configuration section, as the glue names it
        CredentialBuffer buffer;
        if (auth->authenticate(users, request, buffer).outcome != Outcome::admitted) { // verifies once, caches
            std::abort();
        }
    }
    ~WarmPath()
    {
        ::munmap(counter_memory, SharedCounterTable::bytes_for(16384));
        ::munmap(metrics_memory, Metrics::bytes());
    }
};

/** A directory that knows alice: asked once, then never again (the cache answers). */
struct Directory final : CheckingStore {
    std::string_view name() const noexcept override { return "ldap"; }
    CheckAnswer check(std::string_view user, const char *) override
    {
        return user == "alice" ? CheckAnswer::granted : CheckAnswer::user_not_found;
    }
};

void run(benchmark::State &state, WarmPath &w, const Store *stores = nullptr, std::size_t count = 0)
{
    for (auto _ : state) {
        CredentialBuffer buffer;
        const Verdict v = stores != nullptr ? w.auth->authenticate(stores, count, w.request, buffer)
                                            : w.auth->authenticate(w.users, w.request, buffer);
        if (!v.cache_hit) {
            state.SkipWithError("not served from the cache");
            break;
        }
        w.metrics->count(v);
        benchmark::DoNotOptimize(v.outcome);
    }
}

void cached_throttle_on(benchmark::State &state)
{
    static WarmPath w(true);
    run(state, w);
}

void cached_throttle_off(benchmark::State &state)
{
    static WarmPath w(false);
    run(state, w);
}

void cached_directory_store(benchmark::State &state)
{
    static WarmPath w(true);
    static Directory directory;
    static const Store stores[] = {{nullptr, &directory}};
    CredentialBuffer buffer;
    w.auth->authenticate(stores, 1, w.request, buffer); // asked once: cached from here on
    run(state, w, stores, 1);
}

void header_parse_alone(benchmark::State &state)
{
    for (auto _ : state) {
        CredentialBuffer buffer;
        BasicCredentials creds;
        benchmark::DoNotOptimize(parse_basic_credentials(kHeader, buffer.bytes, sizeof buffer.bytes, creds));
    }
}

} // namespace

BENCHMARK(cached_throttle_on);
BENCHMARK(cached_throttle_off);
BENCHMARK(cached_directory_store);
BENCHMARK(header_parse_alone);
BENCHMARK_MAIN();
