#include "reference_workload.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <set>
#include <utility>

namespace poolwatch::daemon {

namespace {

constexpr float kDt = 1.0F / 60.0F;
constexpr float kGravity = -9.81F;
constexpr float kDrag = 0.02F;
constexpr float kBox = 10.0F;
// Bloat renders a domain of kBloatWidth × (kBloatHeight + k) texels, k growing with each
// change, so every change brings new keys and about 1 MiB of new buffers.
constexpr std::uint32_t kBloatWidth = 512;
constexpr std::uint32_t kBloatHeight = 512;

constexpr std::array<std::string_view, 4> kScenarioNames = {"steady", "leak", "bloat", "spike"};

// A site text with static storage, as BufferPool keeps a site's pointer: each text once for the
// process's life (a config names a handful); nullptr for "" (untagged).
const char* InternSite(const std::string& site) {
  if (site.empty()) return nullptr;
  static std::mutex mutex;
  static std::set<std::string, std::less<>> sites;
  const std::scoped_lock lock(mutex);
  return sites.insert(site).first->c_str();
}

}  // namespace

std::string_view ScenarioName(Scenario scenario) {
  return kScenarioNames[static_cast<std::size_t>(scenario)];
}

std::optional<Scenario> ParseScenario(std::string_view name) {
  for (std::size_t i = 0; i < kScenarioNames.size(); ++i) {
    if (kScenarioNames[i] == name) return static_cast<Scenario>(i);
  }
  return std::nullopt;
}

ReferenceWorkload::ReferenceWorkload(WorkloadOptions options)
    : options_(std::move(options)), leak_site_(InternSite(options_.leak_site)) {
  Resize(options_.particles);
}

void ReferenceWorkload::SetOptions(const WorkloadOptions& options) {
  options_ = options;
  leak_site_ = InternSite(options_.leak_site);
  if (options_.particles != position_.size()) Resize(options_.particles);
}

void ReferenceWorkload::Resize(std::uint32_t particles) {
  position_.resize(particles);
  velocity_.resize(particles);
  // Deterministic spread: a tests' run is repeatable.
  for (std::uint32_t i = 0; i < particles; ++i) {
    const auto f = static_cast<float>(i);
    position_[i] = {std::fmod(f * 0.618F, kBox), kBox * 0.5F + std::fmod(f * 0.37F, kBox * 0.5F),
                    std::fmod(f * 0.271F, kBox)};
    velocity_[i] = {std::sin(f), 0.0F, std::cos(f)};
  }
}

void ReferenceWorkload::RunFrame(BufferPool& pool, std::uint64_t frame) {
  const auto n = static_cast<std::uint32_t>(position_.size());
  Integrate(pool, n);

  switch (options_.scenario) {
    case Scenario::kSteady:
      break;
    case Scenario::kLeak:
      LeakHeldBuffers(pool, frame);
      break;
    case Scenario::kBloat:
      if (options_.bloat_every_frames != 0 && frame % options_.bloat_every_frames == 0) {
        ++domain_changes_;
      }
      RenderDomain(pool, kBloatWidth, kBloatHeight + domain_changes_);
      break;
    case Scenario::kSpike:
      if (options_.spike_every_frames != 0 && frame % options_.spike_every_frames == 0) {
        for (std::uint32_t burst = 0; burst < options_.spike_factor; ++burst) Integrate(pool, n);
      }
      break;
  }
}

// Out of line, so that a call stack names it in every build: with an untagged leak (leak_site
// ""), /debug finds the leak by this function's name.
[[gnu::noinline]] void ReferenceWorkload::LeakHeldBuffers(BufferPool& pool, std::uint64_t frame) {
  for (std::uint32_t i = 0; i < options_.leak_buffers_per_frame; ++i) {
    Buffer lost = pool.Acquire(BufferFormat::kF32, options_.leak_buffer_elements, leak_site_);
    if (lost) std::ranges::fill(lost.As<float>(), static_cast<float>(frame));
  }
}

void ReferenceWorkload::Integrate(BufferPool& pool, std::uint32_t n) {
  Buffer force_buffer = pool.Alloc(BufferFormat::kVec3f, n, "reference_workload.force");
  Buffer speed_buffer = pool.Alloc(BufferFormat::kF32, n, "reference_workload.speed");
  Buffer color_buffer = pool.Alloc(BufferFormat::kRgba8, n, "reference_workload.color");
  // Under a byte cap the pool may refuse; the frame then skips its work, as a real one would.
  if (!force_buffer || !speed_buffer || !color_buffer) return;
  auto force = force_buffer.As<Vec3>();
  auto speed = speed_buffer.As<float>();
  auto color = color_buffer.As<std::uint32_t>();

  for (std::uint32_t i = 0; i < n; ++i) {
    const Vec3& v = velocity_[i];
    force[i] = {-kDrag * v.x, kGravity - kDrag * v.y, -kDrag * v.z};
  }
  double energy = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    Vec3& v = velocity_[i];
    Vec3& p = position_[i];
    v = {v.x + force[i].x * kDt, v.y + force[i].y * kDt, v.z + force[i].z * kDt};
    p = {p.x + v.x * kDt, p.y + v.y * kDt, p.z + v.z * kDt};
    if (p.y < 0.0F) {  // bounce off the floor, losing a little energy
      p.y = -p.y;
      v.y = -v.y * 0.9F;
    }
    if (p.y < 1e-3F && std::fabs(v.y) < 0.5F) v.y = 12.0F;  // relaunch resting particles
    speed[i] = std::sqrt(v.x * v.x + v.y * v.y + v.z * v.z);
    energy += 0.5 * static_cast<double>(speed[i] * speed[i]) + static_cast<double>(p.y * 9.81F);
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto level = static_cast<std::uint32_t>(std::min(speed[i] * 16.0F, 255.0F));
    color[i] = 0xFF000000U | (level << 16U) | ((255U - level) << 8U);
  }
  checksum_ = energy;
}

void ReferenceWorkload::RenderDomain(BufferPool& pool, std::uint32_t width, std::uint32_t height) {
  Buffer image_buffer =
      pool.Alloc(BufferFormat::kRgba8, width * height, "reference_workload.domain");
  Buffer row_buffer = pool.Alloc(BufferFormat::kF32, height, "reference_workload.domain_rows");
  if (!image_buffer || !row_buffer) return;
  auto image = image_buffer.As<std::uint32_t>();
  auto rows = row_buffer.As<float>();
  // Clear and splat the particles: the new memory is touched for real, so it counts in RSS.
  std::ranges::fill(image, 0xFF202020U);
  std::ranges::fill(rows, 0.0F);
  const std::size_t step = std::max<std::size_t>(position_.size() / 64, 1);
  for (std::size_t i = 0; i < position_.size(); i += step) {
    const auto y = std::min(static_cast<std::uint32_t>(std::fabs(position_[i].y) / kBox *
                                                       static_cast<float>(height - 1)),
                            height - 1);
    const auto x = std::min(static_cast<std::uint32_t>(std::fabs(position_[i].x) / kBox *
                                                       static_cast<float>(width - 1)),
                            width - 1);
    image[static_cast<std::size_t>(y) * width + x] = 0xFFFFFFFFU;
    rows[y] += 1.0F;
  }
}

}  // namespace poolwatch::daemon
