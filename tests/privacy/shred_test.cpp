// Personal data: fields encrypted per data subject, key stores, forget()
// (annals/core/personal_data.hpp, annals/store/sqlite_key_store.hpp).

#include <sys/stat.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "annals/aggregates/repository.hpp"
#include "annals/core/personal_data.hpp"
#include "annals/projections/projection_runner.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/event_export.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "annals/store/sqlite_key_store.hpp"
#include "annals/store/sqlite_scrub.hpp"
#include "store/store_fixtures.hpp"

namespace shred {

// A distinctive name: any copy of it in a file is a leak.
const std::string kName = "Zelda Quixotic-Vanderberg";

struct Registered {
  static constexpr std::string_view type_name = "shred.Registered";
  static constexpr int schema_version = 1;
  static constexpr std::array<std::string_view, 2> personal_fields{"name", "birth_year"};
  std::string name;
  int birth_year = 0;
  std::string city;  // not personal: stays in clear
};
ANNALS_EVENT_FIELDS(Registered, name, birth_year, city)

struct Renamed {
  static constexpr std::string_view type_name = "shred.Renamed";
  static constexpr int schema_version = 2;  // version 1 was "shred.NameChanged"
  static constexpr std::array<std::string_view, 1> personal_fields{"name"};
  std::string name;
};
ANNALS_EVENT_FIELDS(Renamed, name)

struct Visited {
  static constexpr std::string_view type_name = "shred.Visited";
  static constexpr int schema_version = 1;
  int count = 0;
};
ANNALS_EVENT_FIELDS(Visited, count)

// Names its own subject: the customer, not the stream it is appended to.
struct OrderPlaced {
  static constexpr std::string_view type_name = "shred.OrderPlaced";
  static constexpr int schema_version = 1;
  static constexpr std::array<std::string_view, 1> personal_fields{"address"};
  std::string customer;
  std::string address;
  std::string data_subject() const { return "customer-" + customer; }
};
ANNALS_EVENT_FIELDS(OrderPlaced, customer, address)

using PersonEvent = std::variant<Registered, Renamed, Visited>;

class Person : public annals::Aggregate<Person, PersonEvent> {
 public:
  static constexpr std::string_view category = "person";
  using Aggregate::Aggregate;
  void registered(std::string name, int year) { raise(Registered{std::move(name), year, "Oslo"}); }
  void visit() { raise(Visited{visits_ + 1}); }
  void apply(const Registered& e) {
    name_ = e.name;
    year_ = e.birth_year;
    city_ = e.city;
  }
  void apply(const Renamed& e) { name_ = e.name; }
  void apply(const Visited& e) { visits_ = e.count; }
  std::string name_;
  int year_ = 0;
  std::string city_;
  int visits_ = 0;
};

}  // namespace shred

namespace annals::testing {
namespace {

using shred::kName;
using shred::PersonEvent;
using shred::Registered;

RecordedEvent recorded(const EventData& data, std::string stream = "person-1") {
  RecordedEvent r;
  r.stream_id = std::move(stream);
  r.version = 1;
  r.position = 1;
  r.event_id = data.event_id;
  r.type = data.type;
  r.schema_version = data.schema_version;
  r.payload = data.payload;
  r.metadata = data.metadata;
  return r;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A store file with its key store beside it, a repository of people and a
// projection that copies names into a read model in the store's own file.
class Shred : public ::testing::Test {
 protected:
  Projection names_projection() {
    return Projection{
        .name = "names",
        .filter = EventFilter::for_category("person"),
        .setup =
            [](SqlTransaction& tx) {
              tx.exec_script(
                  "CREATE TABLE IF NOT EXISTS names (stream TEXT PRIMARY KEY, name TEXT,"
                  " visits INTEGER)");
            },
        .apply =
            [this](SqlTransaction& tx, const RecordedEvent& e) {
              const auto event = decode<PersonEvent>(e, keys_);
              if (const auto* r = std::get_if<Registered>(&event)) {
                tx.exec("INSERT INTO names VALUES (?1, ?2, 0)", {e.stream_id, r->name});
              } else if (const auto* v = std::get_if<shred::Visited>(&event)) {
                tx.exec("UPDATE names SET visits = ?2 WHERE stream = ?1", {e.stream_id, v->count});
              }
            },
        .reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM names"); },
    };
  }

  std::string export_text() {
    std::ostringstream out;
    export_events(store_, out);
    return out.str();
  }

  std::string name_in_read_model(SqliteReadModel& views) {
    return views.query("SELECT name FROM names WHERE stream = 'person-1'").at(0).at(0).as_text();
  }

  TempDir dir_;
  std::filesystem::path file_ = dir_ / "s.db";
  SqliteEventStore store_{file_, fast()};
  SqliteKeyStore keys_{SqliteKeyStore::default_path(file_), {.create_if_missing = true}};
  Repository<shred::Person> people_{store_, RepositoryOptions{.keys = &keys_}};
};

TEST_F(Shred, PersonalFieldsAreStoredEncryptedAndDecodeWithTheirKey) {
  InMemoryKeyStore keys;
  const EventData data = encode(Registered{kName, 1987, "Oslo"}, keys, "person-1");
  EXPECT_FALSE(contains(data.payload, kName));
  EXPECT_FALSE(contains(data.payload, "1987"));
  EXPECT_TRUE(contains(data.payload, "\"city\":\"Oslo\""));
  const Json payload = Json::parse(data.payload);
  const Json& envelope = payload.at("name");
  EXPECT_EQ(envelope.at("annals_personal"), 1);
  EXPECT_EQ(envelope.at("key_id"), keys.key_for("person-1").key_id());
  for (const char* member : {"nonce", "ciphertext", "tag"}) {
    EXPECT_TRUE(envelope.at(member).is_string()) << member;
  }

  const auto event = std::get<Registered>(decode<PersonEvent>(recorded(data), keys));
  EXPECT_EQ(event.name, kName);
  EXPECT_EQ(event.birth_year, 1987);
  EXPECT_EQ(event.city, "Oslo");
}

TEST_F(Shred, EachFieldIsEncryptedWithAFreshNonce) {
  InMemoryKeyStore keys;
  const Json a = Json::parse(encode(Registered{kName, 1, ""}, keys, "person-1").payload);
  const Json b = Json::parse(encode(Registered{kName, 1, ""}, keys, "person-1").payload);
  EXPECT_NE(a.at("name").at("nonce"), b.at("name").at("nonce"));
  EXPECT_NE(a.at("name").at("ciphertext"), b.at("name").at("ciphertext"));
  EXPECT_NE(a.at("name").at("nonce"), a.at("birth_year").at("nonce"));
}

TEST_F(Shred, ForgottenFieldsDecodeAsDocumentedPlaceholdersAndTheRestIsUnchanged) {
  InMemoryKeyStore keys;
  const RecordedEvent stored = recorded(encode(Registered{kName, 1987, "Oslo"}, keys, "person-1"));
  const RecordedEvent other = recorded(encode(Registered{"Other", 1990, "Rome"}, keys, "person-2"));
  EXPECT_TRUE(keys.forget("person-1"));
  EXPECT_FALSE(keys.forget("person-1"));  // idempotent

  const auto event = std::get<Registered>(decode<PersonEvent>(stored, keys));
  EXPECT_EQ(event.name, kErasedText);
  EXPECT_EQ(event.birth_year, 0);  // the field's value in a default-constructed event
  EXPECT_EQ(event.city, "Oslo");
  EXPECT_EQ(std::get<Registered>(decode<PersonEvent>(other, keys)).name, "Other");
}

TEST_F(Shred, AnEventThatNamesItsSubjectIsEncryptedUnderThatSubjectsKey) {
  using Orders = std::variant<shred::OrderPlaced>;
  InMemoryKeyStore keys;
  const RecordedEvent stored =
      recorded(encode(shred::OrderPlaced{"c7", "1 Long Road"}, keys, "order-1"), "order-1");
  EXPECT_FALSE(keys.forget("order-1"));  // the stream is not the subject
  EXPECT_EQ(std::get<0>(decode<Orders>(stored, keys)).address, "1 Long Road");
  EXPECT_TRUE(keys.forget("customer-c7"));
  const auto erased = std::get<0>(decode<Orders>(stored, keys));
  EXPECT_EQ(erased.address, kErasedText);
  EXPECT_EQ(erased.customer, "c7");
}

TEST_F(Shred, EncodingWithoutASubjectIsRefused) {
  InMemoryKeyStore keys;
  EXPECT_THROW(encode(Registered{kName, 1, ""}, keys, ""), InvalidArgument);
  EXPECT_THROW(encode(Registered{kName, 1, ""}, keys, std::string("a\nb")), InvalidArgument);
}

TEST_F(Shred, TamperedCiphertextIsAnIntegrityErrorNamingTheField) {
  InMemoryKeyStore keys;
  RecordedEvent stored = recorded(encode(Registered{kName, 1987, ""}, keys, "person-1"));
  Json payload = Json::parse(stored.payload);
  std::string cipher = payload["name"]["ciphertext"];
  cipher[0] = cipher[0] == 'A' ? 'B' : 'A';
  payload["name"]["ciphertext"] = cipher;
  stored.payload = payload.dump();
  try {
    decode<PersonEvent>(stored, keys);
    FAIL() << "an altered ciphertext decoded";
  } catch (const IntegrityError& e) {
    EXPECT_TRUE(contains(e.what(), "personal field 'name'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "authentication tag")) << e.what();
    EXPECT_TRUE(contains(e.what(), "person-1")) << e.what();
  }
}

TEST_F(Shred, AMalformedEnvelopeIsASerializationErrorNamingTheField) {
  InMemoryKeyStore keys;
  RecordedEvent stored = recorded(encode(Registered{kName, 1987, ""}, keys, "person-1"));
  Json payload = Json::parse(stored.payload);
  payload["name"]["nonce"] = "not base64!";
  stored.payload = payload.dump();
  try {
    decode<PersonEvent>(stored, keys);
    FAIL() << "a malformed envelope decoded";
  } catch (const SerializationError& e) {
    EXPECT_TRUE(contains(e.what(), "personal field 'name'")) << e.what();
  }
}

TEST_F(Shred, AnotherKeyStoreIsAKeyStoreErrorNotGarbage) {
  InMemoryKeyStore keys;
  InMemoryKeyStore other;
  other.key_for("person-1");
  const RecordedEvent stored = recorded(encode(Registered{kName, 1, ""}, keys, "person-1"));
  try {
    decode<PersonEvent>(stored, other);
    FAIL() << "decoded with the wrong key store";
  } catch (const KeyStoreError& e) {
    EXPECT_TRUE(contains(e.what(), "in-memory key store has no key")) << e.what();
    EXPECT_TRUE(contains(e.what(), "no record of forgetting it")) << e.what();
  }
}

TEST_F(Shred, APayloadWithoutEnvelopesDecodesAsBefore) {
  InMemoryKeyStore keys;
  RecordedEvent old = recorded(
      EventData::from_json("shred.Registered", Json{{"name", "Old"}, {"birth_year", 1}, {"city", ""}}));
  EXPECT_EQ(std::get<Registered>(decode<PersonEvent>(old, keys)).name, "Old");
}

TEST_F(Shred, UpcastersSeeTheDecryptedValue) {
  InMemoryKeyStore keys;
  RecordedEvent stored = recorded(encode(shred::Renamed{kName}, keys, "person-1"));
  stored.type = "shred.NameChanged";  // an older name of the event, renamed by an upcaster
  UpcasterChain chain;
  chain.add("shred.NameChanged", 1, "shred.Renamed", [](Json p) {
    p["name"] = p["name"].get<std::string>() + "!";
    return p;
  });
  stored.schema_version = 1;
  EXPECT_EQ(std::get<shred::Renamed>(decode<PersonEvent>(stored, keys, &chain)).name, kName + "!");
}

TEST_F(Shred, ARepositoryWithoutAKeyStoreRefusesToSavePersonalFields) {
  TempDir dir;
  SqliteEventStore store(dir / "s.db", fast());
  Repository<shred::Person> people(store);
  shred::Person p("1");
  p.registered(kName, 1987);
  EXPECT_THROW(people.save(p), InvalidArgument);
  EXPECT_EQ(store.head_position(), 0);
}

TEST_F(Shred, SqliteKeyStoreFileIsCreatedPrivateOnFirstKey) {
  TempDir dir;
  const auto path = dir / "s.db.keys";
  SqliteKeyStore keys(path, {.create_if_missing = true});
  EXPECT_FALSE(std::filesystem::exists(path));  // nothing until a key is needed
  keys.key_for("person-1");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(Shred, ForgottenAndUnknownKeysAreToldApart) {
  TempDir dir;
  SqliteKeyStore keys(dir / "k", {.create_if_missing = true});
  const DataKey key = keys.key_for("person-1");
  EXPECT_EQ(keys.key_for("person-1").bytes(), key.bytes());
  EXPECT_EQ(keys.find(key.key_id()).state, KeyState::present);
  EXPECT_EQ(keys.find(key.key_id()).key->bytes(), key.bytes());
  EXPECT_TRUE(keys.forget("person-1"));
  EXPECT_EQ(keys.find(key.key_id()).state, KeyState::forgotten);
  EXPECT_EQ(keys.find("0123").state, KeyState::unknown);
  EXPECT_FALSE(keys.forget("person-1"));
  // A forgotten subject gets a new key for what it writes from now on.
  EXPECT_NE(keys.key_for("person-1").key_id(), key.key_id());
  // Another object on the same file (another process) sees the same.
  SqliteKeyStore again(dir / "k", {.read_only = true});
  EXPECT_EQ(again.find(key.key_id()).state, KeyState::forgotten);
}

TEST_F(Shred, KeyStoresOnOneFileAgreeOnOneKeyPerSubjectUnderConcurrency) {
  TempDir dir;
  constexpr int kThreads = 8;
  std::vector<std::string> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // One object (one connection) per thread, as separate processes would have.
      SqliteKeyStore keys(dir / "k", {.create_if_missing = true});
      ids[static_cast<std::size_t>(t)] = keys.key_for("person-1").key_id();
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids.front());
}

TEST_F(Shred, AForgottenKeyLeavesNoTraceOfItsBytesInTheKeyStoreFile) {
  TempDir dir;
  const auto path = dir / "k";
  SqliteKeyStore keys(path, {.create_if_missing = true});
  const DataKey key = keys.key_for("person-1");
  keys.key_for("person-2");
  const std::string bytes(key.bytes().begin(), key.bytes().end());
  ASSERT_TRUE(contains(file_bytes(path), bytes));  // the search can find it
  keys.forget("person-1");
  EXPECT_FALSE(contains(file_bytes(path), bytes));
  EXPECT_FALSE(contains(file_bytes(path), "person-1"));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_FALSE(contains(file_bytes(entry.path()), bytes)) << entry.path();
  }
}

TEST_F(Shred, ALostKeyStoreIsAClearErrorNamingItsPath) {
  TempDir dir;
  const auto path = dir / "s.db.keys";
  RecordedEvent stored;
  {
    SqliteKeyStore keys(path, {.create_if_missing = true});
    stored = recorded(encode(Registered{kName, 1, ""}, keys, "person-1"));
  }
  std::filesystem::remove(path);
  SqliteKeyStore keys(path);
  try {
    decode<PersonEvent>(stored, keys);
    FAIL() << "decoded without its key store";
  } catch (const KeyStoreError& e) {
    EXPECT_TRUE(contains(e.what(), path.string())) << e.what();
    EXPECT_TRUE(contains(e.what(), "does not exist")) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // a read never creates it
  // Writing needs the file too, unless creating is allowed.
  EXPECT_THROW(keys.key_for("person-1"), KeyStoreError);
  EXPECT_THROW(keys.forget("person-1"), KeyStoreError);
}

TEST_F(Shred, AnUnreadableOrForeignKeyStoreIsAClearErrorNamingItsPath) {
  TempDir dir;
  RecordedEvent stored;
  {
    SqliteKeyStore keys(dir / "k", {.create_if_missing = true});
    stored = recorded(encode(Registered{kName, 1, ""}, keys, "person-1"));
  }
  // Garbage in place of the file.
  std::ofstream(dir / "garbage", std::ios::binary) << std::string(4096, 'x');
  // An SQLite file that is not a key store (the event store, say).
  { SqliteEventStore store(dir / "s.db", fast()); }
  // A key store the process may not read (root reads anything: skip then).
  std::filesystem::copy_file(dir / "k", dir / "locked");
  std::filesystem::permissions(dir / "locked", std::filesystem::perms::none);
  const bool can_lock = ::geteuid() != 0;
  for (const char* name : {"garbage", "s.db", "locked"}) {
    if (std::string(name) == "locked" && !can_lock) continue;
    SqliteKeyStore keys(dir / name);
    try {
      decode<PersonEvent>(stored, keys);
      FAIL() << "decoded with key store " << name;
    } catch (const KeyStoreError& e) {
      EXPECT_TRUE(contains(e.what(), (dir / name).string())) << e.what();
    }
  }
}

TEST_F(Shred, ATamperedKeyStoreIsAnIntegrityErrorNotGarbage) {
  TempDir dir;
  RecordedEvent stored;
  {
    SqliteKeyStore keys(dir / "k", {.create_if_missing = true});
    stored = recorded(encode(Registered{kName, 1, ""}, keys, "person-1"));
  }
  const auto [code, out] =
      sqlite3_shell(dir / "k", "UPDATE subject_keys SET key = zeroblob(32);");
  ASSERT_EQ(code, 0) << out;
  SqliteKeyStore keys(dir / "k");
  EXPECT_THROW(decode<PersonEvent>(stored, keys), IntegrityError);
}

TEST_F(Shred, AfterForgetThePlaintextIsNowhereInTheDatabaseWalKeyStoreOrExport) {
  shred::Person p("1");
  p.registered(kName, 1987);
  people_.save(p);
  for (int i = 0; i < 20; ++i) people_.update("1", [](shred::Person& a) { a.visit(); });
  SqliteReadModel views(file_);
  ProjectionRunner runner(store_, views, names_projection());
  runner.catch_up();
  ASSERT_EQ(name_in_read_model(views), kName);
  // The search finds the name while it is there (in the file or its WAL).
  ASSERT_TRUE(contains(file_bytes(file_) + file_bytes(dir_ / "s.db-wal"), kName));
  EXPECT_FALSE(contains(export_text(), kName));  // the events only ever held ciphertext

  ASSERT_TRUE(keys_.forget("person-1"));
  runner.rebuild();
  EXPECT_EQ(name_in_read_model(views), kErasedText);
  scrub_sqlite_file(file_);

  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_FALSE(contains(file_bytes(entry.path()), kName)) << entry.path();
  }
  EXPECT_FALSE(contains(export_text(), kName));
  EXPECT_TRUE(store_.verify().ok);
  const shred::Person replayed = people_.load("1");
  EXPECT_EQ(replayed.name_, kErasedText);
  EXPECT_EQ(replayed.year_, 0);
  EXPECT_EQ(replayed.city_, "Oslo");
  EXPECT_EQ(replayed.visits_, 20);
  EXPECT_EQ(replayed.version_loaded(), 21);
}

TEST_F(Shred, ForgetChangesNoStoredByteAndVerifyStillPasses) {
  shred::Person p("1");
  p.registered(kName, 1987);
  people_.save(p);
  const std::string before = export_text();
  ASSERT_TRUE(store_.verify().ok);
  keys_.forget("person-1");
  EXPECT_EQ(export_text(), before);
  const VerifyResult v = store_.verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.events_checked, 1);
}

TEST_F(Shred, ExportAndImportCarryTheCiphertextUnchanged) {
  shred::Person p("1");
  p.registered(kName, 1987);
  people_.save(p);
  people_.update("1", [](shred::Person& a) { a.visit(); });
  const std::string exported = export_text();
  std::istringstream in(exported);
  const auto copy_file = dir_ / "copy.db";
  import_events(copy_file, in);
  SqliteEventStore copy(copy_file, fast());
  std::ostringstream again;
  export_events(copy, again);
  EXPECT_EQ(again.str(), exported);
  EXPECT_TRUE(copy.verify().ok);

  // The copy decodes with the original's key store, and a forget reaches it.
  Repository<shred::Person> copied(copy, RepositoryOptions{.keys = &keys_});
  EXPECT_EQ(copied.load("1").name_, kName);
  keys_.forget("person-1");
  EXPECT_EQ(copied.load("1").name_, kErasedText);
  EXPECT_TRUE(copy.verify().ok);
}

TEST_F(Shred, ForgettingOneSubjectLeavesOthersReadable) {
  shred::Person a("1");
  a.registered(kName, 1987);
  shred::Person b("2");
  b.registered("Other Person", 1990);
  people_.save(a);
  people_.save(b);
  keys_.forget("person-1");
  EXPECT_EQ(people_.load("1").name_, kErasedText);
  EXPECT_EQ(people_.load("2").name_, "Other Person");
}

}  // namespace
}  // namespace annals::testing
