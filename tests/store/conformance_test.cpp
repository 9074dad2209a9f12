// The EventStore contract, written once in the installed conformance kit
// (annals/testing/store_conformance.hpp) and run here against both built-in
// stores, exactly as a third-party store runs it.

#include "annals/testing/store_conformance.hpp"

#include "store_fixtures.hpp"

ANNALS_STORE_CONFORMANCE(InMemoryStore, ::annals::testing::InMemoryStoreFactory);
ANNALS_STORE_CONFORMANCE(SqliteStore, ::annals::testing::SqliteStoreFactory);
