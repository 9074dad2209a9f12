// A store author's use of the installed conformance kit: one line runs the
// whole EventStore contract against a store (here the in-memory one).

#include <annals/store/in_memory_event_store.hpp>
#include <annals/testing/store_conformance.hpp>

#include <memory>

struct InMemoryFactory {
  std::unique_ptr<annals::EventStore> make(std::shared_ptr<const annals::Clock> clock) {
    return std::make_unique<annals::InMemoryEventStore>(std::move(clock));
  }
};

ANNALS_STORE_CONFORMANCE(ConsumerInMemory, ::InMemoryFactory);
