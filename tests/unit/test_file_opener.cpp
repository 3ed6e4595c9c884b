// Specification of the opener that root processes read user files through:
// the request protocol (a descriptor or an errno back, concurrent requests
// never crossed), and the process that has become the User (run as root
// only), which opens exactly what the User could.

#include "auth_proxy/store/file_opener.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using auth_proxy::become;
using auth_proxy::Identity;
using auth_proxy::OpenerProcess;
using auth_proxy::OpenResult;
using auth_proxy::request_open;
using auth_proxy::serve_open_requests;
using auth_proxy::UniqueFd;

using test_support::TempDir;
using test_support::write_file;

using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(file_opener)

namespace {

/** What @p fd reads from its start. */
std::string contents(const UniqueFd &fd)
{
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::pread(fd.get(), buf, sizeof buf, static_cast<off_t>(out.size()))) > 0) {
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

/** A serve_open_requests() loop in a thread of this process, on one end of a socket pair. */
struct InProcessOpener {
    UniqueFd requests;
    std::thread server;
    int served = -1;

    InProcessOpener()
    {
        int pair[2];
        BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
        requests.reset(pair[0]);
        server = std::thread([this, fd = pair[1]] {
            served = serve_open_requests(fd);
            ::close(fd);
        });
    }
    ~InProcessOpener()
    {
        requests.reset();
        server.join();
    }
    OpenResult open(const std::string &path) { return request_open(requests.get(), path, 5s); }
};

/** An unprivileged identity with a supplementary group of its own. */
Identity nobody_with_group(gid_t extra)
{
    Identity who;
    who.uid = 65534;
    who.gid = 65534;
    who.groups = {65534, extra};
    who.name = "nobody";
    return who;
}

/** Waits up to 10 s for @p pid to exit; true if it did. */
bool exits(pid_t pid)
{
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) {
            return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

} // namespace

BOOST_AUTO_TEST_CASE(the_answer_is_the_descriptor_or_the_errno_of_the_open)
{
    TempDir dir;
    write_file(dir.file("users"), "alice:x\n");
    InProcessOpener opener;
    struct Case {
        std::string path;
        int error;
    };
    const std::vector<Case> cases = {
        {dir.file("users"), 0},
        {dir.file("missing"), ENOENT},
        {dir.file("users/below"), ENOTDIR},
        {"", EINVAL},
        {std::string("a\0b", 3), EINVAL},
        {"/" + std::string(5000, 'x'), ENAMETOOLONG},
        {"/" + std::string(300, 'x'), ENAMETOOLONG}, // a name over NAME_MAX: the open's own answer
    };
    for (const Case &c : cases) {
        const OpenResult r = opener.open(c.path);
        BOOST_TEST(r.error == c.error, c.path.substr(0, 40));
        BOOST_TEST(!r.opener_failed);
        BOOST_TEST(static_cast<bool>(r.fd) == (c.error == 0));
    }
    const OpenResult ok = opener.open(dir.file("users"));
    BOOST_TEST(contents(ok.fd) == "alice:x\n");
    BOOST_TEST((::fcntl(ok.fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
}

BOOST_AUTO_TEST_CASE(a_file_on_proc_is_refused_since_proc_self_would_be_the_opener)
{
    InProcessOpener opener;
    for (const char *path : {"/proc/self/maps", "/proc/self/status", "/proc/version"}) {
        BOOST_TEST(opener.open(path).error == EACCES, path);
        BOOST_TEST(auth_proxy::open_with_own_rights(path).error == EACCES, path);
    }
}

BOOST_AUTO_TEST_CASE(concurrent_requests_each_get_their_own_file)
{
    TempDir dir;
    for (int i = 0; i < 8; ++i) {
        write_file(dir.file("f" + std::to_string(i)), "content " + std::to_string(i));
    }
    InProcessOpener opener;
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                const int k = (t + i) % 8;
                const OpenResult r = opener.open(dir.file("f" + std::to_string(k)));
                if (!r.fd || contents(r.fd) != "content " + std::to_string(k)) {
                    ++wrong;
                }
            }
        });
    }
    for (std::thread &t : threads) {
        t.join();
    }
    BOOST_TEST(wrong.load() == 0);
}

BOOST_AUTO_TEST_CASE(the_server_ends_when_every_requester_has_closed_its_end)
{
    InProcessOpener opener;
    BOOST_TEST(opener.open("/").error == 0);
    opener.requests.reset();
    opener.server.join();
    BOOST_TEST(opener.served == 0);
    opener.server = std::thread([] {}); // for the destructor's join
}

BOOST_AUTO_TEST_CASE(an_opener_that_is_gone_is_a_failure_of_the_opener_not_of_the_file)
{
    int pair[2];
    BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
    const UniqueFd requests(pair[0]);
    ::close(pair[1]);
    const OpenResult r = request_open(requests.get(), "/", 1s);
    BOOST_TEST(r.opener_failed);
    BOOST_TEST(!r.fd);
    BOOST_TEST(r.error != 0);
}

BOOST_AUTO_TEST_CASE(an_opener_that_does_not_answer_in_time_is_a_failure_of_the_opener)
{
    int pair[2];
    BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
    const UniqueFd requests(pair[0]);
    const UniqueFd deaf(pair[1]); // receives, never answers
    const auto started = std::chrono::steady_clock::now();
    const OpenResult r = request_open(requests.get(), "/", 200ms);
    BOOST_TEST(r.opener_failed);
    BOOST_TEST(r.error == ETIMEDOUT);
    BOOST_TEST((std::chrono::steady_clock::now() - started >= 200ms));
}

BOOST_AUTO_TEST_CASE(the_opener_process_opens_exactly_what_the_user_can)
{
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: becoming another user needs root");
        return;
    }
    TempDir dir;
    ::chmod(dir.path.c_str(), 0755);
    const gid_t extra = 4242;
    write_file(dir.file("public"), "public\n");
    ::chmod(dir.file("public").c_str(), 0644);
    write_file(dir.file("secret"), "secret\n");
    ::chmod(dir.file("secret").c_str(), 0600); // root's only
    write_file(dir.file("group"), "group\n");
    ::chown(dir.file("group").c_str(), 0, extra);
    ::chmod(dir.file("group").c_str(), 0640); // readable through a supplementary group only
    std::filesystem::create_directory(dir.file("closed"));
    ::chmod(dir.file("closed").c_str(), 0700);
    write_file(dir.file("closed/inside"), "inside\n");
    ::chmod(dir.file("closed/inside").c_str(), 0644); // readable, but not reachable
    std::filesystem::create_symlink(dir.file("secret"), dir.file("link-to-secret"));
    std::filesystem::create_symlink(dir.file("public"), dir.file("link-to-public"));
    std::filesystem::create_symlink("/proc/self/environ", dir.file("link-to-environ"));
    std::filesystem::create_symlink("/proc/self/maps", dir.file("link-to-maps"));

    std::string error;
    const auto opener = OpenerProcess::start(nobody_with_group(extra), error);
    BOOST_TEST_REQUIRE((opener != nullptr), error);
    BOOST_TEST(opener->who() == "nobody");
    struct Case {
        const char *name;
        int error;
    };
    for (const Case &c : std::vector<Case>{{"public", 0},
                                           {"link-to-public", 0},
                                           {"group", 0},
                                           {"secret", EACCES},
                                           {"link-to-secret", EACCES},
                                           {"closed/inside", EACCES},
                                           {"link-to-environ", EACCES}, // its own, but not dumpable
                                           {"link-to-maps", EACCES},    // its own, and on /proc
                                           {"missing", ENOENT}}) {
        const OpenResult r = opener->open(dir.file(c.name));
        BOOST_TEST(r.error == c.error, c.name);
        BOOST_TEST(!r.opener_failed, c.name);
    }
    BOOST_TEST(contents(opener->open(dir.file("group")).fd) == "group\n");
    BOOST_TEST(opener->open("/etc/shadow").error == EACCES);

    // It ends once its socket is closed, and answers nothing after it was killed.
    const pid_t pid = opener->pid();
    const auto killed = OpenerProcess::start(nobody_with_group(extra), error);
    BOOST_TEST_REQUIRE((killed != nullptr), error);
    ::kill(killed->pid(), SIGKILL);
    BOOST_TEST(exits(killed->pid()));
    const OpenResult r = killed->open(dir.file("public"));
    BOOST_TEST(r.opener_failed);
    const_cast<OpenerProcess &>(*opener).close_here();
    BOOST_TEST(exits(pid));
}

BOOST_AUTO_TEST_CASE(become_refuses_an_identity_a_non_root_process_cannot_take)
{
    if (::geteuid() == 0) {
        // Checked in a child, which may then drop root for good.
        const pid_t pid = ::fork();
        BOOST_TEST_REQUIRE(pid >= 0);
        if (pid == 0) {
            Identity self = nobody_with_group(4242);
            if (become(self) != 0) {
                ::_exit(1);
            }
            Identity root;
            ::_exit(become(root) == EPERM && become(self) == 0 ? 0 : 2);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        BOOST_TEST(WIFEXITED(status));
        BOOST_TEST(WEXITSTATUS(status) == 0);
        return;
    }
    Identity root;
    BOOST_TEST(become(root) == EPERM);
}

BOOST_AUTO_TEST_SUITE_END()
