#include "auth_proxy/store/htpasswd_parser.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace auth_proxy {

namespace {

bool is_space(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/** The text holds 32-bit offsets, and a final NUL is added to it when laid out. */
constexpr std::size_t kMaxTextBytes = std::numeric_limits<std::uint32_t>::max() - 8;

void count(std::size_t &n, std::size_t &first, std::size_t line) noexcept
{
    if (n++ == 0) {
        first = line;
    }
}

} // namespace

std::string MalformedLines::describe(std::size_t max_line) const
{
    std::string out;
    auto add = [&out](std::size_t n, std::size_t first, const char *what) {
        if (n == 0) {
            return;
        }
        out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + what + " (first: line " + std::to_string(first) + ")";
    };
    add(nul, first_nul, "with a NUL byte");
    add(no_colon, first_no_colon, "without ':' between user and password hash");
    add(empty_user, first_empty_user, "with an empty user name");
    if (too_long_at != 0) {
        out += (out.empty() ? "" : ", ") + std::string("line ") + std::to_string(too_long_at) + " longer than " +
               std::to_string(max_line) + " bytes, where reading stopped: no user after it is read";
    }
    return out;
}

HtpasswdParser::HtpasswdParser(std::size_t max_line) : max_line_(max_line) {}

void HtpasswdParser::keep_only(std::string_view user)
{
    only_.assign(user.data(), user.size());
    filtering_ = true;
}

bool HtpasswdParser::feed(std::string_view bytes)
{
    while (!stopped_ && !bytes.empty()) {
        const char *nl = static_cast<const char *>(std::memchr(bytes.data(), '\n', bytes.size()));
        const std::size_t take = nl != nullptr ? static_cast<std::size_t>(nl - bytes.data()) : bytes.size();
        if (take > max_line_ - partial_.size()) {
            out_.malformed.too_long_at = ++line_no_;
            partial_.clear();
            partial_.shrink_to_fit();
            stopped_ = true;
            break;
        }
        if (nl == nullptr) {
            partial_.append(bytes.data(), take);
            break;
        }
        if (partial_.empty()) {
            take_line(bytes.substr(0, take));
        }
        else {
            partial_.append(bytes.data(), take);
            take_line(partial_);
            partial_.clear();
        }
        bytes.remove_prefix(take + 1);
    }
    return !stopped_;
}

ParsedUsers HtpasswdParser::finish()
{
    if (!stopped_ && !partial_.empty()) {
        take_line(partial_);
    }
    partial_.clear();
    stopped_ = true;
    return std::move(out_);
}

void HtpasswdParser::take_line(std::string_view raw)
{
    const std::size_t line = ++line_no_;
    while (!raw.empty() && is_space(raw.front())) raw.remove_prefix(1);
    if (filtering_ && (raw.size() <= only_.size() || raw[only_.size()] != ':' ||
                       raw.compare(0, only_.size(), only_) != 0)) {
        return; // another user's line (or none): whatever else it is, it is skipped
    }
    while (!raw.empty() && is_space(raw.back())) raw.remove_suffix(1);
    if (raw.empty() || raw.front() == '#') {
        return;
    }
    MalformedLines &bad = out_.malformed;
    if (raw.find('\0') != std::string_view::npos) {
        count(bad.nul, bad.first_nul, line);
        return;
    }
    const std::size_t colon = raw.find(':');
    if (colon == std::string_view::npos) {
        count(bad.no_colon, bad.first_no_colon, line);
        return;
    }
    if (colon == 0) {
        count(bad.empty_user, bad.first_empty_user, line);
        return;
    }
    const std::string_view user = raw.substr(0, colon);
    std::string_view hash = raw.substr(colon + 1);
    const std::size_t second = hash.find(':');
    const std::string_view rest = second == std::string_view::npos ? std::string_view() : hash.substr(second + 1);
    hash = hash.substr(0, second); // what follows a second ':' is no part of the hash, as for mod_authn_file
    PageString &text = out_.text;
    if (user.size() + hash.size() + 2 > kMaxTextBytes - text.size()) {
        throw std::length_error("user file with more than 4 GiB of users");
    }
    HtpasswdLine entry{};
    entry.user = static_cast<std::uint32_t>(text.size());
    entry.user_length = static_cast<std::uint32_t>(user.size());
    text.append(user.data(), user.size());
    text.push_back('\0');
    entry.hash = static_cast<std::uint32_t>(text.size());
    entry.hash_length = static_cast<std::uint32_t>(hash.size());
    text.append(hash.data(), hash.size());
    text.push_back('\0');
    entry.line = line;
    entry.htdigest = rest.size() == 32 && rest.find_first_not_of("0123456789abcdef") == std::string_view::npos;
    out_.lines.push_back(entry);
    stopped_ = filtering_; // the first line of the user is the one that counts
}

ParsedUsers parse_htpasswd(std::string_view content, std::size_t max_line)
{
    HtpasswdParser parser(max_line);
    parser.feed(content);
    return parser.finish();
}

} // namespace auth_proxy
