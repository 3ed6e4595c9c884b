/**
 * @file page_allocator.hpp
 * An allocator for the large, short-lived buffers of an index build.
 *
 * glibc serves a block from the heap unless it is larger than its mmap
 * threshold, and that threshold rises (up to 32 MB) each time a larger
 * mmapped block is freed, which an httpd parent's first load does and its
 * children inherit. A freed heap block that merged into the top of a
 * thread's arena is not returned even by malloc_trim(), so the tens of MB a
 * reload of a large file uses would stay resident in every process that
 * built an index. Large blocks from here are private anonymous mappings of
 * their own, unmapped as soon as they are freed.
 */
#pragma once

#include <cstddef>
#include <new>
#include <string>
#include <vector>

namespace auth_proxy {

/** Maps @p bytes (zero-filled) or throws std::bad_alloc. */
void *map_pages(std::size_t bytes);
void unmap_pages(void *p, std::size_t bytes) noexcept;

/** Blocks this large get their own mapping; smaller ones come from operator new. */
constexpr std::size_t kPageAllocatorThreshold = 64 * 1024;

template <typename T>
struct PageAllocator {
    using value_type = T;

    PageAllocator() noexcept = default;
    template <typename U>
    PageAllocator(const PageAllocator<U> &) noexcept {}

    T *allocate(std::size_t n)
    {
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) {
            throw std::bad_alloc();
        }
        const std::size_t bytes = n * sizeof(T);
        return static_cast<T *>(bytes >= kPageAllocatorThreshold ? map_pages(bytes) : ::operator new(bytes));
    }

    void deallocate(T *p, std::size_t n) noexcept
    {
        const std::size_t bytes = n * sizeof(T);
        if (bytes >= kPageAllocatorThreshold) {
            unmap_pages(p, bytes);
        }
        else {
            ::operator delete(p);
        }
    }

    template <typename U>
    bool operator==(const PageAllocator<U> &) const noexcept { return true; }
    template <typename U>
    bool operator!=(const PageAllocator<U> &) const noexcept { return false; }
};

/** Text of a user file or bytes of an index, as a build handles them. */
using PageString = std::basic_string<char, std::char_traits<char>, PageAllocator<char>>;

template <typename T>
using PageVector = std::vector<T, PageAllocator<T>>;

} // namespace auth_proxy
