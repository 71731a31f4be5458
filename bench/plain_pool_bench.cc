// Built with POOLWATCH_POOL_PLAIN: BufferPool here is the pool with its instrumentation
// compiled out (namespace poolwatch::plain).
#include <memory>

#include "frame_workloads.h"
#include "poolwatch/buffer_pool.h"

static_assert(!poolwatch::kPoolInstrumented);

namespace poolwatch::bench {

void RegisterPlain(Workload workload) {
  RegisterFrameBenchmark<PoolAllocator<BufferPool>>(workload, "plain");
}

struct PlainFrames::Pool {
  explicit Pool(PoolOptions options) : allocator(options) {}
  PoolAllocator<BufferPool> allocator;
};

PlainFrames::PlainFrames(Workload workload, PoolOptions options)
    : pool_(std::make_unique<Pool>(options)), workload_(workload) {}
PlainFrames::~PlainFrames() = default;
void PlainFrames::Run(std::int64_t frames) { RunFrames(pool_->allocator, workload_, frames); }

}  // namespace poolwatch::bench
