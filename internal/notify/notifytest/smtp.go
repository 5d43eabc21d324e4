package notifytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTP is a real SMTP server (github.com/emersion/go-smtp) on 127.0.0.1:
// STARTTLS with a self-signed certificate made at start, AUTH PLAIN with one
// username and password (only after STARTTLS), and MAIL refused until
// authenticated. Received mail is parsed with net/mail and mime/multipart.
type SMTP struct {
	user, pass string
	addr       string
	pool       *x509.CertPool
	tlsConfig  *tls.Config
	t          testing.TB

	mu      sync.Mutex
	srv     *smtp.Server
	msgs    []Mail
	rejects []int // reply codes for the next DATA commands
}

// Mail is one received message.
type Mail struct {
	From string
	To   []string
	// TLS tells whether the session had switched to TLS; User is who
	// authenticated.
	TLS  bool
	User string
	Raw  []byte
	// Header is the parsed header; Subject is decoded (RFC 2047).
	Header  mail.Header
	Subject string
	// Text and HTML are the decoded parts of a multipart/alternative body
	// (or Text is the whole body of a single-part message).
	Text, HTML string
}

// NewSMTP starts a server that accepts the given credentials.
func NewSMTP(t testing.TB, user, pass string) *SMTP {
	t.Helper()
	cert, pool, err := selfSigned()
	if err != nil {
		t.Fatalf("notifytest: certificate: %v", err)
	}
	s := &SMTP{user: user, pass: pass, pool: pool, t: t,
		tlsConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("notifytest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Down)
	return s
}

func (s *SMTP) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = s.tlsConfig
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv
	go srv.Serve(ln)
}

// Addr is the server's host:port.
func (s *SMTP) Addr() string { return s.addr }

// RootCAs holds the server's self-signed certificate, for the client's
// tls.Config.
func (s *SMTP) RootCAs() *x509.CertPool { return s.pool }

// Messages returns the mail received so far.
func (s *SMTP) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.msgs...)
}

// Reject makes the next n DATA commands fail with the reply code (451 is
// temporary, 554 permanent).
func (s *SMTP) Reject(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.rejects = append(s.rejects, code)
	}
}

// Down stops the server; connecting fails until Up.
func (s *SMTP) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Up serves again on the same address.
func (s *SMTP) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("notifytest: relisten %s: %v", s.addr, err)
	}
	s.serve(ln)
}

type smtpSession struct {
	srv  *SMTP
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.srv.user || password != ss.srv.pass {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.srv
	s.mu.Lock()
	if len(s.rejects) > 0 {
		code := s.rejects[0]
		s.rejects = s.rejects[1:]
		s.mu.Unlock()
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "rejected by test"}
	}
	s.mu.Unlock()
	m, err := parseMail(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "unparseable message: " + err.Error()}
	}
	_, m.TLS = ss.conn.TLSConnectionState()
	m.From, m.To, m.User = ss.from, append([]string(nil), ss.to...), ss.user
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	return nil
}

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }

// parseMail checks the headers a well-formed message must have and decodes
// its body parts.
func parseMail(raw []byte) (Mail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Mail{}, err
	}
	m := Mail{Raw: raw, Header: msg.Header}
	for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version"} {
		if msg.Header.Get(h) == "" {
			return Mail{}, fmt.Errorf("header %s missing", h)
		}
	}
	if _, err := msg.Header.Date(); err != nil {
		return Mail{}, fmt.Errorf("header Date: %w", err)
	}
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Mail{}, fmt.Errorf("header Subject: %w", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return Mail{}, fmt.Errorf("header Content-Type: %w", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		b, err := io.ReadAll(msg.Body)
		m.Text = string(b)
		return m, err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Mail{}, fmt.Errorf("part: %w", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return Mail{}, fmt.Errorf("part: %w", err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			m.Text = string(b)
		case "text/html":
			m.HTML = string(b)
		}
	}
	return m, nil
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, valid for a
// day, and a pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "notifytest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
