#include "annals/projections/projection_status.hpp"

namespace annals {

std::string_view to_string(ProjectionState state) noexcept {
  switch (state) {
    case ProjectionState::catching_up:
      return "catching_up";
    case ProjectionState::live:
      return "live";
    case ProjectionState::stopped:
      break;
  }
  return "stopped";
}

}  // namespace annals
