// The admin plane's audit sink in production: each event the router reports (a mutation before
// it runs and its outcome after; refused credentials and permissions, at most one record per
// kind per second counting the rest) and each leadership change becomes one record of the node's AuditLog (transport/audit: an HMAC chain, fdatasynced
// before record() returns). Counted in /metrics; a write failure is logged once and makes every
// later mutation fail closed until the agent restarts (the log refuses appends after a failure,
// since its file may end in a partial line).
//
// Chain heads (seq and mac) are written to the replicated store under kAuditHeadKeyPrefix +
// NODE_ID (router.hpp) by the leader: its own, on each leadership win and every
// kHeadEveryRecords records, and every member's, which it asks for (GET /v1/audit/head). A
// truncated or rewritten audit file is then detectable from any node's store (`anya-ha audit
// verify FILE --head-seq N --head-mac M`, with the head from GET /v1/audit/heads).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "transport/admin/router.hpp"
#include "transport/audit/audit_log.hpp"
#include "transport/log/log.hpp"
#include "transport/metrics/metrics.hpp"
#include "transport/net/connection_gate.hpp"

namespace anya::transport {

class AuditTrail final : public AuditSink {
 public:
  static constexpr std::uint64_t kHeadEveryRecords = 64;

  // `term` reads the node's current term for each record.
  AuditTrail(std::unique_ptr<AuditLog> log, std::function<std::uint64_t()> term,
             metrics::Registry& registry, Logger logger);

  Status record(const AuditEvent& event) override;
  // A leadership change, as the node saw it.
  void leader_changed(std::uint64_t leader, std::uint64_t term);
  // A membership or configuration change, as this node applied it (engine's decision, whoever
  // asked: an admin's request is recorded too, by the router, with its actor).
  void cluster_changed(const std::string& action, const std::string& target);

  // The head to publish, when one is due (kHeadEveryRecords since the last, or forced).
  struct Head {
    std::uint64_t seq = 0;
    std::string mac_hex;
  };
  std::optional<Head> take_due_head(bool force);
  Head head() const { return Head{log_->last_seq(), log_->head_mac_hex()}; }

 private:
  std::unique_ptr<AuditLog> log_;
  std::function<std::uint64_t()> term_;
  Logger logger_;
  metrics::Counter* records_;
  metrics::Counter* failures_;
  metrics::Family<metrics::Counter>* refused_;
  metrics::Family<metrics::Counter>* failed_;
  net::LogLimiter log_limiter_;  // refusals: one log line per kind per interval
  // Refusals: one audit record per kind per second, counting those folded into it.
  static constexpr std::uint64_t kRefusalRecordIntervalMs = 1000;
  net::LogLimiter refusal_limiter_{kRefusalRecordIntervalMs};
  std::uint64_t published_seq_ = 0;
  bool failure_logged_ = false;
};

}  // namespace anya::transport
