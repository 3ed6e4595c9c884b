/**
 * @file authenticator.hpp
 * The authentication policy: from a credentials header and a client address
 * to a verdict, with every rule in one place and no httpd in sight. The
 * glue maps the verdict to a status, headers and a log line.
 *
 * The stages, in order: the Basic scheme parses the header; the throttle
 * refuses a locked-out client before any password is looked at, and one
 * whose failure it would have no room to count before a password is
 * checked; the stores
 * are asked in turn until one knows the user — the indexed user file gives
 * the stored hash, which the verifier checks, and a checking store (an
 * httpd authn provider: LDAP, SQL, DBM) checks the password itself; the
 * credential cache lets a verified password skip the hash or the store;
 * identical repeats of a failure are refused without asking again (a
 * checking store's only briefly: see Recall); both key on the password bytes
 * the hash reads and, for a checking store, on the request's StoreScope; new
 * failures are counted by the throttle. An unknown user costs what a wrong
 * password costs: a dummy verification of the user file's typical format
 * and cost, or, with checking stores only, the time those stores take to
 * answer for a user they know.
 *
 * Every verification of ours, real or dummy, first takes a slot of the
 * VerifyLimit (if one is set), waiting up to its bound; a request that gets
 * none is shed: no hash runs and nothing is counted as a guess. Cache hits,
 * repeats and throttle refusals are answered before that and never wait.
 * A checking store's own work is not ours to bound.
 */
#pragma once

#include "auth_proxy/scheme/basic_credentials.hpp"
#include "auth_proxy/store/checking_store.hpp"
#include "auth_proxy/throttle/client_address.hpp"
#include "auth_proxy/cache/credential_cache.hpp"
#include "auth_proxy/limit/verify_limit.hpp"
#include "auth_proxy/verify/hash_pool.hpp"
#include "auth_proxy/verify/password_hash.hpp"
#include "auth_proxy/throttle/throttle.hpp"
#include "auth_proxy/store/user_file.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace auth_proxy {

/** What became of the request. */
enum class Outcome {
    admitted,   ///< the user is authenticated
    challenged, ///< no credentials: answer with a challenge (the normal first step)
    refused,    ///< wrong or unusable credentials: a challenge again
    throttled,  ///< the client (or user) is locked out: 429, Retry-After
    failed,     ///< the store cannot answer: 500, fail closed
    shed,       ///< no verification slot within the wait bound: 503, Retry-After; nothing was checked
};

/** Why, for the log line and the counters. */
enum class Reason {
    none,
    no_credentials,
    malformed,        ///< see Verdict::parse_error
    unknown_user,
    unusable_entry,   ///< see Verdict::detail
    wrong_password,
    repeated_failure, ///< the same failed credentials again: refused without hashing
    address_locked,
    user_locked,
    throttle_full,    ///< the throttle had no room to count a failure of this client's: refused unasked
    store_unusable,   ///< the user file cannot be used, see Verdict::detail
    store_error,      ///< a checking store could not answer (it logs why itself)
    no_slot,          ///< every verification slot stayed busy for the whole wait: shed
};

const char *describe(Reason reason) noexcept;

struct Verdict {
    Outcome outcome = Outcome::failed;
    Reason reason = Reason::none;
    std::string_view user;        ///< the user-id sent (points into the CredentialBuffer); empty if none
    CredentialError parse_error = CredentialError::none;
    HashFormat format = HashFormat::unknown; ///< of the verification that ran (real or dummy)
    std::uint32_t cost = 0;
    bool verified = false;        ///< a real verification ran
    bool dummy = false;           ///< a dummy verification ran
    std::chrono::nanoseconds hashing{0}; ///< spent in the verification that ran (real or dummy)
    std::chrono::nanoseconds padded{0}; ///< an unknown user's answer was held back this long
    std::chrono::nanoseconds waited{0}; ///< for a verification slot
    bool cache_hit = false;
    int store = -1;               ///< which store answered (an index into the list), -1: none
    std::chrono::seconds retry_after{0}; ///< throttled: until the lockout ends; shed: the wait bound
    unsigned locked_prefix = 0;   ///< address_locked: 56 or 48 if an IPv6 prefix of the client's is locked out
    Throttle::Counted counted;    ///< what the throttle made of a failure
    std::string detail;           ///< unusable_entry, store_unusable: the operator-facing reason
};

/** Holds the decoded pair; wiped however the request ends. */
struct CredentialBuffer {
    char bytes[kCredentialBufferSize];
    CredentialBuffer() noexcept = default;
    ~CredentialBuffer();
    CredentialBuffer(const CredentialBuffer &) = delete;
    CredentialBuffer &operator=(const CredentialBuffer &) = delete;
};

/** One store of a scope, in the order AuthProxyProvider lists them: exactly one of the two is set. */
struct Store {
    const UserFileState *file = nullptr; ///< the indexed AuthUserFile
    CheckingStore *checker = nullptr;    ///< a store that checks passwords itself
    /**
     * Set (with file) when the user file on disk is no longer the version
     * file was read from (UserFile::behind()) and its new index is not in
     * yet: the user is read from the file itself (UserFile::read_user()),
     * so a change counts from the moment it is on disk, as with
     * mod_authn_file, never from when an index catches up.
     */
    const UserFile *changed = nullptr;
};

/**
 * Which configuration the checking stores of a request answer under. An
 * httpd provider's answer depends on its directives in the request's scope
 * (AuthDBMUserFile, AuthLDAPURL with its filter, ...) and on the vhost,
 * which the module cannot read; the glue names them by identity instead.
 * Unknown (e.g. a .htaccess file took part): the stores are asked every
 * time, with neither the cache nor the failure memory in between.
 */
struct StoreScope {
    std::uint64_t id = 0;
    bool known = false;
};

/** One request, as the policy sees it. */
struct AuthRequest {
    const char *header = nullptr; ///< the credentials header's value; null: none sent
    ClientAddress client;
    Now now;
    StoreScope scope;
};

class Authenticator {
public:
    /** How a password is checked against a stored hash; verify_password() unless a test counts calls. */
    using VerifyFn = bool (*)(const char *password, const char *stored, HashFormat format) noexcept;
    /** How an answer is padded in time; a real sleep unless a test keeps the time. */
    using SleepFn = void (*)(std::chrono::nanoseconds) noexcept;

    /** @p cache and @p throttle may be null (no cache, no throttling). */
    Authenticator(CredentialCache *cache, Throttle *throttle, VerifyFn verify = verify_password,
                  SleepFn sleep = nullptr) noexcept;

    /**
     * Every hash verification first takes a slot of @p limit, waiting at most
     * @p wait; null: verifications are not bounded. Set before the first request.
     */
    void limit_verifications(VerifyLimit *limit, std::chrono::nanoseconds wait) noexcept;

    /**
     * Runs every hash verification (the real ones and the dummies) on
     * @p pool's low-priority threads (which must outlive this object);
     * null: in the request's thread.
     */
    void hash_on(HashPool *pool) noexcept { pool_ = pool; }

    /** The verdict for @p request against @p count stores, asked in order. */
    Verdict authenticate(const Store *stores, std::size_t count, const AuthRequest &request,
                         CredentialBuffer &buffer) const;

    /** The verdict for @p request against the user file state @p users alone. */
    Verdict authenticate(const UserFileState &users, const AuthRequest &request, CredentialBuffer &buffer) const;

private:
    struct Attempt;
    enum class Next { answered, ask_the_next };

    /** The user file's part: Next::ask_the_next if it does not know the user. */
    Next ask_file(const HtpasswdIndex &index, Attempt &a, Verdict &v) const;
    /** A checking store's part. */
    Next ask_checker(CheckingStore &store, Attempt &a, Verdict &v) const;
    /** No store knows the user: refused at the cost of a wrong password. */
    void unknown_user(const HtpasswdIndex *typical, Attempt &a, Verdict &v) const;
    /** True (and the verdict set) if @p failure is a repeat of a recent failure. */
    bool repeated(Attempt &a, const SetKey &failure, Verdict &v, Recall recall) const;
    /** True (and @p v throttled) if a failure now could not be counted: the password is not checked. */
    bool no_room(Attempt &a, Verdict &v) const;
    /** A slot for a verification in @p slot; false (and @p v shed) if none came within the bound. */
    bool take_slot(Attempt &a, Verdict &v, VerifyLimit::Slot &slot) const;
    /** A password checked right: what was reserved for its failure is given back. */
    void admitted_after_check(Attempt &a, Verdict &v) const;
    /** verify_(), timed into Verdict::hashing. */
    bool timed_verify(const char *password, const char *stored, Verdict &verdict) const;
    /** A verification whose answer is thrown away: what an unknown user or unusable entry costs. */
    void dummy_verification(const HtpasswdIndex &index, std::string_view password, Verdict &verdict) const;
    /** The common end of every failure: counted by the throttle, verdict refused. */
    void refuse(Verdict &verdict, Reason reason, Attempt &a, const SetKey &failure,
                Recall recall = Recall::window) const;

    CredentialCache *cache_;
    Throttle *throttle_;
    VerifyFn verify_;
    SleepFn sleep_;
    VerifyLimit *limit_ = nullptr;
    HashPool *pool_ = nullptr;
    std::chrono::nanoseconds wait_{0};
};

} // namespace auth_proxy
