package configapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// openEtcd connects to the --etcd cluster, with TLS when --etcd-ca or a
// client certificate is given (https:// endpoints without --etcd-ca use
// the system roots).
func openEtcd(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	opts := store.EtcdOptions{
		Endpoints: etcdEndpoints(cfg.Etcd),
		Prefix:    cfg.EtcdPrefix,
		Logger:    log,
	}
	needTLS := cfg.EtcdCA != "" || cfg.EtcdCert != ""
	for _, ep := range opts.Endpoints {
		if strings.HasPrefix(ep, "https://") {
			needTLS = true
		}
	}
	if needTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.EtcdCA != "" {
			pem, err := os.ReadFile(cfg.EtcdCA)
			if err != nil {
				return nil, fmt.Errorf("--etcd-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--etcd-ca %q: no PEM certificates", cfg.EtcdCA)
			}
			tc.RootCAs = pool
		}
		if cfg.EtcdCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.EtcdCert, cfg.EtcdKey)
			if err != nil {
				return nil, fmt.Errorf("--etcd-cert %q / --etcd-key %q: %w", cfg.EtcdCert, cfg.EtcdKey, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts.TLS = tc
	}
	e, err := store.OpenEtcd(ctx, opts)
	if err != nil {
		return nil, err
	}
	return e, nil
}
