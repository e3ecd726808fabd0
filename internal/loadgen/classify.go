package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Error classes reported in Result.Errors.
const (
	ClassRefused = "refused" // connection refused: nothing listening
	ClassReset   = "reset"   // connection reset or broken pipe
	ClassEOF     = "eof"     // the peer closed the connection mid-exchange
	ClassTLS     = "tls"     // handshake or certificate failure
	ClassTimeout = "timeout" // a deadline passed
	ClassCheck   = "check"   // the response failed Options.Check
	ClassOther   = "other"   // anything else
)

// Classify maps a transport error to one of the error classes. Order
// matters: a TLS handshake cut by a reset is a reset, because the peer went
// away rather than disagreed about certificates.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var (
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		verErr   *tls.CertificateVerificationError
		uaErr    x509.UnknownAuthorityError
		ciErr    x509.CertificateInvalidError
		hostErr  x509.HostnameError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return ClassReset
	case errors.As(err, &recErr), errors.As(err, &alertErr), errors.As(err, &verErr),
		errors.As(err, &uaErr), errors.As(err, &ciErr), errors.As(err, &hostErr):
		return ClassTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ClassEOF
	}
	// net/http and the TLS stack do not wrap every cause; fall back to text.
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return ClassRefused
	case strings.Contains(s, "connection reset"), strings.Contains(s, "broken pipe"):
		return ClassReset
	case strings.Contains(s, "tls:"), strings.Contains(s, "x509:"), strings.Contains(s, "HTTP response to HTTPS client"):
		return ClassTLS
	case strings.Contains(s, "timeout"), strings.Contains(s, "deadline exceeded"):
		return ClassTimeout
	case strings.Contains(s, "EOF"), strings.Contains(s, "server closed idle connection"):
		return ClassEOF
	}
	return ClassOther
}
