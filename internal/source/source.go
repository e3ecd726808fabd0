// Package source reads configurations from where they live: the Outrigger
// config API (long-poll watch), etcd (watch with revision resume) and files
// (a mounted Kubernetes ConfigMap or any path). It only reads; validating,
// writing and reloading belong to the sync role.
package source

import (
	"context"
	"time"
)

// Config is one version of a configuration as a source sees it.
type Config struct {
	// Version identifies the content: the config API's version number, the
	// etcd mod revision, or a SHA-256 prefix for files. Opaque to callers;
	// equal Version means equal content.
	Version string
	// Data is the single-file content (nil for a bundle).
	Data []byte
	// Files is set instead of Data for a bundle (several files, one version):
	// relative file name -> content.
	Files map[string][]byte
	// ContentType as the source declared it ("" when unknown).
	ContentType string
	// Fetched is when the source read it.
	Fetched time.Time
}

// Source is what every implementation returns from Open.
type Source interface {
	// Get returns the current version (for --once and periodic resync).
	Get(ctx context.Context) (Config, error)
	// Watch blocks until the source holds a version different from after
	// ("" = any), then returns it; or returns ctx.Err() / a transport error.
	// Callers retry errors with backoff; Watch never returns an empty Config
	// without an error.
	Watch(ctx context.Context, after string) (Config, error)
	// String names the source for logs without secrets (no tokens, no userinfo).
	String() string
	Close() error
}

// Status is what a sidecar reports after an apply (config API sources only).
type Status struct {
	Sidecar string    `json:"sidecar"`
	Version string    `json:"version"`
	Outcome string    `json:"outcome"` // applied | rejected | rolled_back | failed
	Error   string    `json:"error,omitempty"`
	Time    time.Time `json:"time"`
}

// Reporter is implemented by sources that accept status reports.
type Reporter interface {
	Report(ctx context.Context, st Status) error
}
