#include "cli.hpp"

#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>

#include "annals/core/error.hpp"
#include "annals/version.hpp"
#include "serve.hpp"

namespace annals::tool {

namespace {

// Reports `message` as "annals <command>: <message>" on stderr.
int report(Io& io, const std::string& command, const std::string& message, int code) {
  io.err << "annals" << (command.empty() ? "" : " " + command) << ": " << message << '\n';
  io.err.flush();
  return code;
}

}  // namespace

int run(int argc, const char* const* argv, Io& io) {
  CLI::App app{"Inspect, verify, export and import Annals SQLite event stores.", "annals"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "annals " + std::string(kVersion), "Print the version and exit");
  app.footer("Exit codes: 0 ok, 1 failure, 2 usage, 3 unusable file, 4 integrity or seal mismatch.");

  std::function<int()> action;
  const auto add = [&](const std::string& name, const std::string& what,
                       std::filesystem::path& db) {
    CLI::App* sub = app.add_subcommand(name, what);
    sub->add_option("--db", db, "The store file (SQLite)")->required();
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
  r->add_option("--limit", read.limit, "At most this many events")->check(CLI::PositiveNumber);
  r->add_flag("--json", read.json, "Export lines (JSON Lines)");
  r->callback([&] {
    if (from_opt->count() > 0) read.from = read_from;
    action = [&] { return run_read(read, io); };
  });

  TailCommand tail;
  std::int64_t tail_from = 0, tail_max = 0;
  auto* t = add("tail", "Print the newest events; --follow waits for more", tail.db);
  auto* tail_from_opt = t->add_option("--from", tail_from, "First position (default: the last 10 events)");
  t->add_flag("--follow,-f", tail.follow, "Keep printing events as they are appended, by any process");
  t->add_flag("--json", tail.json, "Export lines (JSON Lines)");
  auto* max_opt = t->add_option("--max-events", tail_max, "Stop after printing this many events")
                      ->check(CLI::PositiveNumber);
  t->add_option("--timeout", tail.timeout_seconds, "With --follow: stop after this many seconds")
      ->check(CLI::NonNegativeNumber);
  t->add_option("--poll-interval", tail.poll_ms, "With --follow: milliseconds between looks (default 200)")
      ->check(CLI::PositiveNumber);
  t->callback([&] {
    if (tail_from_opt->count() > 0) tail.from = tail_from;
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

  ProjectionsCommand projections;
  auto* p = add("projections", "Each durable projection's checkpoint, lag and state", projections.db);
  p->add_option("--read-model", projections.read_model, "The read model file (default: the store file)");
  p->add_flag("--json", projections.json, "One JSON object per line");
  p->callback([&] { action = [&] { return run_projections(projections, io); }; });

  RebuildCommand rebuild;
  auto* b = add("rebuild", "Ask the runner of a projection to rebuild it", rebuild.db);
  b->add_option("name", rebuild.name, "The projection's name")->required();
  b->add_option("--read-model", rebuild.read_model, "The read model file (default: the store file)");
  b->add_flag("--wait", rebuild.wait, "Wait until the rebuild reached the head");
  b->add_option("--timeout", rebuild.timeout_seconds, "With --wait: give up after this many seconds")
      ->check(CLI::NonNegativeNumber);
  b->add_option("--poll-interval", rebuild.poll_ms, "With --wait: milliseconds between looks (default 200)")
      ->check(CLI::PositiveNumber);
  b->callback([&] { action = [&] { return run_rebuild(rebuild, io); }; });

  ServeCommand serve;
  auto* sv = add("serve", "Serve a read-only web page on the store (docs/tools.md)", serve.db);
  sv->add_option("--read-model", serve.read_model, "The read model file (default: the store file)");
  sv->add_option("--bind", serve.bind, "Address to listen on (default 127.0.0.1; others need --token)");
  sv->add_option("--port", serve.port, "TCP port (default 8080; 0: any free port)")->check(CLI::Range(0, 65535));
  sv->add_option("--token", serve.token, "Require this bearer token on every request")
      ->envname("ANNALS_SERVE_TOKEN");
  sv->callback([&] { action = [&] { return run_serve(serve, io); }; });

  try {
    app.parse(argc, argv);
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
