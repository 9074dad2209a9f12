// RecordedEvent::correlation_id() and causation_id(): what a handler reads of
// the command metadata an event carries.

#include <gtest/gtest.h>

#include "annals/core/error.hpp"
#include "annals/core/event.hpp"

namespace annals {
namespace {

RecordedEvent with_metadata(std::string metadata) {
  RecordedEvent e;
  e.stream_id = "account-1";
  e.version = 1;
  e.position = 4;
  e.type = "bank.Deposited";
  e.payload = "{}";
  e.metadata = std::move(metadata);
  return e;
}

TEST(EventMetadata, CorrelationAndCausationIdsAreReadFromTheMetadata) {
  const auto e = with_metadata(R"({"actor":"ada","correlation_id":"c-1","causation_id":"cmd-9"})");
  EXPECT_EQ(e.correlation_id(), "c-1");
  EXPECT_EQ(e.causation_id(), "cmd-9");
}

TEST(EventMetadata, AMissingOrNonStringIdIsEmpty) {
  EXPECT_EQ(with_metadata("{}").correlation_id(), "");
  EXPECT_EQ(with_metadata("{}").causation_id(), "");
  EXPECT_EQ(with_metadata(R"({"correlation_id":17,"causation_id":null})").correlation_id(), "");
  EXPECT_EQ(with_metadata(R"({"correlation_id":17,"causation_id":null})").causation_id(), "");
  EXPECT_EQ(with_metadata(R"({"nested":{"correlation_id":"c-1"}})").correlation_id(), "");
}

TEST(EventMetadata, MetadataThatIsNotJsonThrowsSerializationErrorNamingTheEvent) {
  const auto e = with_metadata("{not json");
  try {
    (void)e.correlation_id();
    FAIL() << "no exception";
  } catch (const SerializationError& err) {
    EXPECT_NE(std::string(err.what()).find("position 4"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace annals
