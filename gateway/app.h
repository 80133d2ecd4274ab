// App: the composition root of `passerelle serve` (STYLE.md §2). Builds every part in dependency
// order — libxml2/xmlsec globals, schemas, keys and trust stores, the store, routing, metrics, the
// worker pool, the API, delivery, the eFact mailbox poller, then the two HTTPS listeners — and
// tears them down in reverse on Shutdown(): stop accepting, report not ready, drain requests in
// flight, stop the delivery workers and the mailbox poller, join the pool, close the store.
//
// Thread-safety: Start, Shutdown and the destructor from one controlling thread; ports() and
// the readiness probe from any thread.
#ifndef PSL_GATEWAY_APP_H_
#define PSL_GATEWAY_APP_H_

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>

#include "base/status.h"
#include "gateway/config.h"

namespace psl::gateway {

struct AppOptions {
  LoadOptions load;  // allow_unsynced_store only in fault harnesses
};

class App {
 public:
  // Loads and checks everything; on any problem returns kFailedPrecondition with a message that
  // names the file or setting (start-up may fail loudly; nothing is listening then).
  static StatusOr<std::unique_ptr<App>> Start(const std::filesystem::path& config_file,
                                              const AppOptions& options = {});
  ~App();  // Shutdown()s when still running
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  std::uint16_t port() const;      // the practices' HTTPS port (bound; useful with port 0)
  std::uint16_t ops_port() const;  // the ops port
  void Shutdown();                 // idempotent

  struct Parts;  // implementation detail (app.cc)

 private:
  App() = default;
  std::unique_ptr<Parts> parts_;
};

// `passerelle serve --config FILE [--ready-file FILE]`: starts the App, prints one JSON line
// {"msg":"listening","port":…,"ops_port":…} to `out` (and writes it to ready_file when given),
// then waits for SIGTERM or SIGINT and shuts down gracefully. Exit 0 after a clean shutdown, 2
// when start-up fails.
int Serve(const std::filesystem::path& config_file, const std::filesystem::path& ready_file,
          std::ostream& out, std::ostream& err);

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_APP_H_
