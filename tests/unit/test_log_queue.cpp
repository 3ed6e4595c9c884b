// Specification of the LogQueue: the reload threads hand their lines to it
// and go on, whatever the log does; the lines arrive in order, and what a
// stuck log made it drop is counted and said.

#include "auth_proxy/log_queue.hpp"

#include <boost/test/unit_test.hpp>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using auth_proxy::LogId;
using auth_proxy::Logger;
using auth_proxy::LogLevel;
using auth_proxy::LogQueue;

namespace {

/** A log that keeps its lines, and that the test can hold up (as a stuck error log would). */
struct GatedLog {
    struct Line {
        LogLevel level;
        LogId id;
        std::string text;
        std::thread::id writer;
    };
    std::mutex mutex;
    std::condition_variable changed;
    bool open = true;
    std::size_t waiting = 0; ///< writers held at the gate
    std::vector<Line> lines;

    Logger logger()
    {
        return Logger{[](void *ctx, LogLevel level, LogId id, const std::string &text) {
                          auto *self = static_cast<GatedLog *>(ctx);
                          std::unique_lock<std::mutex> lock(self->mutex);
                          ++self->waiting;
                          self->changed.notify_all();
                          self->changed.wait(lock, [self] { return self->open; });
                          --self->waiting;
                          self->lines.push_back(Line{level, id, text, std::this_thread::get_id()});
                          self->changed.notify_all();
                      },
                      this};
    }
    void close_gate()
    {
        std::lock_guard<std::mutex> lock(mutex);
        open = false;
    }
    void open_gate()
    {
        {
            std::lock_guard<std::mutex> lock(mutex);
            open = true;
        }
        changed.notify_all();
    }
    /** Waits until a writer is held at the closed gate. */
    void wait_for_a_held_writer()
    {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [this] { return waiting > 0; });
    }
    void wait_for_lines(std::size_t n)
    {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [this, n] { return lines.size() >= n; });
    }
    std::vector<std::string> texts()
    {
        std::lock_guard<std::mutex> lock(mutex);
        std::vector<std::string> out;
        for (const Line &line : lines) {
            out.push_back(line.text);
        }
        return out;
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(log_queue)

BOOST_AUTO_TEST_CASE(lines_arrive_in_order_written_by_the_queues_thread, *boost::unit_test::timeout(60))
{
    GatedLog log;
    {
        LogQueue queue(log.logger());
        const Logger to_queue = queue.logger();
        for (int i = 0; i < 100; ++i) {
            to_queue(LogLevel::info, LogId::file_loaded, "line " + std::to_string(i));
        }
        log.wait_for_lines(100);
    }
    const std::vector<std::string> texts = log.texts();
    BOOST_TEST_REQUIRE(texts.size() == 100u);
    for (int i = 0; i < 100; ++i) {
        BOOST_TEST(texts[static_cast<std::size_t>(i)] == "line " + std::to_string(i));
    }
    for (const GatedLog::Line &line : log.lines) {
        BOOST_TEST((line.writer != std::this_thread::get_id()));
        BOOST_TEST((line.level == LogLevel::info));
        BOOST_TEST((line.id == LogId::file_loaded));
    }
}

BOOST_AUTO_TEST_CASE(a_caller_never_waits_for_a_stuck_log, *boost::unit_test::timeout(60))
{
    // If logging waited for the log, this test would hang at the second line
    // and the timeout would fail it.
    GatedLog log;
    log.close_gate();
    LogQueue queue(log.logger());
    const Logger to_queue = queue.logger();
    to_queue(LogLevel::info, LogId::file_loaded, "first");
    log.wait_for_a_held_writer();
    for (int i = 0; i < 10; ++i) {
        to_queue(LogLevel::info, LogId::file_loaded, "queued " + std::to_string(i));
    }
    BOOST_TEST(log.texts().empty());
    log.open_gate();
    log.wait_for_lines(11);
    BOOST_TEST(log.texts().front() == "first");
    BOOST_TEST(log.texts().back() == "queued 9");
}

BOOST_AUTO_TEST_CASE(what_a_full_queue_drops_is_counted_and_said_after_the_rest, *boost::unit_test::timeout(60))
{
    GatedLog log;
    log.close_gate();
    {
        LogQueue queue(log.logger(), 2);
        const Logger to_queue = queue.logger();
        to_queue(LogLevel::info, LogId::file_loaded, "being written");
        log.wait_for_a_held_writer(); // taken off the queue: room for 2
        for (int i = 0; i < 5; ++i) {
            to_queue(LogLevel::info, LogId::file_loaded, "line " + std::to_string(i));
        }
        log.open_gate();
    } // the destructor writes what is queued
    const std::vector<std::string> texts = log.texts();
    BOOST_TEST_REQUIRE(texts.size() == 4u);
    BOOST_TEST(texts[0] == "being written");
    BOOST_TEST(texts[1] == "line 0");
    BOOST_TEST(texts[2] == "line 1");
    BOOST_TEST(texts[3] == "3 messages about user files were not logged: the log did not keep up");
    BOOST_TEST((log.lines[3].id == LogId::log_messages_dropped));
    BOOST_TEST((log.lines[3].level == LogLevel::warning));
}

BOOST_AUTO_TEST_CASE(the_destructor_writes_everything_still_queued, *boost::unit_test::timeout(60))
{
    GatedLog log;
    log.close_gate();
    {
        LogQueue queue(log.logger());
        const Logger to_queue = queue.logger();
        for (int i = 0; i < 20; ++i) {
            to_queue(LogLevel::debug, LogId::file_line, "line " + std::to_string(i));
        }
        log.wait_for_a_held_writer();
        log.open_gate();
    }
    BOOST_TEST(log.texts().size() == 20u);
}

BOOST_AUTO_TEST_SUITE_END()
