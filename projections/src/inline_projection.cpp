// InlineProjection: a TransactionHook on the store. Inside each append's
// transaction it first applies any events committed since its checkpoint that
// it has not seen (appended by writers it is not attached to; read through the
// store's reader connections, which see exactly the committed events because
// the hook runs under the store's write lock), then the append's own events,
// then moves its checkpoint; all on the store's writer connection, so it all
// commits or rolls back with the append.
//
// Outside appends (setup, the catch-up on construction, rebuild) it writes
// through a SqliteReadModel of its own on the store's file, whose BEGIN
// IMMEDIATE holds the store's write lock for the duration, so no append can
// slip between reading the head and moving the checkpoint.
//
// A checkpoint beyond the head (the store lost its tail, or reused the
// positions of deleted events) would skip the events at the positions in
// between: construction and appends throw IntegrityError instead, and only
// a rebuild moves such a checkpoint (back to 0): rebuild(), or a rebuild
// request (rebuild_request.hpp) honoured on construction.

#include "annals/projections/inline_projection.hpp"

#include <algorithm>

#include "annals/core/error.hpp"
#include "projection_tables.hpp"

namespace annals {

class InlineProjection::Impl {
 public:
  Impl(SqliteEventStore& store, Projection projection, SqliteReadModelOptions options)
      : store_(store), projection_(std::move(projection)), read_model_(store.path(), options) {
    if (projection_.name.empty()) throw InvalidArgument("a projection needs a name");
    if (!projection_.apply) {
      throw InvalidArgument("projection '" + projection_.name + "' has no apply function");
    }
    read_model_.write([&](SqlTransaction& tx) {
      if (projection_.setup) projection_.setup(tx);
      detail::ensure_checkpoint(tx, projection_.name, now());
      detail::save_state(tx, projection_.name, ProjectionState::live, now());
      // A rebuild requested through the read model (annals rebuild NAME): the
      // way on for a checkpoint that construction would refuse.
      if (projection_.reset && detail::rebuild_requested(tx, projection_.name)) {
        projection_.reset(tx);
        detail::save_position(tx, projection_.name, 0, now());
        detail::clear_rebuild_request(tx, projection_.name);
      }
      catch_up(tx, store_.head_position());
    });
    hook_ = store_.add_transaction_hook(
        [this](SqlTransaction& tx, std::span<const RecordedEvent> events) { on_append(tx, events); });
  }

  ~Impl() { hook_.reset(); }

  Timestamp now() const { return read_model_.clock().now(); }

  void rebuild() {
    if (!projection_.reset) {
      throw InvalidArgument("projection '" + projection_.name +
                            "' has no reset function, so it cannot be rebuilt");
    }
    read_model_.write([&](SqlTransaction& tx) {
      projection_.reset(tx);
      detail::save_position(tx, projection_.name, 0, now());
      detail::clear_rebuild_request(tx, projection_.name);
      catch_up(tx, store_.head_position());
    });
  }

  const std::string& name() const noexcept { return projection_.name; }
  std::int64_t checkpoint() const { return read_model_.checkpoint(projection_.name); }
  SqliteReadModel& read_model() noexcept { return read_model_; }

 private:
  // Applies the committed events after `checkpoint` up to `up_to`; returns
  // the new checkpoint (not yet saved).
  std::int64_t catch_up(SqlTransaction& tx, std::int64_t checkpoint, std::int64_t up_to) {
    if (checkpoint >= up_to) return checkpoint;
    for (const RecordedEvent& e : store_.read_all(checkpoint + 1, projection_.filter)) {
      if (e.position > up_to) break;
      projection_.apply(tx, e);
    }
    return up_to;
  }

  void catch_up(SqlTransaction& tx, std::int64_t up_to) {
    const std::int64_t checkpoint = detail::checkpoint_position(tx, projection_.name);
    if (checkpoint > up_to) {
      throw detail::checkpoint_beyond_head(projection_.name, checkpoint, up_to);
    }
    if (catch_up(tx, checkpoint, up_to) != checkpoint) {
      detail::save_position(tx, projection_.name, up_to, now());
    }
  }

  void on_append(SqlTransaction& tx, std::span<const RecordedEvent> events) {
    const std::int64_t saved = detail::checkpoint_position(tx, projection_.name);
    // Rejects the append: the store is handing out positions already handled.
    const std::int64_t head = events.front().position - 1;
    if (saved > head) throw detail::checkpoint_beyond_head(projection_.name, saved, head);
    const std::int64_t checkpoint = catch_up(tx, saved, head);
    for (const RecordedEvent& e : events) {
      if (e.position > checkpoint && projection_.filter.matches(e)) projection_.apply(tx, e);
    }
    const std::int64_t last = std::max(checkpoint, events.back().position);
    if (last != saved) detail::save_position(tx, projection_.name, last, now());
  }

  SqliteEventStore& store_;
  const Projection projection_;
  SqliteReadModel read_model_;
  TransactionHookHandle hook_;  // last: unregistered before the rest goes
};

InlineProjection::InlineProjection(SqliteEventStore& store, Projection projection,
                                   SqliteReadModelOptions options)
    : impl_(std::make_shared<Impl>(store, std::move(projection), options)) {}

InlineProjection::~InlineProjection() = default;

const std::string& InlineProjection::name() const noexcept { return impl_->name(); }
std::int64_t InlineProjection::checkpoint() const { return impl_->checkpoint(); }
void InlineProjection::rebuild() { impl_->rebuild(); }
SqliteReadModel& InlineProjection::read_model() noexcept { return impl_->read_model(); }

}  // namespace annals
