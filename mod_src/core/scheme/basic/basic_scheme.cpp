#include "auth_proxy/scheme/basic/basic_scheme.hpp"

#include "auth_proxy/scheme/basic/basic_credentials.hpp"
#include "auth_proxy/scheme/challenge.hpp"

#include <algorithm>
#include <string>
#include <thread>

namespace auth_proxy {

namespace {

void sleep_for(std::chrono::nanoseconds t) noexcept
{
    std::this_thread::sleep_for(t);
}

/**
 * What a failure at a checking store is remembered under, in place of a
 * stored hash (none holds a NUL): the store and the scope it answered in.
 */
std::string checker_tag(std::string_view name, const StoreScope &scope)
{
    std::string tag(1, '\0');
    tag += name;
    tag += '\0';
    for (int i = 0; i < 8; ++i) {
        tag += static_cast<char>(scope.id >> (8 * i));
    }
    return tag;
}

} // namespace

/** The state of one authentication as the stores are asked. */
struct BasicScheme::Attempt {
    const Services &s;
    const AuthRequest &request;
    BasicCredentials creds;
    bool throttling = false;
    bool reserved = false; ///< the throttle keeps a place for this attempt's failure
    int store = -1; ///< the store being asked
    /** The longest a checking store that did not know the user fell short of its usual answer time. */
    std::chrono::nanoseconds shortfall{0};
};

bool BasicScheme::take_slot(Attempt &a, Verdict &v, VerifyLimit::Slot &slot)
{
    if (a.s.limit == nullptr) {
        return true;
    }
    slot = a.s.limit->acquire(a.creds.user, a.request.client, a.s.wait);
    v.waited = slot.waited();
    if (slot.held()) {
        return true;
    }
    // Not a guess: nothing was checked, so what was kept for its failure goes back.
    if (a.reserved) {
        a.s.throttle->release(a.request.client, a.creds.user, a.request.now);
        a.reserved = false;
    }
    v.outcome = Outcome::shed;
    v.reason = Reason::no_slot;
    const auto bound = std::chrono::ceil<std::chrono::seconds>(a.s.wait);
    v.retry_after = std::max(bound, std::chrono::seconds{1});
    return false;
}

bool BasicScheme::timed_verify(const Attempt &a, const char *password, const char *stored, Verdict &verdict)
{
    const auto started = Clock::now();
    bool match = false;
    if (a.s.pool != nullptr) {
        // Cached requests and the proxying go first: a hash takes the CPU they leave.
        struct Call {
            VerifyFn verify;
            const char *password;
            const char *stored;
            HashFormat format;
        };
        const Call call{a.s.verify, password, stored, verdict.format};
        match = a.s.pool->run([](const void *arg) noexcept {
            const auto *c = static_cast<const Call *>(arg);
            return c->verify(c->password, c->stored, c->format);
        }, &call);
    }
    else {
        match = a.s.verify(password, stored, verdict.format);
    }
    verdict.hashing += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started);
    return match;
}

void BasicScheme::dummy_verification(const Attempt &a, const HtpasswdIndex &index, Verdict &verdict)
{
    verdict.format = index.typical_format();
    verdict.cost = index.typical_cost();
    const std::string dummy = dummy_hash(verdict.format, verdict.cost);
    // password is NUL-terminated in the CredentialBuffer.
    if (timed_verify(a, a.creds.password.data(), dummy.c_str(), verdict)) {
        // Cannot happen in practice (the dummy digest is a constant no input
        // is known to produce); the answer is thrown away regardless.
    }
    verdict.dummy = true;
}

void BasicScheme::refuse(Verdict &verdict, Reason reason, Attempt &a, const SetKey &failure, Recall recall)
{
    verdict.outcome = Outcome::refused;
    verdict.reason = reason;
    if (!a.throttling) {
        return;
    }
    verdict.counted = a.s.throttle->note_failure(a.request.client, a.creds.user, failure, a.request.now, recall);
    verdict.lockout = a.s.throttle->rule_crossed(verdict.counted);
}

bool BasicScheme::repeated(Attempt &a, const SetKey &failure, Verdict &v, Recall recall)
{
    // The same failed credentials again (a browser resending a stale saved
    // password): the answer is known, and it is not another guess.
    if (!a.throttling || !a.s.throttle->is_repeat(failure, a.request.now, recall)) {
        return false;
    }
    v.outcome = Outcome::refused;
    v.reason = Reason::repeated_failure;
    return true;
}

bool BasicScheme::no_room(Attempt &a, Verdict &v)
{
    // A check whose failure could not be counted would be a free guess.
    if (!a.throttling || a.reserved) {
        return false;
    }
    const Throttle::Lock lock = a.s.throttle->reserve(a.request.client, a.creds.user, a.request.now);
    if (!lock.locked) {
        a.reserved = true;
        return false;
    }
    v.outcome = Outcome::throttled;
    v.reason = Reason::throttle_full;
    v.retry_after = lock.retry_after;
    return true;
}

void BasicScheme::admitted_after_check(Attempt &a, Verdict &v)
{
    if (a.reserved) {
        a.s.throttle->release(a.request.client, a.creds.user, a.request.now);
    }
    v.outcome = Outcome::admitted;
}

BasicScheme::Next BasicScheme::ask_file(const HtpasswdIndex &index, Attempt &a, Verdict &v)
{
    const HtpasswdIndex::Found entry = index.find(a.creds.user);
    if (!entry) {
        return Next::ask_the_next;
    }
    v.store = a.store;
    const std::string_view stored(entry->hash);
    const bool usable = hash_usability(stored, entry->format) == HashUsability::usable;

    // What the hash reads of the password: more bytes cannot change its answer.
    const std::string_view significant = significant_password_bytes(a.creds.password, entry->format);
    CacheKey cache_key{};
    const bool caching = usable && a.s.cache != nullptr && a.s.cache->enabled();
    if (caching) {
        cache_key = a.s.cache->key_for(a.creds.user, significant, stored);
        if (a.s.cache->contains(cache_key, a.request.now.steady)) {
            v.outcome = Outcome::admitted;
            v.cache_hit = true;
            v.format = entry->format;
            return Next::answered;
        }
    }
    const SetKey failure =
        a.throttling ? a.s.throttle->failure_key(a.request.client, a.creds.user, significant, stored) : SetKey{};
    VerifyLimit::Slot slot;
    if (repeated(a, failure, v, Recall::window) || no_room(a, v) || !take_slot(a, v, slot)) {
        return Next::answered;
    }
    if (!usable) {
        v.detail = describe_unusable(stored, entry->format);
        dummy_verification(a, index, v);
        slot.release();
        refuse(v, Reason::unusable_entry, a, failure);
        return Next::answered;
    }
    v.format = entry->format;
    v.cost = hash_cost(stored, entry->format);
    v.verified = true;
    const bool match = timed_verify(a, a.creds.password.data(), entry->hash, v);
    slot.release();
    if (!match) {
        refuse(v, Reason::wrong_password, a, failure);
        return Next::answered;
    }
    if (caching) {
        a.s.cache->remember(cache_key, a.request.now.steady); // successes only: a guesser always pays the hash
    }
    admitted_after_check(a, v);
    return Next::answered;
}

BasicScheme::Next BasicScheme::ask_checker(CheckingStore &store, Attempt &a, Verdict &v)
{
    // Where the scope is not known, every answer comes from the store itself.
    const StoreScope &scope = a.request.scope;
    const bool caching = scope.known && a.s.cache != nullptr && a.s.cache->enabled();
    CacheKey cache_key{};
    if (caching) {
        cache_key = a.s.cache->key_for_store(store.name(), scope.id, a.creds.user, a.creds.password);
        if (a.s.cache->contains(cache_key, a.request.now.steady)) {
            v.store = a.store;
            v.outcome = Outcome::admitted;
            v.cache_hit = true;
            return Next::answered;
        }
    }
    const SetKey failure = a.throttling ? a.s.throttle->failure_key(a.request.client, a.creds.user, a.creds.password,
                                                                  checker_tag(store.name(), scope))
                                        : SetKey{};
    if ((scope.known && repeated(a, failure, v, Recall::brief)) || no_room(a, v)) {
        v.store = a.store;
        return Next::answered;
    }
    const auto started = Clock::now();
    const CheckAnswer answer = store.check(a.creds.user, a.creds.password.data());
    const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started);
    AnswerTime *times = store.answer_time();
    switch (answer) {
    case CheckAnswer::user_not_found:
        if (times != nullptr && times->typical() > took) {
            a.shortfall = std::max(a.shortfall, times->typical() - took);
        }
        return Next::ask_the_next;
    case CheckAnswer::granted:
    case CheckAnswer::granted_uncacheable:
    case CheckAnswer::denied:
        if (times != nullptr) {
            times->record(took);
        }
        break;
    case CheckAnswer::error:
        v.store = a.store;
        v.outcome = Outcome::failed;
        v.reason = Reason::store_error;
        v.detail = std::string(store.name());
        return Next::answered;
    }
    v.store = a.store;
    v.verified = true;
    if (answer == CheckAnswer::denied) {
        refuse(v, Reason::wrong_password, a, failure, Recall::brief);
        return Next::answered;
    }
    if (caching && answer == CheckAnswer::granted) {
        a.s.cache->remember(cache_key, a.request.now.steady); // successes only
    }
    admitted_after_check(a, v);
    return Next::answered;
}

void BasicScheme::unknown_user(const HtpasswdIndex *typical, Attempt &a, Verdict &v)
{
    // Repeats are told apart as for a user the file knows, by the bytes its
    // typical hash would read: otherwise a name that exists would answer
    // passwords sharing those bytes differently from one that does not.
    const std::string_view significant =
        typical != nullptr ? significant_password_bytes(a.creds.password, typical->typical_format())
                           : a.creds.password;
    const SetKey failure =
        a.throttling ? a.s.throttle->failure_key(a.request.client, a.creds.user, significant, "") : SetKey{};
    if (repeated(a, failure, v, Recall::window) || no_room(a, v)) {
        return;
    }
    // What a wrong password would have cost: the user file's kind of hash,
    // or, with checking stores only, the time they take for a user they know.
    if (typical != nullptr) {
        VerifyLimit::Slot slot;
        if (!take_slot(a, v, slot)) {
            return;
        }
        dummy_verification(a, *typical, v);
    }
    else if (a.shortfall > std::chrono::nanoseconds::zero()) {
        (a.s.sleep != nullptr ? a.s.sleep : sleep_for)(a.shortfall);
        v.padded = a.shortfall;
    }
    refuse(v, Reason::unknown_user, a, failure);
}

std::string BasicScheme::challenge(std::string_view realm) const
{
    return basic_challenge(realm);
}

Verdict BasicScheme::authenticate(const Services &services, const AuthRequest &request,
                                  CredentialBuffer &buffer) const
{
    Verdict v;
    Attempt a{services, request, BasicCredentials{}};
    v.parse_error = parse_basic_credentials(request.header != nullptr ? request.header : "", buffer.bytes,
                                            sizeof buffer.bytes, a.creds);
    if (v.parse_error != CredentialError::none) {
        v.outcome = Outcome::refused;
        v.reason = Reason::malformed;
        return v;
    }
    v.user = a.creds.user;

    // A locked-out client learns nothing, not even whether this password is right.
    if (services.throttle != nullptr) {
        const Throttle::Lock lock = services.throttle->check(request.client, a.creds.user, request.now);
        if (lock.locked) {
            v.outcome = Outcome::throttled;
            v.reason = lock.table_full ? Reason::throttle_full
                       : lock.by_user  ? Reason::user_locked
                                       : Reason::address_locked;
            v.retry_after = lock.retry_after;
            v.locked_prefix = lock.prefix;
            return v;
        }
        a.throttling = services.throttle->applies_to(request.client);
    }

    const Store *stores = request.stores;
    const HtpasswdIndex *typical = nullptr;
    std::shared_ptr<const UserFileState> read_now; // a changed user file, read for this user
    for (std::size_t i = 0; i < request.store_count; ++i) {
        a.store = static_cast<int>(i);
        if (stores[i].file != nullptr) {
            if (stores[i].changed != nullptr && !read_now) {
                read_now = stores[i].changed->read_user(a.creds.user, stores[i].file);
            }
            const UserFileState &file = stores[i].changed != nullptr ? *read_now : *stores[i].file;
            if (!file.index) {
                v.store = a.store;
                v.outcome = Outcome::failed;
                v.reason = Reason::store_unusable;
                v.detail = file.error;
                return v;
            }
            if (typical == nullptr) {
                typical = file.typical ? file.typical.get() : file.index.get();
            }
            if (ask_file(*file.index, a, v) == Next::answered) {
                return v;
            }
        }
        else if (stores[i].checker != nullptr && ask_checker(*stores[i].checker, a, v) == Next::answered) {
            return v;
        }
    }
    unknown_user(typical, a, v);
    return v;
}

} // namespace auth_proxy
