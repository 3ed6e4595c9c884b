/**
 * @file service_keys.hpp
 * The proxy's service keys (AuthProxyKeytab), read once at server start.
 */
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace auth_proxy {

/**
 * A process-private copy of a service keytab, as httpd reads a TLS key: the
 * file is read once, by root, at server start, and every key is copied into
 * an MIT krb5 "MEMORY:" keytab of this process. The children that httpd
 * forks later inherit that memory, so they accept tickets as the User
 * without being able to read the file.
 *
 * The MEMORY keytab lives as long as this object (MIT frees it with its
 * last handle), and its name is unique in the process, so a restart that
 * loads the file again never sees the keys of an earlier load.
 */
class ServiceKeys {
public:
    /**
     * Reads every entry of the keytab file @p path. Fails, with @p error
     * saying why, if the file is missing or unreadable, is not a keytab,
     * holds no key, or holds no key of an HTTP/ service (no browser or curl
     * asks for another). Never throws.
     */
    static std::unique_ptr<ServiceKeys> load(const std::string &path, std::string &error) noexcept;

    ~ServiceKeys();
    ServiceKeys(const ServiceKeys &) = delete;
    ServiceKeys &operator=(const ServiceKeys &) = delete;

    /** The keytab name to acquire acceptor credentials with, "MEMORY:auth_proxy_<pid>_<n>". */
    const std::string &keytab_name() const noexcept { return name_; }
    /** The file the keys came from. */
    const std::string &path() const noexcept { return path_; }
    /** The distinct principals, in file order, e.g. "HTTP/proxy.example.com@EXAMPLE.COM". */
    const std::vector<std::string> &principals() const noexcept { return principals_; }
    /** Keys copied (a principal has one per encryption type and key version). */
    std::size_t key_count() const noexcept { return keys_; }
    /** For a log line: "HTTP/a@R, HTTP/b@R (4 keys)". */
    std::string summary() const;

private:
    struct Handles;
    ServiceKeys() = default;

    std::unique_ptr<Handles> handles_;
    std::string name_;
    std::string path_;
    std::vector<std::string> principals_;
    std::size_t keys_ = 0;
};

} // namespace auth_proxy
