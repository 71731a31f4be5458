#pragma once

#include <algorithm>
#include <array>
#include <string_view>

namespace poolwatch::exporter {

// The exporter's endpoints, in one table: what HttpHandler routes, the `handler` label that
// HttpMetrics counts an answer under, and which ones answer without credentials. A new endpoint
// added here is routed, counted and guarded alike.
enum class Endpoint {
  kLanding,
  kMetrics,
  kHealthz,
  kReadyz,
  kDebug,
  kDebugHealth,
  kDebugMark,
  kOther
};

struct EndpointRoute {
  Endpoint endpoint;
  std::string_view path;
  // Liveness and readiness answer without credentials, so that probes (the container
  // HEALTHCHECK, Kubernetes httpGet probes) need no password: they reveal "ok" or why not,
  // nothing else. Every other endpoint requires them when users are set.
  bool unauthenticated = false;
};

inline constexpr std::array<EndpointRoute, 7> kEndpointRoutes = {{
    {Endpoint::kLanding, "/"},
    {Endpoint::kMetrics, "/metrics"},
    {Endpoint::kHealthz, "/healthz", true},
    {Endpoint::kReadyz, "/readyz", true},
    {Endpoint::kDebug, "/debug"},
    {Endpoint::kDebugHealth, "/debug/health"},
    {Endpoint::kDebugMark, "/debug/mark"},
}};

// The route a request's target (origin form, query included) asks for by its path, exactly;
// none for a path not served, or for "" (a request refused before its target was read).
constexpr const EndpointRoute* RouteOf(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  const auto* route = std::ranges::find(kEndpointRoutes, path, &EndpointRoute::path);
  return route != kEndpointRoutes.end() ? route : nullptr;
}

constexpr Endpoint EndpointOf(std::string_view target) {
  const EndpointRoute* route = RouteOf(target);
  return route != nullptr ? route->endpoint : Endpoint::kOther;
}

// The `handler` label: the endpoint's path, "other" for any other target.
constexpr std::string_view HandlerLabelOf(std::string_view target) {
  const EndpointRoute* route = RouteOf(target);
  return route != nullptr ? route->path : "other";
}

constexpr bool IsUnauthenticated(std::string_view target) {
  const EndpointRoute* route = RouteOf(target);
  return route != nullptr && route->unauthenticated;
}

}  // namespace poolwatch::exporter
