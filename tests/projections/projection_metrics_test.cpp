// What a ProjectionRunner hands its projection and reports about it: the
// command's correlation and causation ids reach apply(), and with a metrics
// registry the runner reports its lag behind the store's head.

#include <gtest/gtest.h>

#include "annals/core/metrics.hpp"
#include "annals/projections/projection_runner.hpp"
#include "projection_fixtures.hpp"

namespace annals {
namespace {

using namespace testing;

EventData with_metadata(std::string metadata) {
  EventData e = event("bank.Deposited");
  e.metadata = std::move(metadata);
  return e;
}

TEST(ProjectionHandlers, ApplyReadsTheCorrelationAndCausationIdsOfTheCommand) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  store.append("account-1", ExpectedVersion::any(),
               {with_metadata(R"({"correlation_id":"transfer-7","causation_id":"cmd-3","actor":"ada"})"),
                with_metadata(R"({"actor":"ada"})")});
  SqliteReadModel model(dir / "views.db");
  Projection p;
  p.name = "audit";
  p.setup = [](SqlTransaction& tx) {
    tx.exec("CREATE TABLE IF NOT EXISTS audit (position INTEGER PRIMARY KEY, correlation TEXT, causation TEXT)");
  };
  p.apply = [](SqlTransaction& tx, const RecordedEvent& e) {
    tx.exec("INSERT INTO audit VALUES (?1, ?2, ?3)", {e.position, e.correlation_id(), e.causation_id()});
  };
  ProjectionRunner runner(store, model, p);
  EXPECT_EQ(runner.catch_up(), 2);
  EXPECT_EQ(model.query_int("SELECT count(*) FROM audit WHERE position = 1 AND correlation = 'transfer-7' "
                            "AND causation = 'cmd-3'"),
            1);
  EXPECT_EQ(model.query_int("SELECT count(*) FROM audit WHERE position = 2 AND correlation = '' "
                            "AND causation = ''"),
            1);
}

TEST(ProjectionMetrics, ARunnerWithMetricsReportsItsLagBehindTheHeadItLastRead) {
  TempDir dir;
  SqliteEventStore store(dir / "store.db", fast_store());
  fill(store, 30, 10, 3);
  SqliteReadModel model(dir / "views.db");
  ProjectionRunnerOptions options;
  options.batch_size = 10;
  options.metrics = std::make_shared<MetricsRegistry>();
  const MetricLabels ledger{{"projection", "ledger"}};
  Gauge& lag = options.metrics->gauge("annals_projection_lag_events", "", ledger);
  // A projection that records the lag the runner reports while it applies.
  std::vector<double> seen;
  Projection p = ledger_projection();
  const auto apply = p.apply;
  p.apply = [&](SqlTransaction& tx, const RecordedEvent& e) {
    if (e.position % 10 == 1) seen.push_back(lag.value());
    apply(tx, e);
  };
  ProjectionRunner runner(store, model, p, options);
  EXPECT_EQ(runner.catch_up(), 30);
  // Batches of 10 out of 30: 30 behind before the first, 20 and 10 after.
  EXPECT_EQ(seen, (std::vector<double>{30, 20, 10}));
  EXPECT_EQ(lag.value(), 0.0);
  store.append("s-9", ExpectedVersion::any(), events(5));
  EXPECT_EQ(runner.catch_up(), 35);
  EXPECT_EQ(lag.value(), 0.0);
  EXPECT_NE(options.metrics->prometheus_text().find("annals_projection_lag_events{projection=\"ledger\"} 0\n"),
            std::string::npos);
}

}  // namespace
}  // namespace annals
