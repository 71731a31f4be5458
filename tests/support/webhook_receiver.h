#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace poolwatch::testing {

// An HTTP server on 127.0.0.1 (a free port) that records every request it gets and answers
// 200: the receiving end of Alertmanager's webhook. Serves on its own thread until destroyed.
class WebhookReceiver {
 public:
  struct Request {
    std::string method;
    std::string target;
    std::string body;
  };

  WebhookReceiver();
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  std::uint16_t port() const;
  std::vector<Request> Requests() const;  // thread-safe

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace poolwatch::testing
