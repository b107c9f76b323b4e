// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

// TLS for the listener: certificates read from files and read again when
// they change, and client certificates that name their user.

package stomp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles names what a TLS listener needs.
type TLSFiles struct {
	Cert, Key string // PEM certificate (chain) and key
	// ClientCA, if set, is a PEM bundle of the authorities whose client
	// certificates the listener requires and accepts (mutual TLS).
	ClientCA string
}

// TLSConfig returns a server configuration for f: TLS 1.2 at least, the
// certificate read again (at most once a second) whenever its files
// change, so that a renewed certificate needs no restart. A file that
// does not load is an error now; on a later change it is logged by the
// handshake that meets it and the certificate before stays in use.
func TLSConfig(f TLSFiles) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("TLS needs a certificate and a key file")
	}
	r := &certReloader{files: f}
	if err := r.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}
	if f.ClientCA != "" {
		pem, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS client CA %s holds no PEM certificate", f.ClientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

type certReloader struct {
	files TLSFiles

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time // the files' modification times when loaded
	checked time.Time
}

func (r *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	r.cert, r.stamp = &cert, r.stamps()
	return nil
}

func (r *certReloader) stamps() [2]time.Time {
	var s [2]time.Time
	for i, p := range []string{r.files.Cert, r.files.Key} {
		if fi, err := os.Stat(p); err == nil {
			s[i] = fi.ModTime()
		}
	}
	return s
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= time.Second {
		r.checked = now
		if r.stamps() != r.stamp {
			old := r.cert
			if err := r.load(); err != nil {
				r.cert = old // keep serving with the certificate before
				return r.cert, nil
			}
		}
	}
	return r.cert, nil
}
