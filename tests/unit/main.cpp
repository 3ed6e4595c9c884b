#define BOOST_TEST_MODULE mod_auth_proxy core
#include <boost/test/unit_test.hpp>
