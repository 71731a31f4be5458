#!/usr/bin/env bash
# Prints deploy/kubernetes/prometheusrule.yaml: a PrometheusRule whose spec holds the groups of
# config/prometheus/poolwatch.rules.yml, indented under `spec:`.
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'YAML'
# The rules of config/prometheus/poolwatch.rules.yml for the Prometheus Operator. Generated:
#   scripts/gen-prometheusrule.sh > deploy/kubernetes/prometheusrule.yaml
# A test fails when its groups differ from the rule file's.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: poolwatch
  labels:
    app.kubernetes.io/name: poolwatchd
spec:
YAML
sed -n '/^groups:/,$p' config/prometheus/poolwatch.rules.yml | sed 's/^/  /'
