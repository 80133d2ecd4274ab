// ScriptedSender: a Sender for tests that answers from a script, in order, and records every
// request; plus builders of the HttpsResults a script holds. Thread-safe (Delivery and Mailbox
// workers call Send concurrently); read `sent` once the code under test is idle.
#ifndef PSL_GATEWAY_TESTING_SCRIPTED_SENDER_H_
#define PSL_GATEWAY_TESTING_SCRIPTED_SENDER_H_

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/delivery.h"
#include "gateway/http_types.h"
#include "gateway/https_client.h"

namespace psl::gateway::sender_test {

// Answers in the order given (a connect failure once the script is empty); records what was sent.
class ScriptedSender final : public Sender {
 public:
  HttpsResult Send(const std::string& insurer, const HttpsUrl& url, const HttpHeaders& headers,
                   std::string_view body) override {
    if (on_send) {
      on_send();
    }
    std::lock_guard<std::mutex> lock(mu);
    std::string action;
    for (const auto& [k, v] : headers) {
      if (k == "soapaction") {
        action = v;
      }
    }
    sent.push_back({insurer, url.target, headers, action, std::string(body)});
    if (script.empty()) {
      HttpsResult r;
      r.error = TransportError::kConnect;
      r.error_detail = "nothing scripted";
      return r;
    }
    HttpsResult r = script.front();
    script.pop_front();
    return r;
  }

  struct Sent {
    std::string insurer;
    std::string target;
    HttpHeaders headers;
    std::string action;  // the soapaction header, "" when absent
    std::string body;
  };
  std::function<void()> on_send;  // called first (outside mu)
  std::mutex mu;
  std::deque<HttpsResult> script;
  std::vector<Sent> sent;
};

// An HTTP answer.
inline HttpsResult Http(int status, std::string body, HttpHeaders headers = {}) {
  HttpsResult r;
  r.response.status = status;
  r.response.body = std::move(body);
  r.response.headers = std::move(headers);
  return r;
}

// A transport failure (no HTTP answer).
inline HttpsResult Transport(TransportError e = TransportError::kReset) {
  HttpsResult r;
  r.error = e;
  r.error_detail = "scripted";
  return r;
}

}  // namespace psl::gateway::sender_test

#endif  // PSL_GATEWAY_TESTING_SCRIPTED_SENDER_H_
