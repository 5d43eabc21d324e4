package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// certReloader serves the certificate from files and reloads it when either
// file changes (checked at most once a second), so a renewed certificate is
// picked up without a restart.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	mod     time.Time
	checked time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c.cert, c.mod = &cert, c.modTime()
	return nil
}

func (c *certReloader) modTime() time.Time {
	var latest time.Time
	for _, f := range []string{c.certFile, c.keyFile} {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	return latest
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) > time.Second {
		c.checked = now
		if m := c.modTime(); m.After(c.mod) {
			_ = c.load() // a half-written pair fails to load: keep the old one
		}
	}
	return c.cert, nil
}
