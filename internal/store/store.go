// Package store keeps versioned configurations: every push becomes an
// immutable, monotonically numbered version of a named config, with its
// content type, SHA-256, author and time. It also keeps per-config JSON
// Schemas and the rollout status that sidecars report.
//
// Two implementations satisfy Store: an embedded bbolt file (the default,
// every acknowledged write fsynced) and etcd (several API replicas share one
// cluster and wake each other's watchers). Both pass the same contract suite.
//
// The store does not validate content and does not fan out to HTTP watchers:
// validation belongs to the config API, fan-out to its watch hub, which
// consumes one Changes stream per process.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every implementation returns (wrapped with %w and the config name).
var (
	// ErrNotFound: the config, version or schema does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-swap (PutOptions.IfMatch) saw another version.
	ErrConflict = errors.New("version conflict")
)

// Version is one immutable version of a config. Data is nil in History and
// List results.
type Version struct {
	Name        string    `json:"name"`
	Version     int64     `json:"version"`
	ContentType string    `json:"content_type"`
	SHA256      string    `json:"sha256"` // lowercase hex of Data
	Size        int64     `json:"size"`
	Author      string    `json:"author,omitempty"`
	Created     time.Time `json:"created"`
	Data        []byte    `json:"-"`
}

// PutOptions control Store.Put.
type PutOptions struct {
	ContentType string
	Author      string
	// IfMatch, when non-nil, makes the put a compare-and-swap: it succeeds
	// only if the latest version equals *IfMatch (0 = the config must not
	// exist yet); otherwise ErrConflict.
	IfMatch *int64
}

// SidecarStatus is what one sidecar reports about one config.
type SidecarStatus struct {
	Sidecar string    `json:"sidecar"`
	Version int64     `json:"version"`
	Outcome string    `json:"outcome"` // applied | rejected | rolled_back | failed
	Error   string    `json:"error,omitempty"`
	Time    time.Time `json:"time"`
}

// Change says that config Name now has latest version Version.
type Change struct {
	Name    string
	Version int64
}

// Store is the versioned config storage. Implementations are safe for
// concurrent use.
type Store interface {
	// Put stores data as a new version. If data is byte-identical to the
	// latest version (same SHA-256 and content type), nothing is written and
	// the latest version is returned with created=false.
	Put(ctx context.Context, name string, data []byte, opts PutOptions) (v Version, created bool, err error)
	// Get returns version n of name, or the latest when n == 0.
	Get(ctx context.Context, name string, n int64) (Version, error)
	// History returns all versions of name, oldest first, without Data.
	History(ctx context.Context, name string) ([]Version, error)
	// List returns the latest version of every config, sorted by name, without Data.
	List(ctx context.Context) ([]Version, error)

	PutSchema(ctx context.Context, name string, schema []byte) error
	// GetSchema returns ErrNotFound when name has no schema.
	GetSchema(ctx context.Context, name string) ([]byte, error)

	SetStatus(ctx context.Context, name string, st SidecarStatus) error
	// Statuses returns every sidecar's last report for name, sorted by sidecar.
	Statuses(ctx context.Context, name string) ([]SidecarStatus, error)

	// Changes streams a Change for every new version of any config, including
	// versions written by other processes sharing the backend (etcd), until
	// ctx ends. The channel is closed when ctx ends or the stream breaks; the
	// consumer then re-subscribes and re-reads what it cares about. One
	// consumer per process (the config API's watch hub) is expected.
	Changes(ctx context.Context) (<-chan Change, error)

	Close() error
}
