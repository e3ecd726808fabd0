package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestRoleFinishingStopsTheOthers: when one role returns by itself (the
// proxy after a --handover-socket handover), serve stops the other roles
// and returns nil instead of leaving half of the old process running.
func TestRoleFinishingStopsTheOthers(t *testing.T) {
	stopped := make(chan struct{})
	roles := []role{
		{name: "proxy", run: func(ctx context.Context) error {
			select {
			case <-time.After(50 * time.Millisecond): // handed over
			case <-ctx.Done():
				t.Error("proxy role was cancelled instead of finishing by itself")
			}
			return nil
		}},
		{name: "sync", run: func(ctx context.Context) error {
			<-ctx.Done()
			close(stopped)
			return nil
		}},
	}
	done := make(chan error, 1)
	go func() {
		done <- serve(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), commonFlags{}, newRegistry(), roles)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve kept running after the proxy role finished")
	}
	select {
	case <-stopped:
	default:
		t.Error("the sync role was not stopped")
	}
}
