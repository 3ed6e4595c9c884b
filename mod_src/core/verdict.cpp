#include "auth_proxy/verdict.hpp"

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
    case Reason::throttle_full: return "throttle table full";
    case Reason::store_unusable: return "user file unusable";
    case Reason::store_error: return "store error";
    case Reason::no_slot: return "no verification slot";
    case Reason::replayed: return "replayed token";
    case Reason::ticket_expired: return "ticket expired";
    case Reason::wrong_service: return "ticket for another service";
    case Reason::no_local_name: return "no local name";
    case Reason::acceptor_error: return "Kerberos acceptor error";
    }
    return "unknown";
}

CredentialBuffer::~CredentialBuffer()
{
    explicit_bzero(bytes, sizeof bytes);
}

} // namespace auth_proxy
