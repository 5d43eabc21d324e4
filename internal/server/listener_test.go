package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/config"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/store/sqlite"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with common
// name cn and returns the two file paths.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	return certFile, keyFile
}

// HTTP/2 over TLS from clients; a renewed certificate is served without a
// restart; the anonymous cookie is Secure on TLS.
func TestTLSAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "first")
	up := backend(t, "stable")
	_, url := start(t, `
listen: 127.0.0.1:0
tls: {cert: %s, key: %s}
services: [{name: api, builds: [{id: "1", state: stable, endpoints: [%s]}]}]
`, certFile, keyFile, addr(up))
	url = strings.Replace(url, "http://", "https://", 1)
	client := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	}
	resp, err := client().Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.HasPrefix(string(body), "stable") {
		t.Fatalf("proto %s body %q, want HTTP/2 and stable's answer", resp.Proto, body)
	}
	if c := resp.Header.Get("Set-Cookie"); !strings.Contains(c, "Secure") {
		t.Fatalf("anonymous cookie on TLS not Secure: %q", c)
	}
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Fatalf("certificate %q", cn)
	}
	time.Sleep(1100 * time.Millisecond) // the reloader looks at the files at most once a second
	future := time.Now().Add(2 * time.Second)
	writeCert(t, dir, "second")
	os.Chtimes(certFile, future, future)
	waitFor(t, func() bool {
		resp, err := client().Get(url + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName == "second"
	})
}

// Cleartext HTTP/2 with prior knowledge when h2c is on.
func TestH2C(t *testing.T) {
	up := backend(t, "stable")
	_, url := start(t, `
listen: 127.0.0.1:0
h2c: true
services: [{name: api, builds: [{id: "1", state: stable, endpoints: [%s]}]}]
`, addr(up))
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("got %s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}
}

// The access log is JSON lines with the build, the reason and a hashed
// user key, never the raw key.
func TestAccessLog(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "access.log")
	up := backend(t, "stable")
	srv, url := start(t, `
listen: 127.0.0.1:0
access_log: {path: %s}
services: [{name: api, builds: [{id: "1", state: stable, endpoints: [%s]}]}]
`, logFile, addr(up))
	_ = srv
	c := &http.Client{Timeout: 5 * time.Second}
	get(t, c, url+"/hello", "X-User-ID", "secret-user-42", "X-Request-ID", "rid-1")
	var rec map[string]any
	waitFor(t, func() bool {
		b, _ := os.ReadFile(logFile)
		line, _, _ := strings.Cut(string(b), "\n")
		return json.Unmarshal([]byte(line), &rec) == nil
	})
	for k, want := range map[string]any{"service": "api", "build": "1", "state": "stable", "status": float64(200),
		"path": "/hello", "request_id": "rid-1", "why": "no_canary"} {
		if rec[k] != want {
			t.Errorf("access log %s = %v, want %v (record %v)", k, rec[k], want, rec)
		}
	}
	b, _ := os.ReadFile(logFile)
	if strings.Contains(string(b), "secret-user-42") || rec["user"] == "" {
		t.Fatalf("the raw user key must never be logged: %s", b)
	}
}

// Two gateway processes with the same config (and a gateway restarted on
// a new store) send every user to the same build: routing needs no shared
// state.
func TestSameConfigSameUsers(t *testing.T) {
	stable, canary := backend(t, "stable"), backend(t, "canary")
	_, urlA := start(t, twoBuilds, "sticky", addr(stable), 30, addr(canary))
	_, urlB := start(t, twoBuilds, "sticky", addr(stable), 30, addr(canary))
	c := &http.Client{Timeout: 5 * time.Second}
	for u := 0; u < 300; u++ {
		user := fmt.Sprint("user-", u)
		_, a, _ := get(t, c, urlA+"/", "X-User-ID", user)
		_, b, _ := get(t, c, urlB+"/", "X-User-ID", user)
		if a != b {
			t.Fatalf("%s: gateway A said %q, gateway B %q", user, a, b)
		}
	}
}

// SIGTERM's path: shutdown stops accepting and lets a request in flight
// finish.
func TestGracefulShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	slow := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "finished")
	}))
	src := fmt.Sprintf("listen: 127.0.0.1:0\nservices: [{name: api, builds: [{id: \"1\", state: stable, endpoints: [%s]}]}]\n", slow)
	cfg, err := config.Parse([]byte(src), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	defer st.Close()
	srv, err := New(context.Background(), cfg, Options{Plane: control.New(st, control.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := net.Dial("tcp", srv.DataAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(200 * time.Millisecond) // the request is in flight
	cancel()                           // what SIGTERM does
	time.Sleep(200 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", srv.DataAddr(), 500*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("the gateway still accepts connections while draining")
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "finished" {
		t.Fatalf("in-flight request got %q", body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func httpServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// Headers over proxy.max_header_bytes are refused by the server (431)
// before any routing.
func TestHeaderSizeLimit(t *testing.T) {
	up := backend(t, "stable")
	_, url := start(t, `
listen: 127.0.0.1:0
proxy: {max_header_bytes: 2048}
services: [{name: api, builds: [{id: "1", state: stable, endpoints: [%s]}]}]
`, addr(up))
	c := &http.Client{Timeout: 5 * time.Second}
	if code, _, _ := get(t, c, url+"/", "X-Small", "ok"); code != 200 {
		t.Fatalf("small headers: %d", code)
	}
	if code, _, _ := get(t, c, url+"/", "X-Big", strings.Repeat("x", 16<<10)); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("16 KiB header: %d, want 431", code)
	}
}
