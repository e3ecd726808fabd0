package h1fast

import (
	"bufio"
	"net/http"

	"golang.org/x/net/http/httpguts"
)

func validHostRef(s string) bool { return httpguts.ValidHostHeader(s) }

type httpRequest = http.Request

func readRequestRef(br *bufio.Reader) (*http.Request, error) { return http.ReadRequest(br) }
