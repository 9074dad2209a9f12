// check_projection: the shadow is a read model of the live one's kind
// (ReadModel's shadow hook: a temporary SQLite file, or a temporary
// PostgreSQL schema), extended batch by batch up to the live checkpoint. The
// comparison runs in one read transaction of the live model that can reach
// the shadow's tables, and first re-reads the live checkpoint: if a runner moved it since the
// replay stopped, the replay goes on to the new checkpoint (or starts again after a rebuild moved
// it back) and the comparison is made again.

#include "annals/projections/projection_check.hpp"

#include <memory>
#include <optional>

#include "projection_tables.hpp"
#include "shadow_model.hpp"

namespace annals {

namespace {

constexpr int kMaxRounds = 10;
constexpr std::size_t kMaxFailuresKept = 100;

// The projection replayed into shadow tables, up to a position.
class ShadowReplay {
 public:
  ShadowReplay(EventStore& store, const Projection& projection, const ReadModel& live,
               std::size_t batch_size)
      : store_(store),
        projection_(projection),
        shadow_(detail::ReadModelAccess::open_shadow(live)),
        batch_size_(batch_size) {
    shadow_->model().write([&](SqlTransaction& tx) {
      if (projection_.setup) projection_.setup(tx);
    });
    shadow_->model().read([&](SqlTransaction& tx) { tables_ = detail::projection_tables(tx); });
  }

  detail::ShadowModel& shadow() { return *shadow_; }
  const std::vector<std::string>& tables() const { return tables_; }
  std::int64_t position() const { return position_; }
  const std::vector<ReplayFailure>& failures() const { return failures_; }

  // Applies the events after position() up to `target`.
  void extend_to(std::int64_t target) {
    while (position_ < target) {
      std::vector<RecordedEvent> events;
      for (auto& e : store_.read_all(position_ + 1, projection_.filter, batch_size_)) {
        if (e.position > target) break;
        events.push_back(std::move(e));
      }
      const bool last = events.size() < batch_size_;
      shadow_->model().write([&](SqlTransaction& tx) {
        for (const auto& e : events) {
          if (auto error = detail::in_savepoint(tx, [&] { projection_.apply(tx, e); })) {
            if (failures_.size() < kMaxFailuresKept) {
              failures_.push_back(ReplayFailure{e.position, detail::message_of(error)});
            }
          }
        }
      });
      position_ = last ? target : events.back().position;
    }
  }

 private:
  EventStore& store_;
  const Projection& projection_;
  std::unique_ptr<detail::ShadowModel> shadow_;
  std::size_t batch_size_;
  std::vector<std::string> tables_;
  std::int64_t position_ = 0;
  std::vector<ReplayFailure> failures_;
};

}  // namespace

std::string to_string(RowDifference::Kind kind) {
  switch (kind) {
    case RowDifference::Kind::only_in_live:
      return "only in live";
    case RowDifference::Kind::only_in_replay:
      return "only in replay";
    case RowDifference::Kind::differing:
      return "differing";
  }
  return "differing";
}

CheckReport check_projection(EventStore& store, const ReadModel& read_model,
                             const Projection& projection, const CheckOptions& options) {
  if (projection.name.empty()) throw InvalidArgument("a projection needs a name");
  if (!projection.apply) {
    throw InvalidArgument("projection '" + projection.name + "' has no apply function");
  }
  if (options.batch_size == 0) {
    throw InvalidArgument("check of '" + projection.name + "': batch_size must be >= 1");
  }
  if (!read_model.checkpoint_record(projection.name)) {
    throw InvalidArgument(read_model.describe() + " has no projection named '" + projection.name +
                          "'");
  }
  // A unique_ptr, not an optional: GCC 12 at -O2 takes the optional's
  // payload for maybe-uninitialized (a false -Wmaybe-uninitialized).
  std::unique_ptr<ShadowReplay> replay;
  std::int64_t target = read_model.checkpoint(projection.name);
  for (int round = 0; round < kMaxRounds; ++round) {
    const std::int64_t head = store.head_position();
    if (target > head) throw detail::checkpoint_beyond_head(projection.name, target, head);
    if (!replay || replay->position() > target) {  // first round, or a rebuild moved it back
      replay.reset();
      replay = std::make_unique<ShadowReplay>(store, projection, read_model, options.batch_size);
    }
    replay->extend_to(target);

    CheckReport report;
    report.projection = projection.name;
    bool moved = false;
    replay->shadow().with_live(false, [&](SqlTransaction& tx) {
      const std::int64_t live = detail::checkpoint_position(tx, projection.name);
      if (live != target) {
        moved = true;
        target = live;
      } else {
        report.checkpoint = target;
        report.tables = replay->tables();
        detail::compare_tables(tx, replay->shadow(), replay->tables(), options.max_samples, report);
      }
    });
    if (moved) continue;
    report.replay_failures = replay->failures();
    return report;
  }
  throw StorageError("check of '" + projection.name + "': the live checkpoint moved during " +
                     std::to_string(kMaxRounds) + " comparisons in a row; try again");
}

}  // namespace annals
