// Rebuild requests live in the checkpoint table (projection_tables.cpp); the
// runner side is in projection_runner.cpp (step() and wait_for_news()).

#include "annals/projections/rebuild_request.hpp"

#include "annals/core/error.hpp"
#include "projection_tables.hpp"

namespace annals {

void request_rebuild(ReadModel& read_model, const std::string& name) {
  bool known = false;
  read_model.write([&](SqlTransaction& tx) { known = detail::request_rebuild(tx, name, read_model.clock().now()); });
  if (!known) {
    throw InvalidArgument(read_model.describe() + " has no projection named '" + name +
                          "' (no checkpoint row)");
  }
}

bool rebuild_requested(const ReadModel& read_model, const std::string& name) {
  bool requested = false;
  read_model.read([&](SqlTransaction& tx) { requested = detail::rebuild_requested(tx, name); });
  return requested;
}

}  // namespace annals
