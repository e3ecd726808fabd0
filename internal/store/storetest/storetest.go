// Package storetest is the contract suite every store.Store implementation
// must pass: version numbering, dedup, compare-and-swap, schemas, statuses,
// change notification, concurrency, large values and hostile names.
//
// It tests behaviour through the interface only; implementation-specific
// properties (file locks, crash safety, cross-process watches) are tested
// next to each implementation.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// Timeout bounds each subtest; it is a deadlock guard, not a performance
// assertion.
const Timeout = 30 * time.Second

// Run runs the contract suite. open must return a fresh, empty store for each
// call and arrange its Close with t.Cleanup (closing twice must be harmless).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, s store.Store)
	}{
		{"FirstVersionIs1", testFirstVersion},
		{"Monotonic", testMonotonic},
		{"IdenticalContentIsNoop", testIdentical},
		{"ContentTypeChangeIsNewVersion", testContentType},
		{"Get", testGet},
		{"ReturnedDataIsACopy", testDataCopy},
		{"History", testHistory},
		{"List", testList},
		{"CAS", testCAS},
		{"Schemas", testSchemas},
		{"Statuses", testStatuses},
		{"ChangesDeliversPut", testChanges},
		{"ChangesClosesWithContext", testChangesClose},
		{"ConcurrentPuts", testConcurrent},
		{"LargeData", testLarge},
		{"HostileNames", testHostileNames},
		{"OddNamesDoNotCollide", testOddNames},
		{"HostileMetadata", testHostileMetadata},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			defer cancel()
			tc.fn(t, ctx, s)
		})
	}
}

// RunReopen checks persistence: it writes through first, closes it, obtains a
// new instance from reopen (same backing data) and checks that every version,
// schema and status survived and that numbering continues without reuse.
func RunReopen(t *testing.T, first store.Store, reopen func(t *testing.T) store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for i := 1; i <= 3; i++ {
		mustPut(t, ctx, first, "app", fmt.Sprintf("v%d", i), "text/plain")
	}
	if err := first.PutSchema(ctx, "app", []byte(`{"type":"object"}`)); err != nil {
		t.Fatalf("PutSchema: %v", err)
	}
	st := store.SidecarStatus{Sidecar: "pod-1", Version: 3, Outcome: "applied", Time: time.Unix(1700000000, 0).UTC()}
	if err := first.SetStatus(ctx, "app", st); err != nil {
		t.Fatalf("SetStatus: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s := reopen(t)
	for i := int64(1); i <= 3; i++ {
		v, err := s.Get(ctx, "app", i)
		if err != nil {
			t.Fatalf("after reopen, Get(app, %d): %v", i, err)
		}
		if want := fmt.Sprintf("v%d", i); string(v.Data) != want {
			t.Fatalf("after reopen, version %d data = %q, want %q", i, v.Data, want)
		}
	}
	if got, err := s.GetSchema(ctx, "app"); err != nil || string(got) != `{"type":"object"}` {
		t.Fatalf("after reopen, GetSchema = %q, %v", got, err)
	}
	sts, err := s.Statuses(ctx, "app")
	if err != nil || len(sts) != 1 || !sameStatus(sts[0], st) {
		t.Fatalf("after reopen, Statuses = %+v, %v; want [%+v]", sts, err, st)
	}
	if v := mustPut(t, ctx, s, "app", "v4", "text/plain"); v.Version != 4 {
		t.Fatalf("after reopen, next version = %d, want 4", v.Version)
	}
}

func mustPut(t *testing.T, ctx context.Context, s store.Store, name, data, ct string) store.Version {
	t.Helper()
	v, created, err := s.Put(ctx, name, []byte(data), store.PutOptions{ContentType: ct, Author: "tester"})
	if err != nil {
		t.Fatalf("Put(%q, %q): %v", name, data, err)
	}
	if !created {
		t.Fatalf("Put(%q, %q): created = false, want true", name, data)
	}
	return v
}

func ptr(n int64) *int64 { return &n }

// sameMeta compares everything but Created and Data.
func sameMeta(a, b store.Version) bool {
	return a.Name == b.Name && a.Version == b.Version && a.ContentType == b.ContentType &&
		a.SHA256 == b.SHA256 && a.Size == b.Size && a.Author == b.Author
}

func sameStatus(a, b store.SidecarStatus) bool {
	return a.Sidecar == b.Sidecar && a.Version == b.Version && a.Outcome == b.Outcome &&
		a.Error == b.Error && a.Time.Equal(b.Time)
}

func testFirstVersion(t *testing.T, ctx context.Context, s store.Store) {
	before := time.Now().Add(-time.Minute)
	v := mustPut(t, ctx, s, "app", "hello", "text/plain")
	const helloSHA = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	want := store.Version{Name: "app", Version: 1, ContentType: "text/plain", SHA256: helloSHA, Size: 5, Author: "tester"}
	if !sameMeta(v, want) {
		t.Fatalf("Put = %+v, want %+v", v, want)
	}
	if v.Created.Before(before) || v.Created.Location() != time.UTC {
		t.Fatalf("Created = %v, want a recent UTC time", v.Created)
	}
	g, err := s.Get(ctx, "app", 0)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !g.Created.Equal(v.Created) || g.SHA256 != helloSHA || string(g.Data) != "hello" {
		t.Fatalf("Get = %+v, want the put version", g)
	}
}

func testMonotonic(t *testing.T, ctx context.Context, s store.Store) {
	for i := int64(1); i <= 5; i++ {
		if v := mustPut(t, ctx, s, "app", fmt.Sprintf("c%d", i), "text/plain"); v.Version != i {
			t.Fatalf("put #%d got version %d", i, v.Version)
		}
	}
	// Going back to old content is a new version, not a reuse.
	if v := mustPut(t, ctx, s, "app", "c1", "text/plain"); v.Version != 6 {
		t.Fatalf("re-put of old content got version %d, want 6", v.Version)
	}
	// Numbering is per name.
	if v := mustPut(t, ctx, s, "other", "x", "text/plain"); v.Version != 1 {
		t.Fatalf("other name got version %d, want 1", v.Version)
	}
}

func testIdentical(t *testing.T, ctx context.Context, s store.Store) {
	v1 := mustPut(t, ctx, s, "app", "same", "application/json")
	v, created, err := s.Put(ctx, "app", []byte("same"), store.PutOptions{ContentType: "application/json", Author: "someone-else"})
	if err != nil {
		t.Fatalf("Put identical: %v", err)
	}
	if created || v.Version != 1 || v.SHA256 != v1.SHA256 || v.Author != "tester" {
		t.Fatalf("Put identical = %+v created=%v, want version 1 unchanged, created=false", v, created)
	}
	h, err := s.History(ctx, "app")
	if err != nil || len(h) != 1 {
		t.Fatalf("History after no-op = %d versions, %v; want 1", len(h), err)
	}
}

func testContentType(t *testing.T, ctx context.Context, s store.Store) {
	mustPut(t, ctx, s, "app", "a: 1", "application/yaml")
	v := mustPut(t, ctx, s, "app", "a: 1", "text/plain")
	if v.Version != 2 || v.ContentType != "text/plain" {
		t.Fatalf("Put with new content type = %+v, want version 2 text/plain", v)
	}
}

func testGet(t *testing.T, ctx context.Context, s store.Store) {
	mustPut(t, ctx, s, "app", "one", "text/plain")
	mustPut(t, ctx, s, "app", "two", "text/plain")
	mustPut(t, ctx, s, "empty", "", "text/plain")
	cases := []struct {
		name    string
		config  string
		n       int64
		want    string
		wantVer int64
		wantErr error
	}{
		{"latest", "app", 0, "two", 2, nil},
		{"first", "app", 1, "one", 1, nil},
		{"second", "app", 2, "two", 2, nil},
		{"future version", "app", 3, "", 0, store.ErrNotFound},
		{"negative version", "app", -1, "", 0, store.ErrNotFound},
		{"missing config", "nope", 0, "", 0, store.ErrNotFound},
		{"missing config version", "nope", 1, "", 0, store.ErrNotFound},
		{"empty content", "empty", 0, "", 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := s.Get(ctx, tc.config, tc.n)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Get(%q, %d) err = %v, want %v", tc.config, tc.n, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.config) {
					t.Errorf("error %q does not name config %q", err, tc.config)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%q, %d): %v", tc.config, tc.n, err)
			}
			if string(v.Data) != tc.want || v.Version != tc.wantVer || v.Size != int64(len(tc.want)) || v.Name != tc.config {
				t.Fatalf("Get(%q, %d) = %+v data %q, want version %d data %q", tc.config, tc.n, v, v.Data, tc.wantVer, tc.want)
			}
			if v.Data == nil {
				t.Errorf("Get returned nil Data, want non-nil (possibly empty)")
			}
		})
	}
}

func testDataCopy(t *testing.T, ctx context.Context, s store.Store) {
	mustPut(t, ctx, s, "app", "original", "text/plain")
	v, err := s.Get(ctx, "app", 0)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	copy(v.Data, "XXXXXXXX")
	again, err := s.Get(ctx, "app", 0)
	if err != nil || string(again.Data) != "original" {
		t.Fatalf("after mutating a returned slice, Get = %q, %v; want original", again.Data, err)
	}
}

func testHistory(t *testing.T, ctx context.Context, s store.Store) {
	if _, err := s.History(ctx, "app"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("History of missing config err = %v, want ErrNotFound", err)
	}
	for i := 1; i <= 12; i++ { // > 9 so lexical vs numeric order would differ
		mustPut(t, ctx, s, "app", fmt.Sprintf("c%d", i), "text/plain")
	}
	h, err := s.History(ctx, "app")
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(h) != 12 {
		t.Fatalf("History has %d versions, want 12", len(h))
	}
	for i, v := range h {
		if v.Version != int64(i+1) || v.Name != "app" || v.Data != nil || v.SHA256 == "" {
			t.Fatalf("History[%d] = %+v, want version %d without data", i, v, i+1)
		}
	}
}

func testList(t *testing.T, ctx context.Context, s store.Store) {
	l, err := s.List(ctx)
	if err != nil || len(l) != 0 {
		t.Fatalf("List of empty store = %v, %v; want empty", l, err)
	}
	for _, n := range []string{"zeta", "alpha", "Beta", "mid"} {
		mustPut(t, ctx, s, n, "1", "text/plain")
	}
	mustPut(t, ctx, s, "mid", "2", "text/plain")
	if err := s.SetStatus(ctx, "ghost", store.SidecarStatus{Sidecar: "p", Outcome: "failed"}); err != nil {
		t.Fatalf("SetStatus: %v", err)
	}
	if err := s.PutSchema(ctx, "phantom", []byte("{}")); err != nil {
		t.Fatalf("PutSchema: %v", err)
	}
	l, err = s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var names []string
	for _, v := range l {
		names = append(names, v.Name)
		if v.Data != nil {
			t.Errorf("List entry %q carries data", v.Name)
		}
		if v.Name == "mid" && v.Version != 2 {
			t.Errorf("List entry mid has version %d, want latest 2", v.Version)
		}
	}
	if want := []string{"Beta", "alpha", "mid", "zeta"}; !slices.Equal(names, want) {
		t.Fatalf("List names = %q, want %q (configs only, sorted)", names, want)
	}
}

func testCAS(t *testing.T, ctx context.Context, s store.Store) {
	mustPut(t, ctx, s, "existing", "v1", "text/plain")
	mustPut(t, ctx, s, "existing", "v2", "text/plain")
	cases := []struct {
		name        string
		config      string
		ifMatch     int64
		data        string
		wantVersion int64
		wantErr     error
	}{
		{"zero on new config", "fresh", 0, "x", 1, nil},
		{"zero on existing config", "existing", 0, "x", 0, store.ErrConflict},
		{"stale version", "existing", 1, "x", 0, store.ErrConflict},
		{"future version", "existing", 9, "x", 0, store.ErrConflict},
		{"nonzero on missing config", "missing", 1, "x", 0, store.ErrConflict},
		{"current version", "existing", 2, "v3", 3, nil},
		{"now stale after success", "existing", 2, "v4", 0, store.ErrConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, created, err := s.Put(ctx, tc.config, []byte(tc.data), store.PutOptions{ContentType: "text/plain", IfMatch: ptr(tc.ifMatch)})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Put(%q, IfMatch %d) err = %v, want %v", tc.config, tc.ifMatch, err, tc.wantErr)
				}
				return
			}
			if err != nil || !created || v.Version != tc.wantVersion {
				t.Fatalf("Put(%q, IfMatch %d) = %d created=%v err=%v, want version %d", tc.config, tc.ifMatch, v.Version, created, err, tc.wantVersion)
			}
		})
	}
	if _, err := s.Get(ctx, "missing", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed CAS created config: Get err = %v", err)
	}
	if h, _ := s.History(ctx, "existing"); len(h) != 3 {
		t.Fatalf("existing has %d versions after CAS cases, want 3", len(h))
	}
}

func testSchemas(t *testing.T, ctx context.Context, s store.Store) {
	if _, err := s.GetSchema(ctx, "app"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSchema of missing err = %v, want ErrNotFound", err)
	}
	for _, sch := range []string{`{"type":"object"}`, `{"type":"array"}`} {
		if err := s.PutSchema(ctx, "app", []byte(sch)); err != nil {
			t.Fatalf("PutSchema: %v", err)
		}
		got, err := s.GetSchema(ctx, "app")
		if err != nil || string(got) != sch {
			t.Fatalf("GetSchema = %q, %v; want %q", got, err, sch)
		}
	}
	if _, err := s.GetSchema(ctx, "other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSchema of other config err = %v, want ErrNotFound", err)
	}
}

func testStatuses(t *testing.T, ctx context.Context, s store.Store) {
	got, err := s.Statuses(ctx, "app")
	if err != nil || len(got) != 0 {
		t.Fatalf("Statuses with no reports = %v, %v; want empty", got, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	reports := []store.SidecarStatus{
		{Sidecar: "pod-b", Version: 1, Outcome: "applied", Time: at},
		{Sidecar: "pod-a", Version: 1, Outcome: "rejected", Error: "check failed", Time: at},
		{Sidecar: "pod-b", Version: 2, Outcome: "rolled_back", Error: "health", Time: at.Add(time.Second)},
		{Sidecar: "ns/pod-c", Version: 2, Outcome: "applied", Time: at},
	}
	for _, r := range reports {
		if err := s.SetStatus(ctx, "app", r); err != nil {
			t.Fatalf("SetStatus(%+v): %v", r, err)
		}
	}
	if err := s.SetStatus(ctx, "app", store.SidecarStatus{Outcome: "applied"}); err == nil {
		t.Fatalf("SetStatus with empty sidecar succeeded, want error")
	}
	got, err = s.Statuses(ctx, "app")
	if err != nil {
		t.Fatalf("Statuses: %v", err)
	}
	want := []store.SidecarStatus{reports[3], reports[1], reports[2]}
	if !slices.EqualFunc(got, want, sameStatus) {
		t.Fatalf("Statuses = %+v\nwant %+v", got, want)
	}
	if other, err := s.Statuses(ctx, "ap"); err != nil || len(other) != 0 {
		t.Fatalf("Statuses of prefix name = %v, %v; want empty", other, err)
	}
}
