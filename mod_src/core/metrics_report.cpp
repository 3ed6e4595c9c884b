#include "auth_proxy/metrics_report.hpp"

#include <cstdio>

namespace auth_proxy {

namespace {

/** A metric family: one name, one meaning, in every view. */
struct Family {
    const char *name;  ///< Prometheus name, without labels
    const char *type;  ///< Prometheus type
    const char *help;
    const char *label; ///< the name of its one label; null: none
    const char *key;   ///< ?auto key, or its prefix when labelled
    const char *title; ///< HTML
};

constexpr Family kAdmitted{"auth_proxy_admitted_total", "counter",
                           "Authentications that admitted the user, from the credential cache or not.", nullptr,
                           "AuthProxyAdmitted", "Admitted"};
constexpr Family kFailures{"auth_proxy_failures_total", "counter",
                           "Authentications that did not admit the user, by reason.", "reason", "AuthProxyFailures",
                           "Not admitted"};
constexpr Family kCacheHits{"auth_proxy_cache_hits_total", "counter",
                            "Credentials found in the credential cache: admitted without a verification.", nullptr,
                            "AuthProxyCacheHits", "Credential cache hits"};
constexpr Family kCacheMisses{"auth_proxy_cache_misses_total", "counter",
                              "Credentials looked up in the credential cache and not found.", nullptr,
                              "AuthProxyCacheMisses", "Credential cache misses"};
constexpr Family kCacheEvictions{"auth_proxy_cache_evictions_total", "counter",
                                 "Unexpired credentials dropped from the credential cache to make room.", nullptr,
                                 "AuthProxyCacheEvictions", "Credential cache evictions"};
constexpr Family kVerifications{"auth_proxy_verifications_total", "counter",
                                "Password hash verifications, by hash format; the dummy ones that unknown users "
                                "and unusable entries cost included.",
                                "format", "AuthProxyVerifications", "Hash verifications"};
constexpr Family kVerificationSeconds{"auth_proxy_verification_seconds_total", "counter",
                                      "Time spent in password hash verifications, by hash format.", "format",
                                      "AuthProxyVerificationSeconds", "Seconds spent verifying"};
constexpr Family kLockouts{"auth_proxy_lockouts_total", "counter",
                           "Lockouts the guessing throttle started, of client addresses and of users.", "subject",
                           "AuthProxyLockouts", "Lockouts"};
constexpr Family kThrottleFull{"auth_proxy_throttle_full_total", "counter",
                               "Requests refused with 429, and failed logins not counted, because the guessing "
                               "throttle's table had no room for another client (AuthProxyThrottleEntries).",
                               nullptr, "AuthProxyThrottleFull", "Refused for a full throttle table"};
constexpr Family kReloads{"auth_proxy_reloads_total", "counter",
                          "Changed user files read and indexed while the server ran, each change once for the "
                          "whole server.",
                          nullptr, "AuthProxyReloads", "User file reloads"};
constexpr Family kReloadFailures{"auth_proxy_reload_failures_total", "counter",
                                 "User files that became unusable (missing, unreadable) while the server ran.",
                                 nullptr, "AuthProxyReloadFailures", "User file reload failures"};
constexpr Family kLastReloadDuration{"auth_proxy_last_reload_duration_seconds", "gauge",
                                     "How long the last reload took, from the look at the file to the new index "
                                     "in use.",
                                     nullptr, "AuthProxyLastReloadDurationSeconds", "Last reload took (s)"};
constexpr Family kLastReloadTimestamp{"auth_proxy_last_reload_timestamp_seconds", "gauge",
                                      "When the last reload put a changed user file in use, in seconds since the "
                                      "epoch (0: none since the server started).",
                                      nullptr, "AuthProxyLastReloadTimestampSeconds", "Last reload at (Unix time)"};
constexpr Family kVerifySlots{"auth_proxy_verify_slots", "gauge",
                              "Hash verifications that may run at once, server-wide (AuthProxyVerifyLimit).",
                              nullptr, "AuthProxyVerifySlots", "Verification slots"};
constexpr Family kVerifySlotsInUse{"auth_proxy_verify_slots_in_use", "gauge",
                                   "Verification slots held now: hash verifications running.", nullptr,
                                   "AuthProxyVerifySlotsInUse", "Verification slots in use"};
constexpr Family kVerifySlotsPeak{"auth_proxy_verify_slots_peak", "gauge",
                                  "The most verification slots held at once since the server started.", nullptr,
                                  "AuthProxyVerifySlotsPeak", "Verification slots in use at most"};
constexpr Family kVerifyWaiting{"auth_proxy_verify_waiting", "gauge",
                                "Requests waiting now for a verification slot.", nullptr, "AuthProxyVerifyWaiting",
                                "Waiting for a verification slot"};
constexpr Family kVerifyWaits{"auth_proxy_verify_waits_total", "counter",
                              "Requests that found every verification slot busy and waited, whether they got one "
                              "or were shed.",
                              nullptr, "AuthProxyVerifyWaits", "Waited for a verification slot"};
constexpr Family kVerifyWaitSeconds{"auth_proxy_verify_wait_seconds_total", "counter",
                                    "Time requests spent waiting for a verification slot.", nullptr,
                                    "AuthProxyVerifyWaitSeconds", "Seconds spent waiting for a slot"};
constexpr Family kVerifyShed{"auth_proxy_verify_shed_total", "counter",
                             "Requests answered 503 because no verification slot came free within "
                             "AuthProxyVerifyWait; no password was checked and no failure counted.",
                             nullptr, "AuthProxyVerifyShed", "Shed (503)"};
constexpr Family kFileUsable{"auth_proxy_user_file_usable", "gauge",
                             "1 if the user file is in use, 0 if it cannot be used (its scopes answer 500), as "
                             "the answering server process has it.",
                             "file", "AuthProxyUserFileUsable", "Usable"};
constexpr Family kUsers{"auth_proxy_users", "gauge",
                        "Users in each user file, as the answering server process has it (0 when empty or "
                        "unusable: see auth_proxy_user_file_usable).",
                        "file", "AuthProxyUsers", "Users"};
constexpr Family kIndexBytes{"auth_proxy_index_bytes", "gauge",
                             "Bytes of each user file's index, the file's text included.", "file",
                             "AuthProxyIndexBytes", "Index bytes"};

/** One labelled case of a family: the label's value in each view. */
struct Case {
    const char *label; ///< Prometheus label value
    const char *key;   ///< ?auto key suffix
    const char *title; ///< HTML
};

constexpr Case kFailureCases[kFailureKinds] = {
    {"no_credentials", "NoCredentials", "no credentials (the challenge)"},
    {"malformed", "Malformed", "malformed credentials"},
    {"unknown_user", "UnknownUser", "unknown user"},
    {"wrong_password", "WrongPassword", "wrong password"},
    {"repeated", "Repeated", "the same failed credentials again"},
    {"unusable_entry", "UnusableEntry", "unusable entry"},
    {"throttled", "Throttled", "locked out (429)"},
    {"file_unusable", "FileUnusable", "user file unusable (500)"},
    {"store_error", "StoreError", "store error (500)"},
    {"ticket_refused", "TicketRefused", "Kerberos ticket refused"},
};

/** Indexed by HashFormat; HashFormat::unknown is never counted, so never shown. */
constexpr Case kFormatCases[kHashFormats] = {
    {"unknown", "Unknown", "unknown"},
    {"bcrypt", "Bcrypt", "bcrypt"},
    {"apr1_md5", "Apr1Md5", "APR1-MD5"},
    {"sha1", "Sha1", "{SHA}"},
    {"crypt_des", "CryptDes", "crypt-DES"},
    {"md5_crypt", "Md5Crypt", "MD5-crypt"},
    {"sha256_crypt", "Sha256Crypt", "SHA-256-crypt"},
    {"sha512_crypt", "Sha512Crypt", "SHA-512-crypt"},
};

constexpr Case kAddress{"address", "Address", "client addresses"};
constexpr Case kUser{"user", "User", "users"};

/** A count, or a duration in nanoseconds shown as seconds. */
struct Value {
    std::uint64_t n;
    bool seconds;
};

/** One line of every view. */
struct Series {
    const Family *family;
    std::string label; ///< Prometheus label value (labelled families only)
    std::string key;   ///< the whole ?auto key
    std::string title; ///< the whole HTML title, not yet escaped
    Value value;
};

void add(std::vector<Series> &out, const Family &f, Value v)
{
    out.push_back(Series{&f, std::string(), f.key, f.title, v});
}

void add(std::vector<Series> &out, const Family &f, const Case &c, Value v)
{
    out.push_back(Series{&f, c.label, std::string(f.key) + c.key, std::string(f.title) + ": " + c.title, v});
}

/** In a ?auto key: what would end the key or the line early, and '%' itself, as %XX. */
std::string key_escaped(const std::string &text)
{
    std::string out;
    for (const unsigned char c : text) {
        if (c < 0x20 || c == 0x7f || c == '%' || c == ':') {
            char hex[4];
            (void)std::snprintf(hex, sizeof hex, "%%%02X", c);
            out += hex;
        }
        else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

void add_file(std::vector<Series> &out, const Family &f, const std::string &path, std::uint64_t n)
{
    out.push_back(Series{&f, path, std::string(f.key) + "(" + key_escaped(path) + ")",
                         std::string(f.title) + ": " + path, Value{n, false}});
}

/** Every line, in the order of every view: families together, cases in table order. */
std::vector<Series> series_of(const MetricsReport &report)
{
    const MetricsSnapshot &c = report.counters;
    std::vector<Series> out;
    add(out, kAdmitted, Value{c.admitted, false});
    for (std::size_t i = 0; i < kFailureKinds; ++i) {
        add(out, kFailures, kFailureCases[i], Value{c.failures[i], false});
    }
    add(out, kCacheHits, Value{c.cache_hits, false});
    add(out, kCacheMisses, Value{c.cache_misses, false});
    add(out, kCacheEvictions, Value{c.cache_evictions, false});
    for (std::size_t i = 1; i < kHashFormats; ++i) {
        add(out, kVerifications, kFormatCases[i], Value{c.verifications[i], false});
    }
    for (std::size_t i = 1; i < kHashFormats; ++i) {
        add(out, kVerificationSeconds, kFormatCases[i], Value{c.verification_ns[i], true});
    }
    add(out, kLockouts, kAddress, Value{c.address_lockouts, false});
    add(out, kLockouts, kUser, Value{c.user_lockouts, false});
    add(out, kThrottleFull, Value{c.throttle_full, false});
    add(out, kReloads, Value{c.reloads, false});
    add(out, kReloadFailures, Value{c.reload_failures, false});
    add(out, kLastReloadDuration, Value{c.last_reload_ns, true});
    add(out, kLastReloadTimestamp, Value{c.last_reload_unix_ns, true});
    const VerifyLimitFigures &v = report.verify_limit;
    add(out, kVerifySlots, Value{v.cap, false});
    add(out, kVerifySlotsInUse, Value{v.in_use, false});
    add(out, kVerifySlotsPeak, Value{v.peak, false});
    add(out, kVerifyWaiting, Value{v.waiting, false});
    add(out, kVerifyWaits, Value{v.waits, false});
    add(out, kVerifyWaitSeconds, Value{v.wait_ns, true});
    add(out, kVerifyShed, Value{v.shed, false});
    for (const FileFigures &file : report.files) {
        add_file(out, kFileUsable, file.path, file.usable ? 1 : 0);
    }
    for (const FileFigures &file : report.files) {
        add_file(out, kUsers, file.path, file.users);
    }
    for (const FileFigures &file : report.files) {
        add_file(out, kIndexBytes, file.path, file.index_bytes);
    }
    return out;
}

/** Integer arithmetic only: printf's %f would follow the process's locale. */
std::string text_of(const Value &v)
{
    if (!v.seconds) {
        return std::to_string(v.n);
    }
    char fraction[8];
    (void)std::snprintf(fraction, sizeof fraction, "%06llu", static_cast<unsigned long long>(v.n % 1000000000 / 1000));
    return std::to_string(v.n / 1000000000) + "." + fraction;
}

std::string html_escaped(const std::string &text)
{
    std::string out;
    for (const char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

/** Length of the valid UTF-8 sequence at @p i, or 0. */
std::size_t utf8_sequence(const std::string &s, std::size_t i)
{
    const auto byte = [&s](std::size_t at) { return static_cast<unsigned char>(s[at]); };
    const unsigned char c = byte(i);
    if (c < 0x80) {
        return 1;
    }
    std::size_t length = 0;
    // The range of the second byte.
    unsigned char low = 0x80;
    unsigned char high = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        length = 2;
    }
    else if (c >= 0xe0 && c <= 0xef) {
        length = 3;
        low = c == 0xe0 ? 0xa0 : 0x80;  // no overlong forms
        high = c == 0xed ? 0x9f : 0xbf; // no surrogates
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        length = 4;
        low = c == 0xf0 ? 0x90 : 0x80;
        high = c == 0xf4 ? 0x8f : 0xbf; // nothing past U+10FFFF
    }
    if (length == 0 || i + length > s.size() || byte(i + 1) < low || byte(i + 1) > high) {
        return 0;
    }
    for (std::size_t k = 2; k < length; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) {
            return 0;
        }
    }
    return length;
}

/**
 * A label value as the exposition format wants it: UTF-8 (a byte that is
 * not becomes U+FFFD) with backslash, double quote and newline escaped.
 */
std::string label_escaped(const std::string &text)
{
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t length = utf8_sequence(text, i);
        if (length == 0) {
            out += "\xef\xbf\xbd";
            ++i;
            continue;
        }
        const char c = text[i];
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        }
        else if (c == '\n') {
            out += "\\n";
        }
        else {
            out.append(text, i, length);
        }
        i += length;
    }
    return out;
}

} // namespace

std::string status_lines(const MetricsReport &report)
{
    std::string out;
    for (const Series &s : series_of(report)) {
        out += s.key + ": " + text_of(s.value) + "\n";
    }
    return out;
}

std::string status_html(const MetricsReport &report, bool tables)
{
    std::string out = "<hr />\n<h2>Proxy authentication (mod_auth_proxy)</h2>\n";
    out += tables ? "<table border=\"0\">\n" : "";
    for (const Series &s : series_of(report)) {
        out += tables ? "<tr><td>" : "";
        out += html_escaped(s.title);
        out += tables ? "</td><td>" : ": ";
        out += text_of(s.value);
        out += tables ? "</td></tr>\n" : "<br />\n";
    }
    out += tables ? "</table>\n" : "";
    return out;
}

std::string prometheus_text(const MetricsReport &report)
{
    std::string out;
    const Family *family = nullptr;
    for (const Series &s : series_of(report)) {
        if (s.family != family) {
            family = s.family;
            out += std::string("# HELP ") + family->name + " " + family->help + "\n";
            out += std::string("# TYPE ") + family->name + " " + family->type + "\n";
        }
        out += family->name;
        if (family->label != nullptr) {
            out += std::string("{") + family->label + "=\"" + label_escaped(s.label) + "\"}";
        }
        out += " " + text_of(s.value) + "\n";
    }
    return out;
}

} // namespace auth_proxy
