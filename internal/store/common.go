package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxNameLen bounds config and sidecar names in bytes. The config API
// enforces a stricter grammar; this is defence in depth so that a hostile
// name can never exceed a backend's key limits (bbolt: 32 KiB).
const MaxNameLen = 1024

// checkName rejects names the key layouts cannot hold unambiguously: empty,
// containing '/' (the etcd key separator) or NUL, or longer than MaxNameLen.
// Names are otherwise opaque bytes.
func checkName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("store: %s name is empty", kind)
	case len(name) > MaxNameLen:
		return fmt.Errorf("store: %s name %.40q…: longer than %d bytes", kind, name, MaxNameLen)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("store: %s name %q: must not contain '/' or NUL", kind, name)
	}
	return nil
}

// checkSidecar is looser than checkName: a sidecar id is only ever the last
// key segment, so '/' is harmless; empty and NUL are not.
func checkSidecar(name, sidecar string) error {
	switch {
	case sidecar == "":
		return fmt.Errorf("store: config %q: status sidecar is empty", name)
	case len(sidecar) > MaxNameLen:
		return fmt.Errorf("store: config %q: status sidecar longer than %d bytes", name, MaxNameLen)
	case strings.ContainsRune(sidecar, 0):
		return fmt.Errorf("store: config %q: status sidecar %q contains NUL", name, sidecar)
	}
	return nil
}

// checkPutOptions rejects metadata JSON cannot store faithfully: invalid
// UTF-8 would come back as U+FFFD, silently changing the content type (and
// defeating dedup) or the author.
func checkPutOptions(name string, opts PutOptions) error {
	if !utf8.ValidString(opts.ContentType) {
		return fmt.Errorf("store: put config %q: content type %q is not valid UTF-8", name, opts.ContentType)
	}
	if !utf8.ValidString(opts.Author) {
		return fmt.Errorf("store: put config %q: author %q is not valid UTF-8", name, opts.Author)
	}
	return nil
}

// newVersion builds the metadata of a version about to be written.
func newVersion(name string, n int64, data []byte, opts PutOptions, now time.Time) Version {
	sum := sha256.Sum256(data)
	return Version{
		Name:        name,
		Version:     n,
		ContentType: opts.ContentType,
		SHA256:      hex.EncodeToString(sum[:]),
		Size:        int64(len(data)),
		Author:      opts.Author,
		// Round(0) drops the monotonic reading so a returned Version equals
		// the one decoded later.
		Created: now.UTC().Round(0),
	}
}

// sameContent reports whether data/opts would duplicate latest.
func sameContent(latest Version, data []byte, opts PutOptions) bool {
	if latest.ContentType != opts.ContentType || latest.Size != int64(len(data)) {
		return false
	}
	sum := sha256.Sum256(data)
	return latest.SHA256 == hex.EncodeToString(sum[:])
}

// decodeMeta parses a stored version record of config name and checks it is
// plausible, so a corrupted or foreign value surfaces as an error naming the
// key rather than as a zero Version. The name comes from the key, which is
// authoritative: JSON cannot carry arbitrary bytes (invalid UTF-8 becomes
// U+FFFD), keys can.
func decodeMeta(key, name string, b []byte) (Version, error) {
	var v Version
	if err := json.Unmarshal(b, &v); err != nil {
		return Version{}, fmt.Errorf("store: decode version record %q: %w", key, err)
	}
	if v.Version < 1 || len(v.SHA256) != 64 || v.Size < 0 {
		return Version{}, fmt.Errorf("store: decode version record %q: implausible record (version %d, sha256 %q, size %d)", key, v.Version, v.SHA256, v.Size)
	}
	v.Name = name
	return v, nil
}

// decodeStatus parses a stored status record; like decodeMeta it takes the
// sidecar id from the key.
func decodeStatus(key, sidecar string, b []byte) (SidecarStatus, error) {
	var st SidecarStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return SidecarStatus{}, fmt.Errorf("store: decode status record %q: %w", key, err)
	}
	st.Sidecar = sidecar
	return st, nil
}

func copyBytes(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// subscription coalesces Changes for one consumer: publish never blocks;
// when the consumer is slow, several versions of one name collapse into the
// latest, and names are delivered in order of first arrival. Dropping
// intermediate versions is safe because the consumer re-reads the config.
type subscription struct {
	out  chan Change
	wake chan struct{} // capacity 1
	done chan struct{} // closed by stop
	once sync.Once

	mu      sync.Mutex
	queue   []string
	pending map[string]int64
}

func newSubscription() *subscription {
	return &subscription{
		out:     make(chan Change),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		pending: make(map[string]int64),
	}
}

// publish records c for delivery; it never blocks.
func (s *subscription) publish(c Change) {
	s.mu.Lock()
	cur, ok := s.pending[c.Name]
	if !ok {
		s.queue = append(s.queue, c.Name)
	}
	if !ok || c.Version > cur {
		s.pending[c.Name] = c.Version
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stop ends the stream; undelivered changes are dropped (the consumer
// re-subscribes and re-reads). Idempotent.
func (s *subscription) stop() { s.once.Do(func() { close(s.done) }) }

func (s *subscription) next() (Change, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return Change{}, false
	}
	name := s.queue[0]
	s.queue[0] = ""
	s.queue = s.queue[1:]
	v := s.pending[name]
	delete(s.pending, name)
	return Change{Name: name, Version: v}, true
}

// forward delivers changes to s.out until done is closed or ctx-like stop
// arrives via the done channel given; it closes s.out on return.
func (s *subscription) forward(ctxDone <-chan struct{}) {
	defer close(s.out)
	for {
		c, ok := s.next()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-ctxDone:
				return
			case <-s.done:
				return
			}
		}
		select {
		case s.out <- c:
		case <-ctxDone:
			return
		case <-s.done:
			return
		}
	}
}

// broadcaster fans published changes out to every live subscription (the
// in-process Changes source of the bolt store).
type broadcaster struct {
	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed bool
}

func (b *broadcaster) subscribe(ctxDone <-chan struct{}) (*subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	if b.subs == nil {
		b.subs = make(map[*subscription]struct{})
	}
	s := newSubscription()
	b.subs[s] = struct{}{}
	go func() {
		s.forward(ctxDone)
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
	return s, nil
}

func (b *broadcaster) publish(c Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.publish(c)
	}
}

func (b *broadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		s.stop()
	}
}
