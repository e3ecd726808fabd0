# Convenience targets; scripts/test.sh is what CI runs.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build check test demo image bench fuzz
build:
	CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -ldflags "$(LDFLAGS)" -o bin/outrigger ./cmd/outrigger
check:
	scripts/test.sh
test:
	go test -race ./...
demo:
	go run ./cmd/outrigger demo
image:
	scripts/image.sh
bench:
	bench/run.sh
