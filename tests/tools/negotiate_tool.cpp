// negotiate_tool: the Negotiate core outside httpd, for test_negotiate_core.py.
//
//   negotiate_tool accept --keytab PATH [--rcache NAME] [--local-name on|off]
//                         [--user NAME] [--fork] [--threads N] [--timing]
//     Loads the keytab into memory (ServiceKeys), then, as httpd's children
//     would, optionally drops to the user NAME and/or forks, and accepts
//     tokens: one per stdin line, either "Negotiate <base64>" or the bare
//     base64. Prints a JSON line when ready ({"ready": true, ...}) or on a
//     set-up failure ({"error": "..."}, exit 1), then one JSON line per token.
//     --threads N reads every line first, then accepts them from N threads
//     at once and answers in input order. --timing adds a last line with
//     the mean time of accept() and the rate.
//
//   negotiate_tool token --ccache PATH --service NAME
//     Prints {"token": <base64>, "endtime": <the ticket's end, Unix time>}:
//     a raw Kerberos GSS-API token made from the service ticket for NAME
//     (e.g. HTTP/127.0.0.1) found in the ccache, expired or not. MIT's client library refuses to
//     use an expired ticket, so this is how a test gets an "expired" token.

#include "auth_proxy/scheme/negotiate/gss_acceptor.hpp"
#include "auth_proxy/scheme/negotiate/negotiate_header.hpp"
#include "auth_proxy/scheme/negotiate/service_keys.hpp"

#include <krb5.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <grp.h>
#include <iostream>
#include <map>
#include <pwd.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace auth_proxy;

namespace {

std::string json_string(std::string_view text)
{
    std::string out = "\"";
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        }
        else if (byte < 0x20 || byte == 0x7f) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
            out += escaped;
        }
        else {
            out += c;
        }
    }
    return out + "\"";
}

void print_line(const std::string &json)
{
    std::cout << json << "\n" << std::flush;
}

int fail(const std::string &error)
{
    print_line("{\"error\": " + json_string(error) + "}");
    return 1;
}

/** The value after --name in @p args, or @p fallback. */
std::string option(const std::vector<std::string> &args, const std::string &name,
                   const std::string &fallback = {})
{
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == name) {
            return args[i + 1];
        }
    }
    return fallback;
}

bool flag(const std::vector<std::string> &args, const std::string &name)
{
    for (const std::string &arg : args) {
        if (arg == name) {
            return true;
        }
    }
    return false;
}

/** As httpd does after reading its keys: only @p user's ids from here on. */
std::string drop_to(const std::string &user)
{
    const passwd *pw = ::getpwnam(user.c_str());
    if (pw == nullptr) {
        return "no such user: " + user;
    }
    if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0) {
        return "cannot become " + user + ": " + std::strerror(errno);
    }
    return {};
}

std::string accept_line(GssAcceptor &acceptor, const std::string &line, double &seconds)
{
    std::string token;
    const std::string header = line.rfind("Negotiate", 0) == 0 ? line : "Negotiate " + line;
    const NegotiateHeaderError parsed = parse_negotiate_header(header, token);
    if (parsed != NegotiateHeaderError::none) {
        return "{\"status\": \"bad_header\", \"detail\": " + json_string(describe(parsed)) + "}";
    }
    const auto start = std::chrono::steady_clock::now();
    const AcceptResult result = acceptor.accept(token);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string output =
        result.output_token.empty() ? "" : negotiate_challenge(result.output_token).substr(10);
    return "{\"status\": " + json_string(status_name(result.status)) +
           ", \"principal\": " + json_string(result.principal) + ", \"user\": " + json_string(result.user) +
           ", \"detail\": " + json_string(result.detail) + ", \"output\": " + json_string(output) + "}";
}

std::string strip_cr(std::string line)
{
    if (!line.empty() && line.back() == '\r') {
        line.pop_back();
    }
    return line;
}

/** The mean time in accept() (@p busy, summed over threads) and the rate over @p wall seconds. */
void print_timing(std::size_t accepts, double busy, double wall)
{
    const double n = static_cast<double>(accepts);
    print_line("{\"accepts\": " + std::to_string(accepts) +
               ", \"us_per_accept\": " + std::to_string(accepts == 0 ? 0.0 : busy * 1e6 / n) +
               ", \"accepts_per_second\": " + std::to_string(wall > 0 ? n / wall : 0.0) + "}");
}

/**
 * Reads every line first, then accepts them from @p threads threads at once (as an event MPM's
 * workers would) and prints the answers in input order.
 */
int accept_batch(GssAcceptor &acceptor, int threads, bool timing)
{
    std::vector<std::string> lines;
    for (std::string line; std::getline(std::cin, line);) {
        lines.push_back(strip_cr(line));
    }
    std::vector<std::string> answers(lines.size());
    std::vector<double> busy(static_cast<std::size_t>(threads), 0.0);
    std::atomic<std::size_t> next{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            for (std::size_t i; (i = next++) < lines.size();) {
                answers[i] = accept_line(acceptor, lines[i], busy[static_cast<std::size_t>(t)]);
            }
        });
    }
    for (std::thread &worker : workers) {
        worker.join();
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const std::string &answer : answers) {
        print_line(answer);
    }
    if (timing) {
        double total = 0;
        for (const double b : busy) {
            total += b;
        }
        print_timing(lines.size(), total, wall);
    }
    return 0;
}

int accept_tokens(const std::vector<std::string> &args)
{
    std::string error;
    const std::unique_ptr<ServiceKeys> keys = ServiceKeys::load(option(args, "--keytab"), error);
    if (!keys) {
        return fail(error);
    }
    const std::string user = option(args, "--user");
    if (!user.empty() && !(error = drop_to(user)).empty()) {
        return fail(error);
    }
    if (flag(args, "--fork")) {
        const pid_t child = ::fork();
        if (child < 0) {
            return fail(std::string("fork: ") + std::strerror(errno));
        }
        if (child > 0) {
            int status = 0;
            ::waitpid(child, &status, 0);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        }
    }
    AcceptorOptions options;
    options.keytab = keys->keytab_name();
    options.rcache = option(args, "--rcache");
    options.local_name = option(args, "--local-name", "on") == "on";
    const std::unique_ptr<GssAcceptor> acceptor = GssAcceptor::create(options, error);
    if (!acceptor) {
        return fail(error);
    }
    std::string principals;
    for (const std::string &principal : keys->principals()) {
        principals += (principals.empty() ? "" : ", ") + json_string(principal);
    }
    print_line("{\"ready\": true, \"pid\": " + std::to_string(::getpid()) + ", \"uid\": " +
               std::to_string(::getuid()) + ", \"keytab\": " + json_string(keys->keytab_name()) +
               ", \"principals\": [" + principals + "], \"keys\": " + std::to_string(keys->key_count()) +
               ", \"summary\": " + json_string(keys->summary()) + "}");
    const int threads = std::stoi(option(args, "--threads", "0"));
    if (threads > 0) {
        return accept_batch(*acceptor, threads, flag(args, "--timing"));
    }
    double seconds = 0;
    std::size_t accepts = 0;
    std::string line;
    while (std::getline(std::cin, line)) {
        print_line(accept_line(*acceptor, strip_cr(line), seconds));
        ++accepts;
    }
    if (flag(args, "--timing")) {
        print_timing(accepts, seconds, seconds);
    }
    return 0;
}

// ---------------------------------------------------------------- token from a cached ticket

/** The GSS-API checksum (RFC 4121 4.1.1): no channel bindings, no flags. */
krb5_error_code gss_checksum(krb5_context, krb5_auth_context, void *, krb5_data **out)
{
    static char bytes[24] = {16}; // Lgth = 16 (little-endian), Bnd = 16 zero bytes, Flags = 0
    static krb5_data data = {KV5M_DATA, sizeof bytes, bytes};
    krb5_data *copy = nullptr;
    const krb5_error_code code = krb5_copy_data(nullptr, &data, &copy);
    *out = copy;
    return code;
}

/** DER: the definite length of @p n bytes of content. */
std::string der_length(std::size_t n)
{
    if (n < 128) {
        return std::string(1, static_cast<char>(n));
    }
    std::string bytes;
    for (; n > 0; n >>= 8) {
        bytes.insert(bytes.begin(), static_cast<char>(n & 0xff));
    }
    return std::string(1, static_cast<char>(0x80 | bytes.size())) + bytes;
}

int make_token(const std::vector<std::string> &args)
{
    const std::string prefix = option(args, "--service") + "@";
    krb5_context context = nullptr;
    krb5_ccache ccache = nullptr;
    krb5_cc_cursor cursor = nullptr;
    if (krb5_init_context(&context) != 0 ||
        krb5_cc_resolve(context, ("FILE:" + option(args, "--ccache")).c_str(), &ccache) != 0 ||
        krb5_cc_start_seq_get(context, ccache, &cursor) != 0) {
        return fail("cannot read the ccache");
    }
    krb5_creds creds;
    bool found = false;
    while (!found && krb5_cc_next_cred(context, ccache, &cursor, &creds) == 0) {
        char *name = nullptr;
        if (krb5_unparse_name(context, creds.server, &name) == 0) {
            found = std::string(name).rfind(prefix, 0) == 0;
            krb5_free_unparsed_name(context, name);
        }
        if (!found) {
            krb5_free_cred_contents(context, &creds);
        }
    }
    krb5_cc_end_seq_get(context, ccache, &cursor);
    if (!found) {
        return fail("no ticket for " + prefix + " in the ccache");
    }
    // The library checks the ccache's copy of the ticket's times, not the ticket's own (which only the
    // service can decrypt): moving the copy's end lets it send what a client with a slow clock would.
    const krb5_timestamp endtime = creds.times.endtime;
    creds.times.endtime = static_cast<krb5_timestamp>(std::time(nullptr) + 3600);
    krb5_auth_context auth = nullptr;
    krb5_data ap_req = {};
    krb5_auth_con_init(context, &auth);
    krb5_auth_con_set_req_cksumtype(context, auth, 0x8003);
    krb5_auth_con_set_checksum_func(context, auth, gss_checksum, nullptr);
    const krb5_error_code code = krb5_mk_req_extended(context, &auth, 0, nullptr, &creds, &ap_req);
    std::string inner;
    std::string error;
    if (code != 0) {
        const char *message = krb5_get_error_message(context, code);
        error = std::string("krb5_mk_req_extended: ") + message;
        krb5_free_error_message(context, message);
    }
    else {
        // RFC 2743 3.1 framing: the Kerberos mechanism's OID, token id 01 00 (AP-REQ), the AP-REQ.
        inner = std::string("\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01\x00", 13) +
                std::string(ap_req.data, ap_req.length);
    }
    // Everything freed, so the tool is clean under LeakSanitizer too.
    krb5_free_data_contents(context, &ap_req);
    krb5_auth_con_free(context, auth);
    krb5_free_cred_contents(context, &creds);
    krb5_cc_close(context, ccache);
    krb5_free_context(context);
    if (!error.empty()) {
        return fail(error);
    }
    const std::string token = "\x60" + der_length(inner.size()) + inner;
    print_line("{\"token\": " + json_string(negotiate_challenge(token).substr(10)) +
               ", \"endtime\": " + std::to_string(endtime) + "}");
    return 0;
}

} // namespace

// A test tool, run once per token: MIT's library keeps a few bytes of a
// request it builds (40 bytes in two allocations under krb5_mk_req_extended,
// with everything the API hands out freed above), which LeakSanitizer would
// turn into a failed run in the sanitized build. The module is checked for
// leaks as before; only this tool is not.
extern "C" __attribute__((visibility("default"))) const char *__lsan_default_options()
{
    return "detect_leaks=0";
}

int main(int argc, char **argv)
{
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "accept" && !option(args, "--keytab").empty()) {
        return accept_tokens(args);
    }
    if (!args.empty() && args[0] == "token" && !option(args, "--ccache").empty()) {
        return make_token(args);
    }
    std::fprintf(stderr,
                 "usage: %s accept --keytab PATH [--rcache NAME] [--local-name on|off] [--user NAME]\n"
                 "                 [--fork] [--threads N] [--timing]\n"
                 "       %s token --ccache PATH --service NAME\n",
                 argv[0], argv[0]);
    return 2;
}
