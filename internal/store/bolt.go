package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// BoltFile is the database file name inside the --data directory.
const BoltFile = "outrigger.db"

// DefaultLockTimeout is how long OpenBolt waits for another process to
// release the database file lock.
const DefaultLockTimeout = 2 * time.Second

var errClosed = errors.New("store: closed")

// Bucket layout (all keys are raw bytes, names opaque):
//
//	configs/<name>/latest            JSON Version (no data) of the latest version
//	configs/<name>/meta/<be uint64>  JSON Version (no data) of every version
//	configs/<name>/data/<be uint64>  raw content of every version
//	schemas/<name>                   raw schema
//	status/<name>/<sidecar>          JSON SidecarStatus
var (
	bktConfigs = []byte("configs")
	bktSchemas = []byte("schemas")
	bktStatus  = []byte("status")
	bktMeta    = []byte("meta")
	bktData    = []byte("data")
	keyLatest  = []byte("latest")
)

// BoltOptions configure OpenBolt.
type BoltOptions struct {
	// LockTimeout bounds the wait for the file lock held by another process
	// (default DefaultLockTimeout).
	LockTimeout time.Duration
	// Logger receives operational events (default: discard).
	Logger *slog.Logger
	// Now is the clock stamping Version.Created (default time.Now).
	Now func() time.Time
}

// Bolt is the embedded Store: one bbolt file, one writer process. Every
// acknowledged write has been fsynced (bbolt commits with fdatasync).
// Changes reports only versions written through this *Bolt.
type Bolt struct {
	db    *bolt.DB
	path  string
	log   *slog.Logger
	now   func() time.Time
	bcast broadcaster

	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating if needed) dir/outrigger.db. dir is created 0700
// and the file 0600. If another process holds the file, it fails after
// opts.LockTimeout with an error naming --data.
func OpenBolt(dir string, opts BoltOptions) (*Bolt, error) {
	if dir == "" {
		return nil, errors.New("store: --data: directory is empty")
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: --data %q: create directory: %w", dir, err)
	}
	path := filepath.Join(dir, BoltFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: --data %q: %s is locked by another process (waited %v; is another \"outrigger config serve\" using this directory?): %w", dir, path, opts.LockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: --data %q: open %s: %w", dir, path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktConfigs, bktSchemas, bktStatus} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: --data %q: initialise %s: %w", dir, path, err)
	}
	opts.Logger.Info("store opened", "backend", "bolt", "path", path)
	return &Bolt{db: db, path: path, log: opts.Logger, now: opts.Now}, nil
}

// update runs fn in a write transaction. Errors from fn are returned as they
// are (they already name their input); errors of bbolt itself (closed
// database, failed commit or fsync) are wrapped with what.
func (b *Bolt) update(what string, fn func(*bolt.Tx) error) error {
	var fnErr error
	err := b.db.Update(func(tx *bolt.Tx) error { fnErr = fn(tx); return fnErr })
	if err != nil && err != fnErr {
		return fmt.Errorf("store: %s in %s: %w", what, b.path, err)
	}
	return err
}

// view is update's read-only counterpart.
func (b *Bolt) view(what string, fn func(*bolt.Tx) error) error {
	var fnErr error
	err := b.db.View(func(tx *bolt.Tx) error { fnErr = fn(tx); return fnErr })
	if err != nil && err != fnErr {
		return fmt.Errorf("store: %s in %s: %w", what, b.path, err)
	}
	return err
}

// Path returns the database file path.
func (b *Bolt) Path() string { return b.path }

func u64key(n int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(n))
	return k[:]
}

// configBucket returns configs/<name>, or nil.
func configBucket(tx *bolt.Tx, name string) *bolt.Bucket {
	return tx.Bucket(bktConfigs).Bucket([]byte(name))
}

func readLatest(bk *bolt.Bucket, name string) (Version, bool, error) {
	if bk == nil {
		return Version{}, false, nil
	}
	raw := bk.Get(keyLatest)
	if raw == nil {
		return Version{}, false, nil
	}
	v, err := decodeMeta("configs/"+name+"/latest", name, raw)
	if err != nil {
		return Version{}, false, err
	}
	return v, true, nil
}

// Put implements Store. The CAS check, dedup and version allocation happen
// inside one write transaction, so concurrent Puts serialise correctly.
func (b *Bolt) Put(ctx context.Context, name string, data []byte, opts PutOptions) (Version, bool, error) {
	if err := checkName("config", name); err != nil {
		return Version{}, false, err
	}
	if err := checkPutOptions(name, opts); err != nil {
		return Version{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return Version{}, false, fmt.Errorf("store: put config %q: %w", name, err)
	}
	var (
		out     Version
		created bool
	)
	err := b.update(fmt.Sprintf("put config %q", name), func(tx *bolt.Tx) error {
		bk := configBucket(tx, name)
		latest, exists, err := readLatest(bk, name)
		if err != nil {
			return err
		}
		if opts.IfMatch != nil && *opts.IfMatch != latest.Version {
			return fmt.Errorf("store: put config %q: if-match %d, latest is %d: %w", name, *opts.IfMatch, latest.Version, ErrConflict)
		}
		if exists && sameContent(latest, data, opts) {
			out = latest
			return nil
		}
		if bk == nil {
			if bk, err = tx.Bucket(bktConfigs).CreateBucket([]byte(name)); err != nil {
				return fmt.Errorf("store: put config %q: create bucket: %w", name, err)
			}
		}
		metaB, err := bk.CreateBucketIfNotExists(bktMeta)
		if err != nil {
			return fmt.Errorf("store: put config %q: %w", name, err)
		}
		dataB, err := bk.CreateBucketIfNotExists(bktData)
		if err != nil {
			return fmt.Errorf("store: put config %q: %w", name, err)
		}
		v := newVersion(name, latest.Version+1, data, opts, b.now())
		k := u64key(v.Version)
		if metaB.Get(k) != nil {
			// Unreachable unless the file was edited: never reuse a number.
			return fmt.Errorf("store: put config %q: version %d already exists but latest is %d", name, v.Version, latest.Version)
		}
		meta, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("store: put config %q: %w", name, err)
		}
		if err := metaB.Put(k, meta); err != nil {
			return fmt.Errorf("store: put config %q version %d: %w", name, v.Version, err)
		}
		if err := dataB.Put(k, data); err != nil {
			return fmt.Errorf("store: put config %q version %d data: %w", name, v.Version, err)
		}
		if err := bk.Put(keyLatest, meta); err != nil {
			return fmt.Errorf("store: put config %q latest: %w", name, err)
		}
		out, created = v, true
		return nil
	})
	if err != nil {
		return Version{}, false, err
	}
	out.Data = data
	if created {
		// After the commit (and its fsync) returned: the change is durable.
		b.bcast.publish(Change{Name: name, Version: out.Version})
	}
	return out, created, nil
}

// Get implements Store.
func (b *Bolt) Get(ctx context.Context, name string, n int64) (Version, error) {
	if err := checkName("config", name); err != nil {
		return Version{}, err
	}
	if n < 0 {
		return Version{}, fmt.Errorf("store: get config %q version %d: %w", name, n, ErrNotFound)
	}
	if err := ctx.Err(); err != nil {
		return Version{}, fmt.Errorf("store: get config %q: %w", name, err)
	}
	var out Version
	err := b.view(fmt.Sprintf("get config %q", name), func(tx *bolt.Tx) error {
		bk := configBucket(tx, name)
		if bk == nil {
			return fmt.Errorf("store: get config %q: %w", name, ErrNotFound)
		}
		if n == 0 {
			latest, ok, err := readLatest(bk, name)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("store: get config %q: %w", name, ErrNotFound)
			}
			n = latest.Version
		}
		metaB, dataB := bk.Bucket(bktMeta), bk.Bucket(bktData)
		if metaB == nil || dataB == nil {
			return fmt.Errorf("store: get config %q version %d: %w", name, n, ErrNotFound)
		}
		k := u64key(n)
		raw, data := metaB.Get(k), dataB.Get(k)
		if raw == nil || data == nil {
			return fmt.Errorf("store: get config %q version %d: %w", name, n, ErrNotFound)
		}
		v, err := decodeMeta(fmt.Sprintf("configs/%s/meta/%d", name, n), name, raw)
		if err != nil {
			return err
		}
		v.Data = copyBytes(data) // bbolt memory is only valid inside the txn
		out = v
		return nil
	})
	return out, err
}

// History implements Store.
func (b *Bolt) History(ctx context.Context, name string) ([]Version, error) {
	if err := checkName("config", name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: history of config %q: %w", name, err)
	}
	var out []Version
	err := b.view(fmt.Sprintf("history of config %q", name), func(tx *bolt.Tx) error {
		bk := configBucket(tx, name)
		if bk == nil || bk.Bucket(bktMeta) == nil {
			return fmt.Errorf("store: history of config %q: %w", name, ErrNotFound)
		}
		// Big-endian keys iterate in version order.
		return bk.Bucket(bktMeta).ForEach(func(k, raw []byte) error {
			v, err := decodeMeta(fmt.Sprintf("configs/%s/meta/%x", name, k), name, raw)
			if err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// List implements Store.
func (b *Bolt) List(ctx context.Context) ([]Version, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: list configs: %w", err)
	}
	out := []Version{}
	err := b.view("list configs", func(tx *bolt.Tx) error {
		c := tx.Bucket(bktConfigs).Cursor()
		// Bucket keys iterate in byte order, which is Go string order.
		for k, val := c.First(); k != nil; k, val = c.Next() {
			if val != nil { // not a bucket
				continue
			}
			v, ok, err := readLatest(tx.Bucket(bktConfigs).Bucket(k), string(k))
			if err != nil {
				return err
			}
			if ok {
				out = append(out, v)
			}
		}
		return nil
	})
	return out, err
}

// PutSchema implements Store.
func (b *Bolt) PutSchema(ctx context.Context, name string, schema []byte) error {
	if err := checkName("schema", name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: put schema %q: %w", name, err)
	}
	return b.update(fmt.Sprintf("put schema %q", name), func(tx *bolt.Tx) error {
		if err := tx.Bucket(bktSchemas).Put([]byte(name), schema); err != nil {
			return fmt.Errorf("store: put schema %q: %w", name, err)
		}
		return nil
	})
}

// GetSchema implements Store.
func (b *Bolt) GetSchema(ctx context.Context, name string) ([]byte, error) {
	if err := checkName("schema", name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: get schema %q: %w", name, err)
	}
	var out []byte
	err := b.view(fmt.Sprintf("get schema %q", name), func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktSchemas).Get([]byte(name))
		if raw == nil {
			return fmt.Errorf("store: get schema %q: %w", name, ErrNotFound)
		}
		out = copyBytes(raw)
		return nil
	})
	return out, err
}

// SetStatus implements Store.
func (b *Bolt) SetStatus(ctx context.Context, name string, st SidecarStatus) error {
	if err := checkName("config", name); err != nil {
		return err
	}
	if err := checkSidecar(name, st.Sidecar); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: set status of config %q: %w", name, err)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("store: set status of config %q sidecar %q: %w", name, st.Sidecar, err)
	}
	return b.update(fmt.Sprintf("set status of config %q", name), func(tx *bolt.Tx) error {
		bk, err := tx.Bucket(bktStatus).CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return fmt.Errorf("store: set status of config %q: %w", name, err)
		}
		if err := bk.Put([]byte(st.Sidecar), raw); err != nil {
			return fmt.Errorf("store: set status of config %q sidecar %q: %w", name, st.Sidecar, err)
		}
		return nil
	})
}

// Statuses implements Store. A config nobody reported on yields an empty
// slice, not ErrNotFound.
func (b *Bolt) Statuses(ctx context.Context, name string) ([]SidecarStatus, error) {
	if err := checkName("config", name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: statuses of config %q: %w", name, err)
	}
	out := []SidecarStatus{}
	err := b.view(fmt.Sprintf("statuses of config %q", name), func(tx *bolt.Tx) error {
		bk := tx.Bucket(bktStatus).Bucket([]byte(name))
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, raw []byte) error {
			st, err := decodeStatus(fmt.Sprintf("status/%s/%s", name, k), string(k), raw)
			if err != nil {
				return err
			}
			out = append(out, st)
			return nil
		})
	})
	return out, err
}

// Changes implements Store. The subscription is registered before Changes
// returns, so every Put acknowledged afterwards is reported. Delivery never
// blocks Put: for a slow consumer, versions of one name coalesce into the
// newest.
func (b *Bolt) Changes(ctx context.Context) (<-chan Change, error) {
	s, err := b.bcast.subscribe(ctx.Done())
	if err != nil {
		return nil, fmt.Errorf("store: changes of %s: %w", b.path, err)
	}
	return s.out, nil
}

// Close ends every Changes stream and closes the file (releasing its lock).
// Idempotent.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() {
		b.bcast.close()
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("store: close %s: %w", b.path, err)
		}
	})
	return b.closeErr
}
