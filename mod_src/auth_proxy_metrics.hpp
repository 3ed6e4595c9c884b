/**
 * @file auth_proxy_metrics.hpp
 * The counters shown to operators: a section of mod_status's server-status
 * page (HTML, or `AuthProxy…: value` lines under ?auto), and a Prometheus
 * page for `SetHandler auth-proxy-metrics`.
 */
#pragma once

#include <httpd.h>

namespace auth_proxy {

struct Runtime;

/** mod_status's status_hook: @p rt's counters, in the form @p flags ask for (AP_STATUS_*). */
int status_section(request_rec *r, int flags, Runtime &rt) noexcept;

/** handler hook: the Prometheus page of @p rt's counters, for r->handler "auth-proxy-metrics", GET and HEAD only. */
int metrics_handler(request_rec *r, Runtime &rt) noexcept;

} // namespace auth_proxy
