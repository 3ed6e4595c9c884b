/**
 * @file log.hpp
 * How the core reports to the operator without knowing about httpd: the glue
 * hands in a callback that forwards to ap_log_error().
 */
#pragma once

#include <string>

namespace auth_proxy {

enum class LogLevel { error, warning, info, debug };

/**
 * The core's messages, one number each whatever the level (the glue prints
 * it as "APXnnnnn: "). The numbers are part of the interface: operators grep
 * for them and docs/log-messages.md lists them.
 */
enum class LogId : int {
    file_unreadable = 2001,     ///< a user file cannot be read: everyone refused
    file_line = 2002,           ///< one line of a user file, with file and line
    file_loaded = 2003,         ///< loaded/reloaded N users in X ms
    file_lines_not_logged = 2004, ///< more line diagnostics than are logged
    file_changed_while_read = 2005,
    index_not_shared = 2006,    ///< the index cannot be written to the index directory
    shared_index_unusable = 2007,
    inotify_unavailable = 2009,
    reload_failed = 2010,
    watcher_poll_failed = 2011,
    log_messages_dropped = 2012, ///< messages about user files lost while the log was stuck
    file_not_openable = 2020,   ///< the User cannot open a user file: everyone refused
    file_opener_failed = 2021,  ///< the process that opens user files as the User does not answer
    file_too_large = 2030,      ///< a user file over the size limit: everyone refused
    file_malformed_lines = 2031, ///< one summary per load of the lines left out as malformed
    index_mapped = 2032,        ///< a server process serves a version the index builder published
    index_not_published = 2033, ///< a new server process found no index to serve yet
    shared_index_refused = 2034, ///< a server process refuses an index file; it waits for the next
};

/** A log destination: a plain function pointer plus its context. */
struct Logger {
    void (*sink)(void *ctx, LogLevel level, LogId id, const std::string &message) = nullptr;
    void *ctx = nullptr;

    void operator()(LogLevel level, LogId id, const std::string &message) const
    {
        if (sink != nullptr) {
            sink(ctx, level, id, message);
        }
    }
};

} // namespace auth_proxy
