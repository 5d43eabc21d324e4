package metrics

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/canaryd/canaryd/internal/latency"
)

func TestSketchCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 200 {
		var h latency.Histogram
		for range rng.IntN(500) {
			h.Record(time.Duration(rng.ExpFloat64() * float64(50*time.Millisecond)))
		}
		s := sketchOf(&h, nil)
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalSketch(b)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("run %d: round trip changed the sketch:\n got %v\nwant %v", run, got, s)
		}
	}
}

func TestUnmarshalSketchRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{{2}, {1, 0, 1}, {1, 1}, {1, 0xff, 0xff, 0xff, 0x7f, 1}, {1, 1, 0x80}} {
		if _, err := UnmarshalSketch(b); !errors.Is(err, ErrSketchEncoding) {
			t.Errorf("UnmarshalSketch(%v) = %v, want ErrSketchEncoding", b, err)
		}
	}
}

func TestMergeSketches(t *testing.T) {
	a := Sketch{{I: 3, N: 2}, {I: 10, N: 1}}
	b := Sketch{{I: 1, N: 1}, {I: 10, N: 4}}
	want := Sketch{{I: 1, N: 1}, {I: 3, N: 2}, {I: 10, N: 5}}
	if got := MergeSketches(a, nil, b); !reflect.DeepEqual(got, want) {
		t.Errorf("MergeSketches = %v, want %v", got, want)
	}
}

func FuzzUnmarshalSketch(f *testing.F) {
	good, _ := Sketch{{I: 1, N: 7}, {I: 40, N: 1}}.MarshalBinary()
	f.Add(good)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSketch(b)
		if err != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("a decoded sketch does not encode: %v", err)
		}
		if s2, err := UnmarshalSketch(again); err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("decode(encode(s)) = %v, %v; want %v", s2, err, s)
		}
	})
}
