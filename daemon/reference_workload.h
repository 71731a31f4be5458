#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "poolwatch/buffer_pool.h"

namespace poolwatch::daemon {

enum class Scenario : std::uint8_t {
  kSteady,  // no leak: every buffer returns, bytes stay flat
  kLeak,    // held buffers acquired every frame and never released
  kBloat,   // the domain size changes now and then, leaving old keys' buffers behind
  kSpike,   // periodic bursts of many extra buffers and extra work
};

std::string_view ScenarioName(Scenario scenario);
std::optional<Scenario> ParseScenario(std::string_view name);

struct WorkloadOptions {
  Scenario scenario = Scenario::kSteady;
  std::uint32_t particles = 4096;
  std::uint32_t leak_buffers_per_frame = 1;  // leak: held buffers lost each frame
  std::uint32_t leak_buffer_elements = 256;  // leak: f32 elements per lost buffer
  // leak: the site tag of the lost buffers; empty for an untagged Acquire(), which only the
  // call stacks attribute (to ReferenceWorkload::LeakHeldBuffers).
  std::string leak_site = "reference_workload.leak";
  std::uint32_t bloat_every_frames = 30;   // bloat: frames between domain changes
  std::uint32_t spike_every_frames = 120;  // spike: frames between bursts
  std::uint32_t spike_factor = 8;          // spike: extra buffers per burst, × the usual

  friend bool operator==(const WorkloadOptions&, const WorkloadOptions&) = default;
};

// The daemon's reference simulation: particles under gravity and drag, bouncing in a box,
// integrated each frame in frame-scoped buffers from the pool, so that frame times and the
// pool's numbers mean something. Not thread-safe; runs on the tick thread.
class ReferenceWorkload {
 public:
  explicit ReferenceWorkload(WorkloadOptions options = {});

  // Takes effect at the next frame. Buffers lost by the leak scenario stay lost.
  void SetOptions(const WorkloadOptions& options);
  const WorkloadOptions& options() const { return options_; }

  void RunFrame(BufferPool& pool, std::uint64_t frame);

  // Sum of all particle energies, so that the work cannot be optimised away and tests can see
  // it is done.
  double Checksum() const { return checksum_; }

 private:
  struct Vec3 {
    float x, y, z;
  };

  void Resize(std::uint32_t particles);
  void LeakHeldBuffers(BufferPool& pool, std::uint64_t frame);
  void Integrate(BufferPool& pool, std::uint32_t n);
  void RenderDomain(BufferPool& pool, std::uint32_t width, std::uint32_t height);

  WorkloadOptions options_;
  const char* leak_site_ = nullptr;  // options_.leak_site, interned: a pool keeps the pointer
  std::vector<Vec3> position_;
  std::vector<Vec3> velocity_;
  std::uint32_t domain_changes_ = 0;
  double checksum_ = 0;
};

}  // namespace poolwatch::daemon
