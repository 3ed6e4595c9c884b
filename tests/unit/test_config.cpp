// Every configuration field has a default and a merge rule (the two places a
// forgotten field fails silently); these tests pin both down.
#include "auth_proxy/config.hpp"
#include "auth_proxy/scheme/registry.hpp"
#include "auth_proxy/store/user_file.hpp"

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

using namespace auth_proxy;

BOOST_AUTO_TEST_SUITE(configuration)

BOOST_AUTO_TEST_CASE(a_new_directory_config_sets_nothing)
{
    const DirConfig conf;
    BOOST_TEST(conf.user_file_path == nullptr);
    BOOST_TEST(conf.user_file == nullptr);
    BOOST_TEST(conf.scheme == nullptr);
    BOOST_TEST(conf.auth_type_set == -1);
    BOOST_TEST(conf.always_proxy == -1);
    BOOST_TEST(conf.providers == nullptr); // the indexed AuthUserFile alone
}

BOOST_AUTO_TEST_CASE(the_provider_list_is_inherited_whole_and_says_whether_the_user_file_is_used)
{
    DirConfig outer, inner;
    outer.providers = "file ldap";
    BOOST_TEST(std::string(merge(outer, DirConfig{}).providers) == "file ldap");
    inner.providers = "dbm";
    BOOST_TEST(std::string(merge(outer, inner).providers) == "dbm"); // replaced, not appended

    struct Case {
        const char *providers;
        bool uses_file;
    };
    const Case cases[] = {
        {nullptr, true}, {"file", true}, {"ldap file", true}, {"ldap", false}, {"dbm dbd", false},
        {"files", false}, {"profile", false},
    };
    for (const Case &c : cases) {
        BOOST_TEST(uses_user_file(c.providers) == c.uses_file, (c.providers != nullptr ? c.providers : "(default)"));
    }
}

BOOST_AUTO_TEST_CASE(the_kerberos_store_is_found_by_its_whole_name_anywhere_in_the_list)
{
    struct Case {
        const char *providers;
        bool listed;
    };
    const Case cases[] = {
        {nullptr, false},       {"kerberos", true},    {"file kerberos", true}, {"kerberos ldap", true},
        {"ldap", false},        {"kerberos5", false},  {"mykerberos", false},
    };
    for (const Case &c : cases) {
        BOOST_TEST(lists_provider(c.providers, kKerberosProvider) == c.listed,
                   (c.providers != nullptr ? c.providers : "(default)"));
    }
}

BOOST_AUTO_TEST_CASE(the_merged_scope_names_the_sections_and_their_order)
{
    std::set<std::uint64_t> ids;
    for (int i = 0; i < 10000; ++i) {
        ids.insert(new_scope_id());
    }
    BOOST_TEST(ids.size() == 10000u); // every section an identity of its own

    DirConfig vhost, a, b, c;
    vhost.scope = new_scope_id();
    a.scope = new_scope_id();
    b.scope = new_scope_id();
    c.scope = new_scope_id();
    const std::uint64_t ab = merge(merge(vhost, a), b).scope;
    BOOST_TEST(ab == mix_scopes(mix_scopes(vhost.scope, a.scope), b.scope));
    BOOST_TEST(ab == merge(merge(vhost, a), b).scope); // the same sections: the same scope
    struct Row {
        const char *rule;
        std::uint64_t scope;
    };
    const std::vector<Row> rows = {
        {"the outer section alone", merge(vhost, a).scope},
        {"the other order", merge(merge(vhost, b), a).scope},
        {"another inner section", merge(merge(vhost, a), c).scope},
        {"one more section", merge(merge(merge(vhost, a), b), c).scope},
        {"another vhost", merge(merge(c, a), b).scope},
        {"the section's own identity", b.scope},
    };
    std::set<std::uint64_t> seen{ab};
    for (const Row &row : rows) {
        BOOST_TEST_CONTEXT(row.rule)
        {
            BOOST_TEST(seen.insert(row.scope).second, "collides with an earlier row");
        }
    }
}

BOOST_AUTO_TEST_CASE(an_inner_scope_inherits_what_it_does_not_set)
{
    UserFile outer_file("/outer");
    DirConfig outer;
    outer.user_file_path = "/outer";
    outer.user_file = &outer_file;
    outer.scheme = scheme_for_auth_type("ProxyBasic");
    outer.auth_type_set = 1;
    outer.always_proxy = 1;

    const DirConfig merged = merge(outer, DirConfig{});
    BOOST_TEST(merged.user_file_path == outer.user_file_path);
    BOOST_TEST(merged.user_file == &outer_file);
    BOOST_TEST(merged.scheme == outer.scheme);
    BOOST_TEST(merged.auth_type_set == 1);
    BOOST_TEST(merged.always_proxy == 1);
}

BOOST_AUTO_TEST_CASE(an_inner_scope_overrides_what_it_sets)
{
    UserFile outer_file("/outer"), inner_file("/inner");
    // The outer scope is ProxyBasic, the inner one another module's AuthType.
    DirConfig outer{"/outer", &outer_file, scheme_for_auth_type("ProxyBasic"), 1, 1};
    DirConfig inner{"/inner", &inner_file, nullptr, 1, 0};

    const DirConfig merged = merge(outer, inner);
    BOOST_TEST(merged.user_file_path == inner.user_file_path);
    BOOST_TEST(merged.user_file == &inner_file);
    BOOST_TEST(merged.scheme == nullptr);
    BOOST_TEST(merged.auth_type_set == 1);
    BOOST_TEST(merged.always_proxy == 0);
}

BOOST_AUTO_TEST_CASE(the_file_path_and_its_registry_entry_always_travel_together)
{
    UserFile outer_file("/outer"), inner_file("/inner");
    DirConfig outer{"/outer", &outer_file};
    DirConfig inner{"/inner", &inner_file, scheme_for_auth_type("ProxyBasic"), 1};
    const DirConfig merged = merge(outer, inner);
    BOOST_TEST(merged.user_file->path() == std::string(merged.user_file_path));
    const DirConfig back = merge(inner, DirConfig{});
    BOOST_TEST(back.user_file->path() == std::string(back.user_file_path));
}

BOOST_AUTO_TEST_CASE(server_settings_default_when_unset)
{
    const ServerConfig conf = with_defaults(ServerConfig{});
    BOOST_TEST(conf.reload_interval_us == 500000);
    BOOST_TEST(conf.cache_timeout_us == 300000000LL);
    BOOST_TEST(conf.cache_entries == 10000);
    // The throttle is on unless switched off, with an operator's defaults.
    BOOST_TEST(conf.throttle == 1);
    BOOST_TEST(conf.throttle_failures == 20);
    BOOST_TEST(conf.throttle_window_us == 600000000LL);
    BOOST_TEST(conf.throttle_lockout_us == 600000000LL);
    BOOST_TEST(conf.throttle_user_failures == 0); // per-user lockout: off
    BOOST_TEST(conf.throttle_entries == 16384);
    BOOST_TEST(conf.throttle_exempt == nullptr);
    BOOST_TEST(conf.throttle_socache == nullptr);
    // An IPv6 /56 and /48 hold many subscribers: a few times an address's budget.
    BOOST_TEST(conf.throttle_prefix56_failures == 60);
    BOOST_TEST(conf.throttle_prefix48_failures == 200);
    // Hashing leaves a core for everything else, and waits at most 2 s for it.
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    BOOST_TEST(conf.verify_limit == (cores > 1 ? cores - 1 : 1));
    BOOST_TEST(conf.verify_wait_us == 2000000);
}

BOOST_AUTO_TEST_CASE(verification_limits_merge_on_their_own_and_zero_wait_is_a_value)
{
    ServerConfig base;
    base.verify_limit = 4;
    ServerConfig add;
    add.verify_wait_us = 0; // shed at once
    const ServerConfig merged = merge(base, add);
    BOOST_TEST(merged.verify_limit == 4);
    BOOST_TEST(merged.verify_wait_us == 0);
    BOOST_TEST(with_defaults(merged).verify_wait_us == 0);
    BOOST_TEST(merge(add, base).verify_limit == 4);
    const ServerConfig unset = merge(ServerConfig{}, ServerConfig{});
    BOOST_TEST(unset.verify_limit == -1);
    BOOST_TEST(unset.verify_wait_us == -1);
}

BOOST_AUTO_TEST_CASE(prefix_limits_follow_the_address_limit_unless_set)
{
    ServerConfig few;
    few.throttle_failures = 5;
    BOOST_TEST(with_defaults(few).throttle_prefix56_failures == 15);
    BOOST_TEST(with_defaults(few).throttle_prefix48_failures == 50);
    ServerConfig huge;
    huge.throttle_failures = 1000000;
    BOOST_TEST(with_defaults(huge).throttle_prefix48_failures == 1000000); // capped at the largest count
    ServerConfig set;
    set.throttle_failures = 5;
    set.throttle_prefix56_failures = 0; // "not counted" is a value
    set.throttle_prefix48_failures = 7;
    BOOST_TEST(with_defaults(set).throttle_prefix56_failures == 0);
    BOOST_TEST(with_defaults(set).throttle_prefix48_failures == 7);
}

BOOST_AUTO_TEST_CASE(every_throttle_setting_merges_on_its_own)
{
    ServerConfig base;
    base.throttle = 1;
    base.throttle_failures = 5;
    base.throttle_window_us = 60000000;
    base.throttle_exempt = "10.0.0.0/8";
    ServerConfig add;
    add.throttle = 0; // "AuthProxyThrottle Off" is a value, not "unset"
    add.throttle_lockout_us = 30000000;
    add.throttle_user_failures = 3;
    add.throttle_entries = 64;
    add.throttle_socache = "redis:127.0.0.1:6379";
    base.throttle_prefix56_failures = 12;
    add.throttle_prefix48_failures = 0;

    const ServerConfig merged = merge(base, add);
    BOOST_TEST(merged.throttle == 0);
    BOOST_TEST(merged.throttle_failures == 5);
    BOOST_TEST(merged.throttle_window_us == 60000000);
    BOOST_TEST(merged.throttle_lockout_us == 30000000);
    BOOST_TEST(merged.throttle_user_failures == 3);
    BOOST_TEST(merged.throttle_entries == 64);
    BOOST_TEST(std::string(merged.throttle_exempt) == "10.0.0.0/8");
    BOOST_TEST(std::string(merged.throttle_socache) == "redis:127.0.0.1:6379");
    BOOST_TEST(merged.throttle_prefix56_failures == 12);
    BOOST_TEST(merged.throttle_prefix48_failures == 0);
    BOOST_TEST(merge(add, base).throttle_prefix48_failures == 0); // unset in base: add's stays
    const ServerConfig unset = merge(ServerConfig{}, ServerConfig{});
    BOOST_TEST(unset.throttle == -1);
    BOOST_TEST(unset.throttle_exempt == nullptr);
    BOOST_TEST(unset.throttle_prefix56_failures == -1);
    BOOST_TEST(unset.throttle_prefix48_failures == -1);
}

BOOST_AUTO_TEST_CASE(server_settings_merge_field_by_field_and_zero_is_a_value)
{
    ServerConfig base;
    base.reload_interval_us = 2000000;
    base.cache_timeout_us = 10000000;
    base.cache_entries = 5;
    ServerConfig add;
    add.cache_timeout_us = 0; // "AuthProxyCacheTimeout 0" disables, it is not "unset"

    const ServerConfig merged = with_defaults(merge(base, add));
    BOOST_TEST(merged.reload_interval_us == 2000000);
    BOOST_TEST(merged.cache_timeout_us == 0);
    BOOST_TEST(merged.cache_entries == 5);
}

struct SecondsCase {
    const char *text;
    bool ok;
    std::int64_t microseconds;
};

BOOST_AUTO_TEST_CASE(directive_seconds_parse_strictly)
{
    const SecondsCase cases[] = {
        {"0", true, 0},
        {"300", true, 300000000},
        {"0.5", true, 500000},
        {"0.001", true, 1000},
        {"1e1", true, 10000000},
        {"-1", false, 0},
        {"abc", false, 0},
        {"", false, 0},
        {"5s", false, 0},
        {"nan", false, 0},
        {"inf", false, 0},
        {"99999999999", false, 0},
    };
    for (const SecondsCase &c : cases) {
        std::int64_t us = -7;
        BOOST_TEST_CONTEXT("\"" << c.text << "\"")
        {
            BOOST_TEST(parse_seconds(c.text, us) == c.ok);
            if (c.ok) {
                BOOST_TEST(us == c.microseconds);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(seconds_up_to_the_limit_the_messages_name)
{
    std::int64_t us = 0;
    BOOST_TEST(kMaxDirectiveSeconds == 31622400L);
    BOOST_TEST(parse_seconds("31622400", us));
    BOOST_TEST(!parse_seconds("31622401", us));
}

BOOST_AUTO_TEST_CASE(provider_names_map_to_the_modules_that_register_them)
{
    static const struct {
        const char *provider;
        const char *modules; // null: not one httpd ships
    } cases[] = {
        {"file", "mod_authn_file"},
        {"dbm", "mod_authn_dbm"},
        {"dbd", "mod_authn_dbd and mod_dbd"},
        {"ldap", "mod_authnz_ldap and mod_ldap"},
        {"anon", "mod_authn_anon"},
        {"socache", "mod_authn_socache"},
        {"LDAP", nullptr}, // provider names are case-sensitive in httpd
        {"myalias", nullptr},
        {"", nullptr},
        {nullptr, nullptr},
    };
    for (const auto &c : cases) {
        BOOST_TEST_CONTEXT((c.provider != nullptr ? c.provider : "(null)"))
        {
            const char *got = provider_modules(c.provider);
            BOOST_TEST((got == nullptr) == (c.modules == nullptr));
            if (got != nullptr && c.modules != nullptr) {
                BOOST_TEST(std::string(got) == c.modules);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(auth_name_is_inherited_like_the_other_fields)
{
    DirConfig outer, inner;
    BOOST_TEST(DirConfig{}.auth_name == -1);
    outer.auth_name = 1;
    BOOST_TEST(merge(outer, inner).auth_name == 1);
    BOOST_TEST(merge(inner, outer).auth_name == 1);
    BOOST_TEST(merge(inner, inner).auth_name == -1);
}

BOOST_AUTO_TEST_CASE(a_mistyped_auth_type_is_told_from_another_modules)
{
    static const struct {
        const char *name;
        bool near_miss;
    } cases[] = {
        {"ProxyBasic", false}, // the type itself, in any case
        {"proxybasic", false},
        {"ProxyBasci", true},  // two letters swapped
        {"ProxyBsic", true},   // one missing
        {"ProxyBasics", true}, // one extra
        {"ProxyBasik", true},  // one replaced
        {"Proxy-Basic", true}, // punctuation
        {"Proxy_Basic", true},
        {"ProxBasik", true},   // two slips
        {"Basic", false},      // other modules' types
        {"Digest", false},
        {"None", false},
        {"Form", false},
        {"ProxyNegotiate", false},
        {"", false},
    };
    for (const auto &c : cases) {
        BOOST_TEST_CONTEXT(c.name)
        {
            BOOST_TEST(is_near_miss(c.name, "ProxyBasic") == c.near_miss);
        }
    }
    BOOST_TEST(!is_near_miss(nullptr, "ProxyBasic"));
}

BOOST_AUTO_TEST_CASE(directive_counts_parse_strictly)
{
    long n = -7;
    BOOST_TEST(parse_count("0", 100, n));
    BOOST_TEST(n == 0);
    BOOST_TEST(parse_count("100", 100, n));
    BOOST_TEST(n == 100);
    BOOST_TEST(!parse_count("101", 100, n));
    BOOST_TEST(!parse_count("-1", 100, n));
    BOOST_TEST(!parse_count("12x", 100, n));
    BOOST_TEST(!parse_count("", 100, n));
    BOOST_TEST(!parse_count(nullptr, 100, n));
}

BOOST_AUTO_TEST_SUITE_END()
