// Built with POOLWATCH_POOL_PLAIN: BufferPool here is the pool with its instrumentation
// compiled out (namespace poolwatch::plain).
#include "frame_workloads.h"
#include "poolwatch/buffer_pool.h"

static_assert(!poolwatch::kPoolInstrumented);

namespace poolwatch::bench {

void RegisterPlain(Workload workload) {
  RegisterFrameBenchmark<PoolAllocator<BufferPool>>(workload, "plain");
}

}  // namespace poolwatch::bench
