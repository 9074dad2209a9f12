#pragma once
// A throwaway PostgreSQL cluster, without GoogleTest, so that tests and
// benchmarks share it: initdb and pg_ctl from Debian's postgresql package, a
// Unix socket in a temporary directory, run as the `postgres` system user when
// the program runs as root (PostgreSQL refuses root). Stopped (immediate mode)
// and removed when the object is destroyed. An existing server's connection
// string can be given instead (then nothing is started, stopped or killed).
//
// kill() and restart() let fault tests crash the server: SIGKILL to the
// postmaster and every backend, then a start that runs crash recovery.
//
// Thread safety: none; one thread owns the object.

#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace annals::testing {

class PostgresServer {
 public:
  // Starts a throwaway cluster, or uses `existing_url` when it is not empty
  // (by default ANNALS_TEST_PG_URL). `settings` are extra "-c name=value"
  // server options.
  explicit PostgresServer(const std::string& existing_url = url_from_env("ANNALS_TEST_PG_URL"),
                          std::string settings = {})
      : settings_(std::move(settings)) {
    if (!existing_url.empty()) {
      url_ = existing_url;
      return;
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "annals-pg-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) throw std::runtime_error("running as root, but no 'postgres' user");
      if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::runtime_error("cannot chown " + dir_.string() + " to postgres");
      }
      as_user_ = "runuser -u postgres -- ";
    }
    run(as_user_ + bin_dir() + "/initdb -A trust -U postgres -E UTF8 --no-sync -D '" + data() +
        "' >'" + (dir_ / "initdb.log").string() + "' 2>&1");
    start();
    url_ = "host=" + dir_.string() + " port=5432 dbname=postgres user=postgres";
  }

  ~PostgresServer() {
    if (running_) {
      const std::string cmd = as_user_ + bin_dir() + "/pg_ctl stop -m immediate -D '" + data() +
                              "' >/dev/null 2>&1";
      [[maybe_unused]] const int rc = std::system(cmd.c_str());
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The value of environment variable `name`, empty when unset.
  static std::string url_from_env(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? value : "";
  }

  const std::string& url() const { return url_; }
  // False for an existing server given by URL: kill() and restart() refuse it.
  bool owns_server() const { return !dir_.empty(); }

  // SIGKILL to the postmaster and all its backends, as a crash or the OOM
  // killer would; returns when none of them runs any more. The postmaster
  // is stopped first so that it forks no backend while they are listed.
  void kill() {
    require_owned("kill");
    const pid_t pid = postmaster_pid();
    if (::kill(pid, SIGSTOP) != 0) {
      throw std::runtime_error("cannot signal the postmaster " + std::to_string(pid));
    }
    std::vector<pid_t> victims = children_of(pid);
    victims.push_back(pid);
    for (pid_t v : victims) ::kill(v, SIGKILL);
    running_ = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (pid_t v : victims) {
      while (alive(v)) {
        if (std::chrono::steady_clock::now() > deadline) {
          throw std::runtime_error("the killed server's process " + std::to_string(v) +
                                   " did not exit");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }

  // Starts the server again after kill() (crash recovery runs); returns once
  // it accepts connections.
  void restart() {
    require_owned("restart");
    // The killed postmaster's lock file names a pid that may linger as a
    // zombie nobody reaps, which a new postmaster would take for a live one.
    std::error_code ec;
    std::filesystem::remove(dir_ / "data" / "postmaster.pid", ec);
    std::filesystem::remove(dir_ / ".s.PGSQL.5432.lock", ec);
    std::filesystem::remove(dir_ / ".s.PGSQL.5432", ec);
    start();
  }

 private:
  static std::string bin_dir() {
    if (const char* b = std::getenv("ANNALS_PG_BIN"); b != nullptr && *b != '\0') return b;
    return "/usr/lib/postgresql/15/bin";
  }
  std::string data() const { return (dir_ / "data").string(); }

  void start() {
    run(as_user_ + bin_dir() + "/pg_ctl start -w -t 60 -D '" + data() + "' -l '" +
        (dir_ / "server.log").string() + "' -o \"-k '" + dir_.string() +
        "' -c listen_addresses='' -c fsync=off -c max_connections=200 " + settings_ +
        "\" >/dev/null");
    running_ = true;
  }

  void require_owned(const char* what) const {
    if (!owns_server()) {
      throw std::runtime_error(std::string("cannot ") + what + " a server given by URL");
    }
  }

  pid_t postmaster_pid() const {
    std::ifstream in(dir_ / "data" / "postmaster.pid");
    long pid = 0;
    if (!(in >> pid) || pid <= 1) throw std::runtime_error("no postmaster.pid in " + data());
    return static_cast<pid_t>(pid);
  }

  // State, parent pid of process `pid` from /proc; state 0 when it is gone.
  static std::pair<char, long> proc_stat(const std::string& pid) {
    std::ifstream stat("/proc/" + pid + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return {0, 0};
    // pid (comm) state ppid ...; comm may hold spaces and parentheses.
    const auto close = line.rfind(')');
    char state = 0;
    long ppid = 0;
    if (close == std::string::npos ||
        std::sscanf(line.c_str() + close + 1, " %c %ld", &state, &ppid) != 2) {
      return {0, 0};
    }
    return {state, ppid};
  }
  static std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (proc_stat(name).second == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
  }
  // Running, or exited but not yet reaped: a zombie holds no resources.
  static bool alive(pid_t pid) {
    const char state = proc_stat(std::to_string(pid)).first;
    return state != 0 && state != 'Z' && state != 'X';
  }

  void run(const std::string& cmd) {
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error("failed: " + cmd + " (logs in " + dir_.string() + ")");
    }
  }

  std::filesystem::path dir_;
  std::string as_user_;
  std::string settings_;
  std::string url_;
  bool running_ = false;
};

}  // namespace annals::testing
