package notify

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a sealing key: AES-256.
const KeySize = 32

// Errors Open returns; callers branch on them with errors.Is.
var (
	// ErrWrongKey: the value was sealed under another key (key rotated or
	// the config points at the wrong one).
	ErrWrongKey = errors.New("notify: sealed with a different key")
	// ErrTampered: the value, or the channel/field it belongs to, changed
	// since it was sealed.
	ErrTampered = errors.New("notify: sealed value altered or moved")
	// ErrNotSealed: the value is not in the sealed format.
	ErrNotSealed = errors.New("notify: not a sealed value")
)

// Sealer encrypts secrets at rest with AES-256-GCM, so a copy of the
// database alone reveals nothing: the key lives in the config file or the
// environment, never in the store. Safe for concurrent use.
//
// A sealed value reads "v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>";
// the key id (8 hex digits of SHA-256 of the key) tells a wrong key from a
// damaged value. The label (channel and field) is authenticated as
// additional data, so a sealed token copied into another channel's row
// fails to open.
type Sealer struct {
	aead cipher.AEAD
	id   string
}

// NewKey returns a fresh random key encoded for the config file or the
// environment (base64, 44 characters).
func NewKey() (string, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("notify: new key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// ParseKey decodes a key written as standard or URL-safe base64 (padded or
// not) or as hex; it must decode to KeySize bytes. The error never quotes
// the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if k, err := dec(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("notify: secret key (%d characters): want %d bytes as base64 or hex", len(s), KeySize)
}

// NewSealer returns a Sealer for a KeySize-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("notify: secret key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("notify: secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("notify: secret key: %w", err)
	}
	sum := sha256.Sum256(key)
	return &Sealer{aead: aead, id: hex.EncodeToString(sum[:4])}, nil
}

// Seal encrypts plaintext bound to label (e.g. "channel/ops/token"). Each
// call uses a fresh random nonce, so equal secrets seal differently.
func (s *Sealer) Seal(plaintext, label string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("notify: seal: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(label))
	return "v1." + s.id + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value from Seal with the same label. It returns
// ErrNotSealed, ErrWrongKey or ErrTampered when it cannot.
func (s *Sealer) Open(sealed, label string) (string, error) {
	parts := strings.Split(sealed, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return "", ErrNotSealed
	}
	if parts[1] != s.id {
		return "", fmt.Errorf("%w: key id %q, ours %q", ErrWrongKey, parts[1], s.id)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", ErrTampered
	}
	ns := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, raw[:ns], raw[ns:], []byte(label))
	if err != nil {
		return "", ErrTampered
	}
	return string(pt), nil
}

// storedChannel is the at-rest form: the config with its secret fields
// emptied, and the sealed secrets beside it.
type storedChannel struct {
	Channel ChannelConfig     `json:"channel"`
	Sealed  map[string]string `json:"sealed,omitempty"`
}

func label(channel, field string) string { return "canaryd/notify/channel/" + channel + "/" + field }

// MarshalChannel encodes cfg for the store: JSON in which every secret
// field is sealed (bound to the channel name and field), nothing in clear.
func (s *Sealer) MarshalChannel(cfg ChannelConfig) ([]byte, error) {
	st := storedChannel{Channel: cfg, Sealed: map[string]string{}}
	for field, p := range st.Channel.secrets() {
		if *p == "" {
			continue
		}
		v, err := s.Seal(p.Reveal(), label(cfg.Name, field))
		if err != nil {
			return nil, err
		}
		st.Sealed[field] = v
		*p = ""
	}
	return json.Marshal(st)
}

// UnmarshalChannel decodes what MarshalChannel wrote and opens its
// secrets. Errors name the channel and field and wrap ErrWrongKey or
// ErrTampered.
func (s *Sealer) UnmarshalChannel(b []byte) (ChannelConfig, error) {
	var st storedChannel
	if err := json.Unmarshal(b, &st); err != nil {
		return ChannelConfig{}, fmt.Errorf("notify: stored channel: %w", err)
	}
	cfg := st.Channel
	fields := cfg.secrets()
	for field, v := range st.Sealed {
		p, ok := fields[field]
		if !ok {
			return ChannelConfig{}, fmt.Errorf("notify: stored channel %q: unknown sealed field %q", cfg.Name, field)
		}
		pt, err := s.Open(v, label(cfg.Name, field))
		if err != nil {
			return ChannelConfig{}, fmt.Errorf("notify: stored channel %q field %s: %w", cfg.Name, field, err)
		}
		*p = Secret(pt)
	}
	return cfg, nil
}
