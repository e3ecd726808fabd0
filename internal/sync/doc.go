// Package sync is the sync role: it keeps an application's configuration
// file in step with a source (the config API, etcd, or a mounted file) and
// applies every new version as one transaction:
//
//	validate (--format, then --check CMD on a candidate file)
//	→ write atomically (keeping backups)
//	→ reload (signal, HTTP hook or command; retried with backoff)
//	→ verify (--health must answer 2xx)
//	→ commit, or with --rollback: restore the previous file, reload, verify,
//	  and mark the version rejected.
//
// A version rejected by validation or rolled back is never retried until a
// newer version arrives. Change notices (the source's watch, the --resync
// ticker, Resync on SIGHUP) feed one coalescing 1-slot channel, so a burst
// of versions causes few applies that end on the newest; --min-reload-interval
// bounds how often the application is reloaded. Source errors are retried
// with exponential backoff and jitter and never empty the file. If --dest
// already exists at start it is the baseline: identical content is not
// rewritten and the application is not reloaded.
//
// The package does not fetch configs itself (internal/source does), parse
// formats (internal/format), write files (internal/atomicfile) or signal
// processes (internal/reload); it does not serve HTTP: the admin server
// shows Ready and Status.
package sync
