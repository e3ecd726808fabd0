//go:build !linux

package h1fast

import "time"

// canPark: connections do not park on this system (park.go).
const canPark = false

func (c *conn) park(until time.Time) bool { return false }

func (c *conn) unwatch() {}
