#pragma once
/// Cursor<T>: a single-pass range over results that are fetched page by page,
/// so a read of a million events holds at most one page in memory.
///
///   for (const RecordedEvent& e : store.read_all()) { ... }
///
/// Thread safety: a cursor belongs to one thread at a time. It holds no database
/// connection or lock between pages, so keeping one open blocks no writer.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <vector>

namespace annals {

template <class T>
class Cursor {
 public:
  /// Supplies pages. fetch() appends the next page to `out` (at most `max`
  /// items) and returns false once nothing is left.
  class Source {
   public:
    virtual ~Source() = default;
    virtual bool fetch(std::vector<T>& out, std::size_t max) = 0;

    /// Replaces the cursor's previous page, `page`, with the next one (at
    /// most `max` items) and returns false once nothing is left after it. The
    /// cursor no longer needs the previous page's items, so a source may
    /// overwrite them in place and keep their buffers instead of allocating
    /// new ones; the items may have been moved from. The default clears
    /// `page` and calls fetch(). If it throws, the cursor discards `page`.
    virtual bool refill(std::vector<T>& page, std::size_t max) {
      page.clear();
      return fetch(page, max);
    }
  };

  Cursor() = default;
  Cursor(std::unique_ptr<Source> source, std::size_t page_size, std::uint64_t limit)
      : source_(std::move(source)), page_size_(page_size == 0 ? 1 : page_size), remaining_(limit) {}

  /// The next item, or std::nullopt at the end. Throws what the source throws
  /// (StorageError for a failing database).
  std::optional<T> next() {
    if (!fill()) return std::nullopt;
    --remaining_;
    return std::move(page_[index_++]);
  }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using reference = T&;
    using pointer = T*;

    iterator() = default;
    explicit iterator(Cursor* c) : c_(c) { settle(); }
    T& operator*() const { return c_->page_[c_->index_]; }
    T* operator->() const { return &c_->page_[c_->index_]; }
    iterator& operator++() {
      ++c_->index_;
      --c_->remaining_;
      settle();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return c_ == nullptr; }

   private:
    void settle() {
      if (c_ != nullptr && !c_->fill()) c_ = nullptr;
    }
    Cursor* c_ = nullptr;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  // Ensures page_[index_] is valid; false at the end.
  bool fill() {
    if (remaining_ == 0 || !source_) return false;
    if (index_ < page_.size()) return true;
    index_ = 0;
    if (done_) {
      page_.clear();
      return false;
    }
    const std::size_t want =
        remaining_ < page_size_ ? static_cast<std::size_t>(remaining_) : page_size_;
    try {
      done_ = !source_->refill(page_, want);
    } catch (...) {
      page_.clear();  // never hand out the previous page's items again
      throw;
    }
    if (page_.empty()) {
      done_ = true;
      return false;
    }
    return true;
  }

  std::unique_ptr<Source> source_;
  std::size_t page_size_ = 1;
  std::uint64_t remaining_ = 0;
  std::vector<T> page_;
  std::size_t index_ = 0;
  bool done_ = false;
};

}  // namespace annals
