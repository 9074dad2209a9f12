#include "annals/store/in_memory_event_store.hpp"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/stream_id.hpp"
#include "annals/core/thread_annotations.hpp"
#include "append_input.hpp"
#include "commit_listeners.hpp"
#include "transaction_hooks.hpp"

namespace annals {

namespace {
constexpr std::size_t kPageSize = 256;

struct IdLocation {
  std::string stream_id;
  std::int64_t version;
  std::int64_t position;
};

}  // namespace

class InMemoryEventStore::Impl {
 public:
  explicit Impl(std::shared_ptr<const Clock> clock)
      : clock_(clock ? std::move(clock) : SystemClock::shared()) {}

  mutable detail::SharedMutex mu_;
  std::shared_ptr<const Clock> clock_;
  std::vector<RecordedEvent> events_ ANNALS_GUARDED_BY(mu_);  // index = position - 1
  // stream id -> its events' positions
  std::map<std::string, std::vector<std::int64_t>, std::less<>> streams_ ANNALS_GUARDED_BY(mu_);
  std::unordered_map<std::string, IdLocation> ids_ ANNALS_GUARDED_BY(mu_);
  std::shared_ptr<detail::CommitListeners> listeners_ = std::make_shared<detail::CommitListeners>();
  std::shared_ptr<detail::TransactionHooks<InMemoryTransactionHook>> hooks_ =
      std::make_shared<detail::TransactionHooks<InMemoryTransactionHook>>();
  mutable detail::Mutex snapshots_mu_;
  std::map<std::string, std::map<std::int64_t, Snapshot>, std::less<>> snapshots_
      ANNALS_GUARDED_BY(snapshots_mu_);

  std::int64_t version_of(const std::string& stream) const ANNALS_REQUIRES_SHARED(mu_) {
    auto it = streams_.find(stream);
    return it == streams_.end() ? 0 : static_cast<std::int64_t>(it->second.size());
  }

  // Returns the first result if `part` is an idempotent retry; nullopt if none
  // of its ids is stored; throws DuplicateEventId if they are stored elsewhere
  // or with other content.
  std::optional<AppendResult> retry_of(const StreamAppend& part) const
      ANNALS_REQUIRES_SHARED(mu_) {
    auto first = ids_.find(part.events.front().event_id);
    if (first == ids_.end()) return std::nullopt;
    const auto& loc = first->second;
    const auto& events = part.events;
    const auto stored = streams_.find(part.stream_id);
    bool same_place = loc.stream_id == part.stream_id && part.expected.matches(loc.version - 1) &&
                      stored != streams_.end() &&
                      loc.version - 1 + static_cast<std::int64_t>(events.size()) <=
                          static_cast<std::int64_t>(stored->second.size());
    for (std::size_t i = 0; same_place && i < events.size(); ++i) {
      const auto pos = stored->second[static_cast<std::size_t>(loc.version - 1) + i];
      same_place = events_[static_cast<std::size_t>(pos - 1)].event_id == events[i].event_id;
    }
    if (!same_place) {
      throw DuplicateEventId(events.front().event_id, part.stream_id,
                             "stored in stream '" + loc.stream_id + "' at version " +
                                 std::to_string(loc.version) +
                                 ", which is not a retry of this append");
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto pos = stored->second[static_cast<std::size_t>(loc.version - 1) + i];
      const RecordedEvent& kept = events_[static_cast<std::size_t>(pos - 1)];
      if (const char* field = detail::differing_field(events[i], kept.type, kept.schema_version,
                                                      kept.payload, kept.metadata)) {
        throw detail::content_differs(events[i].event_id, part.stream_id, kept.version, field);
      }
    }
    const auto last_version = loc.version - 1 + static_cast<std::int64_t>(events.size());
    return AppendResult{last_version, loc.position,
                        stored->second[static_cast<std::size_t>(last_version - 1)]};
  }
};

InMemoryEventStore::InMemoryEventStore(std::shared_ptr<const Clock> clock)
    : impl_(std::make_unique<Impl>(std::move(clock))) {}

InMemoryEventStore::~InMemoryEventStore() = default;

std::vector<AppendResult> InMemoryEventStore::append(std::vector<StreamAppend> batch) {
  if (impl_->hooks_->called_from_hook()) {
    throw InvalidArgument(
        "append() called from inside a transaction hook of an in-memory store: the hook runs "
        "under the store's write lock, so the append would wait for itself");
  }
  detail::prepare_batch(batch);
  std::vector<AppendResult> results(batch.size());
  std::vector<RecordedEvent> committed;
  std::uint64_t ticket = 0;
  {
    detail::WriterLock lock(impl_->mu_);
    // Check everything first, so a failure leaves the store untouched.
    std::vector<bool> is_retry(batch.size(), false);
    for (std::size_t s = 0; s < batch.size(); ++s) {
      const auto& part = batch[s];
      if (auto retry = impl_->retry_of(part)) {
        results[s] = *retry;
        is_retry[s] = true;
        continue;
      }
      const auto actual = impl_->version_of(part.stream_id);
      if (!part.expected.matches(actual)) {
        throw WrongExpectedVersion(part.stream_id, part.expected, actual);
      }
      for (const auto& event : part.events) {
        if (auto it = impl_->ids_.find(event.event_id); it != impl_->ids_.end()) {
          throw DuplicateEventId(event.event_id, part.stream_id,
                                 "stored in stream '" + it->second.stream_id + "' at version " +
                                     std::to_string(it->second.version));
        }
      }
    }
    const std::size_t old_size = impl_->events_.size();  // for undoing a rejected append
    // Never before the newest stored event: recorded_at does not decrease
    // along positions, even when the wall clock steps back.
    Timestamp now = impl_->clock_->now();
    if (!impl_->events_.empty()) now = std::max(now, impl_->events_.back().recorded_at);
    const bool collect = !impl_->listeners_->empty();
    for (std::size_t s = 0; s < batch.size(); ++s) {
      if (is_retry[s]) continue;
      auto& part = batch[s];
      auto& positions = impl_->streams_[part.stream_id];
      for (auto& data : part.events) {
        const EventHash previous =
            impl_->events_.empty() ? EventHash{} : impl_->events_.back().hash;
        RecordedEvent event = detail::record(
            std::move(data), part.stream_id, static_cast<std::int64_t>(positions.size()) + 1,
            static_cast<std::int64_t>(impl_->events_.size()) + 1, now, previous);
        positions.push_back(event.position);
        impl_->ids_.emplace(event.event_id,
                            IdLocation{event.stream_id, event.version, event.position});
        if (collect) committed.push_back(event);
        impl_->events_.push_back(std::move(event));
      }
      results[s] = AppendResult{static_cast<std::int64_t>(positions.size()),
                                positions[positions.size() - part.events.size()], positions.back()};
    }
    try {
      const std::span<const RecordedEvent> added =
          std::span<const RecordedEvent>(impl_->events_).subspan(old_size);
      if (!added.empty()) {
        impl_->hooks_->run(impl_->hooks_->snapshot(),
                           [&](const InMemoryTransactionHook& hook) { hook(added); });
      }
    } catch (...) {
      // A hook rejected the append: remove its events, newest first.
      while (impl_->events_.size() > old_size) {
        const RecordedEvent& e = impl_->events_.back();
        auto stream = impl_->streams_.find(e.stream_id);
        stream->second.pop_back();
        if (stream->second.empty()) impl_->streams_.erase(stream);
        impl_->ids_.erase(e.event_id);
        impl_->events_.pop_back();
      }
      throw;
    }
    // Queued under the lock that orders appends, so the queue is in position order.
    ticket = impl_->listeners_->enqueue(std::move(committed));
  }
  impl_->listeners_->deliver(ticket);
  return results;
}

namespace {

// Pages over a list of positions computed per page under the shared lock.
class MemorySource final : public Cursor<RecordedEvent>::Source {
 public:
  using Step = std::function<bool(std::vector<RecordedEvent>&, std::size_t)>;
  explicit MemorySource(Step step) : step_(std::move(step)) {}
  bool fetch(std::vector<RecordedEvent>& out, std::size_t max) override { return step_(out, max); }

 private:
  Step step_;
};

}  // namespace

Cursor<RecordedEvent> InMemoryEventStore::read_stream(const std::string& stream_id,
                                                      std::int64_t from_version,
                                                      Direction direction,
                                                      std::uint64_t max_count) const {
  detail::validate_read_stream(stream_id, from_version, direction);
  auto* impl = impl_.get();
  auto next = from_version;
  auto step = [impl, stream_id, next, direction](std::vector<RecordedEvent>& out,
                                                 std::size_t max) mutable {
    detail::ReaderLock lock(impl->mu_);
    auto it = impl->streams_.find(stream_id);
    if (it == impl->streams_.end()) return false;
    const auto& positions = it->second;
    const auto size = static_cast<std::int64_t>(positions.size());
    if (direction == Direction::forward) {
      while (out.size() < max && next <= size) {
        out.push_back(impl->events_[static_cast<std::size_t>(positions[next - 1] - 1)]);
        ++next;
      }
      return next <= size;
    }
    next = std::min(next, size);
    while (out.size() < max && next >= 1) {
      out.push_back(impl->events_[static_cast<std::size_t>(positions[next - 1] - 1)]);
      --next;
    }
    return next >= 1;
  };
  return Cursor<RecordedEvent>(std::make_unique<MemorySource>(std::move(step)), kPageSize,
                               max_count);
}

Cursor<LinkedEvent> InMemoryEventStore::read_stream_linked(const std::string& stream_id,
                                                           std::int64_t from_version,
                                                           std::uint64_t max_count) const {
  detail::validate_read_stream(stream_id, from_version, Direction::forward);
  // Positions are dense here: the predecessor is always events_[position - 2].
  class Source final : public Cursor<LinkedEvent>::Source {
   public:
    Source(const Impl* impl, std::string stream_id, std::int64_t next)
        : impl_(impl), stream_id_(std::move(stream_id)), next_(next) {}
    bool fetch(std::vector<LinkedEvent>& out, std::size_t max) override {
      detail::ReaderLock lock(impl_->mu_);
      auto it = impl_->streams_.find(stream_id_);
      if (it == impl_->streams_.end()) return false;
      const auto& positions = it->second;
      const auto size = static_cast<std::int64_t>(positions.size());
      while (out.size() < max && next_ <= size) {
        const auto index = static_cast<std::size_t>(positions[next_ - 1] - 1);
        out.push_back(LinkedEvent{impl_->events_[index],
                                  index == 0 ? EventHash{} : impl_->events_[index - 1].hash});
        ++next_;
      }
      return next_ <= size;
    }

   private:
    const Impl* impl_;
    std::string stream_id_;
    std::int64_t next_;
  };
  return Cursor<LinkedEvent>(std::make_unique<Source>(impl_.get(), stream_id, from_version),
                             kPageSize, max_count);
}

Cursor<RecordedEvent> InMemoryEventStore::read_all(std::int64_t from_position,
                                                   const EventFilter& filter,
                                                   std::uint64_t max_count) const {
  if (from_position < 1) {
    throw InvalidArgument("read_all from position " + std::to_string(from_position) +
                          ": positions start at 1");
  }
  auto* impl = impl_.get();
  auto next = from_position;
  auto step = [impl, filter, next](std::vector<RecordedEvent>& out, std::size_t max) mutable {
    detail::ReaderLock lock(impl->mu_);
    const auto head = static_cast<std::int64_t>(impl->events_.size());
    while (out.size() < max && next <= head) {
      const auto& event = impl->events_[static_cast<std::size_t>(next - 1)];
      if (filter.matches(event)) out.push_back(event);
      ++next;
    }
    return next <= head;
  };
  return Cursor<RecordedEvent>(std::make_unique<MemorySource>(std::move(step)), kPageSize,
                               max_count);
}

std::int64_t InMemoryEventStore::stream_version(const std::string& stream_id) const {
  validate_stream_id(stream_id);
  detail::ReaderLock lock(impl_->mu_);
  return impl_->version_of(stream_id);
}

std::int64_t InMemoryEventStore::head_position() const {
  detail::ReaderLock lock(impl_->mu_);
  return static_cast<std::int64_t>(impl_->events_.size());
}

Cursor<std::string> InMemoryEventStore::list_streams(const std::string& prefix) const {
  class Source final : public Cursor<std::string>::Source {
   public:
    Source(const Impl* impl, std::string prefix) : impl_(impl), prefix_(std::move(prefix)) {}
    bool fetch(std::vector<std::string>& out, std::size_t max) override {
      detail::ReaderLock lock(impl_->mu_);
      auto it =
          started_ ? impl_->streams_.upper_bound(last_) : impl_->streams_.lower_bound(prefix_);
      started_ = true;
      for (; it != impl_->streams_.end() && out.size() < max; ++it) {
        if (!it->first.starts_with(prefix_)) return false;
        out.push_back(it->first);
        last_ = it->first;
      }
      return it != impl_->streams_.end() && it->first.starts_with(prefix_);
    }

   private:
    const Impl* impl_;
    std::string prefix_;
    std::string last_;
    bool started_ = false;
  };
  return Cursor<std::string>(std::make_unique<Source>(impl_.get(), prefix), kPageSize, kNoLimit);
}

CommitListenerHandle InMemoryEventStore::add_commit_listener(CommitListener listener) {
  return impl_->listeners_->add(std::move(listener));
}

TransactionHookHandle InMemoryEventStore::add_transaction_hook(InMemoryTransactionHook hook) {
  if (!hook) throw InvalidArgument("add_transaction_hook: the hook is empty");
  return impl_->hooks_->add(std::move(hook));
}

void InMemoryEventStore::save_snapshot(const Snapshot& snapshot) {
  detail::validate_snapshot(snapshot);
  Snapshot stored = snapshot;
  stored.recorded_at = impl_->clock_->now();
  detail::MutexLock lock(impl_->snapshots_mu_);
  impl_->snapshots_[stored.stream_id][stored.version] = std::move(stored);
}

std::optional<Snapshot> InMemoryEventStore::load_snapshot(const std::string& stream_id,
                                                          std::int64_t max_version) const {
  validate_stream_id(stream_id);
  detail::MutexLock lock(impl_->snapshots_mu_);
  auto stream = impl_->snapshots_.find(stream_id);
  if (stream == impl_->snapshots_.end()) return std::nullopt;
  auto it = stream->second.upper_bound(max_version);
  if (it == stream->second.begin()) return std::nullopt;
  return std::prev(it)->second;
}

void InMemoryEventStore::delete_snapshots(const std::string& stream_id) {
  detail::MutexLock lock(impl_->snapshots_mu_);
  if (stream_id.empty()) {
    impl_->snapshots_.clear();
  } else {
    impl_->snapshots_.erase(stream_id);
  }
}

}  // namespace annals
