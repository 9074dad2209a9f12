// The installed store conformance kit against PostgresEventStore on a
// throwaway PostgreSQL cluster (postgres_server.hpp), started once for the
// whole program; once with prepared statements (the default), once without.

#include "annals/testing/store_conformance.hpp"

#include "postgres/postgres_server.hpp"

namespace {
[[maybe_unused]] ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new annals::testing::PostgresEnvironment);
}

ANNALS_STORE_CONFORMANCE(PostgresStore, ::annals::testing::PostgresStoreFactory);
ANNALS_STORE_CONFORMANCE(PostgresStoreUnprepared,
                         ::annals::testing::UnpreparedPostgresStoreFactory);
