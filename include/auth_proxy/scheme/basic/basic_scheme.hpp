/**
 * @file basic_scheme.hpp
 * AuthType ProxyBasic: a user-id and password (RFC 7617) checked against
 * the scope's stores.
 *
 * The stages, in order: the header is parsed; the throttle refuses a
 * locked-out client before any password is looked at, and one whose
 * failure it would have no room to count before a password is checked; the
 * stores are asked in turn until one knows the user — the indexed user file
 * gives the stored hash, which the verifier checks, and a checking store (an
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

#include "auth_proxy/scheme/scheme.hpp"

namespace auth_proxy {

class BasicScheme final : public Scheme {
public:
    std::string_view auth_type() const noexcept override { return "ProxyBasic"; }
    std::string_view token() const noexcept override { return "Basic"; }
    bool checks_passwords() const noexcept override { return true; }
    std::string challenge(std::string_view realm) const override;
    Verdict authenticate(const Services &services, const AuthRequest &request,
                         CredentialBuffer &buffer) const override;

private:
    struct Attempt;
    enum class Next { answered, ask_the_next };

    /** The user file's part: Next::ask_the_next if it does not know the user. */
    static Next ask_file(const HtpasswdIndex &index, Attempt &a, Verdict &v);
    /** A checking store's part. */
    static Next ask_checker(CheckingStore &store, Attempt &a, Verdict &v);
    /** No store knows the user: refused at the cost of a wrong password. */
    static void unknown_user(const HtpasswdIndex *typical, Attempt &a, Verdict &v);
    /** True (and the verdict set) if @p failure is a repeat of a recent failure. */
    static bool repeated(Attempt &a, const SetKey &failure, Verdict &v, Recall recall);
    /** True (and @p v throttled) if a failure now could not be counted: the password is not checked. */
    static bool no_room(Attempt &a, Verdict &v);
    /** A slot for a verification in @p slot; false (and @p v shed) if none came within the bound. */
    static bool take_slot(Attempt &a, Verdict &v, VerifyLimit::Slot &slot);
    /** A password checked right: what was reserved for its failure is given back. */
    static void admitted_after_check(Attempt &a, Verdict &v);
    /** The verifier, timed into Verdict::hashing. */
    static bool timed_verify(const Attempt &a, const char *password, const char *stored, Verdict &verdict);
    /** A verification whose answer is thrown away: what an unknown user or unusable entry costs. */
    static void dummy_verification(const Attempt &a, const HtpasswdIndex &index, Verdict &verdict);
    /** The common end of every failure: counted by the throttle, verdict refused. */
    static void refuse(Verdict &verdict, Reason reason, Attempt &a, const SetKey &failure,
                       Recall recall = Recall::window);
};

} // namespace auth_proxy
