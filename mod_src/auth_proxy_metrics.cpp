#include "auth_proxy_metrics.hpp"

#include "auth_proxy/metrics_report.hpp"
#include "auth_proxy_log.hpp"
#include "auth_proxy_runtime.hpp"

#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>

#include <cstring>
#include <exception>

APLOG_USE_MODULE(auth_proxy);

namespace auth_proxy {

namespace {

constexpr const char *kHandler = "auth-proxy-metrics";

/** The shared counters, and the user files as this process has them. */
MetricsReport current_report(Runtime &rt)
{
    MetricsReport report;
    if (rt.metrics) {
        report.counters = rt.metrics->snapshot();
    }
    if (rt.verify_limit) {
        report.verify_limit = rt.verify_limit->figures();
    }
    for (const std::string &path : rt.files.paths()) {
        FileFigures figures;
        figures.path = path;
        const std::shared_ptr<const UserFileState> state = rt.files.get(path).current();
        if (state && state->index) {
            figures.usable = true;
            figures.users = state->index->size();
            figures.index_bytes = state->index->memory_bytes();
        }
        report.files.push_back(std::move(figures));
    }
    return report;
}

void write(request_rec *r, const std::string &text)
{
    ap_rwrite(text.data(), static_cast<int>(text.size()), r);
}

/** Logs the exception being handled; called from a catch block. */
void log_failure(request_rec *r) noexcept
{
    try {
        throw;
    }
    catch (const std::exception &e) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01019) "cannot show the counters: %s", e.what());
    }
    catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APXLOGNO(01019) "cannot show the counters");
    }
}

} // namespace

int status_section(request_rec *r, int flags, Runtime &rt) noexcept
{
    try {
        const MetricsReport report = current_report(rt);
        write(r, (flags & AP_STATUS_SHORT) ? status_lines(report)
                                           : status_html(report, !(flags & AP_STATUS_NOTABLE)));
    }
    catch (...) {
        log_failure(r);
    }
    return OK;
}

int metrics_handler(request_rec *r, Runtime &rt) noexcept
{
    if (r->handler == nullptr || std::strcmp(r->handler, kHandler) != 0) {
        return DECLINED;
    }
    // What a 405's Allow lists (GET brings HEAD), and what OPTIONS answers.
    r->allowed = AP_METHOD_BIT << M_GET;
    ap_allow_methods(r, REPLACE_ALLOW, "GET", static_cast<const char *>(nullptr));
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    try {
        const std::string text = prometheus_text(current_report(rt));
        ap_set_content_type(r, kPrometheusContentType);
        ap_set_content_length(r, static_cast<apr_off_t>(text.size()));
        if (!r->header_only) {
            write(r, text);
        }
        return OK;
    }
    catch (...) {
        log_failure(r);
    }
    return HTTP_INTERNAL_SERVER_ERROR;
}

} // namespace auth_proxy
