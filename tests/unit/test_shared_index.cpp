// Specification of the shared index file: what a serialized index holds,
// that any damage to it is refused (never a crash, never a wrong answer),
// and how UserFile shares it between processes.

#include "auth_proxy/shared_index.hpp"
#include "auth_proxy/user_file.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using auth_proxy::FileSignature;
using auth_proxy::HtpasswdIndex;
using auth_proxy::Logger;
using auth_proxy::LogLevel;
using auth_proxy::shared_index_path;
using auth_proxy::stat_signature;
using auth_proxy::UserFile;

using test_support::TempDir;
using test_support::write_file;
using test_support::read_file;

BOOST_AUTO_TEST_SUITE(shared_index)

namespace {

const std::string kSha = "{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=";
const std::string kApr1 = "$apr1$jFArcZ5m$wqCp4W1cQBmciHu1wOfG61";
const std::string kBcrypt = "$2y$04$fxEw42QHmPVcGLgMERxWeuZScXnG.1Xomj7P7a2xzwgBL3DJ0SL9a";

const std::string kContent = "# proxy users\nalice:" + kApr1 + "\nbob:" + kSha + "\ncarol:" + kBcrypt +
                             "\nalice:" + kSha + "\n";




struct LogCapture {
    std::mutex mutex;
    std::vector<std::string> lines;
    Logger logger()
    {
        Logger log;
        log.sink = [](void *ctx, LogLevel, const std::string &message) {
            auto *self = static_cast<LogCapture *>(ctx);
            std::lock_guard<std::mutex> lock(self->mutex);
            self->lines.push_back(message);
        };
        log.ctx = this;
        return log;
    }
    std::size_t count(const std::string &piece)
    {
        std::lock_guard<std::mutex> lock(mutex);
        std::size_t n = 0;
        for (const std::string &line : lines) {
            n += line.find(piece) != std::string::npos ? 1 : 0;
        }
        return n;
    }
    std::string dump()
    {
        std::lock_guard<std::mutex> lock(mutex);
        std::string out;
        for (const std::string &line : lines) {
            out += "\n  " + line;
        }
        return out;
    }
};

/** The answers a correct index of kContent gives. */
void check_answers(const HtpasswdIndex &index)
{
    BOOST_TEST(index.size() == 3u);
    BOOST_TEST_REQUIRE(index.find("alice") != nullptr);
    BOOST_TEST(std::string(index.find("alice")->hash) == kApr1); // the first alice wins
    BOOST_TEST(std::string(index.find("bob")->hash) == kSha);
    BOOST_TEST((index.find("carol")->format == auth_proxy::HashFormat::bcrypt));
    BOOST_TEST(index.find("carol")->user_length == 5u);
    BOOST_TEST(index.find("dave") == nullptr);
    BOOST_TEST(index.find("") == nullptr);
}

std::string serialized_sample()
{
    FileSignature sig;
    sig.device = 7;
    sig.inode = 42;
    sig.size = static_cast<std::int64_t>(kContent.size());
    sig.mtime_ns = 123;
    sig.ctime_ns = 456;
    const HtpasswdIndex built(kContent, nullptr, sig);
    return std::string(built.serialized());
}

/** Header field offsets (see htpasswd_index.cpp): the ones damage tests aim at. */
struct HeaderField {
    const char *name;
    std::size_t offset;
};
const HeaderField kHeaderFields[] = {
    {"magic", 0},           {"version", 8},         {"header size", 12},    {"byte order", 16},
    {"total size", 24},     {"text offset", 72},    {"text size", 80},      {"entries offset", 88},
    {"entry count", 96},    {"slots offset", 104},  {"slot count", 112},    {"user count", 120},
    {"check value", 128},
};

} // namespace

BOOST_AUTO_TEST_CASE(a_serialized_index_reads_back_with_the_same_answers_and_source)
{
    const std::string bytes = serialized_sample();
    std::string error;
    const auto copy = HtpasswdIndex::from_serialized(bytes, error);
    BOOST_TEST_REQUIRE(copy != nullptr, error);
    check_answers(*copy);
    BOOST_TEST(copy->source().inode == 42u);
    BOOST_TEST(copy->source().ctime_ns == 456);
    BOOST_TEST(copy->serialized() == bytes);

    TempDir dir;
    write_file(dir.file("x.idx"), bytes);
    const int fd = ::open(dir.file("x.idx").c_str(), O_RDONLY);
    BOOST_TEST_REQUIRE(fd >= 0);
    const auto mapped = HtpasswdIndex::map(fd, error);
    ::close(fd); // the mapping outlives the descriptor
    BOOST_TEST_REQUIRE(mapped != nullptr, error);
    BOOST_TEST(mapped->is_mapped());
    check_answers(*mapped);
}

BOOST_AUTO_TEST_CASE(an_empty_file_serializes_too)
{
    const HtpasswdIndex built("");
    std::string error;
    const auto copy = HtpasswdIndex::from_serialized(std::string(built.serialized()), error);
    BOOST_TEST_REQUIRE(copy != nullptr, error);
    BOOST_TEST(copy->size() == 0u);
    BOOST_TEST(copy->find("alice") == nullptr);
}

BOOST_AUTO_TEST_CASE(every_truncation_is_refused)
{
    const std::string bytes = serialized_sample();
    std::size_t accepted = 0;
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
        std::string error;
        if (HtpasswdIndex::from_serialized(bytes.substr(0, cut), error) != nullptr) {
            ++accepted;
            BOOST_TEST_MESSAGE("accepted truncation at " << cut);
        }
        else {
            BOOST_TEST(!error.empty());
        }
    }
    BOOST_TEST(accepted == 0u);
    std::string error;
    BOOST_TEST(HtpasswdIndex::from_serialized(bytes + "x", error) == nullptr, "a longer file is refused too");
}

BOOST_AUTO_TEST_CASE(damaged_header_fields_are_refused)
{
    const std::string bytes = serialized_sample();
    // Each field: a few bits flipped low and high, and values far out of range.
    for (const HeaderField &field : kHeaderFields) {
        for (const unsigned char flip : {0x01, 0x02, 0x10, 0x80}) {
            for (const std::size_t byte : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
                std::string damaged = bytes;
                damaged[field.offset + byte] = static_cast<char>(damaged[field.offset + byte] ^ flip);
                std::string error;
                BOOST_TEST(HtpasswdIndex::from_serialized(damaged, error) == nullptr,
                           field.name << " byte " << byte << " ^ " << int(flip) << " accepted");
            }
        }
        std::string damaged = bytes;
        std::memset(&damaged[field.offset], 0xff, 4);
        std::string error;
        BOOST_TEST(HtpasswdIndex::from_serialized(damaged, error) == nullptr, field.name << " = 0xffffffff accepted");
    }
}

BOOST_AUTO_TEST_CASE(any_damaged_byte_after_the_header_never_crashes_or_admits_a_stranger)
{
    // Not every byte flip is detectable (a flipped letter in a hash is just
    // another hash), but none may crash, and an accepted index must answer
    // only with users and hashes taken from its own text.
    const std::string bytes = serialized_sample();
    std::size_t refused = 0;
    for (std::size_t at = 136; at < bytes.size(); ++at) {
        for (const unsigned char flip : {0x01, 0x40, 0xff}) {
            std::string damaged = bytes;
            damaged[at] = static_cast<char>(damaged[at] ^ flip);
            std::string error;
            const auto index = HtpasswdIndex::from_serialized(damaged, error);
            if (!index) {
                ++refused;
                continue;
            }
            BOOST_TEST(index->size() <= 3u);
            for (const char *user : {"alice", "bob", "carol", "dave", ""}) {
                const auto entry = index->find(user);
                if (entry) {
                    BOOST_TEST(std::strlen(entry->user) == entry->user_length);
                    BOOST_TEST(std::strcmp(entry->user, user) == 0);
                    BOOST_TEST((entry->format == auth_proxy::classify_hash(entry->hash)));
                }
            }
        }
    }
    BOOST_TEST(refused > 0u);
}

BOOST_AUTO_TEST_CASE(damaged_entries_and_slots_are_refused)
{
    const std::string bytes = serialized_sample();
    std::uint64_t entries_offset = 0, entry_count = 0, slots_offset = 0, slot_count = 0;
    std::memcpy(&entries_offset, bytes.data() + 88, 8);
    std::memcpy(&entry_count, bytes.data() + 96, 8);
    std::memcpy(&slots_offset, bytes.data() + 104, 8);
    std::memcpy(&slot_count, bytes.data() + 112, 8);
    BOOST_TEST_REQUIRE(entry_count == 4u);

    struct Damage {
        const char *what;
        std::size_t offset;
        std::uint32_t value;
    };
    std::vector<Damage> damages;
    for (std::size_t i = 0; i < entry_count; ++i) {
        const std::size_t e = entries_offset + i * 12;
        damages.push_back({"user offset past the text", e, 0x7fffffff});
        damages.push_back({"user length zero", e + 4, 0});
        damages.push_back({"user length past the text", e + 4, 0xffffffff});
        damages.push_back({"user length one short (no NUL after it)", e + 4, 2});
        damages.push_back({"hash offset past the text", e + 8, 0xfffffff0});
    }
    for (std::size_t s = 0; s < slot_count; ++s) {
        damages.push_back({"slot past the entries", slots_offset + s * 8 + 4, static_cast<std::uint32_t>(entry_count + 1)});
    }
    for (const Damage &d : damages) {
        std::string damaged = bytes;
        std::uint32_t old = 0;
        std::memcpy(&old, damaged.data() + d.offset, 4);
        if (old == d.value) {
            continue;
        }
        std::memcpy(&damaged[d.offset], &d.value, 4);
        std::string error;
        BOOST_TEST(HtpasswdIndex::from_serialized(damaged, error) == nullptr, d.what << " at " << d.offset);
    }

    // A slot that leads to the second "alice" instead of the first, and a
    // table where a user is unreachable.
    // So is a slot whose tag no longer matches its user's.
    std::vector<std::uint32_t> slots(slot_count * 2);
    std::memcpy(slots.data(), bytes.data() + slots_offset, slot_count * 8);
    std::size_t alice_slots = 0;
    for (std::size_t s = 0; s < slot_count; ++s) {
        if (slots[2 * s + 1] == 1) { // the first alice
            ++alice_slots;
            for (const std::uint32_t value : {std::uint32_t{4}, std::uint32_t{0}}) {
                std::string damaged = bytes;
                std::memcpy(&damaged[slots_offset + s * 8 + 4], &value, 4);
                std::string error;
                BOOST_TEST(HtpasswdIndex::from_serialized(damaged, error) == nullptr, "alice's slot = " << value);
            }
            std::string damaged = bytes;
            const std::uint32_t other_tag = slots[2 * s] ^ 0x10000u;
            std::memcpy(&damaged[slots_offset + s * 8], &other_tag, 4);
            std::string error;
            BOOST_TEST(HtpasswdIndex::from_serialized(damaged, error) == nullptr, "alice's tag changed");
        }
    }
    BOOST_TEST(alice_slots == 1u);
}

BOOST_AUTO_TEST_CASE(an_index_file_name_depends_only_on_the_path)
{
    BOOST_TEST(shared_index_path("/run/x", "/etc/a") == shared_index_path("/run/x", "/etc/a"));
    BOOST_TEST(shared_index_path("/run/x", "/etc/a") != shared_index_path("/run/x", "/etc/b"));
    BOOST_TEST(shared_index_path("/run/x", "/etc/a").rfind("/run/x/", 0) == 0u);
}

namespace {

std::string sha_users(const std::string &prefix, int n)
{
    std::string out;
    for (int i = 0; i < n; ++i) {
        out += prefix + std::to_string(i) + ":" + kSha + "\n";
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(only_a_shared_index_is_released_and_the_next_look_maps_it_again)
{
    TempDir dir;
    const std::string users = dir.file("users");
    write_file(users, sha_users("u", 100));
    ::mkdir(dir.file("shared").c_str(), 0700);
    LogCapture log;

    UserFile shared(users); // the parent: builds the index file, then lets go of it
    shared.set_shared_dir(dir.file("shared"));
    BOOST_TEST_REQUIRE(shared.state(log.logger())->index->is_mapped());
    BOOST_TEST(shared.release_shared_index());
    BOOST_TEST(!shared.release_shared_index()); // nothing left to release
    const auto again = shared.state(log.logger());
    BOOST_TEST_REQUIRE(again->index != nullptr);
    BOOST_TEST(again->index->is_mapped());
    BOOST_TEST(again->index->find("u99") != nullptr);
    BOOST_TEST(log.count("mapped shared index") == 1u, log.dump()); // mapped, not parsed again

    UserFile private_copy(users); // no shared directory: the index is kept
    const auto kept = private_copy.state(log.logger());
    BOOST_TEST(!private_copy.release_shared_index());
    BOOST_TEST((private_copy.state(log.logger()) == kept));

    UserFile broken(dir.file("missing")); // an error state is kept too
    broken.set_shared_dir(dir.file("shared"));
    const auto error = broken.state(log.logger());
    BOOST_TEST_REQUIRE(error->index == nullptr);
    BOOST_TEST(!broken.release_shared_index());
    BOOST_TEST((broken.state(log.logger()) == error));
}

BOOST_AUTO_TEST_CASE(a_second_process_maps_the_index_the_first_one_built)
{
    TempDir dir;
    const std::string users = dir.file("users");
    write_file(users, sha_users("u", 1000));
    ::mkdir(dir.file("shared").c_str(), 0700);

    LogCapture first_log, second_log;
    UserFile first(users), second(users); // as in two server processes
    first.set_shared_dir(dir.file("shared"));
    second.set_shared_dir(dir.file("shared"));

    const auto a = first.state(first_log.logger());
    const auto b = second.state(second_log.logger());
    BOOST_TEST_REQUIRE(a->index != nullptr);
    BOOST_TEST_REQUIRE(b->index != nullptr);
    BOOST_TEST(first_log.count("mapped shared index") == 0u, first_log.dump());
    BOOST_TEST(first_log.count("loaded " + users + ": 1000 users in") == 1u, first_log.dump());
    BOOST_TEST(second_log.count("loaded " + users + ": 1000 users in") == 1u, second_log.dump());
    BOOST_TEST(second_log.count("mapped shared index " + shared_index_path(dir.file("shared"), users)) == 1u,
               second_log.dump());
    BOOST_TEST(a->index->is_mapped());
    BOOST_TEST(b->index->is_mapped());
    BOOST_TEST(b->index->find("u999") != nullptr);
    BOOST_TEST(b->index->find("u1000") == nullptr);
    BOOST_TEST((a->signature == b->signature));
}

BOOST_AUTO_TEST_CASE(a_stale_index_is_rebuilt_and_replaced)
{
    TempDir dir;
    const std::string users = dir.file("users");
    const std::string shared = dir.file("shared");
    ::mkdir(shared.c_str(), 0700);
    write_file(users, sha_users("u", 10));
    LogCapture log;
    UserFile first(users);
    first.set_shared_dir(shared);
    BOOST_TEST_REQUIRE(first.state(log.logger())->index->size() == 10u);

    // The file changes (another size, so the signature surely differs).
    write_file(users, sha_users("v", 20));
    LogCapture second_log;
    UserFile second(users);
    second.set_shared_dir(shared);
    const auto state = second.state(second_log.logger());
    BOOST_TEST_REQUIRE(state->index != nullptr);
    BOOST_TEST(state->index->size() == 20u);
    BOOST_TEST(state->index->find("u1") == nullptr);
    BOOST_TEST(second_log.count("mapped shared index") == 0u, second_log.dump());

    FileSignature now;
    BOOST_TEST_REQUIRE(stat_signature(users, now) == 0);
    std::string error;
    const auto on_disk = auth_proxy::open_shared_index(shared_index_path(shared, users), now, error);
    BOOST_TEST_REQUIRE(on_disk != nullptr, error);
    BOOST_TEST(on_disk->size() == 20u);
}

BOOST_AUTO_TEST_CASE(a_corrupt_index_file_is_reported_and_rebuilt)
{
    TempDir dir;
    const std::string users = dir.file("users");
    const std::string shared = dir.file("shared");
    ::mkdir(shared.c_str(), 0700);
    write_file(users, sha_users("u", 50));
    LogCapture log;
    UserFile first(users);
    first.set_shared_dir(shared);
    BOOST_TEST_REQUIRE(first.state(log.logger())->index != nullptr);

    const std::string index_file = shared_index_path(shared, users);
    const std::string bytes = read_file(index_file);
    write_file(index_file + ".cut", bytes.substr(0, bytes.size() / 2));
    std::filesystem::rename(index_file + ".cut", index_file); // never in place: others may map it

    LogCapture second_log;
    UserFile second(users);
    second.set_shared_dir(shared);
    const auto state = second.state(second_log.logger());
    BOOST_TEST_REQUIRE(state->index != nullptr);
    BOOST_TEST(state->index->size() == 50u);
    BOOST_TEST(second_log.count("is unusable") == 1u, second_log.dump());
    BOOST_TEST(read_file(index_file).size() == bytes.size(), "the index file was rebuilt");
}

BOOST_AUTO_TEST_CASE(an_unusable_directory_falls_back_to_a_private_index_with_one_log_line)
{
    // A missing directory (root would write into a read-only one anyway).
    TempDir dir;
    const std::string users = dir.file("users");
    write_file(users, sha_users("u", 5));
    LogCapture log;
    UserFile file(users);
    file.set_shared_dir(dir.file("missing"));
    const auto state = file.state(log.logger());
    BOOST_TEST_REQUIRE(state->index != nullptr);
    BOOST_TEST(state->index->size() == 5u);
    BOOST_TEST(!state->index->is_mapped());
    BOOST_TEST(log.count("cannot share the index of " + users) == 1u, log.dump());

    // A reload fails the same way: not said again.
    write_file(users, sha_users("u", 6));
    BOOST_TEST(file.refresh(log.logger()));
    BOOST_TEST(file.state(log.logger())->index->size() == 6u);
    BOOST_TEST(log.count("cannot share the index of " + users) == 1u, log.dump());
}

BOOST_AUTO_TEST_CASE(without_a_shared_directory_nothing_is_written)
{
    TempDir dir;
    const std::string users = dir.file("users");
    write_file(users, sha_users("u", 5));
    LogCapture log;
    UserFile file(users);
    const auto state = file.state(log.logger());
    BOOST_TEST_REQUIRE(state->index != nullptr);
    BOOST_TEST(!state->index->is_mapped());
    BOOST_TEST(log.count("shared index") + log.count("cannot share") == 0u, log.dump());
    BOOST_TEST(std::distance(std::filesystem::directory_iterator(dir.path), {}) == 1);
}

BOOST_AUTO_TEST_SUITE_END()
