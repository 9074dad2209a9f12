#pragma once
/// Everything Annals offers, in one include:
///
///   #include <annals/annals.hpp>
///
/// Each module's headers can still be included one by one (annals/core/...,
/// annals/store/..., annals/aggregates/..., annals/projections/...) to keep
/// compile times down. The conformance kit (annals/testing/) is not included:
/// it needs GoogleTest. The test UmbrellaHeaderIncludesEveryPublicHeader keeps
/// this list complete.

#include "annals/core/clock.hpp"
#include "annals/core/codec.hpp"
#include "annals/core/error.hpp"
#include "annals/core/event.hpp"
#include "annals/core/event_fields.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/event_id.hpp"
#include "annals/core/expected_version.hpp"
#include "annals/core/metrics.hpp"
#include "annals/core/personal_data.hpp"
#include "annals/core/registration.hpp"
#include "annals/core/stream_id.hpp"
#include "annals/core/thread_annotations.hpp"
#include "annals/core/upcaster.hpp"

#include "annals/store/commit_watcher.hpp"
#include "annals/store/cursor.hpp"
#include "annals/store/event_export.hpp"
#include "annals/store/event_store.hpp"
#include "annals/store/in_memory_event_store.hpp"
#include "annals/store/seal.hpp"
#include "annals/store/snapshot_store.hpp"
#include "annals/store/sql_transaction.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "annals/store/sqlite_key_store.hpp"
#include "annals/store/sqlite_scrub.hpp"

#include "annals/aggregates/aggregate.hpp"
#include "annals/aggregates/checked_read.hpp"
#include "annals/aggregates/errors.hpp"
#include "annals/aggregates/repository.hpp"
#include "annals/aggregates/scenario.hpp"

#include "annals/projections/consumer_group.hpp"
#include "annals/projections/dispatcher.hpp"
#include "annals/projections/executor.hpp"
#include "annals/projections/inline_projection.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_check.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/projection_status.hpp"
#include "annals/projections/read_model.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/projections/check_request.hpp"
#include "annals/version.hpp"
