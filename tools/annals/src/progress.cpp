#include "progress.hpp"

#include <algorithm>

namespace annals::tool {

ProgressBar::ProgressBar(std::ostream& err, bool enabled, std::string label, std::int64_t total)
    : err_(err), enabled_(enabled), label_(std::move(label)), total_(total) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(std::int64_t done, std::int64_t total) {
  if (total > 0) total_ = total;
  if (!enabled_) return;
  if (std::max(done, total_) <= kThreshold) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < kRedrawInterval) return;
  last_ = now;
  draw(done);
}

void ProgressBar::draw(std::int64_t done) {
  std::string line = label_ + " ";
  if (total_ > 0) {
    constexpr int kCells = 30;
    const std::int64_t shown = std::clamp<std::int64_t>(done, 0, total_);
    const int filled = static_cast<int>(shown * kCells / total_);
    line += "[" + std::string(static_cast<std::size_t>(filled), '#') +
            std::string(static_cast<std::size_t>(kCells - filled), '.') + "] " +
            std::to_string(shown * 100 / total_) + "% " + std::to_string(done) + "/" +
            std::to_string(total_);
  } else {
    line += std::to_string(done) + " events";
  }
  const std::size_t pad = width_ > line.size() ? width_ - line.size() : 0;
  width_ = std::max(width_, line.size());
  err_ << '\r' << line << std::string(pad, ' ') << std::flush;
  drawn_ = true;
}

void ProgressBar::finish() noexcept {
  if (!drawn_) return;
  drawn_ = false;
  try {
    err_ << '\r' << std::string(width_, ' ') << '\r' << std::flush;
  } catch (...) {  // a destructor path: the bar is cosmetic
  }
}

}  // namespace annals::tool
