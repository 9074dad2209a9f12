// Turns the Google Benchmark JSON files of a bench/run into the comparison
// table and the results file.
//
// Usage: annals_bench_report OUT.json [--memory MEM.jsonl] RUN.json...
//   Every RUN.json is a Google Benchmark JSON output holding benchmarks named
//   "annals/<case>" or "baseline/<case>". For each case the medians of
//   items_per_second over all runs are compared (ratio = annals / baseline);
//   the table goes to standard output and the rows to OUT.json as
//   [{"name", "annals_per_s", "baseline_per_s", "ratio", "runs",
//     "annals_runs_per_s", "baseline_runs_per_s"}...] (the last two: every run,
//   in the order they ran).
//   MEM.jsonl holds lines {"case", "events", "peak_rss_kib"} from
//   annals_bench_rss; they are printed with the growth from the smallest
//   store, and written next to OUT.json as memory.jsonl (one object a line,
//   so that OUT.json stays the only .json file: the comparison rows).
// Exit code: 0; 1 when a file is missing, malformed or a case lacks a side.
//
// Usage: annals_bench_report --check OUT.json CASE... [--memory MEM.jsonl EVENTS]
//   Checks (for the smoke test) that OUT.json is an array of rows
//   {"name", "annals_per_s" > 0, "baseline_per_s" > 0, "ratio" > 0} with a row
//   for every CASE, and that every line of MEM.jsonl is
//   {"case", "events" == EVENTS, "peak_rss_kib" > 0}. Exit code 0 or 1, with
//   what is wrong on standard error.

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using Json = nlohmann::json;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Json load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read '" + path + "'");
  try {
    return Json::parse(in);
  } catch (const Json::exception& e) {
    throw std::runtime_error("'" + path + "' is not valid JSON: " + e.what());
  }
}

int check(int argc, char** argv) {
  const Json rows = load(argv[2]);
  if (!rows.is_array()) throw std::runtime_error(std::string(argv[2]) + " is not a JSON array");
  std::vector<std::string> names;
  for (const Json& row : rows) {
    const bool ok = row.is_object() && row.contains("name") && row["name"].is_string() &&
                    row.value("annals_per_s", 0.0) > 0 && row.value("baseline_per_s", 0.0) > 0 &&
                    row.value("ratio", 0.0) > 0;
    if (!ok) throw std::runtime_error("malformed row: " + row.dump());
    names.push_back(row["name"].get<std::string>());
  }
  int i = 3;
  for (; i < argc && std::string(argv[i]) != "--memory"; ++i) {
    if (std::find(names.begin(), names.end(), argv[i]) == names.end()) {
      throw std::runtime_error(std::string("no row named ") + argv[i]);
    }
  }
  if (i < argc) {
    if (i + 2 >= argc) throw std::runtime_error("--memory needs MEM.jsonl and EVENTS");
    std::ifstream in(argv[i + 1]);
    if (!in) throw std::runtime_error(std::string("cannot read '") + argv[i + 1] + "'");
    const std::int64_t events = std::stoll(argv[i + 2]);
    std::string line;
    int lines = 0;
    while (std::getline(in, line)) {
      const Json m = Json::parse(line);
      if (m.value("events", std::int64_t{-1}) != events || m.value("peak_rss_kib", 0) <= 0) {
        throw std::runtime_error("malformed memory line: " + line);
      }
      ++lines;
    }
    if (lines == 0) throw std::runtime_error(std::string("no memory lines in ") + argv[i + 1]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 3 && std::string(argv[1]) == "--check") return check(argc, argv);
    if (argc < 3) {
      std::cerr << "usage: annals_bench_report OUT.json [--memory MEM.jsonl] RUN.json...\n";
      return 1;
    }
    const std::string out_path = argv[1];
    std::string memory_path;
    // case -> side -> items per second of each run, in first-seen case order
    std::vector<std::string> order;
    std::map<std::string, std::map<std::string, std::vector<double>>> rates;
    for (int i = 2; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--memory" && i + 1 < argc) {
        memory_path = argv[++i];
        continue;
      }
      const Json run = load(arg);
      if (!run.contains("benchmarks") || !run["benchmarks"].is_array()) {
        throw std::runtime_error("'" + arg + "' has no \"benchmarks\" array");
      }
      for (const Json& b : run["benchmarks"]) {
        const std::string name = b.at("name").get<std::string>();
        if (b.contains("error_occurred") && b["error_occurred"].get<bool>()) {
          throw std::runtime_error("'" + arg + "': " + name + " failed: " +
                                   b.value("error_message", std::string("?")));
        }
        const auto slash = name.find('/');
        if (slash == std::string::npos || !b.contains("items_per_second")) continue;
        const std::string side = name.substr(0, slash);
        std::string kase = name.substr(slash + 1);
        if (const auto extra = kase.find('/'); extra != std::string::npos) kase.resize(extra);
        if (side != "annals" && side != "baseline") continue;
        if (!rates.contains(kase)) order.push_back(kase);
        rates[kase][side].push_back(b.at("items_per_second").get<double>());
      }
    }
    Json rows = Json::array();
    std::printf("%-32s %14s %14s %7s %5s\n", "case", "annals ev/s", "baseline ev/s", "ratio",
                "runs");
    for (const std::string& kase : order) {
      auto& sides = rates[kase];
      if (sides["annals"].empty() || sides["baseline"].empty()) {
        throw std::runtime_error("case " + kase + " lacks an annals or a baseline run");
      }
      const double a = median(sides["annals"]);
      const double b = median(sides["baseline"]);
      const double ratio = b > 0 ? a / b : 0;
      const auto runs = std::min(sides["annals"].size(), sides["baseline"].size());
      std::printf("%-32s %14.0f %14.0f %7.2f %5zu\n", kase.c_str(), a, b, ratio, runs);
      rows.push_back({{"name", kase},
                      {"annals_per_s", a},
                      {"baseline_per_s", b},
                      {"ratio", ratio},
                      {"runs", runs},
                      {"annals_runs_per_s", sides["annals"]},
                      {"baseline_runs_per_s", sides["baseline"]}});
    }
    std::ofstream(out_path) << rows.dump(2) << "\n";

    if (!memory_path.empty()) {
      std::ifstream in(memory_path);
      if (!in) throw std::runtime_error("cannot read '" + memory_path + "'");
      std::map<std::string, std::map<std::int64_t, std::int64_t>> peaks;  // case -> events -> KiB
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty()) continue;
        const Json m = Json::parse(line);
        peaks[m.at("case").get<std::string>()][m.at("events").get<std::int64_t>()] =
            m.at("peak_rss_kib").get<std::int64_t>();
      }
      std::string memory_lines;
      std::printf("\n%-12s %12s %16s %12s\n", "peak RSS", "events", "peak_rss_kib", "growth");
      for (const auto& [kase, by_size] : peaks) {
        const double smallest = static_cast<double>(by_size.begin()->second);
        for (const auto& [events, kib] : by_size) {
          const double growth = smallest > 0 ? static_cast<double>(kib) / smallest - 1 : 0;
          std::printf("%-12s %12lld %16lld %11.1f%%\n", kase.c_str(),
                      static_cast<long long>(events), static_cast<long long>(kib), 100 * growth);
          memory_lines += Json{{"name", kase},
                               {"events", events},
                               {"peak_rss_kib", kib},
                               {"growth_vs_smallest", growth}}
                              .dump() +
                          "\n";
        }
      }
      const std::string memory_out =
          out_path.substr(0, out_path.find_last_of('/') + 1) + "memory.jsonl";
      std::ofstream(memory_out) << memory_lines;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "annals_bench_report: " << e.what() << "\n";
    return 1;
  }
}
