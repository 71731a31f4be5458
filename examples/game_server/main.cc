// A program shaped like a game server, observed by poolwatch: a 60 Hz simulation thread whose
// frames draw from a `render` and a `physics` pool, an audio thread mixing 256-sample blocks of
// 48 kHz audio (187.5 Hz) from an `audio` pool, and the exporter serving all three on HTTP.
// docs/embedding.md walks through it.
//
//   poolwatch_example_game_server [--listen HOST:PORT] [--leak POOL]
//
// --leak POOL: that pool loses one held buffer per frame, as a forgotten Release would.
// SIGTERM or SIGINT: the exporter drains, the threads finish their frames, exit 0.
#include <poolwatch/buffer_pool.h>
#include <poolwatch/exporter/exporter.h>
#include <poolwatch/health_monitor.h>
#include <poolwatch/simulation_loop.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

using poolwatch::BufferFormat;
using poolwatch::BufferPool;

struct Flags {
  std::string listen = "127.0.0.1:9721";
  std::string leak;  // a pool name, or empty
};

constexpr const char* kUsage =
    "usage: poolwatch_example_game_server [--listen HOST:PORT] "
    "[--leak render|physics|audio]\n";

// Throws std::invalid_argument saying what is wrong.
Flags ParseFlags(const std::vector<std::string>& args) {
  Flags flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag != "--listen" && flag != "--leak") {
      throw std::invalid_argument("unknown flag " + flag);
    }
    if (i + 1 == args.size()) throw std::invalid_argument(flag + " needs a value");
    (flag == "--listen" ? flags.listen : flags.leak) = args[++i];
  }
  if (!flags.leak.empty() && flags.leak != "render" && flags.leak != "physics" &&
      flags.leak != "audio") {
    throw std::invalid_argument("--leak: no pool named \"" + flags.leak + "\"");
  }
  return flags;
}

// What a frame of each subsystem does with its pool. Frame-scoped buffers (Alloc) go back at
// the end of the frame; held ones (Acquire) until released, or never when leaking.
class Render {
 public:
  void Frame(BufferPool& pool, std::uint64_t frame) {
    // Per-view vertex and index scratch, a few views per frame.
    for (int view = 0; view < 3; ++view) {
      auto vertices = pool.Alloc(BufferFormat::kF32, 4096 * 3, "render.vertices").As<float>();
      std::ranges::fill(vertices, static_cast<float>(frame % 7));
      auto indices = pool.Alloc(BufferFormat::kU32, 6144, "render.indices").As<std::uint32_t>();
      std::ranges::fill(indices, static_cast<std::uint32_t>(view));
    }
  }
};

class Physics {
 public:
  void Frame(BufferPool& pool, std::uint64_t frame) {
    // Contacts vary with the scene: the buffer's size (and so its key) changes now and then.
    const auto contacts = static_cast<std::uint32_t>(512 + 128 * (frame / 300 % 4));
    auto impulses = pool.Alloc(BufferFormat::kF32, contacts * 3, "physics.impulses").As<float>();
    for (std::size_t i = 0; i < impulses.size(); ++i) {
      impulses[i] = std::sin(static_cast<float>(i + frame));
    }
    pool.Alloc(BufferFormat::kU32, contacts * 2, "physics.pairs");
  }
};

class Audio {
 public:
  void Frame(BufferPool& pool, std::uint64_t /*frame*/) {
    // The mix block is held across the frame and released explicitly, as a voice's would be.
    poolwatch::HeldBuffer mix(pool, BufferFormat::kF32, 256 * 2, "audio.mix");
    std::ranges::fill(mix.get().As<float>(), 0.0F);
    for (int voice = 0; voice < 8; ++voice) {
      pool.Alloc(BufferFormat::kF32, 256, "audio.voice");
    }
  }
};

// One pool that may leak: a held buffer per frame, never released.
void MaybeLeak(BufferPool& pool, bool leaking) {
  if (leaking) pool.Acquire(BufferFormat::kF32, 256, "game.forgotten_release");
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  try {
    flags = ParseFlags(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::invalid_argument& e) {
    std::cerr << "poolwatch_example_game_server: " << e.what() << "\n" << kUsage;
    return 2;
  }

  // Blocked before any thread starts: every thread inherits the mask, sigwait takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  using namespace std::chrono_literals;
  BufferPool render_pool;
  BufferPool physics_pool;
  BufferPool audio_pool;
  poolwatch::HealthMonitor simulation({.loop = "simulation", .period = 16'666'667ns});
  simulation.AddPool("render", render_pool);
  simulation.AddPool("physics", physics_pool);
  poolwatch::HealthMonitor mixer({.loop = "audio", .period = 5'333'333ns});  // 48 kHz / 256
  mixer.AddPool("audio", audio_pool);

  poolwatch::exporter::Options options;
  options.http.listen = flags.listen;
  options.server_name = "game-server";
  options.log = [](poolwatch::exporter::LogLevel, std::string_view line) {
    std::cerr << line << "\n";
  };
  std::optional<poolwatch::exporter::Exporter> exporter;
  try {
    exporter.emplace(options);
    exporter->Attach(simulation);
    exporter->Attach(mixer);
    exporter->Start();
  } catch (const std::exception& e) {
    std::cerr << "poolwatch_example_game_server: " << e.what() << "\n";
    return 1;
  }

  Render render;
  Physics physics;
  Audio audio;
  poolwatch::SteadyClock clock;
  poolwatch::SimulationLoop simulation_loop(clock, simulation, [&](std::uint64_t frame) {
    render.Frame(render_pool, frame);
    physics.Frame(physics_pool, frame);
    MaybeLeak(render_pool, flags.leak == "render");
    MaybeLeak(physics_pool, flags.leak == "physics");
  });
  poolwatch::SimulationLoop audio_loop(clock, mixer, [&](std::uint64_t frame) {
    audio.Frame(audio_pool, frame);
    MaybeLeak(audio_pool, flags.leak == "audio");
  });
  std::jthread simulation_thread([&](const std::stop_token& stop) { simulation_loop.Run(stop); });
  std::jthread audio_thread([&](const std::stop_token& stop) { audio_loop.Run(stop); });

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::cerr << "received " << (signal == SIGTERM ? "SIGTERM" : "SIGINT") << ", stopping\n";
  exporter->Stop();
  simulation_thread.request_stop();
  audio_thread.request_stop();
  simulation_thread.join();
  audio_thread.join();
  return 0;
}
