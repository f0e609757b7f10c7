#include "transport/agent/audit_trail.hpp"

#include <chrono>

namespace anya::transport {
namespace {

std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch()).count());
}

std::uint64_t unix_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace

AuditTrail::AuditTrail(std::unique_ptr<AuditLog> log, std::function<std::uint64_t()> term,
                       metrics::Registry& registry, Logger logger)
    : log_(std::move(log)), term_(std::move(term)), logger_(std::move(logger)) {
  ANYA_ASSERT(log_ != nullptr);
  ANYA_ASSERT(term_ != nullptr);
  records_ = &registry.counter("anya_audit_records_total", "Records written to the audit log");
  failures_ = &registry.counter(
      "anya_audit_failures_total",
      "Audit records that could not be written (mutations are then refused: fail closed)");
  refused_ = &registry.counter_family(
      "anya_admin_refused_total",
      "Admin requests refused for their credential (unauthenticated) or role (forbidden)",
      {"reason"});
  failed_ = &registry.counter_family(
      "anya_admin_requests_failed_total",
      "Authorized admin mutations the node refused or could not do, by HTTP status (a members "
      "add for an existing id is 409, a bad field 400, not the leader 421, ...)",
      {"status"});
  published_seq_ = log_->last_seq();
}

Status AuditTrail::record(const AuditEvent& e) {
  std::string detail = e.detail;
  if (e.outcome.starts_with("failed")) {
    const std::string status = e.outcome.substr(e.outcome.find(' ') + 1);
    failed_->with({status}).inc();
    const net::LogLimiter::Turn turn = log_limiter_.should_log("failed " + status, steady_ms());
    if (turn.log) {
      logger_.info("admin request ", e.target, " from ", e.actor, " refused (HTTP ", status,
                   "): ", e.detail, log_limiter_.suppressed_note(turn.suppressed));
    }
  }
  if (e.action == "auth.unauthenticated" || e.action == "auth.forbidden") {
    const bool unauthenticated = e.action == "auth.unauthenticated";
    refused_->with({unauthenticated ? "unauthenticated" : "forbidden"}).inc();
    const std::uint64_t now = steady_ms();
    const net::LogLimiter::Turn turn = log_limiter_.should_log(e.action, now);
    if (turn.log) {
      logger_.warn("refused admin request ", e.target, " from ", e.actor,
                   e.source.empty() ? "" : " at " + e.source, ": ", e.detail,
                   log_limiter_.suppressed_note(turn.suppressed));
    }
    // A flood of refusals must not become a flood of fsyncs on the node's thread or fill the
    // disk: one record per kind per second, which counts the ones folded into it.
    const net::LogLimiter::Turn record_turn = refusal_limiter_.should_log(e.action, now);
    if (!record_turn.log) return Status::ok();
    if (record_turn.suppressed > 0) {
      detail += "; and " + std::to_string(record_turn.suppressed) +
                " more refusals of this kind since the last record";
    }
  }
  AuditEntry entry;
  entry.time_ms = unix_ms();
  entry.term = term_();
  entry.actor = e.actor;
  entry.role = e.role;
  entry.action = e.action;
  entry.target = e.target;
  entry.outcome = e.outcome;
  entry.detail = e.source.empty() ? detail : detail + (detail.empty() ? "" : "; ") +
                                                 "from " + e.source;
  Status s = log_->append(entry);
  if (!s) {
    failures_->inc();
    if (!failure_logged_) {
      failure_logged_ = true;
      logger_.error("audit log ", log_->file().string(), ": ", s.message(),
                    "; refusing every mutation until the agent restarts (fail closed)");
    }
    return s;
  }
  records_->inc();
  return s;
}

void AuditTrail::leader_changed(std::uint64_t leader, std::uint64_t term) {
  AuditEvent e;
  e.actor = "node";
  e.action = "leader.changed";
  e.target = leader == 0 ? std::string("none") : "node " + std::to_string(leader);
  e.outcome = "ok";
  e.detail = "term " + std::to_string(term);
  (void)record(e);  // failures are counted and logged by record()
}

void AuditTrail::cluster_changed(const std::string& action, const std::string& target) {
  AuditEvent e;
  e.actor = "node";
  e.action = action;
  e.target = target;
  e.outcome = "ok";
  (void)record(e);  // failures are counted and logged by record()
}

std::optional<AuditTrail::Head> AuditTrail::take_due_head(bool force) {
  const std::uint64_t seq = log_->last_seq();
  if (seq == 0 || seq == published_seq_) return std::nullopt;
  if (!force && seq < published_seq_ + kHeadEveryRecords) return std::nullopt;
  published_seq_ = seq;
  return Head{seq, log_->head_mac_hex()};
}

}  // namespace anya::transport
