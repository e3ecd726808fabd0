package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/outrigger-sidecar/outrigger/internal/cli"
	"github.com/outrigger-sidecar/outrigger/internal/configapi"
	"github.com/outrigger-sidecar/outrigger/internal/proxy"
	syncrole "github.com/outrigger-sidecar/outrigger/internal/sync"
)

const runUsage = `usage: outrigger run --config FILE

Runs several roles in one process from one YAML file, for teams that want a
single sidecar container. Top-level keys are the common flags (admin,
log-level, log-format, pprof, startup-timeout, force-exit-timeout) and one
section per role: proxy, sync, config (the config API server). Inside a
section the keys are that command's flag names without dashes, e.g.

  admin: 127.0.0.1:9901
  proxy:
    listen: ":8443"
    upstream: http://127.0.0.1:8080
    hsts: true
  sync:
    source: http://config.example:7700/v1/configs/app
    dest: /shared/app.json
    format: json
    pid-file: /shared/app.pid
    signal: HUP
    health: http://127.0.0.1:8080/healthz
    rollback: true

Parsing is strict: an unknown or misspelt key is an error naming its line.
Values may use ${ENV_VAR}. See examples/outrigger.yaml.`

// runFile is a parsed `outrigger run` file.
type runFile struct {
	common commonFlags
	proxy  *proxy.Config
	sync   *syncrole.Config
	config *configapi.Config
}

// loadRunFile reads and strictly parses an `outrigger run` YAML file.
func loadRunFile(path string, stderr io.Writer, getenv func(string) string) (*runFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	return parseRunFile(path, data, stderr, getenv)
}

func parseRunFile(path string, data []byte, stderr io.Writer, getenv func(string) string) (*runFile, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file: give at least one of proxy, sync, config", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: expected a mapping with proxy, sync and/or config sections", path, top.Line)
	}
	rf := &runFile{}
	commonFS := newFlagSet("run", stderr)
	rf.common.register(commonFS, "127.0.0.1:9901")
	rest := &yaml.Node{Kind: yaml.MappingNode}
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		var fs *flag.FlagSet
		switch k.Value {
		case "proxy":
			rf.proxy = new(proxy.Config)
			fs = newFlagSet("proxy", stderr)
			rf.proxy.RegisterFlags(fs)
		case "sync":
			rf.sync = new(syncrole.Config)
			fs = newFlagSet("sync", stderr)
			rf.sync.RegisterFlags(fs)
		case "config":
			rf.config = new(configapi.Config)
			fs = newFlagSet("config", stderr)
			rf.config.RegisterFlags(fs)
		default:
			rest.Content = append(rest.Content, k, v)
			continue
		}
		if seen[k.Value] {
			errs = append(errs, fmt.Errorf("%s:%d: section %q given twice", path, k.Line, k.Value))
			continue
		}
		seen[k.Value] = true
		if _, err := cli.ApplyYAML(fs, path, v, getenv); err != nil {
			errs = append(errs, fmt.Errorf("section %s: %w", k.Value, err))
		}
	}
	if _, err := cli.ApplyYAML(commonFS, path, rest, getenv); err != nil {
		errs = append(errs, fmt.Errorf("%w (top-level keys are proxy, sync, config and the common flags)", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if rf.proxy == nil && rf.sync == nil && rf.config == nil {
		return nil, fmt.Errorf("%s: no role: give at least one of proxy, sync, config", path)
	}
	return rf, nil
}

func cmdRun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("outrigger run", e.stderr)
	var path string
	fs.StringVar(&path, "config", "", "the YAML file describing the roles to run (required)")
	fs.Usage = cli.Usage(fs, runUsage)
	if err := parseFlags(fs, args, e); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	if path == "" {
		return usage(errors.New("run: --config FILE is required"))
	}
	rf, err := loadRunFile(path, e.stderr, e.getenv)
	if err != nil {
		return usage(err)
	}
	if err := rf.common.validate(); err != nil {
		return usage(err)
	}
	reg := newRegistry()
	var roles []role
	if rf.config != nil {
		r, err := configRole(ctx, rf.config, rf.common, e, reg)
		if err != nil {
			return err
		}
		roles = append(roles, r)
	}
	if rf.sync != nil {
		r, err := syncRole(ctx, rf.sync, rf.common, e, reg)
		if err != nil {
			return err
		}
		roles = append(roles, r)
	}
	if rf.proxy != nil {
		r, err := proxyRole(ctx, rf.proxy, rf.common, e, reg)
		if err != nil {
			return err
		}
		roles = append(roles, r)
	}
	return serve(ctx, rf.common.logger(e.stderr), rf.common, reg, roles)
}
