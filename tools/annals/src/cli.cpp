#include "cli.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <iostream>
#include <string_view>

#include "annals/core/error.hpp"
#include "annals/version.hpp"
#include "serve.hpp"

namespace annals::tool {

namespace {

// Reports `message` as "annals <command>: <message>" on stderr, control
// bytes escaped and cut at a readable length.
int report(Io& io, const std::string& command, const std::string& message, int code) {
  io.err << "annals" << (command.empty() ? "" : " " + command) << ": "
         << printable_message(message) << '\n';
  io.err.flush();
  return code;
}

// A whole number of at least 1, said so in words (CLI::PositiveNumber
// reports a range up to 1.79e308).
CLI::Validator positive_whole_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::int64_t value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || value < 1) {
          return "must be a whole number of at least 1, got '" + printable_message(text) + "'";
        }
        return {};
      },
      "NUMBER>=1");
}

// A number of seconds, zero or more (fractions allowed).
CLI::Validator non_negative_seconds() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || !(value >= 0) ||
            !std::isfinite(value)) {
          return "must be a number of seconds, 0 or more, got '" + printable_message(text) + "'";
        }
        return {};
      },
      "SECONDS>=0");
}

// `--db FILE` (or `--db=FILE`) given before the command moves after it, so
// that `annals --db FILE COMMAND` works as `annals COMMAND --db FILE` does.
// Also returns the command word, empty when there is none.
std::vector<std::string> db_after_command(int argc, const char* const* argv,
                                          std::string& command) {
  std::vector<std::string> leading, db, rest;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--db" && i + 1 < argc) {
      db = {std::string(arg), argv[++i]};
    } else if (arg.rfind("--db=", 0) == 0) {
      db = {std::string(arg)};
    } else if (!arg.empty() && arg[0] == '-') {
      leading.emplace_back(arg);
    } else {
      break;
    }
  }
  std::vector<std::string> args{argc > 0 ? argv[0] : "annals"};
  args.insert(args.end(), leading.begin(), leading.end());
  if (i < argc) {
    command = argv[i];
    args.emplace_back(argv[i++]);
  }
  args.insert(args.end(), db.begin(), db.end());
  for (; i < argc; ++i) args.emplace_back(argv[i]);
  return args;
}

}  // namespace

int run(int argc, const char* const* argv, Io& io) {
  CLI::App app{"Inspect, verify, export and import Annals SQLite event stores.", "annals"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "annals " + std::string(kVersion), "Print the version and exit");
  app.footer("Exit codes: 0 ok, 1 failure, 2 usage, 3 unusable file, 4 integrity or seal mismatch.");
  // Usage errors start with the program's name, as every other error does.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "annals: " + printable_message(e.what()) + "\nRun annals --help for more information.\n";
  });

  std::function<int()> action;
  const auto add = [&](const std::string& name, const std::string& what,
                       std::filesystem::path& db) {
    CLI::App* sub = app.add_subcommand(name, what);
    sub->add_option("--db", db, "The store: an SQLite file, or a postgresql:// URL")->required();
    return sub;
  };

  StreamsCommand streams;
  auto* s = add("streams", "List stream ids and their versions", streams.db);
  s->add_option("--prefix", streams.prefix, "Only streams whose id starts with this");
  s->add_flag("--json", streams.json, "One JSON object per line");
  s->callback([&] { action = [&] { return run_streams(streams, io); }; });

  ReadCommand read;
  std::int64_t read_from = 0;
  auto* r = add("read", "Print the events of one stream", read.db);
  r->add_option("stream", read.stream, "The stream id")->required();
  auto* from_opt = r->add_option("--from", read_from, "First version (default: 1, or the last with --backward)");
  r->add_flag("--backward", read.backward, "Newest first");
  r->add_option("--limit", read.limit, "At most this many events")->check(positive_whole_number());
  r->add_flag("--json", read.json, "Export lines (JSON Lines)");
  std::string read_correlation;
  auto* read_corr_opt = r->add_option("--correlation", read_correlation,
                                      "Only events whose metadata has this correlation_id");
  r->callback([&] {
    if (from_opt->count() > 0) read.from = read_from;
    if (read_corr_opt->count() > 0) read.correlation = read_correlation;
    action = [&] { return run_read(read, io); };
  });

  TailCommand tail;
  std::int64_t tail_from = 0, tail_max = 0;
  auto* t = add("tail", "Print the newest events; --follow waits for more", tail.db);
  auto* tail_from_opt = t->add_option("--from", tail_from, "First position (default: the last 10 events)");
  t->add_flag("--follow,-f", tail.follow, "Keep printing events as they are appended, by any process");
  t->add_flag("--json", tail.json, "Export lines (JSON Lines)");
  auto* max_opt = t->add_option("--max-events", tail_max, "Stop after printing this many events")
                      ->check(positive_whole_number());
  t->add_option("--timeout", tail.timeout_seconds, "With --follow: stop after this many seconds")
      ->check(non_negative_seconds());
  t->add_option("--poll-interval", tail.poll_ms, "With --follow: milliseconds between looks (default 200)")
      ->check(positive_whole_number());
  std::string tail_correlation;
  auto* tail_corr_opt = t->add_option("--correlation", tail_correlation,
                                      "Only events whose metadata has this correlation_id");
  t->callback([&] {
    if (tail_from_opt->count() > 0) tail.from = tail_from;
    if (tail_corr_opt->count() > 0) tail.correlation = tail_correlation;
    if (max_opt->count() > 0) tail.max_events = tail_max;
    action = [&] { return run_tail(tail, io); };
  });

  StatsCommand stats;
  auto* st = add("stats", "Events per type and category, head position, file size", stats.db);
  st->add_flag("--json", stats.json, "One JSON object");
  st->callback([&] { action = [&] { return run_stats(stats, io); }; });

  VerifyCommand verify;
  auto* v = add("verify", "Check the hash chain; exit 0 when intact, 4 naming the first bad position", verify.db);
  v->add_flag("--json", verify.json, "One JSON object");
  auto* seal_opt = v->add_option(
      "--seal", verify.seal, "Also check the store against this seal file: exit 4 when it was cut or rewritten");
  v->add_option("--key", verify.key, "With --seal: the key the seal must be signed with (private or public PEM)")
      ->needs(seal_opt);
  v->callback([&] { action = [&] { return run_verify(verify, io); }; });

  SealCommand seal_cmd;
  auto* sl = add("seal", "Seal the store's head; write the signed seal (JSON) to standard output",
                 seal_cmd.db);
  sl->add_option("--key", seal_cmd.key, "Ed25519 private key file (PEM); without it the seal is unsigned");
  sl->callback([&] { action = [&] { return run_seal(seal_cmd, io); }; });

  KeygenCommand keygen;
  auto* kg = app.add_subcommand("keygen", "Create an Ed25519 key for seals (never overwrites)");
  kg->add_option("--key", keygen.key, "The private key file to create (mode 0600)")->required();
  kg->add_option("--public", keygen.public_key, "Also write the public key (PEM) here");
  kg->callback([&] { action = [&] { return run_keygen(keygen, io); }; });

  ExportCommand exp;
  auto* e = add("export", "Write every event as JSON Lines", exp.db);
  e->add_option("--output,-o", exp.output, "Output file (default: standard output)");
  e->callback([&] { action = [&] { return run_export(exp, io); }; });

  ImportCommand imp;
  auto* i = add("import", "Load an export into an empty or new store, all or nothing", imp.db);
  i->add_option("file", imp.input, "The export file, - for standard input")->required();
  i->callback([&] { action = [&] { return run_import(imp, io); }; });

  // projections, rebuild, check and serve: an SQLite or a PostgreSQL read model.
  const std::string kReadModelHelp =
      "The read model: an SQLite file, or a postgresql:// URL (default: the store's own)";
  ProjectionsCommand projections;
  auto* p = add("projections", "Each durable projection's checkpoint, lag and state", projections.db);
  p->add_option("--read-model", projections.read_model, kReadModelHelp);
  p->add_flag("--json", projections.json, "One JSON object per line");
  p->callback([&] { action = [&] { return run_projections(projections, io); }; });

  RebuildCommand rebuild;
  auto* b = add("rebuild", "Ask the runner of a projection to rebuild it", rebuild.db);
  b->add_option("name", rebuild.name, "The projection's name")->required();
  b->add_option("--read-model", rebuild.read_model, kReadModelHelp);
  b->add_flag("--wait", rebuild.wait, "Wait until the rebuild reached the head");
  b->add_option("--timeout", rebuild.timeout_seconds, "With --wait: give up after this many seconds")
      ->check(non_negative_seconds());
  b->add_option("--poll-interval", rebuild.poll_ms, "With --wait: milliseconds between looks (default 200)")
      ->check(positive_whole_number());
  b->callback([&] { action = [&] { return run_rebuild(rebuild, io); }; });

  CheckCommand check;
  auto* ck = add("check", "Have the runner of a projection compare its read model with a replay; exit 4 when they differ",
                 check.db);
  ck->add_option("name", check.name, "The projection's name")->required();
  ck->add_option("--read-model", check.read_model, kReadModelHelp);
  ck->add_flag("--last", check.last, "Print the last recorded report; request no check");
  ck->add_flag("--json", check.json, "The report as one JSON object");
  ck->add_option("--timeout", check.timeout_seconds, "Give up after this many seconds")
      ->check(non_negative_seconds());
  ck->add_option("--poll-interval", check.poll_ms, "Milliseconds between looks (default 200)")
      ->check(positive_whole_number());
  ck->callback([&] { action = [&] { return run_check(check, io); }; });

  ServeCommand serve;
  auto* sv = add("serve", "Serve a read-only web page on the store (docs/tools.md)", serve.db);
  sv->add_option("--read-model", serve.read_model, kReadModelHelp);
  sv->add_option("--bind", serve.bind, "Address to listen on (default 127.0.0.1; others need --token)");
  sv->add_option("--port", serve.port, "TCP port (default 8080; 0: any free port)")->check(CLI::Range(0, 65535));
  sv->add_option("--token", serve.token, "Require this bearer token on every request")
      ->envname("ANNALS_SERVE_TOKEN");
  sv->callback([&] { action = [&] { return run_serve(serve, io); }; });

  std::string command_word;
  std::vector<std::string> args = db_after_command(argc, argv, command_word);
  if (!command_word.empty()) {
    const auto subs = app.get_subcommands({});
    if (std::none_of(subs.begin(), subs.end(),
                     [&](const CLI::App* sub) { return sub->get_name() == command_word; })) {
      std::string known;
      for (const CLI::App* sub : subs) known += (known.empty() ? "" : ", ") + sub->get_name();
      io.err << "annals: unknown command '" << printable_message(command_word)
             << "' (commands: " << known << ")\nRun annals --help for more information.\n";
      return kExitUsage;
    }
  }
  std::vector<const char*> parsed;
  for (const auto& a : args) parsed.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(parsed.size()), parsed.data());
  } catch (const CLI::CallForHelp& h) {
    return app.exit(h, io.out, io.err);
  } catch (const CLI::CallForAllHelp& h) {
    return app.exit(h, io.out, io.err);
  } catch (const CLI::CallForVersion& v) {
    return app.exit(v, io.out, io.err);
  } catch (const CLI::ParseError& err) {
    app.exit(err, io.err, io.err);
    return kExitUsage;
  }

  const std::string command = app.get_subcommands().empty() ? std::string()
                                                            : app.get_subcommands().front()->get_name();
  try {
    return action ? action() : kExitUsage;
  } catch (const ToolError& err) {
    return report(io, command, err.what(), err.code());
  } catch (const IntegrityError& err) {
    return report(io, command, err.what(), kExitIntegrity);
  } catch (const std::exception& err) {
    return report(io, command, err.what(), kExitFailure);
  } catch (...) {
    return report(io, command, "unknown error", kExitFailure);
  }
}

int run(const std::vector<std::string>& args, Io& io) {
  std::vector<const char*> argv;
  argv.push_back("annals");
  for (const auto& a : args) argv.push_back(a.c_str());
  return run(static_cast<int>(argv.size()), argv.data(), io);
}

}  // namespace annals::tool
