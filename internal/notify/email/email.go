// Package email delivers alerts over SMTP: STARTTLS whenever the server
// offers it, AUTH PLAIN when a username is set, and a multipart/alternative
// body with a plain-text and an HTML part, to one or more recipients.
package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/canaryd/canaryd/internal/notify/alert"
)

// TLS modes.
const (
	// TLSStartTLS (the default) upgrades with STARTTLS when the server
	// offers it. Without it, authentication is refused unless the server is
	// on loopback (net/smtp's rule), so a password never crosses a network
	// in clear.
	TLSStartTLS = "starttls"
	// TLSRequired fails unless the server offers STARTTLS.
	TLSRequired = "starttls-required"
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit = "tls"
	// TLSNone never encrypts; only for a relay on loopback.
	TLSNone = "none"
)

// Config configures one mail channel.
type Config struct {
	// Addr is the server as host:port.
	Addr string
	// Username and Password enable AUTH PLAIN; Password is a secret.
	Username string
	Password string
	// From is the sender address, e.g. "canaryd <canaryd@example.com>".
	From string
	// To lists the recipients; at least one.
	To []string
	// TLS is one of the TLS* modes; empty means TLSStartTLS.
	TLS string
	// TLSConfig verifies the server; nil means the system roots with
	// ServerName set to Addr's host. Tests pass their own RootCAs.
	TLSConfig *tls.Config
	// Hello is the EHLO name; empty means "localhost".
	Hello string
	// Now dates messages; nil means time.Now.
	Now func() time.Time
}

// Notifier sends mail through one server. Safe for concurrent use: each
// Send opens its own connection. It never retries.
type Notifier struct {
	cfg  Config
	host string
	from *mail.Address
	to   []*mail.Address
}

// New checks cfg and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	var errs []error
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		errs = append(errs, fmt.Errorf("email: smtp %q: want host:port", cfg.Addr))
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("email: from %q: %w", cfg.From, err))
	}
	if len(cfg.To) == 0 {
		errs = append(errs, errors.New("email: to is empty"))
	}
	var to []*mail.Address
	for i, a := range cfg.To {
		ad, err := mail.ParseAddress(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("email: to[%d] %q: %w", i, a, err))
			continue
		}
		to = append(to, ad)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSRequired, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("email: tls %q: want %s, %s, %s or %s", cfg.TLS, TLSStartTLS, TLSRequired, TLSImplicit, TLSNone))
	}
	if cfg.Password != "" && cfg.Username == "" {
		errs = append(errs, errors.New("email: password set without username"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Hello == "" {
		cfg.Hello = "localhost"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Notifier{cfg: cfg, host: host, from: from, to: to}, nil
}

func (n *Notifier) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if n.cfg.TLSConfig != nil {
		c = n.cfg.TLSConfig.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = n.host
	}
	return c
}

// Send delivers m to all recipients in one SMTP transaction. ctx bounds the
// whole conversation: its end closes the connection. SMTP 5xx replies are
// permanent, 4xx and transport failures are worth retrying.
func (n *Notifier) Send(ctx context.Context, m alert.Message) (err error) {
	msg, err := n.Compose(m)
	if err != nil {
		return &alert.Error{Provider: "email", Permanent: true, Err: err}
	}
	defer func() {
		if err != nil {
			err = n.wrap(ctx, err)
		}
	}()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", n.cfg.Addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if n.cfg.TLS == TLSImplicit {
		tc := tls.Client(conn, n.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return err
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, n.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(n.cfg.Hello); err != nil {
		return err
	}
	secure := n.cfg.TLS == TLSImplicit
	if n.cfg.TLS == TLSStartTLS || n.cfg.TLS == TLSRequired {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(n.tlsConfig()); err != nil {
				return err
			}
			secure = true
		} else if n.cfg.TLS == TLSRequired {
			return &alert.Error{Provider: "email", Permanent: true, Detail: "server does not offer STARTTLS and tls is " + TLSRequired}
		}
	}
	if n.cfg.Username != "" && !secure && !loopback(n.host) {
		return &alert.Error{Provider: "email", Permanent: true, Detail: "refusing to send the password unencrypted: the server offers no STARTTLS"}
	}
	if n.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", n.cfg.Username, n.cfg.Password, n.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(n.from.Address); err != nil {
		return err
	}
	for _, a := range n.to {
		if err := c.Rcpt(a.Address); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// wrap turns a raw error into *alert.Error without the password in it.
func (n *Notifier) wrap(ctx context.Context, err error) error {
	if e := alert.AsError(err); e != nil {
		return e
	}
	if ce := ctx.Err(); ce != nil && !errors.Is(err, ce) {
		err = fmt.Errorf("%w (%v)", ce, err)
	}
	e := &alert.Error{Provider: "email", Err: alert.ScrubError(fmt.Errorf("smtp %s: %w", n.cfg.Addr, err), n.cfg.Password)}
	var te *textproto.Error
	if errors.As(err, &te) {
		e.Status = te.Code
		e.Permanent = te.Code >= 500
	}
	return e
}

// Compose renders m as a complete RFC 5322 message with CRLF line ends:
// From, To, Subject (RFC 2047 encoded when not ASCII), Date, Message-ID,
// MIME-Version and a multipart/alternative body (text/plain then
// text/html, both UTF-8 quoted-printable).
func (n *Notifier) Compose(m alert.Message) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := part(mw, "text/plain; charset=utf-8", m.PlainText()); err != nil {
		return nil, err
	}
	if err := part(mw, "text/html; charset=utf-8", HTML(m)); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	tos := make([]string, len(n.to))
	for i, a := range n.to {
		tos[i] = a.String()
	}
	now := n.cfg.Now()
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", n.from.String())
	hdr("To", strings.Join(tos, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", oneLine("[canaryd] "+m.Headline())))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", messageID(m.ID, n.from.Address))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	if m.ID != "" {
		hdr("X-Canaryd-Delivery", oneLine(m.ID))
	}
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

func part(mw *multipart.Writer, ctype, text string) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", ctype)
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	qw := quotedprintable.NewWriter(w)
	if _, err := qw.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n"))); err != nil {
		return err
	}
	return qw.Close()
}

// oneLine removes CR and LF so no value can inject a header.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// messageID derives the Message-ID from the alert id when there is one, so
// a retried delivery that did arrive twice carries the same id and mail
// clients fold the copies; otherwise it is random.
func messageID(id, from string) string {
	domain := "canaryd.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	if id != "" {
		return "<canaryd." + strings.Map(func(r rune) rune {
			if r < '!' || r > '~' || r == '<' || r == '>' || r == '@' {
				return '-'
			}
			return r
		}, id) + "@" + domain + ">"
	}
	var r [16]byte
	rand.Read(r[:])
	return "<" + hex.EncodeToString(r[:]) + "@" + domain + ">"
}

// HTML renders m as a small self-contained HTML document; every value is
// escaped.
func HTML(m alert.Message) string {
	var b strings.Builder
	e := html.EscapeString
	b.WriteString("<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n")
	b.WriteString("<h2>" + e(m.Headline()) + "</h2>\n<table>\n")
	for _, f := range m.Facts() {
		b.WriteString("<tr><th align=\"left\">" + e(f.Label) + "</th><td>" + e(f.Value) + "</td></tr>\n")
	}
	b.WriteString("</table>\n")
	if len(m.Reasons) > 0 {
		b.WriteString("<h3>Reasons</h3>\n<ul>\n")
		for _, r := range m.Reasons {
			b.WriteString("<li>" + e(r) + "</li>\n")
		}
		b.WriteString("</ul>\n")
	}
	if m.Changelog != "" {
		b.WriteString("<h3>Changelog</h3>\n<pre>" + e(m.Changelog) + "</pre>\n")
	}
	if m.URL != "" {
		b.WriteString("<p><a href=\"" + e(m.URL) + "\">Open in canaryd</a></p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}
