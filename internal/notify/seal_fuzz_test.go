package notify_test

import (
	"bytes"
	"testing"

	"github.com/canaryd/canaryd/internal/notify"
)

// FuzzOpen: no input makes Open panic, and nothing but what Seal produced
// opens (GCM's tag stops forgeries and bit flips).
func FuzzOpen(f *testing.F) {
	s, err := notify.NewSealer(bytes.Repeat([]byte{7}, notify.KeySize))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := s.Seal("secret", "l")
	f.Add(good, "l")
	f.Add("v1..", "")
	f.Add("v1.00000000.AAAA", "l")
	f.Fuzz(func(t *testing.T, sealed, label string) {
		pt, err := s.Open(sealed, label)
		// The only values ever sealed under this key are seals of "secret"
		// with label "l" (made by the seed, in whichever process).
		if err == nil && !(label == "l" && pt == "secret") {
			t.Fatalf("Open(%q, %q) = %q: opened a value Seal did not produce", sealed, label, pt)
		}
	})
}
