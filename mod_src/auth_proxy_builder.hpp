/**
 * @file auth_proxy_builder.hpp
 * The index builder: a process of its own, forked from the httpd parent
 * before the server processes, that keeps the parent's identity (root when
 * httpd starts as root). It watches the user files and, when one changes,
 * parses it and writes its index into the index directory, which only it
 * (and the parent) can write; the server processes, running as the User,
 * only map what it wrote. It opens the user files through the parent's
 * opener process, as the User (see file_opener.hpp): root's rights write
 * the index, never read the file. The parent restarts it if it dies, as
 * mod_cgid does with its daemon.
 */
#pragma once

#include <httpd.h>

namespace auth_proxy {

struct Runtime;

/** Forks the builder (post_config, in the parent). Logs and returns false if it cannot. */
bool start_index_builder(Runtime &rt, apr_pool_t *pconf, server_rec *s) noexcept;

} // namespace auth_proxy
