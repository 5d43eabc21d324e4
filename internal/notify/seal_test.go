package notify_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/canaryd/canaryd/internal/notify"
)

func newSealer(t *testing.T) *notify.Sealer {
	t.Helper()
	k, err := notify.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := notify.ParseKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := notify.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTripAndTamper(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal(botToken, "channel/tg/token")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, botToken) || strings.Contains(sealed, "AAH") {
		t.Fatalf("sealed value shows the plaintext: %s", sealed)
	}
	again, _ := s.Seal(botToken, "channel/tg/token")
	if again == sealed {
		t.Error("two seals of one value are equal: nonce reused")
	}
	got, err := s.Open(sealed, "channel/tg/token")
	if err != nil || got != botToken {
		t.Fatalf("Open = %q, %v", got, err)
	}

	flip := func(v string, i int) string {
		parts := strings.Split(v, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[2])
		raw[i%len(raw)] ^= 1
		parts[2] = base64.RawURLEncoding.EncodeToString(raw)
		return strings.Join(parts, ".")
	}
	tests := []struct {
		name   string
		sealed string
		label  string
		sealer *notify.Sealer
		want   error
	}{
		{"nonce bit flipped", flip(sealed, 0), "channel/tg/token", s, notify.ErrTampered},
		{"ciphertext bit flipped", flip(sealed, 15), "channel/tg/token", s, notify.ErrTampered},
		{"tag bit flipped", flip(sealed, -1+len(sealed)), "channel/tg/token", s, notify.ErrTampered},
		{"truncated", sealed[:len(sealed)-4], "channel/tg/token", s, notify.ErrTampered},
		{"moved to another field", sealed, "channel/tg/password", s, notify.ErrTampered},
		{"other key", sealed, "channel/tg/token", newSealer(t), notify.ErrWrongKey},
		{"not sealed", botToken, "channel/tg/token", s, notify.ErrNotSealed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sealer.Open(tt.sealed, tt.label)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestMarshalChannelHidesSecrets(t *testing.T) {
	s := newSealer(t)
	for _, c := range secretChannels() {
		c.Threads = map[string]int64{"api": 4}
		b, err := s.MarshalChannel(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range allSecrets {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("%s: stored form leaks %q: %s", c.Name, sec, b)
			}
		}
		back, err := s.UnmarshalChannel(b)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if back.URL != c.URL || back.Token != c.Token || back.Password != c.Password || back.Secret != c.Secret ||
			back.Name != c.Name || back.Kind != c.Kind || back.Threads["api"] != 4 {
			t.Errorf("%s: round trip changed the config", c.Name)
		}
		if _, err := newSealer(t).UnmarshalChannel(b); !errors.Is(err, notify.ErrWrongKey) && c.Name != "" {
			t.Errorf("%s: opening with another key = %v, want ErrWrongKey", c.Name, err)
		}
	}
	// A sealed secret copied into another channel's row does not open.
	a, _ := s.MarshalChannel(notify.ChannelConfig{Name: "a", Kind: notify.KindSlack, URL: slackURL})
	moved := bytes.Replace(a, []byte(`"name":"a"`), []byte(`"name":"b"`), 1)
	if _, err := s.UnmarshalChannel(moved); !errors.Is(err, notify.ErrTampered) {
		t.Errorf("moved secret opened: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		strings.Repeat("ab", 32),
	} {
		k, err := notify.ParseKey(enc)
		if err != nil || !bytes.Equal(k, raw) {
			t.Errorf("ParseKey(%q) = %x, %v", enc, k, err)
		}
	}
	_, err := notify.ParseKey("too-short-secret-key")
	if err == nil || strings.Contains(err.Error(), "too-short") {
		t.Errorf("ParseKey(short) = %v; want an error that does not quote the key", err)
	}
}
