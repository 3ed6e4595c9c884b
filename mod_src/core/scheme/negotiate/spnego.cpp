#include "auth_proxy/scheme/negotiate/spnego.hpp"

namespace auth_proxy {

namespace {

// DER contents of the object identifiers a first token may carry.
constexpr std::string_view kSpnegoOid("\x2b\x06\x01\x05\x05\x02", 6);               // 1.3.6.1.5.5.2
constexpr std::string_view kKerberosOid("\x2a\x86\x48\x86\xf7\x12\x01\x02\x02", 9); // 1.2.840.113554.1.2.2
constexpr std::string_view kMsKerberosOid("\x2a\x86\x48\x82\xf7\x12\x01\x02\x02", 9); // 1.2.840.48018.1.2.2
constexpr std::string_view kNtlmSignature("NTLMSSP\0", 8);

bool is_kerberos(std::string_view oid) noexcept
{
    return oid == kKerberosOid || oid == kMsKerberosOid;
}

/** Reads DER elements one after the other (definite lengths only, as DER requires). */
class DerReader {
public:
    explicit DerReader(std::string_view in) noexcept : in_(in) {}

    bool at(unsigned char tag) const noexcept
    {
        return !in_.empty() && static_cast<unsigned char>(in_[0]) == tag;
    }
    bool done() const noexcept { return in_.empty(); }
    std::string_view rest() const noexcept { return in_; }

    /** Reads the next element if its tag is @p tag: its contents in @p content. */
    bool read(unsigned char tag, std::string_view &content) noexcept
    {
        if (in_.size() < 2 || !at(tag)) {
            return false;
        }
        std::size_t length = static_cast<unsigned char>(in_[1]);
        std::size_t header = 2;
        if (length & 0x80) {
            const std::size_t octets = length & 0x7f;
            if (octets == 0 || octets > 4 || in_.size() < header + octets) {
                return false;
            }
            length = 0;
            for (std::size_t i = 0; i < octets; ++i) {
                length = (length << 8) | static_cast<unsigned char>(in_[header + i]);
            }
            header += octets;
        }
        if (in_.size() - header < length) {
            return false;
        }
        content = in_.substr(header, length);
        in_.remove_prefix(header + length);
        return true;
    }

private:
    std::string_view in_;
};

/** True if the next element is [@p tag] wrapping exactly the bytes @p content. */
bool read_exactly(DerReader &reader, unsigned char tag, std::string_view content) noexcept
{
    std::string_view field;
    return reader.read(tag, field) && field == content;
}

/** True if the next element is [@p tag] wrapping one element tagged @p inner. */
bool read_wrapped(DerReader &reader, unsigned char tag, unsigned char inner) noexcept
{
    std::string_view field, value;
    if (!reader.read(tag, field)) {
        return false;
    }
    DerReader wrapped(field);
    return wrapped.read(inner, value) && wrapped.done();
}

/**
 * True if @p token is a Kerberos GSS-API initial token (RFC 4121 4.1): the
 * Kerberos OID, token id 01 00, and an AP-REQ (RFC 4120 5.5.1) whose fields
 * have the right tags. MIT's mechanism answers an AP-REQ it cannot decode
 * with GSS_S_FAILURE and no Kerberos code, which would read as an internal
 * error rather than as a garbled token; its crypto judges the rest.
 */
bool is_kerberos_ap_req(std::string_view token) noexcept
{
    std::string_view body, oid, ap_req, fields;
    DerReader outer(token);
    if (!outer.read(0x60, body) || !outer.done()) {
        return false;
    }
    DerReader header(body);
    const std::string_view ap_req_id("\x01\x00", 2);
    if (!header.read(0x06, oid) || !is_kerberos(oid) || header.rest().substr(0, 2) != ap_req_id) {
        return false;
    }
    DerReader message(header.rest().substr(2));
    if (!message.read(0x6e, ap_req) || !message.done() || !DerReader(ap_req).read(0x30, fields)) {
        return false;
    }
    DerReader field(fields);
    return read_exactly(field, 0xa0, std::string_view("\x02\x01\x05", 3)) && // pvno 5
           read_exactly(field, 0xa1, std::string_view("\x02\x01\x0e", 3)) && // msg-type 14: AP-REQ
           read_wrapped(field, 0xa2, 0x03) &&                                  // ap-options
           read_wrapped(field, 0xa3, 0x61) &&                                  // ticket
           read_wrapped(field, 0xa4, 0x30) &&                                  // authenticator
           field.done();
}

/** The DER element @p tag with @p content. */
std::string der(unsigned char tag, std::string_view content)
{
    std::string out(1, static_cast<char>(tag));
    if (content.size() < 0x80) {
        out += static_cast<char>(content.size());
    }
    else {
        std::string length;
        for (std::size_t n = content.size(); n > 0; n >>= 8) {
            length.insert(length.begin(), static_cast<char>(n & 0xff));
        }
        out += static_cast<char>(0x80 | length.size());
        out += length;
    }
    out += content;
    return out;
}

/** The parts of a NegTokenInit (RFC 4178 4.2.1) that choose the answer. */
InitialToken read_neg_token_init(std::string_view init) noexcept
{
    InitialToken result;
    std::string_view fields, mech_list, mech_types;
    DerReader outer(init);
    if (!outer.read(0x30, fields) || !outer.done()) {
        return result;
    }
    DerReader reader(fields);
    if (!reader.read(0xa0, mech_list) || !DerReader(mech_list).read(0x30, mech_types)) {
        return result;
    }
    DerReader types(mech_types);
    std::string_view first, oid;
    bool offers_kerberos = false;
    while (types.read(0x06, oid)) {
        first = first.empty() ? oid : first;
        offers_kerberos = offers_kerberos || is_kerberos(oid);
    }
    if (!types.done() || first.empty()) {
        return result;
    }
    std::string_view flags, wrapped_token, mech_token;
    if (reader.at(0xa1) && !reader.read(0xa1, flags)) {
        return result;
    }
    const bool has_token = reader.at(0xa2) && reader.read(0xa2, wrapped_token) &&
                           DerReader(wrapped_token).read(0x04, mech_token) && !mech_token.empty();
    if (is_kerberos(first) && has_token && is_kerberos_ap_req(mech_token)) {
        result.kind = InitialTokenKind::spnego_kerberos;
        result.kerberos_token = mech_token;
        result.mech_oid = first;
    }
    else if (is_kerberos(first) && has_token) {
        return result; // Kerberos's optimistic token is garbled
    }
    else {
        // Kerberos not first, or first without its token: only a second round would get one.
        result.kind = offers_kerberos ? InitialTokenKind::spnego_other : InitialTokenKind::spnego_no_kerberos;
    }
    // A mechListMIC ([3]) is not checked: with the client's first choice accepted, RFC 4178
    // section 5 makes the MIC exchange optional.
    return result;
}

} // namespace

InitialToken read_initial_token(std::string_view token) noexcept
{
    InitialToken result;
    if (token.substr(0, kNtlmSignature.size()) == kNtlmSignature) {
        result.kind = InitialTokenKind::ntlm;
        return result;
    }
    // RFC 2743 3.1: [APPLICATION 0] { thisMech OID, innerContextToken }
    std::string_view body, oid, init;
    DerReader outer(token);
    if (!outer.read(0x60, body) || !outer.done()) {
        return result;
    }
    DerReader reader(body);
    if (!reader.read(0x06, oid)) {
        return result;
    }
    if (oid == kKerberosOid) {
        if (!is_kerberos_ap_req(token)) {
            return result;
        }
        result.kind = InitialTokenKind::kerberos;
        result.kerberos_token = token;
        return result;
    }
    if (oid != kSpnegoOid || !reader.read(0xa0, init) || !reader.done()) {
        return result; // another mechanism, or a NegTokenResp: never a first token
    }
    return read_neg_token_init(init);
}

std::string spnego_response(NegState state, std::string_view mech_oid, std::string_view response_token)
{
    std::string fields = der(0xa0, der(0x0a, std::string(1, static_cast<char>(state))));
    if (!mech_oid.empty()) {
        fields += der(0xa1, der(0x06, mech_oid));
    }
    if (!response_token.empty()) {
        fields += der(0xa2, der(0x04, response_token));
    }
    return der(0xa1, der(0x30, fields));
}

} // namespace auth_proxy
