package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultEtcdPrefix is where Outrigger keeps its keys when EtcdOptions.Prefix
// is empty.
const DefaultEtcdPrefix = "/outrigger/"

// DefaultEtcdDialTimeout bounds OpenEtcd's first contact with the cluster.
const DefaultEtcdDialTimeout = 5 * time.Second

// maxPutAttempts bounds the optimistic retry loop of an unconditional Put
// that keeps losing races against other writers of the same name.
const maxPutAttempts = 64

// EtcdOptions configure OpenEtcd.
type EtcdOptions struct {
	// Endpoints are client URLs, e.g. "https://10.0.0.1:2379".
	Endpoints []string
	// Prefix namespaces every key (default DefaultEtcdPrefix; a missing
	// trailing '/' is added).
	Prefix string
	// DialTimeout bounds connecting and the reachability check in OpenEtcd
	// (default DefaultEtcdDialTimeout).
	DialTimeout time.Duration
	// TLS, when non-nil, is used for client connections.
	TLS *tls.Config
	// Username and Password enable etcd authentication when Username != "".
	Username, Password string
	// Logger receives store events and the etcd client's warnings (default:
	// discard).
	Logger *slog.Logger
	// Now is the clock stamping Version.Created (default time.Now).
	Now func() time.Time
}

// Etcd is the Store shared by several config API replicas through one etcd
// cluster.
//
// Key layout under the prefix P (names are opaque bytes without '/'):
//
//	P latest/<name>                    JSON Version (no data) of the latest version
//	P configs/<name>/meta/<%020d ver>  JSON Version (no data) of every version
//	P configs/<name>/data/<%020d ver>  raw content of every version
//	P schemas/<name>                   raw schema
//	P status/<name>/<sidecar>          JSON SidecarStatus
//
// A Put is one transaction guarded by the latest key's ModRevision, which
// gives compare-and-swap and gap-free, never-reused version numbers across
// replicas. Changes watches P latest/ only, so watchers never receive content.
//
// Size: etcd rejects requests above its --max-request-bytes (default 1.5 MiB).
// A Put carries the content once plus two small records, so content up to
// 1 MiB fits the default; larger content needs a larger server limit.
type Etcd struct {
	c      *clientv3.Client
	prefix string
	log    *slog.Logger
	now    func() time.Time

	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed bool
}

var _ Store = (*Etcd)(nil)

// OpenEtcd connects to the cluster and checks that it answers within
// opts.DialTimeout.
func OpenEtcd(ctx context.Context, opts EtcdOptions) (*Etcd, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("store: --etcd: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultEtcdPrefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultEtcdDialTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		TLS:         opts.TLS,
		Username:    opts.Username,
		Password:    opts.Password,
		Logger:      zapToSlog(opts.Logger),
		Context:     context.WithoutCancel(ctx),
		// Content up to 1 MiB plus records must fit one request.
		MaxCallSendMsgSize: 4 << 20,
		// Keepalives detect a dead member so the client fails over.
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("store: --etcd %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	cctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	if _, err := c.Get(cctx, opts.Prefix+"latest/", clientv3.WithCountOnly()); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("store: --etcd %s: cluster not reachable within %v: %w", strings.Join(opts.Endpoints, ","), opts.DialTimeout, err)
	}
	opts.Logger.Info("store opened", "backend", "etcd", "endpoints", opts.Endpoints, "prefix", opts.Prefix)
	return &Etcd{c: c, prefix: opts.Prefix, log: opts.Logger, now: opts.Now, subs: make(map[*subscription]struct{})}, nil
}

// Client returns the underlying etcd client (for health checks).
func (s *Etcd) Client() *clientv3.Client { return s.c }

func (s *Etcd) latestKey(name string) string { return s.prefix + "latest/" + name }
func (s *Etcd) metaPrefix(name string) string {
	return s.prefix + "configs/" + name + "/meta/"
}
func (s *Etcd) metaKey(name string, n int64) string {
	return fmt.Sprintf("%s%020d", s.metaPrefix(name), n)
}
func (s *Etcd) dataKey(name string, n int64) string {
	return fmt.Sprintf("%sconfigs/%s/data/%020d", s.prefix, name, n)
}
func (s *Etcd) schemaKey(name string) string { return s.prefix + "schemas/" + name }
func (s *Etcd) statusPrefix(name string) string {
	return s.prefix + "status/" + name + "/"
}

// Put implements Store.
func (s *Etcd) Put(ctx context.Context, name string, data []byte, opts PutOptions) (Version, bool, error) {
	if err := checkName("config", name); err != nil {
		return Version{}, false, err
	}
	if err := checkPutOptions(name, opts); err != nil {
		return Version{}, false, err
	}
	lk := s.latestKey(name)
	for attempt := 1; attempt <= maxPutAttempts; attempt++ {
		resp, err := s.c.Get(ctx, lk)
		if err != nil {
			return Version{}, false, fmt.Errorf("store: put config %q: read latest: %w", name, err)
		}
		var (
			latest Version
			rev    int64 // ModRevision of the latest key; 0 = absent
		)
		if len(resp.Kvs) > 0 {
			kv := resp.Kvs[0]
			if latest, err = decodeMeta(lk, name, kv.Value); err != nil {
				return Version{}, false, err
			}
			rev = kv.ModRevision
		}
		if opts.IfMatch != nil && *opts.IfMatch != latest.Version {
			return Version{}, false, fmt.Errorf("store: put config %q: if-match %d, latest is %d: %w", name, *opts.IfMatch, latest.Version, ErrConflict)
		}
		if rev != 0 && sameContent(latest, data, opts) {
			latest.Data = data
			return latest, false, nil
		}
		v := newVersion(name, latest.Version+1, data, opts, s.now())
		meta, err := json.Marshal(v)
		if err != nil {
			return Version{}, false, fmt.Errorf("store: put config %q: %w", name, err)
		}
		mk := s.metaKey(name, v.Version)
		tr, err := s.c.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(lk), "=", rev),
			// Never overwrite an existing version, even if someone deleted
			// the latest key by hand.
			clientv3.Compare(clientv3.CreateRevision(mk), "=", 0),
		).Then(
			clientv3.OpPut(s.dataKey(name, v.Version), string(data)),
			clientv3.OpPut(mk, string(meta)),
			clientv3.OpPut(lk, string(meta)),
		).Commit()
		if err != nil {
			return Version{}, false, fmt.Errorf("store: put config %q version %d: %w", name, v.Version, err)
		}
		if tr.Succeeded {
			v.Data = data
			return v, true, nil
		}
		if opts.IfMatch != nil {
			// Someone committed after our read: latest is now past *IfMatch.
			return Version{}, false, fmt.Errorf("store: put config %q: if-match %d, latest changed concurrently: %w", name, *opts.IfMatch, ErrConflict)
		}
		// Lost a race to another writer: back off a little (jittered, so
		// contenders spread out) and retry on the new latest.
		d := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 20))))
		select {
		case <-ctx.Done():
			return Version{}, false, fmt.Errorf("store: put config %q: %w", name, ctx.Err())
		case <-time.After(d):
		}
	}
	return Version{}, false, fmt.Errorf("store: put config %q: still contended after %d attempts", name, maxPutAttempts)
}

// Get implements Store.
func (s *Etcd) Get(ctx context.Context, name string, n int64) (Version, error) {
	if err := checkName("config", name); err != nil {
		return Version{}, err
	}
	if n < 0 {
		return Version{}, fmt.Errorf("store: get config %q version %d: %w", name, n, ErrNotFound)
	}
	if n == 0 {
		resp, err := s.c.Get(ctx, s.latestKey(name))
		if err != nil {
			return Version{}, fmt.Errorf("store: get config %q: %w", name, err)
		}
		if len(resp.Kvs) == 0 {
			return Version{}, fmt.Errorf("store: get config %q: %w", name, ErrNotFound)
		}
		latest, err := decodeMeta(s.latestKey(name), name, resp.Kvs[0].Value)
		if err != nil {
			return Version{}, err
		}
		n = latest.Version
	}
	// Versions are immutable, so reading one after the latest pointer is
	// consistent; one Txn reads meta and data atomically in one round trip.
	mk, dk := s.metaKey(name, n), s.dataKey(name, n)
	tr, err := s.c.Txn(ctx).Then(clientv3.OpGet(mk), clientv3.OpGet(dk)).Commit()
	if err != nil {
		return Version{}, fmt.Errorf("store: get config %q version %d: %w", name, n, err)
	}
	mr, dr := tr.Responses[0].GetResponseRange(), tr.Responses[1].GetResponseRange()
	if len(mr.Kvs) == 0 || len(dr.Kvs) == 0 {
		return Version{}, fmt.Errorf("store: get config %q version %d: %w", name, n, ErrNotFound)
	}
	v, err := decodeMeta(mk, name, mr.Kvs[0].Value)
	if err != nil {
		return Version{}, err
	}
	v.Data = dr.Kvs[0].Value
	if v.Data == nil {
		v.Data = []byte{}
	}
	return v, nil
}

// History implements Store.
func (s *Etcd) History(ctx context.Context, name string) ([]Version, error) {
	if err := checkName("config", name); err != nil {
		return nil, err
	}
	resp, err := s.c.Get(ctx, s.metaPrefix(name), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("store: history of config %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("store: history of config %q: %w", name, ErrNotFound)
	}
	out := make([]Version, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		v, err := decodeMeta(string(kv.Key), name, kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// List implements Store.
func (s *Etcd) List(ctx context.Context) ([]Version, error) {
	lp := s.prefix + "latest/"
	resp, err := s.c.Get(ctx, lp, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("store: list configs: %w", err)
	}
	out := make([]Version, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		v, err := decodeMeta(string(kv.Key), strings.TrimPrefix(string(kv.Key), lp), kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// PutSchema implements Store.
func (s *Etcd) PutSchema(ctx context.Context, name string, schema []byte) error {
	if err := checkName("schema", name); err != nil {
		return err
	}
	if _, err := s.c.Put(ctx, s.schemaKey(name), string(schema)); err != nil {
		return fmt.Errorf("store: put schema %q: %w", name, err)
	}
	return nil
}

// GetSchema implements Store.
func (s *Etcd) GetSchema(ctx context.Context, name string) ([]byte, error) {
	if err := checkName("schema", name); err != nil {
		return nil, err
	}
	resp, err := s.c.Get(ctx, s.schemaKey(name))
	if err != nil {
		return nil, fmt.Errorf("store: get schema %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("store: get schema %q: %w", name, ErrNotFound)
	}
	if resp.Kvs[0].Value == nil {
		return []byte{}, nil
	}
	return resp.Kvs[0].Value, nil
}

// SetStatus implements Store.
func (s *Etcd) SetStatus(ctx context.Context, name string, st SidecarStatus) error {
	if err := checkName("config", name); err != nil {
		return err
	}
	if err := checkSidecar(name, st.Sidecar); err != nil {
		return err
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("store: set status of config %q sidecar %q: %w", name, st.Sidecar, err)
	}
	if _, err := s.c.Put(ctx, s.statusPrefix(name)+st.Sidecar, string(raw)); err != nil {
		return fmt.Errorf("store: set status of config %q sidecar %q: %w", name, st.Sidecar, err)
	}
	return nil
}

// Statuses implements Store. A config nobody reported on yields an empty
// slice, not ErrNotFound.
func (s *Etcd) Statuses(ctx context.Context, name string) ([]SidecarStatus, error) {
	if err := checkName("config", name); err != nil {
		return nil, err
	}
	sp := s.statusPrefix(name)
	resp, err := s.c.Get(ctx, sp, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("store: statuses of config %q: %w", name, err)
	}
	out := make([]SidecarStatus, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		st, err := decodeStatus(string(kv.Key), strings.TrimPrefix(string(kv.Key), sp), kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Changes implements Store with an etcd watch on the latest/ keys, so it
// reports versions written by any replica. The watch is established before
// Changes returns. It requires a leader: a member cut off from the quorum
// ends the stream instead of going silent. The stream also ends on
// compaction or any watch error; it is not resumed internally — the consumer
// re-subscribes and re-reads, which cannot miss a version. Delivery to a slow
// consumer coalesces versions of one name into the newest.
func (s *Etcd) Changes(ctx context.Context) (<-chan Change, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("store: etcd changes: %w", errClosed)
	}
	sub := newSubscription()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()

	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	lp := s.prefix + "latest/"
	wch := s.c.Watch(wctx, lp, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	fail := func(err error) (<-chan Change, error) {
		cancel()
		s.unsubscribe(sub)
		return nil, fmt.Errorf("store: etcd watch %q: %w", lp, err)
	}
	select {
	case resp, ok := <-wch:
		if !ok {
			return fail(errors.New("watch closed before it was created"))
		}
		if err := resp.Err(); err != nil {
			return fail(err)
		}
		if !resp.Created {
			return fail(errors.New("first watch response is not the creation notice"))
		}
	case <-ctx.Done():
		return fail(ctx.Err())
	}

	go sub.forward(wctx.Done())
	go func() {
		defer s.unsubscribe(sub)
		defer cancel()
		for {
			select {
			case <-sub.done:
				return
			case resp, ok := <-wch:
				if !ok {
					if ctx.Err() == nil {
						s.log.Warn("store: etcd watch ended; closing changes stream", "prefix", lp)
					}
					return
				}
				if err := resp.Err(); err != nil {
					s.log.Warn("store: etcd watch failed; closing changes stream", "prefix", lp, "err", err)
					return
				}
				for _, ev := range resp.Events {
					if ev.Type != clientv3.EventTypePut {
						continue
					}
					key := string(ev.Kv.Key)
					name := strings.TrimPrefix(key, lp)
					v, err := decodeMeta(key, name, ev.Kv.Value)
					if err != nil {
						s.log.Warn("store: ignoring undecodable latest record", "key", key, "err", err)
						continue
					}
					sub.publish(Change{Name: name, Version: v.Version})
				}
			}
		}
	}()
	return sub.out, nil
}

func (s *Etcd) unsubscribe(sub *subscription) {
	sub.stop()
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// Close ends every Changes stream and closes the client. Idempotent.
func (s *Etcd) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for sub := range s.subs {
		sub.stop()
	}
	s.mu.Unlock()
	if err := s.c.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: close etcd client: %w", err)
	}
	return nil
}
