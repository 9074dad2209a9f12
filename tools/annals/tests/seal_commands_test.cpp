// `annals keygen`, `annals seal` and `annals verify --seal`, run in-process:
// outputs, exit codes (docs/tools.md) and the files they refuse.

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "annals/store/seal.hpp"
#include "tool_fixtures.hpp"

namespace annals::seal_cli_test {

using namespace testing;

class Seal : public ::testing::Test {
 protected:
  void SetUp() override {
    fill_sample(db());
    const auto r = annals_run({"keygen", "--key", path("seal.key"), "--public", path("seal.pub")});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  std::filesystem::path db() const { return dir_ / "store.db"; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Seals the store with seal.key into seal.json.
  void seal_now() {
    const auto r = annals_run({"seal", "--db", db().string(), "--key", path("seal.key")});
    ASSERT_EQ(r.code, 0) << r.err;
    write_file(dir_ / "seal.json", r.out);
  }
  Outcome verify(const std::string& key = "seal.pub", bool json = false) {
    std::vector<std::string> args{"verify", "--db", db().string(), "--seal", path("seal.json")};
    if (!key.empty()) args.insert(args.end(), {"--key", path(key)});
    if (json) args.push_back("--json");
    return annals_run(args);
  }
  TempDir dir_;
};

TEST_F(Seal, CliKeygenWritesAPrivateKeyOfMode0600AndNeverOverwritesIt) {
  struct stat st {};
  ASSERT_EQ(::stat(path("seal.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string before = file_bytes(dir_ / "seal.key");
  const auto r = annals_run({"keygen", "--key", path("seal.key")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("seal.key"), std::string::npos) << r.err;
  EXPECT_EQ(file_bytes(dir_ / "seal.key"), before);
}

TEST_F(Seal, CliSealThenVerifyPassesAfterTheStoreGrew) {
  seal_now();
  const annals::Seal s = read_seal_file(dir_ / "seal.json");
  EXPECT_EQ(s.head_position, 5);
  EXPECT_TRUE(s.is_signed());
  {
    SqliteEventStore store(db(), quick());
    store.append("account-3", ExpectedVersion::any(), {tool_event("bank.Opened")});
  }
  auto r = verify();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("ok: the seal of position 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 appended since"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("by the trusted key"), std::string::npos) << r.out;
  r = verify("", /*json=*/true);
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["signature"], "unpinned");
  EXPECT_EQ(j["head_position"], 6);
}

TEST_F(Seal, CliVerifyOfACutStoreExits4NamingTheTruncation) {
  seal_now();
  {
    SQLite::Database raw(db().string(), SQLite::OPEN_READWRITE);
    raw.exec("DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE position > 2");
  }
  // The high-water mark of positions finds the cut too; the seal names it.
  const auto plain = annals_run({"verify", "--db", db().string()});
  EXPECT_EQ(plain.code, 4);
  EXPECT_NE(plain.err.find("high-water mark"), std::string::npos) << plain.err;
  auto r = verify();
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("3 sealed events are missing"), std::string::npos) << r.err;
  r = verify("seal.pub", /*json=*/true);
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(Json::parse(r.out)["problem"], "truncated");
}

TEST_F(Seal, CliVerifyWithAnotherKeyExits4) {
  seal_now();
  ASSERT_EQ(annals_run({"keygen", "--key", path("other.key")}).code, 0);
  const auto r = verify("other.key");
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.err.find("wrong_key"), std::string::npos) << r.err;
}

TEST_F(Seal, CliSealWithoutAKeyIsUnsignedAndSaysSo) {
  const auto r = annals_run({"seal", "--db", db().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("unsigned"), std::string::npos) << r.err;
  write_file(dir_ / "seal.json", r.out);
  EXPECT_EQ(verify("").code, 0);
  const auto pinned = verify();
  EXPECT_EQ(pinned.code, 4);
  EXPECT_NE(pinned.err.find("unsigned_seal"), std::string::npos) << pinned.err;
}

TEST_F(Seal, CliBadSealOrKeyFilesExit1NamingThemAndLeaveTheStoreUntouched) {
  seal_now();
  const std::string before = file_bytes(db());
  write_file(dir_ / "bad.json", "{\"annals_seal\":1}");
  auto r = annals_run({"verify", "--db", db().string(), "--seal", path("bad.json")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("bad.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("field 'store_id' is missing"), std::string::npos) << r.err;
  r = annals_run({"verify", "--db", db().string(), "--seal", path("none.json")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("none.json"), std::string::npos) << r.err;
  r = annals_run({"seal", "--db", db().string(), "--key", path("none.key")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("none.key"), std::string::npos) << r.err;
  r = annals_run({"seal", "--db", db().string(), "--key", path("seal.pub")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("public key"), std::string::npos) << r.err;
  EXPECT_EQ(file_bytes(db()), before);
  r = annals_run({"verify", "--db", db().string(), "--key", path("seal.pub")});
  EXPECT_EQ(r.code, 2) << "--key needs --seal";
  r = annals_run({"seal", "--db", path("missing.db")});
  EXPECT_EQ(r.code, 3);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "missing.db"));
}

}  // namespace annals::seal_cli_test
