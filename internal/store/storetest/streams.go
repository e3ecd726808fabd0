package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// This file holds the change-stream, concurrency, size and hostile-input
// cases of the contract suite.

func recv(t *testing.T, ctx context.Context, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatalf("changes channel closed unexpectedly")
		}
		return c
	case <-ctx.Done():
		t.Fatalf("no change delivered: %v", ctx.Err())
	}
	return store.Change{}
}

// WaitChange reads from ch until it sees name at version >= v (earlier
// changes may be coalesced or interleaved), failing the test at ctx's end.
func WaitChange(t *testing.T, ctx context.Context, ch <-chan store.Change, name string, v int64) {
	t.Helper()
	for {
		c := recv(t, ctx, ch)
		if c.Name == name && c.Version >= v {
			return
		}
	}
}

func testChanges(t *testing.T, ctx context.Context, s store.Store) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Changes(wctx)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	mustPut(t, ctx, s, "app", "1", "text/plain")
	if c := recv(t, ctx, ch); c != (store.Change{Name: "app", Version: 1}) {
		t.Fatalf("change = %+v, want app@1", c)
	}
	// A no-op put produces no change; the next real one does.
	if _, _, err := s.Put(ctx, "app", []byte("1"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	mustPut(t, ctx, s, "other", "1", "text/plain")
	if c := recv(t, ctx, ch); c != (store.Change{Name: "other", Version: 1}) {
		t.Fatalf("change = %+v, want other@1 (no change for a no-op put)", c)
	}
	// A burst without reading: never blocks Put, the newest is delivered.
	for i := 2; i <= 30; i++ {
		mustPut(t, ctx, s, "app", fmt.Sprint(i), "text/plain")
	}
	WaitChange(t, ctx, ch, "app", 30)
}

func testChangesClose(t *testing.T, ctx context.Context, s store.Store) {
	wctx, cancel := context.WithCancel(ctx)
	ch, err := s.Changes(wctx)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	mustPut(t, ctx, s, "app", "1", "text/plain")
	cancel()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-ctx.Done():
			t.Fatalf("changes channel not closed after its context ended")
		}
	}
}

func testConcurrent(t *testing.T, ctx context.Context, s store.Store) {
	const writers, each = 20, 3
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]string{}
		errs []error
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				data := fmt.Sprintf("writer %d put %d", w, i)
				v, created, err := s.Put(ctx, "hot", []byte(data), store.PutOptions{ContentType: "text/plain"})
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case !created:
					errs = append(errs, fmt.Errorf("put %q: created=false", data))
				case seen[v.Version] != "":
					errs = append(errs, fmt.Errorf("version %d given to both %q and %q", v.Version, seen[v.Version], data))
				default:
					seen[v.Version] = data
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	h, err := s.History(ctx, "hot")
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(h) != writers*each {
		t.Fatalf("History has %d versions, want %d", len(h), writers*each)
	}
	for i, v := range h {
		if v.Version != int64(i+1) {
			t.Fatalf("History[%d].Version = %d: versions not contiguous", i, v.Version)
		}
		got, err := s.Get(ctx, "hot", v.Version)
		if err != nil || string(got.Data) != seen[v.Version] {
			t.Fatalf("version %d = %q, %v; acknowledged as %q", v.Version, got.Data, err, seen[v.Version])
		}
	}
}

func testLarge(t *testing.T, ctx context.Context, s store.Store) {
	data := bytes.Repeat([]byte("0123456789abcdef<xml attr=\"x\"/>\n"), (1<<20)/32)
	data = data[:1<<20]
	v, created, err := s.Put(ctx, "big", data, store.PutOptions{ContentType: "application/xml"})
	if err != nil || !created || v.Size != 1<<20 {
		t.Fatalf("Put 1 MiB = %+v created=%v err=%v", v, created, err)
	}
	got, err := s.Get(ctx, "big", 0)
	if err != nil || !bytes.Equal(got.Data, data) {
		t.Fatalf("Get 1 MiB: err %v, equal %v", err, bytes.Equal(got.Data, data))
	}
	data[0] = 'X'
	if v, _, err := s.Put(ctx, "big", data, store.PutOptions{ContentType: "application/xml"}); err != nil || v.Version != 2 {
		t.Fatalf("second 1 MiB Put = %d, %v; want version 2", v.Version, err)
	}
}

func testHostileNames(t *testing.T, ctx context.Context, s store.Store) {
	for _, name := range []string{"", "a/b", "/", "../x", "a\x00b", "\x00", strings.Repeat("n", store.MaxNameLen+1)} {
		t.Run(fmt.Sprintf("%.20q", name), func(t *testing.T) {
			if _, _, err := s.Put(ctx, name, []byte("x"), store.PutOptions{}); err == nil {
				t.Errorf("Put accepted name %q", name)
			}
			if _, err := s.Get(ctx, name, 0); err == nil || errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(%q) err = %v, want a name error", name, err)
			}
			if _, err := s.History(ctx, name); err == nil {
				t.Errorf("History accepted name %q", name)
			}
			if err := s.PutSchema(ctx, name, []byte("{}")); err == nil {
				t.Errorf("PutSchema accepted name %q", name)
			}
			if _, err := s.GetSchema(ctx, name); err == nil || errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetSchema(%q) err = %v, want a name error", name, err)
			}
			if err := s.SetStatus(ctx, name, store.SidecarStatus{Sidecar: "p"}); err == nil {
				t.Errorf("SetStatus accepted name %q", name)
			}
			if _, err := s.Statuses(ctx, name); err == nil {
				t.Errorf("Statuses accepted name %q", name)
			}
		})
	}
	if l, err := s.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List after rejected puts = %v, %v; want empty", l, err)
	}
}

func testOddNames(t *testing.T, ctx context.Context, s store.Store) {
	// Names that are prefixes of each other, look like key-layout words or
	// contain unusual bytes must stay separate configs.
	names := []string{"a", "ab", "a.b", "a b", "latest", "meta", "data", "..", "ünïcode", "a\xff", "%2F", strings.Repeat("n", store.MaxNameLen)}
	for i, n := range names {
		for j := 0; j <= i; j++ {
			mustPut(t, ctx, s, n, fmt.Sprintf("%s #%d", n, j), "text/plain")
		}
	}
	for i, n := range names {
		v, err := s.Get(ctx, n, 0)
		if err != nil {
			t.Fatalf("Get(%q): %v", n, err)
		}
		if want := fmt.Sprintf("%s #%d", n, i); v.Version != int64(i+1) || string(v.Data) != want || v.Name != n {
			t.Fatalf("Get(%q) = version %d %q, want version %d %q", n, v.Version, v.Data, i+1, want)
		}
	}
	l, err := s.List(ctx)
	if err != nil || len(l) != len(names) {
		t.Fatalf("List = %d entries, %v; want %d", len(l), err, len(names))
	}
	if !slices.IsSortedFunc(l, func(a, b store.Version) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatalf("List not sorted by name")
	}
}

func testHostileMetadata(t *testing.T, ctx context.Context, s store.Store) {
	cases := []struct {
		name string
		opts store.PutOptions
		ok   bool
	}{
		{"unicode author", store.PutOptions{ContentType: "text/plain; charset=utf-8", Author: "Zoë <z@example>"}, true},
		{"invalid UTF-8 content type", store.PutOptions{ContentType: "text/\xff"}, false},
		{"invalid UTF-8 author", store.PutOptions{Author: "\xc3("}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, _, err := s.Put(ctx, "meta", []byte(tc.name), tc.opts)
			if !tc.ok {
				if err == nil {
					t.Fatalf("Put accepted %+v", tc.opts)
				}
				return
			}
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := s.Get(ctx, "meta", v.Version)
			if err != nil || got.ContentType != tc.opts.ContentType || got.Author != tc.opts.Author {
				t.Fatalf("Get = %+v, %v; want content type %q author %q", got, err, tc.opts.ContentType, tc.opts.Author)
			}
		})
	}
}
