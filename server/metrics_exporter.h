// RenderMetrics: the server's metrics in the Prometheus text format, for
// GET /metrics (server/metrics_server.h). Names follow ECOSYSTEM.md 5.1 and
// docs/operations.md ("Metrics") lists them; labels carry op names, status
// codes, types and reasons, never a counter key (a key label would make one
// series per key: unbounded cardinality, and keys may identify people).
//
// Thread safety: reads atomics and the engine's and journal's Stats(); may
// run on any thread while the server serves.

#ifndef TALLY_SERVER_METRICS_EXPORTER_H_
#define TALLY_SERVER_METRICS_EXPORTER_H_

#include <string>

#include "server/service.h"

namespace tally {

std::string RenderMetrics(Service* service);

}  // namespace tally

#endif  // TALLY_SERVER_METRICS_EXPORTER_H_
