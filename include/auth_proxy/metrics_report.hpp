/**
 * @file metrics_report.hpp
 * The counters as text: mod_status's machine-readable lines (?auto), its
 * HTML section, and the Prometheus text exposition format (0.0.4). Pure
 * functions over a snapshot; the glue only writes what they return.
 *
 * One table of families drives all three, so a counter has the same
 * meaning, and a stable name, everywhere:
 *
 * | Prometheus | ?auto |
 * |---|---|
 * | auth_proxy_admitted_total | AuthProxyAdmitted |
 * | auth_proxy_failures_total{reason="wrong_password"} | AuthProxyFailuresWrongPassword |
 * | auth_proxy_verifications_total{format="bcrypt"} | AuthProxyVerificationsBcrypt |
 * | auth_proxy_users{file="/etc/users"} | AuthProxyUsers(/etc/users) |
 */
#pragma once

#include "auth_proxy/limit/verify_limit.hpp"
#include "auth_proxy/metrics.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace auth_proxy {

/** One user file as the answering process sees it. */
struct FileFigures {
    std::string path;
    std::size_t users = 0;       ///< usable entries; 0 while the file is unusable
    std::size_t index_bytes = 0; ///< the index, the file's text included
    bool usable = false;         ///< the file has an index (false: requests of its scopes get 500)
};

/** What a report shows. */
struct MetricsReport {
    MetricsSnapshot counters;
    std::vector<FileFigures> files;
    VerifyLimitFigures verify_limit{}; ///< the verification slots (all zero: no limit)
};

/** `AuthProxyAdmitted: 12` lines, one per counter, for mod_status's ?auto. */
std::string status_lines(const MetricsReport &report);

/** mod_status's HTML section; @p tables false for its ?notable view. */
std::string status_html(const MetricsReport &report, bool tables);

/** The Prometheus text exposition format, `# HELP` and `# TYPE` for each family. */
std::string prometheus_text(const MetricsReport &report);

/** The Content-Type of prometheus_text(). */
constexpr const char *kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

} // namespace auth_proxy
