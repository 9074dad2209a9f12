// Sealed heads (annals/store/seal.hpp): the store's identity, seals recorded
// in the store, and verify_seal() against the tampering a plain chain check
// cannot see — a cut tail, a history rewritten and re-hashed, a seal of
// another store, a forged seal — plus malformed seal files and the migration
// of a store of schema version 2.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/event_id.hpp"
#include "annals/store/event_export.hpp"
#include "annals/store/seal.hpp"
#include "store_fixtures.hpp"

namespace annals::seal_test {

using SealData = ::annals::Seal;
using testing::fast;
using testing::sqlite3_shell;
using testing::TempDir;

EventData event(int i) {
  EventData e;
  e.type = "test.Happened";
  e.payload = R"({"i":)" + std::to_string(i) + "}";
  return e;
}

void append_events(SqliteEventStore& store, int from, int to) {
  for (int i = from; i < to; ++i) {
    store.append("s-" + std::to_string(i % 3), ExpectedVersion::any(), {event(i)});
  }
}

// Drops the append-only triggers with the sqlite3 API, as an attacker with
// write access to the file would, then runs `sql`.
// Tampers as an attacker who knows the schema: drops the append-only guards,
// runs `sql`, lowers the high-water mark of positions to the new head, and has
// a writable open put the guards back. Afterwards every check the store makes
// on its own (chain, guards, mark) passes on a new open: only a seal, kept
// outside the store, can tell.
void tamper(const std::filesystem::path& db, const std::string& sql) {
  {
    SQLite::Database raw(db.string(), SQLite::OPEN_READWRITE);
    raw.exec("DROP TRIGGER IF EXISTS events_append_only_update;"
             "DROP TRIGGER IF EXISTS events_append_only_delete;"
             "DROP TRIGGER IF EXISTS events_high_water_update");
    raw.exec(sql);
    raw.exec("UPDATE events_high_water SET position = (SELECT coalesce(max(position), 0) FROM events)");
  }
  SqliteEventStore restore(db, fast());
}

void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
}

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(no InvalidArgument)";
}

class Seal : public ::testing::Test {
 protected:
  std::filesystem::path db() const { return dir_ / "store.db"; }

  // A store of 10 events, sealed with key_.
  SealData sealed_store_of_ten() {
    SqliteEventStore store(db(), fast());
    append_events(store, 0, 10);
    return seal(store, &key_);
  }

  void expect_truncation_detected(int cut);

  SealVerifyResult check(const SealData& s, const SealKey* trusted) {
    SqliteEventStore store(db(), fast());
    return verify_seal(store, s, trusted);
  }

  TempDir dir_;
  SealKey key_ = SealKey::generate();
};

// ---- identity ------------------------------------------------------------------

TEST_F(Seal, ANewStoreHasARandomUuidThatStaysTheSameWhenReopened) {
  std::string id;
  {
    SqliteEventStore store(db(), fast());
    id = store.store_id();
  }
  EXPECT_TRUE(is_valid_event_id(id)) << id;
  EXPECT_EQ(id[14], '4') << "a version 4 UUID: " << id;
  EXPECT_EQ(SqliteEventStore(db(), fast()).store_id(), id);
  SqliteEventStore other(dir_ / "other.db", fast());
  EXPECT_NE(other.store_id(), id);
}

TEST_F(Seal, TheStoreIdCannotBeChangedOnceTheStoreHoldsEvents) {
  {
    SqliteEventStore store(db(), fast());
    append_events(store, 0, 1);
  }
  const auto [status, output] =
      sqlite3_shell(db(), "UPDATE store_identity SET store_id = 'x';");
  EXPECT_NE(status, 0) << output;
  EXPECT_NE(output.find("store id is fixed"), std::string::npos) << output;
  const auto [status2, output2] = sqlite3_shell(db(), "DELETE FROM store_identity;");
  EXPECT_NE(status2, 0) << output2;
}

// A store written before stores had ids has no id and no seals table: its
// first writable open migrates it; a read-only open leaves it as it is.
TEST_F(Seal, AStoreWithoutAnIdGetsOneOnItsFirstWritableOpenAndKeepsItsEvents) {
  {
    SqliteEventStore store(db(), fast());
    append_events(store, 0, 5);
  }
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    // The step that adds them is the newest: the version before it is one less.
    raw.exec("DROP TABLE seals; DROP TABLE store_identity; PRAGMA user_version = " +
             std::to_string(SqliteEventStore::kSchemaVersion - 1));
  }
  {
    SqliteStoreOptions ro = fast();
    ro.read_only = true;
    SqliteEventStore store(db(), ro);
    EXPECT_EQ(store.store_id(), "");
    EXPECT_THROW(seal(store), StorageError);
  }
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
    EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), SqliteEventStore::kSchemaVersion - 1)
        << "a read-only open migrated";
  }
  SqliteEventStore store(db(), fast());
  EXPECT_TRUE(is_valid_event_id(store.store_id())) << store.store_id();
  EXPECT_EQ(store.head_position(), 5);
  EXPECT_TRUE(store.verify().ok);
  const SealData s = seal(store, &key_);
  EXPECT_EQ(s.head_position, 5);
  EXPECT_TRUE(verify_seal(store, s, &key_).ok);
  SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), SqliteEventStore::kSchemaVersion);
}

// ---- sealing -------------------------------------------------------------------

TEST_F(Seal, ASealStatesTheHeadAndIsRecordedInTheStoreWhichRefusesToChangeIt) {
  const SealData s = sealed_store_of_ten();
  SqliteEventStore store(db(), fast());
  EXPECT_EQ(s.store_id, store.store_id());
  EXPECT_EQ(s.head_position, 10);
  EXPECT_EQ(s.event_count, 10);
  EXPECT_EQ(s.public_key, key_.public_hex());
  const RecordedEvent last = *store.read_all(10).begin();
  EXPECT_EQ(s.head_hash, last.hash);
  EXPECT_TRUE(key_.verify(seal_message(s), s.signature));

  SQLite::Database raw(db().string(), SQLite::OPEN_READONLY);
  SQLite::Statement row(raw, "SELECT head_position, event_count, key_id, seal FROM seals");
  ASSERT_TRUE(row.executeStep());
  EXPECT_EQ(row.getColumn(0).getInt64(), 10);
  EXPECT_EQ(row.getColumn(1).getInt64(), 10);
  EXPECT_EQ(row.getColumn(2).getString(), key_.key_id());
  EXPECT_EQ(row.getColumn(3).getString(), to_seal_json(s));
  EXPECT_FALSE(row.executeStep());
  for (const char* sql : {"DELETE FROM seals;", "UPDATE seals SET head_position = 3;",
                          "INSERT OR REPLACE INTO seals SELECT * FROM seals;"}) {
    const auto [status, output] = sqlite3_shell(db(), sql);
    EXPECT_NE(status, 0) << sql << "\n" << output;
    EXPECT_NE(output.find("append-only"), std::string::npos) << sql << "\n" << output;
  }
}

TEST_F(Seal, ASealFileRoundTripsAndCarriesNoKeyMaterialButThePublicKey) {
  const SealData s = sealed_store_of_ten();
  const std::string text = to_seal_json(s);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  const SealData back = parse_seal(text, "t");
  EXPECT_EQ(to_seal_json(back), text);
  EXPECT_EQ(seal_message(back), seal_message(s));
  write_text(dir_ / "seal.json", text);
  EXPECT_EQ(to_seal_json(read_seal_file(dir_ / "seal.json")), text);
}

// ---- verify_seal: what passes ------------------------------------------------------

TEST_F(Seal, AStoreThatOnlyGrewSinceTheSealVerifies) {
  const SealData s = sealed_store_of_ten();
  {
    SqliteEventStore store(db(), fast());
    append_events(store, 10, 25);
  }
  const SealVerifyResult r = check(s, &key_);
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.problem, SealProblem::none);
  EXPECT_TRUE(r.signature_checked);
  EXPECT_TRUE(r.key_trusted);
  EXPECT_EQ(r.events_checked, 25);
  EXPECT_EQ(r.head_position, 25);
}

TEST_F(Seal, ASealOfAnEmptyStoreVerifiesOnceTheStoreHasGrown) {
  SealData s;
  {
    SqliteEventStore store(db(), fast());
    s = seal(store, &key_);
    append_events(store, 0, 3);
  }
  EXPECT_EQ(s.head_position, 0);
  EXPECT_EQ(s.event_count, 0);
  EXPECT_TRUE(check(s, &key_).ok) << check(s, &key_).reason;
}

TEST_F(Seal, AnUnsignedSealChecksTheHeadButNotWhoMadeIt) {
  SealData s;
  {
    SqliteEventStore store(db(), fast());
    append_events(store, 0, 4);
    s = seal(store);
  }
  EXPECT_FALSE(s.is_signed());
  const SealVerifyResult r = check(s, nullptr);
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_FALSE(r.signature_checked);
  // With a trusted key, an unsigned seal proves nothing.
  const SealVerifyResult pinned = check(s, &key_);
  EXPECT_FALSE(pinned.ok);
  EXPECT_EQ(pinned.problem, SealProblem::unsigned_seal);
  // It still catches a cut tail.
  tamper(db(), "DELETE FROM events WHERE position = 4");
  EXPECT_EQ(check(s, nullptr).problem, SealProblem::truncated);
}

// ---- verify_seal: truncation ---------------------------------------------------------

// Cuts the newest `cut` of the ten events of a sealed store.
void Seal::expect_truncation_detected(int cut) {
  const SealData s = sealed_store_of_ten();
  tamper(db(), "DELETE FROM events WHERE position > " + std::to_string(10 - cut));
  {
    SqliteEventStore store(db(), fast());
    ASSERT_EQ(store.head_position(), 10 - cut);
    EXPECT_TRUE(store.verify().ok) << "the store's own checks cannot see a cut tail whose "
                                      "high-water mark was lowered too";
  }
  const SealVerifyResult r = check(s, &key_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem, SealProblem::truncated);
  EXPECT_NE(r.reason.find("ends at position " + std::to_string(10 - cut)), std::string::npos)
      << r.reason;
  EXPECT_NE(r.reason.find(std::to_string(cut) + " sealed events are missing"), std::string::npos)
      << r.reason;
}

TEST_F(Seal, TruncatingTheNewestEventOfASealedStoreIsDetected) { expect_truncation_detected(1); }

TEST_F(Seal, TruncatingTheNewestThreeEventsOfASealedStoreIsDetected) {
  expect_truncation_detected(3);
}

TEST_F(Seal, TruncatingAllButOneEventOfASealedStoreIsDetected) { expect_truncation_detected(9); }

TEST_F(Seal, ACutTailRefilledToTheSealedLengthIsDetected) {
  const SealData s = sealed_store_of_ten();
  tamper(db(), "DELETE FROM events WHERE position > 7");
  {
    SqliteEventStore store(db(), fast());
    append_events(store, 100, 103);  // new events take positions 8, 9, 10
    ASSERT_EQ(store.head_position(), 10);
    EXPECT_TRUE(store.verify().ok);
  }
  const SealVerifyResult r = check(s, &key_);
  EXPECT_EQ(r.problem, SealProblem::head_differs) << r.reason;
  EXPECT_EQ(r.first_bad_position, 10);
}

// ---- verify_seal: rewritten history ----------------------------------------------

TEST_F(Seal, RewritingAndRehashingTheWholeChainFromPosition2IsDetected) {
  const SealData s = sealed_store_of_ten();
  std::vector<RecordedEvent> events;
  {
    SqliteEventStore store(db(), fast());
    for (const RecordedEvent& e : store.read_all()) events.push_back(e);
  }
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec("DROP TRIGGER IF EXISTS events_append_only_update");
    SQLite::Statement update(raw, "UPDATE events SET payload = ?1, hash = ?2 WHERE position = ?3");
    EventHash previous = events[0].hash;
    for (std::size_t i = 1; i < events.size(); ++i) {
      RecordedEvent& e = events[i];
      e.payload = R"({"i":)" + std::to_string(1000 + i) + "}";
      e.hash = chain_hash(previous, e);
      previous = e.hash;
      update.reset();
      update.bind(1, e.payload);
      update.bind(2, e.hash.data(), static_cast<int>(e.hash.size()));
      update.bind(3, e.position);
      update.exec();
    }
  }
  { SqliteEventStore restore(db(), fast()); }  // puts the dropped trigger back
  {
    SqliteEventStore store(db(), fast());
    const VerifyResult plain = store.verify();
    EXPECT_TRUE(plain.ok) << "the re-hashed chain checks on its own: " << plain.reason;
  }
  const SealVerifyResult r = check(s, &key_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem, SealProblem::head_differs);
  EXPECT_EQ(r.first_bad_position, 10);
  EXPECT_NE(r.reason.find("rewritten"), std::string::npos) << r.reason;
}

TEST_F(Seal, AnEditedEventThatWasNotRehashedBreaksTheChain) {
  const SealData s = sealed_store_of_ten();
  tamper(db(), "UPDATE events SET payload = '{\"i\":99}' WHERE position = 4");
  const SealVerifyResult r = check(s, &key_);
  EXPECT_EQ(r.problem, SealProblem::chain_broken) << r.reason;
  EXPECT_EQ(r.first_bad_position, 4);
}

// ---- verify_seal: whose seal ------------------------------------------------------------

TEST_F(Seal, SwappedSealsOfTwoStoresAreRejectedAsAnotherStores) {
  const std::filesystem::path other = dir_ / "other.db";
  const SealData mine = sealed_store_of_ten();
  SealData theirs;
  {
    // The same events at the same times would give the same hashes: the
    // store id is what tells the two apart.
    SqliteEventStore store(other, fast());
    append_events(store, 0, 10);
    theirs = seal(store, &key_);
  }
  SqliteEventStore a(db(), fast());
  SqliteEventStore b(other, fast());
  ASSERT_TRUE(verify_seal(a, mine, &key_).ok);
  ASSERT_TRUE(verify_seal(b, theirs, &key_).ok);
  for (const auto& [store, s] : {std::pair<const SqliteEventStore*, const SealData*>{&a, &theirs},
                                 std::pair<const SqliteEventStore*, const SealData*>{&b, &mine}}) {
    const SealVerifyResult r = verify_seal(*store, *s, &key_);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.problem, SealProblem::other_store);
    EXPECT_NE(r.reason.find(s->store_id), std::string::npos) << r.reason;
    EXPECT_NE(r.reason.find(store->store_id()), std::string::npos) << r.reason;
  }
}

// ---- verify_seal: forged seals --------------------------------------------------------------

TEST_F(Seal, ASealForgedWithoutTheKeyIsRejected) {
  const SealData genuine = sealed_store_of_ten();
  tamper(db(), "DELETE FROM events WHERE position > 6");
  SqliteEventStore store(db(), fast());
  const RecordedEvent head = *store.read_all(6).begin();

  // Edited to match the cut store, keeping the genuine signature.
  SealData edited = genuine;
  edited.head_position = 6;
  edited.event_count = 6;
  edited.head_hash = head.hash;
  EXPECT_EQ(verify_seal(store, edited, &key_).problem, SealProblem::bad_signature);
  EXPECT_EQ(verify_seal(store, edited, nullptr).problem, SealProblem::bad_signature)
      << "the seal's own public key already shows the edit";

  // Signed anew with the forger's own key: only the trusted key tells.
  const SealKey forger = SealKey::generate();
  SealData resigned = edited;
  resigned.public_key = forger.public_hex();
  resigned.signature = forger.sign(seal_message(resigned));
  const SealVerifyResult r = verify_seal(store, resigned, &key_);
  EXPECT_EQ(r.problem, SealProblem::wrong_key) << r.reason;
  EXPECT_NE(r.reason.find(key_.key_id()), std::string::npos) << r.reason;
  const SealVerifyResult unpinned = verify_seal(store, resigned, nullptr);
  EXPECT_TRUE(unpinned.ok) << "without a trusted key, any signer's seal checks";
  EXPECT_FALSE(unpinned.key_trusted);

  // The forger's key with the genuine public key claimed: the signature fails.
  SealData claimed = edited;
  claimed.signature = forger.sign(seal_message(claimed));
  EXPECT_EQ(verify_seal(store, claimed, &key_).problem, SealProblem::bad_signature);

  // Unsigned, where a signed seal is expected.
  SealData bare = edited;
  bare.public_key.clear();
  bare.signature.clear();
  EXPECT_EQ(verify_seal(store, bare, &key_).problem, SealProblem::unsigned_seal);
}

// ---- keys ---------------------------------------------------------------------------

TEST_F(Seal, KeysAreSavedPrivatelyLoadedBackAndNeverOverwritten) {
  const auto priv = dir_ / "seal.key";
  const auto pub = dir_ / "seal.pub";
  key_.save_private(priv);
  struct stat st {};
  ASSERT_EQ(::stat(priv.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THROW(SealKey::generate().save_private(priv), StorageError);
  const SealKey loaded = SealKey::load(priv);
  EXPECT_TRUE(loaded.has_private());
  EXPECT_EQ(loaded.public_hex(), key_.public_hex());
  key_.save_public(pub);
  const SealKey public_only = SealKey::load(pub);
  EXPECT_FALSE(public_only.has_private());
  EXPECT_EQ(public_only.key_id(), key_.key_id());
  // A public key verifies but cannot seal.
  const SealData s = sealed_store_of_ten();
  EXPECT_TRUE(check(s, &public_only).ok);
  SqliteEventStore store(db(), fast());
  EXPECT_THROW(seal(store, &public_only), InvalidArgument);
}

TEST_F(Seal, ABadKeyFileIsRefusedNamingIt) {
  const auto file = dir_ / "bad.key";
  EXPECT_NE(error_of([&] { SealKey::load(file); }).find("bad.key"), std::string::npos);
  write_text(file, "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n");
  const std::string why = error_of([&] { SealKey::load(file); });
  EXPECT_NE(why.find("bad.key"), std::string::npos) << why;
  EXPECT_NE(why.find("no readable PEM key"), std::string::npos) << why;
}

// ---- malformed seal files ----------------------------------------------------------------

TEST_F(Seal, MalformedSealFilesAreRefusedNamingTheFileAndTheField) {
  const SealData s = sealed_store_of_ten();
  const std::string good = to_seal_json(s);
  const auto seal_file = dir_ / "seal.json";
  const auto refused = [&](const std::string& text, const std::string& needle) {
    write_text(seal_file, text);
    const std::string why = error_of([&] { read_seal_file(seal_file); });
    EXPECT_NE(why.find("seal.json"), std::string::npos) << why;
    EXPECT_NE(why.find(needle), std::string::npos) << "for " << text << ": " << why;
  };
  const auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const auto at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) t.replace(at, from.size(), to);
    return t;
  };
  EXPECT_NE(error_of([&] { read_seal_file(dir_ / "missing.json"); }).find("missing.json"),
            std::string::npos);
  refused("", "is not JSON");
  refused("{\"annals_seal\":1,", "is not JSON");
  refused("[1]", "not a JSON object");
  refused(replaced("\"annals_seal\":1", "\"annals_seal\":2"), "'annals_seal'");
  refused(replaced("\"event_count\":10,", ""), "field 'event_count' is missing");
  refused(replaced("\"head_position\":10", "\"head_position\":-1"), "field 'head_position'");
  refused(replaced("\"head_position\":10", "\"head_position\":\"10\""), "field 'head_position'");
  refused(replaced("\"head_hash\":\"", "\"head_hash\":\"zz"), "field 'head_hash'");
  refused(replaced("\"sealed_at\":\"", "\"sealed_at\":\"x"), "field 'sealed_at'");
  refused(replaced("\"algorithm\":\"ed25519\"", "\"algorithm\":\"rsa\""), "field 'algorithm'");
  refused(replaced("\"signature\":\"", "\"signature\":\"ab"), "field 'signature'");
  refused(replaced("\"public_key\":\"", "\"public_key\":\"0"), "field 'public_key'");
  refused(replaced("{", "{\"extra\":1,"), "unknown field 'extra'");
  refused(std::string(70'000, ' '), "longer than");
  refused(std::string(30'000, '[') + std::string(30'000, ']'), "not a JSON object");
  refused(replaced("\"head_position\":10", "\"head_position\":18446744073709551615"),
          "field 'head_position'");
  refused(replaced("\"head_position\":10", "\"head_position\":1.5"), "field 'head_position'");
}

// ---- exports carry the store id ----------------------------------------------------------

TEST_F(Seal, AnExportCarriesTheStoreIdSoTheImportedCopyVerifiesTheSeal) {
  const SealData s = sealed_store_of_ten();
  std::ostringstream out;
  std::string id;
  {
    SqliteEventStore store(db(), fast());
    id = store.store_id();
    EXPECT_EQ(export_events(store, out), 10);
  }
  const std::string dump = out.str();
  EXPECT_EQ(dump.substr(0, dump.find('\n')), R"({"annals_export":1,"store_id":")" + id + "\"}");
  std::istringstream in(dump);
  EXPECT_EQ(import_events(dir_ / "copy.db", in), 10);
  SqliteEventStore copy(dir_ / "copy.db", fast());
  EXPECT_EQ(copy.store_id(), id);
  const SealVerifyResult r = verify_seal(copy, s, &key_);
  EXPECT_TRUE(r.ok) << r.reason;
  // And the copy's export is the same bytes.
  std::ostringstream again;
  export_events(copy, again);
  EXPECT_EQ(again.str(), dump);
}

TEST_F(Seal, AnExportWithoutAHeaderStillImportsAndTheCopyKeepsItsOwnId) {
  sealed_store_of_ten();
  std::ostringstream out;
  {
    SqliteEventStore store(db(), fast());
    export_events(store, out);
  }
  std::string dump = out.str();
  dump.erase(0, dump.find('\n') + 1);  // as exports were before stores had ids
  std::istringstream in(dump);
  EXPECT_EQ(import_events(dir_ / "copy.db", in), 10);
  SqliteEventStore copy(dir_ / "copy.db", fast());
  SqliteEventStore original(db(), fast());
  EXPECT_TRUE(is_valid_event_id(copy.store_id()));
  EXPECT_NE(copy.store_id(), original.store_id());
  EXPECT_TRUE(copy.verify().ok);
}

TEST_F(Seal, AMalformedExportHeaderIsRefusedAndImportsNothing) {
  for (const std::string& header :
       {std::string(R"({"annals_export":2,"store_id":"0b7a9a3c-6c31-4d2a-9f43-1d7f2e1c9a00"})"),
        std::string(R"({"annals_export":1,"store_id":"not-a-uuid"})"),
        std::string(R"({"annals_export":1})"),
        std::string(R"({"annals_export":1,"store_id":"0b7a9a3c-6c31-4d2a-9f43-1d7f2e1c9a00","x":1})")}) {
    TempDir dir;
    std::istringstream in(header + "\n");
    const std::string why = error_of([&] { import_events(dir / "t.db", in); });
    EXPECT_NE(why.find("line 1 (the export header)"), std::string::npos) << header << ": " << why;
  }
}

TEST_F(Seal, ImportOfAnotherStoresExportIntoASealedEmptyStoreIsRefused) {
  sealed_store_of_ten();
  std::ostringstream out;
  {
    SqliteEventStore store(db(), fast());
    export_events(store, out);
  }
  {
    SqliteEventStore target(dir_ / "t.db", fast());
    seal(target, &key_);
  }
  std::istringstream in(out.str());
  const std::string why = error_of([&] { import_events(dir_ / "t.db", in); });
  EXPECT_NE(why.find("has seals of its own store id"), std::string::npos) << why;
  EXPECT_EQ(SqliteEventStore(dir_ / "t.db", fast()).head_position(), 0);
}

}  // namespace annals::seal_test
