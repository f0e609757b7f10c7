#include "engine/base/fault_hooks.hpp"

namespace anya {

const char* fault_site_name(FaultSite site) {
  switch (site) {
    case FaultSite::skip_election_reset: return "skip_election_reset";
    case FaultSite::tiny_append_batch: return "tiny_append_batch";
    case FaultSite::inflight_stall: return "inflight_stall";
    case FaultSite::no_reject_hint: return "no_reject_hint";
    case FaultSite::storage_fails: return "storage_fails";
    case FaultSite::count: break;
  }
  return "unknown";
}

}  // namespace anya
