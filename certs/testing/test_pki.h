// TestPkiDir(): a throw-away PKI made by certs/make-test-pki.sh, generated once per test binary
// into a temp dir that is removed at exit. Tests only (never linked into the gateway).
#ifndef PSL_CERTS_TESTING_TEST_PKI_H_
#define PSL_CERTS_TESTING_TEST_PKI_H_

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace psl::certs::testing {

class TestPki {
 public:
  TestPki() {
    std::string pattern = (std::filesystem::temp_directory_path() / "psl-test-pki.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return;
    }
    dir_ = pattern;
    const std::string command = std::string("bash '") + PSL_SOURCE_DIR +
                                "/certs/make-test-pki.sh' --force '" + dir_.string() +
                                "' >/dev/null";
    ok_ = std::system(command.c_str()) == 0;  // NOLINT(concurrency-mt-unsafe): once, at start
  }
  ~TestPki() {
    std::error_code ignored;
    if (!dir_.empty()) {
      std::filesystem::remove_all(dir_, ignored);
    }
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;
  TestPki(TestPki&&) = delete;
  TestPki& operator=(TestPki&&) = delete;

  bool ok() const { return ok_; }
  const std::filesystem::path& Dir() const { return dir_; }
  std::filesystem::path operator/(const std::string& file) const { return dir_ / file; }

 private:
  std::filesystem::path dir_;
  bool ok_ = false;
};

// Generated on first use (about 3 s), shared by every test of the binary.
inline const TestPki& SharedTestPki() {
  static const TestPki pki;  // NOLINT: test-only, destroyed at exit to remove the temp dir
  return pki;
}

}  // namespace psl::certs::testing

#endif  // PSL_CERTS_TESTING_TEST_PKI_H_
