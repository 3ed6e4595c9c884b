#include "auth_proxy/authenticator.hpp"

#include <string.h> // explicit_bzero

namespace auth_proxy {

const char *describe(Reason reason) noexcept
{
    switch (reason) {
    case Reason::none: return "none";
    case Reason::no_credentials: return "no credentials";
    case Reason::malformed: return "malformed credentials";
    case Reason::unknown_user: return "unknown user";
    case Reason::unusable_entry: return "unusable entry";
    case Reason::wrong_password: return "wrong password";
    case Reason::repeated_failure: return "repeated failure";
    case Reason::address_locked: return "address locked out";
    case Reason::user_locked: return "user locked out";
    case Reason::store_unusable: return "user file unusable";
    }
    return "unknown";
}

CredentialBuffer::~CredentialBuffer()
{
    explicit_bzero(bytes, sizeof bytes);
}

void Authenticator::dummy_verification(const HtpasswdIndex &index, std::string_view password, Verdict &verdict) const
{
    verdict.format = index.typical_format();
    verdict.cost = index.typical_cost();
    const std::string dummy = dummy_hash(verdict.format, verdict.cost);
    // password is NUL-terminated in the CredentialBuffer.
    if (verify_(password.data(), dummy.c_str(), verdict.format)) {
        // Cannot happen in practice (the dummy digest is a constant no input
        // is known to produce); the answer is thrown away regardless.
    }
    verdict.dummy = true;
}

Verdict &Authenticator::refuse(Verdict &verdict, Reason reason, const AuthRequest &request,
                               const SetKey *failure) const
{
    verdict.outcome = Outcome::refused;
    verdict.reason = reason;
    if (throttle_ != nullptr && failure != nullptr) {
        verdict.counted = throttle_->note_failure(request.client, verdict.user, *failure, request.now);
    }
    return verdict;
}

Verdict Authenticator::authenticate(const UserFileState &users, const AuthRequest &request,
                                    CredentialBuffer &buffer) const
{
    Verdict verdict;
    if (request.header == nullptr) {
        verdict.outcome = Outcome::challenged;
        verdict.reason = Reason::no_credentials;
        return verdict;
    }
    BasicCredentials creds;
    verdict.parse_error = parse_basic_credentials(request.header, buffer.bytes, sizeof buffer.bytes, creds);
    if (verdict.parse_error != CredentialError::none) {
        verdict.outcome = Outcome::refused;
        verdict.reason = Reason::malformed;
        return verdict;
    }
    verdict.user = creds.user;

    // A locked-out client learns nothing, not even whether this password is right.
    if (throttle_ != nullptr) {
        const Throttle::Lock lock = throttle_->check(request.client, creds.user, request.now);
        if (lock.locked) {
            verdict.outcome = Outcome::throttled;
            verdict.reason = lock.by_user ? Reason::user_locked : Reason::address_locked;
            verdict.retry_after = lock.retry_after;
            return verdict;
        }
    }

    if (!users.index) {
        verdict.outcome = Outcome::failed;
        verdict.reason = Reason::store_unusable;
        verdict.detail = users.error;
        return verdict;
    }
    const HtpasswdIndex &index = *users.index;
    const HtpasswdIndex::Found entry = index.find(creds.user);
    const std::string_view stored = entry ? std::string_view(entry->hash) : std::string_view();
    const bool usable = entry && hash_usability(stored, entry->format) == HashUsability::usable;

    CacheKey cache_key{};
    const bool caching = usable && cache_ != nullptr && cache_->enabled();
    if (caching) {
        cache_key = cache_->key_for(creds.user, creds.password, stored);
        if (cache_->contains(cache_key, request.now.steady)) {
            verdict.outcome = Outcome::admitted;
            verdict.cache_hit = true;
            verdict.format = entry->format;
            return verdict;
        }
    }

    // The same failed credentials again (a browser resending a stale saved
    // password): the answer is known, and it is not another guess.
    SetKey failure{};
    const bool throttling = throttle_ != nullptr && throttle_->applies_to(request.client);
    if (throttling) {
        failure = throttle_->failure_key(request.client, creds.user, creds.password, stored);
        if (throttle_->is_repeat(failure, request.now)) {
            verdict.outcome = Outcome::refused;
            verdict.reason = Reason::repeated_failure;
            return verdict;
        }
    }
    const SetKey *counted = throttling ? &failure : nullptr;

    if (!entry) {
        dummy_verification(index, creds.password, verdict);
        return refuse(verdict, Reason::unknown_user, request, counted);
    }
    if (!usable) {
        verdict.detail = describe_unusable(stored, entry->format);
        dummy_verification(index, creds.password, verdict);
        return refuse(verdict, Reason::unusable_entry, request, counted);
    }
    verdict.format = entry->format;
    verdict.cost = hash_cost(stored, entry->format);
    verdict.verified = true;
    if (!verify_(creds.password.data(), entry->hash, entry->format)) {
        return refuse(verdict, Reason::wrong_password, request, counted);
    }
    if (caching) {
        cache_->remember(cache_key, request.now.steady); // successes only: a guesser always pays the hash
    }
    verdict.outcome = Outcome::admitted;
    return verdict;
}

} // namespace auth_proxy
