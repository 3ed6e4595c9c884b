#include "auth_proxy/store/checking_store.hpp"

namespace auth_proxy {

void AnswerTime::record(std::chrono::nanoseconds took) noexcept
{
    // An exponential moving average (1/8 per answer): it follows a directory
    // that gets slower or faster within a few dozen answers, and a lost
    // update under a race only delays that a little.
    const std::int64_t sample = took.count();
    const std::int64_t old = average_ns_.load(std::memory_order_relaxed);
    average_ns_.store(old == 0 ? sample : old + (sample - old) / 8, std::memory_order_relaxed);
}

} // namespace auth_proxy
