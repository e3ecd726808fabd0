//go:build !unix

package configapi

import "net"

// tryWriteNow writes nothing: writeParked writes with a deadline.
func tryWriteNow(net.Conn, []byte) (int, error) { return 0, nil }
