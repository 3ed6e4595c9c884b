// The negotiate section's load client (bench/benchlib/sections/negotiate.py).
// wrk sends the same request on every connection; a connection-bound
// Negotiate proxy needs a token on a connection's first request only, and a
// per-connection handshake wrk cannot do. One thread per connection,
// blocking sockets, one request in flight per connection (no pipelining).
//
//   negotiate_load --port P --url URL [--tokens FILE] [--cycle] --connections N
//                  --mode warm --seconds S
//   negotiate_load --port P --url URL --tokens FILE --connections N --mode cold [--requests R] [--seconds S]
//
// warm: each connection sends its first request with the next token of FILE
//       (one line each: the Proxy-Authorization value), which must get 200;
//       once every connection has, the clock starts and each sends requests
//       without Proxy-Authorization for S seconds.
// cold: every request on a new connection with the next token (curl
//       --proxy-negotiate on a new connection), until R requests or S seconds,
//       whichever comes first.
// Without --tokens no request carries a header. --cycle reuses tokens (for a
// server that does not check them). One JSON line on stdout.

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    int port = 0;
    std::string url;
    std::string tokens_file;
    bool cycle = false;
    int connections = 8;
    std::string mode = "warm";
    double seconds = 1;
    long requests = 0;   // cold: stop after this many (0: by time alone)
};

struct Response {
    int status = 0;
    bool close = false;   // the server said Connection: close (or closed)
};

// One HTTP/1.1 connection to 127.0.0.1 with a read buffer.
class Connection {
  public:
    explicit Connection(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) return;
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~Connection() {
        if (fd_ >= 0) ::close(fd_);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    bool ok() const { return fd_ >= 0; }

    bool send_all(const std::string& data) {
        size_t off = 0;
        while (off < data.size()) {
            ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            off += static_cast<size_t>(n);
        }
        return true;
    }

    // Reads one response (Content-Length or chunked body); status 0 on a broken connection.
    Response read_response() {
        Response r;
        size_t head_end;
        while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) return r;
        std::string head = buf_.substr(0, head_end + 2);
        buf_.erase(0, head_end + 4);
        if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0) return r;
        int status = std::atoi(head.c_str() + 9);
        long length = -1;
        bool chunked = false;
        for (size_t pos = head.find("\r\n"); pos != std::string::npos && pos + 2 < head.size();) {
            size_t next = head.find("\r\n", pos + 2);
            std::string line = head.substr(pos + 2, next - pos - 2);
            std::string lower(line.size(), '\0');
            std::transform(line.begin(), line.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
            if (lower.rfind("content-length:", 0) == 0) length = std::atol(line.c_str() + 15);
            else if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos) chunked = true;
            else if (lower.rfind("connection:", 0) == 0 && lower.find("close") != std::string::npos) r.close = true;
            pos = next;
        }
        if (chunked) {
            if (!skip_chunked()) return r;
        } else if (length > 0) {
            while (buf_.size() < static_cast<size_t>(length))
                if (!fill()) return r;
            buf_.erase(0, static_cast<size_t>(length));
        }
        r.status = status;
        return r;
    }

  private:
    bool fill() {
        char tmp[16384];
        for (;;) {
            ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            buf_.append(tmp, static_cast<size_t>(n));
            return true;
        }
    }

    bool skip_chunked() {
        for (;;) {
            size_t eol;
            while ((eol = buf_.find("\r\n")) == std::string::npos)
                if (!fill()) return false;
            long size = std::strtol(buf_.c_str(), nullptr, 16);
            buf_.erase(0, eol + 2);
            if (size == 0) {   // no trailers from our servers: the final CRLF follows
                while (buf_.size() < 2)
                    if (!fill()) return false;
                buf_.erase(0, 2);
                return true;
            }
            while (buf_.size() < static_cast<size_t>(size) + 2)
                if (!fill()) return false;
            buf_.erase(0, static_cast<size_t>(size) + 2);
        }
    }

    int fd_ = -1;
    std::string buf_;
};

class Tokens {
  public:
    Tokens(const std::string& file, bool cycle) : cycle_(cycle) {
        if (file.empty()) return;
        std::ifstream in(file);
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) tokens_.push_back(line);
    }
    bool any() const { return !tokens_.empty(); }
    size_t size() const { return tokens_.size(); }
    // The next unused token; false when none is left.
    bool next(const std::string*& out) {
        size_t i = next_.fetch_add(1);
        if (i >= tokens_.size()) {
            if (!cycle_ || tokens_.empty()) return false;
            i %= tokens_.size();
        }
        out = &tokens_[i];
        return true;
    }

  private:
    std::vector<std::string> tokens_;
    std::atomic<size_t> next_{0};
    bool cycle_;
};

struct Tally {
    long requests = 0;
    long failed = 0;          // non-200 or broken connection
    long handshake_failed = 0;
    long reconnects = 0;      // warm: the server closed a connection
    std::map<int, long> statuses;
    std::vector<float> latency_us;
};

std::string request(const std::string& url, const std::string* token) {
    // Host: the authority of the absolute URI (forward proxy).
    std::string host = url;
    size_t start = host.find("://");
    if (start != std::string::npos) host = host.substr(start + 3);
    host = host.substr(0, host.find('/'));
    std::string r = "GET " + url + " HTTP/1.1\r\nHost: " + host + "\r\n";
    if (token) r += "Proxy-Authorization: " + *token + "\r\n";
    return r + "\r\n";
}

double elapsed_us(Clock::time_point since) {
    return std::chrono::duration<double, std::micro>(Clock::now() - since).count();
}

// One warm connection: the handshake, then (after the barrier) requests without a header until the deadline.
void warm(const Options& o, Tokens& tokens, std::atomic<int>& ready, std::atomic<bool>& go,
          std::atomic<long>& deadline_ns, Tally& t) {
    const std::string* token = nullptr;
    bool have = tokens.any() && tokens.next(token);
    auto conn = std::make_unique<Connection>(o.port);
    Response first;
    if (conn->ok() && conn->send_all(request(o.url, have ? token : nullptr))) first = conn->read_response();
    if (first.status != 200 || first.close) {
        ++t.handshake_failed;
        t.statuses[first.status]++;
        ready.fetch_add(1);
        return;
    }
    const std::string plain = request(o.url, nullptr);
    ready.fetch_add(1);
    while (!go.load()) std::this_thread::yield();
    const long deadline = deadline_ns.load();
    t.latency_us.reserve(1 << 16);
    while (Clock::now().time_since_epoch().count() < deadline) {
        auto started = Clock::now();
        Response r;
        if (conn->send_all(plain)) r = conn->read_response();
        t.latency_us.push_back(static_cast<float>(elapsed_us(started)));
        ++t.requests;
        t.statuses[r.status]++;
        if (r.status != 200) ++t.failed;
        if (r.status == 0 || r.close) {
            // The binding is gone with the connection: the rest of this
            // connection's requests would measure something else.
            ++t.reconnects;
            return;
        }
    }
}

// Cold: a new connection with a fresh token per request.
void cold(const Options& o, Tokens& tokens, std::atomic<long>& budget, long deadline, Tally& t) {
    t.latency_us.reserve(1 << 14);
    while (Clock::now().time_since_epoch().count() < deadline) {
        if (o.requests > 0 && budget.fetch_sub(1) <= 0) return;
        const std::string* token = nullptr;
        if (tokens.any() && !tokens.next(token)) return;
        auto started = Clock::now();
        Response r;
        {
            Connection conn(o.port);
            if (conn.ok() && conn.send_all(request(o.url, token))) r = conn.read_response();
        }
        t.latency_us.push_back(static_cast<float>(elapsed_us(started)));
        ++t.requests;
        t.statuses[r.status]++;
        if (r.status != 200) ++t.failed;
    }
}

bool parse(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--port") o.port = std::atoi(value().c_str());
        else if (a == "--url") o.url = value();
        else if (a == "--tokens") o.tokens_file = value();
        else if (a == "--cycle") o.cycle = true;
        else if (a == "--connections") o.connections = std::atoi(value().c_str());
        else if (a == "--mode") o.mode = value();
        else if (a == "--seconds") o.seconds = std::atof(value().c_str());
        else if (a == "--requests") o.requests = std::atol(value().c_str());
        else return false;
    }
    return o.port > 0 && !o.url.empty() && o.connections > 0 && (o.mode == "warm" || o.mode == "cold");
}

double percentile(std::vector<float>& v, double p) {
    if (v.empty()) return 0;
    size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return v[k];
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr, "usage: negotiate_load --port P --url URL [--tokens FILE] [--cycle] "
                             "[--connections N] --mode warm|cold [--seconds S] [--requests R]\n");
        return 2;
    }
    Tokens tokens(o.tokens_file, o.cycle);
    if (!o.tokens_file.empty() && !tokens.any()) {
        std::fprintf(stderr, "no tokens in %s\n", o.tokens_file.c_str());
        return 2;
    }
    std::vector<Tally> tallies(static_cast<size_t>(o.connections));
    std::vector<std::thread> threads;
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<long> deadline_ns{0};
    std::atomic<long> budget{o.requests};
    const auto seconds_ns = static_cast<long>(o.seconds * 1e9);
    Clock::time_point started;
    if (o.mode == "warm") {
        for (auto& t : tallies)
            threads.emplace_back(warm, std::cref(o), std::ref(tokens), std::ref(ready), std::ref(go),
                                 std::ref(deadline_ns), std::ref(t));
        while (ready.load() < o.connections) std::this_thread::sleep_for(std::chrono::microseconds(200));
        started = Clock::now();
        deadline_ns = started.time_since_epoch().count() + seconds_ns;
        go = true;
    } else {
        started = Clock::now();
        const long deadline = started.time_since_epoch().count() + seconds_ns;
        for (auto& t : tallies)
            threads.emplace_back(cold, std::cref(o), std::ref(tokens), std::ref(budget), deadline, std::ref(t));
    }
    for (auto& th : threads) th.join();
    const double took = elapsed_us(started) / 1e6;
    Tally all;
    for (auto& t : tallies) {
        all.requests += t.requests;
        all.failed += t.failed;
        all.handshake_failed += t.handshake_failed;
        all.reconnects += t.reconnects;
        for (auto& [k, v] : t.statuses) all.statuses[k] += v;
        all.latency_us.insert(all.latency_us.end(), t.latency_us.begin(), t.latency_us.end());
    }
    std::string statuses;
    for (auto& [k, v] : all.statuses)
        statuses += (statuses.empty() ? "" : ", ") + ("\"" + std::to_string(k) + "\": " + std::to_string(v));
    const double p50 = percentile(all.latency_us, 50), p99 = percentile(all.latency_us, 99);
    const double max = all.latency_us.empty() ? 0 : *std::max_element(all.latency_us.begin(), all.latency_us.end());
    std::printf("{\"mode\": \"%s\", \"connections\": %d, \"requests\": %ld, \"seconds\": %.4f, \"rps\": %.1f, "
                "\"failed\": %ld, \"handshake_failed\": %ld, \"closed\": %ld, \"p50_us\": %.1f, \"p99_us\": %.1f, "
                "\"max_us\": %.1f, \"statuses\": {%s}}\n",
                o.mode.c_str(), o.connections, all.requests, took, took > 0 ? all.requests / took : 0.0,
                all.failed, all.handshake_failed, all.reconnects, p50, p99, max, statuses.c_str());
    return 0;
}
