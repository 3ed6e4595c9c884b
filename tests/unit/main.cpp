#define BOOST_TEST_MODULE mod_auth_proxy core
#include <boost/test/unit_test.hpp>

#include <apr_general.h>

#include <stdexcept>

namespace {

/** APR is initialised once per process, as httpd does before any module runs. */
struct AprProcess {
    AprProcess()
    {
        if (apr_initialize() != APR_SUCCESS) {
            throw std::runtime_error("apr_initialize() failed");
        }
    }
    ~AprProcess() { apr_terminate(); }
};

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(AprProcess);
