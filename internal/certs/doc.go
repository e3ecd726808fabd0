// Package certs provides the TLS certificate material of the proxy role: a
// serving certificate store and a client-CA pool, both of which reload from
// PEM files without a restart.
//
// A [Store] serves the current certificate through [Store.GetCertificate]
// from an atomic pointer, so a handshake never waits on a reload. Its source
// is either a PEM certificate chain plus key on disk, or (when no file is
// given) a self-signed ECDSA P-256 certificate generated in memory for
// development.
//
// File-backed material ([Store] and [CAPool]) is reloaded on:
//   - fsnotify events on the directories that contain the files (and on the
//     directories their symlinks resolve to), which catches editors that
//     rename over a file and Kubernetes Secret volumes that atomically swap a
//     "..data" symlink; watches are re-added when a directory is recreated;
//   - a periodic content check (default one minute), for file systems where
//     inotify does not work;
//   - an explicit Reload call (the cmd layer calls it on SIGHUP).
//
// All triggers feed one loop through a coalescing one-slot channel; bursts of
// file events are debounced (100ms by default). A new pair that cannot be
// used (empty, unparsable, key/cert mismatch, already expired while the
// current one is valid, missing files) is refused with an error log and the
// metric outrigger_cert_reloads_total{result="failure"}; the previous good
// material keeps serving.
//
// The package does not obtain certificates (no ACME yet), does not check
// revocation, and does not build the proxy's tls.Config beyond the client-CA
// hook of [CAPool.ServerConfig].
package certs
