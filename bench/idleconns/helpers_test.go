package main

import (
	"encoding/base64"
	"strconv"
)

func itoa(n int) string { return strconv.Itoa(n) }

// b64 wraps DER at 64 columns as PEM expects.
func b64(der []byte) string {
	s := base64.StdEncoding.EncodeToString(der)
	var out []byte
	for len(s) > 64 {
		out = append(out, s[:64]...)
		out = append(out, '\n')
		s = s[64:]
	}
	return string(append(append(out, s...), '\n'))
}
