// Package deploy holds Outrigger's deployment artefacts — the container
// image (Dockerfile), Kubernetes manifests with a kustomize base and overlays,
// a Compose file, a Grafana dashboard and Prometheus alerts — and, in its
// tests, the checks CI runs on them: every manifest decodes strictly into its
// Kubernetes API type, kustomize builds every overlay, the binary's own flag
// parsers accept every container's arguments and environment, promtool
// accepts the rules, and every metric the dashboard and alerts use exists in
// the code.
//
// It contains no code that the binary uses and deploys nothing by itself.
package deploy
