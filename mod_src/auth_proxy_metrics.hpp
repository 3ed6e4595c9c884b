/**
 * @file auth_proxy_metrics.hpp
 * The counters shown to operators: a section of mod_status's server-status
 * page (HTML, or `AuthProxy…: value` lines under ?auto), and a Prometheus
 * page for `SetHandler auth-proxy-metrics`.
 */
#pragma once

#include <httpd.h>

namespace auth_proxy {

/** mod_status's status_hook: the counters, in the form @p flags ask for (AP_STATUS_*). */
int status_section(request_rec *r, int flags) noexcept;

/** handler hook: the Prometheus page, for r->handler "auth-proxy-metrics", GET and HEAD only. */
int metrics_handler(request_rec *r) noexcept;

} // namespace auth_proxy
