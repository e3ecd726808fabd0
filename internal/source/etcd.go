package source

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Timing defaults of the etcd source; each source copies them into fields
// so tests can shorten them.
const (
	// defaultProgressInterval is how often an idle watch asks etcd for a
	// progress notification; a watch that hears nothing (no event, no
	// progress) for 3 intervals is declared dead and Watch returns an error,
	// so a cut connection never leaves the sidecar waiting forever.
	defaultProgressInterval = 10 * time.Second
	// defaultRequestTimeout bounds one Get.
	defaultRequestTimeout = 10 * time.Second
)

// etcdSource reads one key, or every key under a prefix (Bundle).
//
// Versions: a single key's Version is its ModRevision in decimal. A
// bundle's Version is the content hash of all its files (like the file
// source), because no single revision describes a prefix: the highest
// ModRevision does not change when a key is deleted, and the response
// header's revision changes on every write anywhere in etcd. The source
// remembers the etcd revision at which it last read each bundle version, so
// a Watch resumes from there and neither misses nor replays a change.
type etcdSource struct {
	target   etcdTarget
	bundle   bool
	prefix   string // bundle: the key with a trailing "/"
	tls      *tls.Config
	log      *slog.Logger
	progress time.Duration
	timeout  time.Duration

	mu     sync.Mutex
	cli    *clientv3.Client
	closed bool
	// resume remembers where the last Watch ended, for the next one:
	// a bundle version's read revision, or a deletion already reported.
	resume etcdResume
}

type etcdResume struct {
	after string // the version Watch was called with / returned
	rev   int64  // etcd revision up to which that state is known
	gone  bool   // the key (or every key of the bundle) is deleted, or held an empty value, and that was reported
}

func openEtcd(rawURL string, opts Options) (*etcdSource, error) {
	t, err := parseEtcdURL(rawURL)
	if err != nil {
		return nil, err
	}
	s := &etcdSource{
		target:   t,
		bundle:   opts.Bundle,
		log:      opts.Logger,
		progress: defaultProgressInterval,
		timeout:  defaultRequestTimeout,
	}
	if s.bundle {
		s.prefix = t.key
		if !strings.HasSuffix(s.prefix, "/") {
			s.prefix += "/"
		}
	}
	if t.tls || opts.CAFile != "" || opts.ClientCert != "" {
		if !t.tls {
			return nil, fmt.Errorf("--source %q: TLS options need an etcds:// URL", s.String())
		}
		if s.tls, err = tlsConfig(opts); err != nil {
			return nil, fmt.Errorf("--source %q: %w", s.String(), err)
		}
	}
	return s, nil
}

// String names the source without credentials.
func (s *etcdSource) String() string {
	scheme := "etcd"
	if s.target.tls {
		scheme = "etcds"
	}
	hosts := make([]string, len(s.target.endpoints))
	for i, ep := range s.target.endpoints {
		_, hosts[i], _ = strings.Cut(ep, "://")
	}
	return scheme + "://" + strings.Join(hosts, ",") + "/" + s.target.key
}

// client returns the etcd client, creating it on first use: Open never dials.
func (s *etcdSource) client() (*clientv3.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("source %s: closed", s.String())
	}
	if s.cli != nil {
		return s.cli, nil
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            s.target.endpoints,
		TLS:                  s.tls,
		Username:             s.target.user,
		Password:             s.target.password,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		MaxCallRecvMsgSize:   MaxBytes + tarOverhead,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: connect: %w", s.String(), err)
	}
	s.cli = cli
	return cli, nil
}

// Close closes the client; later calls fail.
func (s *etcdSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.cli == nil {
		return nil
	}
	err := s.cli.Close()
	s.cli = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("source %s: close: %w", s.String(), err)
	}
	return nil
}

// Get reads the key (or the bundle prefix).
func (s *etcdSource) Get(ctx context.Context) (Config, error) {
	cfg, _, err := s.get(ctx)
	return cfg, err
}

// get reads the current value and the etcd revision it was read at.
func (s *etcdSource) get(ctx context.Context) (Config, int64, error) {
	cli, err := s.client()
	if err != nil {
		return Config{}, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.bundle {
		return s.getBundle(ctx, cli)
	}
	resp, err := cli.Get(ctx, s.target.key)
	if err != nil {
		return Config{}, 0, fmt.Errorf("source %s: get: %w", s.String(), err)
	}
	if len(resp.Kvs) == 0 {
		return Config{}, resp.Header.GetRevision(), fmt.Errorf("source %s: key %q: %w", s.String(), s.target.key, ErrNotFound)
	}
	cfg, err := s.kvConfig(resp.Kvs[0])
	return cfg, resp.Header.GetRevision(), err
}

// kvConfig turns one key-value into a Config, refusing empty values.
func (s *etcdSource) kvConfig(kv *mvccpb.KeyValue) (Config, error) {
	if len(kv.Value) == 0 {
		return Config{}, fmt.Errorf("source %s: key %q holds an empty value at revision %d (never applied)", s.String(), s.target.key, kv.ModRevision)
	}
	return Config{
		Version: strconv.FormatInt(kv.ModRevision, 10),
		Data:    kv.Value,
		Fetched: time.Now(),
	}, nil
}

func (s *etcdSource) getBundle(ctx context.Context, cli *clientv3.Client) (Config, int64, error) {
	resp, err := cli.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithLimit(MaxBundleFiles+1))
	if err != nil {
		return Config{}, 0, fmt.Errorf("source %s: get prefix: %w", s.String(), err)
	}
	rev := resp.Header.GetRevision()
	if resp.More || len(resp.Kvs) > MaxBundleFiles {
		return Config{}, rev, fmt.Errorf("source %s: more than %d keys under %q: %w", s.String(), MaxBundleFiles, s.prefix, ErrTooLarge)
	}
	files := make(map[string][]byte, len(resp.Kvs))
	total := 0
	for _, kv := range resp.Kvs {
		rel := strings.TrimPrefix(string(kv.Key), s.prefix)
		if rel == "" {
			continue // the prefix key itself
		}
		name, err := bundleName(rel)
		if err != nil {
			return Config{}, rev, fmt.Errorf("source %s: key %q: %w", s.String(), kv.Key, err)
		}
		if _, dup := files[name]; dup {
			return Config{}, rev, fmt.Errorf("source %s: key %q: file %q appears twice", s.String(), kv.Key, name)
		}
		total += len(kv.Value)
		if total > MaxBytes {
			return Config{}, rev, fmt.Errorf("source %s: content over %d bytes: %w", s.String(), MaxBytes, ErrTooLarge)
		}
		files[name] = kv.Value
	}
	if len(files) == 0 {
		return Config{}, rev, fmt.Errorf("source %s: no keys under %q: %w", s.String(), s.prefix, ErrNotFound)
	}
	if err := checkBundleConflicts(files); err != nil {
		return Config{}, rev, fmt.Errorf("source %s: %w", s.String(), err)
	}
	return Config{Version: bundleVersion(files), Files: files, Fetched: time.Now()}, rev, nil
}

// Watch waits for a version other than after. For a single key it watches
// from revision after+1, so nothing is missed or replayed across
// disconnects; it returns the first PUT, and an error wrapping ErrDeleted on
// a DELETE (the next Watch with the same after then waits for the key to
// come back). A compacted revision falls back to Get.
func (s *etcdSource) Watch(ctx context.Context, after string) (Config, error) {
	if s.bundle {
		return s.watchBundle(ctx, after)
	}
	a, err := strconv.ParseInt(after, 10, 64)
	if after == "" || err != nil || a < 0 {
		// No (or a foreign) version to resume from: the current value is new.
		return s.Get(ctx)
	}
	// Guard against time travel: an etcd restored from an older snapshot
	// has a current revision below after, and a watch from after+1 would
	// silently skip every change until the revision caught up.
	if cur, hdr, err := s.get(ctx); err == nil && hdr < a {
		s.log.Warn("etcd revision is behind the last version seen (restored from a backup?); re-reading", "source", s.String(), "after", after, "revision", hdr)
		if cur.Version != after {
			return cur, nil
		}
	} else if err := ctx.Err(); err != nil {
		return Config{}, err
	}
	start := a + 1
	s.mu.Lock()
	if r := s.resume; r.gone && r.after == after && r.rev >= start {
		start = r.rev + 1 // a deletion (or empty value) was reported: wait for a new PUT
	}
	s.mu.Unlock()
	for {
		cfg, compacted, err := s.watchFrom(ctx, s.target.key, start, func(resp clientv3.WatchResponse) (Config, bool, error) {
			for _, ev := range resp.Events {
				switch ev.Type {
				case clientv3.EventTypePut:
					cfg, err := s.kvConfig(ev.Kv)
					if err != nil {
						// Reported once; the next Watch starts after it.
						s.setResume(etcdResume{after: after, rev: ev.Kv.ModRevision, gone: true})
					}
					return cfg, true, err
				case clientv3.EventTypeDelete:
					s.setResume(etcdResume{after: after, rev: ev.Kv.ModRevision, gone: true})
					return Config{}, true, fmt.Errorf("source %s: key %q deleted at revision %d: %w", s.String(), s.target.key, ev.Kv.ModRevision, ErrDeleted)
				}
			}
			return Config{}, false, nil
		})
		if !compacted {
			return cfg, err
		}
		// The history after `after` is gone: compare with the present.
		cur, rev, err := s.get(ctx)
		if errors.Is(err, ErrNotFound) {
			s.setResume(etcdResume{after: after, rev: rev, gone: true})
			return Config{}, fmt.Errorf("%w: %w", err, ErrDeleted)
		}
		if err != nil || cur.Version != after {
			return cur, err
		}
		start = rev + 1
	}
}

func (s *etcdSource) setResume(r etcdResume) {
	s.mu.Lock()
	s.resume = r
	s.mu.Unlock()
}

// watchBundle waits until the content under the prefix differs from after.
func (s *etcdSource) watchBundle(ctx context.Context, after string) (Config, error) {
	s.mu.Lock()
	r := s.resume
	s.mu.Unlock()
	var rev int64
	gone := false
	if after != "" && r.after == after && r.rev > 0 {
		rev, gone = r.rev, r.gone
	} else {
		cfg, grev, err := s.get(ctx)
		switch {
		case errors.Is(err, ErrNotFound) && after != "":
			s.setResume(etcdResume{after: after, rev: grev, gone: true})
			return Config{}, fmt.Errorf("%w: %w", err, ErrDeleted)
		case err != nil:
			return Config{}, err
		case cfg.Version != after:
			s.setResume(etcdResume{after: cfg.Version, rev: grev})
			return cfg, nil
		}
		rev = grev
	}
	for {
		var cur Config
		var curRev int64
		var curErr error
		changed := func() bool {
			cur, curRev, curErr = s.get(ctx)
			switch {
			case errors.Is(curErr, ErrNotFound):
				if gone {
					rev = curRev
					return false // still deleted, already reported
				}
				s.setResume(etcdResume{after: after, rev: curRev, gone: true})
				curErr = fmt.Errorf("%w: %w", curErr, ErrDeleted)
				return true
			case curErr != nil:
				return true
			case cur.Version == after:
				gone, rev = false, curRev
				s.setResume(etcdResume{after: after, rev: curRev})
				return false
			}
			s.setResume(etcdResume{after: cur.Version, rev: curRev})
			return true
		}
		_, compacted, err := s.watchFrom(ctx, s.prefix, rev+1, func(resp clientv3.WatchResponse) (Config, bool, error) {
			if len(resp.Events) == 0 {
				return Config{}, false, nil
			}
			return Config{}, changed(), nil
		})
		if err != nil {
			return Config{}, err
		}
		if compacted && !changed() {
			continue // resume from the revision the Get saw
		}
		return cur, curErr
	}
}

// watchFrom watches key (a prefix for bundles) from revision rev and calls
// handle for each response with events until handle says done. It reports
// compacted=true (and no error) when rev is older than etcd's history. An
// idle watch requests progress notifications; hearing nothing for three
// intervals means the connection is gone and is reported as an error.
func (s *etcdSource) watchFrom(ctx context.Context, key string, rev int64, handle func(clientv3.WatchResponse) (Config, bool, error)) (Config, bool, error) {
	cli, err := s.client()
	if err != nil {
		return Config{}, false, err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRev(rev)}
	if s.bundle {
		opts = append(opts, clientv3.WithPrefix())
	}
	// clientv3's Watch blocks until its stream accepts the request, which
	// is forever while the connection is down: start it aside so the
	// silence check below still runs.
	wchc := make(chan clientv3.WatchChan, 1)
	go func() { wchc <- cli.Watch(wctx, key, opts...) }()
	var wch clientv3.WatchChan
	tick := time.NewTicker(s.progress)
	defer tick.Stop()
	lastHeard := time.Now()
	for {
		select {
		case <-ctx.Done():
			return Config{}, false, ctx.Err()
		case wch = <-wchc:
			wchc = nil
		case resp, ok := <-wch:
			if !ok {
				if err := ctx.Err(); err != nil {
					return Config{}, false, err
				}
				return Config{}, false, fmt.Errorf("source %s: watch from revision %d: channel closed", s.String(), rev)
			}
			lastHeard = time.Now()
			if resp.CompactRevision != 0 {
				s.log.Info("etcd revision compacted; re-reading", "source", s.String(), "from_revision", rev, "compact_revision", resp.CompactRevision)
				return Config{}, true, nil
			}
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrNoLeader) {
					return Config{}, false, fmt.Errorf("source %s: watch: etcd has no leader: %w", s.String(), err)
				}
				return Config{}, false, fmt.Errorf("source %s: watch from revision %d: %w", s.String(), rev, err)
			}
			if resp.IsProgressNotify() {
				continue
			}
			if cfg, done, err := handle(resp); done {
				return cfg, false, err
			}
		case <-tick.C:
			if silent := time.Since(lastHeard); silent >= 3*s.progress {
				return Config{}, false, fmt.Errorf("source %s: watch: no answer from etcd for %v (connection lost?)", s.String(), silent.Round(time.Millisecond))
			}
			if wch == nil {
				continue // the watch is not even registered yet
			}
			pctx, pcancel := context.WithTimeout(wctx, s.progress)
			if err := cli.RequestProgress(pctx); err != nil && ctx.Err() == nil {
				s.log.Debug("etcd progress request failed", "source", s.String(), "err", err)
			}
			pcancel()
		}
	}
}
