/**
 * @file log.hpp
 * How the core reports to the operator without knowing about httpd: the glue
 * hands in a callback that forwards to ap_log_error().
 */
#pragma once

#include <string>

namespace auth_proxy {

enum class LogLevel { error, warning, info, debug };

/** A log destination: a plain function pointer plus its context. */
struct Logger {
    void (*sink)(void *ctx, LogLevel level, const std::string &message) = nullptr;
    void *ctx = nullptr;

    void operator()(LogLevel level, const std::string &message) const
    {
        if (sink != nullptr) {
            sink(ctx, level, message);
        }
    }
};

} // namespace auth_proxy
