// Specification of the index directory every server process maps: what a
// serialized index holds, that any damage to it is refused (never a crash,
// never a wrong answer), that only files its writer made are trusted, and
// how UserFile writes, maps and falls back in each role.

#include "auth_proxy/store/file_watcher.hpp"
#include "auth_proxy/store/index_directory.hpp"
#include "auth_proxy/store/user_file.hpp"

#include "test_support.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using auth_proxy::FileSignature;
using auth_proxy::HtpasswdIndex;
using auth_proxy::index_file_name;
using auth_proxy::IndexDirectory;
using auth_proxy::IndexOwnership;
using auth_proxy::IndexRole;
using auth_proxy::LogLevel;
using auth_proxy::stat_signature;
using auth_proxy::UserFile;
using auth_proxy::LogId;
using auth_proxy::LogLevel;

using test_support::LogCapture;
using test_support::Refusing;
using test_support::read_file;
using test_support::TempDir;
using test_support::write_file;

using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(index_directory)

namespace {

const std::string kSha = "{SHA}uE1+cBGmURe+4zihKsjfuHZgJbQ=";
const std::string kApr1 = "$apr1$jFArcZ5m$wqCp4W1cQBmciHu1wOfG61";
const std::string kBcrypt = "$2y$04$fxEw42QHmPVcGLgMERxWeuZScXnG.1Xomj7P7a2xzwgBL3DJ0SL9a";

const std::string kContent = "# proxy users\nalice:" + kApr1 + "\nbob:" + kSha + "\ncarol:" + kBcrypt +
                             "\nalice:" + kSha + "\n";

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
    {"typical format", 128}, {"typical cost", 132}, {"check value", 136},
};
constexpr std::size_t kHeaderBytes = 144;

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
    for (std::size_t at = kHeaderBytes; at < bytes.size(); ++at) {
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
    BOOST_TEST(index_file_name("/etc/a") == index_file_name("/etc/a"));
    BOOST_TEST(index_file_name("/etc/a") != index_file_name("/etc/b"));
    BOOST_TEST(index_file_name("/etc/a").size() == 20u);
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

/** The ownership a non-root test can have: its own uid and gid. */
IndexOwnership own()
{
    return IndexOwnership{::geteuid(), ::getegid(), 0750, 0640};
}

/** A prepared directory "<tmp>/run/auth_proxy" and a user file "<tmp>/users". */
struct Shared {
    TempDir tmp;
    std::string run = tmp.file("run");
    std::string users = tmp.file("users");
    IndexDirectory dir;
    LogCapture log;

    explicit Shared(int count = 10)
    {
        std::filesystem::create_directory(run);
        write_file(users, sha_users("u", count));
        std::string error;
        std::vector<std::string> notes;
        dir = IndexDirectory::prepare(run, "auth_proxy", own(), error, notes);
        BOOST_TEST_REQUIRE(dir.usable(), error);
    }
    std::string index_path() const { return dir.path() + "/" + index_file_name(users); }
    FileSignature now() const
    {
        FileSignature sig;
        BOOST_TEST_REQUIRE(stat_signature(users, sig) == 0);
        return sig;
    }
    /** Writes the index of the current file, as the writer does. */
    void build()
    {
        UserFile writer(users);
        writer.set_index_directory(&dir, IndexRole::writer);
        BOOST_TEST_REQUIRE(writer.state(log.logger())->index->is_mapped(), log.dump());
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(prepare_makes_the_directory_with_the_owner_and_mode_asked_for)
{
    Shared s;
    struct stat st;
    BOOST_TEST_REQUIRE(::stat(s.dir.path().c_str(), &st) == 0);
    BOOST_TEST(S_ISDIR(st.st_mode));
    BOOST_TEST((st.st_mode & 07777) == 0750u);
    BOOST_TEST(st.st_uid == ::geteuid());

    // An existing directory of ours has its mode put right, on the descriptor.
    ::chmod(s.dir.path().c_str(), 0777);
    std::string error;
    std::vector<std::string> notes;
    const IndexDirectory again = IndexDirectory::prepare(s.run, "auth_proxy", own(), error, notes);
    BOOST_TEST_REQUIRE(again.usable(), error);
    BOOST_TEST_REQUIRE(::stat(s.dir.path().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0750u);
    BOOST_TEST(notes.empty());
}

BOOST_AUTO_TEST_CASE(a_link_or_file_in_the_directorys_place_is_moved_aside_never_followed)
{
    TempDir tmp;
    const std::string run = tmp.file("run"), elsewhere = tmp.file("elsewhere");
    std::filesystem::create_directory(run);
    std::filesystem::create_directory(elsewhere);
    struct Case {
        const char *rule;
        std::function<void()> plant;
    };
    const std::vector<Case> cases = {
        {"a symbolic link to another directory",
         [&] { BOOST_TEST_REQUIRE(::symlink(elsewhere.c_str(), (run + "/auth_proxy").c_str()) == 0); }},
        {"a regular file", [&] { write_file(run + "/auth_proxy", "x"); }},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            c.plant();
            std::string error;
            std::vector<std::string> notes;
            const IndexDirectory dir = IndexDirectory::prepare(run, "auth_proxy", own(), error, notes);
            BOOST_TEST_REQUIRE(dir.usable(), error);
            BOOST_TEST(notes.size() == 1u);
            BOOST_TEST((!notes.empty() && notes[0].find("moved aside") != std::string::npos));
            struct stat st;
            BOOST_TEST_REQUIRE(::lstat((run + "/auth_proxy").c_str(), &st) == 0);
            BOOST_TEST(S_ISDIR(st.st_mode));
            BOOST_TEST(std::filesystem::is_empty(elsewhere)); // nothing written through the link
            std::filesystem::remove_all(run + "/auth_proxy");
        }
    }
}

BOOST_AUTO_TEST_CASE(a_directory_owned_by_someone_else_is_moved_aside)
{
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("needs root to make a directory owned by another user; skipped");
        return;
    }
    TempDir tmp;
    const std::string run = tmp.file("run");
    std::filesystem::create_directory(run);
    const std::string planted = run + "/auth_proxy";
    std::filesystem::create_directory(planted);
    write_file(planted + "/forged.idx", "x");
    BOOST_TEST_REQUIRE(::chown(planted.c_str(), 65534, 65534) == 0);
    std::string error;
    std::vector<std::string> notes;
    const IndexDirectory dir = IndexDirectory::prepare(run, "auth_proxy", own(), error, notes);
    BOOST_TEST_REQUIRE(dir.usable(), error);
    BOOST_TEST(notes.size() == 1u);
    BOOST_TEST(!std::filesystem::exists(planted + "/forged.idx"));
}

BOOST_AUTO_TEST_CASE(the_writer_writes_an_index_readers_map_and_nothing_is_left_behind)
{
    Shared s(1000);
    s.build();
    struct stat st;
    BOOST_TEST_REQUIRE(::stat(s.index_path().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0640u);
    BOOST_TEST(st.st_nlink == 1u);
    BOOST_TEST(std::distance(std::filesystem::directory_iterator(s.dir.path()), {}) == 1); // no temporary file

    UserFile reader(s.users); // another server process
    reader.set_index_directory(&s.dir, IndexRole::reader);
    const auto state = reader.state(s.log.logger());
    BOOST_TEST_REQUIRE(state->index != nullptr);
    BOOST_TEST(state->index->is_mapped());
    BOOST_TEST(state->index->find("u999") != nullptr);
    // The writer announced the version; the reader says so only at debug level.
    BOOST_TEST(s.log.count("loaded " + s.users + ": 1000 users") == 1u, s.log.dump());
    BOOST_TEST(s.log.has(LogLevel::debug, {"serving " + s.users, s.index_path()}), s.log.dump());
}

BOOST_AUTO_TEST_CASE(an_index_that_anyone_else_could_have_written_is_never_used)
{
    struct Case {
        const char *rule;
        std::function<void(Shared &)> spoil;
        const char *reason;
    };
    const std::vector<Case> cases = {
        {"writable by group", [](Shared &s) { ::chmod(s.index_path().c_str(), 0660); }, "writable by group or others"},
        {"writable by others", [](Shared &s) { ::chmod(s.index_path().c_str(), 0646); }, "writable by group or others"},
        {"a second hard link",
         [](Shared &s) { BOOST_TEST_REQUIRE(::link(s.index_path().c_str(), s.tmp.file("copy").c_str()) == 0); },
         "links"},
        {"a symbolic link to a valid index",
         [](Shared &s) {
             std::filesystem::rename(s.index_path(), s.tmp.file("real.idx"));
             BOOST_TEST_REQUIRE(::symlink(s.tmp.file("real.idx").c_str(), s.index_path().c_str()) == 0);
         },
         "open"},
        {"a FIFO (the open must not wait)",
         [](Shared &s) {
             std::filesystem::remove(s.index_path());
             BOOST_TEST_REQUIRE(::mkfifo(s.index_path().c_str(), 0640) == 0);
         },
         "not a regular file"},
        {"owned by another user",
         [](Shared &s) {
             if (::geteuid() == 0) {
                 BOOST_TEST_REQUIRE(::chown(s.index_path().c_str(), 65534, 65534) == 0);
             }
             else {
                 ::chmod(s.index_path().c_str(), 0666); // what a non-root test can spoil instead
             }
         },
         ""},
    };
    for (const Case &c : cases) {
        BOOST_TEST_CONTEXT(c.rule)
        {
            Shared s(20);
            s.build();
            c.spoil(s);
            std::string error;
            BOOST_TEST(s.dir.open_index(index_file_name(s.users), s.now(), error) == nullptr);
            BOOST_TEST(error.find(c.reason) != std::string::npos, error);
            BOOST_TEST(!s.dir.has_index_for(index_file_name(s.users), s.now()));

            // A reader refuses it too, and never parses the file itself: it
            // fails closed until the writer writes a trusted index.
            UserFile reader(s.users);
            reader.set_index_directory(&s.dir, IndexRole::reader);
            const auto state = reader.state(s.log.logger());
            BOOST_TEST(state->index == nullptr);
            BOOST_TEST(s.log.count("users in") == 1u, s.log.dump()); // the writer's parse only
        }
    }
}

BOOST_AUTO_TEST_CASE(remove_stale_keeps_only_trusted_indexes_still_in_use)
{
    Shared s;
    s.build();
    const std::string kept = index_file_name(s.users);
    write_file(s.dir.path() + "/" + kept + ".tmp-0123456789abcdef", "half-written");
    write_file(s.dir.path() + "/" + kept + ".lock", "");
    write_file(s.dir.path() + "/0000000000000000.idx", "an index of a file nobody uses any more");
    BOOST_TEST_REQUIRE(::symlink("/etc/passwd", (s.dir.path() + "/link.idx").c_str()) == 0);
    std::filesystem::create_directory(s.dir.path() + "/subdir");

    const std::vector<std::string> removed = s.dir.remove_stale({kept});
    BOOST_TEST(removed.size() == 4u);
    BOOST_TEST(std::filesystem::exists(s.index_path()));
    BOOST_TEST(std::filesystem::exists(s.dir.path() + "/subdir"));
    BOOST_TEST(std::distance(std::filesystem::directory_iterator(s.dir.path()), {}) == 2);
    BOOST_TEST(std::filesystem::exists("/etc/passwd")); // the link went, not its target
}

BOOST_AUTO_TEST_CASE(a_reader_keeps_its_index_until_the_writer_publishes_and_never_parses)
{
    Shared s(10);
    s.build();
    UserFile reader(s.users);
    reader.set_index_directory(&s.dir, IndexRole::reader);
    BOOST_TEST_REQUIRE(reader.state(s.log.logger())->index->is_mapped());

    // The file changes; however long the writer takes, the reader keeps the previous version.
    write_file(s.users, sha_users("v", 12));
    for (int look = 0; look < 20; ++look) {
        BOOST_TEST(!reader.refresh(s.log.logger()));
        std::this_thread::sleep_for(10ms);
    }
    BOOST_TEST(reader.state(s.log.logger())->index->find("u1") != nullptr);
    BOOST_TEST(reader.state(s.log.logger())->index->find("v11") == nullptr);
    BOOST_TEST(s.log.count("users in") == 1u, s.log.dump()); // the writer's first parse: nothing since

    s.build(); // the writer delivers
    BOOST_TEST(reader.refresh(s.log.logger()));
    const auto state = reader.state(s.log.logger());
    BOOST_TEST(state->index->is_mapped());
    BOOST_TEST(state->index->find("v11") != nullptr);
    BOOST_TEST(state->index->find("u1") == nullptr);
    BOOST_TEST(s.log.count("users in") == 2u, s.log.dump()); // one parse per version, the writer's
}

BOOST_AUTO_TEST_CASE(a_new_reader_serves_the_newest_published_version_until_the_writer_catches_up)
{
    Shared s(10);
    s.build();
    write_file(s.users, sha_users("v", 12)); // changed; the writer has not looked yet

    UserFile reader(s.users); // a process started meanwhile
    reader.set_index_directory(&s.dir, IndexRole::reader);
    auto state = reader.state(s.log.logger());
    BOOST_TEST_REQUIRE(state->index != nullptr);
    BOOST_TEST(state->index->find("u1") != nullptr); // what every other process serves too
    BOOST_TEST(!reader.refresh(s.log.logger()));

    s.build();
    BOOST_TEST(reader.refresh(s.log.logger()));
    state = reader.state(s.log.logger());
    BOOST_TEST(state->index->find("v11") != nullptr);
}

BOOST_AUTO_TEST_CASE(a_new_reader_with_nothing_published_refuses_everyone_and_reads_nothing)
{
    Shared s(10);
    UserFile reader(s.users);
    reader.set_index_directory(&s.dir, IndexRole::reader);
    const auto state = reader.state(s.log.logger());
    BOOST_TEST(state->index == nullptr);
    BOOST_TEST(state->error.find("no index of " + s.users) != std::string::npos, state->error);
    BOOST_TEST(s.log.count("users in") == 0u, s.log.dump());

    s.build();
    BOOST_TEST(reader.refresh(s.log.logger()));
    BOOST_TEST(reader.state(s.log.logger())->index->find("u9") != nullptr);
}

BOOST_AUTO_TEST_CASE(the_writer_removes_the_index_of_a_file_that_became_unusable)
{
    Shared s(10);
    s.build();
    UserFile writer(s.users);
    writer.set_index_directory(&s.dir, IndexRole::writer);
    BOOST_TEST_REQUIRE(writer.state(s.log.logger())->index != nullptr);
    std::filesystem::remove(s.users);
    BOOST_TEST(writer.refresh(s.log.logger()));
    BOOST_TEST(!std::filesystem::exists(s.index_path()));

    // A process started now finds nothing of the old version to serve.
    write_file(s.users, sha_users("v", 3));
    UserFile reader(s.users);
    reader.set_index_directory(&s.dir, IndexRole::reader);
    BOOST_TEST(reader.state(s.log.logger())->index == nullptr);
}

BOOST_AUTO_TEST_CASE(a_file_over_the_size_limit_is_refused_by_writer_and_reader_without_being_read)
{
    Shared s(10);
    s.build();
    UserFile reader(s.users);
    reader.set_index_directory(&s.dir, IndexRole::reader);
    reader.set_size_limit(4096);
    BOOST_TEST_REQUIRE(reader.state(s.log.logger())->index != nullptr);

    write_file(s.users, sha_users("v", 200)); // about 8 KB
    UserFile writer(s.users);
    writer.set_index_directory(&s.dir, IndexRole::writer);
    writer.set_size_limit(4096);
    BOOST_TEST(writer.state(s.log.logger())->index == nullptr);
    BOOST_TEST(!std::filesystem::exists(s.index_path()));
    BOOST_TEST(reader.refresh(s.log.logger()));
    const auto state = reader.state(s.log.logger());
    BOOST_TEST(state->index == nullptr); // fails closed, not the previous version
    BOOST_TEST((state->error_id == auth_proxy::LogId::file_too_large));
    BOOST_TEST(s.log.count(s.users + " is ") == 2u, s.log.dump());
    BOOST_TEST(s.log.has(LogLevel::error, {s.users, "over the limit of 4096 bytes", "until it is smaller"}), s.log.dump());
    BOOST_TEST(s.log.count("users in") == 1u, s.log.dump()); // the first build only
}

BOOST_AUTO_TEST_CASE(a_file_first_used_after_the_writer_started_is_read_by_the_process_itself)
{
    // The writer indexes the files active when it started; one that an
    // .htaccess names later has no writer to wait for.
    Shared s(10);
    s.build();
    const std::string dormant = s.tmp.file("dormant-users");
    const std::string fresh = s.tmp.file("fresh-users");
    write_file(dormant, sha_users("d", 3));
    write_file(fresh, sha_users("f", 4));
    auth_proxy::UserFileRegistry registry;
    registry.get(s.users).activate();
    registry.get(dormant); // named in the configuration, by no ProxyBasic scope
    registry.set_index_directory(&s.dir, IndexRole::reader);
    registry.refresh_all(s.log.logger());
    BOOST_TEST_REQUIRE(registry.get(s.users).current() != nullptr);
    BOOST_TEST(registry.get(s.users).current()->index->is_mapped());

    for (const std::string &path : {dormant, fresh}) {
        BOOST_TEST_CONTEXT(path)
        {
            const auto state = registry.get(path).state(s.log.logger());
            BOOST_TEST_REQUIRE(state->index != nullptr, s.log.dump());
            BOOST_TEST(!state->index->is_mapped());
            BOOST_TEST(s.log.count("loaded " + path) == 1u, s.log.dump());
        }
    }
}

BOOST_AUTO_TEST_CASE(a_deleted_file_refuses_everyone_at_once_without_waiting_for_the_writer)
{
    Shared s(10);
    s.build();
    UserFile reader(s.users);
    reader.set_index_directory(&s.dir, IndexRole::reader);
    BOOST_TEST_REQUIRE(reader.state(s.log.logger())->index != nullptr);
    std::filesystem::remove(s.users);
    BOOST_TEST(reader.refresh(s.log.logger()));
    BOOST_TEST(reader.state(s.log.logger())->index == nullptr);
}

BOOST_AUTO_TEST_CASE(a_writer_whose_user_cannot_open_the_file_leaves_no_index_of_it)
{
    // The writer runs as root but reads as the User: a file the User may
    // not open is neither indexed nor left indexed from an earlier version.
    Shared s(10);
    s.build();
    BOOST_TEST_REQUIRE(std::filesystem::exists(s.index_path()));
    Refusing user("www-data");
    UserFile writer(s.users);
    writer.set_index_directory(&s.dir, IndexRole::writer);
    writer.set_opener(&user);
    const auto refused = writer.state(s.log.logger());
    BOOST_TEST(refused->index == nullptr); // the index there is of this very version: still not used
    BOOST_TEST(!std::filesystem::exists(s.index_path()));
    BOOST_TEST(s.log.has(LogLevel::error, LogId::file_not_openable, {s.users, "www-data"}), s.log.dump());

    write_file(s.users, sha_users("v", 5)); // a new version, still refused
    writer.refresh(s.log.logger());
    BOOST_TEST(writer.state(s.log.logger())->index == nullptr);
    BOOST_TEST(std::distance(std::filesystem::directory_iterator(s.dir.path()), {}) == 0);

    user.refuse = false;
    BOOST_TEST(writer.refresh(s.log.logger()));
    BOOST_TEST(writer.state(s.log.logger())->index->is_mapped());
    BOOST_TEST(std::filesystem::exists(s.index_path()));
}

BOOST_AUTO_TEST_CASE(a_reader_leaves_the_report_of_a_file_it_cannot_open_to_the_writer)
{
    // Every server process meets the same refusal as the writer: one error
    // line per breakage (the writer's), not one per process.
    Shared s(10);
    s.build();
    Refusing user("www-data");
    UserFile reader(s.users);
    reader.set_index_directory(&s.dir, IndexRole::reader);
    reader.set_opener(&user);
    BOOST_TEST(reader.state(s.log.logger())->index == nullptr);
    BOOST_TEST(s.log.has(LogLevel::info, LogId::file_not_openable, {s.users}), s.log.dump());
    BOOST_TEST(!s.log.has(LogLevel::error, LogId::file_not_openable, {s.users}), s.log.dump());
    BOOST_TEST(s.log.count("no shared index") == 0u, s.log.dump());
}

BOOST_AUTO_TEST_CASE(only_a_shared_index_is_released_and_the_next_look_maps_it_again)
{
    Shared s(100);
    UserFile shared(s.users); // the parent: builds the index file, then lets go of it
    shared.set_index_directory(&s.dir, IndexRole::writer);
    BOOST_TEST_REQUIRE(shared.state(s.log.logger())->index->is_mapped());
    BOOST_TEST(shared.release_shared_index());
    BOOST_TEST(!shared.release_shared_index()); // nothing left to release
    const auto again = shared.state(s.log.logger());
    BOOST_TEST_REQUIRE(again->index != nullptr);
    BOOST_TEST(again->index->is_mapped());
    BOOST_TEST(again->index->find("u99") != nullptr);
    BOOST_TEST(s.log.count("mapped shared index") == 1u, s.log.dump()); // mapped, not parsed again

    UserFile private_copy(s.users); // no directory: the index is kept
    const auto kept = private_copy.state(s.log.logger());
    BOOST_TEST(!private_copy.release_shared_index());
    BOOST_TEST((private_copy.state(s.log.logger()) == kept));

    UserFile broken(s.tmp.file("missing")); // an error state is kept too
    broken.set_index_directory(&s.dir, IndexRole::writer);
    const auto error = broken.state(s.log.logger());
    BOOST_TEST_REQUIRE(error->index == nullptr);
    BOOST_TEST(!broken.release_shared_index());
    BOOST_TEST((broken.state(s.log.logger()) == error));
}

BOOST_AUTO_TEST_CASE(an_unusable_directory_means_private_indexes_and_nothing_written)
{
    TempDir tmp;
    const std::string users = tmp.file("users");
    write_file(users, sha_users("u", 5));
    LogCapture log;
    std::string error;
    std::vector<std::string> notes;
    const IndexDirectory missing = IndexDirectory::prepare(tmp.file("no-such-dir"), "auth_proxy", own(), error, notes);
    BOOST_TEST(!missing.usable());
    BOOST_TEST(!error.empty());
    UserFile file(users);
    file.set_index_directory(&missing, IndexRole::writer);
    const auto state = file.state(log.logger());
    BOOST_TEST_REQUIRE(state->index != nullptr);
    BOOST_TEST(state->index->size() == 5u);
    BOOST_TEST(!state->index->is_mapped());
    BOOST_TEST(std::distance(std::filesystem::directory_iterator(tmp.path), {}) == 1);
}

BOOST_AUTO_TEST_CASE(a_mapped_index_rewritten_in_place_after_its_checks_never_crashes_or_loops,
                     *boost::unit_test::timeout(60))
{
    // What a writer of the file could do to a mapping every process holds:
    // fill the slot table (an endless probe, unbounded) and point entries
    // outside the text. Lookups must end, and answer only from the text.
    TempDir tmp;
    const HtpasswdIndex built(kContent);
    const std::string path = tmp.file("x.idx");
    write_file(path, std::string(built.serialized()));
    const int fd = ::open(path.c_str(), O_RDWR);
    BOOST_TEST_REQUIRE(fd >= 0);
    std::string error;
    const auto mapped = HtpasswdIndex::map(fd, error, HtpasswdIndex::Checks::header);
    BOOST_TEST_REQUIRE(mapped != nullptr, error);

    std::string bytes(built.serialized());
    std::uint64_t entries_offset = 0, entry_count = 0, slots_offset = 0, slot_count = 0;
    std::memcpy(&entries_offset, bytes.data() + 88, 8);
    std::memcpy(&entry_count, bytes.data() + 96, 8);
    std::memcpy(&slots_offset, bytes.data() + 104, 8);
    std::memcpy(&slot_count, bytes.data() + 112, 8);
    for (std::size_t slot = 0; slot < slot_count; ++slot) {
        // The users' own slots keep their tags, so lookups do reach the
        // damaged entries; every empty slot is filled.
        std::uint32_t entry = 0;
        std::memcpy(&entry, &bytes[slots_offset + slot * 8 + 4], 4);
        if (entry == 0) {
            entry = 1 + static_cast<std::uint32_t>(slot % entry_count);
            std::memcpy(&bytes[slots_offset + slot * 8 + 4], &entry, 4);
        }
    }
    for (std::size_t e = 0; e < entry_count; ++e) {
        const std::uint32_t far = 0x7ffffff0;
        std::memcpy(&bytes[entries_offset + e * 12], &far, 4);
        std::memcpy(&bytes[entries_offset + e * 12 + 8], &far, 4);
    }
    BOOST_TEST_REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
    ::close(fd);
    for (const char *user : {"alice", "bob", "carol", "dave", "", "x"}) {
        BOOST_TEST(mapped->find(user) == nullptr, user);
    }
}

BOOST_AUTO_TEST_SUITE_END()
